//! A streaming `/responses` reply: SSE bytes read under the idle timeout, parsed, and mapped
//! to [`TurnEvent`]s per §6.2.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;

use authbridge_protocol::rate_limits::RateLimitSnapshot;

use super::client::why;
use super::sse::{SseEvent, SseParser};
use super::{ProviderError, TurnEvent, Usage};

/// A streaming response: SSE events mapped to [`TurnEvent`]s (§6.2).
pub struct ResponseStream {
    response: reqwest::Response,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
    idle: Duration,
    state: State,
    rate_limits: Option<RateLimitSnapshot>,
}

enum State {
    Streaming,
    Completed,
    Failed(ProviderError),
}

impl ResponseStream {
    pub(super) fn new(response: reqwest::Response, idle: Duration) -> Self {
        let rate_limits = super::rate_limits::from_headers(response.headers());
        ResponseStream {
            rate_limits,
            response,
            parser: SseParser::new(),
            pending: VecDeque::new(),
            idle,
            state: State::Streaming,
        }
    }

    /// The `codex` rate limit the response's headers reported, if any.
    pub fn rate_limits(&self) -> Option<&RateLimitSnapshot> {
        self.rate_limits.as_ref()
    }

    /// The next meaningful event. `Ok(None)` only after [`TurnEvent::Completed`]; a stream
    /// that ends early is `Err(Failed("stream ended before response.completed"))`; no bytes
    /// for the idle timeout is `Err(Transport(..))`. After an error, the same error again.
    pub async fn next_event(&mut self) -> Result<Option<TurnEvent>, ProviderError> {
        loop {
            match &self.state {
                State::Streaming => {}
                State::Completed => return Ok(None),
                State::Failed(e) => return Err(e.clone()),
            }
            match self.step().await {
                Ok(Some(event)) => {
                    if matches!(event, TurnEvent::Completed(_)) {
                        self.state = State::Completed;
                        self.pending.clear();
                    }
                    return Ok(Some(event));
                }
                Ok(None) => {}
                Err(e) => {
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// One parsed event's meaning, or one chunk read (`Ok(None)`: nothing meaningful yet).
    async fn step(&mut self) -> Result<Option<TurnEvent>, ProviderError> {
        if let Some(event) = self.pending.pop_front() {
            return interpret(&event);
        }
        let chunk = match tokio::time::timeout(self.idle, self.response.chunk()).await {
            Err(_) => {
                return Err(ProviderError::Transport(format!(
                    "provider stream idle for {}ms",
                    self.idle.as_millis()
                )))
            }
            Ok(Err(e)) => {
                return Err(ProviderError::Transport(format!(
                    "provider stream failed: {}",
                    why(&e)
                )))
            }
            Ok(Ok(None)) => {
                return Err(ProviderError::Failed(
                    "stream ended before response.completed".to_string(),
                ))
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        let events = self
            .parser
            .try_push(&chunk)
            .map_err(|e| ProviderError::Transport(e.to_string()))?;
        self.pending.extend(events);
        Ok(None)
    }
}

/// Maps one SSE event per §6.2: `type` in the JSON data names it, the `event:` line is the
/// fallback; unknown events and `[DONE]` are ignored.
fn interpret(event: &SseEvent) -> Result<Option<TurnEvent>, ProviderError> {
    if event.data.trim() == "[DONE]" {
        return Ok(None);
    }
    let json: Option<Value> = serde_json::from_str(&event.data).ok();
    let kind = json
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str)
        .or(event.event.as_deref());
    let text = |pointer: &str| {
        json.as_ref()
            .and_then(|v| v.pointer(pointer))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match kind {
        Some("response.output_text.delta") => Ok(text("/delta").map(TurnEvent::Delta)),
        Some("response.output_item.added") => {
            let item = json.as_ref().and_then(|v| v.get("item"));
            let is_message = item
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                .is_none_or(|t| t == "message");
            Ok(is_message.then(|| {
                TurnEvent::MessageStarted(
                    item.and_then(|i| i.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                )
            }))
        }
        Some("response.completed") => Ok(Some(TurnEvent::Completed(
            json.as_ref()
                .and_then(|v| v.pointer("/response/usage"))
                .and_then(usage),
        ))),
        Some("response.failed") => Err(ProviderError::Failed(
            text("/response/error/message").unwrap_or_else(|| {
                "the provider reported response.failed without a message".into()
            }),
        )),
        Some("error") => Err(ProviderError::Failed(
            text("/message")
                .or_else(|| text("/error/message"))
                .or_else(|| (json.is_none() && !event.data.is_empty()).then(|| event.data.clone()))
                .unwrap_or_else(|| "the provider reported an error without a message".into()),
        )),
        _ => Ok(None),
    }
}

/// `response.usage` of the Responses API, when it has the counts.
fn usage(v: &Value) -> Option<Usage> {
    let n = |pointer: &str| v.pointer(pointer).and_then(Value::as_i64);
    let input_tokens = n("/input_tokens")?;
    let output_tokens = n("/output_tokens")?;
    Some(Usage {
        input_tokens,
        cached_input_tokens: n("/input_tokens_details/cached_tokens").unwrap_or(0),
        output_tokens,
        reasoning_output_tokens: n("/output_tokens_details/reasoning_tokens").unwrap_or(0),
        total_tokens: n("/total_tokens").unwrap_or(input_tokens + output_tokens),
    })
}
