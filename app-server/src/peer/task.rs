//! The task of one request: run the handler (a panic answers -32603), give the in-flight
//! permit back (unless the handler kept it, `RequestContext::keep_in_flight`), put the
//! response and what the handler queued after it in the reserved output slot, and wake
//! whoever waits for the response to be queued.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use authbridge_protocol::{ErrorObject, Message, Request, Response};
use futures_util::FutureExt;
use tokio::sync::OwnedSemaphorePermit;

use super::context::{After, RequestContext};
use super::outgoing::{Body, Slot};
use super::shared::Shared;
use super::{PeerHandle, Service};

/// Runs one request's handler and puts its response, then what it queued to follow, in
/// the reserved slot; gives the in-flight permit back as soon as the handler returns.
/// A panicking handler answers -32603. Returns whether the handler succeeded.
pub(crate) async fn run_request(
    shared: Arc<Shared>,
    service: Arc<dyn Service>,
    request: Request,
    slot: Slot,
    permit: Option<OwnedSemaphorePermit>,
) -> bool {
    let Request { id, method, params } = request;
    let after = Arc::new(Mutex::new(After {
        permit,
        ..After::default()
    }));
    let peer = PeerHandle {
        shared: shared.clone(),
    };
    let ctx = RequestContext::new(peer, id.clone(), after.clone());
    let handled = service.handle_request(ctx, method, params);
    let result = match AssertUnwindSafe(handled).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(%id, "a request handler panicked");
            Err(ErrorObject::internal(
                "Internal error: the request handler failed",
            ))
        }
    };
    let succeeded = result.is_ok();
    // The permit goes back now unless the handler kept it for work that outlives it.
    let After {
        notes, responded, ..
    } = std::mem::take(&mut *after.lock().unwrap_or_else(|p| p.into_inner()));
    let response = Message::Response(Response {
        id: Some(id),
        result,
    });
    let body = if notes.is_empty() {
        Body::One(response)
    } else {
        let mut all = Vec::with_capacity(notes.len() + 1);
        all.push(response);
        all.extend(notes);
        Body::Many(all)
    };
    slot.send(shared.outgoing(body));
    for tx in responded {
        let _ = tx.send(());
    }
    succeeded
}
