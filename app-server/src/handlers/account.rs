//! The account methods (docs/protocol.md §3): login, read, logout and the legacy status.
//! Errors carry the exact words and codes of docs/protocol.md §3.

use std::sync::Arc;

use authbridge_auth_core::{
    AccountState, ApiAuthMode, AuthError, Credentials, ExternalAuthTokens, Secret,
};
use authbridge_protocol::account::*;
use authbridge_protocol::ErrorObject;

use crate::config::ForcedLoginMethod;
use crate::peer::RequestContext;
use crate::state::AppState;

fn wire_mode(mode: ApiAuthMode) -> AuthMode {
    match mode {
        ApiAuthMode::ApiKey => AuthMode::ApiKey,
        ApiAuthMode::Chatgpt => AuthMode::Chatgpt,
        ApiAuthMode::ChatgptAuthTokens => AuthMode::ChatgptAuthTokens,
    }
}

fn plan_of(plan: Option<&str>) -> PlanType {
    plan.map(PlanType::parse).unwrap_or(PlanType::Unknown)
}

/// `account/updated` for an account state; the plan is reported for ChatGPT modes only.
pub fn account_updated(state: &AccountState) -> AccountUpdatedNotification {
    AccountUpdatedNotification {
        auth_mode: state.mode.map(wire_mode),
        plan_type: match state.mode {
            Some(ApiAuthMode::Chatgpt | ApiAuthMode::ChatgptAuthTokens) => {
                Some(plan_of(state.plan_type.as_deref()))
            }
            _ => None,
        },
        reason: None,
    }
}

fn state_of(creds: Option<&Credentials>) -> AccountState {
    AccountState {
        mode: creds.map(Credentials::mode),
        account_id: creds.and_then(|c| c.account_id().map(str::to_string)),
        plan_type: creds.and_then(|c| c.plan_type().map(str::to_string)),
    }
}

/// The documented words (docs/protocol.md §3.1) when host-pushed ChatGPT tokens are active and another kind of
/// login is asked for (docs/protocol.md §3.1, §3.8); auth-core's
/// `AuthError::ExternalAuthActive` says the same without the method names.
pub const EXTERNAL_AUTH_ACTIVE: &str = "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.";

/// The -32600 answer to a login refused because host tokens are active.
pub fn external_auth_active() -> ErrorObject {
    ErrorObject::invalid_request(EXTERNAL_AUTH_ACTIVE)
}

/// Maps a credential-store failure to -32603 (its message names the path).
fn store_error(e: AuthError) -> ErrorObject {
    ErrorObject::internal(e.to_string())
}

/// A login's failure: a credential that is not usable (not a JWT, not a header value) is
/// the caller's -32602, naming the field; a forced workspace or active host tokens -32600;
/// the store -32603.
fn login_error(e: AuthError) -> ErrorObject {
    match e {
        AuthError::ExternalAuthActive => external_auth_active(),
        AuthError::InvalidAccessToken(_) | AuthError::InvalidCredential { .. } => {
            ErrorObject::invalid_params(e.to_string())
        }
        AuthError::WorkspaceMismatch { .. } => ErrorObject::invalid_request(e.to_string()),
        other => store_error(other),
    }
}

pub async fn login(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
    params: LoginAccountParams,
) -> Result<LoginAccountResponse, ErrorObject> {
    // Any new login stops a browser or device-code flow in progress (§3.8).
    state.logins.replace().await;
    let params = match params {
        LoginAccountParams::Chatgpt {} => return crate::login::start_browser(state, ctx).await,
        LoginAccountParams::ChatgptDeviceCode {} => {
            return crate::login::start_device(state, ctx).await
        }
        other => other,
    };
    let forced = state.config.forced_login_method;
    // Held across the change so the change watcher does not announce it a second time.
    let mut told = state.told.lock().await;
    let (response, creds) = match params {
        LoginAccountParams::ApiKey { api_key } => {
            if forced == Some(ForcedLoginMethod::Chatgpt) {
                return Err(ErrorObject::invalid_request(
                    "API key login is disabled. Use ChatGPT login instead.",
                ));
            }
            if state.auth.external_tokens_active() {
                return Err(external_auth_active());
            }
            if api_key.trim().is_empty() {
                return Err(ErrorObject::invalid_params("invalid api key: it is empty"));
            }
            let creds = state
                .auth
                .login_api_key(Secret::new(api_key))
                .await
                .map_err(login_error)?;
            (LoginAccountResponse::ApiKey {}, creds)
        }
        LoginAccountParams::ChatgptAuthTokens {
            access_token,
            chatgpt_account_id,
            chatgpt_plan_type,
        } => {
            if forced == Some(ForcedLoginMethod::Api) {
                return Err(ErrorObject::invalid_request(
                    "External ChatGPT auth is disabled. Use API key login instead.",
                ));
            }
            let tokens =
                ExternalAuthTokens::chatgpt(access_token, chatgpt_account_id, chatgpt_plan_type);
            let creds = state
                .auth
                .login_external_chatgpt(tokens)
                .await
                .map_err(login_error)?;
            (LoginAccountResponse::ChatgptAuthTokens {}, creds)
        }
        LoginAccountParams::Chatgpt {} | LoginAccountParams::ChatgptDeviceCode {} => {
            return Err(ErrorObject::internal("sign-in flow dispatched twice"));
        }
    };
    let now = state_of(Some(&creds));
    *told = Some(now.clone());
    ctx.notify_after::<AccountLoginCompleted>(&AccountLoginCompletedNotification {
        login_id: None,
        success: true,
        error: None,
        onboarding_entrypoint: None,
    });
    ctx.notify_after::<AccountUpdated>(&account_updated(&now));
    Ok(response)
}

pub async fn read(
    state: &Arc<AppState>,
    params: GetAccountParams,
) -> Result<GetAccountResponse, ErrorObject> {
    if params.refresh_token && !state.auth.external_tokens_active() {
        if let Err(e) = state.auth.refresh_managed().await {
            tracing::info!(error = %e, "account/read: refresh failed; answering with the credentials as they are");
        }
    }
    let creds = state.auth.snapshot().map_err(store_error)?;
    let account = creds.map(|c| match c.mode() {
        ApiAuthMode::ApiKey => Account::ApiKey {},
        ApiAuthMode::Chatgpt | ApiAuthMode::ChatgptAuthTokens => Account::Chatgpt {
            email: c.email().map(str::to_string),
            plan_type: plan_of(c.plan_type()),
        },
    });
    Ok(GetAccountResponse {
        account,
        requires_openai_auth: state.config.active_provider().requires_openai_auth,
    })
}

pub async fn logout(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
) -> Result<LogoutAccountResponse, ErrorObject> {
    let mut told = state.told.lock().await;
    state.auth.logout().await.map_err(store_error)?;
    // What remains (e.g. AUTHBRIDGE_API_KEY) is what the host is told about.
    let remaining = state.auth.snapshot().ok().flatten();
    let now = state_of(remaining.as_ref());
    *told = Some(now.clone());
    ctx.notify_after::<AccountUpdated>(&account_updated(&now));
    Ok(LogoutAccountResponse {})
}

pub async fn status(
    state: &Arc<AppState>,
    params: GetAuthStatusParams,
) -> Result<GetAuthStatusResponse, ErrorObject> {
    if params.refresh_token == Some(true) && !state.auth.external_tokens_active() {
        if let Err(e) = state.auth.refresh_managed().await {
            tracing::info!(error = %e, "getAuthStatus: refresh failed");
        }
    }
    let creds = state.auth.snapshot().map_err(store_error)?;
    let auth_token = match (&creds, params.include_token) {
        (Some(c), Some(true)) if !state.auth.has_permanent_failure(c) => {
            Some(c.bearer_token().expose().to_string())
        }
        _ => None,
    };
    Ok(GetAuthStatusResponse {
        auth_method: creds.as_ref().map(|c| wire_mode(c.mode())),
        auth_token,
        requires_openai_auth: state.config.active_provider().requires_openai_auth,
    })
}
