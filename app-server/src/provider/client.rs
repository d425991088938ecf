//! The provider HTTP client: `GET {url}/models` and the streaming `POST {url}/responses` (§6).
//!
//! One reqwest client (rustls) serves the whole process; it is built on the first request, not
//! at start-up, and shared by every clone of [`ProviderClient`]. Redirects are never followed,
//! so the bearer token only ever goes to the configured URL.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::stream::ResponseStream;
use super::{ProviderAuth, ProviderError, ProviderTimeouts, ResponsesRequest};

/// How long `list_models` may take beyond the connect timeout, body included.
pub const LIST_MODELS_DEADLINE: Duration = Duration::from_secs(60);
/// The most of an error body that is read (the message needs its JSON or first 200 bytes).
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The most of a model list that is read.
const MODEL_LIST_LIMIT: usize = 8 * 1024 * 1024;
/// How much of a non-JSON error body goes into the message.
const SNIPPET_BYTES: usize = 200;

/// The provider HTTP client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct ProviderClient {
    timeouts: ProviderTimeouts,
    http: Arc<OnceCell<reqwest::Client>>,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderClient")
            .field("timeouts", &self.timeouts)
            .field("built", &self.http.initialized())
            .finish()
    }
}

impl ProviderClient {
    /// A client with these timeouts. Builds nothing yet.
    pub fn new(timeouts: ProviderTimeouts) -> Self {
        ProviderClient {
            timeouts,
            http: Arc::new(OnceCell::new()),
        }
    }

    /// `GET {base_url}/models` → the ids of `{"data":[{"id":…}]}`.
    ///
    /// The whole request, body included, has a deadline of the connect timeout plus
    /// [`LIST_MODELS_DEADLINE`] (60 s).
    pub async fn list_models(
        &self,
        base_url: &str,
        auth: Option<ProviderAuth<'_>>,
    ) -> Result<Vec<String>, ProviderError> {
        let url = join(base_url, "models");
        let deadline = self.timeouts.connect + LIST_MODELS_DEADLINE;
        let request = self
            .http()
            .await?
            .get(&url)
            .header(ACCEPT, "application/json")
            .timeout(deadline);
        let request = authorize(request, auth)?;
        let bearer = auth.map(|a| a.bearer);
        // One deadline for headers and body together (reqwest's own timeout is the same).
        let until = tokio::time::Instant::now() + deadline;
        let send = tokio::time::timeout_at(until, request.send());
        let mut response = match send.await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.send_error(&url, &e)),
            Err(_) => return Err(deadline_error(&url, deadline)),
        };
        let status = response.status();
        if !status.is_success() {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let body = read_bounded(&mut response, ERROR_BODY_LIMIT, left).await;
            return Err(status_error(status.as_u16(), &body, bearer));
        }
        let body = tokio::time::timeout_at(until, read_all(&mut response, MODEL_LIST_LIMIT))
            .await
            .map_err(|_| deadline_error(&url, deadline))??;
        #[derive(Deserialize)]
        struct List {
            data: Vec<Model>,
        }
        #[derive(Deserialize)]
        struct Model {
            id: String,
        }
        let list: List = serde_json::from_slice(&body).map_err(|e| {
            ProviderError::InvalidResponse(format!(
                "provider returned an invalid model list (expected {{\"data\":[{{\"id\":…}}]}}): {e}"
            ))
        })?;
        Ok(list.data.into_iter().map(|m| m.id).collect())
    }

    /// `GET` the ChatGPT backend's usage endpoint (`url` is the whole URL) → its body.
    /// Same deadline and error wording as [`list_models`](Self::list_models).
    pub async fn get_usage(
        &self,
        url: &str,
        auth: Option<ProviderAuth<'_>>,
    ) -> Result<Vec<u8>, ProviderError> {
        let deadline = self.timeouts.connect + LIST_MODELS_DEADLINE;
        let request = self
            .http()
            .await?
            .get(url)
            .header(ACCEPT, "application/json")
            .timeout(deadline);
        let request = authorize(request, auth)?;
        let until = tokio::time::Instant::now() + deadline;
        let mut response = match tokio::time::timeout_at(until, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.send_error(url, &e)),
            Err(_) => return Err(deadline_error(url, deadline)),
        };
        let status = response.status();
        if !status.is_success() {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let body = read_bounded(&mut response, ERROR_BODY_LIMIT, left).await;
            return Err(status_error(status.as_u16(), &body, auth.map(|a| a.bearer)));
        }
        tokio::time::timeout_at(until, read_all(&mut response, ERROR_BODY_LIMIT))
            .await
            .map_err(|_| deadline_error(url, deadline))?
    }

    /// `POST {base_url}/responses` with `request`'s body, `Accept: text/event-stream`,
    /// `Authorization: Bearer` and `ChatGPT-Account-Id` when given.
    ///
    /// Returns once the status line and headers are in; waiting for them has a deadline of
    /// connect + stream-idle timeout. A 401 is [`ProviderError::Unauthorized`]. The
    /// response's rate-limit headers are in [`ResponseStream::rate_limits`].
    pub async fn start_response(
        &self,
        base_url: &str,
        auth: Option<ProviderAuth<'_>>,
        request: &ResponsesRequest,
    ) -> Result<ResponseStream, ProviderError> {
        let url = join(base_url, "responses");
        let body = request.body();
        let request = self
            .http()
            .await?
            .post(&url)
            .header(ACCEPT, "text/event-stream")
            .json(&body);
        let request = authorize(request, auth)?;
        let deadline = self.timeouts.connect + self.timeouts.stream_idle;
        let mut response = match tokio::time::timeout(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.send_error(&url, &e)),
            Err(_) => return Err(deadline_error(&url, deadline)),
        };
        let status = response.status();
        if !status.is_success() {
            let body =
                read_bounded(&mut response, ERROR_BODY_LIMIT, self.timeouts.stream_idle).await;
            return Err(status_error(status.as_u16(), &body, auth.map(|a| a.bearer)));
        }
        Ok(ResponseStream::new(response, self.timeouts.stream_idle))
    }

    async fn http(&self) -> Result<&reqwest::Client, ProviderError> {
        let connect = self.timeouts.connect;
        self.http
            .get_or_try_init(|| async move {
                reqwest::Client::builder()
                    .connect_timeout(connect)
                    .redirect(reqwest::redirect::Policy::none())
                    .tcp_nodelay(true)
                    .user_agent(concat!("authbridge/", env!("CARGO_PKG_VERSION")))
                    .build()
            })
            .await
            .map_err(|e| {
                ProviderError::Transport(format!("could not build the HTTP client: {}", why(&e)))
            })
    }

    fn send_error(&self, url: &str, e: &reqwest::Error) -> ProviderError {
        let message = if e.is_connect() {
            let why = if e.is_timeout() {
                format!("timed out after {}ms", self.timeouts.connect.as_millis())
            } else {
                root_cause(e)
            };
            format!("could not connect to the provider at {url}: {why}")
        } else if e.is_builder() {
            format!("invalid provider URL `{url}`: {}", root_cause(e))
        } else if e.is_timeout() {
            format!("request to the provider at {url} timed out")
        } else {
            format!("request to the provider at {url} failed: {}", why(e))
        };
        ProviderError::Transport(message)
    }
}

/// `base_url` without trailing `/`, then `/<path>`.
fn join(base_url: &str, path: &str) -> String {
    format!("{}/{path}", base_url.trim_end_matches('/'))
}

fn authorize(
    mut request: reqwest::RequestBuilder,
    auth: Option<ProviderAuth<'_>>,
) -> Result<reqwest::RequestBuilder, ProviderError> {
    let Some(auth) = auth else {
        return Ok(request);
    };
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", auth.bearer)).map_err(|_| {
        ProviderError::Transport("the bearer token is not a valid HTTP header value".into())
    })?;
    bearer.set_sensitive(true);
    request = request.header(AUTHORIZATION, bearer);
    if let Some(id) = auth.account_id {
        let id = HeaderValue::from_str(id).map_err(|_| {
            ProviderError::Transport(
                "the ChatGPT account id is not a valid HTTP header value".into(),
            )
        })?;
        request = request.header("ChatGPT-Account-Id", id);
    }
    Ok(request)
}

/// The error for a non-2xx reply: the JSON body's `error.message`, else the status and the
/// body's first 200 bytes. The bearer token is masked should the provider echo it.
fn status_error(status: u16, body: &[u8], bearer: Option<&str>) -> ProviderError {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let mut message = from_json.unwrap_or_else(|| {
        let snippet = &body[..body.len().min(SNIPPET_BYTES)];
        format!(
            "provider returned HTTP {status}: {}",
            String::from_utf8_lossy(snippet)
        )
    });
    if let Some(bearer) = bearer.filter(|b| !b.is_empty()) {
        message = message.replace(bearer, "<redacted>");
    }
    if status == 401 {
        ProviderError::Unauthorized { message }
    } else {
        ProviderError::Http { status, message }
    }
}

/// Up to `limit` bytes of the body within `deadline`; whatever arrived if reading fails.
async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
    deadline: Duration,
) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while body.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(deadline, read).await;
    body
}

/// The whole body, failing past `limit` bytes.
async fn read_all(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        ProviderError::Transport(format!("reading the provider's reply failed: {}", why(&e)))
    })? {
        if body.len() + chunk.len() > limit {
            return Err(ProviderError::InvalidResponse(format!(
                "provider reply larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn deadline_error(url: &str, deadline: Duration) -> ProviderError {
    ProviderError::Transport(format!(
        "request to the provider at {url} timed out after {}ms",
        deadline.as_millis()
    ))
}

/// An error and its causes, `: `-separated (reqwest's own text is terse), without the URL.
pub(super) fn why(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = match e.downcast_ref::<reqwest::Error>() {
        Some(r) => reqwest_text(r),
        None => e.to_string(),
    };
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// reqwest's message without its ` for url (…)` suffix.
fn reqwest_text(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match text.find(" for url (") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The innermost cause: for a connect error, the OS's or TLS's own words.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    match cause.downcast_ref::<reqwest::Error>() {
        Some(r) => reqwest_text(r),
        None => cause.to_string(),
    }
}
