//! The `authbridge` binary: parses the command line, loads the config, and serves one
//! host on stdin/stdout until the host closes stdin.

use std::process::ExitCode;
use std::time::Duration;

use authbridge_app_server::cli::{Cli, Command};
use authbridge_app_server::config::{resolve_home, Config};
use authbridge_app_server::logging;
use authbridge_app_server::peer::{self, PeerConfig};
use authbridge_app_server::service::AppService;
use authbridge_app_server::state::AppState;
use authbridge_app_server::stdio;
use authbridge_protocol::schema;
use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    match cli.command {
        Some(Command::Schema { out }) => match schema::write_all(&out) {
            Ok(count) => {
                logging::say(format_args!(
                    "authbridge: wrote {count} files to {}",
                    out.display()
                ));
                ExitCode::SUCCESS
            }
            Err(e) => {
                logging::say(format_args!(
                    "authbridge: could not write the schema to {}: {e}",
                    out.display()
                ));
                ExitCode::FAILURE
            }
        },
        Some(Command::Login(args)) => {
            authbridge_app_server::login_cli::login(cli.home.as_deref(), &cli.overrides, args)
        }
        Some(Command::Logout) => {
            authbridge_app_server::login_cli::logout(cli.home.as_deref(), &cli.overrides)
        }
        Some(Command::AppServer { .. }) | None => serve(cli),
    }
}

fn serve(cli: Cli) -> ExitCode {
    let loaded = resolve_home(cli.home.as_deref())
        .and_then(|home| Config::load(&home, &cli.overrides).map(|config| (home, config)));
    let (home, config) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            logging::say(format_args!("authbridge: {e}"));
            return ExitCode::from(2);
        }
    };
    raise_open_file_limit();
    // One thread: the reader, the handlers and the writer hand messages to each other
    // without cross-thread wake-ups. Measured with authbridge-load and authbridge-storm
    // (docs/performance.md): twice the pipelined throughput, half the one-at-a-time
    // latency and a faster refresh storm than the multi-thread runtime on 2 cores.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::say(format_args!(
                "authbridge: could not start the async runtime: {e}"
            ));
            return ExitCode::FAILURE;
        }
    };
    let peer_config = PeerConfig {
        max_message_bytes: config.max_message_bytes,
        max_in_flight_requests: config.max_in_flight_requests,
        max_unsent_output_bytes: config.max_unsent_output_bytes,
        ..PeerConfig::default()
    };
    let result = runtime.block_on(async move {
        let state = AppState::new(config, home);
        let (reader, writer) = stdio::stdio()?;
        let shutdown = CancellationToken::new();
        tokio::spawn(end_on_signal(shutdown.clone()));
        let service = AppService::new(state);
        let served = peer::serve_until(reader, writer, service, peer_config, shutdown.clone());
        let served = served.await;
        shutdown.cancel(); // ends the signal task
        served
    });
    // Anything still running (a blocking stdin read on a terminal) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(300));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "connection failed");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM or SIGINT (Ctrl-C) ends the session like end of input (docs/protocol.md §7):
/// pending server requests fail, accepted turns complete, exit 0. A signal handler that
/// cannot be installed is logged and that signal keeps its default action.
async fn end_on_signal(shutdown: CancellationToken) {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot handle Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = interrupt => tracing::debug!("interrupted"),
        _ = terminate() => tracing::debug!("asked to terminate"),
        _ = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

/// Elsewhere only Ctrl-C (and its console equivalents, through `ctrl_c`) is handled.
#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}

/// 1,000 streaming turns need ~1,000 sockets: raise the soft limit as far as allowed. The
/// `rlimit` crate caps the request where the OS needs it (macOS refuses more than
/// `kern.maxfilesperproc`, so asking for an "unlimited" hard limit fails there).
#[cfg(unix)]
fn raise_open_file_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!(error = %e, "could not raise the open-file limit");
    }
}

/// Windows has no per-process descriptor limit for sockets; nothing to raise.
#[cfg(not(unix))]
fn raise_open_file_limit() {}
