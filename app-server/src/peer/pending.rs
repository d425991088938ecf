//! The table of server→host requests waiting for their answer, and the routing of the
//! host's responses to them. An entry is registered before the request is written,
//! removed when the answer arrives, when the caller gives up (timeout or drop), or all at
//! once when the host disconnects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use authbridge_protocol::{ErrorObject, RequestId, Response};
use serde_json::value::RawValue;
use tokio::sync::oneshot;

/// What the host answered.
pub(crate) enum Reply {
    /// Its result.
    Result(Box<RawValue>),
    /// Its error object.
    Error(ErrorObject),
    /// A response with this id that is not a valid response (why, quoting no value).
    Invalid(String),
}

#[derive(Default)]
struct Table {
    waiting: HashMap<i64, oneshot::Sender<Reply>>,
    closed: bool,
}

/// Pending server→host requests, by id.
#[derive(Default)]
pub(crate) struct Pending {
    table: Mutex<Table>,
    /// Whether any request waits: the reader's per-message check, without the lock.
    any: AtomicBool,
}

/// A registered request; dropping it removes the entry if no answer took it.
pub(crate) struct Entry<'a> {
    pending: &'a Pending,
    id: i64,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let mut table = self.pending.lock();
        table.waiting.remove(&self.id);
        self.pending.note(&table);
    }
}

/// The host is gone: no request can be registered any more.
#[derive(Debug)]
pub(crate) struct Closed;

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers `id`; the receiver gets the answer, or an error once the host is gone.
    pub(crate) fn register(
        &self,
        id: i64,
    ) -> Result<(Entry<'_>, oneshot::Receiver<Reply>), Closed> {
        let (tx, rx) = oneshot::channel();
        let mut table = self.lock();
        if table.closed {
            return Err(Closed);
        }
        table.waiting.insert(id, tx);
        self.note(&table);
        Ok((Entry { pending: self, id }, rx))
    }

    /// True while at least one request waits for the host's answer.
    pub(crate) fn any_waiting(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Keeps `any` in step with the table; called with the lock held.
    fn note(&self, table: &Table) {
        self.any.store(!table.waiting.is_empty(), Ordering::Release);
    }

    /// Hands the host's response to the caller waiting for its id.
    pub(crate) fn route(&self, response: Response) {
        let reply = match response.result {
            Ok(result) => Reply::Result(result),
            Err(error) => Reply::Error(error),
        };
        self.complete(response.id, reply);
    }

    /// A malformed response is never answered (docs/protocol.md §1.2): the pending
    /// request it names, if any, fails at once.
    pub(crate) fn fail(&self, id: Option<RequestId>, why: String) {
        tracing::debug!(id = ?id.as_ref().map(ToString::to_string), %why, "the host sent an invalid response");
        self.complete(id, Reply::Invalid(why));
    }

    /// Hands `reply` to the caller waiting for `id`; a reply nobody waits for (an
    /// unknown, late or duplicate id, or one that is no integer, as ours all are) is
    /// dropped.
    fn complete(&self, id: Option<RequestId>, reply: Reply) {
        let waiter = match &id {
            Some(RequestId::Integer(id)) => {
                let mut table = self.lock();
                let waiter = table.waiting.remove(id);
                self.note(&table);
                waiter
            }
            _ => None,
        };
        let routed = match waiter {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        };
        if !routed {
            tracing::debug!(id = ?id.as_ref().map(ToString::to_string), "ignored a response that matches no pending request");
        }
    }

    /// Fails every waiting request at once and refuses new ones.
    pub(crate) fn close(&self) {
        let waiting = {
            let mut table = self.lock();
            table.closed = true;
            let waiting = std::mem::take(&mut table.waiting);
            self.note(&table);
            waiting
        };
        drop(waiting);
    }

    /// How many requests are waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().waiting.len()
    }
}
