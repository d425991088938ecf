//! Signing in with ChatGPT: the browser flow (OAuth authorization code with PKCE and a
//! loopback callback server) and the device-code flow, both ending in a code exchanged
//! at `<issuer>/oauth/token` for an id, access and refresh token (docs/protocol.md §3.8).
//!
//! These functions only talk to the issuer and the browser; they write nothing. The
//! caller hands the tokens to [`AuthManager::login_chatgpt`](crate::AuthManager::login_chatgpt),
//! which stores them as managed `auth.json` credentials that the managed refresh then
//! keeps fresh. Errors are [`LoginError`]s whose `Display` is a sentence a person can act
//! on; none of them ever contains a token, a code or a verifier.
//!
//! - [`pkce`]: the S256 verifier/challenge pair and the random `state`.
//! - [`browser`]: the authorize URL and the callback server.
//! - [`device`]: the user code, the polling and the exchange.

pub mod browser;
pub mod device;
pub mod pkce;

use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::jwt::decode_jwt_claims;
use crate::secret::{redact_secrets, Secret};

pub use browser::{BrowserLogin, CallbackResponder};
pub use device::DeviceCode;

/// The issuer ChatGPT sign-in uses unless `chatgpt_issuer` says otherwise.
pub const DEFAULT_ISSUER: &str = "https://auth.openai.com";
/// The callback port Codex registers (and the default `chatgpt_login_port`).
pub const DEFAULT_LOGIN_PORT: u16 = 1455;
/// The second callback port the issuer accepts for Codex's client, tried when the
/// default one is taken, before any free port.
pub const SECOND_LOGIN_PORT: u16 = 1457;
/// A flow not finished in this time fails with [`LoginError::TimedOut`].
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The `originator` member of the authorize URL.
pub const ORIGINATOR: &str = "codex_cli_rs";

/// What both flows need to know.
#[derive(Clone, Debug)]
pub struct LoginConfig {
    /// `chatgpt_issuer`, without a trailing slash.
    pub issuer: String,
    /// `chatgpt_client_id`.
    pub client_id: String,
    /// `chatgpt_login_port`: where the callback server listens first.
    pub port: u16,
    /// `chatgpt_token_timeout_ms`: the deadline of each call to the issuer.
    pub token_timeout: Duration,
    /// `forced_chatgpt_workspace_id`.
    pub forced_workspace_id: Option<String>,
    /// How long a flow may take in all (10 minutes; shorter in tests).
    pub timeout: Duration,
}

impl LoginConfig {
    /// The defaults: Codex's issuer, client id and port; 30 s per call; 10 minutes in all.
    pub fn new(client_id: impl Into<String>) -> Self {
        LoginConfig {
            issuer: DEFAULT_ISSUER.into(),
            client_id: client_id.into(),
            port: DEFAULT_LOGIN_PORT,
            token_timeout: Duration::from_secs(30),
            forced_workspace_id: None,
            timeout: DEFAULT_LOGIN_TIMEOUT,
        }
    }

    pub(crate) fn issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    pub(crate) fn token_url(&self) -> String {
        format!("{}/oauth/token", self.issuer())
    }
}

/// What a successful exchange returned. `Debug` shows fingerprints only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginTokens {
    pub id_token: Secret,
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// `chatgpt_account_id` of the id token (else of the access token).
    pub account_id: Option<String>,
}

/// Why a sign-in did not complete. `Display` is the message a host or a person sees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Cancelled (by the host, or the CLI interrupted).
    #[error("Login was not completed")]
    Canceled,
    /// A newer login replaced this one.
    #[error("Login was not completed: a new login was started")]
    Replaced,
    /// The flow did not finish in time.
    #[error("Login timed out")]
    TimedOut,
    /// The callback carried another `state` than the one we sent.
    #[error("Sign-in failed: the callback's state does not match this login (a stale or forged redirect)")]
    StateMismatch,
    /// The issuer redirected back with an error (the user declined, no access, …).
    #[error("Sign-in failed: {0}")]
    Denied(String),
    /// The callback had neither a code nor an error.
    #[error("Sign-in failed: the callback carried no authorization code")]
    MissingCode,
    /// The code could not be exchanged for tokens.
    #[error("Token exchange failed: {0}")]
    Exchange(String),
    /// `forced_chatgpt_workspace_id` is set and the tokens are for another workspace.
    #[error("Login is restricted to workspace \"{forced}\", but the sign-in was for workspace \"{received}\".")]
    WorkspaceMismatch {
        /// The configured workspace.
        forced: String,
        /// The token's workspace (`unknown` when it has none).
        received: String,
    },
    /// The issuer answers 404 to the device-code request.
    #[error("device code login is not enabled for this issuer ({issuer}); use the browser login or check chatgpt_issuer")]
    DeviceCodeNotEnabled {
        /// The issuer asked.
        issuer: String,
    },
    /// The device-code flow failed (request, polling, denial, expiry).
    #[error("Device code login failed: {0}")]
    Device(String),
    /// The callback server could not listen.
    #[error("Login server error: {0}")]
    Server(String),
    /// The tokens were obtained but could not be stored.
    #[error("Sign-in completed but the credentials could not be saved: {0}")]
    Store(String),
}

/// Builds the HTTP client once (TLS set-up is not free).
pub(crate) fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

/// A redirect the issuer produced, an exchange body: cut and with token-shaped words
/// replaced, and with the given secrets removed, before it goes into a message.
pub(crate) fn clean(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(s, "[redacted]");
    }
    redact_secrets(text.trim(), 200)
}

/// The message in an OAuth error body: `error_description`, `error.message`, `error`
/// (string or `error.code`), `message`; else the body itself.
pub(crate) fn error_detail(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return if text.trim().is_empty() {
            "no details".into()
        } else {
            text.into_owned()
        };
    };
    let s = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    s(json.get("error_description"))
        .or_else(|| s(json.get("error").and_then(|e| e.get("message"))))
        .or_else(|| s(json.get("error")))
        .or_else(|| s(json.get("error").and_then(|e| e.get("code"))))
        .or_else(|| s(json.get("message")))
        .unwrap_or_else(|| "no details".into())
}

/// The OAuth error code of a body (`error` as a string, else `error.code`), lowercased.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let json = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    json.get("error")
        .and_then(|e| {
            e.as_str()
                .or_else(|| e.get("code").and_then(|c| c.as_str()))
        })
        .or_else(|| json.get("code").and_then(|c| c.as_str()))
        .map(str::to_lowercase)
}

/// Exchanges an authorization code at `<issuer>/oauth/token` (form-encoded, as the
/// issuer expects), within `cfg.token_timeout`, then applies the workspace restriction.
pub async fn exchange_code(
    cfg: &LoginConfig,
    code: &str,
    code_verifier: &str,
    redirect_uri: &str,
) -> Result<LoginTokens, LoginError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("client_id", &cfg.client_id)
        .append_pair("code_verifier", code_verifier)
        .finish();
    let secrets = [code, code_verifier];
    let ms = cfg.token_timeout.as_millis();
    tracing::debug!(issuer = %cfg.issuer(), "exchanging the authorization code");
    let send = client()
        .post(cfg.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .timeout(cfg.token_timeout)
        .send();
    let response = match tokio::time::timeout(cfg.token_timeout, send).await {
        Err(_) => return Err(LoginError::Exchange(format!("no answer after {ms}ms"))),
        Ok(Err(e)) if e.is_timeout() => {
            return Err(LoginError::Exchange(format!("no answer after {ms}ms")))
        }
        Ok(Err(e)) => {
            return Err(LoginError::Exchange(format!(
                "network error: {}",
                clean(&e.without_url().to_string(), &secrets)
            )))
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let bytes = match tokio::time::timeout(cfg.token_timeout, response.bytes()).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return Err(LoginError::Exchange(format!(
                "status {}: {}",
                status.as_u16(),
                clean(&e.without_url().to_string(), &secrets)
            )))
        }
        Err(_) => return Err(LoginError::Exchange(format!("no answer after {ms}ms"))),
    };
    if !status.is_success() {
        return Err(LoginError::Exchange(format!(
            "status {}: {}",
            status.as_u16(),
            clean(&error_detail(&bytes), &secrets)
        )));
    }
    #[derive(Deserialize)]
    struct Answer {
        id_token: String,
        access_token: String,
        refresh_token: String,
    }
    let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
        // The category only: serde's message may quote a token.
        LoginError::Exchange(format!(
            "status {}: the answer is not the expected JSON ({:?} error)",
            status.as_u16(),
            e.classify()
        ))
    })?;
    for (name, value) in [
        ("id_token", &answer.id_token),
        ("access_token", &answer.access_token),
        ("refresh_token", &answer.refresh_token),
    ] {
        if value.is_empty() || value.bytes().any(|b| b.is_ascii_control()) {
            return Err(LoginError::Exchange(format!(
                "the issuer returned an unusable {name}"
            )));
        }
    }
    let id = decode_jwt_claims(&answer.id_token)
        .map_err(|e| LoginError::Exchange(format!("the id token is not a JWT: {e}")))?;
    let access = decode_jwt_claims(&answer.access_token).unwrap_or_default();
    let tokens = LoginTokens {
        account_id: id.account_id.or(access.account_id),
        id_token: Secret::new(answer.id_token),
        access_token: Secret::new(answer.access_token),
        refresh_token: Secret::new(answer.refresh_token),
    };
    check_workspace(cfg, &tokens)?;
    Ok(tokens)
}

/// `forced_chatgpt_workspace_id`: the tokens must name that workspace.
pub fn check_workspace(cfg: &LoginConfig, tokens: &LoginTokens) -> Result<(), LoginError> {
    match &cfg.forced_workspace_id {
        Some(forced) if tokens.account_id.as_deref() != Some(forced.as_str()) => {
            Err(LoginError::WorkspaceMismatch {
                forced: forced.clone(),
                received: tokens
                    .account_id
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_are_found_where_issuers_put_them() {
        let cases: [(&str, &str); 5] = [
            (
                r#"{"error":"invalid_grant","error_description":"code expired"}"#,
                "code expired",
            ),
            (r#"{"error":{"code":"bad","message":"nope"}}"#, "nope"),
            (r#"{"error":"invalid_grant"}"#, "invalid_grant"),
            (r#"{"message":"down"}"#, "down"),
            ("plain text", "plain text"),
        ];
        for (body, want) in cases {
            assert_eq!(error_detail(body.as_bytes()), want, "{body}");
        }
        assert_eq!(
            error_code(br#"{"error":{"code":"Access_Denied"}}"#).as_deref(),
            Some("access_denied")
        );
    }

    #[test]
    fn clean_removes_the_named_secrets_and_token_shaped_words() {
        let text = "bad code abcd1234 and eyJhbGciOi.eyJzdWIiOjF9.c2ln here";
        assert_eq!(
            clean(text, &["abcd1234"]),
            "bad code [redacted] and [redacted] here"
        );
    }

    #[test]
    fn a_token_for_another_workspace_is_refused_when_one_is_forced() {
        let mut cfg = LoginConfig::new("client");
        let tokens = |account: Option<&str>| LoginTokens {
            id_token: Secret::new("i"),
            access_token: Secret::new("a"),
            refresh_token: Secret::new("r"),
            account_id: account.map(str::to_owned),
        };
        assert_eq!(check_workspace(&cfg, &tokens(Some("org-2"))), Ok(()));
        cfg.forced_workspace_id = Some("org-1".into());
        assert_eq!(check_workspace(&cfg, &tokens(Some("org-1"))), Ok(()));
        assert_eq!(
            check_workspace(&cfg, &tokens(Some("org-2")))
                .unwrap_err()
                .to_string(),
            "Login is restricted to workspace \"org-1\", but the sign-in was for workspace \"org-2\"."
        );
        assert!(check_workspace(&cfg, &tokens(None)).is_err());
    }
}
