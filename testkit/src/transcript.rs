//! A readable transcript of a host session: `→` for what the host sent, `←` for what it
//! received, with every token shown as a fingerprint (`<jwt:ab12cd>`, `<key:ab12cd>`).

use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Short stable fingerprint of a secret: the first 6 hex digits of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

/// True for something shaped like a JWT (three non-empty dot-separated base64url segments,
/// the first one a JSON object: `eyJ…`).
pub fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Replaces a token by its fingerprint; other strings are returned unchanged.
pub fn mask_str(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("Bearer ") {
        return format!("Bearer {}", mask_str(rest));
    }
    if looks_like_jwt(s) {
        return format!("<jwt:{}>", fingerprint(s));
    }
    if s.starts_with("sk-") {
        return format!("<key:{}>", fingerprint(s));
    }
    if s.starts_with("rt_") {
        return format!("<rt:{}>", fingerprint(s));
    }
    s.to_owned()
}

/// A copy of a JSON value with every token-shaped string masked.
pub fn mask(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(mask_str(s)),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), mask(v))).collect())
        }
        other => other.clone(),
    }
}

/// Direction of a transcript line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Host → server.
    Sent,
    /// Server → host.
    Received,
}

/// The lines of a session, with a clock starting when it was created.
#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    lines: Mutex<Vec<String>>,
    echo: bool,
}

impl Transcript {
    /// A new transcript; with `echo`, each line is also written to stderr as it happens.
    pub fn new(echo: bool) -> Self {
        Self {
            start: Instant::now(),
            lines: Mutex::new(Vec::new()),
            echo,
        }
    }

    /// Records one message.
    pub fn record(&self, direction: Direction, message: &Value) {
        let arrow = match direction {
            Direction::Sent => "→",
            Direction::Received => "←",
        };
        self.note(&format!("{arrow} {}", mask(message)));
    }

    /// Records a free-form line (e.g. a note from the demo).
    pub fn note(&self, text: &str) {
        let line = format!("{:>8.3}s {text}", self.start.elapsed().as_secs_f64());
        if self.echo {
            eprintln!("{line}");
        }
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Every line so far, joined with newlines.
    pub fn text(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::Jwt;
    use serde_json::json;

    #[test]
    fn tokens_in_a_message_are_replaced_by_fingerprints() {
        let jwt = Jwt::new().account("org-1").mint();
        let masked = mask(
            &json!({"params": {"accessToken": jwt, "apiKey": "sk-secret", "n": 1, "t": "plain"}}),
        );
        let fp = fingerprint(&jwt);
        assert_eq!(
            masked,
            json!({"params": {"accessToken": format!("<jwt:{fp}>"), "apiKey": format!("<key:{}>", fingerprint("sk-secret")), "n": 1, "t": "plain"}})
        );
        assert_eq!(fp.len(), 6);
    }

    #[test]
    fn a_transcript_line_has_the_arrow_and_no_secret() {
        let t = Transcript::new(false);
        t.record(Direction::Sent, &json!({"apiKey": "sk-secret"}));
        t.record(Direction::Received, &json!({"id": 1}));
        let text = t.text();
        assert!(text.contains("→ {\"apiKey\":\"<key:"), "{text}");
        assert!(text.contains("← {\"id\":1}"), "{text}");
        assert!(!text.contains("sk-secret"), "{text}");
    }
}
