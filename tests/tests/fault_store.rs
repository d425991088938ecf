//! Fault injection, credential store: an `auth_dir` that cannot be created,
//! `auth.json` replaced by a directory, and `kill -9` at random moments during 200
//! refresh-and-write cycles. (A corrupt `auth.json` is proved in `e2e_account.rs`.)
//!
//! These tests run as root, for whom `chmod` stops nothing: the unwritable store is an
//! `auth_dir` *under a regular file*, so every create fails with ENOTDIR whoever we are.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use authbridge_testkit::auth_json::ManagedAuth;
use authbridge_testkit::jwt::tagged as jwt;
use authbridge_testkit::{Host, MockOptions, Session, SessionBuilder, TokenEndpoint};
use serde_json::{json, Value};

async fn session_with_auth_dir(auth_dir: &Path, valid: &[&str]) -> Session {
    SessionBuilder {
        mock: MockOptions::with_tokens(valid.iter().map(|t| t.to_string())),
        ..SessionBuilder::default()
    }
    .config(&format!("auth_dir=\"{}\"", auth_dir.display()))
    .start()
    .await
}

/// External tokens (memory only) still work, and the server reports exactly them.
async fn external_tokens_still_work(s: &Session) {
    let token = jwt("mem");
    s.mock.accept_token(&token);
    s.login_external(&token, "org-1", Some("pro"))
        .await
        .expect("external login");
    assert_eq!(s.turn("hi").await["status"], "completed");
    let status = s.auth_status().await;
    assert_eq!(status["authToken"], json!(token));
}

#[tokio::test]
async fn an_unwritable_store_fails_an_api_key_login_as_internal_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let s = session_with_auth_dir(&file.join("auth"), &[]).await;
    let err = s
        .host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-unwritable"}),
        )
        .await
        .expect_err("the key cannot be stored");
    assert_eq!(err.code, -32603, "{err:?}");
    assert!(!err.message.contains("sk-unwritable"), "{err:?}");
    // The store cannot even be read: reads say so (-32603 naming the path) rather than
    // reporting no account, and certainly not the key that was never stored.
    let err = s
        .host
        .request("account/read", json!({}))
        .await
        .expect_err("the store cannot be read");
    assert_eq!(err.code, -32603, "{err:?}");
    assert!(err.message.contains("auth.json"), "{err:?}");
    assert!(!err.message.contains("sk-unwritable"), "{err:?}");
    external_tokens_still_work(&s).await;
}

#[tokio::test]
async fn auth_json_replaced_by_a_directory_fails_reads_as_internal_and_refuses_a_key_login() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("auth.json")).unwrap();
    let s = session_with_auth_dir(home.path(), &[]).await;
    // An I/O error reading the store is -32603 naming the path (docs/protocol.md §1.3).
    let err = s
        .host
        .request("account/read", json!({}))
        .await
        .expect_err("a directory is not a credential file");
    assert_eq!(err.code, -32603, "{err:?}");
    assert!(
        err.message
            .contains(&home.path().join("auth.json").display().to_string()),
        "{err:?}"
    );
    let err = s
        .host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-dir"}),
        )
        .await
        .expect_err("a file cannot replace a directory");
    assert_eq!(err.code, -32603, "{err:?}");
    assert!(!err.message.contains("sk-dir"), "{err:?}");
    assert!(
        home.path().join("auth.json").is_dir(),
        "the directory was touched"
    );
    external_tokens_still_work(&s).await;
}

fn write_auth_json(home: &Path, access: &str, refresh: &str) {
    ManagedAuth::new(&jwt("id"), access, refresh).write(home);
}

/// `(access_token, refresh_token)` in the file, asserting it parses and is 0600.
fn stored_pair(home: &Path, cycle: usize) -> (String, String) {
    let path = home.join("auth.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "cycle {cycle}: auth.json mode {mode:o}");
    let bytes = std::fs::read(&path).unwrap();
    let v: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("cycle {cycle}: auth.json does not parse: {e}"));
    let t = &v["tokens"];
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn kill_9_during_200_refresh_and_write_cycles_leaves_the_old_or_the_new_tokens() {
    const CYCLES: usize = 200;
    let home = tempfile::tempdir().unwrap();
    write_auth_json(home.path(), &jwt("first"), "rt_first");
    let endpoint = TokenEndpoint::start("org-1", "pro", ["rt_first"])
        .await
        .unwrap();
    let overrides = ["chatgpt_token_timeout_ms=2000"];
    // A fixed sequence of kill delays (0–11 ms): reproducible, and spread over the whole
    // refresh (request, token endpoint, temp file, fsync, rename).
    let mut seed: u32 = 7;
    let (mut kept_old, mut took_new) = (0, 0);
    for cycle in 0..CYCLES {
        let mut before = stored_pair(home.path(), cycle);
        let spent = endpoint
            .bodies()
            .iter()
            .any(|b| b["refresh_token"] == before.1.as_str());
        if spent {
            // The last kill came after the endpoint rotated this refresh token but before
            // the write: the endpoint would answer `refresh_token_reused` forever. Start
            // this cycle from a fresh one (the file was checked above).
            write_auth_json(home.path(), &before.0, &format!("rt_cycle_{cycle}"));
            before = stored_pair(home.path(), cycle);
        }
        endpoint.accept_refresh_token(&before.1);
        let mut cmd = authbridge_testkit::server::command(home.path(), &overrides);
        cmd.env("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", endpoint.url());
        let mut host = Host::spawn(cmd, Default::default()).unwrap();
        host.initialize(json!({})).await.unwrap();
        host.send(&json!({"id": "r", "method": "account/read", "params": {"refreshToken": true}}))
            .await
            .unwrap();
        if cycle % 10 == 9 {
            // Every tenth kill comes just after the answer: the write surely happened.
            let answered = host
                .wait_message(|m| m["id"] == "r", Duration::from_secs(5))
                .await;
            assert!(
                answered.is_some(),
                "cycle {cycle}: the refresh was not answered"
            );
        } else {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let delay = u64::from((seed >> 16) % 12);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        host.kill().await; // SIGKILL
        let _ = host.wait_exit(Duration::from_secs(2)).await;
        let after = stored_pair(home.path(), cycle);
        if after == before {
            kept_old += 1;
        } else {
            let issued: Vec<(String, String)> = endpoint
                .issued()
                .into_iter()
                .map(|t| (t.access_token, t.refresh_token))
                .collect();
            assert!(
                issued.contains(&after),
                "cycle {cycle}: tokens that are neither old nor issued"
            );
            took_new += 1;
        }
    }
    eprintln!("kill -9 cycles: {kept_old} kept the old tokens, {took_new} hold new ones");
    assert_eq!(kept_old + took_new, CYCLES);
    assert!(
        took_new >= CYCLES / 10,
        "{took_new} cycles hold new tokens: refreshes do not stick"
    );
    // No temporary file is left readable by others either.
    for entry in std::fs::read_dir(home.path()).unwrap().flatten() {
        let mode = entry.metadata().unwrap().permissions().mode() & 0o077;
        if entry.file_type().unwrap().is_file() {
            assert_eq!(mode, 0, "{} is readable by others", entry.path().display());
        }
    }
}
