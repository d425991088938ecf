//! A loopback OAuth token endpoint for managed ChatGPT refresh (docs/protocol.md §4.2).
//!
//! `POST /oauth/token` with `{client_id, grant_type:"refresh_token", refresh_token}`. In the
//! default mode each known refresh token is accepted once and rotated: the answer carries a
//! new `id_token`, `access_token` (minted JWTs) and `refresh_token`; a second use of the same
//! refresh token gets 401 `refresh_token_reused`. Other modes answer a fixed error, a 500,
//! malformed JSON, or hang.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use crate::jwt::Jwt;
use crate::loopback::{
    json_response, lock, respond, Binding, LoopbackServer, RequestLog, Shutdown,
};

/// How the endpoint answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenMode {
    /// Rotate: accept each known refresh token once, then `refresh_token_reused`.
    Rotate,
    /// Answer this status with `{"error":{"code":<code>,"message":…}}`.
    Error { status: u16, code: String },
    /// 500 with a plain-text body.
    ServerError,
    /// 200 with a body that is not JSON.
    Malformed,
    /// Never answer.
    Hang,
}

/// A set of tokens the endpoint issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTokens {
    pub id_token: String,
    pub access_token: String,
    pub refresh_token: String,
}

struct Inner {
    mode: Mutex<TokenMode>,
    account_id: String,
    plan: String,
    access_ttl: Mutex<Duration>,
    scripted_access: Mutex<VecDeque<String>>,
    unused: Mutex<HashSet<String>>,
    used: Mutex<HashSet<String>>,
    bodies: RequestLog<Value>,
    issued: Mutex<Vec<IssuedTokens>>,
    shutdown: Shutdown,
}

/// A running token endpoint. Dropping it stops the server.
pub struct TokenEndpoint {
    inner: Arc<Inner>,
    server: LoopbackServer,
}

impl TokenEndpoint {
    /// Starts in `Rotate` mode, issuing tokens for `account_id`/`plan`, accepting the given
    /// refresh tokens once each.
    pub async fn start<I: IntoIterator<Item = S>, S: Into<String>>(
        account_id: &str,
        plan: &str,
        refresh_tokens: I,
    ) -> std::io::Result<Self> {
        let binding = Binding::new().await?;
        let inner = Arc::new(Inner {
            mode: Mutex::new(TokenMode::Rotate),
            account_id: account_id.to_owned(),
            plan: plan.to_owned(),
            access_ttl: Mutex::new(Duration::from_secs(3600)),
            scripted_access: Mutex::new(VecDeque::new()),
            unused: Mutex::new(refresh_tokens.into_iter().map(Into::into).collect()),
            used: Mutex::new(HashSet::new()),
            bodies: RequestLog::default(),
            issued: Mutex::new(Vec::new()),
            shutdown: binding.shutdown(),
        });
        let server = binding.serve(Router::new().fallback(handle).with_state(inner.clone()));
        Ok(Self { inner, server })
    }

    /// The endpoint URL, `http://127.0.0.1:PORT/oauth/token`.
    pub fn url(&self) -> String {
        self.server.url("/oauth/token")
    }

    /// Changes how later calls are answered.
    pub fn set_mode(&self, mode: TokenMode) {
        *lock(&self.inner.mode) = mode;
    }

    /// Lifetime of the access tokens issued from now on.
    pub fn set_access_ttl(&self, ttl: Duration) {
        *lock(&self.inner.access_ttl) = ttl;
    }

    /// The access tokens the next successful refreshes issue, in order (then minted ones).
    /// Lets a test tell the mock provider in advance which token will be valid.
    pub fn issue_access_tokens<I: IntoIterator<Item = S>, S: Into<String>>(&self, tokens: I) {
        lock(&self.inner.scripted_access).extend(tokens.into_iter().map(Into::into));
    }

    /// Makes one more refresh token acceptable (once).
    pub fn accept_refresh_token(&self, rt: &str) {
        lock(&self.inner.unused).insert(rt.to_owned());
    }

    /// Number of calls so far.
    pub fn calls(&self) -> usize {
        self.inner.bodies.len()
    }

    /// Every request body so far (JSON, or `Value::Null` when not JSON).
    pub fn bodies(&self) -> Vec<Value> {
        self.inner.bodies.all()
    }

    /// Every token set issued so far.
    pub fn issued(&self) -> Vec<IssuedTokens> {
        lock(&self.inner.issued).clone()
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.bodies.push(body.clone());
    if parts.method != "POST" || parts.uri.path() != "/oauth/token" {
        return error(404, "not_found", "no such route");
    }
    let mode = lock(&inner.mode).clone();
    match mode {
        TokenMode::Error { status, code } => return error(status, &code, "scripted failure"),
        TokenMode::ServerError => return respond(500, "text/plain", "internal error"),
        TokenMode::Malformed => return respond(200, "application/json", "{\"access_token\": "),
        TokenMode::Hang => {
            inner.shutdown.wait().await;
            return respond(503, "text/plain", "shutting down");
        }
        TokenMode::Rotate => {}
    }
    if body["grant_type"] != "refresh_token" {
        return error(
            400,
            "unsupported_grant_type",
            "grant_type must be refresh_token",
        );
    }
    let Some(rt) = body["refresh_token"].as_str() else {
        return error(400, "invalid_request", "refresh_token is required");
    };
    if lock(&inner.used).contains(rt) {
        return error(401, "refresh_token_reused", "refresh token already used");
    }
    if !lock(&inner.unused).remove(rt) {
        return error(401, "refresh_token_invalidated", "unknown refresh token");
    }
    lock(&inner.used).insert(rt.to_owned());
    let n = lock(&inner.issued).len() + 1;
    let ttl = *lock(&inner.access_ttl);
    let base = Jwt::new()
        .email("user@example.com")
        .plan(&inner.plan)
        .account(&inner.account_id)
        .exp_in(ttl)
        .claim("jti", json!(format!("issued-{n}")));
    let issued = IssuedTokens {
        id_token: base.clone().claim("kind", json!("id")).mint(),
        access_token: lock(&inner.scripted_access)
            .pop_front()
            .unwrap_or_else(|| base.mint()),
        refresh_token: format!("rt_issued_{n}"),
    };
    lock(&inner.unused).insert(issued.refresh_token.clone());
    lock(&inner.issued).push(issued.clone());
    let answer = json!({
        "id_token": issued.id_token,
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
    });
    json_response(200, &answer)
}
