//! A provider that quotes the bearer token in a stream error does not get it shown to
//! the host: the failed turn's message carries `[redacted]` instead.

use authbridge_testkit::{Failure, Jwt, SessionBuilder};
use std::time::Duration;

#[tokio::test]
async fn a_token_quoted_in_a_stream_error_is_redacted_from_the_failed_turn() {
    let token = Jwt::new()
        .account("org-r")
        .exp_in(Duration::from_secs(3600))
        .mint();
    let s = SessionBuilder::accepting([token.clone()]).start().await;
    s.login_external(&token, "org-r", None).await.unwrap();
    s.mock.fail_next(Failure::ResponseFailed {
        message: format!("token {token} is over quota; see /var/log/x.y.z for details"),
    });
    let done = s.turn("hi").await;
    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["error"]["message"],
        "token [redacted] is over quota; see /var/log/x.y.z for details"
    );
}
