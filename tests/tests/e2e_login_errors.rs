//! End to end, every login error of docs/protocol.md §3.1 with its code: unsupported types, tokens
//! that are not JWTs, and the forced-policy rejections.

use authbridge_protocol::ErrorObject;
use authbridge_testkit::jwt::for_account as jwt;
use authbridge_testkit::{Session, SessionBuilder};
use serde_json::json;

fn err(code: i64, message: &str) -> ErrorObject {
    ErrorObject::new(code, message)
}

#[tokio::test]
async fn api_key_login_is_refused_when_chatgpt_login_is_forced() {
    let s = SessionBuilder::default()
        .config("forced_login_method=\"chatgpt\"")
        .start()
        .await;
    assert_eq!(
        s.host
            .request(
                "account/login/start",
                json!({"type": "apiKey", "apiKey": "sk-x"})
            )
            .await,
        Err(err(
            -32600,
            "API key login is disabled. Use ChatGPT login instead."
        ))
    );
}

#[tokio::test]
async fn external_login_is_refused_when_api_login_is_forced() {
    let s = SessionBuilder::default()
        .config("forced_login_method=api")
        .start()
        .await;
    assert_eq!(
        s.login_external(&jwt("org-1", "pro"), "org-1", None).await,
        Err(err(
            -32600,
            "External ChatGPT auth is disabled. Use API key login instead."
        ))
    );
}

#[tokio::test]
async fn external_login_outside_the_forced_workspace_is_refused() {
    let s = SessionBuilder::default()
        .config("forced_chatgpt_workspace_id=org-forced")
        .start()
        .await;
    assert_eq!(
        s.login_external(&jwt("org-1", "pro"), "org-1", None).await,
        Err(err(
            -32600,
            "External auth must use workspace \"org-forced\", but received \"org-1\"."
        ))
    );
    assert_eq!(
        s.login_external(&jwt("org-forced", "pro"), "org-forced", None)
            .await,
        Ok(json!({"type": "chatgptAuthTokens"}))
    );
}

#[tokio::test]
async fn api_key_login_is_refused_while_external_tokens_are_active() {
    let s = Session::start().await;
    s.login_external(&jwt("org-1", "pro"), "org-1", None)
        .await
        .unwrap();
    assert_eq!(
        s.host.request("account/login/start", json!({"type": "apiKey", "apiKey": "sk-x"})).await,
        Err(err(
            -32600,
            "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it."
        ))
    );
}

#[tokio::test]
async fn an_access_token_that_is_not_a_jwt_is_invalid_params() {
    let s = Session::start().await;
    let e = s
        .login_external("not-a-jwt", "org-1", None)
        .await
        .unwrap_err();
    assert_eq!(e.code, -32602);
    assert!(e.message.starts_with("invalid access token: "), "{e:?}");
}

#[tokio::test]
async fn another_login_type_is_unsupported() {
    let s = Session::start().await;
    assert_eq!(
        s.host
            .request("account/login/start", json!({"type": "amazonBedrock"}))
            .await,
        Err(err(-32602, "unsupported login type \"amazonBedrock\""))
    );
}
