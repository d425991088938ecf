//! End to end, `authbridge login` for people (docs/protocol.md §7): an API key from stdin,
//! the device code and the browser against the mock issuer, `login status` and `logout`
//! — the real binary, real pipes, a temporary home; and never a token in the output.

mod signin_common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use authbridge_testkit::mock_issuer::browse;
use authbridge_testkit::{DeviceResolution, MockIssuer};
use serde_json::json;
use signin_common::{auth_json, issuer_overrides, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn command(home: &Path, overrides: &[String], args: &[&str]) -> tokio::process::Command {
    let mut cmd = authbridge_testkit::server::command(home, overrides);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs to the end with `stdin` as input, within a deadline.
async fn run(home: &Path, overrides: &[String], args: &[&str], stdin: &str) -> Run {
    let mut child = command(home, overrides, args).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    finish(child).await
}

async fn finish(mut child: Child) -> Run {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let all = async {
        let _ = tokio::join!(
            out.read_to_string(&mut stdout),
            err.read_to_string(&mut stderr)
        );
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(WAIT, all)
        .await
        .expect("the command did not finish in time");
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

#[tokio::test]
async fn login_with_api_key_reads_stdin_status_shows_it_and_logout_removes_it() {
    let home = tempfile::tempdir().unwrap();
    let key = "sk-cli-CANARY-0123456789";
    let r = run(
        home.path(),
        &[],
        &["login", "--with-api-key"],
        &format!("{key}\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "Signed in with an API key. Saved to {}.\n",
            home.path().join("auth.json").display()
        )
    );
    assert_eq!(
        auth_json(home.path()).unwrap(),
        json!({"auth_mode": "apikey", "OPENAI_API_KEY": key, "tokens": null, "last_refresh": null})
    );

    let r = run(home.path(), &[], &["login", "status"], "").await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with("Signed in with an API key.\n"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains(&home.path().join("auth.json").display().to_string()));
    assert!(!r.stdout.contains("CANARY") && !r.stderr.contains("CANARY"));

    let r = run(home.path(), &[], &["logout"], "").await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("Signed out: removed "), "{}", r.stdout);
    assert!(auth_json(home.path()).is_none());

    let r = run(home.path(), &[], &["login", "status"], "").await;
    assert_eq!(r.code, 1);
    assert!(r.stdout.starts_with("Not signed in."), "{}", r.stdout);
}

#[tokio::test]
async fn login_with_api_key_and_nothing_on_stdin_fails_clearly() {
    let home = tempfile::tempdir().unwrap();
    let r = run(home.path(), &[], &["login", "--with-api-key"], "\n").await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.contains("no API key on standard input"),
        "{}",
        r.stderr
    );
    assert!(auth_json(home.path()).is_none());
}

#[tokio::test]
async fn login_device_auth_shows_the_code_waits_for_approval_and_says_who_signed_in() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_account("org-9", "pro", "cli@example.com");
    let home = tempfile::tempdir().unwrap();
    let mut child = command(
        home.path(),
        &issuer_overrides(&issuer),
        &["login", "--device-auth"],
    )
    .spawn()
    .unwrap();
    drop(child.stdin.take());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut shown = String::new();
    let code = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            shown.push_str(&line);
            shown.push('\n');
            if let Some(code) = issuer.device_codes().into_iter().find(|c| line.trim() == c) {
                return code;
            }
        }
        panic!("no code shown: {shown}");
    })
    .await
    .expect("the code was shown in time");
    assert!(
        shown.contains(&format!("{}/codex/device", issuer.url())),
        "{shown}"
    );
    assert!(auth_json(home.path()).is_none());
    issuer.resolve_device(&code, DeviceResolution::Approve);
    let mut rest = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(
        rest.contains("Signed in with ChatGPT as cli@example.com (plan: pro)."),
        "{rest}"
    );
    let stored = auth_json(home.path()).unwrap();
    assert_eq!(stored["auth_mode"], "chatgpt");
    assert_eq!(stored["tokens"]["account_id"], "org-9");

    let r = run(
        home.path(),
        &issuer_overrides(&issuer),
        &["login", "status"],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "Signed in with ChatGPT.",
        "email:        cli@example.com",
        "plan:         pro",
        "workspace:    org-9",
        "token expiry: ",
        "(in ",
        &home.path().join("auth.json").display().to_string(),
    ] {
        assert!(r.stdout.contains(want), "{want} in {}", r.stdout);
    }
    let issued = issuer.issued().pop().unwrap();
    for secret in [
        issued.access_token.as_str(),
        issued.id_token.as_str(),
        issued.refresh_token.as_str(),
        issued.access_token.split('.').nth(1).unwrap(),
    ] {
        for text in [&shown, &rest, &r.stdout, &r.stderr] {
            assert!(!text.contains(secret), "a token in the output: {text}");
        }
    }
}

#[tokio::test]
async fn login_opens_nothing_without_a_terminal_prints_the_url_and_signs_in_through_the_browser() {
    let issuer = MockIssuer::start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut child = command(home.path(), &issuer_overrides(&issuer), &["login"])
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line
                .trim()
                .starts_with(&format!("{}/oauth/authorize?", issuer.url()))
            {
                return line.trim().to_owned();
            }
        }
        panic!("no URL printed");
    })
    .await
    .unwrap();
    let visit = browse(&url, WAIT).await.unwrap();
    assert_eq!(visit.status, 200, "{}", visit.body);
    let mut rest = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(
        rest.contains("Signed in with ChatGPT as user@example.com"),
        "{rest}"
    );
    assert_eq!(auth_json(home.path()).unwrap()["auth_mode"], "chatgpt");
}

#[tokio::test]
async fn login_failures_exit_1_with_a_sentence_and_write_nothing() {
    let issuer = MockIssuer::start().await.unwrap();
    issuer.set_device_enabled(false);
    let home = tempfile::tempdir().unwrap();
    let r = run(
        home.path(),
        &issuer_overrides(&issuer),
        &["login", "--device-auth"],
        "",
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("device code login is not enabled"),
        "{}",
        r.stderr
    );

    let mut forced = issuer_overrides(&issuer);
    forced.push("forced_login_method=api".into());
    for args in [&["login"][..], &["login", "--device-auth"]] {
        let r = run(home.path(), &forced, args, "").await;
        assert_eq!(r.code, 1, "{args:?}");
        assert!(
            r.stderr.contains("ChatGPT login is disabled"),
            "{}",
            r.stderr
        );
    }
    let mut timeout = issuer_overrides(&issuer);
    timeout.push("chatgpt_login_timeout_ms=200".into());
    let r = run(home.path(), &timeout, &["login"], "").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("Login timed out"), "{}", r.stderr);
    assert!(auth_json(home.path()).is_none());

    let r = run(home.path(), &[], &["login", "--bogus"], "").await;
    assert_eq!(r.code, 2);
    let r = run(
        home.path(),
        &["chatgpt_login_port=\"x\"".into()],
        &["login"],
        "",
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("chatgpt_login_port"), "{}", r.stderr);
    let _ = Duration::ZERO;
}
