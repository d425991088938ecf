//! End to end, the provider bearer command's process handling (docs/protocol.md §5): one run
//! shared by every waiter, bounded output, and the whole tree killed on timeout and when
//! the server ends. The command is `authbridge-test-cmd`, so the same tests run against the
//! Linux binary and (with `AUTHBRIDGE_BIN_WRAPPER`/`AUTHBRIDGE_TEST_CMD`) the Windows one
//! under wine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use authbridge_testkit::session::{failure_message, start_turn, wait_turn};
use authbridge_testkit::{server, Session, SessionBuilder};

fn test_cmd() -> PathBuf {
    server::test_cmd_bin()
}

/// A TOML array literal of strings.
fn toml_args(args: &[&str]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("\"{}\"", a.replace('\\', "\\\\")))
        .collect();
    format!("[{}]", quoted.join(","))
}

/// A session whose provider `corp` (at the mock) gets its bearer from
/// `authbridge-test-cmd <args>`, killed after `timeout_ms`.
async fn command_session(valid: &[&str], args: &[&str], timeout_ms: u64) -> Session {
    command_config(
        SessionBuilder::accepting(valid.iter().copied()),
        args,
        timeout_ms,
    )
    .start()
    .await
}

/// `builder` with provider `corp` (at the mock) getting its bearer from
/// `authbridge-test-cmd <args>`, killed after `timeout_ms`.
fn command_config(builder: SessionBuilder, args: &[&str], timeout_ms: u64) -> SessionBuilder {
    builder
        .command_provider(&test_cmd())
        .config(&format!(
            "model_providers.corp.auth.args={}",
            toml_args(args)
        ))
        .config(&format!(
            "model_providers.corp.auth.timeout_ms={timeout_ms}"
        ))
}

#[tokio::test]
async fn a_command_token_is_used_and_cached_across_turns() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("runs");
    let s = command_session(
        &["cmd-token-1"],
        &["count", counter.to_str().unwrap(), "cmd-token-"],
        10_000,
    )
    .await;
    assert_eq!(s.turn("one").await["status"], "completed");
    assert_eq!(s.turn("two").await["status"], "completed");
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "1");
    assert_eq!(
        s.mock.authorizations(),
        vec![Some("Bearer cmd-token-1".to_owned()); 2]
    );
}

#[tokio::test]
async fn five_turns_waiting_on_a_hanging_command_fail_together_at_its_one_deadline() {
    let s = command_session(&[], &["hang"], 1000).await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(start_turn(&s.host, &format!("turn {i}")).await);
    }
    let mut ended = Vec::new();
    for id in &ids {
        let done = wait_turn(&s.host, id).await;
        ended.push(started.elapsed());
        let message = failure_message(&done);
        assert!(message.contains("` timed out after 1000ms"), "{message}");
    }
    eprintln!("five waiters on a hanging command ended at {ended:?}");
    // One run, one deadline: before the fix they failed at 1, 2, 3, 4 and 5 s.
    let last = *ended.iter().max().unwrap();
    assert!(
        last < Duration::from_millis(2500),
        "the five waiters ended at {ended:?}"
    );
    assert_eq!(
        s.mock.request_count(),
        0,
        "nothing was sent without a token"
    );
}

/// The server's peak resident memory in KiB (Linux only).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test]
async fn a_command_printing_100_mb_fails_at_the_stdout_limit_without_growing_the_server() {
    let s = command_session(&[], &["flood", "stdout", "100000000"], 20_000).await;
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("` wrote more than 64 KiB to stdout"),
        "{message}"
    );
    assert_eq!(s.mock.request_count(), 0);
    if !server::wrapped() {
        let peak = peak_rss_kib(s.host.pid().unwrap()).expect("VmHWM");
        eprintln!("server peak RSS after a 100 MB command stdout: {peak} KiB");
        assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    }
}

#[tokio::test]
async fn a_command_writing_100_mb_to_stderr_fails_at_the_stderr_limit() {
    let s = command_session(&[], &["flood", "stderr", "100000000"], 20_000).await;
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("` wrote more than 4 KiB to stderr"),
        "{message}"
    );
    if !server::wrapped() {
        let peak = peak_rss_kib(s.host.pid().unwrap()).expect("VmHWM");
        eprintln!("server peak RSS after a 100 MB command stderr: {peak} KiB");
        assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    }
}

#[tokio::test]
async fn a_failing_command_fails_the_turn_with_its_exit_status_and_stderr() {
    let s = command_session(&[], &["fail", "3", "VPN is not connected"], 10_000).await;
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("` exited with status 3: VPN is not connected"),
        "{message}"
    );
    assert_eq!(s.mock.request_count(), 0);
}

#[tokio::test]
async fn a_rerun_after_a_401_is_bounded_by_the_commands_own_timeout_only() {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("ran");
    // The provider refuses the first token; the re-run hangs. The host-refresh deadline
    // (300 ms) is not the command's: the turn fails at the command's 1500 ms, saying so.
    let s = SessionBuilder::accepting(Vec::<String>::new())
        .config("external_auth_refresh_timeout_ms=300");
    let s = command_config(s, &["once", mark.to_str().unwrap(), "refused-token"], 1500)
        .start()
        .await;
    let started = Instant::now();
    let message = failure_message(&s.turn("hi").await);
    assert!(message.contains("` timed out after 1500ms"), "{message}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(
        s.mock.authorizations(),
        vec![Some("Bearer refused-token".to_owned())]
    );
}

/// A listener the command's child connects to; `wait_gone` sees the connection close,
/// which happens only when the child process is dead.
struct Grandchild {
    listener: tokio::net::TcpListener,
}

impl Grandchild {
    async fn listen() -> Self {
        Grandchild {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn addr(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    async fn connected(&self) -> tokio::net::TcpStream {
        let accept = tokio::time::timeout(Duration::from_secs(20), self.listener.accept());
        accept.await.expect("the child connected").unwrap().0
    }

    /// True when the child's end closed within `deadline`.
    async fn gone(mut conn: tokio::net::TcpStream, deadline: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(deadline, conn.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

#[tokio::test]
async fn a_timed_out_command_has_its_whole_tree_killed() {
    let child = Grandchild::listen().await;
    let addr = child.addr();
    let s = command_session(&[], &["tree", &addr], 1500).await;
    let turn = start_turn(&s.host, "hi").await;
    let conn = child.connected().await;
    let message = failure_message(&wait_turn(&s.host, &turn).await);
    assert!(message.contains("` timed out after 1500ms"), "{message}");
    assert!(
        Grandchild::gone(conn, Duration::from_secs(10)).await,
        "the command's child outlived the timeout"
    );
}

#[tokio::test]
async fn the_command_tree_is_killed_when_the_server_ends() {
    let child = Grandchild::listen().await;
    let addr = child.addr();
    let mut s = command_session(&[], &["tree", &addr], 120_000).await;
    let _turn = start_turn(&s.host, "hi").await;
    let conn = child.connected().await;
    s.host.close_stdin().await;
    assert!(
        s.host.wait_exit(Duration::from_secs(20)).await.is_some(),
        "the server did not exit"
    );
    assert!(
        Grandchild::gone(conn, Duration::from_secs(10)).await,
        "the command's child outlived the server"
    );
}
