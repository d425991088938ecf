//! End to end, the real `authbridge` over pipes: framing, handshake gating and the error
//! codes of docs/protocol.md §1–§2.

use std::time::Duration;

use authbridge_protocol::ErrorObject;
use authbridge_testkit::wire::{Decoder, Frame, Framing};
use authbridge_testkit::{HostOptions, SessionBuilder};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(5);

fn uninitialized() -> SessionBuilder {
    SessionBuilder {
        initialize: None,
        ..SessionBuilder::default()
    }
}

fn expected_initialize_result(home: &std::path::Path) -> Value {
    json!({
        "userAgent": format!("authbridge/0.1.0 ({}; {}) host_sim/0.1.0", authbridge_testkit::server::server_os(), std::env::consts::ARCH),
        "codexHome": authbridge_testkit::server::server_path(home),
        "platformFamily": if authbridge_testkit::server::server_os() == "windows" { "windows" } else { "unix" },
        "platformOs": authbridge_testkit::server::server_os(),
        "serverInfo": {"name": "authbridge", "version": "0.1.0"}
    })
}

fn err(code: i64, message: &str) -> ErrorObject {
    ErrorObject::new(code, message)
}

#[tokio::test]
async fn initialize_over_newline_delimited_json_answers_the_user_agent_and_server_info() {
    let s = uninitialized().start().await;
    let result = s.host.initialize(json!({"experimentalApi": true})).await;
    assert_eq!(result, Ok(expected_initialize_result(s.home())));
    assert!(
        s.host.stdout_bytes().starts_with(b"{"),
        "answered in NDJSON"
    );
}

#[tokio::test]
async fn initialize_over_content_length_framing_is_answered_in_that_framing() {
    let s = SessionBuilder {
        initialize: None,
        host: HostOptions {
            framing: Framing::ContentLength,
            ..HostOptions::default()
        },
        ..SessionBuilder::default()
    }
    .start()
    .await;
    assert_eq!(
        s.host.initialize(json!({})).await,
        Ok(expected_initialize_result(s.home()))
    );
    let out = s.host.stdout_bytes();
    assert!(
        out.starts_with(b"Content-Length: "),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        s.host.request("account/read", json!({})).await.map(|_| ()),
        Ok(())
    );
}

#[tokio::test]
async fn a_request_before_initialize_is_refused_as_not_initialized() {
    let s = uninitialized().start().await;
    assert_eq!(
        s.host.request("account/read", json!({})).await,
        Err(err(-32600, "Not initialized"))
    );
    assert_eq!(
        s.host.initialize(json!({})).await,
        Ok(expected_initialize_result(s.home()))
    );
}

#[tokio::test]
async fn a_second_initialize_is_refused_as_already_initialized() {
    let s = SessionBuilder::default().start().await;
    let again = s
        .host
        .request(
            "initialize",
            json!({"clientInfo": {"name": "x", "version": "1"}}),
        )
        .await;
    assert_eq!(again, Err(err(-32600, "Already initialized")));
}

#[tokio::test]
async fn bytes_that_are_not_json_get_a_parse_error_with_a_null_id_and_the_server_keeps_serving() {
    let s = SessionBuilder::default().start().await;
    s.host.write_raw(b"{this is not json\n").await.unwrap();
    let parse_error = s
        .host
        .wait_message(|m| m["error"]["code"] == -32700, T)
        .await
        .expect("a -32700 answer");
    assert_eq!(parse_error["id"], Value::Null);
    assert!(parse_error["error"]["message"].is_string());
    assert!(s.host.request("account/read", json!({})).await.is_ok());
}

#[tokio::test]
async fn an_unknown_method_is_method_not_found_naming_it() {
    let s = SessionBuilder::default().start().await;
    assert_eq!(
        s.host.request("x", json!({})).await,
        Err(err(-32601, "Method not found: x"))
    );
}

#[tokio::test]
async fn params_that_do_not_match_are_invalid_params_naming_the_field() {
    let s = SessionBuilder::default().start().await;
    let missing = s
        .host
        .request("account/login/start", json!({"type": "apiKey"}))
        .await
        .unwrap_err();
    assert_eq!(missing.code, -32602);
    assert!(missing.message.contains("apiKey"), "{missing:?}");
    let wrong_type = s
        .host
        .request("turn/start", json!({"input": 5}))
        .await
        .unwrap_err();
    assert_eq!(wrong_type.code, -32602);
    assert!(wrong_type.message.contains("input"), "{wrong_type:?}");
}

#[tokio::test]
async fn the_jsonrpc_member_is_mirrored_only_when_the_host_sent_it() {
    let with = SessionBuilder {
        host: HostOptions {
            jsonrpc: true,
            ..HostOptions::default()
        },
        ..SessionBuilder::default()
    }
    .start()
    .await;
    with.host.request("account/read", json!({})).await.unwrap();
    assert!(
        with.host.messages().iter().all(|m| m["jsonrpc"] == "2.0"),
        "{:?}",
        with.host.messages()
    );

    let without = SessionBuilder::default().start().await;
    without
        .host
        .request("account/read", json!({}))
        .await
        .unwrap();
    assert!(
        without
            .host
            .messages()
            .iter()
            .all(|m| m.get("jsonrpc").is_none()),
        "{:?}",
        without.host.messages()
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_and_the_next_one_is_served() {
    let s = SessionBuilder::default()
        .config("max_message_bytes=1024")
        .start()
        .await;
    let big = format!(
        "{{\"id\":99,\"method\":\"account/read\",\"params\":{{\"pad\":\"{}\"}}}}\n",
        "x".repeat(2000)
    );
    s.host.write_raw(big.as_bytes()).await.unwrap();
    let refused = s
        .host
        .wait_message(|m| m["error"]["code"] == -32600, T)
        .await
        .expect("a -32600 answer");
    assert_eq!(
        refused,
        json!({"id": null, "error": {"code": -32600, "message": "message too large: more than 1024 bytes"}})
    );
    assert!(s.host.request("account/read", json!({})).await.is_ok());
}

#[tokio::test]
async fn a_batch_is_refused_with_one_invalid_request_error() {
    let s = SessionBuilder::default().start().await;
    s.host
        .write_raw(b"[{\"id\":50,\"method\":\"account/read\"}]\n")
        .await
        .unwrap();
    let refused = s
        .host
        .wait_message(|m| m["error"]["code"] == -32600, T)
        .await
        .expect("a -32600 answer");
    assert_eq!(refused["id"], Value::Null);
}

#[tokio::test]
async fn every_byte_on_stdout_is_a_protocol_message() {
    let mut s = SessionBuilder::default().start().await;
    s.host.request("account/read", json!({})).await.unwrap();
    let _ = s.host.request("nope", json!({})).await;
    s.host.write_raw(b"garbage\n").await.unwrap();
    s.host
        .wait_message(|m| m["error"]["code"] == -32700, T)
        .await
        .expect("a -32700 answer");
    let _ = s
        .host
        .request(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-test"}),
        )
        .await;
    s.host.close_stdin().await;
    assert!(s.host.wait_exit(T).await.is_some_and(|st| st.success()));
    let out = s.host.stdout_bytes();
    let mut decoder = Decoder::new();
    let frames = decoder.push(&out);
    assert!(
        decoder.leftover().is_empty(),
        "trailing bytes: {:?}",
        String::from_utf8_lossy(decoder.leftover())
    );
    assert!(frames.len() >= 5, "{frames:?}");
    for frame in frames {
        match frame {
            Frame::Message(m) => assert!(m.get("id").is_some() || m.get("method").is_some(), "{m}"),
            Frame::NotJson(bytes) => panic!("not protocol: {}", String::from_utf8_lossy(&bytes)),
        }
    }
}

#[tokio::test]
async fn closing_stdin_ends_the_process_with_status_zero() {
    let mut s = SessionBuilder::default().start().await;
    s.host.close_stdin().await;
    let status = s.host.wait_exit(Duration::from_secs(2)).await;
    assert!(status.is_some_and(|st| st.success()), "{status:?}");
}

#[tokio::test]
async fn a_line_that_is_not_utf8_gets_a_parse_error_and_the_server_keeps_serving() {
    let s = SessionBuilder::default().start().await;
    s.host
        .write_raw(b"{\"id\":1,\"method\":\"\xff\xfe\"}\n")
        .await
        .unwrap();
    let parse_error = s
        .host
        .wait_message(|m| m["error"]["code"] == -32700, T)
        .await
        .expect("a -32700 answer");
    assert_eq!(parse_error["id"], Value::Null);
    assert!(s.host.request("account/read", json!({})).await.is_ok());
}

#[tokio::test]
async fn a_malformed_header_block_gets_a_parse_error_and_the_next_framed_message_is_served() {
    let s = SessionBuilder {
        host: HostOptions {
            framing: Framing::ContentLength,
            ..HostOptions::default()
        },
        ..SessionBuilder::default()
    }
    .start()
    .await;
    s.host
        .write_raw(b"Content-Length: banana\r\n\r\n")
        .await
        .unwrap();
    let parse_error = s
        .host
        .wait_message(|m| m["error"]["code"] == -32700, T)
        .await
        .expect("a -32700 answer");
    assert_eq!(parse_error["id"], Value::Null);
    assert!(s.host.request("account/read", json!({})).await.is_ok());
}
