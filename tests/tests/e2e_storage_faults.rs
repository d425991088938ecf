//! End to end, a managed refresh whose answer cannot be written (docs/protocol.md §4.2):
//! `auth_dir` on a real 64 KiB tmpfs filled to the brim, and an `auth.json` bind-mounted on
//! itself so renaming over it fails (EBUSY, for root too). The loopback token endpoint
//! rotates each refresh token once and answers `refresh_token_reused` to a second use.
//! The server must keep and use the rotated tokens, tell the host (`warning`), keep
//! answering `account/read`, never send a spent refresh token, and write the tokens once
//! the file can be written. Needs root for `mount`; skips, saying so, without.

use std::path::{Path, PathBuf};
use std::time::Duration;

use authbridge_testkit::auth_json::{self, ManagedAuth};
use authbridge_testkit::mounts::{bind_on_itself, fill, tmpfs};
use authbridge_testkit::{Host, Jwt, MockOptions, MockProvider, TokenEndpoint};
use serde_json::{json, Value};

fn access(tag: &str, ttl: Duration) -> String {
    Jwt::new()
        .email("user@example.com")
        .account("org-1")
        .plan("plus")
        .exp_in(ttl)
        .claim("jti", json!(tag))
        .mint()
}

fn write_auth_json(dir: &Path, access_token: &str) {
    let id_token = Jwt::new()
        .email("user@example.com")
        .account("org-1")
        .plan("plus")
        .mint();
    ManagedAuth::new(&id_token, access_token, "rt_1")
        .last_refresh("2026-12-01T00:00:00Z")
        .write(dir);
}

fn stored_refresh_token(dir: &Path) -> Value {
    auth_json::read(dir).expect("auth.json")["tokens"]["refresh_token"].clone()
}

/// `completed`, in the current turn shape or in Codex's (`turn.status`).
fn completed(done: &Value) -> bool {
    done["status"] == "completed" || done["turn"]["status"] == "completed"
}

struct Setup {
    _home: tempfile::TempDir,
    dir: PathBuf,
    endpoint: TokenEndpoint,
    mock: MockProvider,
    host: Host,
    fresh: [String; 3],
}

/// An expired managed login in `dir`; the server, mock and endpoint around it. The
/// endpoint will issue `fresh[0..3]` in order; the mock accepts the first two.
async fn start(home: tempfile::TempDir, dir: PathBuf, block: impl FnOnce(&Path)) -> Setup {
    let expired = access("expired", Duration::ZERO);
    write_auth_json(&dir, &expired);
    block(&dir);
    let fresh = [
        access("fresh-1", Duration::from_secs(3600)),
        access("fresh-2", Duration::from_secs(3600)),
        access("fresh-3", Duration::from_secs(3600)),
    ];
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    endpoint.issue_access_tokens(fresh.clone());
    let mock = MockProvider::start(MockOptions::with_tokens([
        fresh[0].clone(),
        fresh[1].clone(),
    ]))
    .await
    .unwrap();
    let mut overrides = authbridge_testkit::server::openai_overrides(&mock.url(), 500);
    overrides.push(format!("auth_dir=\"{}\"", dir.display()));
    let mut cmd = authbridge_testkit::server::command(home.path(), &overrides);
    cmd.env("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", endpoint.url());
    let host = Host::spawn(cmd, Default::default()).unwrap();
    host.initialize(json!({})).await.unwrap();
    Setup {
        _home: home,
        dir,
        endpoint,
        mock,
        host,
        fresh,
    }
}

async fn story(s: Setup, why: &str, unblock: impl FnOnce()) {
    // 1. The proactive refresh rotates rt_1, the write fails, the turn uses the new token.
    let done = authbridge_testkit::session::run_turn(&s.host, "one").await;
    assert!(completed(&done), "{done}\n{}", s.host.stderr_text());
    let warning = s
        .host
        .wait_message(|m| m["method"] == "warning", Duration::from_secs(5))
        .await
        .expect("the host is told about the failed write");
    let message = warning["params"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(why) && message.contains("auth.json"),
        "{warning}"
    );
    assert_eq!(warning["params"]["threadId"], Value::Null);
    assert_eq!(
        stored_refresh_token(&s.dir),
        "rt_1",
        "the file was written after all"
    );
    let read = s.host.request("account/read", json!({})).await.unwrap();
    assert_eq!(read["account"]["type"], "chatgpt", "{read}");

    // 2. The provider now rejects fresh-1: the 401 recovery refreshes with rt_issued_1.
    s.mock.reject_token(&s.fresh[0]);
    let done = authbridge_testkit::session::run_turn(&s.host, "two").await;
    assert!(completed(&done), "{done}");
    let sent: Vec<Value> = s
        .endpoint
        .bodies()
        .iter()
        .map(|b| b["refresh_token"].clone())
        .collect();
    assert_eq!(
        sent,
        [json!("rt_1"), json!("rt_issued_1")],
        "a spent refresh token was sent"
    );
    assert_eq!(
        s.mock.authorizations().last().cloned().flatten(),
        Some(format!("Bearer {}", s.fresh[1]))
    );

    // 3. Writable again: the next write persists the tokens in use.
    unblock();
    let read = s
        .host
        .request("account/read", json!({"refreshToken": true}))
        .await
        .unwrap();
    assert_eq!(read["account"]["type"], "chatgpt", "{read}");
    assert_eq!(stored_refresh_token(&s.dir), "rt_issued_3");
    let sent: Vec<Value> = s
        .endpoint
        .bodies()
        .iter()
        .map(|b| b["refresh_token"].clone())
        .collect();
    assert_eq!(
        sent,
        [json!("rt_1"), json!("rt_issued_1"), json!("rt_issued_2")]
    );
    let stderr = s.host.stderr_text();
    for token in ["rt_1", "rt_issued"] {
        assert!(
            !stderr.contains(token),
            "a refresh token was logged: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_full_disk_during_a_managed_refresh_keeps_the_user_signed_in() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("auth");
    std::fs::create_dir(&dir).unwrap();
    let Some(_mount) = tmpfs(&dir, "64k") else {
        return;
    };
    let mut filler = None;
    let s = start(home, dir.clone(), |d| filler = Some(fill(d))).await;
    assert!(
        std::fs::write(dir.join("probe"), [0u8; 8192]).is_err(),
        "the tmpfs is not full"
    );
    let filler = filler.unwrap();
    story(s, "No space left on device", move || {
        std::fs::remove_file(&filler).unwrap()
    })
    .await;
}

#[tokio::test]
async fn an_auth_json_that_cannot_be_replaced_keeps_the_user_signed_in() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("auth");
    std::fs::create_dir(&dir).unwrap();
    let mut bind = None;
    let s = start(home, dir.clone(), |d| {
        bind = bind_on_itself(&d.join("auth.json"));
    })
    .await;
    if bind.is_none() {
        return;
    }
    story(s, "busy", move || drop(bind.take())).await;
}
