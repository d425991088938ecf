//! The bearer a request sent never comes back in an error, whatever the provider quotes:
//! exact occurrences are replaced over the whole text before the 200-byte cut, in HTTP
//! bodies and in SSE `error` / `response.failed` events alike (docs/protocol.md §5).

use serde_json::json;

use super::test_server::*;
use super::{ProviderAuth, ProviderError, ResponsesRequest};

/// An opaque command-issued token: no `sk-`, no `eyJ`, no dots — only an exact match can
/// catch it.
const COMMAND_TOKEN: &str = "corpTok_9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZq";

fn jwt() -> String {
    authbridge_auth_core::encode_unsigned_jwt(&json!({
        "exp": 4_000_000_000i64,
        "https://api.openai.com/auth": {"chatgpt_account_id": "org-r", "chatgpt_plan_type": "pro"}
    }))
}

/// The first substring of `token` of 8 or more bytes that `text` contains.
fn leaked(text: &str, token: &str) -> Option<String> {
    (0..=token.len().saturating_sub(8))
        .map(|i| &token[i..i + 8])
        .find(|w| text.contains(w))
        .map(str::to_owned)
}

fn auth_with(token: &str) -> Option<ProviderAuth<'_>> {
    Some(ProviderAuth {
        bearer: token,
        account_id: None,
    })
}

/// A plain-text 500 whose body quotes the token 170 bytes in: a cut to 200 bytes before
/// masking would leave its first 30 bytes.
async fn status_message(token: &str) -> String {
    let body = format!("{} bearer={token} end", "x".repeat(162));
    assert_eq!(body.find(token), Some(170));
    let server = Server::start(move |_| reply(500, "text/plain", body.clone())).await;
    match client()
        .start_response(
            &server.base,
            auth_with(token),
            &ResponsesRequest::text("m", "x"),
        )
        .await
    {
        Err(e @ ProviderError::Http { status: 500, .. }) => e.to_string(),
        other => panic!("expected a 500, got {:?}", other.map(|_| "a stream")),
    }
}

#[tokio::test]
async fn a_500_body_quoting_the_bearer_is_masked_before_the_200_byte_cut() {
    within(async {
        for token in [COMMAND_TOKEN.to_owned(), jwt()] {
            let message = status_message(&token).await;
            assert_eq!(leaked(&message, &token), None, "{message}");
            assert!(
                message.starts_with(&format!("provider returned HTTP 500: {}", "x".repeat(162))),
                "{message}"
            );
            assert!(message.contains("bearer=[redacted]"), "{message}");
        }
    })
    .await
}

#[tokio::test]
async fn sse_error_and_response_failed_events_quoting_the_bearer_are_masked() {
    within(async {
        for token in [COMMAND_TOKEN.to_owned(), jwt()] {
            let events = [
                json!({"type": "error", "message": format!("bad token {token}; quota")}),
                json!({"type": "error", "error": {"message": format!("{}{token}", "y".repeat(190))}}),
                json!({"type": "response.failed", "response": {"error": {"message": format!("rejected:{token}:x")}}}),
            ];
            for event in events {
                let server = Server::start(move |_| sse_events(std::slice::from_ref(&event))).await;
                let mut stream = client()
                    .start_response(&server.base, auth_with(&token), &ResponsesRequest::text("m", "x"))
                    .await
                    .unwrap();
                let Err(ProviderError::Failed(message)) = stream.next_event().await else {
                    panic!("expected a failed stream");
                };
                assert_eq!(leaked(&message, &token), None, "{message}");
                assert!(message.contains("[redacted]"), "{message}");
            }
            // An `error` event whose data is not JSON is quoted raw: masked too.
            let raw = format!("event: error\ndata: upstream refused {token}\n\n");
            let server = Server::start(move |_| sse(vec![raw.clone()])).await;
            let mut stream = client()
                .start_response(&server.base, auth_with(&token), &ResponsesRequest::text("m", "x"))
                .await
                .unwrap();
            assert_eq!(
                stream.next_event().await,
                Err(ProviderError::Failed("upstream refused [redacted]".into()))
            );
        }
    })
    .await
}
