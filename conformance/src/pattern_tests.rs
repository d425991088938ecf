//! Tests of the pattern matcher and the sent-message templates.

use super::*;
use serde_json::json;

#[test]
fn objects_match_exactly_unless_they_say_more_is_allowed() {
    let mut caps = Captures::new();
    let got = json!({"id": 1, "result": {"a": 1, "b": 2}});
    assert_eq!(
        matches(&json!({"id": 1, "result": {"a": 1}}), &got, &mut caps),
        Err(Mismatch {
            path: "/result/b".into(),
            expected: "no such member".into(),
            got: "2".into()
        })
    );
    assert_eq!(
        matches(
            &json!({"id": 1, "result": {"a": 1, "...": true}}),
            &got,
            &mut caps
        ),
        Ok(())
    );
}

#[test]
fn matchers_check_shapes_and_captures_feed_later_refs() {
    let mut caps = Captures::new();
    let token = JwtSpec::parse("account=org-1").unwrap().mint();
    let got = json!({"id": "x", "t": token, "u": "6f1c1f7e-2f4a-4a57-9a56-0d0f3c1a2b3c", "m": "request timed out after 5ms"});
    let pattern = json!({"id": "{{capture:id}}", "t": "{{jwt}}", "u": "{{uuid}}", "m": "{{contains:timed out}}"});
    assert_eq!(matches(&pattern, &got, &mut caps), Ok(()));
    assert_eq!(caps.get("id"), Some(&json!("x")));
    assert_eq!(
        matches(&json!({"id": "{{ref:id}}", "...": true}), &got, &mut caps),
        Ok(())
    );
    let err = matches(&json!({"id": "{{integer}}", "...": true}), &got, &mut caps).unwrap_err();
    assert_eq!(
        err,
        Mismatch {
            path: "/id".into(),
            expected: "{{integer}}".into(),
            got: "\"x\"".into()
        }
    );
}

#[test]
fn a_failed_match_keeps_no_captures() {
    let mut caps = Captures::new();
    let result = matches(
        &json!({"a": "{{capture:a}}", "b": 2}),
        &json!({"a": 1, "b": 3}),
        &mut caps,
    );
    assert!(result.is_err());
    assert_eq!(caps, Captures::new());
}

#[test]
fn absent_members_are_checked() {
    let mut caps = Captures::new();
    let pattern = json!({"jsonrpc": "{{absent}}", "...": true});
    assert_eq!(matches(&pattern, &json!({"id": 1}), &mut caps), Ok(()));
    assert!(matches(&pattern, &json!({"id": 1, "jsonrpc": "2.0"}), &mut caps).is_err());
}

#[test]
fn templates_mint_tokens_and_fill_refs() {
    let mut caps = Captures::new();
    caps.insert("turn".into(), json!("t-1"));
    let sent = expand(&json!({"a": "{{jwt:account=org-9,plan=pro,exp=+60,as=tok}}", "b": "{{ref:turn}}", "c": "id {{ref:turn}}!"}), &mut caps).unwrap();
    let token = sent["a"].as_str().unwrap();
    let claims = decode_jwt(token).unwrap();
    assert_eq!(
        claims["https://api.openai.com/auth"],
        json!({"chatgpt_account_id": "org-9", "chatgpt_plan_type": "pro"})
    );
    assert!((claims["exp"].as_i64().unwrap() - now_unix() - 60).abs() <= 1);
    assert_eq!(caps.get("tok"), Some(&json!(token)));
    assert_eq!(
        (sent["b"].clone(), sent["c"].clone()),
        (json!("t-1"), json!("id t-1!"))
    );
    assert_eq!(
        expand(&json!("{{ref:nope}}"), &mut caps),
        Err("{{ref:nope}}: nothing was captured as \"nope\"".into())
    );
}

#[test]
fn only_three_non_empty_segments_with_a_json_object_payload_are_a_jwt() {
    assert_eq!(
        decode_jwt("a.b"),
        Err("not three non-empty dot-separated segments".into())
    );
    assert_eq!(
        decode_jwt("a..c"),
        Err("not three non-empty dot-separated segments".into())
    );
    assert_eq!(
        decode_jwt("a.!!.c"),
        Err("the payload is not base64url".into())
    );
    assert_eq!(
        decode_jwt("a.WzFd.c"),
        Err("the payload is not a JSON object".into())
    );
}
