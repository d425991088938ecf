//! Managed ChatGPT refresh (§4.2): guarded by the in-process mutex and `auth.json.lock`,
//! adopting tokens another process wrote, recording permanent failures per snapshot.

use chrono::Utc;

use crate::credentials::{CredentialSource, Credentials};
use crate::error::{AuthError, RefreshError};
use crate::manager::{lock, now_ms, write_lock, AuthManager, Shared, Stored};
use crate::refresh::token_endpoint::OTHER_ACCOUNT;
use crate::store::file::{self, AuthFile};
use crate::store::lock::AuthFileLock;
use crate::store::StoreMode;

impl AuthManager {
    /// The guarded managed refresh (`account/read {refreshToken:true}`); a no-op for
    /// external tokens and API keys.
    pub async fn refresh_managed(&self) -> Result<(), RefreshError> {
        match self.shared.current(now_ms()) {
            Ok(Some(c)) if c.source() == CredentialSource::ManagedChatgpt => {
                self.shared.refresh_managed_from(&c).await
            }
            _ => Ok(()),
        }
    }
}

fn store_error(e: AuthError) -> RefreshError {
    RefreshError::transient(format!("Failed to refresh token: storage: {e}"))
}

impl Shared {
    /// Refreshes `snap` unless another task or process already did (then adopts theirs).
    pub(crate) async fn refresh_managed_from(
        &self,
        snap: &Credentials,
    ) -> Result<(), RefreshError> {
        if let Some(e) = self.permanent_for(snap) {
            return Err(e);
        }
        let _guard = self.managed_lock.lock().await;
        let _file_lock = match self.cfg.store {
            StoreMode::File => Some(
                AuthFileLock::acquire_async(&self.cfg.auth_dir, self.lock_wait())
                    .await
                    .map_err(store_error)?,
            ),
            StoreMode::Ephemeral => None,
        };
        if let Some(e) = self.permanent_for(snap) {
            return Err(e);
        }
        // Under the lock: what is stored now?
        let (on_disk, current) = match self.cfg.store {
            StoreMode::File => {
                let f = file::read(&self.auth_path).map_err(store_error)?;
                let c = f.as_ref().and_then(AuthFile::credentials);
                (f, c)
            }
            StoreMode::Ephemeral => {
                let st = crate::manager::read_lock(&self.state);
                (None, super::state::stored_creds(&st.stored))
            }
        };
        match &current {
            Some(c) if c.same_tokens(snap) => {}
            Some(c)
                if c.source() == CredentialSource::ManagedChatgpt
                    && c.account_id() == snap.account_id() =>
            {
                tracing::debug!("auth.json was refreshed elsewhere; adopting its tokens");
                self.store_and_publish(Some(c.clone()));
                return Ok(());
            }
            _ => {
                let err = RefreshError::permanent(OTHER_ACCOUNT);
                *lock(&self.permanent) = Some((snap.clone(), err.clone()));
                self.store_and_publish(current);
                return Err(err);
            }
        }
        let managed = snap.managed_tokens().ok_or_else(|| {
            RefreshError::transient("Failed to refresh token: no refresh token: not managed")
        })?;
        tracing::trace!(refresh_token = ?managed.refresh_token, "calling the token endpoint");
        let fresh = match self.endpoint.refresh(&managed.refresh_token).await {
            Ok(t) => t,
            Err(e) => {
                if e.is_permanent() {
                    *lock(&self.permanent) = Some((snap.clone(), e.clone()));
                }
                return Err(e);
            }
        };
        let mut next = on_disk.unwrap_or_default();
        let mut tokens = next.tokens.take().unwrap_or_default();
        if let Some(m) = snap.managed_tokens() {
            tokens.id_token = m.id_token.expose().to_owned();
            tokens.refresh_token = m.refresh_token.expose().to_owned();
        }
        tokens.access_token = snap.bearer_token().expose().to_owned();
        if let Some(t) = fresh.id_token {
            tokens.id_token = t.expose().to_owned();
        }
        if let Some(t) = fresh.access_token {
            tokens.access_token = t.expose().to_owned();
        }
        if let Some(t) = fresh.refresh_token {
            tokens.refresh_token = t.expose().to_owned();
        }
        if tokens.account_id.is_none() {
            tokens.account_id = snap.account_id().map(str::to_owned);
        }
        next.auth_mode = Some("chatgpt".into());
        next.tokens = Some(tokens);
        next.last_refresh = Some(Utc::now());
        if self.cfg.store == StoreMode::File {
            file::write(&self.auth_path, &next).map_err(store_error)?;
        }
        self.store_and_publish(next.credentials());
        tracing::debug!("managed ChatGPT tokens refreshed");
        Ok(())
    }

    fn store_and_publish(&self, creds: Option<Credentials>) {
        let mut st = write_lock(&self.state);
        st.stored = Stored::Loaded(creds);
        st.stamp = file::stamp(&self.auth_path);
        self.commit(st);
    }
}
