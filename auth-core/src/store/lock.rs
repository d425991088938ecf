//! The advisory lock on `auth.json.lock` that serialises read-check-refresh-write
//! across authbridge processes (and threads: each holder opens its own descriptor).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::AuthError;
use crate::store::file::ensure_dir;

/// Held while the lock is held; dropping it unlocks.
#[derive(Debug)]
pub struct AuthFileLock {
    file: File,
}

impl AuthFileLock {
    /// Blocks until the exclusive lock on `<dir>/auth.json.lock` is ours.
    /// Call from a blocking context (`spawn_blocking`).
    pub fn acquire(dir: &Path) -> Result<Self, AuthError> {
        ensure_dir(dir)?;
        let path = lock_path(dir);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| AuthError::io(&path, e))?;
        file.lock().map_err(|e| AuthError::io(&path, e))?;
        Ok(AuthFileLock { file })
    }

    /// Async wrapper: waits for the lock on a blocking thread.
    pub async fn acquire_async(dir: &Path) -> Result<Self, AuthError> {
        let dir = dir.to_path_buf();
        let path = lock_path(&dir);
        tokio::task::spawn_blocking(move || AuthFileLock::acquire(&dir))
            .await
            .map_err(|e| AuthError::io(path, std::io::Error::other(e.to_string())))?
    }
}

impl Drop for AuthFileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// `<dir>/auth.json.lock`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("auth.json.lock")
}
