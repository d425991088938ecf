//! The base every mock HTTP server of the kit stands on: an axum app on 127.0.0.1:0 with
//! `TCP_NODELAY`, a shutdown that handlers can wait on (a stalled answer ends when the
//! server is dropped), the request log with a counter to wait on, and the response
//! builders the mocks share.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tokio::sync::{watch, Notify};

/// A bound, not yet serving, loopback listener: its address and shutdown signal are known
/// before the app (whose state may need them) is built.
pub struct Binding {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Binding {
    /// Binds 127.0.0.1 on a free port.
    pub async fn new() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            shutdown: watch::channel(false).0,
        })
    }

    /// The address it is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves once the server is dropped: what a handler that never answers waits on.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown(self.shutdown.subscribe())
    }

    /// Serves `app` until the returned server is dropped. Small writes (SSE deltas) go out
    /// at once: without `TCP_NODELAY` Nagle's algorithm and the client's delayed ACK add
    /// ~40 ms to a reused connection, and latency figures would measure that.
    pub fn serve(self, app: Router) -> LoopbackServer {
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let mut stop = self.shutdown.subscribe();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            let _ = serve.await;
        });
        LoopbackServer {
            addr: self.addr,
            shutdown: self.shutdown,
            task,
        }
    }
}

/// The shutdown signal of one server (see [`Binding::shutdown`]).
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Waits until the server is dropped.
    pub async fn wait(&self) {
        let mut stop = self.0.clone();
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// A serving loopback server. Dropping it shuts it down: waiting handlers are released
/// and the accept loop is aborted.
pub struct LoopbackServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl LoopbackServer {
    /// Binds 127.0.0.1:0 and serves `app` (when the app needs neither the address nor the
    /// shutdown signal).
    pub async fn start(app: Router) -> std::io::Result<Self> {
        Ok(Binding::new().await?.serve(app))
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

/// What a mock records of each request, in arrival order, with a count to wait on.
#[derive(Debug)]
pub struct RequestLog<T> {
    entries: Mutex<Vec<T>>,
    arrived: Notify,
}

impl<T> Default for RequestLog<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        }
    }
}

impl<T: Clone> RequestLog<T> {
    /// Records one request and wakes the waiters.
    pub fn push(&self, entry: T) {
        lock(&self.entries).push(entry);
        self.arrived.notify_waiters();
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<T> {
        lock(&self.entries).clone()
    }

    /// Number of requests so far.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// True before the first request.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least `n` requests arrived; false at the deadline.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if self.len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.len() >= n;
            }
        }
    }
}

/// Locks a mutex, poisoned or not: a panicking handler must not take the mock down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A response with this status (500 if it is not one), `Content-Type` and body.
pub fn respond(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .body(body.into())
        .unwrap_or_default()
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> Response {
    respond(status, "application/json", body.to_string())
}
