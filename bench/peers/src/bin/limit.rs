//! The pipe and syscall ceiling: answers every request with a canned result carrying its id.
//!
//! It does the least a server can: blocking reads into a 1 MiB buffer, message boundaries from
//! the framing (newline-delimited JSON, or `Content-Length` headers detected from the first
//! byte), the id found by scanning for `"id":` without parsing, and one `write` per batch of
//! answers. Messages without an id (notifications) get no answer. It ends at end of input.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

const RESULT_TAIL: &[u8] = br#","result":{"account":null,"requiresOpenaiAuth":true}}"#;
const HEAD: &[u8] = br#"{"jsonrpc":"2.0","id":"#;

#[derive(Clone, Copy, PartialEq)]
enum Framing {
    Lines,
    ContentLength,
}

fn main() -> io::Result<()> {
    let mut input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let mut output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Vec::with_capacity(1 << 20);
    let mut framing = None;
    loop {
        if start == end {
            (start, end) = (0, 0);
        } else if end == buf.len() {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            if end == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
        let n = input.read(&mut buf[end..])?;
        if n == 0 {
            return Ok(());
        }
        end += n;
        if framing.is_none() {
            framing = detect(&buf[start..end]);
        }
        let Some(framing) = framing else { continue };
        while let Some((body, used)) = next_message(framing, &buf[start..end]) {
            answer(framing, &buf[start..start + used][body.0..body.1], &mut out);
            start += used;
        }
        if !out.is_empty() {
            output.write_all(&out)?;
            out.clear();
        }
    }
}

/// Framing from the first non-whitespace byte: a JSON value starts with `{` or `[`.
fn detect(bytes: &[u8]) -> Option<Framing> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    Some(if matches!(first, b'{' | b'[') {
        Framing::Lines
    } else {
        Framing::ContentLength
    })
}

/// The next complete message: the body's range within `bytes`, and how many bytes it used.
fn next_message(framing: Framing, bytes: &[u8]) -> Option<((usize, usize), usize)> {
    match framing {
        Framing::Lines => {
            let nl = bytes.iter().position(|&b| b == b'\n')?;
            Some(((0, nl), nl + 1))
        }
        Framing::ContentLength => {
            let header_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
            let len = content_length(&bytes[..header_end]).unwrap_or(0);
            (bytes.len() >= header_end + len)
                .then_some(((header_end, header_end + len), header_end + len))
        }
    }
}

fn content_length(headers: &[u8]) -> Option<usize> {
    headers.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-length")
        {
            return None;
        }
        std::str::from_utf8(line[colon + 1..].trim_ascii())
            .ok()?
            .parse()
            .ok()
    })
}

/// Appends the canned answer for one message, if it carries an id.
fn answer(framing: Framing, body: &[u8], out: &mut Vec<u8>) {
    let Some(at) = body.windows(5).position(|w| w == b"\"id\":") else {
        return;
    };
    let rest = &body[at + 5..];
    let len = rest
        .iter()
        .position(|&b| b == b',' || b == b'}')
        .unwrap_or(rest.len());
    let id = rest[..len].trim_ascii();
    if framing == Framing::ContentLength {
        let n = HEAD.len() + id.len() + RESULT_TAIL.len();
        let _ = write!(out, "Content-Length: {n}\r\n\r\n");
    }
    out.extend_from_slice(HEAD);
    out.extend_from_slice(id);
    out.extend_from_slice(RESULT_TAIL);
    if framing == Framing::Lines {
        out.push(b'\n');
    }
}
