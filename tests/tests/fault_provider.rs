//! Fault injection, provider side: a connection reset mid-stream, a stream that
//! stalls forever, malformed SSE, a 500 with an HTML body, slow (never-coming) headers, and a
//! 401 on every token. Each fails the one turn with a clear message within its deadline; the
//! next turn on the same server streams normally.

use std::time::{Duration, Instant};

use authbridge_testkit::session::failure_message;
use authbridge_testkit::{Failure, Jwt, RefreshPolicy, Session, SessionBuilder};
use serde_json::json;

const KEY: &str = "sk-fault-provider-key";
/// The provider's idle deadline in these tests.
const IDLE_MS: u64 = 300;

async fn api_key_session() -> Session {
    SessionBuilder::default()
        .api_key(KEY)
        .config(&format!(
            "model_providers.openai.stream_idle_timeout_ms={IDLE_MS}"
        ))
        .config("model_providers.openai.connect_timeout_ms=500")
        .start()
        .await
}

/// The next turn completes with the mock's whole text, with the key the host gave.
async fn next_turn_is_served(s: &Session) {
    let done = s.turn("again").await;
    assert_eq!(
        done["status"], "completed",
        "the turn after the fault: {done}"
    );
    assert_eq!(done["text"], json!(s.mock.expected_text()));
    let last = s.mock.authorizations().last().cloned().flatten();
    assert_eq!(last, Some(format!("Bearer {KEY}")));
}

#[tokio::test]
async fn a_connection_reset_mid_stream_fails_the_turn_and_the_next_one_streams() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::CutAfter { deltas: 2 });
    let message = failure_message(&s.turn("hi").await);
    assert!(!message.is_empty());
    next_turn_is_served(&s).await;
}

#[tokio::test]
async fn a_stream_that_stalls_forever_fails_at_the_idle_deadline() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::StallAfterHeaders);
    let started = Instant::now();
    let message = failure_message(&s.turn("hi").await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(IDLE_MS) && took < Duration::from_secs(5),
        "failed after {took:?}: {message}"
    );
    next_turn_is_served(&s).await;
}

#[tokio::test]
async fn headers_that_never_come_fail_the_turn_within_connect_plus_idle() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::StallBeforeHeaders);
    let started = Instant::now();
    let message = failure_message(&s.turn("hi").await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(IDLE_MS) && took < Duration::from_secs(5),
        "failed after {took:?}: {message}"
    );
    next_turn_is_served(&s).await;
}

#[tokio::test]
async fn malformed_sse_fails_the_turn_and_the_next_one_streams() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::MalformedSse);
    let message = failure_message(&s.turn("hi").await);
    assert!(!message.contains(KEY));
    next_turn_is_served(&s).await;
}

#[tokio::test]
async fn a_500_with_an_html_body_names_the_status_and_the_start_of_the_body() {
    let s = api_key_session().await;
    let html = format!(
        "<html><body><h1>500 Internal Server Error</h1>{}</body></html>",
        "x".repeat(400)
    );
    s.mock.fail_next(Failure::Status {
        status: 500,
        body: html.clone(),
    });
    let done = s.turn("hi").await;
    let first_200: String = html.chars().take(200).collect();
    assert_eq!(
        done["error"]["message"],
        json!(format!("provider returned HTTP 500: {first_200}"))
    );
    assert_eq!(done["error"]["codexErrorInfo"], "internalServerError");
    next_turn_is_served(&s).await;
}

#[tokio::test]
async fn a_401_on_every_token_costs_exactly_one_host_refresh_then_fails_without_a_loop() {
    let jwt = |tag: &str| {
        Jwt::new()
            .account("org-1")
            .plan("pro")
            .exp_in(Duration::from_secs(3600))
            .claim("jti", json!(tag))
            .mint()
    };
    let (old, new) = (jwt("old"), jwt("new"));
    let s = SessionBuilder::accepting([old.clone(), new.clone()])
        .refresh(RefreshPolicy::tokens(&new, "org-1", Some("pro")))
        .start()
        .await;
    s.login_external(&old, "org-1", Some("pro")).await.unwrap();
    s.mock.set_failure(Some(Failure::UnauthorizedAlways));
    let done = s.turn("hi").await;
    failure_message(&done);
    assert_eq!(
        done["error"]["codexErrorInfo"],
        json!("unauthorized"),
        "{done}"
    );
    assert_eq!(s.host.refresh_requests().len(), 1);
    assert_eq!(
        s.mock.authorizations(),
        vec![Some(format!("Bearer {old}")), Some(format!("Bearer {new}"))]
    );
    s.mock.set_failure(None);
    let done = s.turn("again").await;
    assert_eq!(done["status"], "completed", "{done}");
    let status = s.auth_status().await;
    assert_eq!(status["authToken"], json!(new));
}
