//! The `Content-Length` header block (docs/protocol.md §1.1): where one starts, where it
//! ends, and the length it announces, or why it is malformed and how much of it to skip.

use super::find;

/// The longest header block searched for its end.
pub(super) const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The header that starts a block, in lower case (it is matched in any case).
pub(super) const CONTENT_LENGTH: &[u8] = b"content-length:";

/// What the bytes where a header block is expected begin with.
pub(super) enum Start {
    /// A header name and its colon.
    Header,
    /// Anything else.
    Junk,
    /// Not enough bytes to tell.
    More,
}

pub(super) fn header_start(rest: &[u8]) -> Start {
    let name = rest.iter().take_while(|&&b| is_tchar(b)).count();
    // Spaces before the colon are tolerated, as `content_length` trims the name.
    let gap = rest[name..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match rest.get(name + gap) {
        Some(b':') if name > 0 => Start::Header,
        Some(_) => Start::Junk,
        None if name + gap >= MAX_HEADER_BYTES => Start::Junk,
        None => Start::More,
    }
}

/// A character of a header name (RFC 9110 `tchar`).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Where the next `Content-Length:` (any case) starts.
pub(super) fn find_content_length(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(CONTENT_LENGTH.len())
        .position(|w| w.eq_ignore_ascii_case(CONTENT_LENGTH))
}

/// Finds the blank line ending a header block: (length of the header lines, length
/// including the blank line).
pub(super) fn header_block(rest: &[u8]) -> Option<(usize, usize)> {
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

/// How much of a malformed header block to throw away before looking for the next
/// `Content-Length:`.
pub(super) enum Consume {
    /// Up to this offset (the start of a line that is no header: it may hold the next
    /// `Content-Length:`, as the tail of a body whose length was short does).
    Before(usize),
    /// Up to this offset (the end of a bad `Content-Length` line).
    Through(usize),
    /// The whole block.
    Block,
}

pub(super) struct BadBlock {
    pub(super) why: &'static str,
    pub(super) consume: Consume,
}

/// The `Content-Length` of a header block; other headers are ignored.
pub(super) fn content_length(headers: &[u8]) -> Result<usize, BadBlock> {
    let mut length = None;
    let mut at = 0;
    for raw in headers.split_inclusive(|&b| b == b'\n') {
        let line_start = at;
        at += raw.len();
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let bad = |why| BadBlock {
            why,
            consume: Consume::Before(line_start),
        };
        let colon = find(line, b':').ok_or(bad("header line without a colon"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let name = name.trim_ascii();
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad("malformed header name"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let value = std::str::from_utf8(value.trim_ascii())
                .ok()
                .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|text| text.parse::<usize>().ok())
                .ok_or(BadBlock {
                    why: "Content-Length is not a non-negative integer",
                    consume: Consume::Through(at),
                })?;
            length = Some(value);
        }
    }
    length.ok_or(BadBlock {
        why: "missing Content-Length header",
        consume: Consume::Block,
    })
}
