//! `Credentials`: one immutable, cheaply cloned view of whatever authenticates a request.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::jwt::decode_jwt_claims;
use crate::secret::Secret;

/// How requests authenticate. `ChatgptAuthTokens` (external tokens pushed by the host)
/// is kept apart from managed `Chatgpt`; [`Credentials::backend_mode`] folds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiAuthMode {
    /// An API key (also: a provider's bearer token).
    ApiKey,
    /// Managed ChatGPT tokens from `auth.json`.
    Chatgpt,
    /// External ChatGPT tokens held in memory.
    ChatgptAuthTokens,
}

/// Where credentials came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// The `AUTHBRIDGE_API_KEY` environment variable.
    EnvApiKey,
    /// An API key in the store (file or ephemeral).
    StoredApiKey,
    /// ChatGPT tokens in the store, refreshable with their refresh token.
    ManagedChatgpt,
    /// ChatGPT tokens pushed by the host (memory only).
    ExternalChatgpt,
    /// A provider bearer token from an external source (command).
    ExternalBearer,
}

/// The (mode, account id, plan) triple whose changes are reported (§3.7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountState {
    /// The active mode, or `None` without credentials.
    pub mode: Option<ApiAuthMode>,
    /// The ChatGPT account id.
    pub account_id: Option<String>,
    /// The raw plan type.
    pub plan_type: Option<String>,
}

/// Managed tokens' extra parts (from `auth.json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ManagedTokens {
    pub id_token: Secret,
    pub refresh_token: Secret,
    pub last_refresh: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Inner {
    source: CredentialSource,
    bearer: Secret,
    account_id: Option<String>,
    plan_type: Option<String>,
    email: Option<String>,
    exp: Option<i64>,
    managed: Option<ManagedTokens>,
}

/// Credentials for one request. Cloning is an `Arc` clone. `Debug` shows fingerprints only.
#[derive(Clone, Debug)]
pub struct Credentials(Arc<Inner>);

impl Credentials {
    pub(crate) fn api_key(key: Secret, source: CredentialSource) -> Self {
        Credentials(Arc::new(Inner {
            source,
            bearer: key,
            account_id: None,
            plan_type: None,
            email: None,
            exp: None,
            managed: None,
        }))
    }

    pub(crate) fn external_chatgpt(
        token: Secret,
        account_id: String,
        plan_type: Option<String>,
        email: Option<String>,
        exp: Option<i64>,
    ) -> Self {
        Credentials(Arc::new(Inner {
            source: CredentialSource::ExternalChatgpt,
            bearer: token,
            account_id: Some(account_id),
            plan_type,
            email,
            exp,
            managed: None,
        }))
    }

    /// Managed credentials; claims come from the id token, `exp` from the access token.
    pub(crate) fn managed(
        access_token: Secret,
        tokens: ManagedTokens,
        account_id: Option<String>,
    ) -> Self {
        let id = decode_jwt_claims(tokens.id_token.expose()).unwrap_or_default();
        let access = decode_jwt_claims(access_token.expose()).unwrap_or_default();
        Credentials(Arc::new(Inner {
            source: CredentialSource::ManagedChatgpt,
            account_id: account_id.or(id.account_id).or(access.account_id),
            plan_type: id.plan_type.or(access.plan_type),
            email: id.email.or(access.email),
            exp: access.exp,
            bearer: access_token,
            managed: Some(tokens),
        }))
    }

    /// The API auth mode (external ChatGPT kept distinct).
    pub fn mode(&self) -> ApiAuthMode {
        match self.0.source {
            CredentialSource::EnvApiKey
            | CredentialSource::StoredApiKey
            | CredentialSource::ExternalBearer => ApiAuthMode::ApiKey,
            CredentialSource::ManagedChatgpt => ApiAuthMode::Chatgpt,
            CredentialSource::ExternalChatgpt => ApiAuthMode::ChatgptAuthTokens,
        }
    }

    /// The mode as the backend sees it: `ChatgptAuthTokens` folds into `Chatgpt`.
    pub fn backend_mode(&self) -> ApiAuthMode {
        match self.mode() {
            ApiAuthMode::ChatgptAuthTokens => ApiAuthMode::Chatgpt,
            m => m,
        }
    }

    /// Where these credentials came from.
    pub fn source(&self) -> CredentialSource {
        self.0.source
    }

    /// The `Authorization: Bearer` value: API key, access token or provider token.
    pub fn bearer_token(&self) -> &Secret {
        &self.0.bearer
    }

    /// The ChatGPT account id.
    pub fn account_id(&self) -> Option<&str> {
        self.0.account_id.as_deref()
    }

    /// The raw plan type (callers map a missing or unknown one to `unknown`).
    pub fn plan_type(&self) -> Option<&str> {
        self.0.plan_type.as_deref()
    }

    /// The account email, from the token claims.
    pub fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// The access token's `exp` (seconds since the epoch), if it has one.
    pub fn expires_at(&self) -> Option<i64> {
        self.0.exp
    }

    /// True for managed or external ChatGPT credentials.
    pub fn is_chatgpt(&self) -> bool {
        self.backend_mode() == ApiAuthMode::Chatgpt
    }

    /// The (mode, account, plan) triple.
    pub fn account_state(&self) -> AccountState {
        AccountState {
            mode: Some(self.mode()),
            account_id: self.0.account_id.clone(),
            plan_type: self.0.plan_type.clone(),
        }
    }

    /// True when both hold the same tokens (same bearer, same refresh token).
    pub fn same_tokens(&self, other: &Credentials) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.bearer == other.0.bearer
                && self.0.source == other.0.source
                && self.0.managed.as_ref().map(|m| &m.refresh_token)
                    == other.0.managed.as_ref().map(|m| &m.refresh_token))
    }

    pub(crate) fn managed_tokens(&self) -> Option<&ManagedTokens> {
        self.0.managed.as_ref()
    }
}
