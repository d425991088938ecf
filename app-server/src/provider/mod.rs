//! The model provider's HTTP client (docs/protocol.md §5, §6): `GET /models`, a streaming `POST /responses`
//! and the SSE parser that turns its bytes into turn events.
//!
//! # Layout
//! - [`client`]: [`ProviderClient`] (one lazily built reqwest client): the requests, status
//!   handling and error wording.
//! - [`stream`]: [`ResponseStream`], the SSE reply under the idle timeout, mapped to [`TurnEvent`]s.
//! - [`sse`]: [`SseParser`], an incremental, size-bounded Server-Sent Events parser.
//!
//! Credentials are the caller's business: it passes the bearer token in [`ProviderAuth`] and,
//! on [`ProviderError::Unauthorized`], refreshes and calls again (§4.3).

pub mod client;
pub mod rate_limits;
pub mod sse;
pub mod stream;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod redaction_tests;
#[cfg(test)]
mod sse_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod test_server;

use std::fmt;
use std::time::Duration;

pub use client::ProviderClient;
pub use sse::{SseError, SseEvent, SseParser};
pub use stream::ResponseStream;

/// The provider's timeouts (`connect_timeout_ms`, `stream_idle_timeout_ms` of §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderTimeouts {
    /// Deadline for the TCP (and TLS) connection.
    pub connect: Duration,
    /// A stream that delivers no bytes for this long fails.
    pub stream_idle: Duration,
}

/// Authorization to send. `bearer` is the raw token (the caller keeps it secret);
/// `account_id` is sent as `ChatGPT-Account-Id`.
///
/// `Debug` never shows the token.
#[derive(Clone, Copy)]
pub struct ProviderAuth<'a> {
    pub bearer: &'a str,
    pub account_id: Option<&'a str>,
}

impl fmt::Debug for ProviderAuth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderAuth")
            .field("bearer", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// Why a provider request failed. Messages never contain the bearer token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// HTTP 401 before the first SSE event. `message` is the body's `error.message` when the
    /// body is JSON, else `provider returned HTTP 401: <first 200 bytes>`.
    #[error("{message}")]
    Unauthorized { message: String },
    /// Any other non-2xx status (redirects included: they are never followed). `message` is
    /// the body's `error.message` when JSON, else `provider returned HTTP <status>: <first 200 bytes>`.
    #[error("{message}")]
    Http { status: u16, message: String },
    /// Connecting, sending or reading failed, or a deadline passed; the message says which
    /// (e.g. `provider stream idle for 300000ms`).
    #[error("{0}")]
    Transport(String),
    /// The provider reported a failure in the stream (`response.failed` or `error`), or the
    /// stream ended before `response.completed`.
    #[error("{0}")]
    Failed(String),
    /// A 2xx reply whose body is not what docs/protocol.md says (e.g. a model list that is not
    /// `{"data":[{"id":…}]}`).
    #[error("{0}")]
    InvalidResponse(String),
}

impl ProviderError {
    /// The HTTP status behind this error, when there was one (`httpStatus` of §6.2).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ProviderError::Unauthorized { .. } => Some(401),
            ProviderError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A meaningful event of a response stream (docs/protocol.md §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// `response.output_item.added` of a `message` item: the assistant message starts;
    /// its id when the provider gave one.
    MessageStarted(Option<String>),
    /// `response.output_text.delta`: more text.
    Delta(String),
    /// `response.completed`: the response is whole; the stream ends here. Carries the
    /// token usage when the provider reported it.
    Completed(Option<Usage>),
}

/// Token usage of one response (`response.completed`'s `response.usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_output_tokens: i64,
    pub total_tokens: i64,
}

/// The body of one `POST {url}/responses`: `{"model","instructions"?,"input":[…],
/// "stream":true,"store":false}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    pub model: String,
    pub instructions: Option<String>,
    /// Responses API input items: the conversation so far, then the new user message.
    pub input: Vec<serde_json::Value>,
}

impl ResponsesRequest {
    /// One user message, no history, no instructions.
    pub fn text(model: &str, text: &str) -> Self {
        ResponsesRequest {
            model: model.to_string(),
            instructions: None,
            input: vec![serde_json::json!({
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            })],
        }
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "model": self.model,
            "input": self.input,
            "stream": true,
            "store": false,
        });
        if let Some(instructions) = &self.instructions {
            body["instructions"] = serde_json::Value::String(instructions.clone());
        }
        body
    }
}
