//! Logging to stderr that can never take the server down (docs/protocol.md §7): a host
//! may pipe our stderr and close its end, and then every write fails. Such a failure is
//! ignored — the log line is lost, the session goes on.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;

/// Writes to stderr and reports success whatever happens, so neither the log layer
/// nor anything it calls reacts to a closed or broken stderr.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Installs the global subscriber: the filter from `AUTHBRIDGE_LOG`, else `RUST_LOG`,
/// else `warn`; plain text on stderr through [`QuietStderr`].
pub fn init() {
    let filter = std::env::var("AUTHBRIDGE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| QuietStderr)
        .with_ansi(false)
        // Its own report of a failed write would go to the same broken stderr (with
        // `eprintln!`, which panics).
        .log_internal_errors(false)
        .init();
}

/// A line on stderr for the person at the terminal (`eprintln!` without its panic
/// when stderr is gone).
pub fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(QuietStderr, "{line}");
}
