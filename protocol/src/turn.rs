//! `turn/start`, `turn/interrupt` and the turn notifications (contract §6.2; ours).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::method::{notification, request};

/// One input item (Codex's item shape). Only text items carry text; others are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum InputItem {
    Text {
        text: String,
    },
    #[serde(other)]
    Other,
}

/// The input of a turn: a string, or an array of items whose text parts are joined with `\n`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TurnInput {
    Text(String),
    Items(Vec<InputItem>),
}

impl<'de> Deserialize<'de> for TurnInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(TurnInput::Text(s)),
            items @ serde_json::Value::Array(_) => serde_json::from_value(items)
                .map(TurnInput::Items)
                .map_err(|e| D::Error::custom(format!("invalid input item: {e}"))),
            _ => Err(D::Error::custom(
                "invalid type: expected a string or an array of input items",
            )),
        }
    }
}

impl TurnInput {
    /// The text sent to the provider.
    pub fn text(&self) -> String {
        match self {
            TurnInput::Text(s) => s.clone(),
            TurnInput::Items(items) => items
                .iter()
                .filter_map(|i| match i {
                    InputItem::Text { text } => Some(text.as_str()),
                    InputItem::Other => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnStartParams {
    pub input: TurnInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnStartResponse {
    pub turn_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnDeltaNotification {
    pub turn_id: String,
    pub delta: String,
}

/// Why a turn failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnError {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

/// How a turn ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum TurnOutcome {
    Completed { text: String },
    Interrupted { text: String },
    Failed { error: TurnError },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnCompletedNotification {
    pub turn_id: String,
    #[serde(flatten)]
    pub outcome: TurnOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnInterruptParams {
    pub turn_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TurnInterruptResponse {}

request!(
    /// `turn/start`.
    TurnStart, "turn/start", TurnStartParams, TurnStartResponse
);
request!(
    /// `turn/interrupt`.
    TurnInterrupt, "turn/interrupt", TurnInterruptParams, TurnInterruptResponse
);
notification!(
    /// `turn/delta`.
    TurnDelta, "turn/delta", TurnDeltaNotification
);
notification!(
    /// `turn/completed`.
    TurnCompleted, "turn/completed", TurnCompletedNotification
);
