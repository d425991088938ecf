//! Finds the `authbridge` binary and builds the command that runs it with a temporary home.
//!
//! Order: `AUTHBRIDGE_BIN`; else `<target>/debug/authbridge` where `<target>` is
//! `CARGO_TARGET_DIR` or derived from this executable's path (test binaries live in
//! `<target>/debug/deps/`). If it is missing, `cargo build -p authbridge-app-server --bin
//! authbridge` runs once per process, into `<target>/authbridge-kit` (see `authbridge_bin`).
//!
//! `AUTHBRIDGE_BIN_WRAPPER` (e.g. `/usr/lib/wine/wine64`) runs the binary through that
//! program: with `AUTHBRIDGE_BIN` naming the cross-built `authbridge.exe`, every test that
//! starts the server through [`command`] runs against the Windows binary under wine.
//! `AUTHBRIDGE_TEST_CMD` names the matching `authbridge-test-cmd` (see [`test_cmd_bin`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the binary should be, without building it.
pub fn expected_path() -> PathBuf {
    if let Some(bin) = std::env::var_os("AUTHBRIDGE_BIN") {
        return PathBuf::from(bin);
    }
    target_dir().join("debug").join("authbridge")
}

/// The target directory: `CARGO_TARGET_DIR`, else the ancestor of this executable that
/// holds `debug/` (or `release/`), else `./target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors() {
            let name = dir.file_name().and_then(|n| n.to_str());
            if matches!(name, Some("debug") | Some("release")) {
                if let Some(parent) = dir.parent() {
                    return parent.to_path_buf();
                }
            }
        }
    }
    workspace_root().join("target")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Deadline for building the server from inside a test run.
const BUILD_DEADLINE: Duration = Duration::from_secs(900);

/// Path of the `authbridge` binary, building it once if it is missing.
///
/// The build goes to its own target directory, `<target>/authbridge-kit`: `cargo test`
/// holds the lock of `<target>` while tests run, so a nested build there would wait
/// forever. It runs on every first call in a process (a no-op when up to date), so the
/// binary it yields is never stale.
///
/// # Panics
/// If the binary is still missing after the build: the message says how to provide it.
pub fn authbridge_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let path = expected_path();
            if path.is_file() || std::env::var_os("AUTHBRIDGE_BIN").is_some() {
                return path;
            }
            let kit_target = target_dir().join("authbridge-kit");
            let built = kit_target.join("debug").join("authbridge");
            let outcome = build_into(&kit_target);
            if !built.is_file() {
                panic!(
                    "the authbridge binary is not at {} and building it into {} failed ({outcome}); \
                     run `cargo build -p authbridge-app-server` first or set AUTHBRIDGE_BIN",
                    path.display(),
                    kit_target.display()
                );
            }
            built
        })
        .clone()
}

/// Runs `cargo build -p authbridge-app-server --bin authbridge` with a deadline; what happened.
fn build_into(target: &Path) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let child = std::process::Command::new(cargo)
        .args([
            "build",
            "-p",
            "authbridge-app-server",
            "--bin",
            "authbridge",
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return format!("cargo did not start: {e}"),
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) if started.elapsed() > BUILD_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return format!("no result within {BUILD_DEADLINE:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return format!("waiting for cargo failed: {e}"),
        }
    }
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

/// The server on raw pipes, without the host simulator, for tests that write and read the
/// bytes themselves: [`command`] with no overrides and `AUTHBRIDGE_API_KEY=api_key`, stdin
/// and stdout piped, stderr discarded, killed on drop. [`RAW_INITIALIZE`] is the first line
/// such a test writes.
///
/// # Panics
/// If the process cannot be spawned.
pub fn spawn_raw(home: &Path, api_key: &str) -> tokio::process::Child {
    let mut cmd = command::<&str>(home, &[]);
    cmd.env("AUTHBRIDGE_API_KEY", api_key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd.spawn().expect("spawn authbridge")
}

/// An `initialize` request as one NDJSON line (id `"init"`).
pub const RAW_INITIALIZE: &[u8] =
    b"{\"id\":\"init\",\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}\n";

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
/// when the server is the Windows binary), else `built` (a test's
/// `env!("CARGO_BIN_EXE_authbridge-test-cmd")`).
pub fn test_cmd_bin(built: &str) -> PathBuf {
    std::env::var_os("AUTHBRIDGE_TEST_CMD")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(built))
}

/// A command running `authbridge-test-cmd` the way the server under test runs (through
/// `AUTHBRIDGE_BIN_WRAPPER` when set): a second process of the same platform, e.g. to hold
/// `auth.json.lock` with the same kind of lock the server takes.
pub fn test_cmd_command(built: &str) -> tokio::process::Command {
    match wrapper() {
        Some(wrapper) => {
            let mut cmd = tokio::process::Command::new(wrapper);
            cmd.arg(test_cmd_bin(built));
            cmd
        }
        None => tokio::process::Command::new(test_cmd_bin(built)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_dir_is_an_ancestor_of_this_test_binary_or_the_env_value() {
        let dir = target_dir();
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(env) if Path::new(&env).is_absolute() => assert_eq!(dir, PathBuf::from(env)),
            _ => {
                let exe = std::env::current_exe().unwrap();
                assert!(
                    exe.starts_with(&dir),
                    "{} not under {}",
                    exe.display(),
                    dir.display()
                );
            }
        }
    }
}
