//! `authbridge-load`: a load generator for JSON-RPC servers on stdio — authbridge, the pipe
//! ceiling (`bench/peers/`'s `limit`) and peer frameworks alike.
//!
//! ```text
//! authbridge-load [--framing lines|content-length] [--method account/read] [--in-flight W]
//!                 [--requests N | --duration S] [--startup-runs R] [--soak] [--json] -- <server command...>
//! ```
//!
//! Layout: `framing.rs` splits and writes messages in either framing; `scan.rs` finds a
//! message's top-level `id`, `method` and `error` without parsing it; `session.rs` spawns the
//! server, runs the handshake and the pipelined requests; `procfs.rs` reads RSS and open fds;
//! `report.rs` prints the results for people or as one JSON object for `scripts/bench`.

mod framing;
mod procfs;
mod report;
mod scan;
mod session;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use crate::framing::Framing;
use crate::procfs::Cpu;
use crate::report::{Report, Soak, Startup};
use crate::session::{Load, Session};

/// `initialize` params that authbridge, Codex and the LSP frameworks all accept.
const INIT_PARAMS: &str = r#"{"processId":null,"clientInfo":{"name":"authbridge-load","version":"0.1.0"},"capabilities":{}}"#;

#[derive(Parser)]
#[command(
    name = "authbridge-load",
    about = "Pipelines cheap JSON-RPC requests at a server on stdio and reports requests/s and latency."
)]
struct Args {
    /// How messages are delimited on the pipes.
    #[arg(long, value_enum, default_value_t = Framing::Lines)]
    framing: Framing,
    /// The request method to send.
    #[arg(long, default_value = "account/read")]
    method: String,
    /// The request params, as JSON.
    #[arg(long, default_value = "{}")]
    params: String,
    /// The `initialize` params, as JSON.
    #[arg(long, default_value = INIT_PARAMS)]
    init_params: String,
    /// Requests kept outstanding (1: one at a time).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Requests measured (after the warm-up).
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Measure for this many seconds instead of a number of requests.
    #[arg(long)]
    duration: Option<f64>,
    /// Answers received before measuring starts.
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Report RSS and open fds after initialize and after the run.
    #[arg(long)]
    soak: bool,
    /// Before the run, start the server this many times and time process start → initialize answer.
    #[arg(long, default_value_t = 0)]
    startup_runs: usize,
    /// The deadline, in seconds, of every single wait (a read, a write, the server's exit).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The name of the target in reports (default: the command).
    #[arg(long)]
    label: Option<String>,
    /// Let the server's stderr through (discarded by default).
    #[arg(long)]
    show_stderr: bool,
    /// The server command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for (what, json) in [
        ("--params", &args.params),
        ("--init-params", &args.init_params),
    ] {
        serde_json::from_str::<serde_json::Value>(json)
            .with_context(|| format!("{what} is not JSON"))?;
    }
    // One thread: the client must not take the server's second core from it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&args))?;
    report.print(args.json)
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let startup = if args.startup_runs > 0 {
        Some(startup(args, timeout).await?)
    } else {
        None
    };
    let mut session = Session::spawn(&args.command, args.framing, timeout, args.show_stderr)?;
    session.initialize(&args.init_params).await?;
    let before = procfs::resources(session.pid())?;
    let load = Load {
        method: args.method.clone(),
        params: args.params.clone(),
        in_flight: args.in_flight,
        requests: args.requests,
        duration: args.duration.map(Duration::from_secs_f64),
        warmup: args.warmup,
    };
    let cpu_before = procfs::cpu(session.pid())?;
    let measured = session.pipeline(&load).await?;
    let cpu_after = procfs::cpu(session.pid())?;
    let after = procfs::resources(session.pid())?;
    session.finish().await?;
    Ok(Report {
        label: args.label.clone().unwrap_or_else(|| args.command.join(" ")),
        framing: args.framing,
        method: args.method.clone(),
        in_flight: args.in_flight,
        server_cpu: Cpu {
            on_cpu_ns: cpu_after.on_cpu_ns.saturating_sub(cpu_before.on_cpu_ns),
            switches: cpu_after.switches.saturating_sub(cpu_before.switches),
        },
        requests_sent: measured.answers + args.warmup,
        measured,
        startup,
        soak: args.soak.then_some(Soak { before, after }),
    })
}

/// Starts the server `startup_runs` times; the median time from spawn to the initialize answer.
async fn startup(args: &Args, timeout: Duration) -> anyhow::Result<Startup> {
    let mut times = Vec::with_capacity(args.startup_runs);
    let mut rss = Vec::with_capacity(args.startup_runs);
    for _ in 0..args.startup_runs {
        let started = Instant::now();
        let mut session = Session::spawn(&args.command, args.framing, timeout, args.show_stderr)?;
        session.initialize(&args.init_params).await?;
        times.push(started.elapsed());
        rss.push(procfs::resources(session.pid())?.peak_rss_kib);
        session.finish().await?;
    }
    times.sort_unstable();
    rss.sort_unstable();
    Ok(Startup {
        runs: times.len(),
        median: times[times.len() / 2],
        median_peak_rss_kib: rss[rss.len() / 2],
    })
}
