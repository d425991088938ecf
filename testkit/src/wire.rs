//! Framing on the host's side of the pipe (and on the server's, for the conformance kit's
//! stand-in): newline-delimited JSON or `Content-Length` headers (docs/protocol.md §1.1).

use serde_json::Value;

/// The framing one side of the pipe speaks; `lines` or `content-length` in the conformance
/// kit's scenario files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Framing {
    /// One JSON value per line (the default; what Codex hosts speak).
    #[default]
    #[serde(rename = "lines")]
    Ndjson,
    /// `Content-Length: N\r\n\r\n` + N bytes (what `vscode-jsonrpc` speaks).
    #[serde(rename = "content-length")]
    ContentLength,
}

/// The bytes of one message in this framing.
pub fn encode(framing: Framing, message: &Value) -> Vec<u8> {
    let json = message.to_string();
    match framing {
        Framing::Ndjson => format!("{json}\n").into_bytes(),
        Framing::ContentLength => {
            format!("Content-Length: {}\r\n\r\n{json}", json.len()).into_bytes()
        }
    }
}

/// One frame read from the server: a JSON value, or bytes that are not one.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Message(Value),
    /// A frame whose payload is not JSON (the server broke the "only protocol on stdout" rule).
    NotJson(Vec<u8>),
}

/// Splits the server's stdout into frames. The framing is detected from the first
/// non-whitespace bytes the server wrote, as the server does for the host.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    framing: Option<Framing>,
}

impl Decoder {
    /// A decoder that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The framing detected so far.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Adds bytes; returns every complete frame.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.framing.is_none() {
                let start = self.buf.iter().position(|b| !b.is_ascii_whitespace());
                let Some(start) = start else { break };
                let head = &self.buf[start..];
                if head.len() < 15 && b"content-length:".starts_with(&head.to_ascii_lowercase()) {
                    break; // not enough bytes to tell
                }
                self.framing = Some(
                    if head.to_ascii_lowercase().starts_with(b"content-length:") {
                        Framing::ContentLength
                    } else {
                        Framing::Ndjson
                    },
                );
            }
            let next = match self.framing {
                Some(Framing::ContentLength) => self.next_content_length(),
                _ => self.next_line(),
            };
            match next {
                Some(Some(frame)) => out.push(frame),
                Some(None) => continue,
                None => break,
            }
        }
        out
    }

    /// `None`: need more bytes; `Some(None)`: skipped blank input; `Some(Some(f))`: a frame.
    fn next_line(&mut self) -> Option<Option<Frame>> {
        let end = self.buf.iter().position(|&b| b == b'\n')?;
        let line: Vec<u8> = self.buf.drain(..=end).collect();
        let line = line.trim_ascii();
        if line.is_empty() {
            return Some(None);
        }
        Some(Some(parse(line)))
    }

    fn next_content_length(&mut self) -> Option<Option<Frame>> {
        let start = self.buf.iter().position(|b| !b.is_ascii_whitespace())?;
        self.buf.drain(..start);
        let header_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&self.buf[..header_end]).to_string();
        let length = headers.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        });
        let Some(length) = length else {
            let bad: Vec<u8> = self.buf.drain(..header_end + 4).collect();
            return Some(Some(Frame::NotJson(bad)));
        };
        if self.buf.len() < header_end + 4 + length {
            return None;
        }
        self.buf.drain(..header_end + 4);
        let body: Vec<u8> = self.buf.drain(..length).collect();
        Some(Some(parse(&body)))
    }

    /// Bytes received that do not yet form a complete frame.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

fn parse(bytes: &[u8]) -> Frame {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Frame::Message(v),
        Err(_) => Frame::NotJson(bytes.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ndjson_frames_split_across_reads_are_reassembled() {
        let mut d = Decoder::new();
        assert_eq!(
            d.push(b"{\"id\":1}\n{\"id\""),
            vec![Frame::Message(json!({"id": 1}))]
        );
        assert_eq!(
            d.push(b":2}\r\nnot json\n"),
            vec![
                Frame::Message(json!({"id": 2})),
                Frame::NotJson(b"not json".to_vec())
            ]
        );
        assert_eq!(d.framing(), Some(Framing::Ndjson));
    }

    #[test]
    fn content_length_frames_are_detected_and_decoded() {
        let mut d = Decoder::new();
        let mut bytes = encode(Framing::ContentLength, &json!({"id": 1}));
        bytes.extend(encode(Framing::ContentLength, &json!({"id": 2})));
        let (a, b) = bytes.split_at(5);
        assert_eq!(d.push(a), vec![]);
        assert_eq!(
            d.push(b),
            vec![
                Frame::Message(json!({"id": 1})),
                Frame::Message(json!({"id": 2}))
            ]
        );
        assert_eq!(d.framing(), Some(Framing::ContentLength));
        assert!(d.leftover().is_empty());
    }
}
