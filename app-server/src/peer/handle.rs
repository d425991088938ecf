//! [`PeerHandle`], the cloneable handle on the connection that handlers and background
//! tasks keep: server→host requests (each with a deadline, failing with a typed
//! [`PeerRequestError`]), notifications, the host's opt-outs and the connection's
//! cancellation.

use std::sync::Arc;
use std::time::Duration;

use authbridge_protocol::jsonrpc::{serde_message, serde_message_without_value, to_raw};
use authbridge_protocol::{
    ErrorObject, Message, Notification, NotificationMethod, Request, RequestId, RequestMethod,
};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use super::outgoing::Body;
use super::pending::Reply;
use super::shared::Shared;

/// Why a server→host request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerRequestError {
    /// No answer within the call's deadline; a later answer is ignored.
    #[error("request timed out after {}ms", .0.as_millis())]
    Timeout(Duration),
    /// The host closed the connection before answering.
    #[error("host disconnected")]
    Disconnected,
    /// The host answered with an error object.
    #[error("{0}")]
    Rpc(ErrorObject),
    /// The host's result does not match the method's result type (the text names the
    /// field and what was expected, never the value).
    #[error("invalid response: {0}")]
    InvalidResult(String),
    /// The host answered with a response that is not valid JSON-RPC (an error object
    /// without `message`, both `result` and `error`, …); the text says what is wrong.
    #[error("invalid response from host: {0}")]
    InvalidResponse(String),
}

/// A cloneable handle on the connection, for handlers and background tasks.
#[derive(Clone)]
pub struct PeerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl PeerHandle {
    /// Sends a request to the host and waits for its answer, at most `timeout` (which
    /// covers waiting for queue space too). The pending entry is registered before the
    /// request is written; a late answer is ignored.
    pub async fn request<M: RequestMethod>(
        &self,
        params: &M::Params,
        timeout: Duration,
    ) -> Result<M::Result, PeerRequestError> {
        let params = to_raw(params);
        let raw = match tokio::time::timeout(timeout, self.exchange(M::NAME, params)).await {
            Ok(answer) => answer?,
            Err(_) => return Err(PeerRequestError::Timeout(timeout)),
        };
        decode_result(&raw)
    }

    async fn exchange(
        &self,
        method: &str,
        params: Box<RawValue>,
    ) -> Result<Box<RawValue>, PeerRequestError> {
        let shared = &*self.shared;
        let id = shared.next_request_id();
        let (_entry, answer) = shared
            .pending
            .register(id)
            .map_err(|_| PeerRequestError::Disconnected)?;
        let request = Message::Request(Request {
            id: RequestId::Integer(id),
            method: method.to_string(),
            params: Some(params),
        });
        if !shared.send(Body::One(request)).await {
            return Err(PeerRequestError::Disconnected);
        }
        match answer.await {
            Ok(Reply::Result(result)) => Ok(result),
            Ok(Reply::Error(error)) => Err(PeerRequestError::Rpc(error)),
            Ok(Reply::Invalid(why)) => Err(PeerRequestError::InvalidResponse(why)),
            Err(_) => Err(PeerRequestError::Disconnected),
        }
    }

    /// Sends a notification unless the host opted out of its method; waits for queue
    /// space (backpressure). Does nothing once the connection is closed.
    pub async fn notify<N: NotificationMethod>(&self, params: &N::Params) {
        let shared = &*self.shared;
        if shared.cancel.is_cancelled() || shared.opted_out(N::NAME) {
            return;
        }
        let note = notification::<N>(params);
        tokio::select! {
            _ = shared.send(Body::One(note)) => {}
            _ = shared.cancel.cancelled() => {}
        }
    }

    /// Like [`notify`](PeerHandle::notify), but also after the host closed its input, for
    /// as long as the output is still being written (the shutdown grace): for what a
    /// running turn owes the host, down to its `turn/completed`. Waits for queue space at
    /// most until the writer stops.
    pub async fn notify_until_exit<N: NotificationMethod>(&self, params: &N::Params) {
        let shared = &*self.shared;
        if shared.opted_out(N::NAME) {
            return;
        }
        if !shared.send(Body::One(notification::<N>(params))).await {
            tracing::debug!(
                method = N::NAME,
                "the output is closed; notification not sent"
            );
        }
    }

    /// Notifications with exactly these method names are not sent from now on
    /// (`capabilities.optOutNotificationMethods`).
    pub fn set_opt_out_notifications(&self, methods: Vec<String>) {
        self.shared.set_opt_outs(methods);
    }

    /// Cancelled when the connection ends (end of input, or the output failed).
    pub fn cancellation(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// How many server→host requests wait for an answer (for tests).
    #[cfg(test)]
    pub(crate) fn pending_count(&self) -> usize {
        self.shared.pending.len()
    }
}

/// The notification `N` with `params`.
pub(crate) fn notification<N: NotificationMethod>(params: &N::Params) -> Message {
    Message::Notification(Notification {
        method: N::NAME.to_string(),
        params: Some(to_raw(params)),
    })
}

/// Decodes the host's result; the error names the field and the expectation, never the
/// value (a result can hold tokens).
fn decode_result<T: DeserializeOwned>(raw: &RawValue) -> Result<T, PeerRequestError> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let what = serde_message_without_value(&serde_message(e.inner()));
        PeerRequestError::InvalidResult(if path == "." {
            what
        } else {
            format!("{what} at `{path}`")
        })
    })
}
