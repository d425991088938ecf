//! What handlers use to talk to the host: the cloneable [`PeerHandle`] (server→host
//! requests, notifications, the connection's cancellation) and the per-request
//! [`RequestContext`]. Also the state they share with the reader and the writer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use authbridge_protocol::jsonrpc::{serde_message, to_raw};
use authbridge_protocol::{
    ErrorObject, Message, Notification, NotificationMethod, Request, RequestId, RequestMethod,
};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::framing::Framing;
use super::pending::Pending;

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
}

/// Messages the writer writes together, in this order.
pub(crate) enum Body {
    One(Message),
    Many(Vec<Message>),
}

/// One item of the writer's queue.
pub(crate) struct Outgoing {
    /// Whether to add `"jsonrpc":"2.0"` (decided when queued).
    pub(crate) jsonrpc: bool,
    pub(crate) body: Body,
}

const DIALECT_UNDECIDED: u8 = 0;
const DIALECT_PLAIN: u8 = 1;
const DIALECT_JSONRPC: u8 = 2;

/// State shared by the reader, the writer and every handle of one connection.
pub(crate) struct Shared {
    tx: mpsc::Sender<Outgoing>,
    pub(crate) pending: Pending,
    next_id: AtomicI64,
    dialect: AtomicU8,
    framing: AtomicU8,
    has_opt_outs: AtomicBool,
    opt_outs: RwLock<HashSet<String>>,
    pub(crate) cancel: CancellationToken,
}

impl Shared {
    pub(crate) fn new(tx: mpsc::Sender<Outgoing>) -> Self {
        Shared {
            tx,
            pending: Pending::default(),
            next_id: AtomicI64::new(0),
            dialect: AtomicU8::new(DIALECT_UNDECIDED),
            framing: AtomicU8::new(Framing::Lines as u8),
            has_opt_outs: AtomicBool::new(false),
            opt_outs: RwLock::new(HashSet::new()),
            cancel: CancellationToken::new(),
        }
    }

    /// Records whether the first message that is a JSON object carried `jsonrpc`;
    /// later calls change nothing.
    pub(crate) fn decide_dialect(&self, has_jsonrpc: bool) {
        let value = if has_jsonrpc {
            DIALECT_JSONRPC
        } else {
            DIALECT_PLAIN
        };
        let _ = self.dialect.compare_exchange(
            DIALECT_UNDECIDED,
            value,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn jsonrpc(&self) -> bool {
        self.dialect.load(Ordering::Relaxed) == DIALECT_JSONRPC
    }

    pub(crate) fn set_framing(&self, framing: Framing) {
        self.framing.store(framing as u8, Ordering::Relaxed);
    }

    pub(crate) fn framing(&self) -> Framing {
        Framing::from_u8(self.framing.load(Ordering::Relaxed))
    }

    /// Wraps messages for the writer, with the dialect decided so far.
    pub(crate) fn outgoing(&self, body: Body) -> Outgoing {
        Outgoing {
            jsonrpc: self.jsonrpc(),
            body,
        }
    }

    /// Queues messages for the writer, waiting for space; false once the writer is gone.
    pub(crate) async fn send(&self, body: Body) -> bool {
        self.tx.send(self.outgoing(body)).await.is_ok()
    }

    /// Reserves one place in the writer's queue if there is room now.
    pub(crate) fn try_reserve(&self) -> Option<mpsc::OwnedPermit<Outgoing>> {
        self.tx.clone().try_reserve_owned().ok()
    }

    /// Reserves one place in the writer's queue, waiting for space; `None` once the
    /// writer is gone.
    pub(crate) async fn reserve(&self) -> Option<mpsc::OwnedPermit<Outgoing>> {
        self.tx.clone().reserve_owned().await.ok()
    }

    fn opted_out(&self, method: &str) -> bool {
        self.has_opt_outs.load(Ordering::Relaxed)
            && self
                .opt_outs
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .contains(method)
    }

    /// The host is gone: fail pending requests at once and cancel the connection token.
    pub(crate) fn close(&self) {
        self.pending.close();
        self.cancel.cancel();
    }
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
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
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
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(PeerRequestError::Rpc(error)),
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
        let shared = &*self.shared;
        let mut set = shared
            .opt_outs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *set = methods.into_iter().collect();
        shared
            .has_opt_outs
            .store(!set.is_empty(), Ordering::Relaxed);
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

fn notification<N: NotificationMethod>(params: &N::Params) -> Message {
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
        let what = redacted(&serde_message(e.inner()));
        PeerRequestError::InvalidResult(if path == "." {
            what
        } else {
            format!("{what} at `{path}`")
        })
    })
}

/// A serde message without the offending value: "invalid type: string \"…\", expected
/// u64" becomes "invalid type, expected u64".
fn redacted(message: &str) -> String {
    let quotes_a_value = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix));
    if !quotes_a_value {
        return message.to_string();
    }
    let kind = message.split(':').next().unwrap_or(message);
    match message.rfind(", expected ") {
        Some(pos) => format!("{kind}{}", &message[pos..]),
        None => kind.to_string(),
    }
}

/// What a handler queued to happen after its response.
#[derive(Default)]
pub(crate) struct After {
    pub(crate) notes: Vec<Message>,
    pub(crate) responded: Vec<oneshot::Sender<()>>,
    /// The request's in-flight permit, until the request ends or the handler keeps it.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// A place among the `max_in_flight_requests` kept beyond a request's answer (a running
/// turn). Dropping it gives the place back; the connection's shutdown waits for it
/// (within the shutdown grace).
#[derive(Debug)]
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
}

/// One request being handled: its id, the connection, and what to send after the
/// response.
pub struct RequestContext {
    peer: PeerHandle,
    id: RequestId,
    after: Arc<Mutex<After>>,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl RequestContext {
    pub(crate) fn new(peer: PeerHandle, id: RequestId, after: Arc<Mutex<After>>) -> Self {
        RequestContext { peer, id, after }
    }

    /// The connection this request came on.
    pub fn peer(&self) -> &PeerHandle {
        &self.peer
    }

    /// The request's id.
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    fn after(&self) -> std::sync::MutexGuard<'_, After> {
        self.after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a notification to be written right after this request's response (in the
    /// order queued), unless the host opted out of its method.
    pub fn notify_after<N: NotificationMethod>(&mut self, params: &N::Params) {
        if self.peer.shared.opted_out(N::NAME) {
            return;
        }
        let note = notification::<N>(params);
        self.after().notes.push(note);
    }

    /// Keeps this request's place among the in-flight requests after its response, for
    /// work that goes on (a turn): the place is given back when the returned guard is
    /// dropped. `None` for barriers, which hold no place.
    pub fn keep_in_flight(&mut self) -> Option<InFlight> {
        self.after()
            .permit
            .take()
            .map(|permit| InFlight { _permit: permit })
    }

    /// Resolves once this request's response (and what [`notify_after`] queued) is in
    /// the output queue, so a notification sent after it cannot overtake it. Resolves
    /// with an error if the request ends without a response being queued.
    ///
    /// [`notify_after`]: RequestContext::notify_after
    pub fn after_response(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.after().responded.push(tx);
        rx
    }
}
