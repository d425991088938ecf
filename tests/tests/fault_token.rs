//! Fault injection, token endpoint side: a managed `auth.json` whose refresh meets a
//! hanging endpoint, a 500, malformed JSON, and each permanent error code. After each fault
//! the server answers the next request and reports only credentials it was given.

use std::time::{Duration, Instant};

use authbridge_testkit::auth_json::ManagedAuth;
use authbridge_testkit::session::failure_message;
use authbridge_testkit::{Jwt, Session, SessionBuilder, TokenEndpoint, TokenMode};
use serde_json::{json, Value};

fn token(tag: &str) -> String {
    Jwt::new()
        .account("org-1")
        .plan("plus")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!(tag))
        .mint()
}

/// A session over a managed `auth.json` holding `stale` (which the mock refuses) and `rt_1`.
async fn managed(stale: &str, valid: &[&str], endpoint: &TokenEndpoint, extra: &[&str]) -> Session {
    let mut b = SessionBuilder::accepting(valid.iter().copied())
        .auth_json(&ManagedAuth::new(&token("id"), stale, "rt_1"))
        .env("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", &endpoint.url());
    for o in extra {
        b = b.config(o);
    }
    b.start().await
}

/// The server still answers, and the token it reports is one it was given.
async fn still_serves_with(s: &Session, given: &[&str]) {
    let status = s.auth_status().await;
    let reported = status["authToken"].as_str().unwrap_or_default().to_owned();
    assert!(
        given.contains(&reported.as_str()),
        "reported a token it was not given"
    );
}

#[tokio::test]
async fn a_hanging_token_endpoint_fails_the_turn_at_the_token_deadline() {
    let stale = token("stale");
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    endpoint.set_mode(TokenMode::Hang);
    let s = managed(&stale, &[], &endpoint, &["chatgpt_token_timeout_ms=300"]).await;
    let started = Instant::now();
    let message = failure_message(&s.turn("hi").await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!message.contains(&stale), "the error quotes the token");
    assert_eq!(endpoint.calls(), 1);
    still_serves_with(&s, &[&stale]).await;
}

#[tokio::test]
async fn a_500_is_transient_and_a_later_attempt_succeeds() {
    let (stale, fresh) = (token("stale"), token("fresh"));
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    endpoint.issue_access_tokens([fresh.clone()]);
    endpoint.set_mode(TokenMode::ServerError);
    let s = managed(&stale, &[&fresh], &endpoint, &[]).await;
    let message = failure_message(&s.turn("one").await);
    assert!(message.contains("500"), "{message}");
    endpoint.set_mode(TokenMode::Rotate);
    let done = s.turn("two").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(endpoint.calls(), 2);
    still_serves_with(&s, &[&fresh]).await;
    let stored: Value =
        serde_json::from_slice(&std::fs::read(s.home().join("auth.json")).unwrap()).unwrap();
    assert_eq!(stored["tokens"]["access_token"], json!(fresh));
}

#[tokio::test]
async fn malformed_json_from_the_token_endpoint_is_a_transient_failure() {
    let stale = token("stale");
    let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
        .await
        .unwrap();
    endpoint.set_mode(TokenMode::Malformed);
    let s = managed(&stale, &[], &endpoint, &[]).await;
    let message = failure_message(&s.turn("one").await);
    assert!(!message.contains(&stale), "the error quotes the token");
    failure_message(&s.turn("two").await);
    assert_eq!(endpoint.calls(), 2, "a transient failure is tried again");
    still_serves_with(&s, &[&stale]).await;
}

#[tokio::test]
async fn each_permanent_code_fails_with_its_message_and_is_not_retried() {
    let cases = [
        ("refresh_token_expired", "Your access token could not be refreshed because your refresh token has expired. Please log out and sign in again."),
        ("refresh_token_reused", "Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again."),
        ("refresh_token_invalidated", "Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again."),
        ("something_else", "Your access token could not be refreshed. Please log out and sign in again."),
    ];
    for (code, expected) in cases {
        let stale = token("stale");
        let endpoint = TokenEndpoint::start("org-1", "plus", ["rt_1"])
            .await
            .unwrap();
        endpoint.set_mode(TokenMode::Error {
            status: 401,
            code: code.into(),
        });
        let s = managed(&stale, &[], &endpoint, &[]).await;
        let first = failure_message(&s.turn("one").await);
        let second = failure_message(&s.turn("two").await);
        assert_eq!(
            (code, first.as_str(), endpoint.calls()),
            (code, expected, 1),
            "first"
        );
        assert_eq!(
            (code, second.as_str(), endpoint.calls()),
            (code, expected, 1),
            "second"
        );
        let status = s.auth_status().await;
        assert_eq!(
            status["authToken"],
            Value::Null,
            "{code}: a permanently failed token is not reported"
        );
    }
}
