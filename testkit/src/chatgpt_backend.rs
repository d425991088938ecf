//! A loopback stand-in for the ChatGPT backend, what a Codex app-server needs to run turns
//! offline against the mock provider: `GET …/wham/accounts/check` answers the account of
//! the bearer (`ChatGPT-Account-Id`, else the JWT's `chatgpt_account_id`, else the account
//! it was started with), `GET …/wham/usage` the mock provider's usage figures
//! ([`default_usage`]). [`crate::codex::codex_overrides`] points Codex at it.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Router;
use serde_json::json;

use crate::jwt::decode_claims;
use crate::loopback::{json_response, LoopbackServer};
use crate::mock_provider::default_usage;

/// A running backend; dropping it stops the server.
pub struct ChatGptBackend {
    server: LoopbackServer,
}

impl ChatGptBackend {
    /// Binds 127.0.0.1:0; a request that names no account is answered for `default_account`.
    pub async fn start(default_account: &str) -> std::io::Result<Self> {
        let fallback = default_account.to_owned();
        let app = Router::new().fallback(move |req: Request| {
            let fallback = fallback.clone();
            async move { answer(&fallback, req) }
        });
        Ok(Self {
            server: LoopbackServer::start(app).await?,
        })
    }

    /// `http://127.0.0.1:PORT/backend-api` (Codex's `chatgpt_base_url`).
    pub fn url(&self) -> String {
        self.server.url("/backend-api")
    }
}

fn account_of(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(id) = header("chatgpt-account-id") {
        return Some(id.to_owned());
    }
    let token = header("authorization")?.strip_prefix("Bearer ")?;
    decode_claims(token)?
        .get("https://api.openai.com/auth")?
        .get("chatgpt_account_id")?
        .as_str()
        .map(str::to_owned)
}

fn answer(fallback: &str, req: Request) -> Response {
    let path = req.uri().path();
    if path.ends_with("/wham/accounts/check") {
        let id = account_of(req.headers()).unwrap_or_else(|| fallback.to_owned());
        let account = json!({"id": id, "workspace_backend_origin": "https://127.0.0.1",
                             "account_routing_override": "NO_CONSTRAINT"});
        return json_response(200, &json!({"accounts": [account]}));
    }
    if path.ends_with("/wham/usage") {
        return json_response(200, &default_usage());
    }
    json_response(
        404,
        &json!({"error": {"message": format!("no route for {path}")}}),
    )
}
