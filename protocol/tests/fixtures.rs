//! Every canonical message in `protocol/fixtures/` decodes into its typed params or result
//! and encodes back to the same JSON.

use authbridge_protocol::account::*;
use authbridge_protocol::handshake::*;
use authbridge_protocol::jsonrpc::{decode_params, to_raw, Message, Response};
use authbridge_protocol::model::*;
use authbridge_protocol::rate_limits::*;
use authbridge_protocol::thread::*;
use authbridge_protocol::turn::*;
use authbridge_protocol::{NotificationMethod, RequestMethod};
use serde_json::Value;

fn round_trip_params<M: RequestMethod>(msg: &Message) -> Message {
    let Message::Request(mut r) = msg.clone() else {
        panic!("{msg:?} is not a request")
    };
    assert_eq!(r.method, M::NAME);
    let typed: M::Params = decode_params(r.params.as_deref()).expect("params decode");
    if r.params.is_some() {
        r.params = Some(to_raw(&typed));
    }
    Message::Request(r)
}

fn round_trip_result<M: RequestMethod>(msg: &Message) -> Message {
    let Message::Response(r) = msg.clone() else {
        panic!("{msg:?} is not a response")
    };
    let raw = r.result.expect("a result");
    let typed: M::Result = serde_json::from_str(raw.get()).expect("result decodes");
    Message::Response(Response::ok(r.id.unwrap(), to_raw(&typed)))
}

fn round_trip_notification<N: NotificationMethod>(msg: &Message) -> Message {
    let Message::Notification(mut n) = msg.clone() else {
        panic!("{msg:?} is not a notification")
    };
    assert_eq!(n.method, N::NAME);
    let typed: N::Params = decode_params(n.params.as_deref()).expect("params decode");
    if n.params.is_some() {
        n.params = Some(to_raw(&typed));
    }
    Message::Notification(n)
}

fn round_trip(name: &str, msg: &Message) -> Message {
    let stem = name.split('.').next().unwrap();
    let kind = name.rsplit('.').nth(1).unwrap();
    match (stem, kind) {
        ("initialize", "request") => round_trip_params::<Initialize>(msg),
        ("initialize", "response") => round_trip_result::<Initialize>(msg),
        ("initialized", _) => round_trip_notification::<Initialized>(msg),
        ("account_login_start", "request") => round_trip_params::<LoginAccount>(msg),
        ("account_login_start", "response") => round_trip_result::<LoginAccount>(msg),
        ("account_login_cancel", "request") => round_trip_params::<CancelLoginAccount>(msg),
        ("account_login_cancel", "response") => round_trip_result::<CancelLoginAccount>(msg),
        ("account_login_completed", _) => round_trip_notification::<AccountLoginCompleted>(msg),
        ("account_updated", _) => round_trip_notification::<AccountUpdated>(msg),
        ("account_read", "request") => round_trip_params::<GetAccount>(msg),
        ("account_read", "response") => round_trip_result::<GetAccount>(msg),
        ("account_logout", "request") => round_trip_params::<LogoutAccount>(msg),
        ("account_logout", "response") => round_trip_result::<LogoutAccount>(msg),
        ("get_auth_status", "request") => round_trip_params::<GetAuthStatus>(msg),
        ("get_auth_status", "response") => round_trip_result::<GetAuthStatus>(msg),
        ("chatgpt_auth_tokens_refresh", "request") => {
            round_trip_params::<ChatgptAuthTokensRefresh>(msg)
        }
        ("chatgpt_auth_tokens_refresh", "response") => {
            round_trip_result::<ChatgptAuthTokensRefresh>(msg)
        }
        ("model_list", "request") => round_trip_params::<ModelList>(msg),
        ("model_list", "response") => round_trip_result::<ModelList>(msg),
        ("turn_start", "request") => round_trip_params::<TurnStart>(msg),
        ("turn_start", "response") => round_trip_result::<TurnStart>(msg),
        ("turn_started", _) => round_trip_notification::<TurnStarted>(msg),
        ("turn_completed", _) => round_trip_notification::<TurnCompleted>(msg),
        ("item_started", _) => round_trip_notification::<ItemStarted>(msg),
        ("item_completed", _) => round_trip_notification::<ItemCompleted>(msg),
        ("item_agent_message_delta", _) => round_trip_notification::<AgentMessageDelta>(msg),
        ("thread_start", "request") => round_trip_params::<ThreadStart>(msg),
        ("thread_start", "response") => round_trip_result::<ThreadStart>(msg),
        ("thread_read", "request") => round_trip_params::<ThreadRead>(msg),
        ("thread_read", "response") => round_trip_result::<ThreadRead>(msg),
        ("thread_list", "request") => round_trip_params::<ThreadList>(msg),
        ("thread_list", "response") => round_trip_result::<ThreadList>(msg),
        ("thread_started", _) => round_trip_notification::<ThreadStarted>(msg),
        ("thread_status_changed", _) => round_trip_notification::<ThreadStatusChanged>(msg),
        ("thread_token_usage_updated", _) => {
            round_trip_notification::<ThreadTokenUsageUpdated>(msg)
        }
        ("error", "notification") => round_trip_notification::<ErrorNotice>(msg),
        ("account_rate_limits_read", "request") => round_trip_params::<GetAccountRateLimits>(msg),
        ("account_rate_limits_read", "response") => round_trip_result::<GetAccountRateLimits>(msg),
        ("account_rate_limits_updated", _) => {
            round_trip_notification::<AccountRateLimitsUpdated>(msg)
        }
        ("turn_interrupt", "request") => round_trip_params::<TurnInterrupt>(msg),
        ("turn_interrupt", "response") => round_trip_result::<TurnInterrupt>(msg),
        ("error", _) => msg.clone(),
        other => panic!("fixture {name} has no typed mapping: {other:?}"),
    }
}

#[test]
fn every_fixture_round_trips_through_its_typed_message() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        let parsed = Message::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let again = round_trip(&name, &parsed.message);
        let encoded: Value = serde_json::from_slice(&again.to_vec(false)).unwrap();
        assert_eq!(encoded, original, "fixture {name} changed in a round trip");
        count += 1;
    }
    assert!(count >= 30, "only {count} fixtures found");
}

#[test]
fn an_unsupported_login_type_is_named_in_the_error() {
    let raw = to_raw(&serde_json::json!({"type": "amazonBedrock"}));
    let err = decode_params::<LoginAccountParams>(Some(&raw)).unwrap_err();
    assert_eq!(err, r#"unsupported login type "amazonBedrock""#);
}

#[test]
fn a_login_without_its_key_names_the_missing_field() {
    let raw = to_raw(&serde_json::json!({"type": "apiKey"}));
    let err = decode_params::<LoginAccountParams>(Some(&raw)).unwrap_err();
    assert_eq!(err, "missing field `apiKey`");
}

#[test]
fn plan_types_read_as_the_wire_spells_them_and_unknown_otherwise() {
    assert_eq!(PlanType::parse("pro"), PlanType::Pro);
    assert_eq!(
        PlanType::parse("self_serve_business_usage_based"),
        PlanType::SelfServeBusinessUsageBased
    );
    assert_eq!(PlanType::parse("platinum"), PlanType::Unknown);
    let v: PlanType = serde_json::from_str("\"mystery\"").unwrap();
    assert_eq!(v, PlanType::Unknown);
    assert_eq!(PlanType::Enterprise.as_str(), "enterprise");
}

#[test]
fn secrets_in_params_do_not_show_in_debug() {
    let p = LoginAccountParams::ApiKey {
        api_key: "sk-canary-123".into(),
    };
    assert!(!format!("{p:?}").contains("canary"));
    let r = ChatgptAuthTokensRefreshResponse {
        access_token: "canary.jwt.value".into(),
        chatgpt_account_id: "org".into(),
        chatgpt_plan_type: None,
    };
    assert!(!format!("{r:?}").contains("canary"));
}

#[test]
fn turn_input_accepts_text_items_and_names_any_other_type() {
    let raw = to_raw(&serde_json::json!({
        "threadId": "t", "input": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "effort": "high", "sandboxPolicy": {"type": "readOnly"}
    }));
    let p = decode_params::<TurnStartParams>(Some(&raw)).unwrap();
    let texts: Vec<&str> = p.input.iter().map(UserInput::as_text).collect();
    assert_eq!(texts, ["a", "b"]);
    let raw = to_raw(&serde_json::json!({
        "threadId": "t", "input": [{"type": "text", "text": "a"}, {"type": "image", "url": "x"}]
    }));
    let err = decode_params::<TurnStartParams>(Some(&raw)).unwrap_err();
    assert!(
        err.starts_with("input[1]: unsupported input item type \"image\""),
        "{err}"
    );
}

#[test]
fn every_plan_value_of_codex_reads_back_as_itself() {
    for plan in PlanType::ALL {
        assert_eq!(PlanType::parse(plan.as_str()), plan);
        let wire = serde_json::to_value(plan).unwrap();
        assert_eq!(wire, plan.as_str());
    }
    assert_eq!(PlanType::parse("promax"), PlanType::Promax);
    assert_eq!(PlanType::parse("sci_plus"), PlanType::SciPlus);
}
