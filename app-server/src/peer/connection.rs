//! One connection's reader loop (docs/protocol.md §1.2, §2): dispatch in arrival order
//! through the lifecycle gate (see `lifecycle`) — barriers and host notifications awaited
//! before the next message, concurrent requests up to the limit — the host's responses
//! routed as soon as they are read, and the shutdown after end of input. Knows no bytes
//! (see `framing`).

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use authbridge_protocol::jsonrpc::{codes, quoted};
use authbridge_protocol::{ErrorObject, Message, Notification, Request, Response};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::framing::{Frame, FrameReader};
use super::incoming::{classify, Held, Incoming};
use super::lifecycle::{Gate, Lifecycle};
use super::outgoing::{Body, Slot};
use super::shared::Shared;
use super::task::run_request;
use super::{writer, DispatchKind, PeerConfig, PeerHandle, Service};

/// Room in the writer's queue beyond one reserved slot per request in flight.
const QUEUE_SPARE: usize = 256;
/// After this many messages in a row the reader lets the writer run.
const YIELD_EVERY: usize = 8;
/// How many times the reader lets other tasks run before answering -32001.
const PERMIT_RETRIES: usize = 4;
/// How long the final flush may take after shutdown.
const FLUSH_DEADLINE: Duration = Duration::from_millis(500);

/// A barrier request or a host notification that runs before the next message.
struct Blocking {
    task: JoinHandle<bool>,
    initialize: bool,
}

enum Wake {
    Closed,
    Room,
    Slot(Option<Slot>),
    Read(io::Result<bool>),
    Done(Result<bool, JoinError>),
}

struct Connection<R> {
    frames: FrameReader<R>,
    framing_known: bool,
    shared: Arc<Shared>,
    service: Arc<dyn Service>,
    lifecycle: Lifecycle,
    permits: Arc<Semaphore>,
    max_in_flight: u32,
    max_message_bytes: usize,
    blocking: Option<Blocking>,
    /// Messages read while dispatch waits (a barrier runs, or the output is full).
    held: Held,
    /// A place in the output queue reserved while waiting for one.
    slot: Option<Slot>,
    /// The next message to dispatch waits for room in the output queue.
    needs_slot: bool,
    /// Messages accepted since the reader last let other tasks run.
    since_yield: usize,
    /// A read error met while reading ahead, returned by the reader loop.
    read_error: Option<io::Error>,
    /// Cancelled (SIGTERM, SIGINT) to end the connection as end of input does.
    shutdown: CancellationToken,
}

pub(crate) async fn serve<R, W>(
    reader: R,
    writer: W,
    service: Arc<dyn Service>,
    config: PeerConfig,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Every request reserves its response's slot before it starts, so the queue holds
    // them all plus room for notifications and errors.
    let capacity = config.max_in_flight_requests.saturating_add(QUEUE_SPARE);
    let (tx, rx) = mpsc::channel(capacity.min(Semaphore::MAX_PERMITS));
    let shared = Arc::new(Shared::new(tx, config.max_unsent_output_bytes));
    let stop = CancellationToken::new();
    let mut writer_task = tokio::spawn(writer::run(writer, rx, shared.clone(), stop.clone()));
    let max_in_flight = u32::try_from(config.max_in_flight_requests).unwrap_or(u32::MAX);
    let mut conn = Connection {
        frames: FrameReader::new(reader, config.max_message_bytes),
        framing_known: false,
        shared: shared.clone(),
        service,
        lifecycle: Lifecycle::Uninitialized,
        permits: Arc::new(Semaphore::new(max_in_flight as usize)),
        max_in_flight,
        max_message_bytes: config.max_message_bytes,
        blocking: None,
        held: Held::default(),
        slot: None,
        needs_slot: false,
        since_yield: 0,
        read_error: None,
        shutdown,
    };
    let read = conn.read_until_closed().await;
    tracing::debug!("input closed; failing pending server requests");
    shared.close();
    if tokio::time::timeout(config.shutdown_grace, conn.drain())
        .await
        .is_err()
    {
        tracing::debug!("handlers still running after the shutdown grace");
    }
    stop.cancel();
    let written = match tokio::time::timeout(FLUSH_DEADLINE, &mut writer_task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(io::Error::other(join)),
        Err(_) => {
            tracing::debug!("the host did not read the last output in time");
            writer_task.abort();
            Ok(())
        }
    };
    read?;
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

impl<R: AsyncRead + Unpin> Connection<R> {
    /// Whether the next message may be dispatched: no barrier running, no wait for
    /// a place in the output queue, and the output waiting for the host is below
    /// `max_unsent_output_bytes`.
    fn can_dispatch(&self) -> bool {
        self.blocking.is_none() && !self.needs_slot && !self.shared.over_budget()
    }

    /// Reads and dispatches until end of input, a read error, or the output failing.
    /// While a barrier runs or the output is full, it keeps reading (up to
    /// what `Held` has room for) only to route the host's responses.
    async fn read_until_closed(&mut self) -> io::Result<()> {
        loop {
            if self.shutdown.is_cancelled() {
                tracing::debug!("asked to shut down: ending the connection as at end of input");
                return Ok(());
            }
            if let Some(e) = self.read_error.take() {
                return Err(e);
            }
            if self.shared.pending.any_waiting() {
                self.look_ahead();
            }
            if self.can_dispatch() {
                if let Some(incoming) = self.held.pop_front() {
                    self.dispatch(incoming).await;
                    self.maybe_yield().await;
                    continue;
                }
            }
            let can_read = self.held.has_room();
            if can_read {
                if let Some(incoming) = self.next_incoming() {
                    self.accept(incoming).await;
                    // Let the writer send what is answered so far every few messages, so
                    // a pipelining host gets answers (and sends more) while the rest of a
                    // large read is still being handled on this thread.
                    self.maybe_yield().await;
                    continue;
                }
            }
            let (cancel, shared) = (&self.shared.cancel, &self.shared);
            let needs_slot = self.needs_slot;
            let over_budget = shared.over_budget();
            let blocking = self.blocking.as_mut().map(|b| &mut b.task);
            let wake = tokio::select! {
                biased;
                _ = cancel.cancelled() => Wake::Closed,
                _ = self.shutdown.cancelled() => Wake::Closed,
                _ = shared.output_room(), if over_budget => Wake::Room,
                done = async { blocking.expect("guarded").await }, if blocking.is_some() => {
                    Wake::Done(done)
                }
                slot = shared.reserve(), if needs_slot => Wake::Slot(slot),
                read = self.frames.fill(), if can_read => Wake::Read(read),
            };
            match wake {
                Wake::Closed | Wake::Slot(None) => return Ok(()),
                Wake::Read(Ok(true)) | Wake::Room => {}
                Wake::Read(Ok(false)) => return Ok(()),
                Wake::Read(Err(e)) => return Err(e),
                Wake::Slot(slot) => {
                    self.slot = slot;
                    self.needs_slot = false;
                }
                Wake::Done(done) => {
                    let blocking = self.blocking.take().expect("a blocking task finished");
                    self.finish_blocking(blocking.initialize, done);
                }
            }
        }
    }

    /// Every [`YIELD_EVERY`] messages, lets the writer send what is answered so far.
    async fn maybe_yield(&mut self) {
        self.since_yield += 1;
        if self.since_yield >= YIELD_EVERY {
            self.since_yield = 0;
            tokio::task::yield_now().await;
        }
    }

    /// While a server→host request waits, reads ahead of dispatch: responses are routed at
    /// once, everything else is held in arrival order (as far as
    /// [`Held::has_look_ahead_room`] allows). Reads only what the input has ready now;
    /// never waits.
    fn look_ahead(&mut self) {
        while self.held.has_look_ahead_room() {
            let Some(incoming) = self.next_incoming() else {
                match self.frames.fill().now_or_never() {
                    Some(Ok(true)) => continue,
                    Some(Err(e)) => self.read_error = Some(e),
                    // Nothing ready, or end of input (the reader loop sees it next).
                    Some(Ok(false)) | None => {}
                }
                return;
            };
            match incoming {
                Incoming::Message(Message::Response(response)) => {
                    self.shared.pending.route(response)
                }
                Incoming::BadResponse(id, why) => self.shared.pending.fail(id, why),
                other => self.held.push_back(other),
            }
        }
    }

    /// After end of input: dispatches everything already read, in order, then waits
    /// for the concurrent handlers. The caller bounds this with the shutdown grace.
    async fn drain(&mut self) {
        loop {
            if let Some(blocking) = self.blocking.take() {
                let done = blocking.task.await;
                self.finish_blocking(blocking.initialize, done);
                continue;
            }
            if self.needs_slot {
                match self.shared.reserve().await {
                    Some(slot) => (self.slot, self.needs_slot) = (Some(slot), false),
                    None => break,
                }
            }
            let next = match self.held.pop_front() {
                Some(incoming) => Some(incoming),
                None => self.next_incoming(),
            };
            match next {
                Some(incoming) => self.dispatch(incoming).await,
                None => break,
            }
        }
        let _all_done = self.permits.acquire_many(self.max_in_flight).await;
    }

    /// Cuts and classifies the next frame from what has been read.
    fn next_incoming(&mut self) -> Option<Incoming> {
        let frame = self.frames.next_frame()?;
        let body = matches!(frame, Frame::Message(_));
        let incoming = classify(frame, &self.shared, self.max_message_bytes);
        if body && matches!(&incoming, Incoming::Reject(_, e) if e.code == codes::PARSE_ERROR) {
            self.frames.reject_body();
        }
        if !self.framing_known {
            if let Some(framing) = self.frames.framing() {
                self.shared.set_framing(framing);
                self.framing_known = true;
            }
        }
        Some(incoming)
    }

    /// Responses are routed at once; anything else waits its turn.
    async fn accept(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Message(Message::Response(response)) => self.shared.pending.route(response),
            Incoming::BadResponse(id, why) => self.shared.pending.fail(id, why),
            other if !self.can_dispatch() => self.held.push_back(other),
            other => self.dispatch(other).await,
        }
    }

    async fn dispatch(&mut self, incoming: Incoming) {
        let incoming = match incoming {
            Incoming::Message(Message::Response(response)) => {
                return self.shared.pending.route(response)
            }
            Incoming::Message(Message::Notification(note)) => return self.notification(note),
            Incoming::BadResponse(id, why) => return self.shared.pending.fail(id, why),
            answered => answered,
        };
        // What is left gets an answer: it needs a place in the output queue first.
        let Some(slot) = self.slot.take().or_else(|| self.shared.try_reserve()) else {
            self.held.push_front(incoming);
            self.needs_slot = true;
            return;
        };
        match incoming {
            Incoming::Message(Message::Request(request)) => self.request(request, slot).await,
            Incoming::Message(_) | Incoming::BadResponse(..) => {}
            Incoming::Reject(id, error) => self.answer(slot, Response::error(id, error)),
        }
    }

    fn notification(&mut self, note: Notification) {
        if !self.lifecycle.handles_notifications() {
            tracing::debug!(method = %quoted(&note.method), "ignored a notification before initialize");
            return;
        }
        let service = self.service.clone();
        let peer = PeerHandle {
            shared: self.shared.clone(),
        };
        let task = tokio::spawn(async move {
            let handled = service.handle_notification(peer, note.method, note.params);
            let outcome = AssertUnwindSafe(handled).catch_unwind().await;
            if outcome.is_err() {
                tracing::error!("a notification handler panicked");
            }
            outcome.is_ok()
        });
        self.blocking = Some(Blocking {
            task,
            initialize: false,
        });
    }

    async fn request(&mut self, request: Request, slot: Slot) {
        match self.lifecycle.gate(&request.method) {
            Gate::Refuse(error) => self.answer(slot, Response::error(Some(request.id), error)),
            Gate::Initialize => self.start_barrier(request, slot, true),
            Gate::Serve => match self.service.dispatch_kind(&request.method) {
                DispatchKind::Barrier => self.start_barrier(request, slot, false),
                DispatchKind::Concurrent => self.start_concurrent(request, slot).await,
            },
        }
    }

    /// Starts the handler if the in-flight limit allows, else answers -32001.
    async fn start_concurrent(&mut self, request: Request, slot: Slot) {
        match self.permit().await {
            Some(permit) => {
                let (shared, service) = (self.shared.clone(), self.service.clone());
                let mut task = Box::pin(run_request(shared, service, request, slot, Some(permit)));
                // Most requests (reads, status) finish without waiting on anything: poll
                // once here and spawn a task only for those that must wait. A future that
                // is pending re-registers its waker when the spawned task polls it again.
                let waker = futures_util::task::noop_waker();
                let mut cx = std::task::Context::from_waker(&waker);
                if task.as_mut().poll(&mut cx).is_pending() {
                    tokio::spawn(task);
                }
            }
            None => {
                let error = ErrorObject::overloaded();
                self.answer(slot, Response::error(Some(request.id), error));
            }
        }
    }

    fn answer(&self, slot: Slot, response: Response) {
        slot.send(self.shared.outgoing(Body::One(Message::Response(response))));
    }

    /// A permit for one more concurrent request, or `None` when the limit is reached.
    /// Handlers that are ready to finish get a few chances to run first, so a host that
    /// pipelines faster than the runtime schedules is not told "overloaded" for requests
    /// that are only waiting for a thread.
    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        for _ in 0..PERMIT_RETRIES {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return Some(permit);
            }
            tokio::task::yield_now().await;
        }
        self.permits.clone().try_acquire_owned().ok()
    }

    fn start_barrier(&mut self, request: Request, slot: Slot, initialize: bool) {
        let (shared, service) = (self.shared.clone(), self.service.clone());
        let task = tokio::spawn(run_request(shared, service, request, slot, None));
        self.blocking = Some(Blocking { task, initialize });
    }

    fn finish_blocking(&mut self, initialize: bool, done: Result<bool, JoinError>) {
        match done {
            Ok(true) if initialize => self.lifecycle = Lifecycle::Ready,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "a barrier task failed"),
        }
    }
}
