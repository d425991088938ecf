//! An incremental Server-Sent Events parser: bytes in arbitrary chunks in, whole events out.
//!
//! Follows the WHATWG event-stream rules that matter here: lines end in CRLF, CR or LF (a CRLF
//! split across two chunks counts once); `:` starts a comment; `field: value` drops one space
//! after the colon; `data` lines are joined with `\n`; a blank line dispatches the event if it
//! has data; an unfinished event at the end of the stream is dropped. `id` and `retry` are
//! ignored. Memory is bounded: a line or an event's data longer than the limit is an error
//! (the default limit is [`SseParser::DEFAULT_LIMIT`]).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The stream broke the parser's size limit; the parser stays failed afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider stream event larger than {limit} bytes")]
pub struct SseError {
    /// The limit in bytes.
    pub limit: usize,
}

/// The incremental parser. Feed it with [`SseParser::push`] or [`SseParser::try_push`].
#[derive(Debug)]
pub struct SseParser {
    limit: usize,
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    /// No line has been completed yet (a leading byte-order mark is dropped).
    first_line: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    error: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// The default bound on one line and on one event's data: 8 MiB.
    pub const DEFAULT_LIMIT: usize = 8 * 1024 * 1024;

    /// A parser with the default limit.
    pub fn new() -> Self {
        Self::with_limit(Self::DEFAULT_LIMIT)
    }

    /// A parser that fails on a line or an event's data longer than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        SseParser {
            limit,
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            event: None,
            data: String::new(),
            has_data: false,
            error: None,
        }
    }

    /// Feeds a chunk and returns the events it completed. After a size error the parser
    /// returns the events completed before it, then nothing more; [`SseParser::error`] says why.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let _ = self.feed(chunk, &mut out);
        out
    }

    /// Feeds a chunk: the events it completed, or the size error (events completed earlier
    /// in the same chunk are dropped with it: the stream is broken either way).
    pub fn try_push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        self.feed(chunk, &mut out)?;
        Ok(out)
    }

    /// The size error that stopped the parser, if any.
    pub fn error(&self) -> Option<&SseError> {
        self.error.as_ref()
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.feed_inner(chunk, out);
        if let Err(e) = &result {
            self.error = Some(e.clone());
            self.line = Vec::new();
            self.data = String::new();
        }
        result
    }

    fn feed_inner(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while !rest.is_empty() {
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.extend_line(rest)?;
                break;
            };
            self.extend_line(&rest[..end])?;
            let cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if cr {
                match rest.first() {
                    None => self.after_cr = true,
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
            self.line = line;
            self.line.clear();
        }
        Ok(())
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(SseError { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut line = String::from_utf8_lossy(raw);
        if std::mem::take(&mut self.first_line) {
            if let Some(stripped) = line.strip_prefix('\u{feff}') {
                line = stripped.to_string().into();
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(SseError { limit: self.limit });
                }
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out.push(SseEvent { event, data });
    }
}
