//! `account/rateLimits/read` (docs/protocol.md §6.4): the ChatGPT backend's usage
//! endpoint on `chatgpt_base_url`'s origin, with the account's ChatGPT credentials and
//! 401 recovery, in Codex's `GetAccountRateLimitsResponse`.

use std::sync::Arc;

use authbridge_auth_core::AuthError;
use authbridge_protocol::rate_limits::GetAccountRateLimitsResponse;
use authbridge_protocol::ErrorObject;

use crate::provider::rate_limits::{from_usage_body, usage_url};
use crate::provider_auth::ProviderAuthSource;
use crate::state::AppState;

/// Codex's words when the account is not a ChatGPT one.
pub const NEEDS_CHATGPT: &str = "chatgpt authentication required to read rate limits";
/// Codex's words when there is no account at all (and the provider needs none).
pub const NEEDS_ACCOUNT: &str = "codex account authentication required to read rate limits";

pub async fn read(state: &Arc<AppState>) -> Result<GetAccountRateLimitsResponse, ErrorObject> {
    let requires_openai_auth = state.config.active_provider().requires_openai_auth;
    let creds = state
        .auth
        .snapshot()
        .map_err(|e: AuthError| ErrorObject::internal(e.to_string()))?;
    match creds {
        None if requires_openai_auth => return Err(ErrorObject::auth_required()),
        None => return Err(ErrorObject::invalid_request(NEEDS_ACCOUNT)),
        Some(c) if !c.is_chatgpt() => return Err(ErrorObject::invalid_request(NEEDS_CHATGPT)),
        Some(_) => {}
    }
    // The account's credentials, whatever the active provider uses: rate limits belong to
    // the ChatGPT account. The provider config only supplies the ChatGPT base URL.
    let provider = state.config.active_provider();
    let openai = state
        .config
        .model_providers
        .get("openai")
        .unwrap_or(provider);
    // A provider that does not take the account's credentials never gets them, not even
    // for its usage: then the built-in openai provider's ChatGPT URL is used.
    let own = provider
        .requires_openai_auth
        .then_some(provider.chatgpt_base_url.as_deref())
        .flatten();
    let base = own
        .or(openai.chatgpt_base_url.as_deref())
        .unwrap_or("https://chatgpt.com/backend-api/codex");
    let url = usage_url(base);
    let source = ProviderAuthSource::Account(state.auth.clone());
    let body = source
        .call(openai, |_, auth| {
            let client = state.client.clone();
            let url = url.clone();
            async move {
                client
                    .get_usage(&url, auth.as_ref().map(|a| a.borrow()))
                    .await
            }
        })
        .await
        .map_err(super::call_error)?;
    from_usage_body(&body).map_err(ErrorObject::internal)
}
