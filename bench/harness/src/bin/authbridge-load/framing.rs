//! The two framings a server may speak: newline-delimited JSON and LSP-style `Content-Length`
//! headers. [`Decoder`] splits complete message bodies off the bytes read so far; it knows
//! nothing of JSON-RPC.

use anyhow::{bail, Context};

/// How messages are delimited on the pipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Framing {
    /// One JSON value per line (the default of authbridge and Codex hosts).
    Lines,
    /// `Content-Length: N\r\n\r\n` and N bytes of JSON (LSP frameworks, vscode-jsonrpc).
    ContentLength,
}

impl Framing {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Lines => "lines",
            Framing::ContentLength => "content-length",
        }
    }

    /// Appends one framed message with this body to `out`.
    pub fn encode(self, body: &[u8], out: &mut Vec<u8>) {
        match self {
            Framing::Lines => {
                out.extend_from_slice(body);
                out.push(b'\n');
            }
            Framing::ContentLength => {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(body.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n\r\n");
                out.extend_from_slice(body);
            }
        }
    }
}

/// Headers longer than this without a blank line mean the server does not speak our framing.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Splits message bodies off a growing buffer of bytes read from the server.
pub struct Decoder {
    framing: Framing,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        Decoder {
            framing,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Free space to read into, after making room by moving or growing the buffer.
    pub fn read_space(&mut self) -> &mut [u8] {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`Decoder::read_space`].
    pub fn advance(&mut self, n: usize) {
        self.end += n;
    }

    /// The next complete message body, or `None` until more bytes arrive.
    pub fn next_message(&mut self) -> anyhow::Result<Option<&[u8]>> {
        loop {
            let pending = &self.buf[self.start..self.end];
            let (body, used) = match self.framing {
                Framing::Lines => {
                    let Some(nl) = pending.iter().position(|&b| b == b'\n') else {
                        return Ok(None);
                    };
                    let line = &pending[..nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    (self.start..self.start + line.len(), nl + 1)
                }
                Framing::ContentLength => {
                    let Some(blank) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if pending.len() > MAX_HEADER_BYTES {
                            bail!("no end of headers in the first {MAX_HEADER_BYTES} bytes: the server does not speak Content-Length framing");
                        }
                        return Ok(None);
                    };
                    let len = content_length(&pending[..blank])?;
                    if pending.len() < blank + 4 + len {
                        return Ok(None);
                    }
                    let body_start = self.start + blank + 4;
                    (body_start..body_start + len, blank + 4 + len)
                }
            };
            self.start += used;
            if !self.buf[body.clone()].trim_ascii().is_empty() {
                return Ok(Some(&self.buf[body]));
            }
        }
    }
}

fn content_length(headers: &[u8]) -> anyhow::Result<usize> {
    for line in headers.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-length")
        {
            let value = std::str::from_utf8(line[colon + 1..].trim_ascii())?;
            return value
                .parse()
                .with_context(|| format!("bad Content-Length {value:?}"));
        }
    }
    bail!(
        "a header block without Content-Length: {:?}",
        String::from_utf8_lossy(headers)
    )
}
