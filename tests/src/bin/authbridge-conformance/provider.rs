//! The kit's loopback model provider: a real HTTP server on 127.0.0.1 that both columns
//! talk to. It streams a complete Responses API answer — `response.created`,
//! `response.output_item.added`, one `response.output_text.delta` per delta,
//! `response.output_item.done` with the whole message, `response.completed` with usage —
//! because a Codex peer builds its agent message from the `output_item` events (without
//! `output_item.done` it completes the turn with no items, and later turns lose the
//! assistant's side of the conversation). Only the bearer tokens it was told get through;
//! any other gets a 401 with a JSON error body. It also answers `GET …/models` and the
//! ChatGPT backend's `GET …/wham/usage`, and records every request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

/// One request as the provider saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The body as JSON (`Value::Null` if empty or not JSON).
    pub body: Value,
}

struct Inner {
    accept: HashSet<String>,
    deltas: Vec<String>,
    delay: Duration,
    recorded: Mutex<Vec<Recorded>>,
    unauthorized: AtomicUsize,
    responses: AtomicUsize,
}

/// A running provider; dropping it stops the server.
pub struct Provider {
    inner: Arc<Inner>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start(
        accept: Vec<String>,
        deltas: Vec<String>,
        delay: Duration,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let inner = Arc::new(Inner {
            accept: accept.into_iter().collect(),
            deltas,
            delay,
            recorded: Mutex::new(Vec::new()),
            unauthorized: AtomicUsize::new(0),
            responses: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { inner, url, task })
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// How many 401s it answered so far.
    pub fn unauthorized_count(&self) -> usize {
        self.inner.unauthorized.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.recorded).clone()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn json_response(status: u16, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    lock(&inner.recorded).push(Recorded {
        method: method.clone(),
        path: path.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let bearer = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| inner.accept.contains(t)) {
        inner.unauthorized.fetch_add(1, Ordering::SeqCst);
        let (message, code) = match bearer {
            None => ("Missing bearer authentication in header.", "missing_auth"),
            Some(_) => ("Your authentication token is not valid.", "invalid_token"),
        };
        return json_response(
            401,
            json!({"error": {"message": message, "type": "invalid_request_error", "code": code}}),
        );
    }
    if method == "GET" && path.ends_with("/models") {
        let data: Vec<Value> = ["gpt-5", "gpt-5-mini"]
            .iter()
            .map(|id| json!({"id": id, "object": "model"}))
            .collect();
        return json_response(200, json!({"object": "list", "data": data}));
    }
    if method == "GET" && path.ends_with("/wham/usage") {
        return json_response(200, crate::backend::usage());
    }
    if method == "POST" && path.ends_with("/responses") {
        let n = inner.responses.fetch_add(1, Ordering::SeqCst);
        return stream(&inner, n);
    }
    json_response(
        404,
        json!({"error": {"message": format!("no route for {method} {path}")}}),
    )
}

fn sse(data: &Value) -> Result<String, std::io::Error> {
    let kind = data["type"].as_str().unwrap_or("message");
    Ok(format!("event: {kind}\ndata: {data}\n\n"))
}

fn stream(inner: &Inner, n: usize) -> Response {
    let deltas = inner.deltas.clone();
    let delay = inner.delay;
    let item_id = format!("msg_kit_{n}");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(16);
    tokio::spawn(async move {
        let text = deltas.concat();
        let head = [
            json!({"type": "response.created", "response": {"id": format!("resp_kit_{n}"), "status": "in_progress"}}),
            json!({"type": "response.output_item.added", "output_index": 0,
                   "item": {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}}),
        ];
        for e in &head {
            if tx.send(sse(e)).await.is_err() {
                return;
            }
        }
        for delta in &deltas {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let e = json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
                           "content_index": 0, "delta": delta});
            if tx.send(sse(&e)).await.is_err() {
                return;
            }
        }
        let message = json!({"type": "message", "id": item_id, "role": "assistant", "status": "completed",
                             "content": [{"type": "output_text", "text": text, "annotations": []}]});
        let tail = [
            json!({"type": "response.output_item.done", "output_index": 0, "item": message}),
            json!({"type": "response.completed", "response": {"id": format!("resp_kit_{n}"), "status": "completed",
                   "output": [message],
                   "usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
                             "output_tokens": deltas.len(), "output_tokens_details": {"reasoning_tokens": 0},
                             "total_tokens": 5 + deltas.len()}}}),
        ];
        for e in &tail {
            if tx.send(sse(e)).await.is_err() {
                return;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}
