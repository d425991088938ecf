//! One connection's reader loop (contract §1.2, §2): lifecycle gating, dispatch in
//! arrival order — barriers and host notifications awaited before the next message,
//! concurrent requests up to the limit — routing of the host's responses as soon as they
//! are read, and the shutdown after end of input. Knows no bytes (see `framing`).

use std::collections::VecDeque;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge_protocol::handshake::Initialize;
use authbridge_protocol::jsonrpc::codes;
use authbridge_protocol::{
    ErrorObject, Message, Notification, Request, RequestId, RequestMethod, Response,
};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{self, OwnedPermit};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::framing::{Frame, FrameReader};
use super::handle::{After, Body, Outgoing, PeerHandle, RequestContext, Shared};
use super::{writer, DispatchKind, PeerConfig, Service};

/// Room in the writer's queue beyond one reserved slot per request in flight.
const QUEUE_SPARE: usize = 256;
/// Messages read ahead (to find the host's responses) while a barrier runs.
const HOLD_LIMIT: usize = 64;
/// How many times the reader lets other tasks run before answering -32001.
const PERMIT_RETRIES: usize = 4;
/// How long the final flush may take after shutdown.
const FLUSH_DEADLINE: Duration = Duration::from_millis(500);

/// Where the connection is in the handshake (contract §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifecycle {
    /// Only `initialize` is accepted.
    Uninitialized,
    /// `initialize` succeeded.
    Ready,
    /// The input is over and everything read has been dispatched.
    Closing,
}

/// A message read, or why a frame is not one (the error to answer with).
enum Incoming {
    Message(Message),
    Reject(Option<RequestId>, ErrorObject),
}

/// A barrier request or a host notification that runs before the next message.
struct Blocking {
    task: JoinHandle<bool>,
    initialize: bool,
}

enum Wake {
    Closed,
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
    held: VecDeque<Incoming>,
}

pub(crate) async fn serve<R, W>(
    reader: R,
    writer: W,
    service: Arc<dyn Service>,
    config: PeerConfig,
) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Every request reserves its response's slot before it starts, so the queue holds
    // them all plus room for notifications and errors.
    let capacity = config.max_in_flight_requests.saturating_add(QUEUE_SPARE);
    let (tx, rx) = mpsc::channel(capacity.min(Semaphore::MAX_PERMITS));
    let shared = Arc::new(Shared::new(tx));
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
        held: VecDeque::new(),
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
    /// Reads and dispatches until end of input, a read error, or the output failing.
    async fn read_until_closed(&mut self) -> io::Result<()> {
        loop {
            if self.blocking.is_none() {
                if let Some(incoming) = self.held.pop_front() {
                    self.dispatch(incoming).await;
                    continue;
                }
            }
            if self.blocking.is_none() || self.held.len() < HOLD_LIMIT {
                if let Some(incoming) = self.next_incoming() {
                    self.accept(incoming).await;
                    continue;
                }
            }
            let can_read = self.held.len() < HOLD_LIMIT;
            let cancel = &self.shared.cancel;
            let wake = match self.blocking.as_mut() {
                Some(blocking) => tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Wake::Closed,
                    done = &mut blocking.task => Wake::Done(done),
                    read = self.frames.fill(), if can_read => Wake::Read(read),
                },
                None => tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Wake::Closed,
                    read = self.frames.fill() => Wake::Read(read),
                },
            };
            match wake {
                Wake::Closed => return Ok(()),
                Wake::Read(Ok(true)) => {}
                Wake::Read(Ok(false)) => return Ok(()),
                Wake::Read(Err(e)) => return Err(e),
                Wake::Done(done) => {
                    let blocking = self.blocking.take().expect("a blocking task finished");
                    self.finish_blocking(blocking.initialize, done);
                }
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
            let next = match self.held.pop_front() {
                Some(incoming) => Some(incoming),
                None => self.next_incoming(),
            };
            match next {
                Some(incoming) => self.dispatch(incoming).await,
                None => break,
            }
        }
        self.lifecycle = Lifecycle::Closing;
        let _all_done = self.permits.acquire_many(self.max_in_flight).await;
    }

    /// Cuts and classifies the next frame from what has been read.
    fn next_incoming(&mut self) -> Option<Incoming> {
        let frame = self.frames.next_frame()?;
        let incoming = classify(frame, &self.shared, self.max_message_bytes);
        if !self.framing_known {
            if let Some(framing) = self.frames.framing() {
                self.shared.set_framing(framing);
                self.framing_known = true;
            }
        }
        Some(incoming)
    }

    /// Responses are routed at once; anything else waits behind a running barrier.
    async fn accept(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Message(Message::Response(response)) => self.route(response),
            other if self.blocking.is_some() => self.held.push_back(other),
            other => self.dispatch(other).await,
        }
    }

    async fn dispatch(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Reject(id, error) => self.reject(id, error).await,
            Incoming::Message(Message::Response(response)) => self.route(response),
            Incoming::Message(Message::Notification(note)) => self.notification(note),
            Incoming::Message(Message::Request(request)) => self.request(request).await,
        }
    }

    fn route(&self, response: Response) {
        let routed = match response.id {
            Some(RequestId::Integer(id)) => self.shared.pending.complete(id, response.result),
            _ => false,
        };
        if !routed {
            tracing::debug!(id = ?response.id, "ignored a response that matches no pending request");
        }
    }

    fn notification(&mut self, note: Notification) {
        if self.lifecycle != Lifecycle::Ready {
            tracing::debug!(method = %note.method, "ignored a notification before initialize");
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

    async fn request(&mut self, request: Request) {
        let initialize = request.method == Initialize::NAME;
        match (self.lifecycle, initialize) {
            (Lifecycle::Uninitialized, false) => {
                let error = ErrorObject::invalid_request("Not initialized");
                self.reject(Some(request.id), error).await;
            }
            (Lifecycle::Ready, true) => {
                let error = ErrorObject::invalid_request("Already initialized");
                self.reject(Some(request.id), error).await;
            }
            (Lifecycle::Closing, _) => {
                tracing::debug!(method = %request.method, "ignored a request after shutdown");
            }
            (Lifecycle::Uninitialized, true) => self.start_barrier(request, true).await,
            (Lifecycle::Ready, false) => match self.service.dispatch_kind(&request.method) {
                DispatchKind::Barrier => self.start_barrier(request, false).await,
                DispatchKind::Concurrent => self.start_concurrent(request).await,
            },
        }
    }

    /// Reserves the response's slot in the output queue (waiting while the host does not
    /// read), then starts the handler if the in-flight limit allows, else answers -32001.
    async fn start_concurrent(&mut self, request: Request) {
        let Some(slot) = self.shared.reserve().await else {
            return;
        };
        match self.permit().await {
            Some(permit) => {
                let (shared, service) = (self.shared.clone(), self.service.clone());
                tokio::spawn(run_request(shared, service, request, slot, Some(permit)));
            }
            None => {
                let response = Response::error(Some(request.id), ErrorObject::overloaded());
                slot.send(self.shared.outgoing(Body::One(Message::Response(response))));
            }
        }
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

    async fn start_barrier(&mut self, request: Request, initialize: bool) {
        let Some(slot) = self.shared.reserve().await else {
            return;
        };
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

    async fn reject(&self, id: Option<RequestId>, error: ErrorObject) {
        let response = Message::Response(Response::error(id, error));
        self.shared.send(Body::One(response)).await;
    }
}

/// Parses a frame; the first frame that is a JSON object decides the `jsonrpc` dialect.
fn classify(frame: Frame<'_>, shared: &Shared, max_message_bytes: usize) -> Incoming {
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

/// Runs one request's handler and puts its response, then what it queued to follow, in
/// the reserved slot; gives the in-flight permit back as soon as the handler returns.
/// A panicking handler answers -32603. Returns whether the handler succeeded.
async fn run_request(
    shared: Arc<Shared>,
    service: Arc<dyn Service>,
    request: Request,
    slot: OwnedPermit<Outgoing>,
    permit: Option<OwnedSemaphorePermit>,
) -> bool {
    let Request { id, method, params } = request;
    let after = Arc::new(Mutex::new(After::default()));
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
    drop(permit);
    let succeeded = result.is_ok();
    let After { notes, responded } =
        std::mem::take(&mut *after.lock().unwrap_or_else(|p| p.into_inner()));
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
