//! End to end, no part of the bearer the server sent ever reaches the host (docs/protocol.md
//! §5): the provider quotes it back in an SSE `error` event, in `response.failed` and in a
//! plain-text 500 body placed so that cutting the body to 200 bytes before masking would
//! leave part of it — with a provider auth command's opaque token and with a ChatGPT JWT.
//! Nothing the host receives contains any 8-byte piece of the token.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use authbridge_testkit::{Failure, Jwt, Session, SessionBuilder};

/// The first 8-byte piece of `token` found in `text`.
fn leaked(text: &[u8], token: &str) -> Option<String> {
    let t = token.as_bytes();
    (0..=t.len() - 8)
        .map(|i| &t[i..i + 8])
        .find(|w| text.windows(8).any(|x| x == *w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
}

/// The three ways a provider quotes the token, each marked so the host's text can be
/// checked for the masked form.
fn failures(token: &str) -> Vec<(Failure, &'static str)> {
    let body = format!("{} token={token} end", "x".repeat(143));
    assert_eq!(body.find(token), Some(150));
    vec![
        (
            Failure::ErrorEvent {
                message: format!("sse-error for {token}; over quota"),
            },
            "sse-error for [redacted]; over quota",
        ),
        (
            Failure::ResponseFailed {
                message: format!("failed-event {token}"),
            },
            "failed-event [redacted]",
        ),
        (
            Failure::Status { status: 500, body },
            "token=[redacted] end",
        ),
    ]
}

async fn run_failures(s: &Session, token: &str) {
    for (failure, masked) in failures(token) {
        s.mock.fail_next(failure);
        let done = s.turn("hi").await;
        let host_saw = s.host.stdout_bytes();
        assert_eq!(
            leaked(&host_saw, token),
            None,
            "a piece of the token reached the host: {done}"
        );
        assert!(
            String::from_utf8_lossy(&host_saw).contains(masked),
            "expected `{masked}` in what the host received: {done}"
        );
    }
}

#[tokio::test]
async fn a_provider_command_token_quoted_by_the_provider_never_reaches_the_host() {
    let token = "corpTok_9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZq";
    let dir = tempfile::tempdir().unwrap();
    let cmd = dir.path().join("token.sh");
    std::fs::write(&cmd, format!("#!/bin/sh\necho {token}\n")).unwrap();
    std::fs::set_permissions(&cmd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = SessionBuilder::accepting([token])
        .command_provider(&cmd)
        .start()
        .await;
    run_failures(&s, token).await;
    assert_eq!(
        s.mock.authorizations().first().cloned().flatten(),
        Some(format!("Bearer {token}")),
        "the command's token was not the one sent"
    );
}

#[tokio::test]
async fn a_chatgpt_jwt_quoted_by_the_provider_never_reaches_the_host() {
    let token = Jwt::new()
        .account("org-r")
        .plan("pro")
        .exp_in(Duration::from_secs(3600))
        .mint();
    let s = SessionBuilder::accepting([token.clone()]).start().await;
    s.login_external(&token, "org-r", None).await.unwrap();
    run_failures(&s, &token).await;
}
