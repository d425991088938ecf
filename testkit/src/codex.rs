//! Codex 0.171.0 as a peer: installed from the npm registry into the target directory
//! (once; later runs reuse it), its JSON Schema generated, and the `-c` overrides that run
//! it offline against the kit's mocks. Nothing of Codex's is committed: the binary and the
//! schema exist only under the target directory and in temporary folders.
//! `AUTHBRIDGE_CODEX_BIN` names an existing Codex 0.171.0 binary instead.
//!
//! Used by the `codex_*` tests and the `authbridge-latency` bench.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::target_dir;

/// The Codex CLI version whose schema judges our shapes.
pub const CODEX_VERSION: &str = "0.171.0";
/// Deadline of the npm install (the package is ~150 MB).
const INSTALL_DEADLINE: Duration = Duration::from_secs(900);
/// Deadline of `generate-json-schema`.
const SCHEMA_DEADLINE: Duration = Duration::from_secs(120);

/// The platform package and the folder of the binary inside it.
fn platform() -> Result<(&'static str, &'static str), String> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Ok(("codex-linux-x64", "x86_64-unknown-linux-musl")),
        ("linux", "aarch64") => Ok(("codex-linux-arm64", "aarch64-unknown-linux-musl")),
        ("macos", "aarch64") => Ok(("codex-darwin-arm64", "aarch64-apple-darwin")),
        ("macos", "x86_64") => Ok(("codex-darwin-x64", "x86_64-apple-darwin")),
        (os, arch) => Err(format!(
            "no Codex binary is published for {os}/{arch}; set AUTHBRIDGE_CODEX_BIN"
        )),
    }
}

/// Where an install keeps the binary, relative to its prefix.
fn binary_in(prefix: &Path) -> Result<PathBuf, String> {
    let (package, triple) = platform()?;
    Ok(prefix
        .join("node_modules/@openai")
        .join(package)
        .join("vendor")
        .join(triple)
        .join("bin/codex"))
}

/// Runs `cmd` to its end within `deadline`; its output, or what went wrong.
fn run_within(mut cmd: Command, deadline: Duration) -> Result<std::process::Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("did not start: {e}"))?;
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = std::io::Read::read_to_end(o, &mut buf);
        }
        buf
    });
    let err_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = std::io::Read::read_to_end(e, &mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no result within {deadline:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting failed: {e}")),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// `codex --version` prints `codex-cli 0.171.0`.
fn runs_as_expected(bin: &Path) -> bool {
    let mut cmd = Command::new(bin);
    cmd.arg("--version");
    matches!(run_within(cmd, Duration::from_secs(30)),
        Ok(out) if out.status.success() && String::from_utf8_lossy(&out.stdout).contains(CODEX_VERSION))
}

/// The Codex 0.171.0 binary: `AUTHBRIDGE_CODEX_BIN`, else the cached install under
/// `<target>/codex-0.171.0`, else a fresh `npm install` there (into a temporary sibling,
/// renamed into place, so a half-finished install is never used).
///
/// # Panics
/// When npm is missing or the registry cannot be reached: the message says so and how to
/// provide the binary instead. This never passes silently.
pub fn codex_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match install() {
        Ok(bin) => bin,
        Err(e) => panic!(
            "Codex {CODEX_VERSION} is needed as the judge and could not be installed: {e}\n\
             (the test installs `@openai/codex@{CODEX_VERSION}` from the npm registry; \
             it needs `npm` and access to the registry, or AUTHBRIDGE_CODEX_BIN naming a \
             codex {CODEX_VERSION} binary)"
        ),
    })
    .clone()
}

fn install() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("AUTHBRIDGE_CODEX_BIN") {
        let bin = PathBuf::from(bin);
        return if runs_as_expected(&bin) {
            Ok(bin)
        } else {
            Err(format!(
                "AUTHBRIDGE_CODEX_BIN={} does not run as codex {CODEX_VERSION}",
                bin.display()
            ))
        };
    }
    let prefix = target_dir().join(format!("codex-{CODEX_VERSION}"));
    let bin = binary_in(&prefix)?;
    if bin.is_file() && runs_as_expected(&bin) {
        return Ok(bin);
    }
    std::fs::create_dir_all(target_dir()).map_err(|e| format!("creating the target dir: {e}"))?;
    let staging = target_dir().join(format!(
        "codex-{CODEX_VERSION}.installing-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("creating {}: {e}", staging.display()))?;
    let mut npm = Command::new("npm");
    npm.args([
        "install",
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--loglevel=error",
        "--prefix",
    ])
    .arg(&staging)
    .arg(format!("@openai/codex@{CODEX_VERSION}"));
    let out = run_within(npm, INSTALL_DEADLINE).map_err(|e| format!("`npm install`: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "`npm install @openai/codex@{CODEX_VERSION}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let staged_bin = binary_in(&staging)?;
    if !runs_as_expected(&staged_bin) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "after `npm install`, {} does not run as codex {CODEX_VERSION}",
            staged_bin.display()
        ));
    }
    let _ = std::fs::remove_dir_all(&prefix);
    if std::fs::rename(&staging, &prefix).is_err() {
        // Another process installed it first: use theirs if it works, else ours in place.
        let _ = std::fs::remove_dir_all(&staging);
    }
    if runs_as_expected(&bin) {
        Ok(bin)
    } else {
        Err(format!("{} is not usable after the install", bin.display()))
    }
}

/// Codex's JSON Schema bundle, generated by the installed binary into a temporary folder
/// with a temporary `CODEX_HOME`: the parsed `codex_app_server_protocol.schemas.json`.
pub fn generate_schema() -> Value {
    let bin = codex_bin();
    let out_dir = tempfile::tempdir().expect("a temporary schema folder");
    let home = tempfile::tempdir().expect("a temporary CODEX_HOME");
    let mut cmd = Command::new(&bin);
    cmd.args(["app-server", "generate-json-schema", "--out"])
        .arg(out_dir.path())
        .env("CODEX_HOME", home.path());
    let out = run_within(cmd, SCHEMA_DEADLINE)
        .unwrap_or_else(|e| panic!("`codex app-server generate-json-schema`: {e}"));
    assert!(
        out.status.success(),
        "`codex app-server generate-json-schema` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let path = out_dir
        .path()
        .join("codex_app_server_protocol.schemas.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("Codex wrote no {}: {e}", path.display()));
    serde_json::from_str(&text).expect("Codex's schema bundle is JSON")
}

/// `-c` overrides for Codex: the ChatGPT backend is `backend_url` (a
/// [`ChatGptBackend`](crate::chatgpt_backend::ChatGptBackend)), and the model provider is a
/// custom one (`mock`) at `provider_url` that takes the account's credentials.
pub fn codex_overrides(backend_url: &str, provider_url: &str) -> Vec<String> {
    vec![
        format!("chatgpt_base_url={backend_url}"),
        "model_provider=mock".into(),
        "model=gpt-5".into(),
        format!(
            "model_providers.mock={{name=\"mock\",base_url=\"{provider_url}\",wire_api=\"responses\",requires_openai_auth=true}}"
        ),
    ]
}
