//! A minimal mock model provider on 127.0.0.1 for the model-surface scenarios (§6): it
//! accepts only the tokens it was told, serves `GET …/models`, streams `POST …/responses`,
//! and answers Codex's `GET …/wham/accounts/check` so a Codex peer can log in offline.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

struct Inner {
    valid: Mutex<HashSet<String>>,
    deltas: Vec<String>,
    unauthorized: AtomicUsize,
}

/// A running mock; dropping it stops the server.
pub struct Provider {
    inner: Arc<Inner>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start(valid: Vec<String>, deltas: Vec<String>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let inner = Arc::new(Inner {
            valid: Mutex::new(valid.into_iter().collect()),
            deltas,
            unauthorized: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { inner, url, task })
    }

    /// The base URL, `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many 401s it has answered.
    pub fn unauthorized_count(&self) -> usize {
        self.inner.unauthorized.load(Ordering::SeqCst)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap_or_default()
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let account = header("chatgpt-account-id");
    let token = header("authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned));
    if path.ends_with("/wham/accounts/check") {
        let id = account.unwrap_or_else(|| "org-1".into());
        let body = json!({"accounts": [{"id": id, "workspace_backend_origin": "https://127.0.0.1", "account_routing_override": "NO_CONSTRAINT"}]});
        return reply(200, "application/json", body.to_string());
    }
    let allowed = token.is_some_and(|t| {
        inner
            .valid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&t)
    });
    if !allowed {
        inner.unauthorized.fetch_add(1, Ordering::SeqCst);
        let body = json!({"error": {"message": "Your authentication token is not valid.", "type": "invalid_request_error", "code": "invalid_token"}});
        return reply(401, "application/json", body.to_string());
    }
    if path.ends_with("/models") {
        let body = json!({"object": "list", "data": [{"id": "gpt-5", "object": "model"}, {"id": "gpt-5-mini", "object": "model"}]});
        return reply(200, "application/json", body.to_string());
    }
    if path.ends_with("/responses") {
        let mut sse = String::new();
        let mut event = |data: Value| {
            let kind = data["type"].as_str().unwrap_or("message").to_owned();
            sse.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
        };
        event(
            json!({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}),
        );
        for d in &inner.deltas {
            event(json!({"type": "response.output_text.delta", "delta": d}));
        }
        event(
            json!({"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}}),
        );
        return reply(200, "text/event-stream", sse);
    }
    reply(
        404,
        "application/json",
        json!({"error": {"message": format!("no route for {path}")}}).to_string(),
    )
}
