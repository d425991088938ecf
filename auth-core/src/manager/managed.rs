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
    /// The guarded managed refresh, when the host asks for fresh tokens; a no-op for
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

/// Refreshed tokens that are in use but not yet in `auth.json`.
pub(crate) struct Unsaved {
    /// The whole file as it should be written.
    file: AuthFile,
    /// When the next attempt to write it may be made (ms since the epoch).
    next_try_ms: i64,
}

/// How often a failed write of refreshed tokens is tried again from `auth()`.
const SAVE_RETRY_MS: i64 = 1000;
/// How many accepted refresh tokens are remembered (one per refresh of this process).
const SPENT_KEPT: usize = 64;

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
        // A file still holding a refresh token we spent is older than the tokens in memory
        // (their write failed): those are the current ones, and the base of the next write.
        let (on_disk, current) = match self.unsaved_file() {
            Some(unsaved) if self.disk_is_stale(&Stored::Loaded(current.clone())) => {
                let c = unsaved.credentials();
                (Some(unsaved), c)
            }
            Some(_) => {
                // Someone else wrote auth.json since (a login, a logout): theirs wins.
                self.forget_unsaved();
                (on_disk, current)
            }
            None => (on_disk, current),
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
        if self.is_spent(&managed.refresh_token) {
            return Err(RefreshError::transient(
                "Failed to refresh token: this refresh token was already accepted by the token endpoint; it is never sent again",
            ));
        }
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
            // The endpoint rotated it: the old one must never be sent again, whatever
            // happens to the write below.
            if t != managed.refresh_token {
                self.mark_spent(managed.refresh_token.clone());
            }
            tokens.refresh_token = t.expose().to_owned();
        }
        if tokens.account_id.is_none() {
            tokens.account_id = snap.account_id().map(str::to_owned);
        }
        next.auth_mode = Some("chatgpt".into());
        next.tokens = Some(tokens);
        next.last_refresh = Some(Utc::now());
        if self.cfg.store == StoreMode::File {
            match file::write(&self.auth_path, &next) {
                Ok(()) => self.forget_unsaved(),
                // Disk full, read-only, no permission: the endpoint has already accepted
                // the old refresh token, so throwing these away would sign the user out.
                // Keep and use them; write them at the next chance (§4.2).
                Err(e) => self.keep_unsaved(next.clone(), &e),
            }
        }
        self.store_and_publish(next.credentials());
        tracing::debug!("managed ChatGPT tokens refreshed");
        Ok(())
    }

    /// True when refreshed tokens wait to be written and a retry is due.
    pub(crate) fn save_due(&self, now: i64) -> bool {
        if !self.has_unsaved.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        lock(&self.unsaved)
            .as_ref()
            .is_some_and(|u| now >= u.next_try_ms)
    }

    /// Tries once to write the tokens held in memory (under both locks). Another writer's
    /// newer file wins; a failure is kept for the next try.
    pub(crate) async fn save_unsaved(&self) {
        if let Some(u) = lock(&self.unsaved).as_mut() {
            u.next_try_ms = now_ms().saturating_add(SAVE_RETRY_MS);
        }
        let _guard = self.managed_lock.lock().await;
        let Some(unsaved) = self.unsaved_file() else {
            return;
        };
        let Ok(_file_lock) =
            AuthFileLock::acquire_async(&self.cfg.auth_dir, self.lock_wait()).await
        else {
            return;
        };
        let on_disk = match file::read(&self.auth_path) {
            Ok(f) => Stored::Loaded(f.as_ref().and_then(AuthFile::credentials)),
            Err(AuthError::CorruptAuthFile { reason, .. }) => Stored::Corrupt(reason),
            Err(e) => Stored::Unreadable(std::io::ErrorKind::Other, e.to_string()),
        };
        if !self.disk_is_stale(&on_disk) {
            tracing::info!(
                "auth.json changed while refreshed tokens waited to be saved; using the file"
            );
            self.forget_unsaved();
            if let Stored::Loaded(c) = on_disk {
                self.store_and_publish(c);
            }
            return;
        }
        match file::write(&self.auth_path, &unsaved) {
            Ok(()) => {
                tracing::info!(path = %self.auth_path.display(), "refreshed tokens held in memory are now saved");
                self.forget_unsaved();
                self.store_and_publish(unsaved.credentials());
            }
            Err(e) => self.keep_unsaved(unsaved, &e),
        }
    }

    /// Holds `file` in memory after its write failed with `e`, and tells the host.
    fn keep_unsaved(&self, file: AuthFile, e: &AuthError) {
        let message = format!(
            "{e}; the refreshed ChatGPT tokens are kept in memory and will be saved when the file can be written"
        );
        tracing::warn!(error = %message, "could not save refreshed tokens");
        *lock(&self.unsaved) = Some(Unsaved {
            file,
            next_try_ms: now_ms().saturating_add(SAVE_RETRY_MS),
        });
        self.has_unsaved
            .store(true, std::sync::atomic::Ordering::Release);
        self.storage_tx.send_if_modified(|cur| {
            let changed = cur.as_deref() != Some(message.as_str());
            *cur = Some(message);
            changed
        });
    }

    /// Drops any tokens waiting to be written (they were written, or replaced).
    pub(crate) fn forget_unsaved(&self) {
        let mut unsaved = lock(&self.unsaved);
        if unsaved.take().is_some() {
            self.has_unsaved
                .store(false, std::sync::atomic::Ordering::Release);
            drop(unsaved);
            self.storage_tx.send_replace(None);
        }
    }

    fn unsaved_file(&self) -> Option<AuthFile> {
        lock(&self.unsaved).as_ref().map(|u| u.file.clone())
    }

    /// True while tokens wait to be written and `stored` (what the file holds now) is older
    /// than them: its refresh token is one we spent, or the file cannot be read at all. A
    /// file with other tokens, or none, is another writer's (a login, a logout) and wins.
    pub(super) fn disk_is_stale(&self, stored: &Stored) -> bool {
        if !self.has_unsaved.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        match stored {
            Stored::Loaded(Some(c)) => c
                .managed_tokens()
                .is_some_and(|m| self.is_spent(&m.refresh_token)),
            Stored::Loaded(None) => false,
            Stored::Corrupt(_) | Stored::Unreadable(..) => true,
        }
    }

    fn is_spent(&self, refresh_token: &crate::secret::Secret) -> bool {
        lock(&self.spent).contains(refresh_token)
    }

    fn mark_spent(&self, refresh_token: crate::secret::Secret) {
        let mut spent = lock(&self.spent);
        if spent.len() >= SPENT_KEPT {
            spent.remove(0);
        }
        spent.push(refresh_token);
    }

    fn store_and_publish(&self, creds: Option<Credentials>) {
        let mut st = write_lock(&self.state);
        st.stored = Stored::Loaded(creds);
        st.stamp = file::stamp(&self.auth_path);
        self.commit(st);
    }
}
