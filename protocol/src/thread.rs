//! Threads (docs/protocol.md §6.2): `thread/start`, `thread/read`, `thread/list`, and the
//! thread notifications, in Codex's v2 shapes.
//!
//! authbridge serves a chat-only subset: members Codex requires and authbridge has no
//! meaning for carry Codex's neutral value (`null`, `[]`, the default enum). Params accept
//! every Codex field; the ones authbridge does not act on are ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::method::{notification, request};

/// One input item of a turn (Codex's `UserInput`). authbridge runs text only: any other
/// `type` is refused with -32602 naming it.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum UserInput {
    Text {
        text: String,
        /// UI spans within `text`; kept as sent, never interpreted.
        #[serde(default)]
        text_elements: Vec<Value>,
    },
}

impl UserInput {
    pub fn text(text: impl Into<String>) -> Self {
        UserInput::Text {
            text: text.into(),
            text_elements: Vec::new(),
        }
    }
    pub fn as_text(&self) -> &str {
        match self {
            UserInput::Text { text, .. } => text,
        }
    }
}

impl<'de> Deserialize<'de> for UserInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct TextItem {
            text: String,
            #[serde(default)]
            text_elements: Vec<Value>,
        }
        let value = Value::deserialize(d)?;
        match value.get("type") {
            Some(Value::String(t)) if t == "text" => {
                let item: TextItem = serde_json::from_value(value).map_err(D::Error::custom)?;
                Ok(UserInput::Text {
                    text: item.text,
                    text_elements: item.text_elements,
                })
            }
            Some(Value::String(other)) => Err(D::Error::custom(format!(
                "unsupported input item type {:?}: authbridge runs text input only",
                cut(other)
            ))),
            Some(_) => Err(D::Error::custom(
                "invalid type: field `type` must be a string",
            )),
            None => Err(D::Error::missing_field("type")),
        }
    }
}

/// At most 200 characters of a host-chosen string, for error messages.
fn cut(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// A thread's runtime status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ThreadStatus {
    NotLoaded,
    Idle,
    SystemError,
    #[serde(rename_all = "camelCase")]
    Active {
        /// Always empty: authbridge waits on no approval or input.
        active_flags: Vec<String>,
    },
}

/// How a turn stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TurnStatus {
    Completed,
    Interrupted,
    Failed,
    InProgress,
}

/// How much of `items` a turn carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TurnItemsView {
    NotLoaded,
    Summary,
    Full,
}

/// Why a turn failed (Codex's `TurnError`). `codexErrorInfo` is Codex's classification:
/// `unauthorized`, `badRequest`, … or `other`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnError {
    pub message: String,
    pub codex_error_info: Option<Value>,
    pub additional_details: Option<String>,
    pub misalignment: Option<Value>,
}

impl TurnError {
    /// A failure with Codex's classification for an HTTP status (none → `other`).
    pub fn new(message: impl Into<String>, http_status: Option<u16>) -> Self {
        let info = match http_status {
            Some(401) => "unauthorized",
            Some(400) => "badRequest",
            Some(429) => "usageLimitExceeded",
            Some(s) if s >= 500 => "internalServerError",
            _ => "other",
        };
        TurnError {
            message: message.into(),
            codex_error_info: Some(Value::String(info.into())),
            additional_details: None,
            misalignment: None,
        }
    }
}

/// One item of a thread (Codex's `ThreadItem`): what the user said and what the model
/// answered. Only these two kinds exist in a chat-only thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ThreadItem {
    #[serde(rename_all = "camelCase")]
    UserMessage {
        id: String,
        client_id: Option<String>,
        content: Vec<UserInput>,
        started_at_ms: Option<i64>,
        completed_at_ms: Option<i64>,
    },
    #[serde(rename_all = "camelCase")]
    AgentMessage {
        id: String,
        text: String,
        moderation: Option<Value>,
        phase: Option<Value>,
        memory_citation: Option<Value>,
        delivery: Option<Value>,
        questions: Option<Vec<Value>>,
        started_at_ms: Option<i64>,
        completed_at_ms: Option<i64>,
    },
}

impl ThreadItem {
    pub fn id(&self) -> &str {
        match self {
            ThreadItem::UserMessage { id, .. } | ThreadItem::AgentMessage { id, .. } => id,
        }
    }
}

/// One turn of a thread (Codex's `Turn`). Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub id: String,
    pub root_turn_id: Option<String>,
    pub items: Vec<ThreadItem>,
    pub items_view: TurnItemsView,
    pub status: TurnStatus,
    pub error: Option<TurnError>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub duration_ms: Option<i64>,
}

/// A thread (Codex's `Thread`). Times are Unix seconds. authbridge's threads live in
/// memory only (`ephemeral: true`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: String,
    pub session_id: String,
    pub forked_from_id: Option<String>,
    pub parent_thread_id: Option<String>,
    /// The first user message, once there is one.
    pub preview: String,
    pub ephemeral: bool,
    pub project_id: Option<String>,
    pub model_provider: String,
    pub model: Option<String>,
    pub reasoning_effort: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub recency_at: Option<i64>,
    pub status: ThreadStatus,
    pub path: Option<String>,
    pub cwd: String,
    pub cli_version: String,
    pub originator: Option<String>,
    /// Codex's `SessionSource`: `appServer`.
    pub source: String,
    pub agent_nickname: Option<String>,
    pub agent_role: Option<String>,
    pub git_info: Option<Value>,
    pub name: Option<String>,
    /// Filled by `thread/read` with `includeTurns: true`; empty elsewhere.
    pub turns: Vec<Turn>,
}

/// `thread/start` params. `model` and `modelProvider` override the config for this thread;
/// `baseInstructions` and `developerInstructions` go to the provider as instructions.
/// Every other Codex field (sandbox, approval policy, personality, …) is accepted and
/// ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStartParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer_instructions: Option<String>,
    /// Accepted; authbridge's threads are always ephemeral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
}

/// Codex's `SandboxPolicy`, reported as `readOnly` without network: authbridge runs nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxPolicy {
    #[serde(rename = "type")]
    pub kind: String,
    pub network_access: bool,
}

impl SandboxPolicy {
    pub fn read_only() -> Self {
        SandboxPolicy {
            kind: "readOnly".into(),
            network_access: false,
        }
    }
}

/// `thread/start` result (Codex's `ThreadStartResponse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStartResponse {
    pub thread: Thread,
    pub model: String,
    pub model_provider: String,
    pub service_tier: Option<String>,
    pub cwd: String,
    pub instruction_sources: Vec<String>,
    /// `never`: authbridge asks no approvals.
    pub approval_policy: String,
    /// `user`.
    pub approvals_reviewer: String,
    pub sandbox: SandboxPolicy,
    pub reasoning_effort: Option<String>,
}

/// `thread/read` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadReadParams {
    pub thread_id: String,
    #[serde(default)]
    pub include_turns: bool,
}

/// `thread/read` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadReadResponse {
    pub thread: Thread,
}

/// `thread/list` params: a page of the threads of this process, newest first. Codex's
/// filters are accepted; `modelProviders` filters, the others are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_providers: Option<Vec<String>>,
}

/// `thread/list` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadListResponse {
    pub data: Vec<Thread>,
    pub next_cursor: Option<String>,
    pub backwards_cursor: Option<String>,
}

/// `thread/started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStartedNotification {
    pub thread: Thread,
}

/// `thread/status/changed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStatusChangedNotification {
    pub thread_id: String,
    pub status: ThreadStatus,
}

/// Token counts of one response or of the thread so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsageBreakdown {
    pub total_tokens: i64,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_output_tokens: i64,
}

impl TokenUsageBreakdown {
    pub fn add(&mut self, other: &TokenUsageBreakdown) {
        self.total_tokens += other.total_tokens;
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.cache_write_input_tokens += other.cache_write_input_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_output_tokens += other.reasoning_output_tokens;
    }
}

/// `total` over the thread, `last` of the latest response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadTokenUsage {
    pub total: TokenUsageBreakdown,
    pub last: TokenUsageBreakdown,
    pub model_context_window: Option<i64>,
}

/// `thread/tokenUsage/updated`: sent when the provider reported usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadTokenUsageUpdatedNotification {
    pub thread_id: String,
    pub turn_id: String,
    pub token_usage: ThreadTokenUsage,
}

/// `error`: a turn failed (`willRetry` is always false: authbridge's retry is the one
/// after a healed 401, which is not reported as an error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorNotification {
    pub error: TurnError,
    pub will_retry: bool,
    pub thread_id: String,
    pub turn_id: String,
}

request!(
    /// `thread/start`.
    ThreadStart, "thread/start", ThreadStartParams, ThreadStartResponse
);
request!(
    /// `thread/read`.
    ThreadRead, "thread/read", ThreadReadParams, ThreadReadResponse
);
request!(
    /// `thread/list`.
    ThreadList, "thread/list", ThreadListParams, ThreadListResponse
);
notification!(
    /// `thread/started`.
    ThreadStarted, "thread/started", ThreadStartedNotification
);
notification!(
    /// `thread/status/changed`.
    ThreadStatusChanged, "thread/status/changed", ThreadStatusChangedNotification
);
notification!(
    /// `thread/tokenUsage/updated`.
    ThreadTokenUsageUpdated, "thread/tokenUsage/updated", ThreadTokenUsageUpdatedNotification
);
notification!(
    /// `error`.
    ErrorNotice, "error", ErrorNotification
);
