//! The advisory lock on `auth.json.lock` that serialises read-check-refresh-write
//! across authbridge processes (and threads: each holder opens its own descriptor).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::AuthError;
use crate::store::file::ensure_dir;

/// Held while the lock is held; dropping it unlocks.
#[derive(Debug)]
pub struct AuthFileLock {
    file: File,
}

impl AuthFileLock {
    /// Blocks until the exclusive lock on `<dir>/auth.json.lock` is ours.
    /// Call from a blocking context.
    pub fn acquire(dir: &Path) -> Result<Self, AuthError> {
        let (file, path) = open(dir)?;
        file.lock().map_err(|e| AuthError::io(&path, e))?;
        Ok(AuthFileLock { file })
    }

    /// Waits for the lock without blocking a thread (polling `try_lock` every 5 ms),
    /// giving up after `deadline` (a holder that hangs must not hang us).
    pub async fn acquire_async(dir: &Path, deadline: Duration) -> Result<Self, AuthError> {
        let (file, path) = open(dir)?;
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(AuthFileLock { file }),
                Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(TryLockError::WouldBlock) => {
                    let msg = format!(
                        "timed out after {}ms waiting for the lock",
                        deadline.as_millis()
                    );
                    return Err(AuthError::io(
                        &path,
                        std::io::Error::new(ErrorKind::TimedOut, msg),
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(AuthError::io(&path, e)),
            }
        }
    }
}

fn open(dir: &Path) -> Result<(File, PathBuf), AuthError> {
    ensure_dir(dir)?;
    let path = lock_path(dir);
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    no_follow(&mut options);
    let file = options.open(&path).map_err(|e| AuthError::io(&path, e))?;
    Ok((file, path))
}

#[cfg(not(any(unix, windows)))]
compile_error!("auth.json.lock supports Unix and Windows only");

/// The lock file is never followed through a symlink (a dangling link must not create a
/// file outside the home): Unix `O_NOFOLLOW` (the open fails with `ELOOP`), mode 0600.
#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
}

/// Windows: `FILE_FLAG_OPEN_REPARSE_POINT` opens (and locks) a link itself, never its target.
#[cfg(windows)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
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
