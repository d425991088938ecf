//! A mock OpenAI-compatible model provider: a real HTTP server on 127.0.0.1 (docs/protocol.md §6).
//!
//! `GET …/models` answers `{"data":[{"id":…}]}`; `POST …/responses` streams Server-Sent
//! Events (`response.output_text.delta` × n, then `response.completed`). Only tokens it was
//! told are valid get through; any other bearer gets a 401 with a JSON error body. It can be
//! told to fail, stall, cut the stream, and records every request with its headers.
//!
//! It also stands in for the ChatGPT backend's usage endpoint (`GET
//! …/backend-api/wham/usage`, what `account/rateLimits/read` reads) and can put Codex's
//! `x-codex-*` rate-limit headers on its streamed answers.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use crate::loopback::{
    json_response, lock, respond, Binding, LoopbackServer, RequestLog, Shutdown,
};
use crate::sys::raise_nofile_limit;

mod sse;
pub use sse::sse_event;

/// How the mock starts.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Bearer tokens accepted from the start.
    pub valid_tokens: Vec<String>,
    /// When false, requests need no `Authorization` at all (a keyless custom provider).
    pub require_auth: bool,
    /// The text deltas of every streamed answer.
    pub deltas: Vec<String>,
    /// Pause before each delta.
    pub delta_delay: Duration,
    /// Model ids served by `GET /models`.
    pub models: Vec<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            valid_tokens: Vec::new(),
            require_auth: true,
            deltas: ["Hello", ", ", "world", "!"].map(String::from).to_vec(),
            delta_delay: Duration::ZERO,
            models: vec!["gpt-5".into(), "gpt-5-mini".into()],
        }
    }
}

impl MockOptions {
    /// Options accepting these tokens, with the default stream.
    pub fn with_tokens<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Self {
        Self {
            valid_tokens: tokens.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// A way for the mock to misbehave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Answer this status and body (`Content-Type: application/json` if the body parses).
    Status { status: u16, body: String },
    /// Never send the response headers.
    StallBeforeHeaders,
    /// Send 200 and the SSE headers, then nothing, forever.
    StallAfterHeaders,
    /// Send this many deltas, then abort the connection mid-stream.
    CutAfter { deltas: usize },
    /// Send this many deltas, then end the stream cleanly without `response.completed`.
    EndEarly { deltas: usize },
    /// A `data:` line that is not JSON.
    MalformedSse,
    /// Stream the deltas, then `response.failed` with this message.
    ResponseFailed { message: String },
    /// Stream the deltas, then an SSE `error` event with this message.
    ErrorEvent { message: String },
    /// 401 whatever the token.
    UnauthorizedAlways,
}

/// One request as the mock saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub account_id: Option<String>,
    pub accept: Option<String>,
    /// The body as JSON (`Value::Null` if empty or not JSON).
    pub body: Value,
}

struct Inner {
    valid: Mutex<HashSet<String>>,
    expired: Mutex<HashSet<String>>,
    require_auth: bool,
    deltas: Mutex<Vec<String>>,
    delta_delay: Mutex<Duration>,
    models: Vec<String>,
    failure: Mutex<Option<Failure>>,
    rate_limit_headers: Mutex<Vec<(String, String)>>,
    usage: Mutex<Value>,
    one_shot: Mutex<VecDeque<Failure>>,
    recorded: RequestLog<RecordedRequest>,
    unauthorized: AtomicUsize,
    shutdown: Shutdown,
}

/// A running mock provider. Dropping it stops the server.
pub struct MockProvider {
    inner: Arc<Inner>,
    server: LoopbackServer,
}

impl MockProvider {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start(opts: MockOptions) -> std::io::Result<Self> {
        raise_nofile_limit();
        let binding = Binding::new().await?;
        let inner = Arc::new(Inner {
            valid: Mutex::new(opts.valid_tokens.into_iter().collect()),
            expired: Mutex::new(HashSet::new()),
            require_auth: opts.require_auth,
            deltas: Mutex::new(opts.deltas),
            delta_delay: Mutex::new(opts.delta_delay),
            models: opts.models,
            failure: Mutex::new(None),
            rate_limit_headers: Mutex::new(Vec::new()),
            usage: Mutex::new(default_usage()),
            one_shot: Mutex::new(VecDeque::new()),
            recorded: RequestLog::default(),
            unauthorized: AtomicUsize::new(0),
            shutdown: binding.shutdown(),
        });
        let server = binding.serve(Router::new().fallback(handle).with_state(inner.clone()));
        Ok(Self { inner, server })
    }

    /// The base URL, e.g. `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        self.server.url("/v1")
    }

    /// The ChatGPT base URL served by this mock, e.g. `http://127.0.0.1:PORT/backend-api/codex`
    /// (model calls under it, the usage endpoint at `/backend-api/wham/usage`).
    pub fn chatgpt_url(&self) -> String {
        self.server.url("/backend-api/codex")
    }

    /// Headers put on every later streamed answer (e.g. `x-codex-primary-used-percent`).
    pub fn set_rate_limit_headers<I, K, V>(&self, headers: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        *lock(&self.inner.rate_limit_headers) = headers
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
    }

    /// The body of `GET …/wham/usage` from now on.
    pub fn set_usage(&self, body: Value) {
        *lock(&self.inner.usage) = body;
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Replaces the set of accepted tokens.
    pub fn set_valid_tokens<I: IntoIterator<Item = S>, S: Into<String>>(&self, tokens: I) {
        *lock(&self.inner.valid) = tokens.into_iter().map(Into::into).collect();
    }

    /// Adds one accepted token.
    pub fn accept_token(&self, token: &str) {
        lock(&self.inner.valid).insert(token.to_owned());
        lock(&self.inner.expired).remove(token);
    }

    /// Expires a token: from now on it gets a 401 saying it expired.
    pub fn reject_token(&self, token: &str) {
        lock(&self.inner.valid).remove(token);
        lock(&self.inner.expired).insert(token.to_owned());
    }

    /// The deltas of every later stream.
    pub fn set_deltas<I: IntoIterator<Item = S>, S: Into<String>>(&self, deltas: I) {
        *lock(&self.inner.deltas) = deltas.into_iter().map(Into::into).collect();
    }

    /// The pause before each later delta.
    pub fn set_delta_delay(&self, delay: Duration) {
        *lock(&self.inner.delta_delay) = delay;
    }

    /// The full text of a stream: the deltas joined.
    pub fn expected_text(&self) -> String {
        lock(&self.inner.deltas).concat()
    }

    /// Misbehave on every request until cleared with `None`.
    pub fn set_failure(&self, failure: Option<Failure>) {
        *lock(&self.inner.failure) = failure;
    }

    /// Misbehave on the next request only (queued; applied before `set_failure`'s).
    pub fn fail_next(&self, failure: Failure) {
        lock(&self.inner.one_shot).push_back(failure);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.recorded.all()
    }

    /// `(Authorization, ChatGPT-Account-Id)` of every request so far.
    pub fn credentials_seen(&self) -> Vec<(Option<String>, Option<String>)> {
        self.requests()
            .into_iter()
            .map(|r| (r.authorization, r.account_id))
            .collect()
    }

    /// The `Authorization` header of every request so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.requests()
            .into_iter()
            .map(|r| r.authorization)
            .collect()
    }

    /// Number of requests so far.
    pub fn request_count(&self) -> usize {
        self.inner.recorded.len()
    }

    /// Number of 401 answers so far.
    pub fn unauthorized_count(&self) -> usize {
        self.inner.unauthorized.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived; false at the deadline.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.inner.recorded.wait_for(n, timeout).await
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let authorization = header(&parts.headers, "authorization");
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        authorization: authorization.clone(),
        account_id: header(&parts.headers, "chatgpt-account-id"),
        accept: header(&parts.headers, "accept"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    inner.recorded.push(recorded.clone());

    let failure = lock(&inner.one_shot)
        .pop_front()
        .or_else(|| lock(&inner.failure).clone());
    if let Some(denied) = check_auth(&inner, authorization.as_deref(), failure.as_ref()) {
        inner.unauthorized.fetch_add(1, Ordering::SeqCst);
        return denied;
    }
    match failure {
        Some(Failure::Status { status, body }) => return status_response(status, body),
        Some(Failure::StallBeforeHeaders) => {
            inner.shutdown.wait().await;
            return status_response(503, "mock provider shutting down".into());
        }
        _ => {}
    }
    let path = recorded.path.as_str();
    if recorded.method == "GET" && path.ends_with("/models") {
        let data: Vec<Value> = inner
            .models
            .iter()
            .map(|id| json!({"id": id, "object": "model"}))
            .collect();
        return json_response(200, &json!({"object": "list", "data": data}));
    }
    if recorded.method == "GET" && path.ends_with("/wham/usage") {
        return json_response(200, &lock(&inner.usage));
    }
    if recorded.method == "POST" && path.ends_with("/responses") {
        return sse::stream_response(&inner, failure);
    }
    json_response(
        404,
        &json!({"error": {"message": format!("no route for {} {}", recorded.method, path)}}),
    )
}

/// The usage endpoint's default answer: a pro plan, 42 % of the 5-hour window and 7 % of
/// the weekly one used, some credits.
pub fn default_usage() -> Value {
    json!({
        "plan_type": "pro",
        "rate_limit": {
            "allowed": true,
            "limit_reached": false,
            "primary_window": {"used_percent": 42, "limit_window_seconds": 18000,
                               "reset_after_seconds": 3600, "reset_at": 1796240000},
            "secondary_window": {"used_percent": 7, "limit_window_seconds": 604800,
                                 "reset_after_seconds": 86400, "reset_at": 1796800000}
        },
        "credits": {"has_credits": true, "unlimited": false, "balance": "9.99"},
        "additional_rate_limits": null
    })
}

fn check_auth(
    inner: &Inner,
    authorization: Option<&str>,
    failure: Option<&Failure>,
) -> Option<Response> {
    if failure == Some(&Failure::UnauthorizedAlways) {
        return Some(unauthorized(
            "Your authentication token is not valid.",
            "invalid_token",
        ));
    }
    if !inner.require_auth {
        return None;
    }
    let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
        return Some(unauthorized(
            "Missing bearer authentication in header.",
            "missing_auth",
        ));
    };
    if lock(&inner.valid).contains(token) {
        return None;
    }
    if lock(&inner.expired).contains(token) {
        return Some(unauthorized(
            "Your authentication token has expired.",
            "token_expired",
        ));
    }
    Some(unauthorized(
        "Your authentication token is not valid.",
        "invalid_token",
    ))
}

fn unauthorized(message: &str, code: &str) -> Response {
    json_response(
        401,
        &json!({"error": {"message": message, "type": "invalid_request_error", "code": code}}),
    )
}

/// `body` with the content type it parses as: JSON, else plain text.
fn status_response(status: u16, body: String) -> Response {
    let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
        "application/json"
    } else {
        "text/plain"
    };
    respond(status, content_type, body)
}
