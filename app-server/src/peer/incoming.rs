//! What the reader makes of one frame: a message, or the error to answer it with. The
//! first frame that is a JSON object decides whether replies carry `"jsonrpc"`.

use authbridge_protocol::jsonrpc::codes;
use authbridge_protocol::{ErrorObject, Message, RequestId};

use super::framing::Frame;
use super::shared::Shared;

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
