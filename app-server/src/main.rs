//! The `authbridge` binary: parses the command line, loads the config, and serves one
//! host on stdin/stdout until the host closes stdin.

use std::process::ExitCode;
use std::time::Duration;

use authbridge_app_server::cli::{Cli, Command};
use authbridge_app_server::config::{resolve_home, Config};
use authbridge_app_server::peer::{self, PeerConfig};
use authbridge_app_server::service::AppService;
use authbridge_app_server::state::AppState;
use authbridge_app_server::stdio;
use authbridge_protocol::schema;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Some(Command::Schema { out }) => match schema::write_all(&out) {
            Ok(count) => {
                eprintln!("authbridge: wrote {count} files to {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "authbridge: could not write the schema to {}: {e}",
                    out.display()
                );
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

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("AUTHBRIDGE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn serve(cli: Cli) -> ExitCode {
    let loaded = resolve_home(cli.home.as_deref())
        .and_then(|home| Config::load(&home, &cli.overrides).map(|config| (home, config)));
    let (home, config) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("authbridge: {e}");
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
            eprintln!("authbridge: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let peer_config = PeerConfig {
        max_message_bytes: config.max_message_bytes,
        max_in_flight_requests: config.max_in_flight_requests,
        ..PeerConfig::default()
    };
    let result = runtime.block_on(async move {
        let state = AppState::new(config, home);
        let (reader, writer) = stdio::stdio()?;
        peer::serve(reader, writer, AppService::new(state), peer_config).await
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

/// 1,000 streaming turns need ~1,000 sockets: raise the soft limit to the hard one.
fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
