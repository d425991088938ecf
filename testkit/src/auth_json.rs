//! `auth.json` in a temporary home: a managed ChatGPT login written before the server
//! starts (docs/protocol.md §4.2), and the file read back.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// A managed ChatGPT login as the server stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedAuth {
    pub id_token: String,
    pub access_token: String,
    pub refresh_token: String,
    pub account_id: String,
    /// RFC 3339.
    pub last_refresh: String,
}

impl ManagedAuth {
    /// A login of `org-1` with these tokens, last refreshed in 2099 (so never due by age).
    pub fn new(id_token: &str, access_token: &str, refresh_token: &str) -> Self {
        Self {
            id_token: id_token.to_owned(),
            access_token: access_token.to_owned(),
            refresh_token: refresh_token.to_owned(),
            account_id: "org-1".to_owned(),
            last_refresh: "2099-01-01T00:00:00Z".to_owned(),
        }
    }

    /// When it was last refreshed (RFC 3339).
    pub fn last_refresh(mut self, rfc3339: &str) -> Self {
        self.last_refresh = rfc3339.to_owned();
        self
    }

    /// The file's JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": null,
            "tokens": {"id_token": self.id_token, "access_token": self.access_token,
                       "refresh_token": self.refresh_token, "account_id": self.account_id},
            "last_refresh": self.last_refresh
        })
    }

    /// Writes `<dir>/auth.json`; its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        write(dir, &self.to_json())
    }
}

/// Writes `value` as `<dir>/auth.json`, readable by its owner only (as the server writes
/// it); its path.
///
/// # Panics
/// If the file cannot be written.
pub fn write(dir: &Path, value: &Value) -> PathBuf {
    let path = dir.join("auth.json");
    std::fs::write(&path, value.to_string())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod 600 {}: {e}", path.display()));
    }
    path
}

/// `<dir>/auth.json`, if it exists.
///
/// # Panics
/// If it exists and is not JSON.
pub fn read(dir: &Path) -> Option<Value> {
    let bytes = std::fs::read(dir.join("auth.json")).ok()?;
    Some(serde_json::from_slice(&bytes).expect("auth.json is JSON"))
}

/// Now as RFC 3339 UTC, seconds precision (a `last_refresh` of now), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = crate::jwt::now_unix();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm, public domain description).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
