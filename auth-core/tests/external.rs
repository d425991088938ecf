//! External ChatGPT tokens: login validation, host refresh, single flight, proactive refresh.

mod common;

use std::time::Duration;

use authbridge_auth_core::*;
use common::*;

fn state(mode: ApiAuthMode, account: &str, plan: &str) -> AccountState {
    AccountState {
        mode: Some(mode),
        account_id: Some(account.into()),
        plan_type: Some(plan.into()),
    }
}

#[tokio::test]
async fn bearer_only_tokens_cannot_seed_chatgpt_auth() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let err = mgr
        .login_external_chatgpt(ExternalAuthTokens::access_token_only(fresh_jwt(
            "org-1", "a",
        )))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "external auth tokens are missing ChatGPT metadata"
    );
    assert!(mgr.snapshot().unwrap().is_none());
}

#[tokio::test]
async fn login_rejects_a_non_jwt_and_a_foreign_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), Some("org-forced"));
    let err = mgr
        .login_external_chatgpt(ExternalAuthTokens::chatgpt("not-a-jwt", "org-forced", None))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid access token: expected 3 dot-separated segments, found 1"
    );
    let err = mgr
        .login_external_chatgpt(ExternalAuthTokens::chatgpt(
            fresh_jwt("org-x", "a"),
            "org-x",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "External auth must use workspace \"org-forced\", but received \"org-x\"."
    );
    assert!(mgr.snapshot().unwrap().is_none());
}

#[tokio::test]
async fn login_takes_plan_from_the_host_then_the_token_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let rx = mgr.subscribe();
    let token = jwt("org-1", "team", now() - 10, "expired");
    let creds = mgr
        .login_external_chatgpt(ExternalAuthTokens::chatgpt(token.clone(), "org-1", None))
        .await
        .unwrap();
    assert_eq!(
        (
            creds.mode(),
            creds.backend_mode(),
            creds.plan_type(),
            creds.email()
        ),
        (
            ApiAuthMode::ChatgptAuthTokens,
            ApiAuthMode::Chatgpt,
            Some("team"),
            Some("expired@example.com")
        )
    );
    assert_eq!(
        *rx.borrow(),
        state(ApiAuthMode::ChatgptAuthTokens, "org-1", "team")
    );
    let creds = mgr
        .login_external_chatgpt(ExternalAuthTokens::chatgpt(
            token,
            "org-1",
            Some("pro".into()),
        ))
        .await
        .unwrap();
    assert_eq!(creds.plan_type(), Some("pro"));
    assert!(mgr.external_tokens_active());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing on disk"
    );
}

#[tokio::test]
async fn external_refresh_persists_to_memory_only_and_keeps_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    let new_token = fresh_jwt("org-1", "new");
    let r = ScriptedRefresher::new(Ok(ExternalAuthTokens::chatgpt(
        new_token.clone(),
        "org-1",
        Some("plus".into()),
    )));
    mgr.set_external_refresher(r.clone());
    let mut rec = mgr.unauthorized_recovery(&old);
    assert_eq!(
        (rec.mode(), rec.step(), rec.unavailable_reason()),
        (
            RecoveryMode::External,
            RecoveryStep::ExternalRefresh,
            UnavailableReason::Ready
        )
    );
    assert_eq!(rec.next().await.unwrap(), RecoveryOutcome { changed: true });
    assert_eq!(
        (rec.has_next(), rec.unavailable_reason()),
        (false, UnavailableReason::RecoveryExhausted)
    );
    let now = mgr.auth().await.unwrap().unwrap();
    assert_eq!(
        (now.bearer_token().expose(), now.mode(), now.plan_type()),
        (
            new_token.as_str(),
            ApiAuthMode::ChatgptAuthTokens,
            Some("plus")
        )
    );
    assert_eq!(
        *r.contexts.lock().unwrap(),
        vec![ExternalAuthRefreshContext {
            reason: RefreshReason::Unauthorized,
            previous_account_id: Some("org-1".into()),
            timeout: Duration::from_secs(5),
        }]
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing on disk"
    );
}

async fn refresh_answer_is_rejected(
    answer: ExternalAuthTokens,
    forced: Option<&str>,
    message: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), forced);
    let old = login_external(&mgr, "org-1", "old").await;
    mgr.set_external_refresher(ScriptedRefresher::new(Ok(answer)));
    let err = mgr.unauthorized_recovery(&old).next().await.unwrap_err();
    assert_eq!(err.to_string(), message);
    let still = mgr.snapshot().unwrap().unwrap();
    assert!(still.same_tokens(&old), "a rejected answer changes nothing");
}

#[tokio::test]
async fn forced_workspace_mismatch_on_refresh_changes_nothing() {
    refresh_answer_is_rejected(
        ExternalAuthTokens::chatgpt(fresh_jwt("org-2", "x"), "org-2", None),
        Some("org-1"),
        "external auth refresh returned workspace \"org-2\", expected \"org-1\"",
    )
    .await;
}

#[tokio::test]
async fn refresh_answers_without_metadata_or_jwt_are_rejected() {
    refresh_answer_is_rejected(
        ExternalAuthTokens::access_token_only(fresh_jwt("org-1", "x")),
        None,
        "external auth tokens are missing ChatGPT metadata",
    )
    .await;
    refresh_answer_is_rejected(
        ExternalAuthTokens::chatgpt("a.b", "org-1", None),
        None,
        "invalid auth refresh response: expected 3 dot-separated segments, found 2",
    )
    .await;
}

#[tokio::test]
async fn recovery_without_a_refresher_reports_why() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let old = login_external(&mgr, "org-1", "old").await;
    let rec = mgr.unauthorized_recovery(&old);
    assert_eq!(
        (
            rec.mode(),
            rec.has_next(),
            rec.unavailable_reason().as_str()
        ),
        (RecoveryMode::External, false, "no_external_refresher")
    );
    let key = mgr.login_api_key(Secret::new("sk-x")).await;
    let err = key.unwrap_err();
    assert!(matches!(err, AuthError::ExternalAuthActive), "{err:?}");
    assert_eq!(
        err.to_string(),
        "external ChatGPT tokens are active; API-key and managed logins are refused while they are"
    );
}

#[tokio::test]
async fn proactive_refresh_runs_once_per_token_and_not_again_after_failing() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let expiring = jwt("org-1", "pro", now() + 60, "expiring");
    mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(expiring.clone(), "org-1", None))
        .await
        .unwrap();
    let r = ScriptedRefresher::new(Err(RefreshError::transient("host says no")));
    mgr.set_external_refresher(r.clone());

    // Off by default: nothing is asked.
    mgr.auth().await.unwrap();
    assert_eq!(r.calls(), 0);

    mgr.set_proactive_external_refresh(Some(Duration::from_secs(300)));
    for _ in 0..3 {
        let c = mgr.auth().await.unwrap().unwrap();
        assert_eq!(
            c.bearer_token().expose(),
            expiring,
            "a failed proactive refresh keeps the token"
        );
    }
    assert_eq!(r.calls(), 1);
    assert_eq!(
        r.contexts.lock().unwrap()[0].reason,
        RefreshReason::ExpiringSoon
    );

    // A new expiring token gets its own single attempt, which now succeeds.
    let next = fresh_jwt("org-1", "next");
    *r.answer.lock().unwrap() = Ok(ExternalAuthTokens::chatgpt(next.clone(), "org-1", None));
    let expiring2 = jwt("org-1", "pro", now() + 60, "expiring2");
    mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(expiring2, "org-1", None))
        .await
        .unwrap();
    let c = mgr.auth().await.unwrap().unwrap();
    assert_eq!((c.bearer_token().expose(), r.calls()), (next.as_str(), 2));
    mgr.auth().await.unwrap();
    assert_eq!(r.calls(), 2, "a fresh token is not refreshed");
}

#[tokio::test]
async fn subscribers_see_account_and_plan_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let mut rx = mgr.subscribe();
    assert_eq!(*rx.borrow_and_update(), AccountState::default());
    login_external(&mgr, "org-1", "a").await;
    assert!(rx.has_changed().unwrap());
    assert_eq!(
        *rx.borrow_and_update(),
        state(ApiAuthMode::ChatgptAuthTokens, "org-1", "pro")
    );
    login_external(&mgr, "org-1", "b").await;
    assert!(
        !rx.has_changed().unwrap(),
        "same account and plan: no change"
    );
    mgr.logout().await.unwrap();
    assert_eq!(*rx.borrow_and_update(), AccountState::default());
}
