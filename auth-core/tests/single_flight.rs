//! Single flight of external refreshes: one host call for many 401s, one deadline for all,
//! callers that give up, and logins or logouts that win over a refresh in flight.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use authbridge_auth_core::*;
use common::*;

/// A host refresher for `mgr` that answers `token` (account org-1) after `delay`.
fn answering(
    mgr: &AuthManager,
    token: impl Into<String>,
    delay: Duration,
) -> Arc<ScriptedRefresher> {
    let tokens = ExternalAuthTokens::chatgpt(token.into(), "org-1", None);
    let r = ScriptedRefresher::slow(Ok(tokens), delay);
    mgr.set_external_refresher(r.clone());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_recoveries_of_one_token_make_one_refresher_call() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    let new_token = fresh_jwt("org-1", "new");
    let r = answering(&mgr, new_token.clone(), Duration::from_millis(100));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (mgr, old) = (mgr.clone(), old.clone());
        tasks.push(tokio::spawn(async move {
            let mut rec = mgr.unauthorized_recovery(&old);
            let outcome = rec.next().await.unwrap();
            let now = mgr.auth().await.unwrap().unwrap();
            (outcome.changed, now.bearer_token().expose().to_owned())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (true, new_token.clone()));
    }
    assert_eq!(r.calls(), 1);
    // A late recovery of the replaced token changes at once without asking again.
    let outcome = mgr.unauthorized_recovery(&old).next().await.unwrap();
    assert_eq!((outcome.changed, r.calls()), (true, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recoveries_all_fail_at_the_one_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.external_refresh_timeout = Duration::from_millis(300);
    let mgr = AuthManager::new(cfg);
    let old = login_external(&mgr, "org-1", "old").await;
    let r = answering(&mgr, fresh_jwt("org-1", "late"), Duration::from_secs(60));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (mgr, old) = (mgr.clone(), old.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 2)).await;
            mgr.unauthorized_recovery(&old)
                .next()
                .await
                .unwrap_err()
                .to_string()
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            "auth refresh request timed out after 300ms"
        );
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(r.calls(), 1);
    assert!(mgr.snapshot().unwrap().unwrap().same_tokens(&old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_gives_up_does_not_poison_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    let new_token = fresh_jwt("org-1", "new");
    let r = answering(&mgr, new_token.clone(), Duration::from_millis(200));
    let mut rec = mgr.unauthorized_recovery(&old);
    let gave_up = tokio::time::timeout(Duration::from_millis(20), rec.next()).await;
    assert!(gave_up.is_err(), "the first caller gave up");
    let outcome = mgr.unauthorized_recovery(&old).next().await.unwrap();
    assert_eq!(outcome, RecoveryOutcome { changed: true });
    assert_eq!(
        mgr.snapshot().unwrap().unwrap().bearer_token().expose(),
        new_token
    );
    assert_eq!(
        r.calls(),
        1,
        "the second caller joined the refresh the first one started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_during_a_refresh_wins_and_wakes_the_waiters_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    answering(
        &mgr,
        fresh_jwt("org-1", "refreshed"),
        Duration::from_millis(500),
    );
    let waiter = {
        let (mgr, old) = (mgr.clone(), old.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            (
                mgr.unauthorized_recovery(&old).next().await.unwrap(),
                t.elapsed(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let switched = fresh_jwt("org-2", "switched");
    mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(switched.clone(), "org-2", None))
        .await
        .unwrap();
    let (outcome, waited) = waiter.await.unwrap();
    assert_eq!(outcome, RecoveryOutcome { changed: true });
    assert!(
        waited < Duration::from_millis(400),
        "woke at the login: {waited:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        mgr.snapshot().unwrap().unwrap().bearer_token().expose(),
        switched,
        "the late refresh result did not replace the login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_never_brings_tokens_back_after_logout() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    answering(
        &mgr,
        fresh_jwt("org-1", "refreshed"),
        Duration::from_millis(200),
    );
    let waiter = {
        let (mgr, old) = (mgr.clone(), old.clone());
        tokio::spawn(async move { mgr.unauthorized_recovery(&old).next().await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    mgr.logout().await.unwrap();
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        RecoveryOutcome { changed: true }
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mgr.snapshot().unwrap().is_none());
    assert!(!mgr.external_tokens_active());
}

/// Waits (with a deadline) until the refresher has been called `n` times.
async fn until_called(r: &ScriptedRefresher, n: usize) {
    until("the refresher was not called", || r.calls() >= n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_does_not_hand_out_a_refused_token_while_its_refresh_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    let new_token = fresh_jwt("org-1", "new");
    let r = answering(&mgr, new_token.clone(), Duration::from_millis(200));
    let recovery = {
        let (mgr, old) = (mgr.clone(), old.clone());
        tokio::spawn(async move { mgr.unauthorized_recovery(&old).next().await })
    };
    until_called(&r, 1).await;
    // A request starting now would carry the refused token: auth() waits for the new one.
    let now = mgr.auth().await.unwrap().unwrap();
    assert_eq!(now.bearer_token().expose(), new_token);
    assert_eq!(
        recovery.await.unwrap().unwrap(),
        RecoveryOutcome { changed: true }
    );
    assert_eq!(r.calls(), 1, "the waiting auth() asked the host nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_fails_the_waiting_auth_with_its_error_and_asks_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    let r = ScriptedRefresher::slow(
        Err(RefreshError::transient("the host is busy")),
        Duration::from_millis(200),
    );
    mgr.set_external_refresher(r.clone());
    let recovery = {
        let (mgr, old) = (mgr.clone(), old.clone());
        tokio::spawn(async move { mgr.unauthorized_recovery(&old).next().await })
    };
    until_called(&r, 1).await;
    let started = Instant::now();
    let waited = tokio::time::timeout(Duration::from_secs(5), mgr.auth())
        .await
        .expect("auth() returned once the refresh failed");
    // The refused tokens are still current: sending them would only earn another 401.
    assert_eq!(waited.unwrap_err().to_string(), "the host is busy");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "auth() waited for the refresh: {:?}",
        started.elapsed()
    );
    assert_eq!(
        recovery.await.unwrap().unwrap_err().to_string(),
        "the host is busy"
    );
    assert_eq!(r.calls(), 1, "the waiting auth() asked the host nothing");
    // With no refresh running, auth() answers at once again, with the tokens as they are.
    let started = Instant::now();
    assert!(mgr.auth().await.unwrap().unwrap().same_tokens(&old));
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proactive_refresh_holds_only_the_caller_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    // Expires in 60 s: inside a 5-minute proactive window.
    let soon = jwt("org-1", "pro", now() + 60, "soon");
    mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(soon.clone(), "org-1", None))
        .await
        .unwrap();
    mgr.set_proactive_external_refresh(Some(Duration::from_secs(300)));
    let r = answering(
        &mgr,
        fresh_jwt("org-1", "renewed"),
        Duration::from_millis(300),
    );
    let first = {
        let mgr = mgr.clone();
        tokio::spawn(async move { mgr.auth().await })
    };
    until_called(&r, 1).await;
    // The token is still good: another request goes ahead with it without waiting.
    let started = Instant::now();
    let other = mgr.auth().await.unwrap().unwrap();
    assert_eq!(other.bearer_token().expose(), soon);
    assert!(started.elapsed() < Duration::from_millis(150));
    let first = first.await.unwrap().unwrap().unwrap();
    assert_ne!(first.bearer_token().expose(), soon);
}
