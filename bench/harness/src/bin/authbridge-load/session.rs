//! One server process under load: spawned with real pipes, taken through `initialize`, then fed
//! requests with a fixed number in flight while answers are matched to requests by id.
//!
//! One task does both directions: it tops the window up to W requests, writes them in one
//! batch, reads whatever answers have arrived, and repeats. With at most W small messages
//! outstanding the pipes never fill, so neither side can block the other, and the client adds
//! no thread hops or locks of its own to what is measured.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::framing::{Decoder, Framing};
use crate::scan::scan;

/// The id of the `initialize` request; measured requests count up from 1.
const INITIALIZE_ID: u64 = 0;

/// What to send once the server is ready, and for how long.
pub struct Load {
    pub method: String,
    /// The request's `params`, as JSON text.
    pub params: String,
    pub in_flight: usize,
    /// Requests measured after the warm-up, unless `duration` is set.
    pub requests: u64,
    pub duration: Option<Duration>,
    /// Answers received before measuring starts.
    pub warmup: u64,
}

/// Throughput and latency of the measured part of a run.
pub struct Measured {
    pub answers: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latency of every measured request, in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
}

impl Measured {
    /// Answers per second; NaN when every measured answer came in one read (too few to time).
    pub fn per_second(&self) -> f64 {
        if self.elapsed.is_zero() {
            return f64::NAN;
        }
        self.answers as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1), in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies_ns.len() - 1) as f64 * q).round() as usize;
        self.latencies_ns[rank] as f64 / 1000.0
    }
}

/// A running server and our ends of its pipes.
pub struct Session {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: ChildStdout,
    decoder: Decoder,
    out: Vec<u8>,
    framing: Framing,
    /// The deadline of every single wait: a write, a read, the exit.
    timeout: Duration,
}

impl Session {
    /// Spawns `command` with piped stdin and stdout (stderr inherited or discarded).
    pub fn spawn(
        command: &[String],
        framing: Framing,
        timeout: Duration,
        show_stderr: bool,
    ) -> anyhow::Result<Self> {
        let (program, args) = command
            .split_first()
            .context("no server command given after --")?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if show_stderr {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {program:?}"))?;
        let pid = child.id().context("the server exited at once")?;
        let stdin = child.stdin.take().context("no stdin pipe")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        Ok(Session {
            child,
            pid,
            stdin,
            stdout,
            decoder: Decoder::new(framing),
            out: Vec::with_capacity(64 * 1024),
            framing,
            timeout,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `initialize` and waits for its answer, then sends `initialized`.
    pub async fn initialize(&mut self, params: &str) -> anyhow::Result<()> {
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{INITIALIZE_ID},"method":"initialize","params":{params}}}"#
        );
        self.framing.encode(request.as_bytes(), &mut self.out);
        self.flush().await?;
        loop {
            self.fill()
                .await
                .context("waiting for the answer to initialize")?;
            while let Some(body) = self.decoder.next_message()? {
                let message = scan(body);
                if message.has_method {
                    let reply = message.raw_id.map(null_reply);
                    if let Some(reply) = reply {
                        self.framing.encode(&reply, &mut self.out);
                    }
                    continue;
                }
                if message.numeric_id() == Some(INITIALIZE_ID) {
                    if message.has_error {
                        bail!("initialize failed: {}", String::from_utf8_lossy(body));
                    }
                    let initialized = br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
                    self.framing.encode(initialized, &mut self.out);
                    return self.flush().await;
                }
            }
            self.flush().await?;
        }
    }

    /// Runs the load: keeps `in_flight` requests outstanding until enough answers came back.
    pub async fn pipeline(&mut self, load: &Load) -> anyhow::Result<Measured> {
        let window = load.in_flight.max(1);
        let prefix = br#"{"jsonrpc":"2.0","id":"#;
        let suffix = format!(
            r#","method":{},"params":{}}}"#,
            serde_json::to_string(&load.method)?,
            load.params
        );
        let mut body = Vec::with_capacity(prefix.len() + 20 + suffix.len());
        let mut sent_at = vec![Instant::now(); window];
        let first_id = INITIALIZE_ID + 1;
        let mut next_id = first_id;
        let (mut outstanding, mut received, mut errors) = (0usize, 0u64, 0u64);
        let mut latencies = Vec::with_capacity(if load.duration.is_some() {
            1 << 20
        } else {
            load.requests as usize
        });
        let mut started = (load.warmup == 0).then(Instant::now);
        let mut last_answer = Instant::now();
        let total = load.warmup + load.requests;
        loop {
            let now = Instant::now();
            let sending = match (load.duration, started) {
                (Some(duration), Some(started)) => now < started + duration,
                _ => true,
            };
            let limit = if load.duration.is_some() {
                u64::MAX
            } else {
                first_id + total
            };
            while sending && outstanding < window && next_id < limit {
                body.clear();
                body.extend_from_slice(prefix);
                body.extend_from_slice(next_id.to_string().as_bytes());
                body.extend_from_slice(suffix.as_bytes());
                self.framing.encode(&body, &mut self.out);
                sent_at[(next_id % window as u64) as usize] = now;
                next_id += 1;
                outstanding += 1;
            }
            self.flush().await?;
            if outstanding == 0 {
                break;
            }
            self.fill().await.with_context(|| {
                format!("waiting for answers ({received} received, {outstanding} outstanding)")
            })?;
            let now = Instant::now();
            while let Some(message_body) = self.decoder.next_message()? {
                let message = scan(message_body);
                if message.has_method {
                    if let Some(reply) = message.raw_id.map(null_reply) {
                        self.framing.encode(&reply, &mut self.out);
                    }
                    continue;
                }
                let id = match message.numeric_id() {
                    Some(id) if (first_id..next_id).contains(&id) => id,
                    _ => bail!(
                        "an answer to no request we sent: {}",
                        String::from_utf8_lossy(message_body)
                    ),
                };
                outstanding -= 1;
                received += 1;
                last_answer = now;
                if received > load.warmup {
                    errors += u64::from(message.has_error);
                    latencies
                        .push((now - sent_at[(id % window as u64) as usize]).as_nanos() as u64);
                } else if received == load.warmup {
                    started = Some(now);
                }
            }
        }
        latencies.sort_unstable();
        let started = started.context("the run ended before the warm-up did")?;
        Ok(Measured {
            answers: latencies.len() as u64,
            errors,
            elapsed: last_answer - started,
            latencies_ns: latencies,
        })
    }

    /// Closes the server's stdin, gives it the timeout to exit, then kills it.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        drop(self.stdin);
        let grace = self.timeout.min(Duration::from_secs(2));
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await.context("killing the server")?;
        }
        Ok(())
    }

    /// Writes everything queued in `out`.
    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        tokio::time::timeout(self.timeout, self.stdin.write_all(&self.out))
            .await
            .context("the server stopped reading its stdin")?
            .context("writing to the server")?;
        self.out.clear();
        Ok(())
    }

    /// Reads at least one more chunk of the server's stdout.
    async fn fill(&mut self) -> anyhow::Result<()> {
        let n = tokio::time::timeout(self.timeout, self.stdout.read(self.decoder.read_space()))
            .await
            .with_context(|| format!("no output from the server within {:?}", self.timeout))?
            .context("reading from the server")?;
        if n == 0 {
            bail!("the server closed its stdout");
        }
        self.decoder.advance(n);
        Ok(())
    }
}

/// A `null` result for a request the server sent us (for example a capability registration).
fn null_reply(raw_id: &[u8]) -> Vec<u8> {
    [
        br#"{"jsonrpc":"2.0","id":"#.as_slice(),
        raw_id,
        br#","result":null}"#,
    ]
    .concat()
}
