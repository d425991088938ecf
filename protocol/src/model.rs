//! `model/list` (contract §6.1; ours, not Codex-compatible).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::handshake::EmptyParams;
use crate::method::request;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelListResponse {
    pub models: Vec<ModelInfo>,
}

request!(
    /// `model/list`.
    ModelList, "model/list", EmptyParams, ModelListResponse
);
