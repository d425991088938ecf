//! Typed errors: `AuthError` (credentials unusable) and `RefreshError` (a refresh failed).
//!
//! Display texts say what happened, in the documented words where the app-server passes
//! them on as they are; none names a method or an error code (the app-server maps the
//! variants to those), and none ever contains a token.

use std::path::PathBuf;

/// Why credentials could not be read, stored or accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The access token of host-pushed ChatGPT tokens is not a JWT (§3.1).
    #[error("invalid access token: {0}")]
    InvalidAccessToken(String),
    /// A credential value or account id that cannot be sent as an HTTP header value
    /// (§3.1). `field` names the login field (`apiKey`, `accessToken`, `chatgptAccountId`).
    #[error("invalid {}: {why}", field_words(field))]
    InvalidCredential {
        /// The login field.
        field: &'static str,
        /// What is wrong with it.
        why: crate::tokens::HeaderUnsafe,
    },
    /// ChatGPT credentials were seeded from tokens without account metadata.
    #[error("external auth tokens are missing ChatGPT metadata")]
    MissingChatgptMetadata,
    /// `forced_chatgpt_workspace_id` is set and the login names another workspace.
    #[error("External auth must use workspace \"{forced}\", but received \"{received}\".")]
    WorkspaceMismatch {
        /// The configured workspace.
        forced: String,
        /// The account id the login carried.
        received: String,
    },
    /// An API-key or managed ChatGPT login while host-pushed ChatGPT tokens are active
    /// (§3.1): they stay until they are replaced by new host tokens or logged out.
    #[error(
        "external ChatGPT tokens are active; API-key and managed logins are refused while they are"
    )]
    ExternalAuthActive,
    /// The refresh of tokens the provider refused, which this call waited for, failed; the
    /// refused tokens are still the current ones.
    #[error("{0}")]
    Refresh(RefreshError),
    /// `auth.json` exists but cannot be understood (read three times, 50 ms apart).
    #[error("credential file {} is corrupt ({reason}); log in again to replace it", path.display())]
    CorruptAuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (a parse category and position, never content).
        reason: String,
    },
    /// Reading, writing, locking or deleting a credential file failed.
    #[error("cannot access credential file {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// How a login field is named in messages: the words docs/protocol.md already uses for the
/// key and the token (`invalid api key: …`, `invalid access token: …`), the field's own
/// name for the others.
fn field_words(field: &str) -> &str {
    match field {
        "apiKey" => "api key",
        "accessToken" => "access token",
        other => other,
    }
}

impl AuthError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuthError::Io {
            path: path.into(),
            source,
        }
    }
}

/// A failed refresh. `Display` is the message verbatim (a host may show it to the user).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// Retrying with the same credentials cannot help (revoked, reused, other account).
    #[error("{0}")]
    Permanent(String),
    /// Might work later (network, timeout, 5xx, host error).
    #[error("{0}")]
    Transient(String),
}

impl RefreshError {
    /// The one wording of a refresh that found no answer within its deadline.
    pub(crate) fn timed_out(after: std::time::Duration) -> Self {
        RefreshError::transient(format!(
            "auth refresh request timed out after {}ms",
            after.as_millis()
        ))
    }

    /// A transient failure with this message.
    pub fn transient(msg: impl Into<String>) -> Self {
        RefreshError::Transient(msg.into())
    }

    /// A permanent failure with this message.
    pub fn permanent(msg: impl Into<String>) -> Self {
        RefreshError::Permanent(msg.into())
    }

    /// True for `Permanent`.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RefreshError::Permanent(_))
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            RefreshError::Permanent(m) | RefreshError::Transient(m) => m,
        }
    }
}
