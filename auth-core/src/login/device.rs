//! The device-code flow: ask the issuer for a user code, show it with the verification
//! URL, poll until the person approved it on another device, then exchange the code the
//! issuer hands back (it also hands back the PKCE pair it generated).
//!
//! Endpoints (under `<issuer>/api/accounts`): `POST /deviceauth/usercode
//! {client_id}` → `{device_auth_id, user_code, interval}`; `POST /deviceauth/token
//! {device_auth_id, user_code}` → 403/404 while pending, 2xx
//! `{authorization_code, code_challenge, code_verifier}` once approved. The exchange uses
//! `redirect_uri = <issuer>/deviceauth/callback`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::login::{
    clean, client, error_code, error_detail, exchange_code, LoginConfig, LoginError, LoginTokens,
};
use crate::secret::Secret;

/// A user code to show. `Debug` hides the device id.
#[derive(Clone)]
pub struct DeviceCode {
    /// Where the person enters the code: `<issuer>/codex/device`.
    pub verification_url: String,
    /// The code to enter, e.g. `ABCD-1234`.
    pub user_code: String,
    /// How often to poll.
    pub interval: Duration,
    device_auth_id: Secret,
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCode")
            .field("verification_url", &self.verification_url)
            .field("user_code", &self.user_code)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The shortest pause between two polls, whatever the issuer says.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

fn default_interval() -> u64 {
    5
}

/// `interval` as a number or a numeric string (issuers send either).
fn interval_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        N(u64),
        S(String),
    }
    Ok(match Option::<Num>::deserialize(d)? {
        Some(Num::N(n)) => n,
        Some(Num::S(s)) => s.trim().parse().unwrap_or(5),
        None => 5,
    })
}

async fn post(
    cfg: &LoginConfig,
    url: &str,
    body: serde_json::Value,
) -> Result<(u16, Vec<u8>), String> {
    let ms = cfg.token_timeout.as_millis();
    let send = client()
        .post(url)
        .json(&body)
        .timeout(cfg.token_timeout)
        .send();
    let response = match tokio::time::timeout(cfg.token_timeout, send).await {
        Err(_) => return Err(format!("no answer after {ms}ms")),
        Ok(Err(e)) if e.is_timeout() => return Err(format!("no answer after {ms}ms")),
        Ok(Err(e)) => return Err(format!("network error: {}", e.without_url())),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    match tokio::time::timeout(cfg.token_timeout, response.bytes()).await {
        Ok(Ok(b)) => Ok((status, b.to_vec())),
        Ok(Err(e)) => Err(format!("status {status}: {}", e.without_url())),
        Err(_) => Err(format!("no answer after {ms}ms")),
    }
}

/// Asks the issuer for a user code. A 404 means the issuer does not offer this flow.
pub async fn request_device_code(cfg: &LoginConfig) -> Result<DeviceCode, LoginError> {
    let url = format!("{}/api/accounts/deviceauth/usercode", cfg.issuer());
    let (status, body) = post(cfg, &url, serde_json::json!({"client_id": cfg.client_id}))
        .await
        .map_err(LoginError::Device)?;
    if status == 404 {
        return Err(LoginError::DeviceCodeNotEnabled {
            issuer: cfg.issuer().to_owned(),
        });
    }
    if !(200..300).contains(&status) {
        return Err(LoginError::Device(format!(
            "the user code request failed with status {status}: {}",
            clean(&error_detail(&body), &[])
        )));
    }
    #[derive(Deserialize)]
    struct Answer {
        device_auth_id: String,
        #[serde(alias = "usercode")]
        user_code: String,
        #[serde(default = "default_interval", deserialize_with = "interval_secs")]
        interval: u64,
    }
    let a: Answer = serde_json::from_slice(&body).map_err(|e| {
        LoginError::Device(format!(
            "the user code answer is not the expected JSON ({:?} error)",
            e.classify()
        ))
    })?;
    Ok(DeviceCode {
        verification_url: format!("{}/codex/device", cfg.issuer()),
        user_code: a.user_code,
        interval: Duration::from_secs(a.interval).max(MIN_INTERVAL),
        device_auth_id: Secret::new(a.device_auth_id),
    })
}

/// Polls until the code is approved (then exchanges it), denied or expired. No deadline
/// of its own: the caller applies the flow's timeout and cancellation.
pub async fn complete_device_code(
    cfg: &LoginConfig,
    code: &DeviceCode,
) -> Result<LoginTokens, LoginError> {
    let url = format!("{}/api/accounts/deviceauth/token", cfg.issuer());
    let body = serde_json::json!({
        "device_auth_id": code.device_auth_id.expose(),
        "user_code": code.user_code,
    });
    let secret = [code.device_auth_id.expose()];
    let approved = loop {
        let (status, answer) = post(cfg, &url, body.clone())
            .await
            .map_err(|e| LoginError::Device(format!("polling failed: {}", clean(&e, &secret))))?;
        match status {
            200..=299 => break answer,
            403 | 404 => tokio::time::sleep(code.interval).await,
            _ => {
                let message = match error_code(&answer).as_deref() {
                    Some("access_denied" | "authorization_declined" | "denied") => {
                        "the sign-in was denied".to_string()
                    }
                    Some("expired_token" | "expired" | "deviceauth_expired") => {
                        "the code expired before it was approved; start again".to_string()
                    }
                    _ => format!(
                        "status {status}: {}",
                        clean(&error_detail(&answer), &secret)
                    ),
                };
                return Err(LoginError::Device(message));
            }
        }
    };
    #[derive(Deserialize)]
    struct Approved {
        authorization_code: String,
        code_verifier: String,
    }
    let a: Approved = serde_json::from_slice(&approved).map_err(|e| {
        LoginError::Device(format!(
            "the approval is not the expected JSON ({:?} error)",
            e.classify()
        ))
    })?;
    let redirect_uri = format!("{}/deviceauth/callback", cfg.issuer());
    exchange_code(cfg, &a.authorization_code, &a.code_verifier, &redirect_uri).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_may_be_a_number_or_a_string() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default = "default_interval", deserialize_with = "interval_secs")]
            interval: u64,
        }
        let parse = |s: &str| serde_json::from_str::<T>(s).unwrap().interval;
        assert_eq!(parse(r#"{"interval":"7"}"#), 7);
        assert_eq!(parse(r#"{"interval":3}"#), 3);
        assert_eq!(parse(r#"{}"#), 5);
        assert_eq!(parse(r#"{"interval":null}"#), 5);
    }
}
