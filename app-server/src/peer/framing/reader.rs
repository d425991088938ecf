//! Cutting frames out of the host's byte stream (docs/protocol.md §1.1): [`FrameReader`]
//! detects the framing from the first non-whitespace bytes and cuts frames out of one
//! buffer that is reused, compacted and never holds an oversized message; a malformed
//! `Content-Length` header block is reported and skipped up to the next header.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::headers::{
    content_length, find_content_length, header_block, header_start, Consume, Start,
    CONTENT_LENGTH, MAX_HEADER_BYTES,
};
use super::{find, Frame, Framing};

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
    /// After a malformed header block: everything up to the next `Content-Length:` (any
    /// case, anywhere: a body is not followed by a newline, so the next header of a
    /// well-framed stream does not start a line).
    ToContentLength,
}

const READ_CHUNK: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

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
    /// Whether a leading byte-order mark was looked for.
    bom_checked: bool,
    /// `Content-Length` mode: a bare JSON line (where a header was expected) is being
    /// cut out as a line.
    bare: bool,
    /// `Content-Length` mode: the last frame was a body and nothing was read after it.
    after_body: bool,
    /// That body was not JSON: bytes that follow it directly are its own tail (the
    /// length was too short, e.g. counted in characters), skipped without a second
    /// error.
    bad_tail: bool,
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
            bom_checked: false,
            bare: false,
            after_body: false,
            bad_tail: false,
        }
    }

    /// The connection could not parse the body just returned (it is not JSON). If more
    /// bytes follow it directly where a header is expected, they are that body's tail.
    pub(crate) fn reject_body(&mut self) {
        self.bad_tail = self.after_body;
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
            Skip::ToContentLength => {
                let rest = &self.buf[self.start..];
                match find_content_length(rest) {
                    Some(i) => {
                        self.start += i;
                        true
                    }
                    None => {
                        // Keep what could be the start of a header split across reads.
                        let keep = rest.len().min(CONTENT_LENGTH.len() - 1);
                        self.start = end - keep;
                        false
                    }
                }
            }
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
        if !self.bom_checked {
            let rest = &self.buf[self.start..];
            if rest.len() < BOM.len() && BOM.starts_with(rest) && !self.eof {
                return None;
            }
            if rest.starts_with(BOM) {
                self.start += BOM.len();
            }
            self.bom_checked = true;
        }
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
        loop {
            if self.bare {
                let cut = self.cut_line();
                self.bare = cut.is_none();
                return cut;
            }
            if self.body.is_some() {
                return self.cut_body();
            }
            // Whitespace between messages is tolerated.
            let rest = &self.buf[self.start..];
            let blank = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if blank > 0 {
                (self.after_body, self.bad_tail) = (false, false);
                self.start += blank;
            }
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return None;
            }
            let tail_of_bad_body = self.bad_tail;
            (self.after_body, self.bad_tail) = (false, false);
            match header_start(rest) {
                Start::More if self.eof => {
                    tracing::debug!("input ended inside a header block");
                    self.start = self.buf.len();
                    return None;
                }
                Start::More => return None,
                Start::Header => return self.cut_headers(),
                Start::Junk if tail_of_bad_body => {
                    tracing::debug!("skipped the tail of a body whose length was too short");
                    self.skip = Skip::ToContentLength;
                    if !self.skip_done() {
                        return None;
                    }
                }
                Start::Junk if rest[0] == b'{' || rest[0] == b'[' => {
                    // A bare JSON line where a header block is expected: it is answered
                    // like a line (served, or an error carrying its id), not swallowed.
                    self.bare = true;
                    self.scanned = self.start;
                }
                Start::Junk => {
                    self.skip = Skip::ToContentLength;
                    return Some(Cut::BadHeader("expected a Content-Length header"));
                }
            }
        }
    }

    /// The header block starting at `start` (its first line looks like a header).
    fn cut_headers(&mut self) -> Option<Cut> {
        let rest = &self.buf[self.start..];
        // Only a bounded window is searched for the blank line ending the block.
        let window = rest.len().min(MAX_HEADER_BYTES);
        let Some((headers, block)) = header_block(&rest[..window]) else {
            if window == MAX_HEADER_BYTES {
                self.start += window - (CONTENT_LENGTH.len() - 1);
                self.skip = Skip::ToContentLength;
                return Some(Cut::BadHeader("header block too long"));
            }
            if self.eof {
                tracing::debug!("input ended inside a header block");
                self.start = self.buf.len();
            }
            return None;
        };
        match content_length(&rest[..headers]) {
            Err(bad) => {
                // Resynchronise at the next `Content-Length:` after what was read as this
                // block's header (a line that is no header may hold the next one).
                self.start += match bad.consume {
                    Consume::Before(at) | Consume::Through(at) => at.max(1),
                    Consume::Block => block,
                };
                self.skip = Skip::ToContentLength;
                Some(Cut::BadHeader(bad.why))
            }
            Ok(n) if n > self.max => {
                self.start += block;
                self.skip = Skip::Bytes(n);
                Some(Cut::TooLarge)
            }
            Ok(n) => {
                self.start += block;
                self.body = Some(n);
                self.cut_body()
            }
        }
    }

    fn cut_body(&mut self) -> Option<Cut> {
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
        self.after_body = true;
        Some(Cut::Message(a, a + n))
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}
