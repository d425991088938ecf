//! A loopback stand-in for the ChatGPT backend, for a Codex peer run offline: `GET
//! …/wham/accounts/check` answers with the account of the bearer token (`ChatGPT-Account-Id`,
//! else the JWT's `chatgpt_account_id`), and `GET …/wham/usage` with fixed usage figures.
//! `{backend_url}` in a server command is replaced by its URL.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use serde_json::json;

use crate::pattern::decode_jwt;

/// A running backend; dropping it stops the server.
pub struct Backend {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/backend-api", listener.local_addr()?);
        let app = Router::new().fallback(handle);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, task })
    }

    /// `http://127.0.0.1:PORT/backend-api`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn account_of(req: &Request) -> Option<String> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(id) = header("chatgpt-account-id") {
        return Some(id.to_owned());
    }
    let token = header("authorization")?.strip_prefix("Bearer ")?;
    let claims = decode_jwt(token).ok()?;
    claims
        .get("https://api.openai.com/auth")?
        .get("chatgpt_account_id")?
        .as_str()
        .map(str::to_owned)
}

/// A usage answer in the ChatGPT backend's format (what Codex turns into its rate limits):
/// 42 % of the 5-hour window and 7 % of the weekly one used (the mock provider's figures).
pub fn usage() -> serde_json::Value {
    json!({
        "plan_type": "pro",
        "rate_limit": {
            "allowed": true,
            "limit_reached": false,
            "primary_window": {"used_percent": 42, "limit_window_seconds": 18000, "reset_after_seconds": 3600, "reset_at": 1_796_240_000},
            "secondary_window": {"used_percent": 7, "limit_window_seconds": 604800, "reset_after_seconds": 86400, "reset_at": 1_796_800_000}
        },
        "credits": null
    })
}

async fn handle(req: Request) -> Response {
    let (status, body) = if req.uri().path().ends_with("/wham/accounts/check") {
        let id = account_of(&req).unwrap_or_else(|| "org-1".into());
        let account = json!({"id": id, "workspace_backend_origin": "https://127.0.0.1", "account_routing_override": "NO_CONSTRAINT"});
        (200, json!({"accounts": [account]}))
    } else if req.uri().path().ends_with("/wham/usage") {
        (200, usage())
    } else {
        (
            404,
            json!({"error": {"message": format!("no route for {}", req.uri().path())}}),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}
