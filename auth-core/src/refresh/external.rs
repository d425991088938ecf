//! `ExternalAuthRefresher`: a source of tokens outside auth-core (the host, a command).

use crate::error::RefreshError;
use crate::tokens::ExternalAuthTokens;

/// Why a refresh is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshReason {
    /// The provider answered 401.
    Unauthorized,
    /// The token's `exp` is near (§3.6).
    ExpiringSoon,
}

/// What a refresher is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAuthRefreshContext {
    /// Why.
    pub reason: RefreshReason,
    /// The account id of the tokens being replaced, if any.
    pub previous_account_id: Option<String>,
}

/// What a refresher produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefresherKind {
    /// ChatGPT tokens with metadata (the host's refresh, §3.5).
    Chatgpt,
    /// A provider bearer token; a manager with one returns API-key-style credentials.
    Bearer,
}

/// A source of tokens outside auth-core. The manager calls `refresh` through its single
/// flight (one call at a time, with a deadline); `resolve` on every `auth()` of a bearer
/// manager, where `None` means "use the token from the last refresh".
#[async_trait::async_trait]
pub trait ExternalAuthRefresher: Send + Sync + 'static {
    /// What this refresher produces.
    fn kind(&self) -> RefresherKind;

    /// The source's current token without forcing a new one (default: nothing).
    async fn resolve(&self) -> Result<Option<ExternalAuthTokens>, RefreshError> {
        Ok(None)
    }

    /// New tokens.
    async fn refresh(
        &self,
        ctx: ExternalAuthRefreshContext,
    ) -> Result<ExternalAuthTokens, RefreshError>;
}
