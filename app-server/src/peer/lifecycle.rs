//! Where the connection is in the handshake, and the gate each message from the host
//! passes before dispatch (docs/protocol.md §2). Until an `initialize` succeeds only
//! `initialize` is served: any other request is answered -32600 `Not initialized`, and
//! notifications are ignored. After it everything is served except a second `initialize`
//! (-32600 `Already initialized`).
//!
//! There is no closing state, on purpose. When the input ends, or the binary is asked to
//! shut down, the reader reads nothing more, and every message it had read is still
//! dispatched through this same gate, as if the input were open: a host that writes
//! `initialize` and a request and closes its input gets both answers (docs/protocol.md
//! §8.1: the host closes stdin; SIGTERM or SIGINT). A state
//! that refused requests once the end began would break that promise, and no message
//! comes after the last one read, so it would have nothing else to refuse. The end shows
//! elsewhere: pending server→host requests fail at once, and
//! [`PeerHandle::is_closed`](super::PeerHandle::is_closed) turns true.

use authbridge_protocol::handshake::Initialize;
use authbridge_protocol::{ErrorObject, RequestMethod};

/// Where the connection is in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Only `initialize` is served.
    Uninitialized,
    /// `initialize` succeeded.
    Ready,
}

/// What the gate makes of a request.
pub(crate) enum Gate {
    /// The first `initialize`: served as a barrier; its success makes the connection ready.
    Initialize,
    /// Dispatched as the service says (a barrier, or concurrently).
    Serve,
    /// Answered with this error and not dispatched.
    Refuse(ErrorObject),
}

impl Lifecycle {
    /// What becomes of a request for `method`.
    pub(crate) fn gate(self, method: &str) -> Gate {
        match (self, method == Initialize::NAME) {
            (Lifecycle::Uninitialized, true) => Gate::Initialize,
            (Lifecycle::Uninitialized, false) => {
                Gate::Refuse(ErrorObject::invalid_request("Not initialized"))
            }
            (Lifecycle::Ready, true) => {
                Gate::Refuse(ErrorObject::invalid_request("Already initialized"))
            }
            (Lifecycle::Ready, false) => Gate::Serve,
        }
    }

    /// Whether a notification from the host is handled (before `initialize` it is
    /// ignored).
    pub(crate) fn handles_notifications(self) -> bool {
        self == Lifecycle::Ready
    }
}
