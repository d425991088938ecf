//! Property tests: classification never panics on any bytes, and every message the
//! server can write parses back to the same message.

use authbridge_protocol::jsonrpc::{codes, to_raw, ErrorObject, Message, RequestId, Response};
use proptest::prelude::*;
use serde_json::{json, Value};

fn id() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<i64>().prop_map(RequestId::Integer),
        "[a-zA-Z0-9 _\\-\u{e9}\u{4e2d}]{0,12}".prop_map(RequestId::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_classify_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        match Message::parse(&bytes) {
            Ok(_) => {}
            Err(invalid) => prop_assert!(
                invalid.error.code == codes::PARSE_ERROR || invalid.error.code == codes::INVALID_REQUEST
            ),
        }
    }

    #[test]
    fn any_json_value_classifies_as_a_message_or_an_invalid_request(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Err(invalid) = Message::parse(&bytes) {
            prop_assert_eq!(invalid.error.code, codes::INVALID_REQUEST);
        }
    }

    #[test]
    fn responses_round_trip(id in id(), result in json_value(), jsonrpc in any::<bool>()) {
        let msg = Message::Response(Response::ok(id.clone(), to_raw(&result)));
        let parsed = Message::parse(&msg.to_vec(jsonrpc)).unwrap();
        prop_assert_eq!(parsed.has_jsonrpc, jsonrpc);
        let Message::Response(r) = parsed.message else { panic!("not a response") };
        prop_assert_eq!(r.id, Some(id));
        let back: Value = serde_json::from_str(r.result.unwrap().get()).unwrap();
        prop_assert_eq!(back, result);
    }

    #[test]
    fn error_responses_round_trip(id in id(), code in any::<i64>(), message in ".{0,40}") {
        let msg = Message::Response(Response::error(Some(id.clone()), ErrorObject::new(code, message.clone())));
        let Message::Response(r) = Message::parse(&msg.to_vec(false)).unwrap().message else {
            panic!("not a response")
        };
        prop_assert_eq!(r.id, Some(id));
        prop_assert_eq!(r.result.unwrap_err(), ErrorObject::new(code, message));
    }
}
