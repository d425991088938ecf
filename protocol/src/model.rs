//! `model/list` (docs/protocol.md §6.1) in Codex's shape: the provider's model ids as
//! Codex `Model`s, a page at a time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::method::request;

/// `model/list` params. `cursor` is the `nextCursor` of the previous page; `limit` the
/// page size (default: every model). `modelProvider` lists another configured provider.
/// `includeHidden` is accepted (authbridge hides no model).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_hidden: Option<bool>,
}

/// A reasoning effort a model offers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningEffortOption {
    pub reasoning_effort: String,
    pub description: String,
}

/// One model (Codex's `Model`). The provider's list has ids only: `displayName` is the
/// id, `description` is empty, and the reasoning members carry Codex's neutral values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub id: String,
    pub model: String,
    pub upgrade: Option<String>,
    pub upgrade_info: Option<serde_json::Value>,
    pub availability_nux: Option<serde_json::Value>,
    pub display_name: String,
    pub description: String,
    pub hidden: bool,
    pub supported_reasoning_efforts: Vec<ReasoningEffortOption>,
    pub default_reasoning_effort: String,
    pub input_modalities: Vec<String>,
    pub supports_personality: bool,
    pub additional_speed_tiers: Vec<String>,
    pub service_tiers: Vec<serde_json::Value>,
    pub default_service_tier: Option<String>,
    /// The configured `model`.
    pub is_default: bool,
}

impl Model {
    /// A model known by its id only.
    pub fn from_id(id: String, is_default: bool) -> Self {
        Model {
            model: id.clone(),
            display_name: id.clone(),
            id,
            upgrade: None,
            upgrade_info: None,
            availability_nux: None,
            description: String::new(),
            hidden: false,
            supported_reasoning_efforts: Vec::new(),
            default_reasoning_effort: "medium".into(),
            input_modalities: vec!["text".into()],
            supports_personality: false,
            additional_speed_tiers: Vec::new(),
            service_tiers: Vec::new(),
            default_service_tier: None,
            is_default,
        }
    }
}

/// `model/list` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelListResponse {
    pub data: Vec<Model>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

request!(
    /// `model/list`.
    ModelList, "model/list", ModelListParams, ModelListResponse
);
