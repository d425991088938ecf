//! `UnauthorizedRecovery`: the 401 recovery state machine of §4.3, one per failing request.
//!
//! | credentials | mode | steps |
//! |---|---|---|
//! | managed ChatGPT | `Managed` | `Reload` → `RefreshToken` → `Done` |
//! | external ChatGPT (refresher set) | `External` | `ExternalRefresh` → `Done` |
//! | bearer manager | `External` | `ExternalRefresh` → `Done` |
//! | API key, or external without refresher | — | `Done` at once |

use std::sync::Arc;

use crate::credentials::{CredentialSource, Credentials};
use crate::error::RefreshError;
use crate::manager::AuthManager;
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
    /// Ask the external refresher.
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

/// The recovery of one request from one 401.
pub struct UnauthorizedRecovery {
    manager: Arc<AuthManager>,
    rejected: Credentials,
    mode: RecoveryMode,
    step: RecoveryStep,
    unavailable: UnavailableReason,
}

impl UnauthorizedRecovery {
    pub(crate) fn new(manager: Arc<AuthManager>, rejected: Credentials) -> Self {
        use UnavailableReason as U;
        let bearer = manager.bearer_refresher().is_some();
        let (mode, step, unavailable) = match rejected.source() {
            _ if bearer => (
                RecoveryMode::External,
                RecoveryStep::ExternalRefresh,
                U::Ready,
            ),
            CredentialSource::ExternalChatgpt if manager.chatgpt_refresher().is_some() => (
                RecoveryMode::External,
                RecoveryStep::ExternalRefresh,
                U::Ready,
            ),
            CredentialSource::ExternalChatgpt => (
                RecoveryMode::External,
                RecoveryStep::Done,
                U::NoExternalRefresher,
            ),
            CredentialSource::ManagedChatgpt => {
                (RecoveryMode::Managed, RecoveryStep::Reload, U::Ready)
            }
            _ => (RecoveryMode::Managed, RecoveryStep::Done, U::NotChatgptAuth),
        };
        UnauthorizedRecovery {
            manager,
            rejected,
            mode,
            step,
            unavailable,
        }
    }

    /// `Managed` or `External`.
    pub fn mode(&self) -> RecoveryMode {
        self.mode
    }

    /// The step `next()` will take.
    pub fn step(&self) -> RecoveryStep {
        self.step
    }

    /// True while a step is left.
    pub fn has_next(&self) -> bool {
        self.step != RecoveryStep::Done
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
        let step = self.step;
        self.unavailable = UnavailableReason::RecoveryExhausted;
        let changed = match step {
            RecoveryStep::Done => return Ok(RecoveryOutcome { changed: false }),
            RecoveryStep::Reload => {
                self.manager.shared().reload_if_changed();
                if self.current_differs() {
                    self.step = RecoveryStep::RefreshToken;
                    // The retry uses the reloaded credentials: if they get a 401 too,
                    // they are what the refresh step must replace.
                    if let Ok(Some(current)) = self.manager.snapshot() {
                        self.rejected = current;
                    }
                    return Ok(RecoveryOutcome { changed: true });
                }
                self.step = RecoveryStep::Done;
                self.refresh_token().await?
            }
            RecoveryStep::RefreshToken => {
                self.step = RecoveryStep::Done;
                self.refresh_token().await?
            }
            RecoveryStep::ExternalRefresh => {
                self.step = RecoveryStep::Done;
                if self.manager.bearer_refresher().is_some() {
                    self.manager.refresh_bearer(Some(&self.rejected)).await?
                } else {
                    self.manager
                        .refresh_external(&self.rejected, RefreshReason::Unauthorized)
                        .await?
                }
            }
        };
        Ok(RecoveryOutcome { changed })
    }

    async fn refresh_token(&self) -> Result<bool, RefreshError> {
        if self.current_differs() {
            return Ok(true);
        }
        self.manager
            .shared()
            .refresh_managed_from(&self.rejected)
            .await?;
        Ok(self.current_differs())
    }

    fn current_differs(&self) -> bool {
        match self.manager.snapshot() {
            Ok(Some(c)) => !c.same_tokens(&self.rejected),
            Ok(None) => true,
            Err(_) => true,
        }
    }
}
