//! `model/list` (docs/protocol.md §6.1): the provider's `GET /models`, as Codex `Model`s,
//! a page at a time, with 401 recovery.

use std::sync::Arc;

use authbridge_protocol::model::{Model, ModelListParams, ModelListResponse};
use authbridge_protocol::ErrorObject;

use crate::state::AppState;

pub async fn list(
    state: &Arc<AppState>,
    params: ModelListParams,
) -> Result<ModelListResponse, ErrorObject> {
    let start = super::page_start(params.cursor.as_deref())?;
    let (_, provider) = state.provider(params.model_provider.as_deref())?;
    provider.auth.precheck().map_err(super::call_error)?;
    let ids = provider
        .auth
        .call(&provider.config, |url, auth| {
            let client = provider.client.clone();
            async move {
                client
                    .list_models(&url, auth.as_ref().map(|a| a.borrow()))
                    .await
            }
        })
        .await
        .map_err(super::call_error)?;
    let limit = match params.limit {
        Some(0) | None => ids.len(),
        Some(n) => n as usize,
    };
    let end = start.saturating_add(limit).min(ids.len());
    let next_cursor = (end < ids.len()).then(|| end.to_string());
    let default = &state.config.model;
    let data = ids
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .map(|id| {
            let is_default = &id == default;
            Model::from_id(id, is_default)
        })
        .collect();
    Ok(ModelListResponse { data, next_cursor })
}
