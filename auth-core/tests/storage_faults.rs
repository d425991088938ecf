//! A managed refresh whose answer cannot be written (§4.2): a real tmpfs filled to the
//! brim, and an `auth.json` that cannot be replaced (a bind mount on it: rename → EBUSY).
//! The endpoint has already rotated the refresh token, so the new tokens must be kept and
//! used from memory, the failure reported, the spent refresh token never sent again (the
//! endpoint here answers `refresh_token_reused` to a second use), and the tokens written
//! as soon as the file can be written. Needs root for `mount`; skips, saying so, without.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use authbridge_auth_core::*;
use authbridge_testkit::mounts::{bind_on_itself, fill, tmpfs};
use common::*;

fn refresh_tokens_sent(server: &TokenServer) -> Vec<String> {
    server
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["refresh_token"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A managed auth.json in `dir` whose access token has expired, and a manager on it.
async fn expired_managed(dir: &Path) -> (TokenServer, std::sync::Arc<AuthManager>, String) {
    let server = TokenServer::rotating("org-1").await;
    let expired = jwt("org-1", "pro", now() - 60, "expired");
    write_managed(dir, &expired, &fresh_jwt("org-1", "id"), "rt-0", "org-1");
    let mut cfg = config(dir);
    cfg.token_url = server.url.clone();
    (server, AuthManager::new(cfg), expired)
}

/// The shared story, with `unblock` making the file writable again.
async fn rotated_tokens_survive_a_failed_write(
    dir: &Path,
    (server, mgr, expired): (TokenServer, std::sync::Arc<AuthManager>, String),
    why: &str,
    unblock: impl FnOnce(),
) {
    // 1. The proactive refresh rotates rt-0; the write fails; the new token is used.
    let creds = mgr.auth().await.unwrap().expect("credentials");
    assert_ne!(
        creds.bearer_token().expose(),
        expired,
        "the rotated tokens were thrown away"
    );
    let problem = mgr.storage_problem().expect("the failed write is reported");
    assert!(problem.contains(why), "{problem}");
    assert!(problem.contains("auth.json"), "{problem}");
    assert!(!problem.contains("rt-0"), "{problem}");
    assert_eq!(read_auth_json(dir)["tokens"]["refresh_token"], "rt-0");
    // Reads still answer, from memory.
    let snap = mgr.snapshot().unwrap().expect("snapshot");
    assert!(snap.same_tokens(&creds));

    // 2. A later refresh (here forced) uses the rotated refresh token, never rt-0.
    mgr.refresh_managed().await.expect("second refresh");
    // 3. So does the 401 recovery (reload finds the stale file: it must not win).
    let current = mgr.auth().await.unwrap().unwrap();
    let mut recovery = mgr.unauthorized_recovery(&current);
    while recovery.has_next() {
        recovery.next().await.expect("recovery refresh");
    }
    assert_eq!(
        refresh_tokens_sent(&server),
        ["rt-0", "rt-0-next", "rt-0-next-next"],
        "a spent refresh token was sent again"
    );
    assert!(mgr.storage_problem().is_some());
    assert_eq!(read_auth_json(dir)["tokens"]["refresh_token"], "rt-0");

    // 4. The file becomes writable: the next auth() writes the tokens, without a refresh.
    unblock();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = mgr.auth().await.unwrap().unwrap();
        let saved = read_auth_json(dir)["tokens"]["refresh_token"].clone();
        if saved == "rt-0-next-next-next" {
            assert_eq!(
                read_auth_json(dir)["tokens"]["access_token"],
                c.bearer_token().expose()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tokens not saved within 10 s: file has {saved}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mgr.storage_problem(), None);
    assert_eq!(server.calls(), 3, "saving must not call the endpoint");
    // A fresh process reads the saved tokens.
    let mut cfg = config(dir);
    cfg.token_url = server.url.clone();
    let again = AuthManager::new(cfg).snapshot().unwrap().unwrap();
    assert_eq!(
        again.bearer_token(),
        mgr.snapshot().unwrap().unwrap().bearer_token()
    );
}

#[tokio::test]
async fn on_a_full_tmpfs_the_rotated_tokens_are_kept_used_and_saved_later() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("auth");
    std::fs::create_dir(&dir).unwrap();
    let Some(_mount) = tmpfs(&dir, "64k") else {
        return;
    };
    // auth.json first, then fill the rest of the 64 KiB.
    let setup = expired_managed(&dir).await;
    let filler = fill(&dir);
    assert!(
        std::fs::write(dir.join("probe"), vec![0u8; 8192]).is_err(),
        "the tmpfs is not full"
    );
    let _ = std::fs::remove_file(dir.join("probe"));
    rotated_tokens_survive_a_failed_write(&dir, setup, "No space left on device", || {
        std::fs::remove_file(&filler).unwrap();
    })
    .await;
}

#[tokio::test]
async fn with_auth_json_that_cannot_be_replaced_the_rotated_tokens_are_kept_used_and_saved_later() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("auth");
    std::fs::create_dir(&dir).unwrap();
    // Write the file, then bind-mount it on itself: it reads as before, but renaming a
    // new file over it fails with EBUSY — for root too.
    let setup = expired_managed(&dir).await;
    let Some(bind) = bind_on_itself(&dir.join("auth.json")) else {
        return;
    };
    let mut bind = Some(bind);
    rotated_tokens_survive_a_failed_write(&dir, setup, "busy", move || drop(bind.take())).await;
}
