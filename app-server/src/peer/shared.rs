//! The state of one connection that the reader, the writer and every handle share: the
//! writer's queue and the output budget, the pending server→host requests and their ids,
//! the host's framing and `jsonrpc` dialect, its notification opt-outs, and the
//! connection's cancellation.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::RwLock;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::framing::Framing;
use super::outgoing::{Body, Outgoing, Slot};
use super::pending::Pending;

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
    /// Bytes queued or being written and not yet taken by the host.
    unsent: AtomicUsize,
    /// `max_unsent_output_bytes`.
    budget: usize,
    /// Woken when `unsent` drops below the budget.
    room: Notify,
}

impl Shared {
    pub(crate) fn new(tx: mpsc::Sender<Outgoing>, max_unsent_output_bytes: usize) -> Self {
        Shared {
            unsent: AtomicUsize::new(0),
            budget: max_unsent_output_bytes.max(1),
            room: Notify::new(),
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

    /// The id of the next server→host request (integers from 0).
    pub(crate) fn next_request_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
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

    /// Wraps messages for the writer, with the dialect decided so far, and counts them
    /// against the output budget.
    pub(crate) fn outgoing(&self, body: Body) -> Outgoing {
        let item = Outgoing::new(body, self.jsonrpc());
        self.add_unsent(item.cost);
        item
    }

    /// Queues messages for the writer, waiting for space in the queue and in the output
    /// budget; false once the writer is gone.
    pub(crate) async fn send(&self, body: Body) -> bool {
        self.output_room().await;
        self.tx.send(self.outgoing(body)).await.is_ok()
    }

    /// Whether the output waiting for the host has reached `max_unsent_output_bytes`.
    pub(crate) fn over_budget(&self) -> bool {
        self.unsent.load(Ordering::Acquire) >= self.budget
    }

    /// Resolves once the output waiting for the host is below the budget.
    pub(crate) async fn output_room(&self) {
        if !self.over_budget() {
            return; // the usual case, without touching the `Notify`
        }
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if !self.over_budget() {
                return;
            }
            room.await;
        }
    }

    pub(crate) fn add_unsent(&self, bytes: usize) {
        self.unsent.fetch_add(bytes, Ordering::AcqRel);
    }

    /// `bytes` left the output (written, or recounted); wakes whoever waits for room
    /// when that brings the output below the budget.
    pub(crate) fn sub_unsent(&self, bytes: usize) {
        let before = self.unsent.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.budget && before - bytes < self.budget {
            self.room.notify_waiters();
        }
    }

    /// The writer encoded an item: its exact size replaces the estimate.
    pub(crate) fn recount(&self, estimate: usize, exact: usize) {
        if exact > estimate {
            self.add_unsent(exact - estimate);
        } else {
            self.sub_unsent(estimate - exact);
        }
    }

    /// Reserves one place in the writer's queue if there is room now.
    pub(crate) fn try_reserve(&self) -> Option<Slot> {
        self.tx.clone().try_reserve_owned().ok()
    }

    /// Reserves one place in the writer's queue, waiting for space; `None` once the
    /// writer is gone.
    pub(crate) async fn reserve(&self) -> Option<Slot> {
        self.tx.clone().reserve_owned().await.ok()
    }

    /// Whether the host opted out of notifications named `method`.
    pub(crate) fn opted_out(&self, method: &str) -> bool {
        self.has_opt_outs.load(Ordering::Relaxed)
            && self
                .opt_outs
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .contains(method)
    }

    /// Notifications with exactly these method names are not sent from now on.
    pub(crate) fn set_opt_outs(&self, methods: Vec<String>) {
        let mut set = self
            .opt_outs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *set = methods.into_iter().collect();
        self.has_opt_outs.store(!set.is_empty(), Ordering::Relaxed);
    }

    /// The host is gone: fail pending requests at once and cancel the connection token.
    pub(crate) fn close(&self) {
        self.pending.close();
        self.cancel.cancel();
    }
}
