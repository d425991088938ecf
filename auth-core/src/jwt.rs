//! Unsigned JWT claim decoding (§3.1): no signature check, just the claims we use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// The claims authbridge reads from an access or id token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwtClaims {
    /// `email`, else `["https://api.openai.com/profile"]["email"]`.
    pub email: Option<String>,
    /// `exp`, seconds since the Unix epoch.
    pub exp: Option<i64>,
    /// `["https://api.openai.com/auth"]["chatgpt_plan_type"]`, raw.
    pub plan_type: Option<String>,
    /// `chatgpt_user_id`, else `user_id`, in the auth object.
    pub user_id: Option<String>,
    /// `chatgpt_account_id` in the auth object.
    pub account_id: Option<String>,
}

/// Why a token is not a JWT. The message names the part, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not exactly three dot-separated segments.
    #[error("expected 3 dot-separated segments, found {0}")]
    SegmentCount(usize),
    /// One of the segments is empty.
    #[error("the {0} segment is empty")]
    EmptySegment(&'static str),
    /// A segment holds characters outside base64url, or does not decode.
    #[error("the {0} segment is not valid base64url")]
    NotBase64(&'static str),
    /// The payload decodes but is not JSON.
    #[error("the payload is not valid JSON")]
    PayloadNotJson,
    /// The payload is JSON but not an object.
    #[error("the payload is not a JSON object")]
    PayloadNotObject,
}

const PARTS: [&str; 3] = ["header", "payload", "signature"];

/// Decodes the claims of `token` (three non-empty base64url segments, payload a JSON object).
pub fn decode_jwt_claims(token: &str) -> Result<JwtClaims, JwtError> {
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(JwtError::SegmentCount(segments.len()));
    }
    for (seg, name) in segments.iter().zip(PARTS) {
        if seg.is_empty() {
            return Err(JwtError::EmptySegment(name));
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        {
            return Err(JwtError::NotBase64(name));
        }
    }
    let payload = URL_SAFE_NO_PAD
        .decode(segments[1].trim_end_matches('='))
        .map_err(|_| JwtError::NotBase64("payload"))?;
    let value: Value = serde_json::from_slice(&payload).map_err(|_| JwtError::PayloadNotJson)?;
    let obj = value.as_object().ok_or(JwtError::PayloadNotObject)?;

    let string = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let auth = obj.get("https://api.openai.com/auth");
    let profile = obj.get("https://api.openai.com/profile");
    Ok(JwtClaims {
        email: string(obj.get("email")).or_else(|| string(profile.and_then(|p| p.get("email")))),
        exp: obj.get("exp").and_then(exp_seconds),
        plan_type: string(auth.and_then(|a| a.get("chatgpt_plan_type"))),
        user_id: string(auth.and_then(|a| a.get("chatgpt_user_id")))
            .or_else(|| string(auth.and_then(|a| a.get("user_id")))),
        account_id: string(auth.and_then(|a| a.get("chatgpt_account_id"))),
    })
}

/// `exp` as whole seconds: an integer as is; a float truncated toward zero and clamped to
/// the `i64` range (`as` saturates); anything else (a string, a `u64` above `i64::MAX`
/// clamps too) as the JSON says. Never panics.
fn exp_seconds(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    if v.as_u64().is_some() {
        return Some(i64::MAX);
    }
    v.as_f64().map(|f| f as i64)
}

/// True when a token with `exp` (seconds since the epoch) expires within `ahead_ms` of
/// `now_ms` — or has already expired. Exact for every `i64` input: the arithmetic is done
/// in `i128`, so a very negative or huge `exp` can neither wrap nor panic (a token that
/// expired before the epoch is due, one that expires in the year 10^11 is not).
pub fn expires_within(exp: i64, now_ms: i64, ahead_ms: i64) -> bool {
    i128::from(exp) * 1000 - i128::from(now_ms) <= i128::from(ahead_ms)
}

/// Builds an unsigned JWT with `payload` as its claims (tests and demos).
pub fn encode_unsigned_jwt(payload: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(payload.to_string().as_bytes());
    format!("{header}.{body}.c2lnbmF0dXJl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_claims_are_read_from_their_objects() {
        let token = encode_unsigned_jwt(&json!({
            "exp": 1_900_000_000,
            "https://api.openai.com/profile": {"email": "a@example.com"},
            "https://api.openai.com/auth": {
                "chatgpt_plan_type": "pro", "user_id": "u-1", "chatgpt_account_id": "org-1"
            }
        }));
        assert_eq!(
            decode_jwt_claims(&token).unwrap(),
            JwtClaims {
                email: Some("a@example.com".into()),
                exp: Some(1_900_000_000),
                plan_type: Some("pro".into()),
                user_id: Some("u-1".into()),
                account_id: Some("org-1".into()),
            }
        );
    }

    #[test]
    fn top_level_email_and_chatgpt_user_id_win() {
        let token = encode_unsigned_jwt(&json!({
            "email": "top@example.com",
            "https://api.openai.com/profile": {"email": "nested@example.com"},
            "https://api.openai.com/auth": {"chatgpt_user_id": "cu", "user_id": "u"}
        }));
        let claims = decode_jwt_claims(&token).unwrap();
        assert_eq!(
            (claims.email.as_deref(), claims.user_id.as_deref()),
            (Some("top@example.com"), Some("cu"))
        );
    }

    #[test]
    fn out_of_range_exp_values_are_clamped_not_wrapped() {
        for (exp, expected) in [
            (json!(-1e16), -10_000_000_000_000_000),
            (json!(i64::MIN), i64::MIN),
            (json!(i64::MAX), i64::MAX),
            (json!(u64::MAX), i64::MAX),
            (json!(1e300), i64::MAX),
            (json!(-1e300), i64::MIN),
            (json!(1.9e9), 1_900_000_000),
        ] {
            let token = encode_unsigned_jwt(&json!({ "exp": exp }));
            assert_eq!(
                decode_jwt_claims(&token).unwrap().exp,
                Some(expected),
                "{exp}"
            );
        }
    }

    #[test]
    fn malformed_tokens_name_the_malformed_part() {
        let cases = [
            (
                "secret-canary",
                "expected 3 dot-separated segments, found 1",
            ),
            ("a..c", "the payload segment is empty"),
            ("a.b!.c", "the payload segment is not valid base64url"),
            ("a.bm90IGpzb24.c", "the payload is not valid JSON"),
            ("a.WzFd.c", "the payload is not a JSON object"),
        ];
        for (token, why) in cases {
            assert_eq!(
                decode_jwt_claims(token).unwrap_err().to_string(),
                why,
                "{token}"
            );
        }
    }
}
