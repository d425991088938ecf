//! Sources of tokens outside auth-core: the host's [`ExternalAuthRefresher`] of ChatGPT
//! tokens (for an [`AuthManager`](crate::AuthManager)) and a provider's [`BearerSource`]
//! (for a [`BearerManager`](crate::BearerManager)).

use std::time::Duration;

use crate::error::RefreshError;
use crate::secret::Secret;
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
    /// How long the manager waits for the answer (`external_refresh_timeout`). The
    /// manager owns this deadline: when it passes, it drops the call and fails the refresh
    /// with `auth refresh request timed out after <N>ms`. A refresher needs no deadline of
    /// its own; one that must name one for what it holds can derive it from this.
    pub timeout: Duration,
}

/// The host's refresh of the ChatGPT tokens it pushed (§3.5). The manager calls `refresh`
/// through its single flight (one call at a time, within the context's `timeout`) and
/// checks the answer like a login: ChatGPT metadata, a JWT, the forced workspace.
#[async_trait::async_trait]
pub trait ExternalAuthRefresher: Send + Sync + 'static {
    /// New tokens.
    async fn refresh(
        &self,
        ctx: ExternalAuthRefreshContext,
    ) -> Result<ExternalAuthTokens, RefreshError>;
}

/// A provider's bearer token from outside auth-core (the `[auth]` command, §5). The
/// [`BearerManager`](crate::BearerManager) asks `resolve` on every `auth()` and `refresh`
/// after a 401 (through its single flight). The manager adds no deadline of its own: an
/// implementation bounds each call itself (the command source by its `timeout_ms`) and says
/// so in its error.
#[async_trait::async_trait]
pub trait BearerSource: Send + Sync + 'static {
    /// The source's current token without forcing a new one; `None` means "use the token
    /// of the last refresh" (the default).
    async fn resolve(&self) -> Result<Option<Secret>, RefreshError> {
        Ok(None)
    }

    /// A new token.
    async fn refresh(&self) -> Result<Secret, RefreshError>;
}
