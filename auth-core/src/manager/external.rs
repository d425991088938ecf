//! External refreshes through the single flight: host ChatGPT tokens and bearer sources.

use std::sync::Arc;

use crate::credentials::{CredentialSource, Credentials};
use crate::error::{AuthError, RefreshError};
use crate::manager::login::validate_external;
use crate::manager::{read_lock, write_lock, AuthManager, Local, Shared};
use crate::refresh::external::{ExternalAuthRefreshContext, ExternalAuthRefresher, RefreshReason};
use crate::secret::Secret;
use crate::single_flight::Joined;
use crate::tokens::{check_header_value, ExternalAuthTokens};

fn timed_out(shared: &Shared) -> RefreshError {
    RefreshError::transient(format!(
        "auth refresh request timed out after {}ms",
        shared.cfg.external_refresh_timeout.as_millis()
    ))
}

fn no_refresher() -> RefreshError {
    RefreshError::transient("no external auth refresher is registered")
}

impl AuthManager {
    /// Refreshes host-pushed ChatGPT tokens that `rejected` holds; `Ok(changed)`.
    /// Joins a refresh in flight for the same token; returns at once (changed) when the
    /// tokens were already replaced, or as soon as a login/logout replaces them.
    pub(crate) async fn refresh_external(
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
            let refresher = self.chatgpt_refresher().ok_or_else(no_refresher)?;
            let joined = sh.chatgpt_flight.join_or_start(&key, || {
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

    /// `auth()` of a bearer manager: the source's current token, else the last refreshed
    /// one, else a first refresh.
    pub(crate) async fn bearer_auth(
        &self,
        r: Arc<dyn ExternalAuthRefresher>,
    ) -> Result<Credentials, AuthError> {
        if let Some(tokens) = r.resolve().await? {
            return Ok(remember_bearer(&self.local, &tokens)?);
        }
        if let Some(c) = read_lock(&self.local.bearer).clone() {
            return Ok(c);
        }
        self.refresh_bearer(None).await?;
        read_lock(&self.local.bearer)
            .clone()
            .ok_or_else(|| AuthError::Refresh(no_refresher()))
    }

    /// Re-runs the bearer source once for `rejected` (single flight); `Ok(changed)`.
    pub(crate) async fn refresh_bearer(
        &self,
        rejected: Option<&Credentials>,
    ) -> Result<bool, RefreshError> {
        let key = rejected.map_or_else(|| Secret::new(""), |c| c.bearer_token().clone());
        loop {
            let current = read_lock(&self.local.bearer).clone();
            let stale = match (&current, rejected) {
                (Some(c), Some(r)) => !c.same_tokens(r),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if stale {
                return Ok(true);
            }
            let refresher = self.bearer_refresher().ok_or_else(no_refresher)?;
            let joined = self.local.bearer_flight.join_or_start(&key, || {
                let local = self.local.clone();
                let timeout = self.shared.cfg.external_refresh_timeout;
                let err = timed_out(&self.shared);
                async move {
                    let ctx = ExternalAuthRefreshContext {
                        reason: RefreshReason::Unauthorized,
                        previous_account_id: None,
                    };
                    let tokens = tokio::time::timeout(timeout, refresher.refresh(ctx))
                        .await
                        .map_err(|_| err)??;
                    remember_bearer(&local, &tokens)?;
                    Ok(())
                }
            });
            match joined {
                Joined::Same(f) => {
                    f.wait().await?;
                    return Ok(true);
                }
                Joined::Other(f) => {
                    let _ = f.wait().await;
                }
            }
        }
    }
}

/// Keeps a bearer source's token, once it is known to be usable in a header: a token with a
/// CR or LF would fail every request without a 401, so it is refused here (and not kept).
fn remember_bearer(
    local: &Local,
    tokens: &ExternalAuthTokens,
) -> Result<Credentials, RefreshError> {
    check_header_value(tokens.access_token().expose()).map_err(|why| {
        RefreshError::transient(format!(
            "the provider auth command produced an unusable token: {why}"
        ))
    })?;
    let mut slot = write_lock(&local.bearer);
    if let Some(c) = slot.as_ref() {
        if c.bearer_token() == tokens.access_token() {
            return Ok(c.clone());
        }
    }
    let c = Credentials::api_key(
        tokens.access_token().clone(),
        CredentialSource::ExternalBearer,
    );
    *slot = Some(c.clone());
    Ok(c)
}

impl Shared {
    /// True while `creds` are the active external tokens.
    pub(crate) fn external_is(&self, creds: &Credentials) -> bool {
        read_lock(&self.state)
            .external
            .as_ref()
            .is_some_and(|c| c.same_tokens(creds))
    }
}

/// The spawned body of one host refresh: ask, validate, apply if still current.
async fn run_chatgpt_refresh(
    sh: Arc<Shared>,
    refresher: Arc<dyn ExternalAuthRefresher>,
    rejected: Credentials,
    reason: RefreshReason,
) -> Result<(), RefreshError> {
    let ctx = ExternalAuthRefreshContext {
        reason,
        previous_account_id: rejected.account_id().map(str::to_owned),
    };
    let tokens = tokio::time::timeout(sh.cfg.external_refresh_timeout, refresher.refresh(ctx))
        .await
        .map_err(|_| timed_out(&sh))??;
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
