//! End to end, the host refresh bridge (docs/protocol.md §3.5, §3.6, §4.3): a 401 with external
//! tokens asks the host once, retries once, and every failure names its cause.

use std::time::{Duration, Instant};

use authbridge_testkit::session::{
    failure_message, files_containing, start_thread, start_turn, start_turns_together,
    streamed_text, wait_turn,
};
use authbridge_testkit::{HostOptions, Jwt, MockOptions, RefreshPolicy, Session, SessionBuilder};
use serde_json::{json, Value};

fn jwt(account: &str, tag: &str) -> String {
    Jwt::new()
        .email("user@example.com")
        .account(account)
        .plan("pro")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!(tag))
        .mint()
}

/// A session whose mock accepts only `valid`, with this refresh policy.
async fn session(valid: &[&str], policy: RefreshPolicy) -> Session {
    session_with(valid, policy, SessionBuilder::default()).await
}

async fn session_with(valid: &[&str], policy: RefreshPolicy, base: SessionBuilder) -> Session {
    SessionBuilder {
        mock: MockOptions {
            valid_tokens: valid.iter().map(|s| s.to_string()).collect(),
            ..base.mock.clone()
        },
        host: HostOptions {
            refresh: policy,
            ..base.host.clone()
        },
        ..base
    }
    .start()
    .await
}

async fn current_token(s: &Session) -> Value {
    let status = s.auth_status().await;
    status["authToken"].clone()
}

#[tokio::test]
async fn a_401_asks_the_host_once_and_the_retry_with_the_new_token_streams_the_answer() {
    let (old, new) = (jwt("org-1", "old"), jwt("org-1", "new"));
    let s = session(&[&new], RefreshPolicy::tokens(&new, "org-1", Some("pro"))).await;
    s.login_external(&old, "org-1", Some("pro")).await.unwrap();
    let turn = start_turn(&s.host, "say hello").await;
    let done = wait_turn(&s.host, &turn).await;
    assert_eq!(
        done,
        json!({"turnId": turn, "status": "completed", "text": "Hello, world!"})
    );
    assert_eq!(streamed_text(&s.host, &turn), "Hello, world!");

    let seen = s.mock.credentials_seen();
    assert_eq!(
        seen,
        vec![
            (Some(format!("Bearer {old}")), Some("org-1".into())),
            (Some(format!("Bearer {new}")), Some("org-1".into())),
        ]
    );
    let asked: Vec<Value> = s
        .host
        .refresh_requests()
        .into_iter()
        .map(|r| r.params)
        .collect();
    assert_eq!(
        asked,
        vec![json!({"reason": "unauthorized", "previousAccountId": "org-1"})]
    );
    assert_eq!(current_token(&s).await, json!(new));
    let body = &s.mock.requests()[1].body;
    assert_eq!(
        body,
        &json!({
            "model": "gpt-5",
            "input": [{"type": "message", "role": "user",
                       "content": [{"type": "input_text", "text": "say hello"}]}],
            "stream": true,
            "store": false,
        })
    );
}

#[tokio::test]
async fn a_refresh_with_the_same_account_and_plan_sends_no_account_updated() {
    let (old, new) = (jwt("org-1", "old"), jwt("org-1", "new"));
    let s = session(&[&new], RefreshPolicy::tokens(&new, "org-1", Some("pro"))).await;
    s.login_external(&old, "org-1", Some("pro")).await.unwrap();
    s.host
        .next_notification("account/updated", Duration::from_secs(5))
        .await
        .expect("login's update");
    let done = s.turn("hi").await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        s.host
            .next_notification("account/updated", Duration::from_millis(200))
            .await,
        None
    );
}

#[tokio::test]
async fn a_host_error_fails_the_turn_with_its_code_and_message_and_keeps_the_credentials() {
    let old = jwt("org-1", "old");
    let s = session(&[], RefreshPolicy::error(-32000, "user cancelled sign-in")).await;
    s.login_external(&old, "org-1", None).await.unwrap();
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("auth refresh request failed: code=-32000 message=user cancelled sign-in"),
        "{message}"
    );
    assert_eq!(current_token(&s).await, json!(old));
}

#[tokio::test]
async fn a_host_error_message_is_redacted_and_cut_before_it_reaches_the_turn() {
    let leaked = jwt("org-1", "leaked");
    let long = format!("{} token {leaked} key sk-abcdef", "x".repeat(150));
    let s = session(&[], RefreshPolicy::error(-1, &long)).await;
    s.login_external(&jwt("org-1", "old"), "org-1", None)
        .await
        .unwrap();
    let message = failure_message(&s.turn("hi").await);
    assert!(!message.contains(&leaked), "{message}");
    assert!(!message.contains("sk-abcdef"), "{message}");
    assert!(!s.host.stderr_text().contains(&leaked));
}

#[tokio::test]
async fn a_workspace_outside_the_forced_one_fails_the_turn_and_changes_nothing() {
    let old = jwt("org-1", "old");
    let other = jwt("org-2", "other");
    let base = SessionBuilder::default().config("forced_chatgpt_workspace_id=org-1");
    let s = session_with(
        &[&other],
        RefreshPolicy::tokens(&other, "org-2", None),
        base,
    )
    .await;
    s.login_external(&old, "org-1", None).await.unwrap();
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("external auth refresh returned workspace \"org-2\", expected \"org-1\""),
        "{message}"
    );
    assert_eq!(current_token(&s).await, json!(old));
    assert_eq!(s.mock.request_count(), 1);
}

#[tokio::test]
async fn an_answer_that_is_not_a_jwt_fails_the_turn_as_an_invalid_response() {
    let old = jwt("org-1", "old");
    let s = session(&[], RefreshPolicy::not_a_jwt("org-1")).await;
    s.login_external(&old, "org-1", None).await.unwrap();
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("invalid auth refresh response: "),
        "{message}"
    );
    assert_eq!(current_token(&s).await, json!(old));
}

#[tokio::test]
async fn a_garbage_answer_fails_the_turn_as_an_invalid_response() {
    let s = session(&[], RefreshPolicy::garbage()).await;
    s.login_external(&jwt("org-1", "old"), "org-1", None)
        .await
        .unwrap();
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("invalid auth refresh response: "),
        "{message}"
    );
}

#[tokio::test]
async fn a_silent_host_fails_the_turn_at_the_refresh_deadline() {
    let old = jwt("org-1", "old");
    let s = session(&[], RefreshPolicy::silence()).await;
    s.login_external(&old, "org-1", None).await.unwrap();
    let started = Instant::now();
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("auth refresh request timed out after 500ms"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(current_token(&s).await, json!(old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_401s_on_one_token_cost_one_refresh_and_all_turns_complete() {
    let (old, new) = (jwt("org-1", "old"), jwt("org-1", "new"));
    let policy =
        RefreshPolicy::tokens(&new, "org-1", Some("pro")).delay(Duration::from_millis(100));
    let s = session(&[&new], policy).await;
    s.login_external(&old, "org-1", Some("pro")).await.unwrap();
    let mut threads = Vec::new();
    for _ in 0..50 {
        threads.push(start_thread(&s.host).await);
    }
    let ids = start_turns_together(&s.host, &threads, "turn").await;
    for id in &ids {
        let done = wait_turn(&s.host, id).await;
        assert_eq!(
            done,
            json!({"turnId": id, "status": "completed", "text": "Hello, world!"})
        );
    }
    assert_eq!(s.host.refresh_requests().len(), 1);
    let with_new = s
        .mock
        .authorizations()
        .iter()
        .filter(|a| a.as_deref() == Some(&format!("Bearer {new}")))
        .count();
    assert_eq!(with_new, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_silent_host_fifty_waiting_turns_fail_together_at_the_one_deadline() {
    let s = session(&[], RefreshPolicy::silence()).await;
    s.login_external(&jwt("org-1", "old"), "org-1", None)
        .await
        .unwrap();
    // The threads first, so the fifty turns start as close together as the host can send.
    let mut threads = Vec::new();
    for _ in 0..50 {
        threads.push(start_thread(&s.host).await);
    }
    let started = Instant::now();
    let ids = start_turns_together(&s.host, &threads, "turn").await;
    for id in &ids {
        let message = failure_message(&wait_turn(&s.host, id).await);
        assert!(
            message.contains("auth refresh request timed out after 500ms"),
            "{message}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.host.refresh_requests().len(), 1);
}

#[tokio::test]
async fn the_host_closing_stdin_during_a_refresh_ends_the_process_with_status_zero_within_two_seconds(
) {
    let mut s = SessionBuilder {
        refresh_timeout_ms: 10_000,
        mock: MockOptions::with_tokens(Vec::<String>::new()),
        host: HostOptions {
            refresh: RefreshPolicy::silence(),
            ..HostOptions::default()
        },
        ..SessionBuilder::default()
    }
    .start()
    .await;
    s.login_external(&jwt("org-1", "old"), "org-1", None)
        .await
        .unwrap();
    start_turn(&s.host, "hi").await;
    assert!(
        s.host
            .wait_refresh_requests(1, Duration::from_secs(5))
            .await,
        "no refresh request"
    );
    let started = Instant::now();
    s.host.close_stdin().await;
    let status = s.host.wait_exit(Duration::from_secs(2)).await;
    assert!(
        status.is_some_and(|st| st.success()),
        "{status:?} after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn proactive_refresh_asks_with_expiring_soon_before_the_request_when_the_host_opted_in() {
    let soon = Jwt::new()
        .account("org-1")
        .plan("pro")
        .exp_in(Duration::from_secs(60))
        .mint();
    let fresh = jwt("org-1", "fresh");
    let base = SessionBuilder {
        initialize: Some(json!({"proactiveTokenRefresh": true})),
        ..SessionBuilder::default()
    };
    let s = session_with(
        &[&soon, &fresh],
        RefreshPolicy::tokens(&fresh, "org-1", Some("pro")),
        base,
    )
    .await;
    s.login_external(&soon, "org-1", Some("pro")).await.unwrap();
    assert_eq!(s.turn("hi").await["status"], "completed");
    let asked: Vec<Value> = s
        .host
        .refresh_requests()
        .into_iter()
        .map(|r| r.params)
        .collect();
    assert_eq!(
        asked,
        vec![json!({"reason": "expiringSoon", "previousAccountId": "org-1"})]
    );
    assert_eq!(
        s.mock.authorizations(),
        vec![Some(format!("Bearer {fresh}"))]
    );
}

#[tokio::test]
async fn without_the_opt_in_an_expiring_token_is_used_as_it_is() {
    let soon = Jwt::new()
        .account("org-1")
        .plan("pro")
        .exp_in(Duration::from_secs(60))
        .mint();
    let s = session(
        &[&soon],
        RefreshPolicy::tokens(&jwt("org-1", "x"), "org-1", None),
    )
    .await;
    s.login_external(&soon, "org-1", Some("pro")).await.unwrap();
    assert_eq!(s.turn("hi").await["status"], "completed");
    assert_eq!(s.host.refresh_requests(), vec![]);
    assert_eq!(
        s.mock.authorizations(),
        vec![Some(format!("Bearer {soon}"))]
    );
}

#[tokio::test]
async fn external_tokens_never_touch_the_disk() {
    let (old, new) = (jwt("org-1", "old"), jwt("org-1", "new"));
    let s = session(&[&new], RefreshPolicy::tokens(&new, "org-1", Some("pro"))).await;
    s.login_external(&old, "org-1", Some("pro")).await.unwrap();
    assert_eq!(s.turn("hi").await["status"], "completed");
    s.host
        .request("account/read", json!({"refreshToken": true}))
        .await
        .unwrap();
    s.host.request("account/logout", json!({})).await.unwrap();
    for token in [&old, &new] {
        let payload = token.split('.').nth(1).unwrap();
        assert_eq!(
            files_containing(s.home(), token.as_bytes()),
            Vec::<std::path::PathBuf>::new()
        );
        assert_eq!(
            files_containing(s.home(), payload.as_bytes()),
            Vec::<std::path::PathBuf>::new()
        );
    }
    assert!(!s.home().join("auth.json").exists());
}

#[tokio::test]
async fn a_new_login_while_a_refresh_is_pending_wins_and_the_waiting_turn_uses_it() {
    let (old, switched) = (jwt("org-1", "old"), jwt("org-2", "switched"));
    let s = SessionBuilder {
        refresh_timeout_ms: 5_000,
        mock: MockOptions::with_tokens([switched.clone()]),
        host: HostOptions {
            refresh: RefreshPolicy::silence(),
            ..HostOptions::default()
        },
        ..SessionBuilder::default()
    }
    .start()
    .await;
    s.login_external(&old, "org-1", None).await.unwrap();
    let turn = start_turn(&s.host, "hi").await;
    assert!(
        s.host
            .wait_refresh_requests(1, Duration::from_secs(5))
            .await
    );
    s.login_external(&switched, "org-2", None).await.unwrap();
    let done = wait_turn(&s.host, &turn).await;
    assert_eq!(
        done,
        json!({"turnId": turn, "status": "completed", "text": "Hello, world!"})
    );
    assert_eq!(
        s.mock.requests().last().unwrap().account_id.as_deref(),
        Some("org-2")
    );
}
