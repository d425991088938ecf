//! End to end, the browser sign-in (docs/protocol.md §3.8) against the real binary, a
//! loopback mock issuer and a scripted browser that follows `authUrl`: success, a taken
//! callback port, every failure with its exact `account/login/completed`, cancel, a
//! second login replacing the first, the policies, and what happens after: the managed
//! refresh and a second process sharing the home.

mod signin_common;

use std::time::Duration;

use authbridge_testkit::mock_issuer::browse;
use authbridge_testkit::{AuthorizeMode, ExchangeMode, Host, MockIssuer, Session};
use serde_json::{json, Value};
use signin_common::*;

const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

async fn start(s: &Session) -> (String, String) {
    let r = s
        .host
        .request("account/login/start", json!({"type": "chatgpt"}))
        .await
        .unwrap();
    assert_eq!(r["type"], "chatgpt", "{r}");
    let id = r["loginId"].as_str().expect("loginId").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    (id, r["authUrl"].as_str().expect("authUrl").to_owned())
}

fn redirect_port(auth_url: &str) -> u16 {
    let redirect = query(auth_url)["redirect_uri"].clone();
    let rest = redirect
        .strip_prefix("http://localhost:")
        .unwrap_or_else(|| panic!("{redirect}"));
    let (port, path) = rest.split_once('/').unwrap();
    assert_eq!(path, "auth/callback");
    port.parse().unwrap()
}

#[tokio::test]
async fn a_browser_sign_in_stores_managed_credentials_and_announces_them() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_account("org-1", "pro", "person@example.com");
    let s = session(&issuer, &[]).await;
    let (id, url) = start(&s).await;

    let q = query(&url);
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", issuer.url())),
        "{url}"
    );
    let keys: Vec<&str> = url
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .map(|p| p.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "response_type",
            "client_id",
            "redirect_uri",
            "code_challenge",
            "code_challenge_method",
            "state",
            "scope",
            "id_token_add_organizations",
            "codex_cli_simplified_flow",
            "originator"
        ]
    );
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["scope"],
        "openid profile email offline_access api.connectors.read api.connectors.invoke"
    );
    assert_eq!(q["state"].len(), 43);
    assert!(auth_json(s.home()).is_none(), "nothing before the exchange");

    let visit = browse(&url, WAIT).await.unwrap();
    assert_eq!(visit.authorize_status, 302);
    assert_eq!(visit.status, 200, "{}", visit.body);
    assert!(visit.body.contains("Signed in"), "{}", visit.body);
    assert!(visit.body.contains("person@example.com"), "{}", visit.body);

    assert_signed_in(&s.host, &id, "pro").await;
    // The exchange carried the verifier of the challenge and the same redirect_uri.
    let calls = issuer.token_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].grant_type, "authorization_code");
    assert_eq!(calls[0].params["redirect_uri"], q["redirect_uri"]);
    assert_eq!(calls[0].params["client_id"], CLIENT_ID);

    let stored = assert_stored(s.home(), &issuer.issued().pop().unwrap(), "org-1");
    assert_eq!(stored["OPENAI_API_KEY"], Value::Null);
    assert!(stored["last_refresh"].is_string(), "{stored}");
    assert_account(&s.host, "person@example.com", "pro").await;
}

#[tokio::test]
async fn a_taken_callback_port_falls_back_to_a_free_one_named_in_the_url() {
    let issuer = MockIssuer::start().await.unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let s = session(&issuer, &[&format!("chatgpt_login_port={port}")]).await;
    let (id, url) = start(&s).await;
    let bound = redirect_port(&url);
    assert_ne!(bound, port, "the held port cannot have been bound");
    let visit = browse(&url, WAIT).await.unwrap();
    assert_eq!(visit.status, 200, "{}", visit.body);
    assert_eq!(completed(&s.host, &id).await["success"], true);
    assert!(auth_json(s.home()).is_some());
    drop(held);
}

/// Runs one failing flow; asserts the page, the one completion, no `account/updated`,
/// and no `auth.json`.
async fn assert_fails(s: &Session, issuer: &MockIssuer, error: &str) {
    let (id, url) = start(s).await;
    let visit = browse(&url, WAIT).await.unwrap();
    assert_eq!(visit.status, 400, "{}", visit.body);
    assert!(visit.body.contains("Sign-in failed"), "{}", visit.body);
    assert_sign_in_failed(s, &id, error).await;
    let _ = issuer;
}

#[tokio::test]
async fn a_callback_with_a_wrong_state_fails_the_login_without_an_exchange() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_authorize(AuthorizeMode::WrongState);
    let s = session(&issuer, &[]).await;
    assert_fails(
        &s,
        &issuer,
        "Sign-in failed: the callback's state does not match this login (a stale or forged redirect)",
    )
    .await;
    assert_eq!(issuer.token_calls(), vec![]);
}

#[tokio::test]
async fn an_issuer_denial_fails_the_login() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_authorize(AuthorizeMode::Deny);
    let s = session(&issuer, &[]).await;
    assert_fails(&s, &issuer, "Sign-in failed: The user declined to sign in").await;
    assert_eq!(issuer.token_calls(), vec![]);
}

#[tokio::test]
async fn a_failed_code_exchange_fails_the_login() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_exchange(ExchangeMode::Fail {
        status: 400,
        code: "invalid_grant".into(),
    });
    let s = session(&issuer, &[]).await;
    assert_fails(
        &s,
        &issuer,
        "Token exchange failed: status 400: the issuer refused the code",
    )
    .await;
}

#[tokio::test]
async fn an_exchange_past_its_deadline_fails_the_login() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_exchange(ExchangeMode::Hang);
    let s = session(&issuer, &["chatgpt_token_timeout_ms=300"]).await;
    assert_fails(&s, &issuer, "Token exchange failed: no answer after 300ms").await;
}

#[tokio::test]
async fn a_token_for_another_workspace_fails_when_one_is_forced() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_account("org-2", "team", "other@example.com");
    let s = session(&issuer, &["forced_chatgpt_workspace_id=\"org-1\""]).await;
    let (id, url) = start(&s).await;
    assert_eq!(query(&url)["allowed_workspace_id"], "org-1");
    assert!(url.ends_with("&allowed_workspace_id=org-1"), "{url}");
    let visit = browse(&url, WAIT).await.unwrap();
    assert_eq!(visit.status, 400);
    let error =
        "Login is restricted to workspace \"org-1\", but the sign-in was for workspace \"org-2\".";
    assert_sign_in_failed(&s, &id, error).await;
}

#[tokio::test]
async fn a_flow_not_finished_in_time_fails_with_login_timed_out() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &["chatgpt_login_timeout_ms=300"]).await;
    let (id, url) = start(&s).await;
    assert_eq!(
        completed(&s.host, &id).await,
        failed(&id, "Login timed out")
    );
    assert_only_failure_announced(&s.host, &id, "Login timed out").await;
    // The callback server is gone: a late browser gets no sign-in.
    let late = browse(&url, Duration::from_secs(3)).await;
    assert!(late.as_ref().map_or(true, |v| v.status != 200), "{late:?}");
    assert!(auth_json(s.home()).is_none());
    assert_eq!(issuer.token_calls(), vec![]);
}

#[tokio::test]
async fn cancel_answers_canceled_then_the_flow_completes_unsuccessfully_once() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let (id, url) = start(&s).await;
    cancel(&s.host, &id).await;
    let error = "Login was not completed";
    assert_eq!(completed(&s.host, &id).await, failed(&id, error));
    // The answer to the cancel comes before the completion.
    let msgs = s.host.messages();
    let answer = msgs
        .iter()
        .position(|m| m["result"] == json!({"status": "canceled"}))
        .unwrap();
    let done = msgs
        .iter()
        .position(|m| m["method"] == "account/login/completed")
        .unwrap();
    assert!(answer < done, "{msgs:?}");
    // A second cancel, or an unknown id, finds nothing.
    for other in [id.as_str(), "no-such-login"] {
        let r = s
            .host
            .request("account/login/cancel", json!({"loginId": other}))
            .await
            .unwrap();
        assert_eq!(r, json!({"status": "notFound"}));
    }
    let late = browse(&url, Duration::from_secs(3)).await;
    assert!(late.as_ref().map_or(true, |v| v.status != 200), "{late:?}");
    settle(&s.host).await;
    assert_eq!(
        account_notes(&s.host),
        vec![("account/login/completed".to_owned(), failed(&id, error))]
    );
    assert!(auth_json(s.home()).is_none());
}

#[tokio::test]
async fn a_cancel_without_a_login_id_names_the_field() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let e = s
        .host
        .request("account/login/cancel", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, -32602);
    assert!(e.message.contains("loginId"), "{e:?}");
}

#[tokio::test]
async fn a_second_login_replaces_the_first_which_completes_unsuccessfully_first() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let (first, first_url) = start(&s).await;
    let (second, second_url) = start(&s).await;
    assert_ne!(first, second);
    let error = "Login was not completed: a new login was started";
    assert_eq!(completed(&s.host, &first).await, failed(&first, error));
    // The first flow's end is queued before the second login's answer.
    let msgs = s.host.messages();
    let done = msgs
        .iter()
        .position(|m| m["params"]["loginId"] == json!(first))
        .unwrap();
    let answer = msgs
        .iter()
        .position(|m| m["result"]["loginId"] == json!(second))
        .unwrap();
    assert!(done < answer, "{msgs:?}");
    let stale = browse(&first_url, Duration::from_secs(3)).await;
    assert!(
        stale.as_ref().map_or(true, |v| v.status != 200),
        "{stale:?}"
    );
    let visit = browse(&second_url, WAIT).await.unwrap();
    assert_eq!(visit.status, 200, "{}", visit.body);
    assert_eq!(completed(&s.host, &second).await["success"], true);
    settle(&s.host).await;
    let notes = account_notes(&s.host);
    assert_eq!(
        notes,
        vec![
            ("account/login/completed".to_owned(), failed(&first, error)),
            ("account/login/completed".to_owned(), succeeded(&second)),
            signed_in_update("plus"),
        ]
    );
}

#[tokio::test]
async fn an_api_key_login_also_replaces_a_pending_flow() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let (id, _url) = start(&s).await;
    s.host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-replacing"}),
        )
        .await
        .unwrap();
    assert_eq!(
        completed(&s.host, &id).await,
        failed(&id, "Login was not completed: a new login was started")
    );
    assert_eq!(auth_json(s.home()).unwrap()["auth_mode"], "apikey");
}

#[tokio::test]
async fn chatgpt_sign_in_is_refused_when_api_login_is_forced_or_external_tokens_are_active() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &["forced_login_method=api"]).await;
    for kind in ["chatgpt", "chatgptDeviceCode"] {
        let e = s
            .host
            .request("account/login/start", json!({"type": kind}))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                -32600,
                "ChatGPT login is disabled. Use API key login instead."
            ),
            "{kind}"
        );
    }
    drop(s);
    let s = session(&issuer, &[]).await;
    let token = authbridge_testkit::Jwt::new().account("org-1").mint();
    s.login_external(&token, "org-1", None).await.unwrap();
    for kind in ["chatgpt", "chatgptDeviceCode"] {
        let e = s
            .host
            .request("account/login/start", json!({"type": kind}))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (-32600, "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it."),
            "{kind}"
        );
    }
    assert!(auth_json(s.home()).is_none());
    assert!(issuer.authorize_requests().is_empty());
    assert_eq!(issuer.device_codes(), Vec::<String>::new());
}

#[tokio::test]
async fn after_a_browser_sign_in_the_managed_refresh_uses_the_issuer() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let (id, url) = start(&s).await;
    browse(&url, WAIT).await.unwrap();
    assert_eq!(completed(&s.host, &id).await["success"], true);
    let first = issuer.issued().pop().unwrap();
    s.host
        .request("account/read", json!({"refreshToken": true}))
        .await
        .unwrap();
    let calls = issuer.token_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].grant_type, "refresh_token");
    assert_eq!(calls[1].params["refresh_token"], first.refresh_token);
    assert_eq!(calls[1].params["client_id"], CLIENT_ID);
    let second = issuer.issued().pop().unwrap();
    let stored = auth_json(s.home()).unwrap();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        json!(second.refresh_token)
    );
    assert_eq!(stored["tokens"]["access_token"], json!(second.access_token));
}

#[tokio::test]
async fn a_second_process_sharing_the_home_sees_the_sign_in() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    let mut overrides = authbridge_testkit::server::openai_overrides(&s.mock.url(), 500);
    overrides.extend(issuer_overrides(&issuer));
    let other = Host::spawn(
        authbridge_testkit::server::command(s.home(), &overrides),
        Default::default(),
    )
    .unwrap();
    other.initialize(json!({})).await.unwrap();
    let (id, url) = start(&s).await;
    browse(&url, WAIT).await.unwrap();
    assert_eq!(completed(&s.host, &id).await["success"], true);
    // The other process notices the new auth.json on its next use (a stat at most once a
    // second) and tells its host.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = other.request("account/read", json!({})).await.unwrap();
        if r["account"]["type"] == "chatgpt" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{r}");
        other
            .wait_message(
                |m| m["method"] == "account/updated",
                Duration::from_millis(250),
            )
            .await;
    }
    let updated = other
        .wait_message(|m| m["method"] == "account/updated", WAIT)
        .await
        .expect("account/updated in the other process");
    assert_eq!(updated["params"]["authMode"], "chatgpt");
    assert_eq!(updated["params"]["planType"], "plus");
}

#[tokio::test]
async fn a_failed_sign_in_leaves_an_existing_auth_json_as_it_was() {
    let issuer = MockIssuer::start().await.unwrap();
    let s = session(&issuer, &[]).await;
    s.host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-kept"}),
        )
        .await
        .unwrap();
    let before = std::fs::read(s.home().join("auth.json")).unwrap();
    for mode in [AuthorizeMode::Deny, AuthorizeMode::WrongState] {
        issuer.set_authorize(mode);
        let (id, url) = start(&s).await;
        browse(&url, WAIT).await.unwrap();
        assert_eq!(completed(&s.host, &id).await["success"], false);
    }
    issuer.set_authorize(AuthorizeMode::Approve);
    issuer.set_exchange(ExchangeMode::Fail {
        status: 500,
        code: "server_error".into(),
    });
    let (id, url) = start(&s).await;
    browse(&url, WAIT).await.unwrap();
    assert_eq!(completed(&s.host, &id).await["success"], false);
    assert_eq!(std::fs::read(s.home().join("auth.json")).unwrap(), before);
    let account = s.host.request("account/read", json!({})).await.unwrap();
    assert_eq!(account["account"], json!({"type": "apiKey"}));
}
