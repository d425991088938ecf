//! The host simulator: runs the real server as a child process over real pipes and speaks
//! the protocol to it, answering its refresh requests as a `RefreshPolicy` says.
//!
//! One task reads stdout: responses are routed to their waiting `request` by id,
//! notifications are queued, `account/chatgptAuthTokens/refresh` requests are recorded and
//! answered by the policy (other server requests get -32601). Every wait has a deadline.

use std::collections::{HashMap, VecDeque};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authbridge_protocol::ErrorObject;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, Notify};

use crate::refresh_policy::{RefreshPolicy, RefreshRequest};
use crate::transcript::{Direction, Transcript};
use crate::wire::{encode, Framing};

mod options;
mod reader;

pub use options::{split_response, HostError, HostOptions, StderrMode};

/// The method of the server→host refresh request.
pub const REFRESH_METHOD: &str = "account/chatgptAuthTokens/refresh";
/// Deadline of `request` and `initialize`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Inbox {
    all: Vec<Value>,
    notifications: VecDeque<Value>,
    eof: bool,
}

struct Shared {
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    inbox: Mutex<Inbox>,
    changed: Notify,
    policy: Mutex<RefreshPolicy>,
    refreshes: Mutex<Vec<RefreshRequest>>,
    stdout: Mutex<Vec<u8>>,
    stderr: Mutex<Vec<u8>>,
    not_json: Mutex<Vec<Vec<u8>>>,
    transcript: Transcript,
    start: Instant,
    framing: Framing,
    jsonrpc: bool,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

/// A running server and the host side of its connection. Dropping it kills the server.
pub struct Host {
    child: Child,
    shared: Arc<Shared>,
    next_id: AtomicI64,
}

impl Host {
    /// Spawns `cmd` with piped stdin/stdout and starts reading.
    pub fn spawn(mut cmd: Command, opts: HostOptions) -> std::io::Result<Self> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        cmd.stderr(match opts.stderr {
            StderrMode::Capture | StderrMode::Closed => Stdio::piped(),
            StderrMode::Inherit => Stdio::inherit(),
        });
        let mut child = cmd.spawn()?;
        if opts.stderr == StderrMode::Closed {
            drop(child.stderr.take());
        }
        let echo = opts.echo_transcript
            || std::env::var_os("AUTHBRIDGE_TRANSCRIPT").is_some_and(|v| v == "1");
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            inbox: Mutex::new(Inbox::default()),
            changed: Notify::new(),
            policy: Mutex::new(opts.refresh),
            refreshes: Mutex::new(Vec::new()),
            stdout: Mutex::new(Vec::new()),
            stderr: Mutex::new(Vec::new()),
            not_json: Mutex::new(Vec::new()),
            transcript: Transcript::new(echo),
            start: Instant::now(),
            framing: opts.framing,
            jsonrpc: opts.jsonrpc,
            stdin: tokio::sync::Mutex::new(child.stdin.take()),
        });
        if let Some(mut stderr) = child.stderr.take() {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                    lock(&shared.stderr).extend_from_slice(&buf[..n]);
                }
            });
        }
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(reader::read_stdout(stdout, shared.clone(), opts.raw));
        }
        Ok(Self {
            child,
            shared,
            next_id: AtomicI64::new(0),
        })
    }

    /// The transcript so far.
    pub fn transcript(&self) -> String {
        self.shared.transcript.text()
    }

    /// Adds a free-form line to the transcript.
    pub fn note(&self, text: &str) {
        self.shared.transcript.note(text);
    }

    /// Replaces the refresh policy for later requests.
    pub fn set_refresh_policy(&self, policy: RefreshPolicy) {
        *lock(&self.shared.policy) = policy;
    }

    /// Every refresh request received so far.
    pub fn refresh_requests(&self) -> Vec<RefreshRequest> {
        lock(&self.shared.refreshes).clone()
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout_bytes(&self) -> Vec<u8> {
        lock(&self.shared.stdout).clone()
    }

    /// Frames the server wrote that were not JSON (should always be empty).
    pub fn non_protocol_output(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.not_json).clone()
    }

    /// The captured stderr so far (empty with `StderrMode::Inherit` or `Closed`).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.shared.stderr)).into_owned()
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Writes arbitrary bytes to the server's stdin.
    pub async fn write_raw(&self, bytes: &[u8]) -> Result<(), HostError> {
        write_stdin(&self.shared, bytes).await
    }

    /// Writes one message exactly as given (framed, recorded in the transcript).
    pub async fn send(&self, message: &Value) -> Result<(), HostError> {
        send(&self.shared, message.clone()).await
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), HostError> {
        let mut message = json!({"method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        send(&self.shared, message).await
    }

    /// Sends a request and waits for its response message (the whole object).
    pub async fn call(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, HostError> {
        let id = json!(self.next_id.fetch_add(1, Ordering::SeqCst));
        let mut message = json!({"id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.call_message(message, timeout).await
    }

    /// Sends a request message built by the caller (any id) and waits for its response.
    pub async fn call_message(
        &self,
        message: Value,
        timeout: Duration,
    ) -> Result<Value, HostError> {
        let method = message["method"].as_str().unwrap_or("?").to_owned();
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id_key(&message["id"]), tx);
        send(&self.shared, message).await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(HostError::Closed { method }),
            Err(_) => Err(HostError::Timeout {
                method,
                after: timeout,
            }),
        }
    }

    /// Sends a request; `Ok(result)` or `Err(error object)`, within the deadline.
    pub async fn try_request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Result<Value, ErrorObject>, HostError> {
        let response = self.call(method, Some(params), timeout).await?;
        Ok(split_response(response))
    }

    /// Sends a request with the default 5 s deadline.
    ///
    /// # Panics
    /// If no response comes (the test fails with the method's name and the server's stderr).
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ErrorObject> {
        match self.try_request(method, params, DEFAULT_TIMEOUT).await {
            Ok(r) => r,
            Err(e) => panic!(
                "{e}\n--- transcript ---\n{}\n--- stderr ---\n{}",
                self.transcript(),
                self.stderr_text()
            ),
        }
    }

    /// `initialize` with a client name, then the `initialized` notification.
    pub async fn initialize(&self, capabilities: Value) -> Result<Value, ErrorObject> {
        let params = json!({
            "clientInfo": {"name": "host_sim", "title": "Host simulator", "version": "0.1.0"},
            "capabilities": capabilities
        });
        let result = self.request("initialize", params).await?;
        let _ = self.notify("initialized", None).await;
        Ok(result)
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.shared.inbox).all.clone()
    }

    /// The messages received after the first `before` (see [`Host::messages`]).
    pub fn messages_after(&self, before: usize) -> Vec<Value> {
        let mut all = self.messages();
        all.split_off(before.min(all.len()))
    }

    /// Every notification received so far (consumed or not), in order.
    pub fn notifications(&self) -> Vec<Value> {
        lock(&self.shared.inbox)
            .all
            .iter()
            .filter(|m| m.get("method").is_some() && m.get("id").is_none())
            .cloned()
            .collect()
    }

    /// Polls `check` each time something arrives, until it gives a value, stdout closes
    /// (one last check) or the deadline passes.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&Shared) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(found) = check(&self.shared) {
                return Some(found);
            }
            if lock(&self.shared.inbox).eof {
                return check(&self.shared);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return check(&self.shared);
            }
        }
    }

    /// Takes the first not-yet-taken notification with this method, waiting up to `timeout`.
    pub async fn next_notification(&self, method: &str, timeout: Duration) -> Option<Value> {
        self.wait_until(timeout, |s| {
            let mut inbox = lock(&s.inbox);
            let i = inbox
                .notifications
                .iter()
                .position(|n| n["method"] == method)?;
            inbox.notifications.remove(i)
        })
        .await
    }

    /// Waits until some received message satisfies `pred` and returns it.
    pub async fn wait_message(
        &self,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        self.wait_until(timeout, |s| {
            lock(&s.inbox).all.iter().find(|m| pred(m)).cloned()
        })
        .await
    }

    /// Waits until `n` refresh requests have arrived; false at the deadline.
    pub async fn wait_refresh_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| (lock(&s.refreshes).len() >= n).then_some(()))
            .await
            .is_some()
    }

    /// Waits until the server's stdout holds at least `n` bytes; false at the deadline.
    pub async fn wait_stdout_len(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| (lock(&s.stdout).len() >= n).then_some(()))
            .await
            .is_some()
    }

    /// Closes the server's stdin (end of session).
    pub async fn close_stdin(&self) {
        if let Some(mut stdin) = self.shared.stdin.lock().await.take() {
            let _ = stdin.shutdown().await;
        }
    }

    /// Waits for the server to exit; `None` at the deadline.
    ///
    /// Also waits, within the same deadline, until everything the server wrote before it
    /// exited has been read: a process can exit with its last messages still in the pipe.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let status = tokio::time::timeout_at(deadline, self.child.wait())
            .await
            .ok()?
            .ok()?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.wait_until(left, |s| lock(&s.inbox).eof.then_some(()))
            .await?;
        Some(status)
    }

    /// Kills the server now.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

async fn send(shared: &Shared, mut message: Value) -> Result<(), HostError> {
    if shared.jsonrpc {
        if let Some(obj) = message.as_object_mut() {
            obj.insert("jsonrpc".into(), json!("2.0"));
        }
    }
    shared.transcript.record(Direction::Sent, &message);
    write_stdin(shared, &encode(shared.framing, &message)).await
}

/// Writes and flushes `bytes` on the server's stdin.
async fn write_stdin(shared: &Shared, bytes: &[u8]) -> Result<(), HostError> {
    let mut stdin = shared.stdin.lock().await;
    let Some(stdin) = stdin.as_mut() else {
        return Err(HostError::Io("stdin is closed".into()));
    };
    stdin
        .write_all(bytes)
        .await
        .map_err(|e| HostError::Io(e.to_string()))?;
    stdin
        .flush()
        .await
        .map_err(|e| HostError::Io(e.to_string()))
}
