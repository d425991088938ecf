//! Tests of the envelope: classification of incoming frames and serialisation.

use super::*;
use serde_json::json;

fn parse_ok(text: &str) -> Parsed {
    Message::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text} did not parse: {e:?}"))
}

fn parse_err(text: &[u8]) -> Invalid {
    match Message::parse(text) {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_request_with_an_integer_id_is_a_request() {
    let p = parse_ok(r#"{"id":0,"method":"initialize","params":{"a":1}}"#);
    let Message::Request(r) = p.message else {
        panic!("not a request")
    };
    assert_eq!(r.id, RequestId::Integer(0));
    assert_eq!(r.method, "initialize");
    assert_eq!(r.params.unwrap().get(), r#"{"a":1}"#);
    assert!(!p.has_jsonrpc);
}

#[test]
fn a_string_id_and_the_jsonrpc_member_are_kept() {
    let p = parse_ok(r#"{"jsonrpc":"2.0","id":"abc","method":"x"}"#);
    assert!(p.has_jsonrpc);
    let Message::Request(r) = p.message else {
        panic!("not a request")
    };
    assert_eq!(r.id, RequestId::String("abc".into()));
    assert!(r.params.is_none());
}

#[test]
fn a_message_without_id_is_a_notification() {
    let p = parse_ok(r#"{"method":"initialized"}"#);
    assert!(matches!(p.message, Message::Notification(n) if n.method == "initialized"));
}

#[test]
fn results_and_errors_are_responses() {
    let p = parse_ok(r#"{"id":7,"result":null}"#);
    let Message::Response(r) = p.message else {
        panic!("not a response")
    };
    assert_eq!(r.id, Some(RequestId::Integer(7)));
    assert_eq!(r.result.unwrap().get(), "null");

    let p = parse_ok(r#"{"id":8,"error":{"code":-1,"message":"no"}}"#);
    let Message::Response(r) = p.message else {
        panic!("not a response")
    };
    assert_eq!(r.result.unwrap_err(), ErrorObject::new(-1, "no"));
}

#[test]
fn bytes_that_are_not_json_are_a_parse_error_with_no_id() {
    for bad in [
        &b"{not json"[..],
        b"garbage",
        b"{\"id\":1,\"method\":\"\xff\"}",
        b"",
    ] {
        let e = parse_err(bad);
        assert_eq!(e.error.code, codes::PARSE_ERROR, "{bad:?}");
        assert_eq!(e.id, None);
    }
}

#[test]
fn a_batch_is_an_invalid_request() {
    let e = parse_err(br#"[{"id":1,"method":"x"}]"#);
    assert_eq!(e.error.code, codes::INVALID_REQUEST);
    assert!(e.error.message.contains("batch"), "{}", e.error.message);
}

#[test]
fn json_that_is_not_a_message_is_an_invalid_request() {
    for bad in [
        &br#"42"#[..],
        br#"{"foo":1}"#,
        br#"{"id":{},"method":"x"}"#,
        br#"{"method":5}"#,
    ] {
        let e = parse_err(bad);
        assert_eq!(
            e.error.code,
            codes::INVALID_REQUEST,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn an_invalid_message_with_a_readable_id_keeps_it() {
    let e = parse_err(br#"{"id":3,"method":7}"#);
    assert_eq!(e.id, Some(RequestId::Integer(3)));
    assert_eq!(e.error.code, codes::INVALID_REQUEST);
}

#[test]
fn serialisation_mirrors_the_jsonrpc_member_only_when_asked() {
    let msg = Message::Response(Response::ok(
        RequestId::Integer(1),
        to_raw(&json!({"a": 1})),
    ));
    let plain: serde_json::Value = serde_json::from_slice(&msg.to_vec(false)).unwrap();
    assert_eq!(plain, json!({"id": 1, "result": {"a": 1}}));
    let with: serde_json::Value = serde_json::from_slice(&msg.to_vec(true)).unwrap();
    assert_eq!(with, json!({"jsonrpc": "2.0", "id": 1, "result": {"a": 1}}));
}

#[test]
fn an_error_response_without_id_serialises_id_null() {
    let msg = Message::Response(Response::error(None, ErrorObject::parse_error("x")));
    let v: serde_json::Value = serde_json::from_slice(&msg.to_vec(false)).unwrap();
    assert_eq!(
        v,
        json!({"id": null, "error": {"code": -32700, "message": "Parse error: x"}})
    );
}

#[test]
fn absent_params_decode_as_an_empty_object() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct P {
        #[serde(default)]
        flag: bool,
    }
    assert_eq!(decode_params::<P>(None).unwrap(), P { flag: false });
    let raw = to_raw(&json!({"flag": "yes"}));
    let err = decode_params::<P>(Some(&raw)).unwrap_err();
    assert!(!err.contains(" at line "), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn missing_required_params_name_the_field() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct P {
        turn_id: String,
    }
    assert_eq!(
        decode_params::<P>(None).unwrap_err(),
        "missing field `turn_id`"
    );
}

#[test]
fn a_wrong_type_deep_in_the_params_names_its_path() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        version: String,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    #[serde(rename_all = "camelCase")]
    struct P {
        client_info: Inner,
    }
    let raw = to_raw(&json!({"clientInfo": {"version": 5}}));
    let err = decode_params::<P>(Some(&raw)).unwrap_err();
    assert_eq!(
        err,
        "clientInfo.version: invalid type: integer `5`, expected a string"
    );
}

#[test]
fn a_malformed_response_is_marked_as_a_response_with_its_id() {
    for text in [
        r#"{"id":5,"error":{"code":-32000}}"#,
        r#"{"id":5,"error":"nope"}"#,
        r#"{"id":5,"result":1,"error":{"code":1,"message":"x"}}"#,
    ] {
        let e = parse_err(text.as_bytes());
        assert!(e.response, "{text}");
        assert_eq!(e.id, Some(RequestId::Integer(5)), "{text}");
    }
    let e = parse_err(br#"{"id":5,"error":{"code":-32000}}"#);
    assert!(
        e.error.message.contains("missing field `message`"),
        "{}",
        e.error.message
    );
    let e = parse_err(br#"{"result":1}"#);
    assert!(e.response && e.id.is_none());
    let e = parse_err(br#"{"id":{},"result":1}"#);
    assert!(e.response && e.id.is_none());
}

#[test]
fn a_malformed_error_object_is_described_without_its_values() {
    let e = parse_err(br#"{"id":5,"error":{"code":"sk-secret-value","message":"m"}}"#);
    assert!(
        !e.error.message.contains("sk-secret"),
        "{}",
        e.error.message
    );
    assert!(e.error.message.contains("`code`"), "{}", e.error.message);
}

#[test]
fn requests_and_other_invalid_objects_are_not_responses() {
    assert!(!parse_err(br#"{"id":5}"#).response);
    assert!(!parse_err(br#"{"id":5,"method":"x","result":1}"#).response);
    assert!(!parse_err(br#"{"id":[],"method":"x"}"#).response);
}

#[test]
fn method_not_found_quotes_at_most_200_characters_of_the_method() {
    let long = "m".repeat(10_000);
    let e = ErrorObject::method_not_found(&long);
    assert_eq!(e.message, format!("Method not found: {}…", "m".repeat(200)));
    let short = ErrorObject::method_not_found("a/b");
    assert_eq!(short.message, "Method not found: a/b");
    let wide = "é".repeat(300);
    let e = ErrorObject::method_not_found(&wide);
    assert_eq!(e.message.chars().count(), "Method not found: ".len() + 201);
}

#[test]
fn a_string_id_is_displayed_cut_but_kept_whole_in_the_response() {
    let id = RequestId::String("i".repeat(5_000));
    assert!(id.to_string().chars().count() < 210);
    let response = Message::Response(Response::error(Some(id.clone()), ErrorObject::overloaded()));
    let wire: serde_json::Value = serde_json::from_slice(&response.to_vec(false)).unwrap();
    assert_eq!(wire["id"].as_str().unwrap().len(), 5_000);
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Kind {
    r#type: Choice,
}

#[derive(Debug, serde::Deserialize)]
enum Choice {
    A,
}

#[test]
fn params_errors_quote_at_most_200_characters_of_a_value() {
    let huge = "v".repeat(100_000);
    let raw = to_raw(&json!({ "type": huge }));
    let e = decode_params::<Kind>(Some(&raw)).unwrap_err();
    assert!(e.len() < 400, "{} characters", e.len());
    assert!(e.contains("unknown variant"), "{e}");
    assert!(e.contains(&"v".repeat(200)), "{e}");
}

#[test]
fn bound_quotes_keeps_short_messages_and_cuts_long_quoted_runs() {
    assert_eq!(bound_quotes("missing field `x`"), "missing field `x`");
    let long = format!("unknown field `{}`, expected `a`", "k".repeat(500));
    let cut = bound_quotes(&long);
    assert_eq!(
        cut,
        format!("unknown field `{}…`, expected `a`", "k".repeat(200))
    );
}
