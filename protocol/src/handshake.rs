//! `initialize` and `initialized` (docs/protocol.md §2).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::method::{notification, request};

/// Who the host is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub version: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What the host supports. Every member is optional; unknown members are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCapabilities {
    #[serde(default)]
    pub experimental_api: bool,
    /// Notifications with exactly these method names are not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_notification_methods: Option<Vec<String>>,
    /// Opt into `reason: "expiringSoon"` refresh requests (§3.6).
    #[serde(default, skip_serializing_if = "is_false")]
    pub proactive_token_refresh: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    pub client_info: ClientInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<ClientCapabilities>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResponse {
    pub user_agent: String,
    /// authbridge's home (Codex's `codexHome`): where `config.toml` lives. Absolute.
    pub codex_home: String,
    /// `unix` or `windows`.
    pub platform_family: String,
    /// `linux`, `macos` or `windows`.
    pub platform_os: String,
    pub server_info: ServerInfo,
}

/// Params of a message that takes none (`{}` or absent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmptyParams {}

request!(
    /// `initialize`: the first request of a session.
    Initialize, "initialize", InitializeParams, InitializeResponse
);
notification!(
    /// `initialized`: the host's acknowledgement; accepted, not required.
    Initialized, "initialized", EmptyParams
);
