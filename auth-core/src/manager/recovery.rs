//! `UnauthorizedRecovery`: the 401 recovery state machine of §4.3, one per failing request.
//!
//! | manager | credentials | mode | steps |
//! |---|---|---|---|
//! | account | managed ChatGPT | `Managed` | `Reload` → `RefreshToken` → `Done` |
//! | account | external ChatGPT (refresher set) | `External` | `ExternalRefresh` → `Done` |
//! | account | API key, or external without refresher | — | `Done` at once |
//! | bearer | the source's token | `External` | `ExternalRefresh` → `Done` |

use std::sync::Arc;

use crate::credentials::{CredentialSource, Credentials};
use crate::error::RefreshError;
use crate::manager::{AuthManager, BearerManager};
use crate::refresh::external::RefreshReason;

/// Which recovery applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Managed `auth.json` tokens.
    Managed,
    /// External ChatGPT tokens or a bearer source.
    External,
}

/// The next step `next()` will take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryStep {
    /// Re-read `auth.json`.
    Reload,
    /// Call the token endpoint.
    RefreshToken,
    /// Ask the external refresher (the host) or the bearer source.
    ExternalRefresh,
    /// Nothing left.
    Done,
}

/// Why no step is available (or `Ready` when one is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnavailableReason {
    /// API key credentials: nothing to refresh.
    NotChatgptAuth,
    /// External tokens but no refresher registered.
    NoExternalRefresher,
    /// Every step has run.
    RecoveryExhausted,
    /// A step is available.
    Ready,
}

impl UnavailableReason {
    /// `not_chatgpt_auth`, `no_external_refresher`, `recovery_exhausted`, `ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnavailableReason::NotChatgptAuth => "not_chatgpt_auth",
            UnavailableReason::NoExternalRefresher => "no_external_refresher",
            UnavailableReason::RecoveryExhausted => "recovery_exhausted",
            UnavailableReason::Ready => "ready",
        }
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryOutcome {
    /// The credentials are now different from the rejected ones: retry.
    pub changed: bool,
}

/// Where the recovery stands: each step holds the manager it acts on, so a bearer
/// manager's recovery can only ever ask its source.
enum State {
    Reload(Arc<AuthManager>),
    RefreshToken(Arc<AuthManager>),
    HostRefresh(Arc<AuthManager>),
    BearerRefresh(Arc<BearerManager>),
    Done,
}

/// The recovery of one request from one 401.
pub struct UnauthorizedRecovery {
    state: State,
    rejected: Credentials,
    mode: RecoveryMode,
    unavailable: UnavailableReason,
}

impl UnauthorizedRecovery {
    /// The account's recovery: what it can do depends on where `rejected` came from.
    pub(super) fn account(manager: Arc<AuthManager>, rejected: Credentials) -> Self {
        use UnavailableReason as U;
        let (mode, state, unavailable) = match rejected.source() {
            CredentialSource::ExternalChatgpt if manager.refresher().is_some() => (
                RecoveryMode::External,
                State::HostRefresh(manager),
                U::Ready,
            ),
            CredentialSource::ExternalChatgpt => {
                (RecoveryMode::External, State::Done, U::NoExternalRefresher)
            }
            CredentialSource::ManagedChatgpt => {
                (RecoveryMode::Managed, State::Reload(manager), U::Ready)
            }
            _ => (RecoveryMode::Managed, State::Done, U::NotChatgptAuth),
        };
        UnauthorizedRecovery {
            state,
            rejected,
            mode,
            unavailable,
        }
    }

    /// A bearer manager's recovery: one re-run of its source.
    pub(super) fn bearer(manager: Arc<BearerManager>, rejected: Credentials) -> Self {
        UnauthorizedRecovery {
            state: State::BearerRefresh(manager),
            rejected,
            mode: RecoveryMode::External,
            unavailable: UnavailableReason::Ready,
        }
    }

    /// `Managed` or `External`.
    pub fn mode(&self) -> RecoveryMode {
        self.mode
    }

    /// The step `next()` will take.
    pub fn step(&self) -> RecoveryStep {
        match self.state {
            State::Reload(_) => RecoveryStep::Reload,
            State::RefreshToken(_) => RecoveryStep::RefreshToken,
            State::HostRefresh(_) | State::BearerRefresh(_) => RecoveryStep::ExternalRefresh,
            State::Done => RecoveryStep::Done,
        }
    }

    /// True while a step is left.
    pub fn has_next(&self) -> bool {
        !matches!(self.state, State::Done)
    }

    /// `Ready` while a step is left, else why not.
    pub fn unavailable_reason(&self) -> UnavailableReason {
        if self.has_next() {
            UnavailableReason::Ready
        } else {
            self.unavailable
        }
    }

    /// Runs the next step. `Ok(changed)`: retry the request with `auth()` when changed.
    /// A reload that finds nothing new goes straight on to the refresh.
    pub async fn next(&mut self) -> Result<RecoveryOutcome, RefreshError> {
        self.unavailable = UnavailableReason::RecoveryExhausted;
        // `Done` while the step runs: a caller that gives up has used it.
        let changed = match std::mem::replace(&mut self.state, State::Done) {
            State::Done => false,
            State::Reload(manager) => {
                manager.shared.reload_if_changed();
                if differs(&manager, &self.rejected) {
                    // The retry uses the reloaded credentials: if they get a 401 too,
                    // they are what the refresh step must replace.
                    if let Ok(Some(current)) = manager.snapshot() {
                        self.rejected = current;
                    }
                    self.state = State::RefreshToken(manager);
                    return Ok(RecoveryOutcome { changed: true });
                }
                refresh_token(&manager, &self.rejected).await?
            }
            State::RefreshToken(manager) => refresh_token(&manager, &self.rejected).await?,
            State::HostRefresh(manager) => {
                manager
                    .refresh_external(&self.rejected, RefreshReason::Unauthorized)
                    .await?
            }
            State::BearerRefresh(manager) => manager.refresh(Some(&self.rejected)).await?,
        };
        Ok(RecoveryOutcome { changed })
    }
}

/// The token-endpoint step: skipped (changed) when the credentials were replaced meanwhile.
async fn refresh_token(
    manager: &AuthManager,
    rejected: &Credentials,
) -> Result<bool, RefreshError> {
    if differs(manager, rejected) {
        return Ok(true);
    }
    manager.shared.refresh_managed_from(rejected).await?;
    Ok(differs(manager, rejected))
}

/// True when the account's current credentials are not the rejected ones.
fn differs(manager: &AuthManager, rejected: &Credentials) -> bool {
    match manager.snapshot() {
        Ok(Some(c)) => !c.same_tokens(rejected),
        Ok(None) | Err(_) => true,
    }
}
