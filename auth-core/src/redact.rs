//! The one redaction rule for text that came from outside and may be shown to a person: a
//! provider's error body or SSE `error`/`response.failed` event, a token endpoint's error,
//! a host's refresh error.
//!
//! In this order, always:
//! 1. every exact occurrence of each secret the caller names (the bearer actually sent, the
//!    refresh token) becomes `[redacted]` — over the whole text, before anything is cut, so
//!    a cut can never leave part of a secret behind;
//! 2. every word shaped like a token becomes `[redacted]` (see [`looks_like_token`]);
//! 3. only then is the text cut ([`redact_to_chars`], [`redact_to_bytes`]).

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Steps 1 and 2: exact secrets, then token-shaped words. Nothing is cut.
///
/// Empty secrets are ignored; longer secrets are replaced first, so one secret that
/// contains another is replaced whole.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut exact: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    exact.sort_by_key(|s| std::cmp::Reverse(s.len()));
    exact.dedup();
    let mut replaced = std::borrow::Cow::Borrowed(text);
    for secret in exact {
        if replaced.contains(secret) {
            replaced = std::borrow::Cow::Owned(replaced.replace(secret, REDACTED));
        }
    }
    redact_shapes(&replaced)
}

/// [`redact`], then cut to at most `max_chars` characters.
pub fn redact_to_chars(text: &str, secrets: &[&str], max_chars: usize) -> String {
    let mut out = redact(text, secrets);
    if let Some((at, _)) = out.char_indices().nth(max_chars) {
        out.truncate(at);
    }
    out
}

/// [`redact`], then cut to at most `max_bytes` bytes (at a character boundary).
pub fn redact_to_bytes(text: &str, secrets: &[&str], max_bytes: usize) -> String {
    let mut out = redact(text, secrets);
    if out.len() > max_bytes {
        let mut at = max_bytes;
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        out.truncate(at);
    }
    out
}

/// True for a word (a run of `A-Z a-z 0-9 - _` and inner dots) that looks like a token:
/// - an API key: `sk-` and at least one more character;
/// - a JWT or a piece of one: a segment starting with `eyJ` (base64url of `{"`) and at
///   least 10 characters long — a header or payload cut off from the rest is caught too;
/// - three or more dot-separated segments, the first two at least 4 characters, one at
///   least 16, 24 characters in all (an opaque JWT-like token; host names and version
///   numbers do not qualify).
pub fn looks_like_token(word: &str) -> bool {
    let word = word.trim_matches('.');
    if word.len() > 3 && word.starts_with("sk-") {
        return true;
    }
    let segments: Vec<&str> = word.split('.').collect();
    if segments
        .iter()
        .any(|s| s.len() >= 10 && s.starts_with("eyJ"))
    {
        return true;
    }
    segments.len() >= 3
        && segments[..2].iter().all(|s| s.len() >= 4)
        && segments.iter().any(|s| s.len() >= 16)
        && word.len() >= 24
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Step 2 on its own. Leading and trailing dots of a word are kept (end of a sentence).
fn redact_shapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(is_word_char).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.is_empty() {
            break;
        }
        let end = rest
            .find(|c: char| !(is_word_char(c) || c == '.'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let core = word.trim_end_matches('.');
        if looks_like_token(core) {
            out.push_str(REDACTED);
            out.push_str(&word[core.len()..]);
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.c2ln";

    #[test]
    fn exact_secrets_are_replaced_before_the_cut() {
        let secret = "opaque-token-0123456789abcdef";
        let text = format!("{}{secret} tail", "x".repeat(190));
        let cut = redact_to_bytes(&text, &[secret], 200);
        assert_eq!(cut, format!("{}{}", "x".repeat(190), &REDACTED[..10]));
        assert!(!cut.contains("opaque-t"));
        // Cut first, mask second would have left "opaque-tok" behind.
        let wrong: String = text.chars().take(200).collect();
        assert!(wrong.contains("opaque-tok"));
    }

    #[test]
    fn a_longer_secret_containing_a_shorter_one_is_replaced_whole() {
        assert_eq!(
            redact("a abcdef-123456 b abcdef c", &["abcdef", "abcdef-123456"]),
            "a [redacted] b [redacted] c"
        );
    }

    #[test]
    fn jwts_pieces_of_jwts_and_keys_are_redacted() {
        let cases = [
            (format!("bad token {JWT} here"), "bad token [redacted] here"),
            (format!("token {JWT}."), "token [redacted]."),
            ("key sk-ab bad".to_string(), "key [redacted] bad"),
            (
                "cut eyJhbGciOiJub25lIn0.eyJzd".to_string(),
                "cut [redacted]",
            ),
            (
                "opaque abcd.efghijklmnopqrstuv.wxyz0123".to_string(),
                "opaque [redacted]",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(redact(&text, &[]), expected, "{text}");
        }
    }

    #[test]
    fn ordinary_text_paths_hosts_and_versions_are_kept() {
        for text in [
            "user signed out (host v1.2.3); retry later",
            "see /var/log/x.y.z for details",
            "could not connect to the provider at http://127.0.0.1:8080/v1: refused",
            "https://gateway.internal.example.com/backend-api failed",
            "provider auth command `/tmp/.tmpXCuLPS/fail.sh` exited with status 3",
            "sk- is a prefix; task-123 is not a key",
        ] {
            assert_eq!(redact(text, &[]), text);
        }
    }

    #[test]
    fn cuts_count_characters_or_bytes_at_a_boundary() {
        assert_eq!(redact_to_chars("ééé", &[], 2), "éé");
        assert_eq!(redact_to_bytes("ééé", &[], 3), "é");
        assert_eq!(redact_to_chars("abc", &[], 10), "abc");
    }
}
