//! Framing of the host's byte stream (docs/protocol.md §1.1), in bytes only: the two
//! framings, what is cut out of the input, and the encoder that wraps an outgoing
//! message's bytes in a frame. Knows no JSON-RPC: the connection parses the bytes of a
//! frame, and the writer serialises a message into the bytes the encoder frames.
//!
//! - `reader`: [`FrameReader`], detection and the cutting of frames out of the input.
//! - `headers`: the `Content-Length` header block.

use std::io::Write;

mod headers;
mod reader;

pub(crate) use reader::FrameReader;

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
    /// A malformed header block, or bytes that are no header where one is expected
    /// (why); the reader then skips to the next `Content-Length:`.
    BadHeader(&'static str),
}

/// Appends to `out` one frame in `framing` holding `body`, the bytes of one message (in
/// line framing they must hold no newline, which compact JSON never does).
pub(crate) fn encode(out: &mut Vec<u8>, framing: Framing, body: &[u8]) {
    match framing {
        Framing::Lines => {
            out.extend_from_slice(body);
            out.push(b'\n');
        }
        Framing::ContentLength => {
            write!(out, "Content-Length: {}\r\n\r\n", body.len())
                .expect("writing to memory cannot fail");
            out.extend_from_slice(body);
        }
    }
}

/// [`encode`] of the bytes `write_body` appends to the buffer it is given, without
/// copying them where that can be avoided: in line framing `write_body` appends to `out`
/// itself; in `Content-Length` framing, whose header needs the body's length first, it
/// appends to `scratch` (cleared first, reused from call to call), which is then copied.
pub(crate) fn encode_with(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    framing: Framing,
    write_body: impl FnOnce(&mut Vec<u8>),
) {
    match framing {
        Framing::Lines => {
            write_body(out);
            out.push(b'\n');
        }
        Framing::ContentLength => {
            scratch.clear();
            write_body(scratch);
            encode(out, framing, scratch);
        }
    }
}

/// Where `byte` first occurs in `bytes`.
fn find(bytes: &[u8], byte: u8) -> Option<usize> {
    bytes.iter().position(|&b| b == byte)
}
