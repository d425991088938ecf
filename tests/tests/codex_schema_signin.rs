//! Codex 0.171.0's schema as the judge of the sign-in messages (docs/protocol.md §3.8):
//! the browser and device-code starts, their `account/login/completed` and
//! `account/updated`, and both `account/login/cancel` answers, from the real binary
//! against the mock issuer. Needs `npm` and the npm registry, like `codex_schema`.

mod codex_kit;
mod signin_common;

use authbridge_testkit::mock_issuer::browse;
use authbridge_testkit::{DeviceResolution, MockIssuer};
use codex_kit::{generate_schema, Judge, Tally};
use serde_json::json;
use signin_common::*;

#[tokio::test]
async fn every_sign_in_message_validates_against_codex_schema() {
    let judge = Judge::new(generate_schema());
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let mut tally = Tally::default();
    let response = |method: &str, result: serde_json::Value, tally: &mut Tally| {
        let message = json!({"id": 1, "result": result});
        tally.add(judge.judge(&message, Some(method)), &message);
    };

    let browser = s
        .host
        .request("account/login/start", json!({"type": "chatgpt"}))
        .await
        .unwrap();
    response("account/login/start", browser.clone(), &mut tally);
    browse(browser["authUrl"].as_str().unwrap(), WAIT)
        .await
        .unwrap();
    completed(&s.host, browser["loginId"].as_str().unwrap()).await;

    let device = s
        .host
        .request("account/login/start", json!({"type": "chatgptDeviceCode"}))
        .await
        .unwrap();
    response("account/login/start", device.clone(), &mut tally);
    let cancel = s
        .host
        .request(
            "account/login/cancel",
            json!({"loginId": device["loginId"]}),
        )
        .await
        .unwrap();
    assert_eq!(cancel["status"], "canceled");
    response("account/login/cancel", cancel, &mut tally);
    completed(&s.host, device["loginId"].as_str().unwrap()).await;
    let not_found = s
        .host
        .request(
            "account/login/cancel",
            json!({"loginId": device["loginId"]}),
        )
        .await
        .unwrap();
    response("account/login/cancel", not_found, &mut tally);

    let again = s
        .host
        .request("account/login/start", json!({"type": "chatgptDeviceCode"}))
        .await
        .unwrap();
    response("account/login/start", again.clone(), &mut tally);
    issuer.resolve_device(
        again["userCode"].as_str().unwrap(),
        DeviceResolution::Approve,
    );
    completed(&s.host, again["loginId"].as_str().unwrap()).await;
    settle(&s.host).await;

    let notes = s.host.notifications();
    for m in &notes {
        if m["method"]
            .as_str()
            .is_some_and(|n| n.starts_with("account/"))
        {
            tally.add(judge.judge(m, None), m);
        }
    }
    assert!(
        tally.invalid.is_empty() && tally.documented.is_empty(),
        "{}",
        tally.summary()
    );
    // Three starts, two cancel answers, three completions, and an update per success.
    assert_eq!(
        tally.by_kind.get("response account/login/start"),
        Some(&3),
        "{}",
        tally.summary()
    );
    assert_eq!(tally.by_kind.get("response account/login/cancel"), Some(&2));
    assert_eq!(
        tally.by_kind.get("notification account/login/completed"),
        Some(&3),
        "{}",
        tally.summary()
    );
    assert!(tally
        .by_kind
        .get("notification account/updated")
        .is_some_and(|n| *n >= 2));
}
