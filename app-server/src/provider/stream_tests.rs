//! Tests of the response stream against a loopback server: event mapping, early end, idle stall.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use serde_json::json;

use super::test_server::*;
use super::{ProviderError, ResponsesRequest, TurnEvent, Usage};

#[tokio::test]
async fn deltas_then_completed_arrive_in_order_with_the_headers_and_body_sent() {
    within(async {
        let stream = "data: {\"type\":\"response.created\"}\n\n\
            data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hel\"}\r\n\r\n\
            data: {\"type\":\"response.output_text.delta\",\"delta\":\"lo\"}\n\n\
            data: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"message\",\"id\":\"msg_1\"}}\n\n\
            data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":2,\"total_tokens\":7}}}\n\n";
        // Chunks of 7 bytes: events and lines split everywhere.
        let chunks: Vec<String> = stream
            .as_bytes()
            .chunks(7)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let server = Server::start(move |_| sse(chunks.clone())).await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("Hel".into()))),
                Ok(Some(TurnEvent::Delta("lo".into()))),
                Ok(Some(TurnEvent::MessageStarted(Some("msg_1".into())))),
                Ok(Some(TurnEvent::Completed(Some(Usage {
                    input_tokens: 5,
                    output_tokens: 2,
                    total_tokens: 7,
                    ..Usage::default()
                })))),
                Ok(None),
            ]
        );
        assert_eq!(
            server.seen(),
            vec![Seen {
                method: "POST".into(),
                path: "/v1/responses".into(),
                authorization: Some(format!("Bearer {TOKEN}")),
                accept: Some("text/event-stream".into()),
                account_id: Some("acct-1".into()),
                body: Some(json!({
                    "model": "gpt-5",
                    "input": [{"type": "message", "role": "user",
                               "content": [{"type": "input_text", "text": "hi"}]}],
                    "stream": true,
                    "store": false,
                })),
            }]
        );
    })
    .await
}

#[tokio::test]
async fn unknown_events_done_and_anything_after_completed_are_ignored() {
    within(async {
        let server = Server::start(|_| {
            sse(vec![
                ": comment\n\n".into(),
                "event: response.output_text.delta\ndata: {\"delta\":\"by event line\"}\n\n".into(),
                "data: {\"type\":\"response.in_progress\"}\n\n".into(),
                "data: [DONE]\n\n".into(),
                format!("data: {}\n\n", completed()),
                format!("data: {}\n\n", delta("late")),
            ])
        })
        .await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("by event line".into()))),
                Ok(Some(TurnEvent::Completed(None))),
                Ok(None),
            ]
        );
    })
    .await
}

#[tokio::test]
async fn response_failed_fails_with_the_providers_message() {
    within(async {
        let failed = json!({"type": "response.failed", "response": {"error": {"message": "model overloaded"}}});
        let server = Server::start(move |_| sse_events(&[delta("a"), failed.clone()])).await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("a".into()))),
                Err(ProviderError::Failed("model overloaded".into())),
            ]
        );
    })
    .await
}

#[tokio::test]
async fn an_error_event_fails_with_its_message_and_keeps_failing() {
    within(async {
        let error = json!({"type": "error", "message": "rate limited"});
        let server = Server::start(move |_| sse_events(std::slice::from_ref(&error))).await;
        let mut stream = client()
            .start_response(&server.base, auth(), &ResponsesRequest::text("m", "x"))
            .await
            .unwrap();
        let expected = Err(ProviderError::Failed("rate limited".into()));
        assert_eq!(stream.next_event().await, expected);
        assert_eq!(stream.next_event().await, expected);
    })
    .await
}

#[tokio::test]
async fn a_stream_that_ends_before_completed_fails() {
    within(async {
        let server = Server::start(|_| sse_events(&[delta("partial")])).await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("partial".into()))),
                Err(ProviderError::Failed(
                    "stream ended before response.completed".into()
                )),
            ]
        );
    })
    .await
}

#[tokio::test]
async fn a_stalled_stream_fails_as_transport_within_the_idle_timeout() {
    within(async {
        let server = Server::start(|_| {
            let first = format!("data: {}\n\n", delta("then silence"));
            let stream = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from(first))])
                .chain(futures_util::stream::pending());
            reply(200, "text/event-stream", Body::from_stream(stream))
        })
        .await;
        let mut stream = client()
            .start_response(&server.base, auth(), &ResponsesRequest::text("m", "x"))
            .await
            .unwrap();
        assert_eq!(
            stream.next_event().await,
            Ok(Some(TurnEvent::Delta("then silence".into())))
        );
        let started = Instant::now();
        assert_eq!(
            stream.next_event().await,
            Err(ProviderError::Transport(
                "provider stream idle for 300ms".into()
            ))
        );
        let waited = started.elapsed();
        assert!(
            waited >= IDLE && waited < IDLE + Duration::from_millis(1500),
            "waited {waited:?}"
        );
    })
    .await
}
