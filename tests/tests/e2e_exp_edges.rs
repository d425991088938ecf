//! End to end, a managed `auth.json` whose access token has an absurd `exp` (docs/protocol.md
//! §4.2): −1e16 (integer and float) and `i64::MIN` are long past, so the token is refreshed
//! before the first provider request — the expired token is never sent, and the server
//! (a debug build) does not panic on the arithmetic.

use std::time::Duration;

use authbridge_testkit::auth_json::ManagedAuth;
use authbridge_testkit::{Jwt, SessionBuilder, TokenEndpoint};
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
        let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
            .await
            .unwrap();
        endpoint.issue_access_tokens([fresh.clone()]);
        // The mock accepts both: only the server's own check can keep the expired one back.
        let s = SessionBuilder::accepting([expired.clone(), fresh.clone()])
            .auth_json(
                &ManagedAuth::new(&id_token, &expired, "rt_1").last_refresh("2026-12-01T00:00:00Z"),
            )
            .env("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", &endpoint.url())
            .start()
            .await;
        let done = s.turn("hi").await;
        assert!(
            completed(&done),
            "exp {exp}: {done}\n{}",
            s.host.stderr_text()
        );
        assert_eq!(endpoint.calls(), 1, "exp {exp}: not refreshed");
        assert_eq!(
            s.mock.authorizations(),
            vec![Some(format!("Bearer {fresh}"))],
            "exp {exp}: the expired token was sent"
        );
        assert!(
            !s.host.stderr_text().contains("panicked"),
            "{}",
            s.host.stderr_text()
        );
    }
}
