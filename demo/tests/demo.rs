//! The demo binary end to end: it exits 0, streams both turns and shows one host refresh,
//! and its output never contains a token.

use std::time::Duration;

#[tokio::test]
async fn the_demo_shows_one_refresh_two_streamed_turns_and_no_token() {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authbridge-demo"))
        .args(["--delta-delay-ms", "5"])
        .env(
            "AUTHBRIDGE_BIN",
            authbridge_testkit::server::authbridge_bin(),
        )
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .expect("demo within 30 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "streaming: Tokens are fresh and the stream flows.",
        "streaming: A 401, one host refresh, one retry, and here we are.",
        "provider requests: 5 (1 answered 401)",
        "the provider got the conversation: 3 input messages",
        "models: gpt-5, gpt-5-mini",
        "rate limits: 42% of the 300-minute window used",
        "host refresh requests: 1",
        r#"{"previousAccountId":"org-demo","reason":"unauthorized"}"#,
        "server exit: exit status: 0",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("eyJ"),
        "a token leaked into the demo output:\n{stdout}"
    );
}
