//! `authbridge-conformance`: checks a server (or a host) against the authbridge protocol (docs/protocol.md).
//!
//! # Layout
//! - `server` mode: [`scenario`] files are run by [`runner`] against a fresh server per
//!   scenario ([`session`] owns the pipes, [`kind`] tells messages apart, [`pattern`] the
//!   matchers; from the test kit: `authbridge_testkit::wire` the framing,
//!   `authbridge_testkit::mock_provider` the model provider, `authbridge_testkit::chatgpt_backend`
//!   the ChatGPT backend a Codex peer needs); [`report`] prints the result.
//! - `host` mode: [`host`] spawns the host under test with `AUTHBRIDGE_CMD` naming the
//!   hidden `stand-in` mode ([`stand_in`]), which plays the server and records findings.
//! - `sample-host` ([`sample_host`]): a minimal well-behaved host, to prove host mode works.
//!
//! See `docs/conformance.md`.

mod host;
mod kind;
mod pattern;
mod report;
mod runner;
mod sample_host;
mod scenario;
mod session;
mod stand_in;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use authbridge_testkit::wire::Framing;
use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;

use crate::report::{Row, Summary};
use crate::runner::Outcome;
use crate::sample_host::Behaviour;
use crate::scenario::OURS_ONLY;
use crate::session::{Launch, PeerOptions};

/// The environment variable naming a second server command to compare with.
const PEER_ENV: &str = "AUTHBRIDGE_CONFORMANCE_PEER";

#[derive(Parser)]
#[command(
    name = "authbridge-conformance",
    version,
    about = "Conformance kit for the authbridge protocol"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Play the host against a server: `server -- <server command…>`. `{home}`,
    /// `{provider_url}` and `{backend_url}` in the command are replaced per scenario.
    Server {
        /// Run only this scenario (repeatable; `PREFIX*` selects by prefix).
        #[arg(long = "scenario", value_name = "NAME")]
        scenarios: Vec<String>,
        /// The directory of scenario files.
        #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))]
        scenario_dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// How many scenarios run at once.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Drop the peer's messages with this method (repeatable), e.g. Codex's `configWarning`.
        #[arg(long, value_name = "METHOD")]
        peer_ignore: Vec<String>,
        /// Extra members in the peer's objects are not a mismatch (Codex adds fields).
        #[arg(long)]
        peer_allow_extra_members: bool,
        /// The server command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// List the scenarios with what each checks.
    List {
        /// The directory of scenario files.
        #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))]
        scenario_dir: PathBuf,
    },
    /// Play the server for a host: `host -- <host command…>`; the host must spawn `$AUTHBRIDGE_CMD`.
    Host {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Kill the host after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// How long the host has to answer each refresh request.
        #[arg(long, default_value_t = 5000)]
        answer_within_ms: u64,
        /// The host command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The stand-in server a host spawns in host mode.
    #[command(hide = true)]
    StandIn {
        #[arg(long)]
        report: PathBuf,
        #[arg(long, default_value_t = 5000)]
        answer_within_ms: u64,
    },
    /// A minimal host that spawns `$AUTHBRIDGE_CMD`, logs in, answers refreshes, runs one turn.
    #[command(hide = true)]
    SampleHost {
        /// Answer refreshes with a token that is not a JWT (a host the kit must fail).
        #[arg(long)]
        bad: bool,
        /// Never answer refresh requests (a host the kit must fail).
        #[arg(long)]
        silent: bool,
        /// Speak `Content-Length` framing instead of lines.
        #[arg(long)]
        content_length: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Server {
            scenarios,
            scenario_dir,
            json,
            jobs,
            peer_ignore,
            peer_allow_extra_members,
            command,
        } => {
            let peer = PeerOptions {
                ignore: peer_ignore,
                allow_extra: peer_allow_extra_members,
            };
            server_mode(&scenarios, &scenario_dir, json, jobs, peer, command).await
        }
        Mode::Host {
            json,
            timeout_secs,
            answer_within_ms,
            command,
        } => {
            host::run(
                &command,
                json,
                Duration::from_secs(timeout_secs),
                answer_within_ms,
            )
            .await
        }
        Mode::List { scenario_dir } => list(&scenario_dir),
        Mode::StandIn {
            report,
            answer_within_ms,
        } => stand_in::run(&report, Duration::from_millis(answer_within_ms))
            .await
            .map(|()| true),
        Mode::SampleHost {
            bad,
            silent,
            content_length,
        } => {
            let framing = if content_length {
                Framing::ContentLength
            } else {
                Framing::Ndjson
            };
            let behaviour = if silent {
                Behaviour::Silent
            } else if bad {
                Behaviour::NotAJwt
            } else {
                Behaviour::Good
            };
            sample_host::run(behaviour, framing).await.map(|()| true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("authbridge-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the scenarios; `Ok(false)` when any failed against the primary server.
async fn server_mode(
    only: &[String],
    dir: &std::path::Path,
    json: bool,
    jobs: usize,
    peer_options: PeerOptions,
    command: Vec<String>,
) -> anyhow::Result<bool> {
    let mut all = scenario::load_dir(dir)?;
    // `NAME` selects one scenario, `PREFIX*` every scenario whose name starts with PREFIX.
    let selects = |pattern: &str, name: &str| match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    };
    if !only.is_empty() {
        if let Some(missing) = only
            .iter()
            .find(|p| !all.iter().any(|s| selects(p, &s.name)))
        {
            anyhow::bail!("no scenario matches {missing:?} in {}", dir.display());
        }
        all.retain(|s| only.iter().any(|p| selects(p, &s.name)));
    }
    let ours = Launch::Argv(command);
    let peer = std::env::var(PEER_ENV)
        .ok()
        .filter(|p| !p.trim().is_empty())
        .map(|p| Launch::Shell(p, peer_options));
    let rows: Vec<Row> = futures_util::stream::iter(all.iter())
        .map(|s| {
            let (ours, peer) = (&ours, &peer);
            async move {
                let mine = runner::run(s, ours, false).await;
                let theirs = match peer {
                    None => None,
                    Some(_) if s.tags.iter().any(|t| t == OURS_ONLY) => Some(Outcome::Skipped(
                        "ours-only: the model surface or behaviour beyond Codex".into(),
                    )),
                    Some(p) => Some(runner::run(s, p, true).await),
                };
                eprintln!(
                    "conformance: {} {}",
                    s.name,
                    if mine == Outcome::Pass {
                        "pass"
                    } else {
                        "FAIL"
                    }
                );
                Row {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    ours: mine,
                    peer: theirs,
                }
            }
        })
        .buffered(jobs.max(1))
        .collect()
        .await;
    let out = if json {
        format!("{:#}\n", report::json(&rows))
    } else {
        report::text(&rows)
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(Summary::of(rows.iter().map(|r| &r.ours)).failed == 0)
}

/// Prints `name [tags]: description` for every scenario.
fn list(dir: &std::path::Path) -> anyhow::Result<bool> {
    let mut out = String::new();
    for s in scenario::load_dir(dir)? {
        let tags = if s.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", s.tags.join(", "))
        };
        out.push_str(&format!("{}{tags}: {}\n", s.name, s.description));
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(true)
}
