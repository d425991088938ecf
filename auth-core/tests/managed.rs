//! Managed ChatGPT refresh against a real token endpoint on 127.0.0.1 (§4.2).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use authbridge_auth_core::*;
use axum::http::StatusCode;
use common::*;
use serde_json::json;

struct Setup {
    dir: tempfile::TempDir,
    server: TokenServer,
    mgr: Arc<AuthManager>,
    access: String,
    id: String,
}

async fn setup(server: TokenServer) -> Setup {
    setup_with(server, Duration::from_secs(5)).await
}

async fn setup_with(server: TokenServer, timeout: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let access = fresh_jwt("org-1", "access-0");
    let id = fresh_jwt("org-1", "id-0");
    write_managed(dir.path(), &access, &id, "rt-0", "org-1");
    let mut cfg = config(dir.path());
    cfg.token_url = server.url.clone();
    cfg.client_id = "client-xyz".into();
    cfg.token_timeout = timeout;
    let mgr = AuthManager::new(cfg);
    Setup {
        dir,
        server,
        mgr,
        access,
        id,
    }
}

#[tokio::test]
async fn a_successful_refresh_posts_the_grant_and_rewrites_auth_json() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    let before = s.mgr.auth().await.unwrap().unwrap();
    assert_eq!(
        (before.mode(), before.account_id(), before.email()),
        (
            ApiAuthMode::Chatgpt,
            Some("org-1"),
            Some("id-0@example.com")
        )
    );
    s.mgr.refresh_managed().await.unwrap();
    assert_eq!(
        s.server.requests.lock().unwrap().clone(),
        vec![
            json!({"client_id": "client-xyz", "grant_type": "refresh_token", "refresh_token": "rt-0"})
        ]
    );
    let file = read_auth_json(s.dir.path());
    assert_eq!(file["tokens"]["refresh_token"], "rt-0-next");
    assert_eq!(file["tokens"]["account_id"], "org-1");
    assert_eq!(file["auth_mode"], "chatgpt");
    let last =
        chrono::DateTime::parse_from_rfc3339(file["last_refresh"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - last.to_utc()).num_seconds() < 5);
    let after = s.mgr.auth().await.unwrap().unwrap();
    assert_eq!(
        after.bearer_token().expose(),
        file["tokens"]["access_token"].as_str().unwrap()
    );
    assert_eq!(after.email(), Some("id-after-rt-0@example.com"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.dir.path().join("auth.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_refresh_without_id_token_keeps_the_old_one() {
    let s = setup(TokenServer::fixed(200, json!({"access_token": "new-access"})).await).await;
    s.mgr.refresh_managed().await.unwrap();
    let file = read_auth_json(s.dir.path());
    assert_eq!(
        file["tokens"],
        json!({"id_token": s.id, "access_token": "new-access", "refresh_token": "rt-0", "account_id": "org-1"})
    );
    assert_ne!(s.access, "new-access");
}

#[tokio::test]
async fn each_failure_is_classified_with_the_documented_words() {
    let cases = [
        (400, json!({"error": {"code": "refresh_token_expired"}}), true,
         "Your access token could not be refreshed because your refresh token has expired. Please log out and sign in again."),
        (400, json!({"error": "refresh_token_reused"}), true,
         "Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again."),
        (401, json!({"code": "REFRESH_TOKEN_INVALIDATED"}), true,
         "Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again."),
        (401, json!({"error": {"code": "something_else"}}), true,
         "Your access token could not be refreshed. Please log out and sign in again."),
        (500, json!({"error": {"message": "upstream exploded"}}), false,
         "Failed to refresh token: 500: upstream exploded"),
        (200, json!("not an object"), false,
         "Failed to refresh token: 200: unparsable response body"),
    ];
    for (status, body, permanent, message) in cases {
        let s = setup(TokenServer::fixed(status, body.clone()).await).await;
        let err = s.mgr.refresh_managed().await.unwrap_err();
        assert_eq!(
            (err.is_permanent(), err.to_string().as_str()),
            (permanent, message),
            "{body}"
        );
        let creds = s.mgr.snapshot().unwrap().unwrap();
        assert_eq!(s.mgr.has_permanent_failure(&creds), permanent);
        assert_eq!(
            creds.bearer_token().expose(),
            s.access,
            "the old tokens stay"
        );
    }
}

#[tokio::test]
async fn a_permanent_failure_fails_at_once_for_its_snapshot_only() {
    let s = setup(TokenServer::fixed(400, json!({"error": "refresh_token_expired"})).await).await;
    let old = s.mgr.auth().await.unwrap().unwrap();
    s.mgr.refresh_managed().await.unwrap_err();
    s.mgr.refresh_managed().await.unwrap_err();
    assert_eq!(
        s.server.calls(),
        1,
        "the second attempt failed without a request"
    );
    assert!(s.mgr.has_permanent_failure(&old));

    // New credentials (a re-login by another process) are not tainted by the old failure.
    write_managed(
        s.dir.path(),
        &fresh_jwt("org-1", "relogin"),
        &s.id,
        "rt-new",
        "org-1",
    );
    let mut rec = s.mgr.unauthorized_recovery(&old);
    assert_eq!(rec.next().await.unwrap(), RecoveryOutcome { changed: true });
    let updated = s.mgr.snapshot().unwrap().unwrap();
    assert!(!s.mgr.has_permanent_failure(&updated));
    s.mgr.refresh_managed().await.unwrap_err();
    assert_eq!(s.server.calls(), 2, "the updated credentials were tried");
}

#[tokio::test]
async fn a_slow_endpoint_times_out_as_a_transient_failure() {
    let server = TokenServer::start(Arc::new(|_| {
        (StatusCode::OK, json!({}), Duration::from_secs(10))
    }))
    .await;
    let s = setup_with(server, Duration::from_millis(300)).await;
    let started = Instant::now();
    let err = s.mgr.refresh_managed().await.unwrap_err();
    assert_eq!(
        (err.is_permanent(), err.to_string()),
        (
            false,
            "Failed to refresh token: timeout: no answer after 300ms".to_owned()
        )
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn tokens_another_process_wrote_are_adopted_without_a_request() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    let old = s.mgr.auth().await.unwrap().unwrap();
    let theirs = fresh_jwt("org-1", "theirs");
    write_managed(s.dir.path(), &theirs, &s.id, "rt-theirs", "org-1");
    s.mgr.refresh_managed().await.unwrap();
    assert_eq!(s.server.calls(), 0);
    let now = s.mgr.snapshot().unwrap().unwrap();
    assert_eq!(now.bearer_token().expose(), theirs);
    assert!(!now.same_tokens(&old));
}

#[tokio::test]
async fn another_account_in_auth_json_is_a_permanent_failure() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    // Within a second of start-up the manager has not stat-ed auth.json again, so the
    // guarded refresh is the first to see the other account.
    let old = s.mgr.snapshot().unwrap().unwrap();
    write_managed(
        s.dir.path(),
        &fresh_jwt("org-9", "other"),
        &s.id,
        "rt-9",
        "org-9",
    );
    let err = s.mgr.refresh_managed().await.unwrap_err();
    assert_eq!(
        (err.is_permanent(), err.to_string().as_str()),
        (true, "Your access token could not be refreshed because you have since logged out or signed in to another account. Please sign in again.")
    );
    assert!(s.mgr.has_permanent_failure(&old));
    assert_eq!(s.server.calls(), 0);
    let now = s.mgr.snapshot().unwrap().unwrap();
    assert_eq!(
        now.account_id(),
        Some("org-9"),
        "the new login is what is current now"
    );
    assert!(!s.mgr.has_permanent_failure(&now));
}

#[tokio::test]
async fn recovery_reloads_then_refreshes() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    let old = s.mgr.auth().await.unwrap().unwrap();
    let mut rec = s.mgr.unauthorized_recovery(&old);
    assert_eq!(
        (rec.mode(), rec.step(), rec.unavailable_reason()),
        (
            RecoveryMode::Managed,
            RecoveryStep::Reload,
            UnavailableReason::Ready
        )
    );
    // Nothing new on disk: the reload goes straight on to the refresh.
    assert_eq!(rec.next().await.unwrap(), RecoveryOutcome { changed: true });
    assert_eq!(
        (rec.has_next(), rec.unavailable_reason()),
        (false, UnavailableReason::RecoveryExhausted)
    );
    assert_eq!(s.server.calls(), 1);
    let now = s.mgr.auth().await.unwrap().unwrap();
    assert_eq!(
        read_auth_json(s.dir.path())["tokens"]["access_token"],
        now.bearer_token().expose()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recoveries_in_one_process_call_the_endpoint_once() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    let old = s.mgr.auth().await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (mgr, old) = (s.mgr.clone(), old.clone());
        tasks.push(tokio::spawn(async move {
            let mut rec = mgr.unauthorized_recovery(&old);
            rec.next().await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), RecoveryOutcome { changed: true });
    }
    assert_eq!(s.server.calls(), 1);
}

#[tokio::test]
async fn auth_refreshes_proactively_when_the_token_expires_soon() {
    let server = TokenServer::rotating("org-1").await;
    let dir = tempfile::tempdir().unwrap();
    let expiring = jwt("org-1", "pro", now() + 120, "expiring");
    write_managed(
        dir.path(),
        &expiring,
        &fresh_jwt("org-1", "id"),
        "rt-0",
        "org-1",
    );
    let mut cfg = config(dir.path());
    cfg.token_url = server.url.clone();
    let mgr = AuthManager::new(cfg);
    let creds = mgr.auth().await.unwrap().unwrap();
    assert_ne!(creds.bearer_token().expose(), expiring);
    assert_eq!(server.calls(), 1);
    mgr.auth().await.unwrap();
    assert_eq!(server.calls(), 1, "the refreshed token is fresh");
}

#[tokio::test]
async fn a_failed_proactive_refresh_returns_the_current_credentials() {
    let server = TokenServer::fixed(503, json!({"error": {"message": "busy"}})).await;
    let dir = tempfile::tempdir().unwrap();
    let expiring = jwt("org-1", "pro", now() + 120, "expiring");
    write_managed(
        dir.path(),
        &expiring,
        &fresh_jwt("org-1", "id"),
        "rt-0",
        "org-1",
    );
    let mut cfg = config(dir.path());
    cfg.token_url = server.url.clone();
    let mgr = AuthManager::new(cfg);
    for _ in 0..3 {
        assert_eq!(
            mgr.auth().await.unwrap().unwrap().bearer_token().expose(),
            expiring
        );
    }
    assert_eq!(server.calls(), 1, "a failed proactive refresh backs off");
}

#[tokio::test]
async fn credentials_older_than_eight_days_are_refreshed() {
    let server = TokenServer::rotating("org-1").await;
    let dir = tempfile::tempdir().unwrap();
    write_managed(
        dir.path(),
        &fresh_jwt("org-1", "a"),
        &fresh_jwt("org-1", "id"),
        "rt-0",
        "org-1",
    );
    let mut file = read_auth_json(dir.path());
    file["last_refresh"] = json!((chrono::Utc::now() - chrono::Duration::days(9)).to_rfc3339());
    std::fs::write(dir.path().join("auth.json"), file.to_string()).unwrap();
    let mut cfg = config(dir.path());
    cfg.token_url = server.url.clone();
    AuthManager::new(cfg).auth().await.unwrap();
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn refresh_is_a_no_op_for_external_tokens_and_api_keys() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    login_external(&s.mgr, "org-1", "ext").await;
    s.mgr.refresh_managed().await.unwrap();
    s.mgr.logout().await.unwrap();
    assert!(
        s.dir.path().join("auth.json").exists(),
        "logout of external tokens leaves auth.json"
    );
    s.mgr.login_api_key(Secret::new("sk-1")).await.unwrap();
    s.mgr.refresh_managed().await.unwrap();
    assert_eq!(s.server.calls(), 0);
}

#[tokio::test]
async fn another_process_rewriting_auth_json_is_noticed_within_a_second() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    let mut rx = s.mgr.subscribe();
    rx.borrow_and_update();
    let other = jwt("org-2", "team", now() + 3600, "other");
    write_managed(s.dir.path(), &other, &other, "rt-2", "org-2");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = s.mgr.auth().await.unwrap().unwrap();
    assert_eq!(now.account_id(), Some("org-2"));
    assert_eq!(
        *rx.borrow_and_update(),
        AccountState {
            mode: Some(ApiAuthMode::Chatgpt),
            account_id: Some("org-2".into()),
            plan_type: Some("team".into())
        }
    );
}

#[tokio::test]
async fn after_a_reload_that_changed_a_second_401_refreshes_the_reloaded_tokens() {
    let s = setup(TokenServer::rotating("org-1").await).await;
    let old = s.mgr.snapshot().unwrap().unwrap();
    let theirs = fresh_jwt("org-1", "theirs");
    write_managed(s.dir.path(), &theirs, &s.id, "rt-theirs", "org-1");
    let mut rec = s.mgr.unauthorized_recovery(&old);
    assert_eq!(rec.next().await.unwrap(), RecoveryOutcome { changed: true });
    assert_eq!(
        s.mgr.snapshot().unwrap().unwrap().bearer_token().expose(),
        theirs
    );
    assert_eq!(rec.step(), RecoveryStep::RefreshToken);
    // The retry with the reloaded tokens got a 401 too: they are refreshed.
    assert_eq!(rec.next().await.unwrap(), RecoveryOutcome { changed: true });
    assert_eq!(
        s.server.requests.lock().unwrap()[0]["refresh_token"],
        "rt-theirs"
    );
    assert_eq!((s.server.calls(), rec.has_next()), (1, false));
}
