//! What the writer's queue holds: the messages of one item, written together and in
//! order, the `jsonrpc` dialect they are written in, and what they count against the
//! output budget until the writer has written them.

use authbridge_protocol::{Message, RequestId};
use serde_json::value::RawValue;
use tokio::sync::mpsc::OwnedPermit;

/// Messages the writer writes together, in this order.
pub(crate) enum Body {
    One(Message),
    Many(Vec<Message>),
}

impl Body {
    /// The messages, in the order they are written.
    pub(crate) fn messages(&self) -> &[Message] {
        match self {
            Body::One(message) => std::slice::from_ref(message),
            Body::Many(messages) => messages,
        }
    }
}

/// One item of the writer's queue.
pub(crate) struct Outgoing {
    /// Whether to add `"jsonrpc":"2.0"` (decided when queued).
    pub(crate) jsonrpc: bool,
    pub(crate) body: Body,
    /// What this item counts against the output budget until the writer encodes it
    /// (then its exact size counts, until it is written).
    pub(crate) cost: usize,
}

impl Outgoing {
    /// An item for the writer, its cost estimated from `body`.
    pub(crate) fn new(body: Body, jsonrpc: bool) -> Self {
        let cost = body.messages().iter().map(wire_estimate).sum();
        Outgoing {
            jsonrpc,
            body,
            cost,
        }
    }
}

/// A reserved place in the writer's queue, for one answer.
pub(crate) type Slot = OwnedPermit<Outgoing>;

/// Roughly the bytes `message` takes on the wire: every string and raw value it carries,
/// plus the envelope. The writer corrects it with the exact size when it encodes.
fn wire_estimate(message: &Message) -> usize {
    const ENVELOPE: usize = 48;
    fn id(id: &RequestId) -> usize {
        match id {
            RequestId::Integer(_) => 20,
            RequestId::String(s) => s.len() + 2,
        }
    }
    fn raw(value: &Option<Box<RawValue>>) -> usize {
        value.as_ref().map_or(0, |v| v.get().len())
    }
    ENVELOPE
        + match message {
            Message::Request(r) => id(&r.id) + r.method.len() + raw(&r.params),
            Message::Notification(n) => n.method.len() + raw(&n.params),
            Message::Response(r) => {
                r.id.as_ref().map_or(4, id)
                    + match &r.result {
                        Ok(value) => value.get().len(),
                        Err(e) => e.message.len() + e.data.as_ref().map_or(0, |_| 64),
                    }
            }
        }
}
