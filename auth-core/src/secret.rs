//! `Secret`: a string whose `Debug`/`Display` print a fingerprint, never the value.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// A credential string (API key, access/refresh/id token). Cheap to clone.
///
/// `Debug` and `Display` print `Secret(sha256:ab12cd34)`: the first four bytes of the
/// SHA-256 of the value, enough to tell two secrets apart in a log, never the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Arc::from(s.into()))
    }

    /// The value itself, for the one place that must send it (an HTTP header, the file).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sha256:` and the first 8 hex digits of the SHA-256 of the value.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut out = String::from("sha256:");
        for b in &digest[..4] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Token-shaped words redacted, then cut to `max_chars` characters: the rule of
/// [`crate::redact`] without exact secrets. Kept for callers of the old name.
pub fn redact_secrets(text: &str, max_chars: usize) -> String {
    crate::redact::redact_to_chars(text, &[], max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_show_a_fingerprint_not_the_value() {
        let s = Secret::new("sk-canary-value");
        let shown = format!("{s:?} {s} {:?}", Some(s.clone()));
        assert!(!shown.contains("canary"), "{shown}");
        assert_eq!(format!("{s}"), format!("Secret({})", s.fingerprint()));
        assert_eq!(s.fingerprint().len(), "sha256:".len() + 8);
    }

    #[test]
    fn redaction_replaces_jwts_and_keys_and_cuts_to_length() {
        let msg = "bad token eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.c2ln and key sk-abcdef123 here";
        assert_eq!(
            redact_secrets(msg, 200),
            "bad token [redacted] and key [redacted] here"
        );
        assert_eq!(redact_secrets("abcdef", 3), "abc");
    }
}
