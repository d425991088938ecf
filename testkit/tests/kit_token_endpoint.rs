//! The loopback token endpoint: rotation, reuse detection and scripted failures.

use std::time::Duration;

use authbridge_testkit::jwt::{decode_claims, AUTH_CLAIM};
use authbridge_testkit::{TokenEndpoint, TokenMode};
use serde_json::{json, Value};

async fn refresh(endpoint: &TokenEndpoint, rt: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .post(endpoint.url())
        .json(&json!({"client_id": "app_test", "grant_type": "refresh_token", "refresh_token": rt}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_refresh_token_is_accepted_once_and_rotated() {
    let endpoint = TokenEndpoint::start("org-1", "pro", ["rt_1"])
        .await
        .unwrap();
    let (status, body) = refresh(&endpoint, "rt_1").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    let issued = endpoint.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(
        body,
        json!({"id_token": issued[0].id_token, "access_token": issued[0].access_token, "refresh_token": "rt_issued_1"})
    );
    let claims = decode_claims(&issued[0].access_token).unwrap();
    assert_eq!(
        claims[AUTH_CLAIM],
        json!({"chatgpt_plan_type": "pro", "chatgpt_account_id": "org-1"})
    );

    let (status, body) = refresh(&endpoint, "rt_1").await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone()
        ),
        (401, json!("refresh_token_reused"))
    );
    assert_eq!(refresh(&endpoint, "rt_issued_1").await.0, 200);
    assert_eq!(endpoint.calls(), 3);
    assert_eq!(
        endpoint.bodies()[0],
        json!({"client_id": "app_test", "grant_type": "refresh_token", "refresh_token": "rt_1"})
    );
}

#[tokio::test]
async fn an_unknown_refresh_token_is_invalidated() {
    let endpoint = TokenEndpoint::start("org-1", "pro", ["rt_1"])
        .await
        .unwrap();
    let (status, body) = refresh(&endpoint, "rt_other").await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": {"code": "refresh_token_invalidated", "message": "unknown refresh token"}})
    );
}

#[tokio::test]
async fn scripted_modes_answer_as_told() {
    let endpoint = TokenEndpoint::start("org-1", "pro", ["rt_1"])
        .await
        .unwrap();
    endpoint.set_mode(TokenMode::Error {
        status: 400,
        code: "refresh_token_expired".into(),
    });
    assert_eq!(
        refresh(&endpoint, "rt_1").await,
        (
            400,
            json!({"error": {"code": "refresh_token_expired", "message": "scripted failure"}})
                .to_string()
        )
    );
    endpoint.set_mode(TokenMode::ServerError);
    assert_eq!(
        refresh(&endpoint, "rt_1").await,
        (500, "internal error".to_owned())
    );
    endpoint.set_mode(TokenMode::Malformed);
    assert_eq!(
        refresh(&endpoint, "rt_1").await,
        (200, "{\"access_token\": ".to_owned())
    );
    endpoint.set_mode(TokenMode::Hang);
    let hung = tokio::time::timeout(Duration::from_millis(300), refresh(&endpoint, "rt_1")).await;
    assert!(hung.is_err());
    assert_eq!(endpoint.issued(), vec![]);
}
