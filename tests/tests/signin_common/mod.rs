//! What the sign-in tests share: a session pointed at a mock issuer, and waits on the
//! `account/login/completed` of one `loginId`.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use authbridge_testkit::token_endpoint::IssuedTokens;
use authbridge_testkit::{Host, MockIssuer, Session, SessionBuilder};
use serde_json::{json, Value};

/// Deadline for a flow's completion and for each browser request.
pub const WAIT: Duration = Duration::from_secs(10);

/// The overrides pointing sign-in at `issuer`, with the callback on any free port.
pub fn issuer_overrides(issuer: &MockIssuer) -> Vec<String> {
    vec![
        format!("chatgpt_issuer={}", issuer.url()),
        "chatgpt_login_port=0".to_owned(),
    ]
}

/// A session whose sign-in goes to `issuer`, with these extra overrides.
pub async fn session(issuer: &MockIssuer, extra: &[&str]) -> Session {
    let mut b = SessionBuilder::default();
    for o in issuer_overrides(issuer) {
        b = b.config(&o);
    }
    for o in extra {
        b = b.config(o);
    }
    b.start().await
}

/// Cancels the sign-in `login_id`, asserting the answer says it was.
pub async fn cancel(host: &Host, login_id: &str) {
    let r = host
        .request("account/login/cancel", json!({"loginId": login_id}))
        .await
        .unwrap();
    assert_eq!(r, json!({"status": "canceled"}));
}

/// Waits for the `account/login/completed` of `login_id`; its params.
pub async fn completed(host: &Host, login_id: &str) -> Value {
    let id = json!(login_id);
    match host
        .wait_message(
            |m| m["method"] == "account/login/completed" && m["params"]["loginId"] == id,
            WAIT,
        )
        .await
    {
        Some(m) => m["params"].clone(),
        None => panic!(
            "no account/login/completed for {login_id} within {WAIT:?}\n--- transcript ---\n{}\n--- stderr ---\n{}",
            host.transcript(),
            host.stderr_text()
        ),
    }
}

/// The account notifications received so far (`account/login/completed`,
/// `account/updated`), their params only, in order.
pub fn account_notes(host: &Host) -> Vec<(String, Value)> {
    host.notifications()
        .into_iter()
        .filter(|m| {
            m["method"]
                .as_str()
                .is_some_and(|s| s.starts_with("account/"))
        })
        .map(|m| {
            (
                m["method"].as_str().unwrap().to_owned(),
                m["params"].clone(),
            )
        })
        .collect()
}

/// A round trip: everything the server queued before it is now received.
pub async fn settle(host: &Host) {
    host.request("account/read", json!({})).await.unwrap();
}

/// `auth.json` under `home`, if it exists.
pub fn auth_json(home: &Path) -> Option<Value> {
    let bytes = std::fs::read(home.join("auth.json")).ok()?;
    Some(serde_json::from_slice(&bytes).expect("auth.json is JSON"))
}

/// The `params` expected of a successful completion.
pub fn succeeded(login_id: &str) -> Value {
    json!({"loginId": login_id, "success": true, "error": null, "onboardingEntrypoint": null})
}

/// The `account/updated` params of a ChatGPT sign-in on this plan.
pub fn signed_in_update(plan: &str) -> (String, Value) {
    (
        "account/updated".to_owned(),
        json!({"authMode": "chatgpt", "planType": plan, "reason": null}),
    )
}

/// Asserts the sign-in `login_id` completed successfully and was announced exactly so:
/// its `account/login/completed`, then one `account/updated` on `plan`, nothing else.
pub async fn assert_signed_in(host: &Host, login_id: &str, plan: &str) {
    assert_eq!(completed(host, login_id).await, succeeded(login_id));
    settle(host).await;
    assert_eq!(
        account_notes(host),
        vec![
            ("account/login/completed".to_owned(), succeeded(login_id)),
            signed_in_update(plan),
        ]
    );
}

/// Asserts the sign-in `login_id` failed with `error`, that its completion was the only
/// account notification, and that nothing was written to `auth.json`.
pub async fn assert_sign_in_failed(s: &Session, login_id: &str, error: &str) {
    assert_eq!(completed(&s.host, login_id).await, failed(login_id, error));
    assert_only_failure_announced(&s.host, login_id, error).await;
    assert!(auth_json(s.home()).is_none(), "nothing written");
}

/// Asserts that, once the server's queue is read, the only account notification so far is
/// the failed completion of `login_id` with `error`.
pub async fn assert_only_failure_announced(host: &Host, login_id: &str, error: &str) {
    settle(host).await;
    assert_eq!(
        account_notes(host),
        vec![(
            "account/login/completed".to_owned(),
            failed(login_id, error)
        )]
    );
}

/// Asserts `auth.json` under `home` is a ChatGPT login holding exactly the `issued` tokens
/// for `account_id`; the whole file.
pub fn assert_stored(home: &Path, issued: &IssuedTokens, account_id: &str) -> Value {
    let stored = auth_json(home).expect("auth.json written");
    assert_eq!(stored["auth_mode"], "chatgpt", "{stored}");
    assert_eq!(
        stored["tokens"],
        json!({"id_token": issued.id_token, "access_token": issued.access_token, "refresh_token": issued.refresh_token, "account_id": account_id})
    );
    stored
}

/// Asserts `account/read` answers this ChatGPT account.
pub async fn assert_account(host: &Host, email: &str, plan: &str) {
    let account = host.request("account/read", json!({})).await.unwrap();
    assert_eq!(
        account["account"],
        json!({"type": "chatgpt", "email": email, "planType": plan})
    );
}

/// The `params` expected of a failed completion.
pub fn failed(login_id: &str, error: &str) -> Value {
    json!({"loginId": login_id, "success": false, "error": error, "onboardingEntrypoint": null})
}

/// The query members of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}
