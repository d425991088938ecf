//! The mock provider's streamed answer: Server-Sent Events per docs/protocol.md §6.2, with the
//! scripted failures (stall, cut, end early, malformed, `response.failed`).
//!
//! A complete answer is a whole Responses API stream — `response.created`,
//! `response.output_item.added`, one `response.output_text.delta` per delta,
//! `response.output_item.done` with the whole message, `response.completed` with the output
//! and usage — because a Codex peer builds its agent message from the `output_item` events
//! (without `output_item.done` it completes the turn with no items, and later turns lose the
//! assistant's side of the conversation). The conformance kit and the latency bench run
//! Codex against it.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{lock, Failure, Inner};

/// One SSE event with an `event:` line and a JSON `data:` line.
pub fn sse_event(data: &Value) -> String {
    let kind = data["type"].as_str().unwrap_or("message");
    format!("event: {kind}\ndata: {data}\n\n")
}

type Chunk = Result<Bytes, std::io::Error>;

pub(super) fn stream_response(inner: &Arc<Inner>, failure: Option<Failure>) -> Response {
    let deltas = lock(&inner.deltas).clone();
    let rate_limit_headers = lock(&inner.rate_limit_headers).clone();
    let n = inner.recorded.len();
    let item_id = format!("msg_mock_{n}");
    let response_id = format!("resp_mock_{n}");
    let delay = *lock(&inner.delta_delay);
    let (tx, rx) = mpsc::channel::<Chunk>(16);
    let stop = inner.shutdown.clone();
    tokio::spawn(async move {
        let send = |s: String| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(s))).await.is_ok() }
        };
        let limit = match &failure {
            Some(Failure::StallAfterHeaders) => {
                stop.wait().await;
                return;
            }
            Some(Failure::MalformedSse) => {
                let _ = send("event: response.output_text.delta\ndata: {not json\n\n".into()).await;
                return;
            }
            Some(Failure::CutAfter { deltas }) | Some(Failure::EndEarly { deltas }) => *deltas,
            _ => usize::MAX,
        };
        let created = json!({"type": "response.created", "response": {"id": response_id, "status": "in_progress"}});
        if !send(sse_event(&created)).await {
            return;
        }
        let added = json!({"type": "response.output_item.added", "output_index": 0,
            "item": {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}});
        if !send(sse_event(&added)).await {
            return;
        }
        for delta in deltas.iter().take(limit) {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let event = json!({"type": "response.output_text.delta", "item_id": item_id,
                "output_index": 0, "content_index": 0, "delta": delta});
            if !send(sse_event(&event)).await {
                return;
            }
        }
        let message = json!({"type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": deltas.concat(), "annotations": []}]});
        if matches!(
            failure,
            None | Some(Failure::Status { .. }) | Some(Failure::UnauthorizedAlways)
        ) {
            let done =
                json!({"type": "response.output_item.done", "output_index": 0, "item": message});
            if !send(sse_event(&done)).await {
                return;
            }
        }
        let last = match failure {
            Some(Failure::CutAfter { .. }) => {
                let _ = tx
                    .send(Err(std::io::Error::other("mock provider cut the stream")))
                    .await;
                return;
            }
            Some(Failure::EndEarly { .. }) => return,
            Some(Failure::ResponseFailed { message }) => json!({
                "type": "response.failed",
                "response": {"id": response_id, "status": "failed", "error": {"message": message}}
            }),
            Some(Failure::ErrorEvent { message }) => json!({
                "type": "error", "code": "server_error", "message": message
            }),
            _ => json!({
                "type": "response.completed",
                "response": {"id": response_id, "status": "completed", "output": [message],
                    "output_text": deltas.concat(),
                    "usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 1},
                              "output_tokens": deltas.len(), "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": 5 + deltas.len()}}
            }),
        };
        let _ = send(sse_event(&last)).await;
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut response = Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache");
    for (name, value) in rate_limit_headers {
        response = response.header(name, value);
    }
    response.body(Body::from_stream(stream)).unwrap_or_default()
}
