//! One server process on real pipes: spawn it, write frames, read frames with deadlines.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use authbridge_testkit::wire::{Decoder, Frame, Framing};

/// How to start the server under test.
#[derive(Clone, Debug)]
pub enum Launch {
    /// Program and arguments (after `--` on the kit's command line).
    Argv(Vec<String>),
    /// A command line run with `sh -c` (the peer, from `AUTHBRIDGE_CONFORMANCE_PEER`).
    Shell(String, PeerOptions),
}

/// How the peer is judged.
#[derive(Clone, Debug, Default)]
pub struct PeerOptions {
    /// Methods of its notifications to drop (`--peer-ignore`).
    pub ignore: Vec<String>,
    /// Extra members in its objects are not a mismatch (`--peer-allow-extra-members`).
    pub allow_extra: bool,
}

impl Launch {
    /// Methods this server's messages are dropped for, on top of the scenario's.
    pub fn ignore(&self) -> &[String] {
        match self {
            Launch::Argv(_) => &[],
            Launch::Shell(_, peer) => &peer.ignore,
        }
    }

    /// Whether extra members in this server's objects are allowed.
    pub fn allow_extra(&self) -> bool {
        matches!(self, Launch::Shell(_, peer) if peer.allow_extra)
    }

    /// The command with `{home}`, `{provider_url}` and `{backend_url}` replaced, plus
    /// extra arguments.
    pub fn command(
        &self,
        home: &str,
        provider_url: &str,
        backend_url: &str,
        extra: &[String],
    ) -> Command {
        let fill = |s: &str| {
            s.replace("{home}", home)
                .replace("{provider_url}", provider_url)
                .replace("{backend_url}", backend_url)
        };
        match self {
            Launch::Argv(argv) => {
                let mut cmd = Command::new(fill(&argv[0]));
                cmd.args(argv[1..].iter().map(|a| fill(a))).args(extra);
                cmd
            }
            Launch::Shell(line, _) => {
                let mut full = fill(line);
                for e in extra {
                    full.push_str(&format!(" '{}'", e.replace('\'', r"'\''")));
                }
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(format!("exec {full}"));
                cmd
            }
        }
    }
}

/// What the reader task saw.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    Eof,
}

/// A running server and the kit's side of its pipes.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Messages received and not yet consumed by a step, in arrival order.
    pub inbox: VecDeque<Value>,
    /// Methods dropped on arrival.
    ignore: Vec<String>,
    /// The server closed its stdout.
    pub eof: bool,
    stderr: Arc<Mutex<String>>,
    /// The framing of the server's output, once detected.
    framing: Arc<Mutex<Option<Framing>>>,
}

impl Session {
    /// Spawns `cmd` with piped stdio (stderr is kept, the last 4 KiB).
    pub fn spawn(mut cmd: Command, ignore: Vec<String>) -> std::io::Result<Self> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let (tx, events) = mpsc::unbounded_channel();
        let framing = Arc::new(Mutex::new(None));
        if let Some(mut out) = child.stdout.take() {
            let detected = framing.clone();
            tokio::spawn(async move {
                let mut decoder = Decoder::default();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match out.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let frames = decoder.push(&buf[..n]);
                            *detected.lock().unwrap_or_else(|p| p.into_inner()) = decoder.framing();
                            for frame in frames {
                                let _ = tx.send(Event::Frame(frame));
                            }
                        }
                    }
                }
                let _ = tx.send(Event::Eof);
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let keep = stderr.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut s = keep.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if s.len() > 4096 {
                        let cut = s.len() - 4096;
                        let cut = (cut..s.len())
                            .find(|i| s.is_char_boundary(*i))
                            .unwrap_or(s.len());
                        s.drain(..cut);
                    }
                }
            });
        }
        Ok(Self {
            child,
            stdin,
            events,
            inbox: VecDeque::new(),
            ignore,
            eof: false,
            stderr,
            framing,
        })
    }

    /// Writes bytes to the server's stdin.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin is already closed")?;
        stdin
            .write_all(bytes)
            .await
            .map_err(|e| format!("writing to the server failed: {e}"))?;
        stdin
            .flush()
            .await
            .map_err(|e| format!("writing to the server failed: {e}"))
    }

    /// Closes the server's stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the next frame until `deadline`; `Ok(false)` when the deadline passed.
    /// Messages go to the inbox; a frame that is not JSON is an error; so is end of output
    /// when `eof_is_error`.
    pub async fn pull(&mut self, deadline: Instant) -> Result<bool, String> {
        if self.eof {
            return Err("the server closed its stdout".into());
        }
        match timeout_at(deadline, self.events.recv()).await {
            Err(_) => Ok(false),
            Ok(None) | Ok(Some(Event::Eof)) => {
                self.eof = true;
                Err("the server closed its stdout".into())
            }
            Ok(Some(Event::Frame(Frame::NotJson(bytes)))) => Err(format!(
                "the server wrote something that is not a JSON message to stdout: {:?}",
                cut(&String::from_utf8_lossy(&bytes), 200)
            )),
            Ok(Some(Event::Frame(Frame::Message(v)))) => {
                let method = v.get("method").and_then(Value::as_str);
                if !method.is_some_and(|m| self.ignore.iter().any(|i| i == m)) {
                    self.inbox.push_back(v);
                }
                Ok(true)
            }
        }
    }

    /// Waits for the process to exit; its status code, or `None` at the deadline.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<Option<i32>> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(Ok(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// The framing the server answered in (`None` before it wrote anything).
    pub fn output_framing(&self) -> Option<Framing> {
        *self.framing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tail of what the server wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Closes stdin, gives the server 2 s to exit, then kills it.
    pub async fn finish(mut self) {
        self.close_stdin();
        if self.wait_exit(Duration::from_secs(2)).await.is_none() {
            let _ = self.child.kill().await;
        }
    }
}

/// At most `max` characters of `s`.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
