//! Framing on both sides of a pipe: newline-delimited JSON or `Content-Length` headers (§1.1).

use serde_json::Value;

/// The framing one side speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Framing {
    /// One JSON value per line (the default; what Codex hosts speak).
    #[default]
    #[serde(rename = "lines")]
    Lines,
    /// `Content-Length: N\r\n\r\n` + N bytes (what `vscode-jsonrpc` speaks).
    #[serde(rename = "content-length")]
    ContentLength,
}

/// The bytes of one message in this framing.
pub fn encode(framing: Framing, message: &Value) -> Vec<u8> {
    let json = message.to_string();
    match framing {
        Framing::Lines => format!("{json}\n").into_bytes(),
        Framing::ContentLength => {
            format!("Content-Length: {}\r\n\r\n{json}", json.len()).into_bytes()
        }
    }
}

/// One frame read from the other side: a JSON value, or bytes that are not one.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A frame that parsed as JSON.
    Message(Value),
    /// A frame that is not JSON (e.g. a log line on stdout), lossily decoded.
    NotJson(String),
}

/// Splits a byte stream into frames; the framing is detected from the first non-whitespace
/// bytes, the way the server detects the host's.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    framing: Option<Framing>,
}

impl Decoder {
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
                let Some(start) = self.buf.iter().position(|b| !b.is_ascii_whitespace()) else {
                    break;
                };
                let head = self.buf[start..].to_ascii_lowercase();
                if head.len() < 15 && b"content-length:".starts_with(&head) {
                    break;
                }
                self.framing = Some(if head.starts_with(b"content-length:") {
                    Framing::ContentLength
                } else {
                    Framing::Lines
                });
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

    /// `None`: need more bytes; `Some(None)`: skipped a blank line; `Some(Some(_))`: a frame.
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
            if name.trim().eq_ignore_ascii_case("content-length") {
                value.trim().parse::<usize>().ok()
            } else {
                None
            }
        });
        let Some(length) = length else {
            let bad: Vec<u8> = self.buf.drain(..header_end + 4).collect();
            return Some(Some(Frame::NotJson(
                String::from_utf8_lossy(&bad).into_owned(),
            )));
        };
        if self.buf.len() < header_end + 4 + length {
            return None;
        }
        self.buf.drain(..header_end + 4);
        let body: Vec<u8> = self.buf.drain(..length).collect();
        Some(Some(parse(&body)))
    }
}

fn parse(bytes: &[u8]) -> Frame {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Frame::Message(v),
        Err(_) => Frame::NotJson(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// What a message is, by its members: the three kinds an `expect` step tells apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Has `id` and `result` or `error`, no `method`.
    Response(Value),
    /// Has `method` and `id`.
    Request(String),
    /// Has `method`, no `id`.
    Notification(String),
    /// Anything else (not an object, a batch, …).
    Other,
}

/// The kind of a message (or of a pattern written like one).
pub fn kind_of(message: &Value) -> Kind {
    let Some(obj) = message.as_object() else {
        return Kind::Other;
    };
    match (obj.get("method").and_then(Value::as_str), obj.get("id")) {
        (Some(m), Some(_)) => Kind::Request(m.to_owned()),
        (Some(m), None) => Kind::Notification(m.to_owned()),
        (None, Some(id)) if obj.contains_key("result") || obj.contains_key("error") => {
            Kind::Response(id.clone())
        }
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_split_across_reads_are_reassembled_and_garbage_is_reported() {
        let mut d = Decoder::default();
        assert_eq!(
            d.push(b"{\"id\":1}\n{\"id\""),
            vec![Frame::Message(json!({"id": 1}))]
        );
        assert_eq!(
            d.push(b":2}\r\nnot json\n"),
            vec![
                Frame::Message(json!({"id": 2})),
                Frame::NotJson("not json".into())
            ]
        );
        assert_eq!(d.framing(), Some(Framing::Lines));
    }

    #[test]
    fn content_length_frames_are_detected_even_when_split_inside_the_header() {
        let mut d = Decoder::default();
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
    }

    #[test]
    fn kinds_are_told_apart_by_their_members() {
        assert_eq!(
            kind_of(&json!({"id": 1, "result": {}})),
            Kind::Response(json!(1))
        );
        assert_eq!(
            kind_of(&json!({"id": 1, "method": "a"})),
            Kind::Request("a".into())
        );
        assert_eq!(
            kind_of(&json!({"method": "b", "params": {}})),
            Kind::Notification("b".into())
        );
        assert_eq!(kind_of(&json!([1])), Kind::Other);
    }
}
