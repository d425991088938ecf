//! [`RequestContext`], what one request's handler gets besides its params: the request's
//! id, the connection, notifications queued to follow its response, and its place among
//! the in-flight requests ([`InFlight`]) for work that outlives the response.

use std::sync::{Arc, Mutex, MutexGuard};

use authbridge_protocol::{Message, NotificationMethod, RequestId};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::handle::{notification, PeerHandle};

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

    fn after(&self) -> MutexGuard<'_, After> {
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
