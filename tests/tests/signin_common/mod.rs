//! What the sign-in tests share: a session pointed at a mock issuer, and waits on the
//! `account/login/completed` of one `loginId`.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use authbridge_tests::{Host, MockIssuer, Session, SessionBuilder};
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
