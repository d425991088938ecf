//! The host's refresh of external ChatGPT tokens (§3.5) through the single flight.

use std::sync::Arc;

use crate::credentials::Credentials;
use crate::error::{AuthError, RefreshError};
use crate::manager::login::validate_external;
use crate::manager::{read_lock, write_lock, AuthManager, Shared};
use crate::refresh::external::{ExternalAuthRefreshContext, ExternalAuthRefresher, RefreshReason};
use crate::single_flight::{Cause, Joined};

fn no_refresher() -> RefreshError {
    RefreshError::transient("no external auth refresher is registered")
}

impl AuthManager {
    /// Refreshes host-pushed ChatGPT tokens that `rejected` holds; `Ok(changed)`.
    /// Joins a refresh in flight for the same token; returns at once (changed) when the
    /// tokens were already replaced, or as soon as a login/logout replaces them.
    pub(super) async fn refresh_external(
        &self,
        rejected: &Credentials,
        reason: RefreshReason,
    ) -> Result<bool, RefreshError> {
        let sh = &self.shared;
        let key = rejected.bearer_token().clone();
        let mut generation = sh.generation_tx.subscribe();
        loop {
            if !sh.external_is(rejected) {
                return Ok(true);
            }
            let refresher = self.refresher().ok_or_else(no_refresher)?;
            let cause = match reason {
                RefreshReason::Unauthorized => Cause::Rejected,
                RefreshReason::ExpiringSoon => Cause::Other,
            };
            let joined = sh.chatgpt_flight.join_or_start(&key, cause, || {
                run_chatgpt_refresh(self.shared.clone(), refresher, rejected.clone(), reason)
            });
            let (flight, same) = match joined {
                Joined::Same(f) => (f, true),
                Joined::Other(f) => (f, false),
            };
            // Woken by every change; the state is read outside the channel's lock.
            let replaced = async {
                while sh.external_is(rejected) {
                    if generation.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                result = flight.wait() => {
                    if same {
                        result?;
                        return Ok(!sh.external_is(rejected));
                    }
                }
                _ = replaced => return Ok(true),
            }
        }
    }
}

impl Shared {
    /// True while `creds` are the active external tokens.
    pub(super) fn external_is(&self, creds: &Credentials) -> bool {
        read_lock(&self.state)
            .external
            .as_ref()
            .is_some_and(|c| c.same_tokens(creds))
    }
}

/// The spawned body of one host refresh: ask (within the one deadline), validate, apply if
/// still current.
async fn run_chatgpt_refresh(
    sh: Arc<Shared>,
    refresher: Arc<dyn ExternalAuthRefresher>,
    rejected: Credentials,
    reason: RefreshReason,
) -> Result<(), RefreshError> {
    let timeout = sh.cfg.external_refresh_timeout;
    let ctx = ExternalAuthRefreshContext {
        reason,
        previous_account_id: rejected.account_id().map(str::to_owned),
        timeout,
    };
    let tokens = tokio::time::timeout(timeout, refresher.refresh(ctx))
        .await
        .map_err(|_| RefreshError::timed_out(timeout))??;
    let creds = validate_external(&sh, &tokens).map_err(|e| match e {
        AuthError::MissingChatgptMetadata => RefreshError::transient(e.to_string()),
        AuthError::InvalidAccessToken(why) => {
            RefreshError::transient(format!("invalid auth refresh response: {why}"))
        }
        AuthError::InvalidCredential { field, why } => {
            RefreshError::transient(format!("invalid auth refresh response: {field}: {why}"))
        }
        AuthError::WorkspaceMismatch { forced, received } => RefreshError::transient(format!(
            "external auth refresh returned workspace \"{received}\", expected \"{forced}\""
        )),
        other => RefreshError::transient(format!("invalid auth refresh response: {other}")),
    })?;
    let mut st = write_lock(&sh.state);
    if st
        .external
        .as_ref()
        .is_some_and(|c| c.same_tokens(&rejected))
    {
        st.external = Some(creds);
        sh.commit(st);
        tracing::debug!(?reason, "external ChatGPT tokens refreshed");
    } else {
        tracing::debug!("external refresh result dropped: the tokens changed meanwhile");
    }
    Ok(())
}
