//! The reader side of the peer: lifecycle gating, framing, invalid input, dialect
//! mirroring, overload and barriers — over a duplex pipe with a test service.

use std::time::Duration;

use serde_json::json;

use super::test_support::{small, Host, TestService};
use super::PeerConfig;

#[tokio::test]
async fn a_request_is_answered_with_its_result() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"echo","params":{"x":[1,2]}}"#)
        .await;
    assert_eq!(host.recv().await, json!({"id":1,"result":{"x":[1,2]}}));
    host.close_input().await.unwrap();
}

#[tokio::test]
async fn requests_before_initialize_are_refused_with_not_initialized() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send(r#"{"id":1,"method":"echo"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"error":{"code":-32600,"message":"Not initialized"}})
    );
}

#[tokio::test]
async fn a_second_initialize_is_refused_with_already_initialized() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":2,"method":"initialize"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":2,"error":{"code":-32600,"message":"Already initialized"}})
    );
}

#[tokio::test]
async fn a_failed_initialize_leaves_the_connection_uninitialized() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send(r#"{"id":1,"method":"initialize","params":{"fail":true}}"#)
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"error":{"code":-32602,"message":"refused"}})
    );
    host.send(r#"{"id":2,"method":"echo"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":2,"error":{"code":-32600,"message":"Not initialized"}})
    );
    host.initialize().await;
}

#[tokio::test]
async fn notifications_before_initialize_are_ignored_and_after_it_handled_in_order() {
    let service = TestService::new();
    let mut host = Host::start(service.clone(), PeerConfig::default());
    host.send(r#"{"method":"test/note","params":{"seq":"early"}}"#)
        .await;
    host.initialize().await;
    for seq in 0..300 {
        host.send(&format!(
            r#"{{"method":"test/note","params":{{"seq":{seq}}}}}"#
        ))
        .await;
    }
    host.send(r#"{"id":1,"method":"echo"}"#).await;
    assert_eq!(host.recv().await, json!({"id":1,"result":null}));
    let expected: Vec<String> = (0..300)
        .map(|seq| format!(r#"test/note {{"seq":{seq}}}"#))
        .collect();
    assert_eq!(service.log(), expected);
}

#[tokio::test]
async fn unknown_methods_are_answered_with_method_not_found() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":7,"method":"no/such"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":7,"error":{"code":-32601,"message":"Method not found: no/such"}})
    );
}

#[tokio::test]
async fn an_oversized_line_is_refused_and_the_next_line_is_served() {
    let mut host = Host::with_buffer(TestService::new(), small(8, 1024), 4096);
    host.initialize().await;
    let huge = format!(
        r#"{{"id":1,"method":"echo","params":"{}"}}"#,
        "x".repeat(200_000)
    );
    host.send(&huge).await;
    host.send(r#"{"id":2,"method":"echo","params":"next"}"#)
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":null,"error":{"code":-32600,"message":"message too large: more than 1024 bytes"}})
    );
    assert_eq!(host.recv().await, json!({"id":2,"result":"next"}));
}

#[tokio::test]
async fn a_line_of_exactly_the_limit_is_accepted() {
    let mut host = Host::start(TestService::new(), small(8, 64));
    host.initialize().await;
    let line = format!(
        r#"{{"id":1,"method":"echo","params":"{}"}}"#,
        "y".repeat(28)
    );
    assert_eq!(line.len(), 64);
    host.send(&format!("{line}\r")).await;
    assert_eq!(host.recv().await, json!({"id":1,"result":"y".repeat(28)}));
}

#[tokio::test]
async fn garbage_and_invalid_utf8_are_parse_errors_and_serving_goes_on() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send("this is not json").await;
    host.send_raw(b"{\"id\":1,\"method\":\"echo\",\"params\":\"\xff\xfe\"}\n")
        .await;
    host.send("\n  \r\n").await;
    host.send(r#"{"id":2,"method":"echo","params":"fine"}"#)
        .await;
    let first = host.recv().await;
    assert_eq!(
        (&first["id"], &first["error"]["code"]),
        (&json!(null), &json!(-32700))
    );
    let second = host.recv().await;
    assert_eq!(
        (&second["id"], &second["error"]["code"]),
        (&json!(null), &json!(-32700))
    );
    assert_eq!(host.recv().await, json!({"id":2,"result":"fine"}));
}

#[tokio::test]
async fn a_batch_is_refused_with_id_null() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send(r#"[{"id":1,"method":"initialize"}]"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":null,"error":{"code":-32600,"message":"Invalid request: batches are not supported"}})
    );
}

#[tokio::test]
async fn an_invalid_message_with_a_readable_id_is_answered_with_that_id() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send(r#"{"id":5,"method":7}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":5,"error":{"code":-32600,"message":"Invalid request: `method` must be a string"}})
    );
}

#[tokio::test]
async fn content_length_framing_is_answered_in_content_length_framing() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    let init = r#"{"id":0,"method":"initialize"}"#;
    let echo = r#"{"id":1,"method":"echo","params":"cl"}"#;
    let input = format!(
        "\r\ncontent-LENGTH: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{init}Content-Length: {}\r\n\r\n{echo}",
        init.len(),
        echo.len()
    );
    // Byte by byte, so detection and every header straddle reads.
    for byte in input.as_bytes() {
        host.send_raw(&[*byte]).await;
    }
    let (header, body) = host.recv_framed().await;
    assert_eq!(body, json!({"id":0,"result":{"ok":true}}));
    assert_eq!(
        header,
        format!(
            "Content-Length: {}\r\n\r\n",
            r#"{"id":0,"result":{"ok":true}}"#.len()
        )
    );
    assert_eq!(host.recv_framed().await.1, json!({"id":1,"result":"cl"}));
}

#[tokio::test]
async fn a_malformed_header_block_is_a_parse_error_and_the_reader_resyncs() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    let init = r#"{"id":0,"method":"initialize"}"#;
    host.send_raw(format!("Content-Length: {}\r\n\r\n{init}", init.len()).as_bytes())
        .await;
    assert_eq!(
        host.recv_framed().await.1,
        json!({"id":0,"result":{"ok":true}})
    );
    host.send_raw(b"Content-Length: twelve\r\n\r\n").await;
    host.send_raw(b"Content-Type: text/plain\r\n\r\n").await;
    let echo = r#"{"id":1,"method":"echo","params":"again"}"#;
    host.send_raw(format!("Content-Length: {}\r\n\r\n{echo}", echo.len()).as_bytes())
        .await;
    // One error; the block without a length that follows is skipped by the resync,
    // which stops at the next `Content-Length:`.
    assert_eq!(
        host.recv_framed().await.1,
        json!({"id":null,"error":{"code":-32700,"message":"Parse error: Content-Length is not a non-negative integer"}})
    );
    assert_eq!(host.recv_framed().await.1, json!({"id":1,"result":"again"}));
}

#[tokio::test]
async fn an_oversized_content_length_body_is_skipped_exactly() {
    let mut host = Host::with_buffer(TestService::new(), small(8, 100), 4096);
    let init = r#"{"id":0,"method":"initialize"}"#;
    // The oversized body holds what looks like a header block: it must be skipped, not read.
    let body = format!("Content-Length: 2\r\n\r\n{}", "z".repeat(50_000));
    let echo = r#"{"id":1,"method":"echo"}"#;
    let input = format!(
        "Content-Length: {}\r\n\r\n{init}Content-Length: {}\r\n\r\n{body}Content-Length: {}\r\n\r\n{echo}",
        init.len(),
        body.len(),
        echo.len()
    );
    host.send_raw(input.as_bytes()).await;
    assert_eq!(
        host.recv_framed().await.1,
        json!({"id":0,"result":{"ok":true}})
    );
    assert_eq!(
        host.recv_framed().await.1,
        json!({"id":null,"error":{"code":-32600,"message":"message too large: more than 100 bytes"}})
    );
    assert_eq!(host.recv_framed().await.1, json!({"id":1,"result":null}));
}

#[tokio::test]
async fn the_jsonrpc_member_is_mirrored_when_the_first_object_carries_it() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize"}"#)
        .await;
    assert_eq!(
        host.recv().await,
        json!({"jsonrpc":"2.0","id":0,"result":{"ok":true}})
    );
    host.send(r#"{"id":1,"method":"after"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"jsonrpc":"2.0","id":1,"result":"after"})
    );
    assert_eq!(
        host.recv().await,
        json!({"jsonrpc":"2.0","method":"test/note","params":{"seq":1}})
    );
}

#[tokio::test]
async fn the_jsonrpc_member_is_omitted_when_the_first_object_lacks_it() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send("not json").await;
    host.send(r#"{"id":0,"method":"initialize"}"#).await;
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#)
        .await;
    let garbage = host.recv().await;
    assert_eq!(garbage.get("jsonrpc"), None);
    assert_eq!(host.recv().await, json!({"id":0,"result":{"ok":true}}));
    assert_eq!(host.recv().await, json!({"id":1,"result":null}));
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_refused_as_overloaded() {
    let service = TestService::new();
    let mut host = Host::start(service.clone(), small(2, 1024));
    host.initialize().await;
    host.send(r#"{"id":1,"method":"hold"}"#).await;
    host.send(r#"{"id":2,"method":"hold"}"#).await;
    host.send(r#"{"id":3,"method":"hold"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":3,"error":{"code":-32001,"message":"Server overloaded; retry later."}})
    );
    service.release.add_permits(2);
    let mut done = vec![host.recv().await, host.recv().await];
    done.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(
        done,
        vec![
            json!({"id":1,"result":"released"}),
            json!({"id":2,"result":"released"})
        ]
    );
    host.send(r#"{"id":4,"method":"echo"}"#).await;
    assert_eq!(host.recv().await, json!({"id":4,"result":null}));
}

#[tokio::test(start_paused = true)]
async fn a_barrier_finishes_before_the_next_message_is_dispatched() {
    let service = TestService::new();
    let mut host = Host::start(service.clone(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"slow","params":{"ms":100}}"#)
        .await;
    host.send(r#"{"id":2,"method":"record","params":"after the barrier"}"#)
        .await;
    assert_eq!(host.recv().await, json!({"id":1,"result":"slow"}));
    assert_eq!(
        host.recv().await,
        json!({"id":2,"result":"after the barrier"})
    );
    assert_eq!(
        service.log(),
        vec![
            "slow done".to_string(),
            r#"record "after the barrier""#.to_string()
        ]
    );
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_error_and_serving_goes_on() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"panic"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"error":{"code":-32603,"message":"Internal error: the request handler failed"}})
    );
    host.send(r#"{"id":2,"method":"echo"}"#).await;
    assert_eq!(host.recv().await, json!({"id":2,"result":null}));
}

#[tokio::test(start_paused = true)]
async fn serve_returns_within_the_grace_when_a_handler_never_finishes() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"hold"}"#).await;
    host.send(r#"{"id":2,"method":"echo"}"#).await;
    assert_eq!(host.recv().await, json!({"id":2,"result":null}));
    let started = tokio::time::Instant::now();
    host.close_input().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(host.rest().await, "");
}
