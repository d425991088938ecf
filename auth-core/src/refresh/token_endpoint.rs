//! The managed ChatGPT token endpoint (§4.2): one POST, and the failure classification.

use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::error::RefreshError;
use crate::redact::redact_to_chars;
use crate::secret::Secret;

/// Tokens a successful refresh returned; absent fields keep the stored ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshedTokens {
    /// New id token.
    pub id_token: Option<Secret>,
    /// New access token.
    pub access_token: Option<Secret>,
    /// New refresh token.
    pub refresh_token: Option<Secret>,
}

/// A client for one token endpoint. The HTTP client (and its TLS setup) is built on first use.
pub struct TokenEndpoint {
    url: String,
    client_id: String,
    timeout: Duration,
    client: OnceLock<reqwest::Client>,
}

const EXPIRED: &str = "Your access token could not be refreshed because your refresh token has expired. Please log out and sign in again.";
const REUSED: &str = "Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again.";
const REVOKED: &str = "Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.";
const OTHER_401: &str =
    "Your access token could not be refreshed. Please log out and sign in again.";
/// The permanent failure when `auth.json` now holds another account (§4.2).
pub const OTHER_ACCOUNT: &str = "Your access token could not be refreshed because you have since logged out or signed in to another account. Please sign in again.";

impl TokenEndpoint {
    /// A client for `url` with this client id and deadline.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>, timeout: Duration) -> Self {
        TokenEndpoint {
            url: url.into(),
            client_id: client_id.into(),
            timeout,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            crate::http::client_builder()
                .and_then(|b| b.build().map_err(|e| e.to_string()))
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    /// POSTs the refresh grant; classifies any failure.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<RefreshedTokens, RefreshError> {
        let body = serde_json::json!({
            "client_id": self.client_id,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.expose(),
        });
        let ms = self.timeout.as_millis();
        let send = self
            .client()
            .post(&self.url)
            .json(&body)
            .timeout(self.timeout)
            .send();
        let response = match tokio::time::timeout(self.timeout, send).await {
            Err(_) => return Err(transient("timeout", &format!("no answer after {ms}ms"))),
            Ok(Err(e)) if e.is_timeout() => {
                return Err(transient("timeout", &format!("no answer after {ms}ms")))
            }
            Ok(Err(e)) => return Err(transient("network error", &e.without_url().to_string())),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let bytes = match tokio::time::timeout(self.timeout, response.bytes()).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(transient(status.as_str(), &e.without_url().to_string())),
            Err(_) => return Err(transient("timeout", &format!("no answer after {ms}ms"))),
        };
        if status.is_success() {
            #[derive(Deserialize)]
            struct Ok200 {
                id_token: Option<String>,
                access_token: Option<String>,
                refresh_token: Option<String>,
            }
            return match serde_json::from_slice::<Ok200>(&bytes) {
                Ok(b) => Ok(RefreshedTokens {
                    id_token: b.id_token.map(Secret::new),
                    access_token: b.access_token.map(Secret::new),
                    refresh_token: b.refresh_token.map(Secret::new),
                }),
                Err(_) => Err(transient(status.as_str(), "unparsable response body")),
            };
        }
        // An endpoint that echoes the refresh token must not put it in our message: it is
        // replaced before the message is cut (`classify_failure_redacting`).
        Err(classify_failure_redacting(
            status.as_u16(),
            &bytes,
            &[refresh_token.expose()],
        ))
    }
}

fn transient(status: &str, message: &str) -> RefreshError {
    RefreshError::transient(format!("Failed to refresh token: {status}: {message}"))
}

/// Classifies a non-2xx answer (§4.2): `error.code`, else `error` as a string, else `code`.
pub fn classify_failure(status: u16, body: &[u8]) -> RefreshError {
    classify_failure_redacting(status, body, &[])
}

/// [`classify_failure`], with every exact occurrence of `secrets` (the refresh token sent)
/// and every token-shaped word replaced in the message before it is cut to 200 characters.
pub fn classify_failure_redacting(status: u16, body: &[u8], secrets: &[&str]) -> RefreshError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let code = json.as_ref().and_then(|v| {
        v.get("error")
            .and_then(|e| e.get("code"))
            .and_then(|c| c.as_str())
            .or_else(|| v.get("error").and_then(|e| e.as_str()))
            .or_else(|| v.get("code").and_then(|c| c.as_str()))
            .map(str::to_lowercase)
    });
    match code.as_deref() {
        Some("refresh_token_expired") => return RefreshError::permanent(EXPIRED),
        Some("refresh_token_reused") => return RefreshError::permanent(REUSED),
        Some("refresh_token_invalidated") => return RefreshError::permanent(REVOKED),
        _ if status == 401 => return RefreshError::permanent(OTHER_401),
        _ => {}
    }
    let message = json
        .as_ref()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message"))
                .and_then(|m| m.as_str())
                .or_else(|| v.get("error_description").and_then(|m| m.as_str()))
                .or_else(|| v.get("message").and_then(|m| m.as_str()))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    transient(
        &status.to_string(),
        &redact_to_chars(message.trim(), secrets, 200),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_in_each_place_and_lowercased() {
        let cases: [(u16, &str, RefreshError); 6] = [
            (
                400,
                r#"{"error":{"code":"REFRESH_TOKEN_EXPIRED"}}"#,
                RefreshError::permanent(EXPIRED),
            ),
            (
                400,
                r#"{"error":"refresh_token_reused"}"#,
                RefreshError::permanent(REUSED),
            ),
            (
                400,
                r#"{"code":"refresh_token_invalidated"}"#,
                RefreshError::permanent(REVOKED),
            ),
            (
                401,
                r#"{"error":"whatever"}"#,
                RefreshError::permanent(OTHER_401),
            ),
            (401, "not json", RefreshError::permanent(OTHER_401)),
            (
                500,
                r#"{"error":{"message":"upstream down"}}"#,
                RefreshError::transient("Failed to refresh token: 500: upstream down"),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                classify_failure(status, body.as_bytes()),
                expected,
                "{body}"
            );
        }
    }

    #[test]
    fn an_echoed_refresh_token_is_replaced_before_the_message_is_cut() {
        let rt = "rt_opaque_0123456789abcdefghij";
        let body = format!("{}{rt} and more", "m".repeat(190));
        let err = classify_failure_redacting(500, body.as_bytes(), &[rt]);
        let msg = err.message();
        assert!(!msg.contains("rt_opaque"), "{msg}");
        assert!(
            msg.ends_with(&format!("{}[redacted]", "m".repeat(190))),
            "{msg}"
        );
    }
}
