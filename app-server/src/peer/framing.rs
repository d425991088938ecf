//! Framing of the host's byte stream (contract §1.1): detection from the first
//! non-whitespace bytes (`Content-Length:` headers or newline-delimited JSON), a reader
//! that cuts frames out of one reused buffer without ever holding an oversized message,
//! and the encoder for outgoing messages. Knows nothing of JSON-RPC methods.

use std::io::{self, Write};

use authbridge_protocol::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

/// How messages are delimited; the server answers in the host's framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Framing {
    /// One JSON value per line (`\n`, or `\r\n`).
    Lines = 0,
    /// LSP-style `Content-Length: N` headers, a blank line, then N bytes.
    ContentLength = 1,
}

impl Framing {
    pub(crate) fn from_u8(value: u8) -> Framing {
        if value == Framing::ContentLength as u8 {
            Framing::ContentLength
        } else {
            Framing::Lines
        }
    }
}

/// One thing cut out of the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// The bytes of one message (not yet parsed).
    Message(&'a [u8]),
    /// A message over the size limit; it has been (or is being) skipped.
    TooLarge,
    /// A malformed header block (why); skipped up to the blank line that ends it.
    BadHeader(&'static str),
}

/// A frame as positions in the buffer, so the cutting code borrows nothing.
enum Cut {
    Message(usize, usize),
    TooLarge,
    BadHeader(&'static str),
}

/// Input being thrown away.
enum Skip {
    Nothing,
    /// The rest of an oversized line.
    ToNewline,
    /// The rest of an oversized `Content-Length` body.
    Bytes(usize),
    /// A malformed header block, up to its blank line; whether the partial line so far
    /// had text.
    ToBlankLine {
        line_has_text: bool,
    },
}

const READ_CHUNK: usize = 64 * 1024;
const MAX_HEADER_BYTES: usize = 8 * 1024;
const CONTENT_LENGTH: &[u8] = b"content-length:";

/// Reads frames from `R` through one buffer that is reused, compacted and never grows
/// much beyond the size limit.
pub(crate) struct FrameReader<R> {
    reader: R,
    buf: Vec<u8>,
    /// The first byte not consumed yet.
    start: usize,
    /// Line mode: `buf[start..scanned]` holds no newline.
    scanned: usize,
    /// `Content-Length` mode: the headers were read; the body has this many bytes.
    body: Option<usize>,
    framing: Option<Framing>,
    skip: Skip,
    max: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(reader: R, max_message_bytes: usize) -> Self {
        FrameReader {
            reader,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            scanned: 0,
            body: None,
            framing: None,
            skip: Skip::Nothing,
            max: max_message_bytes,
            eof: false,
        }
    }

    /// The host's framing, once its first bytes have been seen.
    pub(crate) fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Reads more input; `false` at the end of input. Cancel-safe: if the future is
    /// dropped, no byte was lost.
    pub(crate) async fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 0 && self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.drain(..self.start);
            self.scanned = self.scanned.max(self.start) - self.start;
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let n = self.reader.read_buf(&mut self.buf).await?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// The next frame from what has been read, or `None` if more input is needed (or the
    /// input is over).
    pub(crate) fn next_frame(&mut self) -> Option<Frame<'_>> {
        let cut = self.cut()?;
        Some(match cut {
            Cut::Message(a, b) => Frame::Message(&self.buf[a..b]),
            Cut::TooLarge => Frame::TooLarge,
            Cut::BadHeader(why) => Frame::BadHeader(why),
        })
    }

    fn cut(&mut self) -> Option<Cut> {
        if !self.skip_done() {
            return None;
        }
        let framing = match self.framing {
            Some(framing) => framing,
            None => self.detect()?,
        };
        match framing {
            Framing::Lines => self.cut_line(),
            Framing::ContentLength => self.cut_block(),
        }
    }

    /// Throws away what is being skipped; true when nothing is left to skip.
    fn skip_done(&mut self) -> bool {
        let end = self.buf.len();
        let done = match &mut self.skip {
            Skip::Nothing => true,
            Skip::Bytes(left) => {
                let take = (*left).min(end - self.start);
                self.start += take;
                *left -= take;
                *left == 0
            }
            Skip::ToNewline => match find(&self.buf[self.start..], b'\n') {
                Some(i) => {
                    self.start += i + 1;
                    true
                }
                None => {
                    self.start = end;
                    false
                }
            },
            Skip::ToBlankLine { line_has_text } => loop {
                let rest = &self.buf[self.start..];
                match find(rest, b'\n') {
                    Some(i) => {
                        let blank = !*line_has_text && is_blank(&rest[..i]);
                        *line_has_text = false;
                        self.start += i + 1;
                        if blank {
                            break true;
                        }
                    }
                    None => {
                        *line_has_text |= !is_blank(rest);
                        self.start = end;
                        break false;
                    }
                }
            },
        };
        self.scanned = self.scanned.max(self.start);
        if done {
            self.skip = Skip::Nothing;
        }
        done
    }

    /// Decides the framing from the first non-whitespace bytes (leading whitespace is
    /// dropped); `None` until there are enough of them.
    fn detect(&mut self) -> Option<Framing> {
        let rest = &self.buf[self.start..];
        let Some(first) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
            self.start = self.buf.len();
            self.scanned = self.start;
            return None;
        };
        self.start += first;
        self.scanned = self.start;
        let head = &self.buf[self.start..];
        let n = head.len().min(CONTENT_LENGTH.len());
        let framing = if !head[..n].eq_ignore_ascii_case(&CONTENT_LENGTH[..n]) {
            Framing::Lines
        } else if n == CONTENT_LENGTH.len() {
            Framing::ContentLength
        } else if self.eof {
            Framing::Lines
        } else {
            return None;
        };
        self.framing = Some(framing);
        Some(framing)
    }

    fn cut_line(&mut self) -> Option<Cut> {
        loop {
            let end = self.buf.len();
            let Some(i) = find(&self.buf[self.scanned..], b'\n') else {
                self.scanned = end;
                let pending = end - self.start;
                if pending > self.max + 1 {
                    // Longer than any line we accept: answer now, skip the rest.
                    self.start = end;
                    self.skip = Skip::ToNewline;
                    return Some(Cut::TooLarge);
                }
                if !self.eof || pending == 0 {
                    return None;
                }
                // The input ended without a final newline: the rest is the last line.
                let a = self.start;
                self.start = end;
                return self.line(a, end);
            };
            let newline = self.scanned + i;
            let a = self.start;
            self.start = newline + 1;
            self.scanned = self.start;
            if let Some(cut) = self.line(a, newline) {
                return Some(cut);
            }
        }
    }

    /// `buf[a..b]` is one line without its `\n`; `None` if it is blank.
    fn line(&self, a: usize, mut b: usize) -> Option<Cut> {
        if b > a && self.buf[b - 1] == b'\r' {
            b -= 1;
        }
        if is_blank(&self.buf[a..b]) {
            None
        } else if b - a > self.max {
            Some(Cut::TooLarge)
        } else {
            Some(Cut::Message(a, b))
        }
    }

    fn cut_block(&mut self) -> Option<Cut> {
        if self.body.is_none() {
            // Whitespace between messages is tolerated.
            let rest = &self.buf[self.start..];
            self.start += rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return None;
            }
            // Only a bounded window is searched for the blank line ending the block.
            let window = rest.len().min(MAX_HEADER_BYTES);
            let Some((headers, block)) = header_block(&rest[..window]) else {
                if window == MAX_HEADER_BYTES {
                    let scanned = &rest[..window];
                    let partial = scanned
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(scanned, |i| &scanned[i + 1..]);
                    self.skip = Skip::ToBlankLine {
                        line_has_text: !is_blank(partial),
                    };
                    self.start += window;
                    return Some(Cut::BadHeader("header block too long"));
                }
                if self.eof {
                    tracing::debug!("input ended inside a header block");
                    self.start = self.buf.len();
                }
                return None;
            };
            let parsed = content_length(&rest[..headers]);
            self.start += block;
            match parsed {
                Err(why) => return Some(Cut::BadHeader(why)),
                Ok(n) if n > self.max => {
                    self.skip = Skip::Bytes(n);
                    return Some(Cut::TooLarge);
                }
                Ok(n) => self.body = Some(n),
            }
        }
        let n = self.body?;
        let end = self.buf.len();
        if end - self.start < n {
            if self.eof {
                tracing::debug!("input ended inside a message body");
                self.start = end;
                self.body = None;
            }
            return None;
        }
        let a = self.start;
        self.start += n;
        self.body = None;
        Some(Cut::Message(a, a + n))
    }
}

fn find(bytes: &[u8], byte: u8) -> Option<usize> {
    bytes.iter().position(|&b| b == byte)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// Finds the blank line ending a header block: (length of the header lines, length
/// including the blank line).
fn header_block(rest: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    while let Some(i) = find(&rest[line_start..], b'\n') {
        let line = &rest[line_start..line_start + i];
        if line.is_empty() || line == b"\r" {
            return Some((line_start, line_start + i + 1));
        }
        line_start += i + 1;
    }
    None
}

/// The `Content-Length` of a header block; other headers are ignored.
fn content_length(headers: &[u8]) -> Result<usize, &'static str> {
    let mut length = None;
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = find(line, b':').ok_or("header line without a colon")?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.trim_ascii().eq_ignore_ascii_case(b"content-length") {
            let value = std::str::from_utf8(value.trim_ascii())
                .ok()
                .and_then(|text| text.parse::<usize>().ok())
                .ok_or("Content-Length is not a number")?;
            length = Some(value);
        }
    }
    length.ok_or("missing Content-Length header")
}

/// Appends `message` to `out` in `framing`; `scratch` is reused for the body when its
/// length must come first.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    framing: Framing,
    message: &Message,
    jsonrpc: bool,
) {
    match framing {
        Framing::Lines => {
            message.write_to(out, jsonrpc);
            out.push(b'\n');
        }
        Framing::ContentLength => {
            scratch.clear();
            message.write_to(scratch, jsonrpc);
            write!(out, "Content-Length: {}\r\n\r\n", scratch.len())
                .expect("writing to memory cannot fail");
            out.extend_from_slice(scratch);
        }
    }
}
