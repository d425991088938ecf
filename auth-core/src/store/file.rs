//! `auth.json`: the Codex layout, tolerant reads and atomic owner-only writes.
//!
//! Unix: the file is 0600 from the moment it exists, in a 0700 directory, and a file found
//! wider than 0600 is tightened when read. Windows: no explicit ACL is set; the file and
//! its directory inherit the ACL of the folder they are in (under `%USERPROFILE%`: the user,
//! SYSTEM and Administrators), which docs/platforms.md states as the promise there.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::credentials::{CredentialSource, Credentials, ManagedTokens};
use crate::error::AuthError;
use crate::secret::Secret;

/// The file's JSON. Unknown members are kept so a rewrite does not drop Codex's fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AuthFile {
    /// `apikey` or `chatgpt`; older files omit it.
    #[serde(default)]
    pub auth_mode: Option<String>,
    /// The API key.
    #[serde(rename = "OPENAI_API_KEY", default)]
    pub openai_api_key: Option<String>,
    /// Managed ChatGPT tokens.
    #[serde(default)]
    pub tokens: Option<TokenData>,
    /// When the tokens were last refreshed.
    #[serde(default)]
    pub last_refresh: Option<DateTime<Utc>>,
    /// Members we do not know.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `tokens` in `auth.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenData {
    /// The id token (a JWT).
    pub id_token: String,
    /// The access token (a JWT).
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// The account id.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Members we do not know.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AuthFile {
    /// The API-key layout of §3.1.
    pub fn api_key(key: &Secret) -> Self {
        AuthFile {
            auth_mode: Some("apikey".into()),
            openai_api_key: Some(key.expose().to_owned()),
            ..AuthFile::default()
        }
    }

    /// The credentials this file holds, if any.
    pub fn credentials(&self) -> Option<Credentials> {
        let key = || {
            self.openai_api_key
                .as_ref()
                .filter(|k| !k.is_empty())
                .map(|k| {
                    Credentials::api_key(Secret::new(k.clone()), CredentialSource::StoredApiKey)
                })
        };
        let tokens = || {
            self.tokens.as_ref().map(|t| {
                Credentials::managed(
                    Secret::new(t.access_token.clone()),
                    ManagedTokens {
                        id_token: Secret::new(t.id_token.clone()),
                        refresh_token: Secret::new(t.refresh_token.clone()),
                        last_refresh: self.last_refresh,
                    },
                    t.account_id.clone(),
                )
            })
        };
        match self.auth_mode.as_deref() {
            Some("apikey") => key(),
            Some("chatgpt") => tokens(),
            _ => tokens().or_else(key),
        }
    }
}

/// `<dir>/auth.json`.
pub fn auth_path(dir: &Path) -> PathBuf {
    dir.join("auth.json")
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn ensure_dir(dir: &Path) -> Result<(), AuthError> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) => Err(AuthError::io(dir, e)),
    }
}

/// What identifies one version of the file cheaply (for change detection by `stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    /// The inode on Unix (a rename over the file changes it); 0 on Windows, where the
    /// length and modification time have to do.
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// `stat` of the file: `None` when it does not exist.
pub fn stamp(path: &Path) -> Option<FileStamp> {
    let m = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    let mtime_ns = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Some(FileStamp {
        ino,
        len: m.len(),
        mtime_ns,
    })
}

/// Unix: a file that others may read (mode wider than 0600) is set to 0600, with a warning
/// (docs/protocol.md §4.1). A symlinked file's target is what gets tightened. Windows:
/// nothing to do (see the module docs).
fn tighten_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(m) = fs::metadata(path) else {
            return;
        };
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return;
        }
        match fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                was = %format!("{mode:03o}"),
                "auth.json was readable by others; its mode is now 0600"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                was = %format!("{mode:03o}"),
                error = %e,
                "auth.json is readable by others and could not be tightened to 0600"
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Reads and parses the file: `Ok(None)` when absent. A file that does not parse is read
/// again twice, 50 ms apart (a writer rewriting it in place), before it is called corrupt.
pub fn read(path: &Path) -> Result<Option<AuthFile>, AuthError> {
    let mut last_reason = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        let bytes = match fs::read(path) {
            Ok(b) => {
                if attempt == 0 {
                    tighten_permissions(path);
                }
                b
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuthError::io(path, e)),
        };
        match serde_json::from_slice::<AuthFile>(&bytes) {
            Ok(file) => return Ok(Some(file)),
            // The category and position only: serde's message may quote the content.
            Err(e) => {
                last_reason = format!(
                    "{} error at line {} column {}",
                    match e.classify() {
                        serde_json::error::Category::Io => "I/O",
                        serde_json::error::Category::Syntax => "syntax",
                        serde_json::error::Category::Data => "data",
                        serde_json::error::Category::Eof => "unexpected end of file",
                    },
                    e.line(),
                    e.column()
                )
            }
        }
    }
    tracing::warn!(path = %path.display(), reason = %last_reason, "auth.json is corrupt");
    Err(AuthError::CorruptAuthFile {
        path: path.to_path_buf(),
        reason: last_reason,
    })
}

/// Replaces the file atomically: a 0600 temporary file in the same directory, fsync,
/// rename over the old one, fsync of the directory (Unix; Windows cannot open a directory
/// as a file, and its rename is `MoveFileEx` with replace). The directory is created 0700.
/// A symlink at `path` is replaced by a regular file, after a warning; its target is left.
pub fn write(path: &Path, file: &AuthFile) -> Result<(), AuthError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        tracing::warn!(
            path = %path.display(),
            "auth.json is a symlink; it is replaced by a regular file (the link's target is not written)"
        );
    }
    let json = serde_json::to_vec_pretty(file)
        .map_err(|e| AuthError::io(path, std::io::Error::other(e.to_string())))?;
    let tmp = dir.join(format!(
        ".auth.json.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(AuthError::io(path, e));
    }
    remove_stale_temp_files(dir);
    Ok(())
}

/// fsync of the directory, so the rename survives a crash (Unix).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Windows has no directory fsync through std; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Temporary files older than this were left by a writer that died before its rename.
const STALE_TEMP: Duration = Duration::from_secs(60);

/// Deletes temporary files that writers killed mid-write left behind (best effort).
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(".auth.json.tmp-")
        {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Deletes the file; absent is fine.
pub fn delete(path: &Path) -> Result<(), AuthError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AuthError::io(path, e)),
    }
}

/// Renames a corrupt file to `auth.json.corrupt-<unix time>` so nothing is lost.
pub fn move_aside(path: &Path) -> Result<PathBuf, AuthError> {
    let name = format!(
        "{}.corrupt-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("auth.json"),
        Utc::now().timestamp()
    );
    let dest = path.with_file_name(name);
    fs::rename(path, &dest).map_err(|e| AuthError::io(path, e))?;
    tracing::warn!(from = %path.display(), to = %dest.display(), "moved corrupt auth.json aside");
    Ok(dest)
}
