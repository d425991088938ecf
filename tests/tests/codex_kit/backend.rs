//! What a Codex app-server needs, offline, to run turns against the loopback mock provider:
//! a stand-in for the ChatGPT backend's account check (`GET …/wham/accounts/check`
//! answers the account it is told), and the `-c` overrides that point Codex at both.
//! Shared by the `codex_*` tests and the `authbridge-latency` bench (through `#[path]`).
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use serde_json::json;

/// A running stand-in; dropping it stops the server.
pub struct Backend {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Binds 127.0.0.1:0; every account check answers `account_id`.
    pub async fn start(account_id: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/backend-api", listener.local_addr()?);
        let account = account_id.to_owned();
        let app = Router::new().fallback(move |req: Request| {
            let account = account.clone();
            async move { answer(&account, req.uri().path()) }
        });
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

fn answer(account: &str, path: &str) -> Response {
    let (status, body) = if path.ends_with("/wham/accounts/check") {
        (
            200,
            json!({"accounts": [{"id": account, "workspace_backend_origin": "https://127.0.0.1",
                                  "account_routing_override": "NO_CONSTRAINT"}]}),
        )
    } else {
        (
            404,
            json!({"error": {"message": format!("no route for {path}")}}),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// `-c` overrides for Codex: the ChatGPT backend is `backend_url`, and the model provider
/// is a custom one (`mock`) at `provider_url` that takes the account's credentials.
pub fn codex_overrides(backend_url: &str, provider_url: &str) -> Vec<String> {
    vec![
        format!("chatgpt_base_url={backend_url}"),
        "model_provider=mock".into(),
        "model=gpt-5".into(),
        format!(
            "model_providers.mock={{name=\"mock\",base_url=\"{provider_url}\",wire_api=\"responses\",requires_openai_auth=true}}"
        ),
    ]
}
