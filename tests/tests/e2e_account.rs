//! End to end, the account surface (docs/protocol.md §3): login of both kinds, read shapes, logout,
//! notification order, getAuthStatus, stores (the errors of §3.1: e2e_login_errors.rs).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use authbridge_protocol::ErrorObject;
use authbridge_testkit::host::Host;
use authbridge_testkit::jwt::for_account as jwt;
use authbridge_testkit::{Jwt, RefreshPolicy, Session, SessionBuilder};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(5);

fn err(code: i64, message: &str) -> ErrorObject {
    ErrorObject::new(code, message)
}

/// The two messages that follow the response with this id.
async fn after_response(host: &Host, id: i64) -> Vec<Value> {
    for _ in 0..50 {
        let messages = host.messages();
        if let Some(i) = messages
            .iter()
            .position(|m| m["id"] == id && m.get("method").is_none())
        {
            if messages.len() >= i + 3 {
                return messages[i + 1..i + 3].to_vec();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no response {id} followed by two messages: {:?}",
        host.messages()
    );
}

/// The id the host simulator will use for its next request (ids count from 0; initialize is 0).
fn last_request_id(host: &Host) -> i64 {
    host.messages()
        .iter()
        .filter(|m| m.get("method").is_none())
        .filter_map(|m| m["id"].as_i64())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn api_key_login_answers_then_completes_then_updates_and_is_written_to_auth_json() {
    let s = Session::start().await;
    let result = s
        .host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-test-1"}),
        )
        .await;
    assert_eq!(result, Ok(json!({"type": "apiKey"})));
    assert_eq!(
        after_response(&s.host, last_request_id(&s.host)).await,
        vec![
            json!({"method": "account/login/completed", "params": {"loginId": null, "success": true, "error": null, "onboardingEntrypoint": null}}),
            json!({"method": "account/updated", "params": {"authMode": "apikey", "planType": null, "reason": null}}),
        ]
    );
    let auth_path = s.home().join("auth.json");
    let stored: Value = serde_json::from_slice(&std::fs::read(&auth_path).unwrap()).unwrap();
    assert_eq!(
        stored,
        json!({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-test-1", "tokens": null, "last_refresh": null})
    );
    assert_eq!(
        std::fs::metadata(&auth_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        s.host.request("account/read", json!({})).await,
        Ok(json!({"account": {"type": "apiKey"}, "requiresOpenaiAuth": true}))
    );
}

#[tokio::test]
async fn api_key_logout_deletes_auth_json_and_reports_no_mode() {
    let s = Session::start().await;
    s.host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-test-1"}),
        )
        .await
        .unwrap();
    assert_eq!(
        s.host.request("account/logout", json!({})).await,
        Ok(json!({}))
    );
    let id = last_request_id(&s.host);
    let updated = s
        .host
        .wait_message(
            |m| m["method"] == "account/updated" && m["params"]["authMode"].is_null(),
            T,
        )
        .await;
    assert_eq!(
        updated,
        Some(
            json!({"method": "account/updated", "params": {"authMode": null, "planType": null, "reason": null}})
        )
    );
    assert!(s
        .host
        .messages()
        .iter()
        .position(|m| m["id"] == id)
        .is_some());
    assert!(!s.home().join("auth.json").exists());
    assert_eq!(
        s.host.request("account/read", json!({})).await,
        Ok(json!({"account": null, "requiresOpenaiAuth": true}))
    );
}

#[tokio::test]
async fn external_tokens_login_reads_as_chatgpt_and_logout_forgets_them() {
    let s = Session::start().await;
    let token = jwt("org-1", "pro");
    assert_eq!(
        s.login_external(&token, "org-1", Some("pro")).await,
        Ok(json!({"type": "chatgptAuthTokens"}))
    );
    assert_eq!(
        after_response(&s.host, last_request_id(&s.host)).await,
        vec![
            json!({"method": "account/login/completed", "params": {"loginId": null, "success": true, "error": null, "onboardingEntrypoint": null}}),
            json!({"method": "account/updated", "params": {"authMode": "chatgptAuthTokens", "planType": "pro", "reason": null}}),
        ]
    );
    assert_eq!(
        s.host
            .request("account/read", json!({"refreshToken": false}))
            .await,
        Ok(
            json!({"account": {"type": "chatgpt", "email": "user@example.com", "planType": "pro"}, "requiresOpenaiAuth": true})
        )
    );
    assert_eq!(
        s.host.request("account/logout", json!({})).await,
        Ok(json!({}))
    );
    assert_eq!(
        s.host.request("account/read", json!({})).await,
        Ok(json!({"account": null, "requiresOpenaiAuth": true}))
    );
}

#[tokio::test]
async fn the_plan_comes_from_the_token_when_the_login_omits_it_and_is_unknown_when_unrecognised() {
    let s = Session::start().await;
    s.login_external(&jwt("org-1", "team"), "org-1", None)
        .await
        .unwrap();
    let read = s.host.request("account/read", json!({})).await.unwrap();
    assert_eq!(read["account"]["planType"], "team");
    s.login_external(&jwt("org-1", "galactic"), "org-1", None)
        .await
        .unwrap();
    let read = s.host.request("account/read", json!({})).await.unwrap();
    assert_eq!(read["account"]["planType"], "unknown");
}

#[tokio::test]
async fn an_expired_access_token_is_accepted_at_login() {
    let s = Session::start().await;
    let expired = Jwt::new()
        .account("org-1")
        .expired_since(Duration::from_secs(60))
        .mint();
    assert_eq!(
        s.login_external(&expired, "org-1", None).await,
        Ok(json!({"type": "chatgptAuthTokens"}))
    );
}

#[tokio::test]
async fn refresh_token_true_asks_nothing_of_the_host_with_external_tokens() {
    let s = SessionBuilder {
        host: authbridge_testkit::HostOptions {
            refresh: RefreshPolicy::tokens(&jwt("org-1", "pro"), "org-1", None),
            ..Default::default()
        },
        ..SessionBuilder::default()
    }
    .start()
    .await;
    s.login_external(&jwt("org-1", "pro"), "org-1", Some("pro"))
        .await
        .unwrap();
    let read = s
        .host
        .request("account/read", json!({"refreshToken": true}))
        .await
        .unwrap();
    assert_eq!(read["account"]["type"], "chatgpt");
    let status = s
        .host
        .request("getAuthStatus", json!({"refreshToken": true}))
        .await
        .unwrap();
    assert_eq!(status["authMethod"], "chatgptAuthTokens");
    assert!(
        !s.host
            .wait_refresh_requests(1, Duration::from_millis(250))
            .await
    );
    assert_eq!(s.host.refresh_requests(), vec![]);
}

#[tokio::test]
async fn get_auth_status_includes_the_token_only_when_asked() {
    let s = Session::start().await;
    assert_eq!(
        s.host.request("getAuthStatus", json!({})).await,
        Ok(json!({"authMethod": null, "authToken": null, "requiresOpenaiAuth": true}))
    );
    let token = jwt("org-1", "pro");
    s.login_external(&token, "org-1", None).await.unwrap();
    assert_eq!(
        s.host
            .request("getAuthStatus", json!({"includeToken": true}))
            .await,
        Ok(
            json!({"authMethod": "chatgptAuthTokens", "authToken": token, "requiresOpenaiAuth": true})
        )
    );
    assert_eq!(
        s.host
            .request("getAuthStatus", json!({"includeToken": false}))
            .await,
        Ok(
            json!({"authMethod": "chatgptAuthTokens", "authToken": null, "requiresOpenaiAuth": true})
        )
    );
}

#[tokio::test]
async fn get_auth_status_reports_an_api_key_as_apikey() {
    let s = Session::start().await;
    s.host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-test-2"}),
        )
        .await
        .unwrap();
    assert_eq!(
        s.host
            .request("getAuthStatus", json!({"includeToken": true}))
            .await,
        Ok(json!({"authMethod": "apikey", "authToken": "sk-test-2", "requiresOpenaiAuth": true}))
    );
}

#[tokio::test]
async fn without_credentials_model_calls_answer_authentication_required() {
    let s = Session::start().await;
    let expected = Err(err(
        -32000,
        "authentication required: log in with account/login/start",
    )
    .with_data(json!({"reason": "authRequired"})));
    let thread = authbridge_testkit::session::start_thread(&s.host).await;
    assert_eq!(
        s.host
            .request(
                "turn/start",
                authbridge_testkit::session::turn_params(&thread, "hi")
            )
            .await,
        expected
    );
    assert_eq!(s.host.request("model/list", json!({})).await, expected);
    assert_eq!(
        s.host.request("account/rateLimits/read", json!({})).await,
        expected
    );
    assert_eq!(s.mock.request_count(), 0);
}

#[tokio::test]
async fn the_api_key_environment_variable_applies_and_survives_logout() {
    let s = SessionBuilder::default()
        .env("AUTHBRIDGE_API_KEY", "sk-env")
        .start()
        .await;
    assert_eq!(
        s.host.request("account/read", json!({})).await,
        Ok(json!({"account": {"type": "apiKey"}, "requiresOpenaiAuth": true}))
    );
    s.host.request("account/logout", json!({})).await.unwrap();
    let status = s.host.request("getAuthStatus", json!({})).await.unwrap();
    assert_eq!(status["authMethod"], "apikey");
}

#[tokio::test]
async fn a_corrupt_auth_json_fails_reads_naming_the_path_and_a_login_moves_it_aside() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("auth.json"), b"{corrupt").unwrap();
    let mock = authbridge_testkit::MockProvider::start(Default::default())
        .await
        .unwrap();
    let cmd = authbridge_testkit::server::command(
        home.path(),
        &authbridge_testkit::server::openai_overrides(&mock.url(), 500),
    );
    let host = Host::spawn(cmd, Default::default()).unwrap();
    host.initialize(json!({})).await.unwrap();
    let e = host.request("account/read", json!({})).await.unwrap_err();
    assert_eq!(e.code, -32603);
    assert!(
        e.message
            .contains(&home.path().join("auth.json").display().to_string()),
        "{e:?}"
    );
    host.request(
        "account/login/start",
        json!({"type": "apiKey", "apiKey": "sk-new"}),
    )
    .await
    .unwrap();
    let names: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let aside: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("auth.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{names:?}");
    assert_eq!(
        std::fs::read(home.path().join(aside[0])).unwrap(),
        b"{corrupt"
    );
}

#[tokio::test]
async fn the_ephemeral_store_keeps_an_api_key_off_the_disk() {
    let s = SessionBuilder::default()
        .config("cli_auth_credentials_store=ephemeral")
        .start()
        .await;
    s.host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-ephemeral"}),
        )
        .await
        .unwrap();
    assert_eq!(
        s.host.request("account/read", json!({})).await,
        Ok(json!({"account": {"type": "apiKey"}, "requiresOpenaiAuth": true}))
    );
    assert_eq!(
        authbridge_testkit::session::files_containing(s.home(), b"sk-ephemeral"),
        Vec::<std::path::PathBuf>::new()
    );
}
