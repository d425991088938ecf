//! The `examples/vscode-host` program (on `@authbridge/protocol`: vscode-jsonrpc and the generated TypeScript types) end to end: the package's `npm ci` and build, the example's `npm ci`, the type check, then real runs.
//!
//! Skipped, with the reason printed, only when `node` or `npm` is missing; CI has both.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use authbridge_testkit::bins;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::OnceCell;

/// The account the example logs in as (`lib.js`).
const ACCOUNT: &str = "org-vscode-example";

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("vscode-host")
}

/// Runs `cmd` to the end, killing it at `deadline`.
async fn output_within(mut cmd: Command, deadline: Duration, what: &str) -> Output {
    cmd.kill_on_drop(true).stdin(Stdio::null());
    tokio::time::timeout(deadline, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {deadline:?}"))
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"))
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `npm ci` and `tsc` once per test process; `false` (reason printed) when node or npm is missing.
async fn prepared() -> bool {
    static PREPARED: OnceCell<bool> = OnceCell::const_new();
    *PREPARED
        .get_or_init(|| async {
            for tool in ["node", "npm"] {
                let found = Command::new(tool)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .await;
                if !matches!(found, Ok(status) if status.success()) {
                    eprintln!("skipping the vscode-host example: `{tool} --version` did not run ({found:?})");
                    return false;
                }
            }
            // The example depends on @authbridge/protocol by path: install and build it first.
            let package = example_dir().join("../../packages/protocol");
            let mut ci = Command::new("npm");
            ci.args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&package);
            assert_success(
                &output_within(ci, Duration::from_secs(120), "npm ci (packages/protocol)").await,
                "npm ci in packages/protocol",
            );
            let mut build = Command::new("npm");
            build.args(["run", "build"]).current_dir(&package);
            assert_success(
                &output_within(build, Duration::from_secs(120), "npm run build").await,
                "npm run build in packages/protocol",
            );
            let mut ci = Command::new("npm");
            ci.args(["ci", "--no-audit", "--no-fund"])
                .current_dir(example_dir());
            assert_success(&output_within(ci, Duration::from_secs(120), "npm ci").await, "npm ci");
            let mut tsc = Command::new("node");
            tsc.args(["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"])
                .current_dir(example_dir());
            assert_success(
                &output_within(tsc, Duration::from_secs(60), "tsc --noEmit --checkJs").await,
                "the type check against @authbridge/protocol",
            );
            true
        })
        .await
}

/// `node host.js <args>` in the example's folder, with the server command given as JSON.
fn host_command(server: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg("host.js")
        .args(args)
        .current_dir(example_dir())
        .env(
            "AUTHBRIDGE_CMD_JSON",
            serde_json::to_string(server).unwrap(),
        )
        .env_remove("AUTHBRIDGE_CMD")
        .env_remove("AUTHBRIDGE_MOCK_URL")
        .env_remove("AUTHBRIDGE_API_KEY")
        .env_remove("RUST_LOG");
    cmd
}

/// The mock-provider binary accepting only `token`: the child and its base URL.
async fn start_mock(token: &str, deltas: &[&str]) -> (tokio::process::Child, String) {
    let mut cmd = Command::new(bins::locate("authbridge-testkit", "mock-provider"));
    cmd.args(["--token", token]);
    for d in deltas {
        cmd.args(["--delta", d]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the mock's URL within 10 s")
        .unwrap()
        .expect("the mock printed its URL");
    (child, url)
}

/// Closes the mock's stdin and returns what it said on stderr as it exited.
async fn stop_mock(mut child: tokio::process::Child) -> String {
    drop(child.stdin.take());
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), pipe.read_to_string(&mut stderr))
        .await
        .expect("the mock exits within 5 s of its stdin closing")
        .unwrap();
    stderr
}

async fn refresh_token() -> String {
    let out = output_within(
        host_command(&["unused"], &["--print-refresh-token"]),
        Duration::from_secs(20),
        "node host.js --print-refresh-token",
    )
    .await;
    assert_success(&out, "--print-refresh-token");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_vscode_jsonrpc_host_streams_the_turn_after_exactly_one_refresh_for_the_forced_401() {
    if !prepared().await {
        return;
    }
    let token = refresh_token().await;
    let (mock, url) = start_mock(&token, &["Hi", " from", " the mock"]).await;
    let server = authbridge_testkit::server::authbridge_bin();
    let out = output_within(
        host_command(&[server.to_str().unwrap()], &["--mock-url", &url]),
        Duration::from_secs(40),
        "the example",
    )
    .await;
    let mock_said = stop_mock(mock).await;
    assert_success(&out, "the example");

    let stdout = String::from_utf8(out.stdout).unwrap();
    let (streamed, summary) = stdout
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("no streamed line and summary line in:\n{stdout}"));
    assert_eq!(streamed, "Hi from the mock");
    let summary: Value = serde_json::from_str(summary).unwrap();
    assert_eq!(
        summary,
        json!({
            "ok": true,
            "text": "Hi from the mock",
            "refreshes": [{"reason": "unauthorized", "previousAccountId": ACCOUNT}],
            "notifications": [
                "account/login/completed", "account/updated", "thread/started",
                "thread/status/changed", "turn/started", "item/started", "item/completed",
                "item/started", "item/agentMessage/delta", "item/agentMessage/delta",
                "item/agentMessage/delta", "item/completed", "thread/tokenUsage/updated",
                "thread/status/changed", "turn/completed"
            ],
            "serverExitCode": 0
        })
    );
    // The 401 with the login token, then the retry with the refreshed one.
    assert_eq!(
        mock_said.trim(),
        "mock-provider: stdin closed after 2 requests"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(&token),
        "the refreshed token leaked into stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("eyJ"),
        "a token leaked into stderr:\n{stderr}"
    );
}

#[tokio::test]
async fn the_vscode_jsonrpc_host_fails_with_the_turns_error_when_the_refreshed_token_is_rejected_too(
) {
    if !prepared().await {
        return;
    }
    let (mock, url) = start_mock("a-token-the-host-never-has", &[]).await;
    let server = authbridge_testkit::server::authbridge_bin();
    let out = output_within(
        host_command(&[server.to_str().unwrap()], &["--mock-url", &url]),
        Duration::from_secs(40),
        "the example",
    )
    .await;
    stop_mock(mock).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\nvscode-host: the turn failed: "),
        "no clear failure message in:\n{stderr}"
    );
}

#[tokio::test]
async fn the_vscode_jsonrpc_host_says_why_when_the_server_command_cannot_start() {
    if !prepared().await {
        return;
    }
    let out = output_within(
        host_command(
            &["/nonexistent/authbridge"],
            &["--mock-url", "http://127.0.0.1:9/v1"],
        ),
        Duration::from_secs(20),
        "the example",
    )
    .await;
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()),
        (
            Some(1),
            "vscode-host: could not start /nonexistent/authbridge: spawn /nonexistent/authbridge ENOENT (code ENOENT)\n".to_owned()
        )
    );
}

#[tokio::test]
async fn the_vscode_jsonrpc_host_passes_every_check_of_the_conformance_kits_host_mode() {
    if !prepared().await {
        return;
    }
    let mut kit = Command::new(bins::locate(
        "authbridge-conformance",
        "authbridge-conformance",
    ));
    kit.args(["host", "--", "node", "host.js"])
        .current_dir(example_dir())
        .env_remove("AUTHBRIDGE_CMD_JSON")
        .env_remove("AUTHBRIDGE_MOCK_URL");
    let out = output_within(kit, Duration::from_secs(60), "authbridge-conformance host").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().last(),
        Some("6 passed, 0 failed, 0 skipped"),
        "{stdout}"
    );
}
