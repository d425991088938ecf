//! The manager's shared state: precedence, change detection on `auth.json`, publishing.

use std::sync::atomic::Ordering;

use crate::credentials::{AccountState, Credentials};
use crate::error::{AuthError, RefreshError};
use crate::jwt::expires_within;
use crate::manager::{
    lock, read_lock, write_lock, Shared, State, Stored, MANAGED_AHEAD_MS, MANAGED_MAX_AGE_MS,
};
use crate::store::file::{self, FileStamp};
use crate::store::StoreMode;

impl Shared {
    /// The effective account credentials: external → env key → store.
    pub(super) fn current(&self, now: i64) -> Result<Option<Credentials>, AuthError> {
        {
            let st = read_lock(&self.state);
            if let Some(c) = st.external.as_ref().or(st.env.as_ref()) {
                return Ok(Some(c.clone()));
            }
            if self.cfg.store == StoreMode::Ephemeral
                || now < self.next_stat_ms.load(Ordering::Relaxed)
            {
                return stored_result(&st.stored, &self.auth_path);
            }
        }
        // One caller per second does the stat; the others keep the cached credentials.
        let due = self.next_stat_ms.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_stat_ms
                .compare_exchange(due, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.reload_if_changed();
        }
        stored_result(&read_lock(&self.state).stored, &self.auth_path)
    }

    /// Re-reads `auth.json` if its `stat` changed. Returns true if the credentials changed.
    pub(crate) fn reload_if_changed(&self) -> bool {
        if self.cfg.store != StoreMode::File {
            return false;
        }
        let now_stamp = file::stamp(&self.auth_path);
        if read_lock(&self.state).stamp == now_stamp {
            return false;
        }
        // Read outside the lock: readers never wait on file I/O.
        let Some((stored, stamp)) = read_file(&self.auth_path) else {
            return false;
        };
        if self.disk_is_stale(&stored) {
            // The file still holds tokens we replaced in memory (their write failed):
            // keep ours, never go back to a spent refresh token.
            write_lock(&self.state).stamp = stamp;
            return false;
        }
        self.forget_unsaved();
        let mut st = write_lock(&self.state);
        let before = stored_creds(&st.stored);
        st.stored = stored;
        st.stamp = stamp;
        let after = stored_creds(&st.stored);
        let changed = match (&before, &after) {
            (Some(a), Some(b)) => !a.same_tokens(b),
            (None, None) => false,
            _ => true,
        };
        self.commit(st);
        changed
    }

    /// Lets go of the state lock, then publishes the account triple and wakes refresh
    /// waiters. Publishing happens outside the state lock (a subscriber holding a borrow
    /// may call back into the manager) and under `publish_lock`, from a fresh read, so
    /// concurrent changes are published in order and the last one wins.
    pub(super) fn commit(&self, st: std::sync::RwLockWriteGuard<'_, State>) {
        drop(st);
        let _order = lock(&self.publish_lock);
        let now = base_state(&read_lock(&self.state));
        self.account_tx.send_if_modified(|cur| {
            if *cur != now {
                *cur = now;
                true
            } else {
                false
            }
        });
        self.generation_tx.send_modify(|g| *g += 1);
    }

    /// How long to wait for `auth.json.lock`: a holder keeps it at most for one endpoint
    /// call, so twice the endpoint deadline plus slack.
    pub(super) fn lock_wait(&self) -> std::time::Duration {
        self.cfg.token_timeout * 2 + std::time::Duration::from_secs(5)
    }

    pub(super) fn permanent_for(&self, creds: &Credentials) -> Option<RefreshError> {
        match &*lock(&self.permanent) {
            Some((c, e)) if c.same_tokens(creds) => Some(e.clone()),
            _ => None,
        }
    }

    pub(super) fn managed_due(&self, creds: &Credentials, now: i64) -> bool {
        // Exact arithmetic: an `exp` of -1e16 or i64::MIN must not wrap into "far away".
        let exp_soon = creds
            .expires_at()
            .is_some_and(|exp| expires_within(exp, now, MANAGED_AHEAD_MS));
        let old = creds
            .managed_tokens()
            .and_then(|m| m.last_refresh)
            .is_none_or(|t| now.saturating_sub(t.timestamp_millis()) > MANAGED_MAX_AGE_MS);
        if !(exp_soon || old) || self.permanent_for(creds).is_some() {
            return false;
        }
        !matches!(&*lock(&self.managed_backoff), Some((c, until)) if c.same_tokens(creds) && now < *until)
    }
}

pub(super) fn stored_creds(stored: &Stored) -> Option<Credentials> {
    match stored {
        Stored::Loaded(c) => c.clone(),
        Stored::Corrupt(_) | Stored::Unreadable(..) => None,
    }
}

pub(super) fn stored_result(
    stored: &Stored,
    path: &std::path::Path,
) -> Result<Option<Credentials>, AuthError> {
    match stored {
        Stored::Loaded(c) => Ok(c.clone()),
        Stored::Corrupt(reason) => Err(AuthError::CorruptAuthFile {
            path: path.to_path_buf(),
            reason: reason.clone(),
        }),
        Stored::Unreadable(kind, why) => {
            Err(AuthError::io(path, std::io::Error::new(*kind, why.clone())))
        }
    }
}

/// Reads `auth.json` into `st.stored` (an I/O error keeps what was there).
pub(super) fn load_file(path: &std::path::Path, st: &mut State) {
    if let Some((stored, stamp)) = read_file(path) {
        st.stored = stored;
        st.stamp = stamp;
    }
}

/// Reads `auth.json` without holding any lock. A file that exists but cannot be read is
/// `Unreadable`: reads then answer with the I/O error instead of reporting no account.
pub(super) fn read_file(path: &std::path::Path) -> Option<(Stored, Option<FileStamp>)> {
    let stamp = file::stamp(path);
    match file::read(path) {
        Ok(f) => Some((Stored::Loaded(f.and_then(|f| f.credentials())), stamp)),
        Err(AuthError::CorruptAuthFile { reason, .. }) => Some((Stored::Corrupt(reason), stamp)),
        Err(AuthError::Io { source, .. }) => {
            tracing::warn!(error = %source, "cannot read auth.json");
            Some((Stored::Unreadable(source.kind(), source.to_string()), stamp))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read auth.json");
            None
        }
    }
}

pub(super) fn base_state(st: &State) -> AccountState {
    st.external
        .as_ref()
        .or(st.env.as_ref())
        .cloned()
        .or_else(|| stored_creds(&st.stored))
        .map(|c| c.account_state())
        .unwrap_or_default()
}
