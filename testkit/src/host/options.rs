//! The host simulator's options and errors.

use std::time::Duration;

use authbridge_protocol::ErrorObject;
use serde_json::Value;

use crate::refresh_policy::RefreshPolicy;
use crate::wire::Framing;

/// What happens to the server's stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StderrMode {
    /// Kept in a buffer (`stderr_text()`).
    #[default]
    Capture,
    /// Passed through to this process's stderr.
    Inherit,
    /// A pipe whose read end is closed at once: every write to stderr fails (a host
    /// that pipes stderr and never reads it).
    Closed,
}

/// How the host behaves.
#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    pub framing: Framing,
    pub stderr: StderrMode,
    pub refresh: RefreshPolicy,
    /// Send `"jsonrpc":"2.0"` in every message.
    pub jsonrpc: bool,
    /// Write each transcript line to stderr as it happens (also on with `AUTHBRIDGE_TRANSCRIPT=1`).
    pub echo_transcript: bool,
    /// Raw mode: do not parse stdout (no routing, no refresh answers); read it with
    /// `stdout_bytes`.
    pub raw: bool,
}

/// A request that got no answer.
#[derive(Debug)]
pub enum HostError {
    /// No response within the deadline.
    Timeout { method: String, after: Duration },
    /// The server's stdout closed first.
    Closed { method: String },
    /// Writing to the server failed.
    Io(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout { method, after } => {
                write!(f, "no response to {method} within {after:?}")
            }
            Self::Closed { method } => {
                write!(f, "server stdout closed before the response to {method}")
            }
            Self::Io(e) => write!(f, "writing to the server failed: {e}"),
        }
    }
}

impl std::error::Error for HostError {}

/// `{"result": r}` → `Ok(r)`; `{"error": e}` → `Err(e)`.
pub fn split_response(response: Value) -> Result<Value, ErrorObject> {
    if let Some(error) = response.get("error") {
        return Err(serde_json::from_value(error.clone())
            .unwrap_or_else(|_| ErrorObject::new(0, format!("malformed error object: {error}"))));
    }
    Ok(response.get("result").cloned().unwrap_or(Value::Null))
}
