//! End to end, `auth.json` and its lock (docs/protocol.md §4.1): written and re-read by a
//! second server, the lock held by another process bounded by `auth_lock_timeout_ms`, and
//! the file-safety rules (a lock symlink is never followed; a file readable by others is
//! tightened). Portable: the lock holder is `authbridge-test-cmd` run the way the server
//! is, so under wine both take a Windows lock.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use authbridge_testkit::{server, Session, SessionBuilder};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A second process holding `auth.json.lock` until dropped.
struct LockHolder {
    child: tokio::process::Child,
}

impl LockHolder {
    async fn hold(home: &Path) -> Self {
        let mut child = server::test_cmd_command()
            .arg("lock")
            .arg(home.join("auth.json.lock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the lock holder");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        assert_eq!(
            first
                .expect("the holder locked in time")
                .unwrap()
                .as_deref(),
            Some("locked")
        );
        LockHolder { child }
    }

    async fn release(mut self) {
        drop(self.child.stdin.take());
        let exited = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        assert!(exited.is_ok(), "the lock holder did not exit");
    }
}

async fn login_api_key(s: &Session, key: &str, deadline: Duration) -> serde_json::Value {
    s.host
        .call(
            "account/login/start",
            Some(json!({"type": "apiKey", "apiKey": key})),
            deadline,
        )
        .await
        .expect("an answer")
}

#[tokio::test]
async fn auth_json_is_written_by_one_server_and_read_by_the_next() {
    let s = Session::start().await;
    let answer = login_api_key(&s, "sk-stored-1", Duration::from_secs(10)).await;
    assert_eq!(answer["result"], json!({"type": "apiKey"}), "{answer}");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.home().join("auth.json")).unwrap()).unwrap();
    assert_eq!(stored["OPENAI_API_KEY"], "sk-stored-1");
    #[cfg(unix)]
    if !server::wrapped() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.home().join("auth.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut cmd = server::command(s.home(), &[] as &[&str]);
    cmd.env("AUTHBRIDGE_HOME", s.home());
    let next = authbridge_testkit::Host::spawn(cmd, Default::default()).unwrap();
    next.initialize(json!({})).await.unwrap();
    let read = next
        .request("account/read", json!({}))
        .await
        .expect("account/read");
    assert_eq!(read["account"]["type"], "apiKey", "{read}");
}

#[tokio::test]
async fn a_login_waiting_for_another_process_lock_fails_after_the_default_5_s() {
    let s = Session::start().await;
    let holder = LockHolder::hold(s.home()).await;
    let started = Instant::now();
    let answer = login_api_key(&s, "sk-locked", Duration::from_secs(30)).await;
    let waited = started.elapsed();
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("auth.json.lock"), "{message}");
    assert!(
        waited >= Duration::from_millis(4500) && waited < Duration::from_secs(10),
        "failed after {waited:?}"
    );
    assert!(!s.home().join("auth.json").exists(), "nothing was written");
    // Once the other process lets go, the same login goes through.
    holder.release().await;
    let answer = login_api_key(&s, "sk-locked", Duration::from_secs(10)).await;
    assert_eq!(answer["result"], json!({"type": "apiKey"}), "{answer}");
}

#[tokio::test]
async fn a_logout_waiting_for_the_lock_honours_auth_lock_timeout_ms() {
    let s = SessionBuilder::default()
        .config("auth_lock_timeout_ms=800")
        .start()
        .await;
    let answer = login_api_key(&s, "sk-out", Duration::from_secs(10)).await;
    assert_eq!(answer["result"], json!({"type": "apiKey"}), "{answer}");
    let _holder = LockHolder::hold(s.home()).await;
    let started = Instant::now();
    let answer = s
        .host
        .call("account/logout", None, Duration::from_secs(30))
        .await
        .expect("an answer");
    let waited = started.elapsed();
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("auth.json.lock"), "{message}");
    assert!(message.contains("800ms"), "{message}");
    assert!(waited < Duration::from_secs(5), "failed after {waited:?}");
    assert!(s.home().join("auth.json").exists(), "the file was kept");
}

#[cfg(unix)]
#[tokio::test]
async fn a_dangling_lock_symlink_is_not_followed_out_of_the_home() {
    if server::wrapped() {
        return; // Windows symlinks need privileges wine does not model; Unix-only rule
    }
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("created-through-the-link");
    let s = Session::start().await;
    std::os::unix::fs::symlink(&target, s.home().join("auth.json.lock")).unwrap();
    let answer = login_api_key(&s, "sk-link", Duration::from_secs(10)).await;
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("auth.json.lock"), "{message}");
    assert!(!target.exists(), "the lock was created through the symlink");
}

#[cfg(unix)]
#[tokio::test]
async fn a_world_readable_auth_json_is_tightened_to_0600_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    if server::wrapped() {
        return; // a Unix mode; Windows relies on the profile's ACL (docs/platforms.md)
    }
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("auth.json");
    std::fs::write(
        &path,
        r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-wide"}"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = server::command(home.path(), &[] as &[&str]);
    cmd.env("AUTHBRIDGE_LOG", "warn");
    let host = authbridge_testkit::Host::spawn(cmd, Default::default()).unwrap();
    host.initialize(json!({})).await.unwrap();
    let read = host.request("account/read", json!({})).await.unwrap();
    assert_eq!(read["account"]["type"], "apiKey", "{read}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let stderr = host.stderr_text();
    assert!(stderr.contains("now 0600"), "{stderr}");
    assert!(!stderr.contains("sk-wide"), "{stderr}");
}
