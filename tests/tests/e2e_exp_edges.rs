//! End to end, a managed `auth.json` whose access token has an absurd `exp` (docs/protocol.md
//! §4.2): −1e16 (integer and float) and `i64::MIN` are long past, so the token is refreshed
//! before the first provider request — the expired token is never sent, and the server
//! (a debug build) does not panic on the arithmetic.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use authbridge_tests::{Host, Jwt, MockOptions, MockProvider, TokenEndpoint};
use serde_json::{json, Value};

fn completed(done: &Value) -> bool {
    done["status"] == "completed" || done["turn"]["status"] == "completed"
}

#[tokio::test]
async fn an_access_token_with_exp_minus_1e16_is_refreshed_before_the_first_request() {
    for exp in [
        json!(-10_000_000_000_000_000i64),
        json!(-1e16),
        json!(i64::MIN),
    ] {
        let home = tempfile::tempdir().unwrap();
        let expired = Jwt::new()
            .account("org-1")
            .plan("plus")
            .claim("exp", exp.clone())
            .mint();
        let fresh = Jwt::new()
            .account("org-1")
            .plan("plus")
            .exp_in(Duration::from_secs(3600))
            .claim("jti", json!("fresh"))
            .mint();
        let id_token = Jwt::new().account("org-1").plan("plus").mint();
        let auth = json!({
            "auth_mode": "chatgpt", "OPENAI_API_KEY": null,
            "tokens": {"id_token": id_token, "access_token": expired, "refresh_token": "rt_1", "account_id": "org-1"},
            "last_refresh": "2026-12-01T00:00:00Z"
        });
        let path = home.path().join("auth.json");
        std::fs::write(&path, auth.to_string()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
            .await
            .unwrap();
        endpoint.issue_access_tokens([fresh.clone()]);
        // The mock accepts both: only the server's own check can keep the expired one back.
        let mock = MockProvider::start(MockOptions::with_tokens([expired.clone(), fresh.clone()]))
            .await
            .unwrap();
        let overrides = authbridge_tests::server::openai_overrides(&mock.url(), 500);
        let mut cmd = authbridge_tests::server::command(home.path(), &overrides);
        cmd.env("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", endpoint.url());
        let host = Host::spawn(cmd, Default::default()).unwrap();
        host.initialize(json!({})).await.unwrap();
        let done = authbridge_tests::session::run_turn(&host, "hi").await;
        assert!(
            completed(&done),
            "exp {exp}: {done}\n{}",
            host.stderr_text()
        );
        assert_eq!(endpoint.calls(), 1, "exp {exp}: not refreshed");
        assert_eq!(
            mock.authorizations(),
            vec![Some(format!("Bearer {fresh}"))],
            "exp {exp}: the expired token was sent"
        );
        assert!(
            !host.stderr_text().contains("panicked"),
            "{}",
            host.stderr_text()
        );
    }
}
