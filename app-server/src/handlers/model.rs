//! `model/list` (contract §6.1): the provider's model ids, with 401 recovery.

use std::sync::Arc;

use authbridge_protocol::model::{ModelInfo, ModelListResponse};
use authbridge_protocol::ErrorObject;

use crate::state::AppState;

pub async fn list(state: &Arc<AppState>) -> Result<ModelListResponse, ErrorObject> {
    let provider = state.config.active_provider();
    state
        .provider_auth
        .precheck()
        .map_err(|e| e.into_error_object())?;
    let ids = state
        .provider_auth
        .call(provider, |url, auth| {
            let client = state.client.clone();
            async move {
                client
                    .list_models(&url, auth.as_ref().map(|a| a.borrow()))
                    .await
            }
        })
        .await
        .map_err(|e| e.into_error_object())?;
    Ok(ModelListResponse {
        models: ids.into_iter().map(|id| ModelInfo { id }).collect(),
    })
}
