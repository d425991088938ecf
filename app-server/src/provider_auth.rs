//! Which credentials the active provider gets (docs/protocol.md §5), and the 401 recovery loop
//! around one provider call (§4.3).

use std::future::Future;
use std::sync::Arc;

use authbridge_auth_core::{AuthManager, BearerManager, Credentials, Secret, UnauthorizedRecovery};

use crate::config::ProviderConfig;
use crate::provider::{ProviderAuth, ProviderError};

/// Where the active provider's credentials come from.
pub enum ProviderAuthSource {
    /// `requires_openai_auth = true`: the account's credentials.
    Account(Arc<AuthManager>),
    /// An API key from this environment variable.
    EnvKey(String),
    /// A bearer token from the provider's `[auth]` command.
    Command(Arc<BearerManager>),
    /// No credentials: no `Authorization` header.
    None,
}

/// Credentials ready for one provider request.
pub enum Resolved {
    Managed(Credentials),
    Key(Secret),
    Anonymous,
}

impl Resolved {
    pub fn header(&self) -> Option<ProviderAuth<'_>> {
        match self {
            Resolved::Managed(c) => Some(ProviderAuth {
                bearer: c.bearer_token().expose(),
                account_id: if c.is_chatgpt() { c.account_id() } else { None },
            }),
            Resolved::Key(k) => Some(ProviderAuth {
                bearer: k.expose(),
                account_id: None,
            }),
            Resolved::Anonymous => None,
        }
    }

    /// The base URL: `chatgpt_base_url` for ChatGPT credentials when set, else `base_url`.
    pub fn base_url<'a>(&self, provider: &'a ProviderConfig) -> &'a str {
        match self {
            Resolved::Managed(c) if c.is_chatgpt() => provider
                .chatgpt_base_url
                .as_deref()
                .unwrap_or(&provider.base_url),
            _ => &provider.base_url,
        }
    }
}

/// Why a provider request could not be made or did not succeed. `handlers::call_error`
/// turns it into the request's JSON-RPC error.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError {
    /// Credentials are required and absent: the account has none (`env_var: None`), or
    /// the provider's `env_key` variable is unset or blank.
    AuthRequired { env_var: Option<String> },
    /// Anything else; the message says what happened.
    Failed {
        message: String,
        http_status: Option<u16>,
    },
}

impl CallError {
    fn failed(message: impl Into<String>) -> Self {
        CallError::Failed {
            message: message.into(),
            http_status: None,
        }
    }

    fn account_required() -> Self {
        CallError::AuthRequired { env_var: None }
    }
}

impl ProviderAuthSource {
    /// The 401 recovery of `rejected`, for the sources that have one.
    fn recovery(&self, rejected: &Credentials) -> Option<UnauthorizedRecovery> {
        match self {
            ProviderAuthSource::Account(m) => Some(m.unauthorized_recovery(rejected)),
            ProviderAuthSource::Command(m) => Some(m.unauthorized_recovery(rejected)),
            ProviderAuthSource::EnvKey(_) | ProviderAuthSource::None => None,
        }
    }

    /// Answers at once whether a request can go ahead at all (`AuthRequired` when not),
    /// without running commands or refreshes.
    pub fn precheck(&self) -> Result<(), CallError> {
        match self {
            ProviderAuthSource::Account(m) => match m.snapshot() {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(CallError::account_required()),
                Err(e) => Err(CallError::Failed {
                    message: e.to_string(),
                    http_status: None,
                }),
            },
            ProviderAuthSource::EnvKey(name) => env_key(name).map(|_| ()),
            ProviderAuthSource::Command(_) | ProviderAuthSource::None => Ok(()),
        }
    }

    /// The credentials for the next request (proactive refreshes and commands run here).
    pub async fn resolve(&self) -> Result<Resolved, CallError> {
        match self {
            ProviderAuthSource::Account(m) => match m.auth().await {
                Ok(Some(c)) => Ok(Resolved::Managed(c)),
                Ok(None) => Err(CallError::account_required()),
                Err(e) => Err(CallError::failed(e.to_string())),
            },
            ProviderAuthSource::Command(m) => match m.auth().await {
                Ok(c) => Ok(Resolved::Managed(c)),
                Err(e) => Err(CallError::failed(e.to_string())),
            },
            ProviderAuthSource::EnvKey(name) => env_key(name).map(Resolved::Key),
            ProviderAuthSource::None => Ok(Resolved::Anonymous),
        }
    }

    /// Runs `call` with the provider's credentials; on a 401 runs the recovery sequence
    /// once (§4.3) and retries; a 401 after it, or a failed recovery, is the error.
    pub async fn call<T, F, Fut>(&self, provider: &ProviderConfig, call: F) -> Result<T, CallError>
    where
        F: Fn(String, Option<ProviderAuthOwned>) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut creds = self.resolve().await?;
        let mut recovery = None;
        loop {
            let url = creds.base_url(provider).to_string();
            let header = creds.header().map(ProviderAuthOwned::from);
            let message = match call(url, header).await {
                Ok(value) => return Ok(value),
                Err(ProviderError::Unauthorized { message }) => message,
                Err(e) => {
                    return Err(CallError::Failed {
                        http_status: e.http_status(),
                        message: e.to_string(),
                    })
                }
            };
            let unauthorized = CallError::Failed {
                message,
                http_status: Some(401),
            };
            let Resolved::Managed(rejected) = &creds else {
                return Err(unauthorized);
            };
            if recovery.is_none() {
                recovery = self.recovery(rejected);
            }
            let Some(recovery) = recovery.as_mut() else {
                return Err(unauthorized);
            };
            let mut changed = false;
            while !changed && recovery.has_next() {
                changed = recovery
                    .next()
                    .await
                    .map_err(|e| CallError::failed(e.to_string()))?
                    .changed;
            }
            if !changed {
                return Err(unauthorized);
            }
            creds = self.resolve().await?;
        }
    }
}

/// An owned copy of the authorization for one call (the closure outlives the borrow).
pub struct ProviderAuthOwned {
    pub bearer: String,
    pub account_id: Option<String>,
}

impl From<ProviderAuth<'_>> for ProviderAuthOwned {
    fn from(a: ProviderAuth<'_>) -> Self {
        ProviderAuthOwned {
            bearer: a.bearer.to_string(),
            account_id: a.account_id.map(str::to_string),
        }
    }
}

impl ProviderAuthOwned {
    pub fn borrow(&self) -> ProviderAuth<'_> {
        ProviderAuth {
            bearer: &self.bearer,
            account_id: self.account_id.as_deref(),
        }
    }
}

fn env_key(name: &str) -> Result<Secret, CallError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim().to_string())),
        _ => Err(CallError::AuthRequired {
            env_var: Some(name.to_owned()),
        }),
    }
}
