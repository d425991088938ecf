//! The `authbridge` binary and the command that runs it with a temporary home.
//!
//! The binary is `AUTHBRIDGE_BIN`, else `<target>/debug/authbridge` (`release/` for a release
//! build of the caller), built once per process
//! if it is missing (where: [`crate::bins`]). A program that `cargo run` started builds it
//! up to date first with [`build_authbridge_for`], in the workspace's own target directory.
//!
//! `AUTHBRIDGE_BIN_WRAPPER` (e.g. `/usr/lib/wine/wine64`) runs the binary through that
//! program: with `AUTHBRIDGE_BIN` naming the cross-built `authbridge.exe`, every test that
//! starts the server through [`command`] runs against the Windows binary under wine.
//! `AUTHBRIDGE_TEST_CMD` names the matching `authbridge-test-cmd` (see [`test_cmd_bin`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bins;
pub use crate::bins::target_dir;

/// The package of the `authbridge` binary.
const PACKAGE: &str = "authbridge-app-server";

/// Where the binary should be, without building it.
pub fn expected_path() -> PathBuf {
    match std::env::var_os("AUTHBRIDGE_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => bins::profile_path("authbridge"),
    }
}

/// Path of the `authbridge` binary: `AUTHBRIDGE_BIN`, else `<target>/<profile>/authbridge`,
/// built once per process if it is missing.
///
/// # Panics
/// If the binary is still missing after the build: the message says how to provide it.
pub fn authbridge_bin() -> PathBuf {
    match std::env::var_os("AUTHBRIDGE_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => bins::locate(PACKAGE, "authbridge"),
    }
}

/// For a program that `cargo run` started (`caller` is its package,
/// `env!("CARGO_PKG_NAME")`): builds `authbridge` up to date into the workspace's own
/// target directory, together with `caller` so that every shared dependency is the one
/// already built (see [`bins::build`]); how long the build took. Nothing to do, `Ok(None)`,
/// when `AUTHBRIDGE_BIN` names the binary or in a test binary (which must not build there).
pub fn build_authbridge_for(caller: &str) -> Result<Option<Duration>, String> {
    if std::env::var_os("AUTHBRIDGE_BIN").is_some() || bins::in_test_binary() {
        return Ok(None);
    }
    bins::build(&[caller, PACKAGE], &["authbridge"], &target_dir()).map(Some)
}

/// A command running the server: `authbridge --home <home> -c k=v ...`, with a clean
/// environment for the variables the server reads (`AUTHBRIDGE_API_KEY` removed,
/// `AUTHBRIDGE_HOME` pointing at an unused directory inside the home, so a server that
/// ignored `--home` would be caught, and no log filter unless the caller sets one).
pub fn command<S: AsRef<str>>(home: &Path, overrides: &[S]) -> tokio::process::Command {
    let mut cmd = match wrapper() {
        Some(wrapper) => {
            let mut cmd = tokio::process::Command::new(wrapper);
            cmd.arg(authbridge_bin());
            cmd
        }
        None => tokio::process::Command::new(authbridge_bin()),
    };
    cmd.arg("--home").arg(home);
    for o in overrides {
        cmd.arg("-c").arg(o.as_ref());
    }
    cmd.env_remove("AUTHBRIDGE_API_KEY")
        .env_remove("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE")
        .env_remove("RUST_LOG")
        .env("AUTHBRIDGE_HOME", home.join("unused-env-home"));
    cmd
}

/// The server on raw pipes, initialized, without the host simulator: for tests that write
/// and read the bytes themselves (and may leave them unread).
pub struct RawServer {
    /// Killed on drop.
    pub child: tokio::process::Child,
    pub pid: u32,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
}

/// [`command`] with no overrides and `AUTHBRIDGE_API_KEY=api_key` on raw pipes (stderr
/// discarded), after `initialize` was written and its answer line read.
///
/// # Panics
/// If the process cannot be spawned or does not answer `initialize` within 5 s.
pub async fn spawn_raw(home: &Path, api_key: &str) -> RawServer {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut cmd = command::<&str>(home, &[]);
    cmd.env("AUTHBRIDGE_API_KEY", api_key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn authbridge");
    let pid = child.id().expect("the server's pid");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout"));
    stdin
        .write_all(b"{\"id\":\"init\",\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}\n")
        .await
        .expect("write initialize");
    let mut line = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stdout.read_until(b'\n', &mut line))
        .await
        .expect("initialize answered within 5 s")
        .expect("read the initialize answer");
    RawServer {
        child,
        pid,
        stdin,
        stdout,
    }
}

/// `AUTHBRIDGE_BIN_WRAPPER`, when set and not empty: the program that runs the server.
pub fn wrapper() -> Option<std::ffi::OsString> {
    std::env::var_os("AUTHBRIDGE_BIN_WRAPPER").filter(|w| !w.is_empty())
}

/// True when the server runs through a wrapper (the Windows binary under wine): tests skip
/// what only a Linux process can show (its `/proc` figures).
pub fn wrapped() -> bool {
    wrapper().is_some()
}

/// The OS the server under test was built for, as its user agent names it:
/// `AUTHBRIDGE_BIN_OS` (`windows` when testing the `.exe` under wine), else this platform's.
pub fn server_os() -> String {
    std::env::var("AUTHBRIDGE_BIN_OS")
        .ok()
        .filter(|os| !os.is_empty())
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// How the server under test names a path this process made: as it is, except for the
/// Windows binary under wine, which sees the Unix root as drive `Z:` (`/tmp/x` →
/// `Z:\tmp\x`).
pub fn server_path(path: &Path) -> String {
    let shown = path.display().to_string();
    if server_os() == "windows" && wrapped() && shown.starts_with('/') {
        format!("Z:{}", shown.replace('/', "\\"))
    } else {
        shown
    }
}

/// The `authbridge-test-cmd` for the server under test: `AUTHBRIDGE_TEST_CMD` (the `.exe`
/// when the server is the Windows binary), else the kit's own build of it
/// (`<target>/debug/authbridge-test-cmd`, see [`bins::locate`]).
pub fn test_cmd_bin() -> PathBuf {
    std::env::var_os("AUTHBRIDGE_TEST_CMD")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| bins::locate(env!("CARGO_PKG_NAME"), "authbridge-test-cmd"))
}

/// A command running `authbridge-test-cmd` the way the server under test runs (through
/// `AUTHBRIDGE_BIN_WRAPPER` when set): a second process of the same platform, e.g. to hold
/// `auth.json.lock` with the same kind of lock the server takes.
pub fn test_cmd_command() -> tokio::process::Command {
    match wrapper() {
        Some(wrapper) => {
            let mut cmd = tokio::process::Command::new(wrapper);
            cmd.arg(test_cmd_bin());
            cmd
        }
        None => tokio::process::Command::new(test_cmd_bin()),
    }
}

/// The usual overrides pointing the built-in `openai` provider at a mock, with a short
/// host-refresh timeout.
pub fn openai_overrides(mock_url: &str, refresh_timeout_ms: u64) -> Vec<String> {
    vec![
        format!("model_providers.openai.base_url={mock_url}"),
        format!("model_providers.openai.chatgpt_base_url={mock_url}"),
        format!("external_auth_refresh_timeout_ms={refresh_timeout_ms}"),
    ]
}
