//! End to end, credentials that cannot be sent as an HTTP header value (docs/protocol.md
//! §3.1, §3.5, §5): an `apiKey`, `accessToken` or `chatgptAccountId` that is empty or holds
//! CR, LF, NUL or another control character is refused with -32602 naming the field and
//! nothing is stored; a host refresh answer with one is `invalid auth refresh response`
//! and changes nothing; a provider command printing one fails the turn before any request.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use authbridge_testkit::{Jwt, RefreshPolicy, RefreshReply, Session, SessionBuilder};
use serde_json::{json, Value};

fn jwt(account: &str, tag: &str) -> String {
    Jwt::new()
        .account(account)
        .plan("pro")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!(tag))
        .mint()
}

/// Everything the host received, as text (turn shapes may change; the words do not).
fn received(s: &Session) -> String {
    String::from_utf8_lossy(&s.host.stdout_bytes()).into_owned()
}

async fn account(s: &Session) -> Value {
    s.host.request("account/read", json!({})).await.unwrap()["account"].clone()
}

#[tokio::test]
async fn an_api_key_with_a_line_break_or_control_character_is_refused_and_nothing_is_stored() {
    let s = Session::start().await;
    for (key, why) in [
        ("sk-abc\r\nX-Injected: 1", "line break"),
        ("sk-abc\n", "line break"),
        ("sk-a\0b", "NUL"),
        ("sk-a\u{1b}b", "control character"),
        ("", "empty"),
    ] {
        let e = s
            .host
            .request(
                "account/login/start",
                json!({"type": "apiKey", "apiKey": key}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, -32602, "{key:?}: {e:?}");
        assert!(e.message.starts_with("invalid api key: "), "{e:?}");
        assert!(e.message.contains(why), "{key:?}: {e:?}");
        assert!(!e.message.contains("sk-a"), "the key is quoted: {e:?}");
    }
    assert!(
        !s.home().join("auth.json").exists(),
        "auth.json was written"
    );
    assert_eq!(account(&s).await, Value::Null);
}

#[tokio::test]
async fn an_account_id_or_access_token_that_is_not_header_safe_is_refused_naming_the_field() {
    let s = Session::start().await;
    let token = jwt("org-1", "t");
    let cases = [
        (
            token.clone(),
            "org-1\r\nX-Injected: 1",
            "invalid chatgptAccountId: ",
            "line break",
        ),
        (token.clone(), "", "invalid chatgptAccountId: ", "empty"),
        (
            token.clone(),
            "org\u{7f}",
            "invalid chatgptAccountId: ",
            "control character",
        ),
        (
            format!("{token}\r\n"),
            "org-1",
            "invalid access token: ",
            "line break",
        ),
    ];
    for (access, account_id, prefix, why) in cases {
        let e = s
            .login_external(&access, account_id, None)
            .await
            .unwrap_err();
        assert_eq!(e.code, -32602, "{account_id:?}: {e:?}");
        assert!(e.message.starts_with(prefix), "{e:?}");
        assert!(e.message.contains(why), "{e:?}");
    }
    assert_eq!(account(&s).await, Value::Null);
    assert!(!s.home().join("auth.json").exists());
    // A good login still works afterwards.
    s.login_external(&token, "org-1", None).await.unwrap();
    assert_eq!(account(&s).await["type"], "chatgpt");
}

#[tokio::test]
async fn a_refresh_answer_with_an_unsafe_account_id_is_an_invalid_response_and_changes_nothing() {
    let old = jwt("org-1", "old");
    let new = jwt("org-1", "new");
    let s = SessionBuilder::accepting([new.clone()]).start().await;
    s.host
        .set_refresh_policy(RefreshPolicy::always(RefreshReply::tokens(
            &new,
            "org-1\r\nX-Injected: 1",
            None,
        )));
    s.login_external(&old, "org-1", None).await.unwrap();
    let done = s.turn("hi").await;
    let text = format!("{done} {}", received(&s));
    assert!(
        text.contains("invalid auth refresh response: chatgptAccountId: it contains a line break"),
        "{text}"
    );
    let status = s.auth_status().await;
    assert_eq!(
        status["authToken"],
        json!(old),
        "the rejected answer was applied"
    );
    // The new token was never sent: the provider saw only the old one.
    assert!(s
        .mock
        .authorizations()
        .iter()
        .all(|a| a.as_deref() == Some(&format!("Bearer {old}"))));
}

#[tokio::test]
async fn a_provider_command_token_with_a_carriage_return_fails_the_turn_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = dir.path().join("token.sh");
    std::fs::write(&cmd, "#!/bin/sh\nprintf 'corp-token\\rX-Injected: 1\\n'\n").unwrap();
    std::fs::set_permissions(&cmd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = SessionBuilder::default()
        .command_provider(&cmd)
        .start()
        .await;
    let done = s.turn("hi").await;
    let text = format!("{done} {}", received(&s));
    assert!(
        text.contains(
            "the provider auth command produced an unusable token: it contains a line break"
        ),
        "{text}"
    );
    assert_eq!(s.mock.request_count(), 0, "a request went out");
}
