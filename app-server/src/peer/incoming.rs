//! What the reader makes of one frame: a message, or the error to answer it with (the
//! first frame that is a JSON object decides whether replies carry `"jsonrpc"`); and the
//! messages it holds, read but not yet dispatched, while dispatch waits.

use std::collections::VecDeque;

use authbridge_protocol::jsonrpc::codes;
use authbridge_protocol::{ErrorObject, Message, RequestId};
use serde_json::value::RawValue;

use super::framing::Frame;
use super::shared::Shared;

/// Messages read ahead (to find the host's responses) while a barrier runs or the
/// output is full, in number and in bytes (at least one message is held).
const HOLD_LIMIT: usize = 64;
const HOLD_BYTES: usize = 1024 * 1024;
/// Messages read ahead while the server waits for an answer from the host (bytes: at
/// most `HOLD_BYTES`). The answer may sit behind many requests a host pipelined; a
/// refresh that every waiting turn needs must not wait for them all to be dispatched.
const LOOK_AHEAD_LIMIT: usize = 4096;
/// A message read, or why a frame is not one (the error to answer with).
pub(crate) enum Incoming {
    Message(Message),
    Reject(Option<RequestId>, ErrorObject),
    /// A malformed response from the host: never answered; it fails the pending
    /// request with this id, if any (why, quoting no value).
    BadResponse(Option<RequestId>, String),
}

/// Parses a frame; the first frame that is a JSON object decides the `jsonrpc` dialect.
pub(crate) fn classify(frame: Frame<'_>, shared: &Shared, max_message_bytes: usize) -> Incoming {
    match frame {
        Frame::Message(bytes) => match Message::parse(bytes) {
            Ok(parsed) => {
                shared.decide_dialect(parsed.has_jsonrpc);
                Incoming::Message(parsed.message)
            }
            Err(invalid) => {
                let is_object = invalid.error.code == codes::INVALID_REQUEST
                    && bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                if is_object {
                    shared.decide_dialect(invalid.has_jsonrpc);
                }
                if invalid.response {
                    let why = invalid.error.message;
                    let why = why.strip_prefix("Invalid request: ").unwrap_or(&why);
                    return Incoming::BadResponse(invalid.id, why.to_string());
                }
                Incoming::Reject(invalid.id, invalid.error)
            }
        },
        Frame::TooLarge => Incoming::Reject(
            None,
            ErrorObject::invalid_request(format!(
                "message too large: more than {max_message_bytes} bytes"
            )),
        ),
        Frame::BadHeader(why) => Incoming::Reject(None, ErrorObject::parse_error(why)),
    }
}

/// Messages read but not dispatched yet, in arrival order, with roughly the bytes they
/// keep in memory.
#[derive(Default)]
pub(crate) struct Held {
    queue: VecDeque<Incoming>,
    bytes: usize,
}

impl Held {
    /// Whether the reader may read ahead to hold one more message.
    pub(crate) fn has_room(&self) -> bool {
        self.queue.len() < HOLD_LIMIT && self.bytes < HOLD_BYTES
    }

    /// Whether the reader may hold one more message while it looks ahead for the
    /// host's answer to a server request.
    pub(crate) fn has_look_ahead_room(&self) -> bool {
        self.queue.len() < LOOK_AHEAD_LIMIT && self.bytes < HOLD_BYTES
    }

    /// Holds `incoming` behind the others.
    pub(crate) fn push_back(&mut self, incoming: Incoming) {
        self.bytes += estimate(&incoming);
        self.queue.push_back(incoming);
    }

    /// Puts `incoming` back in front of the others (it was taken and must wait again).
    pub(crate) fn push_front(&mut self, incoming: Incoming) {
        self.bytes += estimate(&incoming);
        self.queue.push_front(incoming);
    }

    /// The oldest message held.
    pub(crate) fn pop_front(&mut self) -> Option<Incoming> {
        let incoming = self.queue.pop_front()?;
        self.bytes -= estimate(&incoming);
        Some(incoming)
    }
}

/// Roughly the bytes a held message keeps in memory.
fn estimate(incoming: &Incoming) -> usize {
    fn id(id: &RequestId) -> usize {
        match id {
            RequestId::Integer(_) => 8,
            RequestId::String(s) => s.len(),
        }
    }
    fn raw(value: &Option<Box<RawValue>>) -> usize {
        value.as_ref().map_or(0, |v| v.get().len())
    }
    64 + match incoming {
        Incoming::Message(Message::Request(r)) => id(&r.id) + r.method.len() + raw(&r.params),
        Incoming::Message(Message::Notification(n)) => n.method.len() + raw(&n.params),
        Incoming::Message(Message::Response(_)) => 0,
        Incoming::Reject(i, e) => i.as_ref().map_or(0, id) + e.message.len(),
        Incoming::BadResponse(i, why) => i.as_ref().map_or(0, id) + why.len(),
    }
}
