//! `BearerManager`: one provider's bearer token from a [`BearerSource`] (its `[auth]`
//! command, §5), and the single flight of the source's re-runs after a 401.
//!
//! It shares nothing with the account's [`AuthManager`](super::AuthManager): its
//! credentials are always API-key-style (`CredentialSource::ExternalBearer`), and its only
//! recovery is to ask the source again.

use std::sync::{Arc, RwLock};

use crate::credentials::{CredentialSource, Credentials};
use crate::error::RefreshError;
use crate::manager::recovery::UnauthorizedRecovery;
use crate::manager::{read_lock, write_lock};
use crate::refresh::external::BearerSource;
use crate::secret::Secret;
use crate::single_flight::{Cause, Joined, SingleFlight};
use crate::tokens::check_header_value;

/// The credential manager of a provider whose token comes from a bearer source.
pub struct BearerManager {
    source: Arc<dyn BearerSource>,
    /// The token of the last run, once it is known to be usable in a header.
    token: Arc<RwLock<Option<Credentials>>>,
    flight: SingleFlight,
}

impl BearerManager {
    /// A manager for `source`. Every run, first or after a 401, is bounded by the source's
    /// own deadline (the command's `timeout_ms`) and by nothing else, so its timeout
    /// message is the source's.
    pub fn new(source: Arc<dyn BearerSource>) -> Arc<BearerManager> {
        Arc::new(BearerManager {
            source,
            token: Arc::new(RwLock::new(None)),
            flight: SingleFlight::default(),
        })
    }

    /// The credentials for a provider request: the source's current token, else the one of
    /// the last run, else a first run.
    ///
    /// A token the provider refused while its re-run is still going is not handed out: the
    /// call waits for the re-run and returns its token, or its error.
    pub async fn auth(&self) -> Result<Credentials, RefreshError> {
        let current = match self.source.resolve().await? {
            Some(token) => Some(remember(&self.token, token)?),
            None => read_lock(&self.token).clone(),
        };
        if let Some(c) = current {
            let Some(flight) = self.flight.rejected(c.bearer_token()) else {
                return Ok(c);
            };
            flight.wait().await?;
            return read_lock(&self.token)
                .clone()
                .ok_or_else(|| RefreshError::transient("the bearer source produced no token"));
        }
        self.refresh(None).await?;
        read_lock(&self.token)
            .clone()
            .ok_or_else(|| RefreshError::transient("the bearer source produced no token"))
    }

    /// The token of the last run: never runs the source, never waits on it.
    pub fn snapshot(&self) -> Option<Credentials> {
        read_lock(&self.token).clone()
    }

    /// The 401 recovery for `rejected` (§4.3): one re-run of the source.
    pub fn unauthorized_recovery(self: &Arc<Self>, rejected: &Credentials) -> UnauthorizedRecovery {
        UnauthorizedRecovery::bearer(self.clone(), rejected.clone())
    }

    /// Re-runs the source once for `rejected` (single flight); `Ok(changed)`. Returns at
    /// once (changed) when the token was already replaced.
    pub(super) async fn refresh(
        &self,
        rejected: Option<&Credentials>,
    ) -> Result<bool, RefreshError> {
        let key = rejected.map_or_else(|| Secret::new(""), |c| c.bearer_token().clone());
        loop {
            let stale = match (&*read_lock(&self.token), rejected) {
                (Some(c), Some(r)) => !c.same_tokens(r),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if stale {
                return Ok(true);
            }
            let cause = match rejected {
                Some(_) => Cause::Rejected,
                None => Cause::Other,
            };
            let joined = self.flight.join_or_start(&key, cause, || {
                let (source, slot) = (self.source.clone(), self.token.clone());
                async move {
                    let token = source.refresh().await?;
                    remember(&slot, token)?;
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

/// Keeps a source's token, once it is known to be usable in a header: a token with a CR or
/// LF would fail every request without a 401, so it is refused here (and not kept).
fn remember(
    slot: &RwLock<Option<Credentials>>,
    token: Secret,
) -> Result<Credentials, RefreshError> {
    check_header_value(token.expose()).map_err(|why| {
        RefreshError::transient(format!(
            "the provider auth command produced an unusable token: {why}"
        ))
    })?;
    let mut slot = write_lock(slot);
    if let Some(c) = slot.as_ref() {
        if *c.bearer_token() == token {
            return Ok(c.clone());
        }
    }
    let c = Credentials::api_key(token, CredentialSource::ExternalBearer);
    *slot = Some(c.clone());
    Ok(c)
}
