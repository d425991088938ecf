//! `authbridge-latency`: turn latency on the thread/turn surface, authbridge against the
//! Codex 0.171 app-server, side by side in one run. For each turn: from `turn/start`
//! written to the first `item/agentMessage/delta` read, and to `turn/completed` read.
//!
//! Both servers run at once against the same loopback provider (the test kit's mock: a
//! fixed Responses API stream with the `response.output_item.*` events Codex needs to build
//! its agent message; Codex also gets the kit's ChatGPT backend stand-in), signed in with
//! the same external ChatGPT token, each turn on a fresh thread. Turns alternate between the
//! servers (authbridge, Codex, authbridge, …) so that noise from other work on the machine
//! falls on both alike; the medians are compared.
//!
//! Codex: `--codex PATH`, or `--install-codex` to install `@openai/codex@0.171.0` from npm
//! into the target directory (as the `codex_*` tests do). Without either, only authbridge
//! runs (what `scripts/bench --smoke` does).

#![allow(clippy::print_stdout)] // the report is this tool's output

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use authbridge_testkit::chatgpt_backend::ChatGptBackend;
use authbridge_testkit::codex::{codex_bin, codex_overrides};
use authbridge_testkit::jwt::Jwt;
use authbridge_testkit::{MockOptions, MockProvider};
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

const ACCOUNT: &str = "org-latency";
/// Deadline of any one message the client waits for.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(
    about = "Turn latency: turn/start → first delta and → turn/completed, authbridge vs Codex"
)]
struct Args {
    /// Measured turns per server (after the warm-up turns).
    #[arg(long, default_value_t = 20)]
    turns: usize,
    /// Warm-up turns per server, not measured.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Deltas per streamed answer.
    #[arg(long, default_value_t = 10)]
    deltas: usize,
    /// Pause before each delta, in milliseconds (0: all at once).
    #[arg(long, default_value_t = 0)]
    delta_delay_ms: u64,
    /// The authbridge binary (default: AUTHBRIDGE_BIN, else the debug build).
    #[arg(long)]
    server: Option<PathBuf>,
    /// A Codex 0.171 binary to compare with.
    #[arg(long)]
    codex: Option<PathBuf>,
    /// Install Codex 0.171.0 from npm into the target directory and compare with it.
    #[arg(long)]
    install_codex: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// One server and the client's side of its pipes.
struct Peer {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: i64,
    _home: tempfile::TempDir,
}

impl Peer {
    fn spawn(
        name: &'static str,
        mut cmd: tokio::process::Command,
        home: tempfile::TempDir,
    ) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        Ok(Self {
            name,
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            next_id: 0,
            _home: home,
        })
    }

    async fn write(&mut self, v: &Value) -> Result<()> {
        let mut line = v.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Reads messages until `pred` holds for one; answers nothing (no server requests are
    /// expected: the token is valid).
    async fn read_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .with_context(|| format!("{}: no {what} within {WAIT:?}", self.name))??
                .with_context(|| format!("{}: stdout closed before {what}", self.name))?;
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if pred(&v) {
                return Ok(v);
            }
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(&json!({"id": id, "method": method, "params": params}))
            .await?;
        let response = self
            .read_until(method, |m| m["id"] == id && m.get("method").is_none())
            .await?;
        if let Some(e) = response.get("error") {
            bail!("{}: {method} failed: {e}", self.name);
        }
        Ok(response["result"].clone())
    }

    async fn prepare(&mut self, token: &str) -> Result<()> {
        self.call(
            "initialize",
            json!({"clientInfo": {"name": "latency_bench", "title": "Latency bench", "version": "0.1.0"},
                   "capabilities": {"experimentalApi": true}}),
        )
        .await?;
        self.write(&json!({"method": "initialized"})).await?;
        self.call(
            "account/login/start",
            json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": ACCOUNT, "chatgptPlanType": "pro"}),
        )
        .await?;
        Ok(())
    }

    /// One turn on a fresh thread: (to first delta, to turn/completed).
    async fn turn(&mut self, expected_deltas: usize) -> Result<(Duration, Duration)> {
        let thread = self
            .call("thread/start", json!({"ephemeral": true}))
            .await?;
        let thread_id = thread["thread"]["id"]
            .as_str()
            .context("thread.id")?
            .to_owned();
        let id = self.next_id;
        self.next_id += 1;
        let start = Instant::now();
        self.write(&json!({"id": id, "method": "turn/start", "params": {
            "threadId": thread_id, "input": [{"type": "text", "text": "Say something", "text_elements": []}]}}))
            .await?;
        let mut first = None;
        let mut deltas = 0;
        loop {
            let m = self
                .read_until("turn/completed", |m| {
                    m["params"]["threadId"] == thread_id.as_str()
                        && matches!(
                            m["method"].as_str(),
                            Some("item/agentMessage/delta" | "turn/completed")
                        )
                })
                .await?;
            if m["method"] == "item/agentMessage/delta" {
                deltas += 1;
                first.get_or_insert_with(|| start.elapsed());
                continue;
            }
            let done = start.elapsed();
            if m["params"]["turn"]["status"] != "completed" {
                bail!("{}: turn ended {}", self.name, m["params"]["turn"]);
            }
            if deltas != expected_deltas {
                bail!("{}: {deltas} deltas, expected {expected_deltas}", self.name);
            }
            let first = first.context("no delta")?;
            return Ok((first, done));
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.turns == 0 {
        bail!("--turns must be at least 1");
    }
    let token = Jwt::new()
        .email("latency@example.com")
        .account(ACCOUNT)
        .plan("pro")
        .exp_in(Duration::from_secs(24 * 3600))
        .mint();
    let provider = MockProvider::start(MockOptions {
        deltas: (0..args.deltas).map(|i| format!("word{i} ")).collect(),
        delta_delay: Duration::from_millis(args.delta_delay_ms),
        ..MockOptions::with_tokens([token.clone()])
    })
    .await?;
    let backend = ChatGptBackend::start(ACCOUNT).await?;
    let provider_url = provider.url();

    let server = args
        .server
        .clone()
        .unwrap_or_else(authbridge_testkit::server::authbridge_bin);
    let home = tempfile::tempdir()?;
    let mut cmd = tokio::process::Command::new(&server);
    cmd.args(["app-server", "--listen", "stdio://", "--home"])
        .arg(home.path())
        .args([
            "-c",
            &format!("model_providers.openai.base_url={provider_url}"),
        ])
        .args([
            "-c",
            &format!("model_providers.openai.chatgpt_base_url={provider_url}"),
        ])
        .env_remove("AUTHBRIDGE_API_KEY")
        .env_remove("RUST_LOG");
    let mut peers = vec![Peer::spawn("authbridge", cmd, home)?];

    let codex = match (&args.codex, args.install_codex) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(tokio::task::spawn_blocking(codex_bin).await?),
        (None, false) => None,
    };
    if let Some(codex) = &codex {
        let home = tempfile::tempdir()?;
        let mut cmd = tokio::process::Command::new(codex);
        cmd.arg("app-server");
        for o in codex_overrides(&backend.url(), &provider_url) {
            cmd.args(["-c", &o]);
        }
        cmd.env("CODEX_HOME", home.path())
            .env_remove("OPENAI_API_KEY")
            .current_dir(home.path());
        peers.push(Peer::spawn("codex app-server", cmd, home)?);
    }
    for p in &mut peers {
        p.prepare(&token).await?;
    }
    let mut first: Vec<Vec<Duration>> = vec![Vec::new(); peers.len()];
    let mut done: Vec<Vec<Duration>> = vec![Vec::new(); peers.len()];
    for round in 0..args.warmup + args.turns {
        for (i, p) in peers.iter_mut().enumerate() {
            let (f, d) = p.turn(args.deltas).await?;
            if round >= args.warmup {
                first[i].push(f);
                done[i].push(d);
            }
        }
    }
    let results: Vec<Value> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"name": p.name, "turns": args.turns,
                   "first_delta_ms": ms(median(first[i].clone())),
                   "completed_ms": ms(median(done[i].clone()))})
        })
        .collect();
    for p in &mut peers {
        let _ = p.child.start_kill();
    }
    let ratio = |key: &str| {
        (results.len() == 2).then(|| {
            results[0][key].as_f64().unwrap_or(0.0) / results[1][key].as_f64().unwrap_or(1.0)
        })
    };
    let report = json!({
        "turns": args.turns, "warmup": args.warmup, "deltas": args.deltas, "delta_delay_ms": args.delta_delay_ms,
        "servers": results,
        "ratio_first_delta": ratio("first_delta_ms"),
        "ratio_completed": ratio("completed_ms"),
    });
    if args.json {
        println!("{report}");
    } else {
        for r in report["servers"].as_array().into_iter().flatten() {
            println!(
                "{:<18} first delta {:>8.2} ms   turn/completed {:>8.2} ms   (median of {} turns)",
                r["name"].as_str().unwrap_or("?"),
                r["first_delta_ms"].as_f64().unwrap_or(0.0),
                r["completed_ms"].as_f64().unwrap_or(0.0),
                args.turns
            );
        }
        if let (Some(a), Some(b)) = (
            report["ratio_first_delta"].as_f64(),
            report["ratio_completed"].as_f64(),
        ) {
            println!("authbridge ÷ codex: first delta {a:.3}×, turn/completed {b:.3}×");
        }
    }
    Ok(())
}
