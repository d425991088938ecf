//! `authbridge-storm`: the refresh-storm benchmark. N concurrent turns against the mock
//! provider (a fixed stream: 10 deltas, 1 ms apart), once with a valid token and once
//! with a token the provider rejects, so every turn needs the host's new tokens. Reports the wall time from the first `turn/start`
//! to the last `turn/completed` for both, their ratio, how many refresh requests the
//! host received (the design says exactly one), how many 401 answers the provider gave
//! (turns that start while the refresh runs wait for it instead of sending the refused
//! token, so far fewer than one per turn), and the CPU time of server and bench.
//!
//! Rounds alternate (plain, storm, plain, storm, ...) in one process run; the medians are
//! compared. A lean client reads the server's output directly, so the host side costs the
//! same in both.
//!
//! Turn latency against Codex is `authbridge-latency`'s job.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use authbridge_testkit::jwt::Jwt;
use authbridge_testkit::mock_provider::{MockOptions, MockProvider};
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::ChildStdin;
use tokio::sync::{oneshot, Notify};

#[derive(Parser, Debug)]
#[command(about = "Refresh-storm benchmark: N concurrent turns with and without a 401")]
struct Args {
    /// Concurrent turns per round.
    #[arg(long, default_value_t = 1000)]
    turns: usize,
    /// Rounds of each kind (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Deltas per streamed answer.
    #[arg(long, default_value_t = 10)]
    deltas: usize,
    /// Pause before each delta, in milliseconds.
    #[arg(long, default_value_t = 1)]
    delta_delay_ms: u64,
    /// The server binary (default: AUTHBRIDGE_BIN, else the debug build).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also run this many refresh cycles (expire the token, one turn, one host refresh)
    /// in one server process, and report its RSS and open fds before and after.
    #[arg(long, default_value_t = 0)]
    soak_cycles: usize,
}

#[derive(Default)]
struct Counters {
    completed: usize,
    failed: usize,
    refreshes: usize,
    last_completed: Option<Instant>,
    first_failure: Option<String>,
}

struct Round {
    soak: Option<Soak>,
    wall: Duration,
    /// The server's peak RSS (VmHWM) in KiB, read just before it was told to exit.
    peak_rss_kib: Option<u64>,
    /// CPU time (user + system) the server and this process (client and mock) spent
    /// from the first `turn/start` to the last `turn/completed`.
    cpu: (Duration, Duration),
    refreshes: usize,
    /// 401 answers the provider gave in the round.
    unauthorized: usize,
    completed: usize,
    failed: usize,
    first_failure: Option<String>,
}

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;

async fn write_line(stdin: &tokio::sync::Mutex<ChildStdin>, v: &Value) -> Result<()> {
    let mut line = serde_json::to_vec(v)?;
    line.push(b'\n');
    stdin.lock().await.write_all(&line).await?;
    Ok(())
}

async fn call(
    stdin: &tokio::sync::Mutex<ChildStdin>,
    pending: &Pending,
    id: i64,
    method: &str,
    params: Value,
) -> Result<Value> {
    let (tx, rx) = oneshot::channel();
    pending.lock().unwrap().insert(id, tx);
    write_line(
        stdin,
        &json!({"id": id, "method": method, "params": params}),
    )
    .await?;
    let answer = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .context("no answer within 10 s")??;
    if let Some(err) = answer.get("error") {
        bail!("{method} failed: {err}");
    }
    Ok(answer["result"].clone())
}

/// Starts `n` threads with pipelined `thread/start` requests (ids from `first_id`); their ids.
async fn start_threads(
    stdin: &tokio::sync::Mutex<ChildStdin>,
    pending: &Pending,
    first_id: i64,
    n: usize,
) -> Result<Vec<String>> {
    let mut batch = Vec::new();
    let mut answers = Vec::with_capacity(n);
    for i in 0..n {
        let id = first_id + i as i64;
        let (tx, rx) = oneshot::channel();
        pending.lock().unwrap().insert(id, tx);
        answers.push(rx);
        serde_json::to_writer(
            &mut batch,
            &json!({"id": id, "method": "thread/start", "params": {}}),
        )?;
        batch.push(b'\n');
    }
    stdin.lock().await.write_all(&batch).await?;
    let mut ids = Vec::with_capacity(n);
    for rx in answers {
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .context("no thread/start answer within 30 s")??;
        let id = answer["result"]["thread"]["id"]
            .as_str()
            .with_context(|| format!("thread/start failed: {answer}"))?;
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// `turn/start` params: one text item on a thread.
fn turn_params(thread: &str, text: &str) -> Value {
    json!({"threadId": thread, "input": [{"type": "text", "text": text}]})
}

async fn round(args: &Args, mock: &MockProvider, storm: bool, n: usize) -> Result<Round> {
    let good = Jwt::new()
        .account("org-storm")
        .plan("pro")
        .exp_in(Duration::from_secs(3600));
    let good = good.claim("n", json!(format!("good-{n}"))).mint();
    let bad = Jwt::new()
        .account("org-storm")
        .plan("pro")
        .claim("n", json!(format!("bad-{n}")))
        .mint();
    mock.set_valid_tokens([good.clone()]);
    let home = tempfile::tempdir()?;
    let bin = args
        .server
        .clone()
        .unwrap_or_else(authbridge_testkit::server::authbridge_bin);
    let mut child = tokio::process::Command::new(bin)
        .arg("--home")
        .arg(home.path())
        .args([
            "-c",
            &format!("model_providers.openai.base_url={}", mock.url()),
        ])
        .args([
            "-c",
            &format!("model_providers.openai.chatgpt_base_url={}", mock.url()),
        ])
        .args(["-c", "external_auth_refresh_timeout_ms=10000"])
        .args(["-c", "max_in_flight_requests=4096"])
        .env_remove("AUTHBRIDGE_API_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("spawn the server")?;
    let stdin = Arc::new(tokio::sync::Mutex::new(
        child.stdin.take().context("stdin")?,
    ));
    let stdout = child.stdout.take().context("stdout")?;
    let pending: Pending = Arc::default();
    let counters = Arc::new(Mutex::new(Counters::default()));
    let done = Arc::new(Notify::new());
    let turns = args.turns;
    let current_good = Arc::new(Mutex::new(good.clone()));
    let reader = {
        let (stdin, pending, counters, done, good) = (
            stdin.clone(),
            pending.clone(),
            counters.clone(),
            done.clone(),
            current_good.clone(),
        );
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                match (msg.get("method").and_then(Value::as_str), msg.get("id")) {
                    (Some("account/chatgptAuthTokens/refresh"), Some(id)) => {
                        counters.lock().unwrap().refreshes += 1;
                        let good = good.lock().unwrap().clone();
                        let answer = json!({"id": id, "result": {"accessToken": good,
                            "chatgptAccountId": "org-storm", "chatgptPlanType": "pro"}});
                        let _ = write_line(&stdin, &answer).await;
                    }
                    (Some("turn/completed"), None) => {
                        let mut c = counters.lock().unwrap();
                        if msg["params"]["turn"]["status"] == "completed" {
                            c.completed += 1;
                        } else {
                            c.failed += 1;
                            if c.first_failure.is_none() {
                                c.first_failure = Some(msg["params"].to_string());
                            }
                        }
                        c.last_completed = Some(Instant::now());
                        if c.completed + c.failed == turns {
                            done.notify_one();
                        }
                    }
                    (None, Some(Value::Number(id))) => {
                        let tx = id
                            .as_i64()
                            .and_then(|id| pending.lock().unwrap().remove(&id));
                        if let Some(tx) = tx {
                            let _ = tx.send(msg);
                        }
                    }
                    _ => {}
                }
            }
        })
    };
    call(
        &stdin,
        &pending,
        0,
        "initialize",
        json!({"clientInfo": {"name": "storm", "version": "0"}}),
    )
    .await?;
    let token = if storm { &bad } else { &good };
    call(
        &stdin,
        &pending,
        1,
        "account/login/start",
        json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": "org-storm"}),
    )
    .await?;
    // One thread per turn (a thread runs one turn at a time), started before the clock.
    let threads = start_threads(&stdin, &pending, 2_000_000, turns).await?;
    // All turn/start requests in one write: they reach the server together.
    let mut batch = Vec::new();
    for (i, thread) in threads.iter().enumerate() {
        let msg = json!({"id": 100 + i as i64, "method": "turn/start",
            "params": turn_params(thread, "storm")});
        serde_json::to_writer(&mut batch, &msg)?;
        batch.push(b'\n');
    }
    let finished = done.notified();
    let pid = child.id();
    let cpu_before = (cpu_time(pid), cpu_time(None));
    let unauthorized_before = mock.unauthorized_count();
    let start = Instant::now();
    stdin.lock().await.write_all(&batch).await?;
    if tokio::time::timeout(Duration::from_secs(120), finished)
        .await
        .is_err()
    {
        bail!("the turns did not all complete within 120 s");
    }
    let (completed, failed, first_failure, last_completed, refreshes) = {
        let c = counters.lock().unwrap();
        (
            c.completed,
            c.failed,
            c.first_failure.clone(),
            c.last_completed,
            c.refreshes,
        )
    };
    let unauthorized = mock.unauthorized_count() - unauthorized_before;
    let cpu = (
        cpu_time(pid).saturating_sub(cpu_before.0),
        cpu_time(None).saturating_sub(cpu_before.1),
    );
    let peak_rss_kib = pid.and_then(|pid| status_kib(pid, "VmHWM:"));
    let soak = if storm && n == 0 && args.soak_cycles > 0 {
        Some(
            soak(
                args,
                mock,
                &stdin,
                &pending,
                &counters,
                &current_good,
                pid,
                n,
            )
            .await?,
        )
    } else {
        None
    };
    // The reader holds a handle on stdin; once it is gone, closing stdin ends the server.
    reader.abort();
    let _ = reader.await;
    drop(stdin);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        bail!("the server did not exit within 5 s of its stdin closing");
    }
    Ok(Round {
        soak,
        peak_rss_kib,
        cpu,
        wall: last_completed.unwrap_or(start) - start,
        refreshes,
        unauthorized,
        completed,
        failed,
        first_failure,
    })
}

/// RSS and open fds of the server across many refresh cycles in one process.
struct Soak {
    cycles: usize,
    refreshes: usize,
    rss_kib: (u64, u64),
    fds: (usize, usize),
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// User + system CPU time of `pid` (this process when `None`), from `/proc/<pid>/stat`.
fn cpu_time(pid: Option<u32>) -> Duration {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_string(),
        |p| format!("/proc/{p}/stat"),
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // Linux reports them in USER_HZ, which is 100 on every architecture it supports.
    Duration::from_millis(ticks * 10)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Each cycle: the provider stops accepting the current token, one turn gets a 401, the
/// host answers the refresh with a new token the provider accepts, the turn completes.
#[allow(clippy::too_many_arguments)]
async fn soak(
    args: &Args,
    mock: &MockProvider,
    stdin: &tokio::sync::Mutex<ChildStdin>,
    pending: &Pending,
    counters: &Mutex<Counters>,
    good: &Mutex<String>,
    pid: Option<u32>,
    round: usize,
) -> Result<Soak> {
    let pid = pid.context("the server has no pid")?;
    let refreshes_before = counters.lock().unwrap().refreshes;
    let mut before = None;
    for i in 0..args.soak_cycles {
        let token = Jwt::new()
            .account("org-storm")
            .plan("pro")
            .claim("n", json!(format!("soak-{round}-{i}")))
            .mint();
        mock.set_valid_tokens([token.clone()]);
        *good.lock().unwrap() = token;
        let id = 1_000_000 + 2 * i as i64;
        // A new thread per cycle, so every cycle's provider request is the same size.
        let thread = call(stdin, pending, id, "thread/start", json!({})).await?;
        let thread = thread["thread"]["id"].as_str().context("no thread id")?;
        let answer = call(
            stdin,
            pending,
            id + 1,
            "turn/start",
            turn_params(thread, "soak"),
        )
        .await?;
        let turn_id = answer["turn"]["id"]
            .as_str()
            .context("no turn id")?
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (done, failure) = {
                let c = counters.lock().unwrap();
                (
                    c.completed > args.turns + i,
                    c.first_failure.clone().filter(|_| c.failed > 0),
                )
            };
            if let Some(failure) = failure {
                bail!("a soak turn failed: {failure}");
            }
            if done {
                break;
            }
            if Instant::now() > deadline {
                bail!("soak turn {turn_id} did not complete within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i == 9 {
            before = Some((status_kib(pid, "VmRSS:").unwrap_or(0), open_fds(pid)));
        }
    }
    let (rss0, fds0) = before.unwrap_or((0, 0));
    Ok(Soak {
        cycles: args.soak_cycles,
        refreshes: counters.lock().unwrap().refreshes - refreshes_before,
        rss_kib: (rss0, status_kib(pid, "VmRSS:").unwrap_or(0)),
        fds: (fds0, open_fds(pid)),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    authbridge_testkit::sys::raise_nofile_limit();
    let deltas = (0..args.deltas).map(|i| format!("d{i} ")).collect();
    let mock = MockProvider::start(MockOptions {
        deltas,
        delta_delay: Duration::from_millis(args.delta_delay_ms),
        ..MockOptions::default()
    })
    .await?;
    let (mut plain, mut storm) = (Vec::new(), Vec::new());
    let mut refreshes = Vec::new();
    let mut unauthorized = Vec::new();
    let (mut plain_cpu, mut storm_cpu) = (Vec::new(), Vec::new());
    let mut peak_rss_kib = 0;
    let mut soak_result = None;
    for n in 0..args.rounds.max(1) {
        for is_storm in [false, true] {
            let r = round(&args, &mock, is_storm, n).await?;
            if r.failed > 0 || r.completed != args.turns {
                bail!(
                    "round {n} ({}): {} completed, {} failed; first failure: {}",
                    if is_storm { "401" } else { "plain" },
                    r.completed,
                    r.failed,
                    r.first_failure.unwrap_or_default()
                );
            }
            peak_rss_kib = peak_rss_kib.max(r.peak_rss_kib.unwrap_or(0));
            if r.soak.is_some() && soak_result.is_none() {
                soak_result = r.soak;
            }
            if is_storm {
                refreshes.push(r.refreshes);
                unauthorized.push(r.unauthorized);
                storm.push(r.wall);
                storm_cpu.push(r.cpu);
            } else {
                plain.push(r.wall);
                plain_cpu.push(r.cpu);
            }
        }
    }
    let (p, s) = (median(plain), median(storm));
    let cpu_ms = |v: &[(Duration, Duration)], server: bool| {
        median(v.iter().map(|c| if server { c.0 } else { c.1 }).collect()).as_secs_f64() * 1e3
    };
    let cpu = [
        cpu_ms(&plain_cpu, true),
        cpu_ms(&plain_cpu, false),
        cpu_ms(&storm_cpu, true),
        cpu_ms(&storm_cpu, false),
    ];
    let ratio = s.as_secs_f64() / p.as_secs_f64().max(1e-9);
    let soak_json = soak_result.as_ref().map(|k| {
        json!({"cycles": k.cycles, "refreshes": k.refreshes,
            "rssKib": [k.rss_kib.0, k.rss_kib.1], "openFds": [k.fds.0, k.fds.1]})
    });
    if args.json {
        let out = json!({"turns": args.turns, "rounds": args.rounds, "plain_ms": p.as_secs_f64() * 1e3,
            "storm_ms": s.as_secs_f64() * 1e3, "ratio": ratio, "refreshes_per_storm": refreshes, "unauthorized_per_storm": unauthorized,
            "peak_rss_kib": peak_rss_kib, "soak": soak_json,
            "cpu_ms": {"plain": {"server": cpu[0], "client_and_mock": cpu[1]},
                       "storm": {"server": cpu[2], "client_and_mock": cpu[3]}}});
        let mut stdout = tokio::io::stdout();
        stdout.write_all(format!("{out}\n").as_bytes()).await?;
    } else {
        let mut text = format!(
            "{} concurrent turns, {} deltas {} ms apart, median of {} rounds\n  no 401:   {:>8.1} ms\n  all 401:  {:>8.1} ms  (host refresh requests per storm: {:?}; 401 answers: {:?})\n  ratio:    {:>8.2}\n  server peak RSS with {} turns streaming: {} KiB\n",
            args.turns, args.deltas, args.delta_delay_ms, args.rounds,
            p.as_secs_f64() * 1e3, s.as_secs_f64() * 1e3, refreshes, unauthorized, ratio, args.turns, peak_rss_kib
        );
        text.push_str(&format!(
            "  CPU ms, server / client and mock: no 401 {:.0} / {:.0}, all 401 {:.0} / {:.0}\n",
            cpu[0], cpu[1], cpu[2], cpu[3]
        ));
        if let Some(k) = &soak_result {
            text.push_str(&format!(
                "  {} refresh cycles ({} host refreshes): RSS {} -> {} KiB, open fds {} -> {}\n",
                k.cycles, k.refreshes, k.rss_kib.0, k.rss_kib.1, k.fds.0, k.fds.1
            ));
        }
        tokio::io::stdout().write_all(text.as_bytes()).await?;
    }
    Ok(())
}
