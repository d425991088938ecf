//! Turns (docs/protocol.md §6.3): `turn/start`, `turn/interrupt` and the turn and item
//! notifications, in Codex's v2 shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::method::{notification, request};
pub use crate::thread::{ThreadItem, Turn, TurnError, TurnItemsView, TurnStatus, UserInput};

/// `turn/start` params. `model` overrides the thread's model for this turn and the next
/// ones. Every other Codex field (effort, sandbox, cwd, output schema, …) is accepted and
/// ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnStartParams {
    pub thread_id: String,
    pub input: Vec<UserInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// `turn/start` result: the turn, `inProgress`, before any of its notifications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnStartResponse {
    pub turn: Turn,
}

/// `turn/interrupt` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnInterruptParams {
    pub thread_id: String,
    pub turn_id: String,
}

/// `turn/interrupt` result (`{}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TurnInterruptResponse {}

/// `turn/started` and `turn/completed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnNotification {
    pub thread_id: String,
    pub turn: Turn,
}

/// `item/started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemStartedNotification {
    pub item: ThreadItem,
    pub thread_id: String,
    pub turn_id: String,
    pub started_at_ms: i64,
}

/// `item/completed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemCompletedNotification {
    pub item: ThreadItem,
    pub thread_id: String,
    pub turn_id: String,
    pub content_token_count: Option<u64>,
    pub completed_at_ms: i64,
}

/// `item/agentMessage/delta`: more text of the agent message `itemId`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentMessageDeltaNotification {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub delta: String,
}

request!(
    /// `turn/start`.
    TurnStart, "turn/start", TurnStartParams, TurnStartResponse
);
request!(
    /// `turn/interrupt`.
    TurnInterrupt, "turn/interrupt", TurnInterruptParams, TurnInterruptResponse
);
notification!(
    /// `turn/started`.
    TurnStarted, "turn/started", TurnNotification
);
notification!(
    /// `turn/completed`: exactly one per accepted turn.
    TurnCompleted, "turn/completed", TurnNotification
);
notification!(
    /// `item/started`.
    ItemStarted, "item/started", ItemStartedNotification
);
notification!(
    /// `item/completed`.
    ItemCompleted, "item/completed", ItemCompletedNotification
);
notification!(
    /// `item/agentMessage/delta`.
    AgentMessageDelta, "item/agentMessage/delta", AgentMessageDeltaNotification
);
