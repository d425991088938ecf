//! The `mock-provider` binary: URL on stdout line 1, serves, exits when stdin closes.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_mock_provider_binary_prints_its_url_serves_and_exits_when_stdin_closes() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mock-provider"))
        .args(["--token", "t1", "--delta", "a", "--delta", "b"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
        "{url}"
    );

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let body = client
        .post(format!("{url}/responses"))
        .bearer_auth("t1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(r#""delta":"a""#) && body.contains(r#""delta":"b""#),
        "{body}"
    );
    assert_eq!(
        client
            .get(format!("{url}/models"))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
