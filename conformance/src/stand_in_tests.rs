//! Tests of the stand-in's verdict on a host's refresh answer.

use super::judge;
use crate::pattern::JwtSpec;
use serde_json::json;

fn token() -> String {
    JwtSpec {
        account: Some("org-1".into()),
        ..Default::default()
    }
    .mint()
}

#[test]
fn a_jwt_for_the_previous_account_with_or_without_a_plan_passes() {
    let answer = json!({"id": 0, "result": {"accessToken": token(), "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}});
    assert_eq!(judge(&answer, Some("org-1")), Ok(()));
    let answer = json!({"id": 0, "result": {"accessToken": token(), "chatgptAccountId": "org-9"}});
    assert_eq!(judge(&answer, None), Ok(()));
}

#[test]
fn each_broken_answer_is_named() {
    let cases = [
        (
            json!({"id": 0, "error": {"code": -1, "message": "no"}}),
            r#"the host answered with an error: {"code":-1,"message":"no"}"#,
        ),
        (
            json!({"id": 0, "result": "x"}),
            "the answer has no result object",
        ),
        (
            json!({"id": 0, "result": {"chatgptAccountId": "org-1"}}),
            "result.accessToken is missing or not a string",
        ),
        (
            json!({"id": 0, "result": {"accessToken": "a.b", "chatgptAccountId": "org-1"}}),
            "result.accessToken is not a JWT: not three non-empty dot-separated segments",
        ),
        (
            json!({"id": 0, "result": {"accessToken": token()}}),
            "result.chatgptAccountId is missing or not a string",
        ),
        (
            json!({"id": 0, "result": {"accessToken": token(), "chatgptAccountId": "org-2"}}),
            r#"result.chatgptAccountId is "org-2", expected the previous account "org-1""#,
        ),
        (
            json!({"id": 0, "result": {"accessToken": token(), "chatgptAccountId": "org-1", "chatgptPlanType": 3}}),
            "result.chatgptPlanType is 3, expected a string or null",
        ),
    ];
    for (answer, why) in cases {
        assert_eq!(
            judge(&answer, Some("org-1")),
            Err(why.to_owned()),
            "{answer}"
        );
    }
}
