//! End to end, the device-code sign-in (docs/protocol.md §3.8) against the real binary
//! and a loopback mock issuer: the code at once, approval → `auth.json`, denial, expiry,
//! an issuer without the flow (404), cancel and the timeout.

mod signin_common;

use std::time::Duration;

use authbridge_testkit::{DeviceResolution, MockIssuer, Session};
use serde_json::json;
use signin_common::*;

async fn start(s: &Session, issuer: &MockIssuer) -> (String, String) {
    let r = s
        .host
        .request("account/login/start", json!({"type": "chatgptDeviceCode"}))
        .await
        .unwrap();
    let id = r["loginId"].as_str().expect("loginId").to_owned();
    let code = r["userCode"].as_str().expect("userCode").to_owned();
    assert_eq!(
        r,
        json!({"type": "chatgptDeviceCode", "loginId": id, "verificationUrl": format!("{}/codex/device", issuer.url()), "userCode": code})
    );
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(issuer.device_codes(), vec![code.clone()]);
    (id, code)
}

/// Waits until the server has polled at least `n` times.
async fn wait_polls(issuer: &MockIssuer, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while issuer.device_polls() < n {
        assert!(tokio::time::Instant::now() < deadline, "no polling");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_approved_device_code_stores_managed_credentials() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_account("org-7", "team", "device@example.com");
    let s = session(&issuer, &[]).await;
    let (id, code) = start(&s, &issuer).await;
    wait_polls(&issuer, 2).await;
    assert!(auth_json(s.home()).is_none(), "nothing while pending");
    assert!(issuer.resolve_device(&code, DeviceResolution::Approve));
    assert_signed_in(&s.host, &id, "team").await;
    let calls = issuer.token_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].grant_type, "authorization_code");
    assert_eq!(
        calls[0].params["redirect_uri"],
        format!("{}/deviceauth/callback", issuer.url())
    );
    assert_stored(s.home(), &issuer.issued().pop().unwrap(), "org-7");
    assert_account(&s.host, "device@example.com", "team").await;
}

async fn assert_device_fails(how: DeviceResolution, error: &str) {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let (id, code) = start(&s, &issuer).await;
    wait_polls(&issuer, 1).await;
    issuer.resolve_device(&code, how);
    assert_sign_in_failed(&s, &id, error).await;
    assert_eq!(issuer.token_calls(), vec![]);
}

#[tokio::test]
async fn a_denied_device_code_fails_the_login() {
    assert_device_fails(
        DeviceResolution::Deny,
        "Device code login failed: the sign-in was denied",
    )
    .await;
}

#[tokio::test]
async fn an_expired_device_code_fails_the_login() {
    assert_device_fails(
        DeviceResolution::Expire,
        "Device code login failed: the code expired before it was approved; start again",
    )
    .await;
}

#[tokio::test]
async fn an_issuer_without_device_codes_fails_the_start_with_not_enabled() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_device_enabled(false);
    let s = session(&issuer, &[]).await;
    let e = s
        .host
        .request("account/login/start", json!({"type": "chatgptDeviceCode"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, -32603);
    assert!(
        e.message.contains("device code login is not enabled"),
        "{e:?}"
    );
    assert!(e.message.contains(&issuer.url()), "{e:?}");
    settle(&s.host).await;
    assert_eq!(account_notes(&s.host), vec![]);
    assert!(auth_json(s.home()).is_none());
}

#[tokio::test]
async fn a_pending_device_code_can_be_cancelled_and_times_out() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let (id, _code) = start(&s, &issuer).await;
    cancel(&s.host, &id).await;
    assert_eq!(
        completed(&s.host, &id).await,
        failed(&id, "Login was not completed")
    );
    drop(s);

    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &["chatgpt_login_timeout_ms=400"]).await;
    let (id, code) = start(&s, &issuer).await;
    assert_eq!(
        completed(&s.host, &id).await,
        failed(&id, "Login timed out")
    );
    // Approving afterwards changes nothing: the server no longer polls.
    let polls = issuer.device_polls();
    issuer.resolve_device(&code, DeviceResolution::Approve);
    assert_only_failure_announced(&s.host, &id, "Login timed out").await;
    assert!(issuer.device_polls() <= polls + 1);
    assert!(auth_json(s.home()).is_none());
}
