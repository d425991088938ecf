//! End to end, managed `auth.json` credentials (docs/protocol.md §4.2, §4.3): proactive refresh and
//! 401 → reload → refresh → retry against a loopback token endpoint
//! (`AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use authbridge_tests::jwt::now_unix;
use authbridge_tests::{Jwt, MockOptions, Session, TokenEndpoint, TokenMode};
use serde_json::{json, Value};

const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

fn managed_auth_json(home: &Path, access_token: &str, refresh_token: &str) {
    let id_token = Jwt::new()
        .email("user@example.com")
        .account("org-1")
        .plan("plus")
        .mint();
    let auth = json!({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": null,
        "tokens": {"id_token": id_token, "access_token": access_token, "refresh_token": refresh_token, "account_id": "org-1"},
        "last_refresh": chrono_now()
    });
    let path = home.join("auth.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&auth).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Now as RFC 3339 UTC (seconds precision), without a date crate.
fn chrono_now() -> String {
    let secs = now_unix();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm, public domain description).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A session with a managed auth.json written before the server starts.
async fn managed_session(valid: &[&str], access_token: &str, endpoint: &TokenEndpoint) -> Session {
    let home = tempfile::tempdir().unwrap();
    managed_auth_json(home.path(), access_token, "rt_1");
    let mock = authbridge_tests::MockProvider::start(MockOptions::with_tokens(
        valid.iter().map(|s| s.to_string()),
    ))
    .await
    .unwrap();
    let overrides = authbridge_tests::server::openai_overrides(&mock.url(), 500);
    let mut cmd = authbridge_tests::server::command(home.path(), &overrides);
    cmd.env("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", endpoint.url());
    let host = authbridge_tests::Host::spawn(cmd, Default::default()).unwrap();
    host.initialize(json!({})).await.unwrap();
    Session { home, mock, host }
}

fn stored(home: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(home.join("auth.json")).unwrap()).unwrap()
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
    managed_auth_json(s.home(), &theirs, "rt_theirs");
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
