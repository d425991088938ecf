//! End to end, managed `auth.json` credentials (docs/protocol.md §4.2, §4.3): proactive refresh and
//! 401 → reload → refresh → retry against a loopback token endpoint
//! (`AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE`).

use std::path::Path;
use std::time::Duration;

use authbridge_testkit::auth_json::{self, now_rfc3339, ManagedAuth};
use authbridge_testkit::{Jwt, Session, SessionBuilder, TokenEndpoint, TokenMode};
use serde_json::{json, Value};

const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

/// A managed login of `org-1` with these tokens, refreshed just now.
fn managed_auth(access_token: &str, refresh_token: &str) -> ManagedAuth {
    let id_token = Jwt::new()
        .email("user@example.com")
        .account("org-1")
        .plan("plus")
        .mint();
    ManagedAuth::new(&id_token, access_token, refresh_token).last_refresh(&now_rfc3339())
}

/// A session with a managed auth.json written before the server starts.
async fn managed_session(valid: &[&str], access_token: &str, endpoint: &TokenEndpoint) -> Session {
    SessionBuilder::accepting(valid.iter().copied())
        .auth_json(&managed_auth(access_token, "rt_1"))
        .env("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", &endpoint.url())
        .start()
        .await
}

fn stored(home: &Path) -> Value {
    auth_json::read(home).expect("auth.json")
}

#[tokio::test]
async fn a_managed_token_expiring_within_five_minutes_is_refreshed_before_the_request() {
    let soon = Jwt::new()
        .account("org-1")
        .plan("plus")
        .exp_in(Duration::from_secs(60))
        .mint();
    let fresh = Jwt::new()
        .account("org-1")
        .plan("plus")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!("fresh"))
        .mint();
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    endpoint.issue_access_tokens([fresh.clone()]);
    let s = managed_session(&[&soon, &fresh], &soon, &endpoint).await;
    assert_eq!(s.turn("hi").await["status"], "completed");
    assert_eq!(
        endpoint.bodies(),
        vec![
            json!({"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": "rt_1"})
        ]
    );
    assert_eq!(
        s.mock.authorizations(),
        vec![Some(format!("Bearer {fresh}"))]
    );
    assert_eq!(s.mock.requests()[0].account_id.as_deref(), Some("org-1"));
    let tokens = &stored(s.home())["tokens"];
    assert_eq!(
        (
            tokens["access_token"].clone(),
            tokens["refresh_token"].clone(),
            tokens["account_id"].clone()
        ),
        (json!(fresh), json!("rt_issued_1"), json!("org-1"))
    );
}

#[tokio::test]
async fn a_managed_401_reloads_then_refreshes_then_retries() {
    let stale = Jwt::new()
        .account("org-1")
        .plan("plus")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!("stale"))
        .mint();
    let fresh = Jwt::new()
        .account("org-1")
        .plan("plus")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!("fresh"))
        .mint();
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    endpoint.issue_access_tokens([fresh.clone()]);
    let s = managed_session(&[&fresh], &stale, &endpoint).await;
    let done = s.turn("hi").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(endpoint.calls(), 1);
    assert_eq!(
        s.mock.authorizations(),
        vec![
            Some(format!("Bearer {stale}")),
            Some(format!("Bearer {fresh}"))
        ]
    );
    assert_eq!(stored(s.home())["tokens"]["access_token"], json!(fresh));
}

#[tokio::test]
async fn a_managed_401_adopts_tokens_another_process_wrote_without_calling_the_endpoint() {
    let stale = Jwt::new()
        .account("org-1")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!("stale"))
        .mint();
    let theirs = Jwt::new()
        .account("org-1")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!("theirs"))
        .mint();
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    let s = managed_session(&[&theirs], &stale, &endpoint).await;
    s.host.request("account/read", json!({})).await.unwrap();
    managed_auth(&theirs, "rt_theirs").write(s.home());
    let done = s.turn("hi").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(endpoint.calls(), 0);
    assert_eq!(
        s.mock.authorizations().last().cloned().flatten(),
        Some(format!("Bearer {theirs}"))
    );
}

#[tokio::test]
async fn a_permanent_refresh_failure_is_not_retried_for_the_same_credentials() {
    let stale = Jwt::new()
        .account("org-1")
        .exp_in(Duration::from_secs(3600))
        .mint();
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    endpoint.set_mode(TokenMode::Error {
        status: 401,
        code: "refresh_token_expired".into(),
    });
    let s = managed_session(&[], &stale, &endpoint).await;
    assert_eq!(s.turn("one").await["status"], "failed");
    assert_eq!(s.turn("two").await["status"], "failed");
    assert_eq!(endpoint.calls(), 1);
}
