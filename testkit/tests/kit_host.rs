//! The host simulator against a real process: `cat` echoes every message back, so a request
//! comes back as a server request, the simulator answers it, and the answer comes back as
//! the response to the original request.

use std::time::Duration;

use authbridge_testkit::wire::Framing;
use authbridge_testkit::{Host, HostOptions, Jwt, RefreshPolicy, RefreshReply};
use serde_json::json;
use tokio::process::Command;

const T: Duration = Duration::from_secs(5);

fn cat(opts: HostOptions) -> Host {
    Host::spawn(Command::new("cat"), opts).unwrap()
}

fn refresh_request(id: i64) -> serde_json::Value {
    json!({"id": id, "method": "account/chatgptAuthTokens/refresh", "params": {"reason": "unauthorized", "previousAccountId": "org-1"}})
}

#[tokio::test]
async fn an_unknown_server_request_is_answered_with_method_not_found() {
    let host = cat(HostOptions::default());
    let error = host.request("x/y", json!({})).await.unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (-32601, "Method not found: x/y")
    );
}

#[tokio::test]
async fn refresh_requests_are_recorded_and_answered_by_the_policy_in_both_framings() {
    for framing in [Framing::Ndjson, Framing::ContentLength] {
        let jwt = Jwt::new().account("org-1").mint();
        let host = cat(HostOptions {
            framing,
            refresh: RefreshPolicy::tokens(&jwt, "org-1", Some("pro")),
            ..HostOptions::default()
        });
        let response = host.call_message(refresh_request(100), T).await.unwrap();
        assert_eq!(
            response,
            json!({"id": 100, "result": {"accessToken": jwt, "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}})
        );
        let seen = host.refresh_requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].params,
            json!({"reason": "unauthorized", "previousAccountId": "org-1"})
        );
        assert!(host.non_protocol_output().is_empty());
    }
}

#[tokio::test]
async fn a_queue_policy_answers_in_order_and_errors_come_back_as_errors() {
    let host = cat(HostOptions {
        refresh: RefreshPolicy::queue([
            RefreshReply::Error {
                code: -32000,
                message: "user signed out".into(),
            },
            RefreshReply::tokens("t2", "org-1", None),
        ]),
        ..HostOptions::default()
    });
    let first = host.call_message(refresh_request(1), T).await.unwrap();
    assert_eq!(
        first,
        json!({"id": 1, "error": {"code": -32000, "message": "user signed out"}})
    );
    let second = host.call_message(refresh_request(2), T).await.unwrap();
    assert_eq!(second["result"]["accessToken"], "t2");
}

#[tokio::test]
async fn silence_means_no_answer_and_the_wait_ends_at_its_deadline() {
    let host = cat(HostOptions {
        refresh: RefreshPolicy::silence(),
        ..HostOptions::default()
    });
    let started = std::time::Instant::now();
    let err = host
        .call_message(refresh_request(3), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no response to account/chatgptAuthTokens/refresh within"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(host.wait_refresh_requests(1, T).await);
}

#[tokio::test]
async fn a_delayed_policy_answers_after_the_delay() {
    let host = cat(HostOptions {
        refresh: RefreshPolicy::tokens("t", "org-1", None).delay(Duration::from_millis(150)),
        ..HostOptions::default()
    });
    let started = std::time::Instant::now();
    host.call_message(refresh_request(4), T).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn notifications_are_queued_by_method_and_taken_once() {
    let host = cat(HostOptions::default());
    host.notify("item/agentMessage/delta", Some(json!({"delta": "a"})))
        .await
        .unwrap();
    host.notify("turn/completed", Some(json!({"status": "completed"})))
        .await
        .unwrap();
    let completed = host.next_notification("turn/completed", T).await;
    assert_eq!(
        completed,
        Some(json!({"method": "turn/completed", "params": {"status": "completed"}}))
    );
    assert_eq!(
        host.next_notification("item/agentMessage/delta", T)
            .await
            .unwrap()["params"],
        json!({"delta": "a"})
    );
    assert_eq!(
        host.next_notification("item/agentMessage/delta", Duration::from_millis(50))
            .await,
        None
    );
    assert_eq!(host.notifications().len(), 2);
}

#[tokio::test]
async fn the_transcript_shows_arrows_and_fingerprints_never_tokens() {
    let jwt = Jwt::new().account("org-1").mint();
    let host = cat(HostOptions {
        refresh: RefreshPolicy::tokens(&jwt, "org-1", None),
        ..HostOptions::default()
    });
    host.call_message(refresh_request(5), T).await.unwrap();
    let transcript = host.transcript();
    assert!(transcript.contains("→ {\"id\":5"), "{transcript}");
    assert!(transcript.contains("← {\"id\":5"), "{transcript}");
    assert!(transcript.contains("<jwt:"), "{transcript}");
    assert!(!transcript.contains(&jwt), "{transcript}");
}

#[tokio::test]
async fn jsonrpc_mode_adds_the_member_to_every_message() {
    let host = cat(HostOptions {
        jsonrpc: true,
        ..HostOptions::default()
    });
    host.notify("n", None).await.unwrap();
    let echoed = host.next_notification("n", T).await.unwrap();
    assert_eq!(echoed, json!({"jsonrpc": "2.0", "method": "n"}));
}

#[tokio::test]
async fn raw_mode_keeps_the_bytes_and_closing_stdin_ends_the_process() {
    let mut host = cat(HostOptions {
        raw: true,
        ..HostOptions::default()
    });
    host.write_raw(b"not json at all\n").await.unwrap();
    assert!(host.wait_stdout_len(16, T).await);
    assert_eq!(host.stdout_bytes(), b"not json at all\n");
    assert!(host.messages().is_empty());
    host.close_stdin().await;
    let status = host
        .wait_exit(T)
        .await
        .expect("cat exits when stdin closes");
    assert!(status.success());
}
