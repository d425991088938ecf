//! End to end, a provider bearer command (docs/protocol.md §5) and how provider failures reach the
//! turn (§6.2).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use authbridge_testkit::session::{failure_message, start_turn, wait_turn};
use authbridge_testkit::{Failure, Jwt, Session, SessionBuilder};
use serde_json::{json, Value};

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A token command that prints `corp-token-<n>` (with whitespace around it) and counts its
/// runs in `<dir>/runs`.
fn counting_token_command(dir: &Path) -> PathBuf {
    let runs = dir.join("runs");
    script(
        dir,
        "print-token.sh",
        &format!(
            "n=$(( $(cat '{runs}' 2>/dev/null || echo 0) + 1 ))\necho $n > '{runs}'\necho \"  corp-token-$n  \"",
            runs = runs.display()
        ),
    )
}

fn runs(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("runs"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

/// A session whose active provider is `corp` at the mock, authenticated by `command`.
async fn corp_session(valid: &[&str], command: &Path) -> Session {
    SessionBuilder::accepting(valid.iter().copied())
        .command_provider(command)
        .start()
        .await
}

#[tokio::test]
async fn a_bearer_command_token_is_cached_across_turns() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = counting_token_command(dir.path());
    let s = corp_session(&["corp-token-1"], &cmd).await;
    assert_eq!(s.turn("one").await["status"], "completed");
    assert_eq!(s.turn("two").await["status"], "completed");
    assert_eq!(runs(dir.path()), 1);
    let seen = s.mock.credentials_seen();
    let expected = (Some("Bearer corp-token-1".to_owned()), None);
    assert_eq!(seen, vec![expected.clone(), expected]);
}

#[tokio::test]
async fn a_401_re_runs_the_bearer_command_once_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = counting_token_command(dir.path());
    let s = corp_session(&["corp-token-2"], &cmd).await;
    let done = s.turn("hi").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(runs(dir.path()), 2);
    assert_eq!(
        s.mock.authorizations(),
        vec![
            Some("Bearer corp-token-1".to_owned()),
            Some("Bearer corp-token-2".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_second_401_after_the_re_run_fails_the_turn_without_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = counting_token_command(dir.path());
    let s = corp_session(&[], &cmd).await;
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("Your authentication token is not valid."),
        "{message}"
    );
    assert_eq!(runs(dir.path()), 2);
    assert_eq!(s.mock.request_count(), 2);
}

#[tokio::test]
async fn a_failing_bearer_command_fails_the_turn_with_its_stderr_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = script(
        dir.path(),
        "fail.sh",
        "echo 'VPN is not connected' >&2\nexit 3",
    );
    let s = corp_session(&[], &cmd).await;
    let message = failure_message(&s.turn("hi").await);
    let expected = format!(
        "provider auth command `{}` exited with status 3: VPN is not connected",
        cmd.display()
    );
    assert!(
        message.contains(&expected),
        "{message}\nexpected: {expected}"
    );
    assert_eq!(s.mock.request_count(), 0);
}

#[tokio::test]
async fn a_bearer_command_that_prints_nothing_fails_the_turn_as_an_empty_token() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = script(dir.path(), "empty.sh", "echo '   '");
    let s = corp_session(&[], &cmd).await;
    let message = failure_message(&s.turn("hi").await);
    assert!(message.contains("produced an empty token"), "{message}");
    assert_eq!(s.mock.request_count(), 0);
}

#[tokio::test]
async fn a_custom_provider_never_receives_the_account_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = counting_token_command(dir.path());
    let s = corp_session(&["corp-token-1"], &cmd).await;
    let chatgpt = Jwt::new()
        .account("org-1")
        .exp_in(Duration::from_secs(3600))
        .mint();
    s.login_external(&chatgpt, "org-1", None).await.unwrap();
    assert_eq!(s.turn("hi").await["status"], "completed");
    let r = &s.mock.requests()[0];
    assert_eq!(
        (r.authorization.as_deref(), r.account_id.as_deref()),
        (Some("Bearer corp-token-1"), None)
    );
}

// ---- provider failures reach the turn ----

async fn api_key_session() -> Session {
    SessionBuilder::default().api_key("sk-test").start().await
}

#[tokio::test]
async fn model_list_answers_the_providers_models() {
    let s = api_key_session().await;
    let list = s.host.request("model/list", json!({})).await.unwrap();
    let ids: Vec<(&str, &str, bool)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap(),
                m["displayName"].as_str().unwrap(),
                m["isDefault"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("gpt-5", "gpt-5", true),
            ("gpt-5-mini", "gpt-5-mini", false)
        ]
    );
    assert_eq!(list["nextCursor"], Value::Null);
    assert_eq!(s.mock.requests()[0].path, "/v1/models");
    // A page at a time: the cursor of the first page leads to the second.
    let first = s
        .host
        .request("model/list", json!({"limit": 1}))
        .await
        .unwrap();
    assert_eq!(first["data"][0]["id"], "gpt-5");
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let second = s
        .host
        .request("model/list", json!({"limit": 1, "cursor": cursor}))
        .await
        .unwrap();
    assert_eq!(second["data"][0]["id"], "gpt-5-mini");
    assert_eq!(second["nextCursor"], Value::Null);
}

#[tokio::test]
async fn a_provider_error_with_a_json_body_fails_the_turn_with_its_message_and_status() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::Status {
        status: 500,
        body: r#"{"error":{"message":"the model crashed"}}"#.into(),
    });
    let done = s.turn("hi").await;
    assert_eq!(done["error"]["message"], "the model crashed", "{done}");
    assert_eq!(
        done["error"]["codexErrorInfo"], "internalServerError",
        "{done}"
    );
}

#[tokio::test]
async fn a_provider_error_without_json_names_the_status_and_the_body() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::Status {
        status: 503,
        body: "upstream busy".into(),
    });
    let done = s.turn("hi").await;
    assert_eq!(
        failure_message(&done),
        "provider returned HTTP 503: upstream busy"
    );
}

#[tokio::test]
async fn a_stream_that_ends_early_fails_the_turn() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::EndEarly { deltas: 2 });
    assert_eq!(
        failure_message(&s.turn("hi").await),
        "stream ended before response.completed"
    );
}

#[tokio::test]
async fn response_failed_fails_the_turn_with_the_providers_message() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::ResponseFailed {
        message: "context too long".into(),
    });
    assert_eq!(failure_message(&s.turn("hi").await), "context too long");
}

#[tokio::test]
async fn an_api_key_401_has_no_recovery() {
    let s = api_key_session().await;
    s.mock.set_valid_tokens(Vec::<String>::new());
    let message = failure_message(&s.turn("hi").await);
    assert!(
        message.contains("Your authentication token is not valid."),
        "{message}"
    );
    assert_eq!(s.mock.request_count(), 1);
}

#[tokio::test]
async fn an_interrupted_turn_completes_as_interrupted_with_the_text_so_far() {
    let s = api_key_session().await;
    s.mock.set_delta_delay(Duration::from_millis(300));
    let turn = start_turn(&s.host, "hi").await;
    s.host
        .wait_message(
            |m| m["method"] == "item/agentMessage/delta",
            Duration::from_secs(5),
        )
        .await
        .expect("a delta");
    let thread = s
        .host
        .notifications()
        .iter()
        .find(|m| m["method"] == "turn/started" && m["params"]["turn"]["id"] == turn)
        .map(|m| m["params"]["threadId"].clone())
        .expect("turn/started");
    assert_eq!(
        s.host
            .request(
                "turn/interrupt",
                json!({"threadId": thread, "turnId": turn})
            )
            .await,
        Ok(json!({}))
    );
    let done = wait_turn(&s.host, &turn).await;
    assert_eq!(done["status"], "interrupted", "{done}");
    assert!(
        done["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Hello")),
        "{done}"
    );
}
