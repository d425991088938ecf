//! A minimal well-behaved host: spawns `$AUTHBRIDGE_CMD`, logs in with a minted JWT,
//! answers every refresh request, runs one turn and exits (in either framing). With
//! `--bad` it answers refreshes with a token that is not a JWT and with `--silent` not at
//! all, so host mode has something to fail.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::host::CMD_ENV;
use crate::pattern::JwtSpec;
use authbridge_testkit::wire::{encode, Decoder, Frame, Framing};

use crate::kind::{kind_of, Kind};

const ACCOUNT: &str = "org-sample";

fn token() -> String {
    JwtSpec {
        account: Some(ACCOUNT.into()),
        plan: Some("pro".into()),
        exp: Some(crate::pattern::now_unix() + 3600),
        ..Default::default()
    }
    .mint()
}

/// How the sample host answers refresh requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// A fresh JWT for the previous account.
    Good,
    /// A token that is not a JWT.
    NotAJwt,
    /// No answer at all.
    Silent,
}

/// Runs the sample host to the end of its one turn.
pub async fn run(behaviour: Behaviour, framing: Framing) -> anyhow::Result<()> {
    let line = std::env::var(CMD_ENV).with_context(|| format!("{CMD_ENV} is not set"))?;
    let argv: Vec<&str> = line.split_whitespace().collect();
    let Some((program, args)) = argv.split_first() else {
        bail!("{CMD_ENV} is empty")
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {line}"))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let send = |msg: Value| encode(framing, &msg);
    let hello = json!({"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "sample_host", "version": "0.1.0"}}});
    stdin.write_all(&send(hello)).await?;
    stdin
        .write_all(&send(json!({"method": "initialized"})))
        .await?;
    let login = json!({"id": 1, "method": "account/login/start", "params": {"type": "chatgptAuthTokens", "accessToken": token(), "chatgptAccountId": ACCOUNT, "chatgptPlanType": "pro"}});
    stdin.write_all(&send(login)).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut text = String::new();
    loop {
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
            .await
            .context("the turn did not finish within 30 s")??;
        if n == 0 {
            bail!("the server closed its stdout before the turn completed");
        }
        let frames = decoder.push(&buf[..n]);
        if let Some(answered) = decoder.framing().filter(|f| *f != framing) {
            bail!("the server answered in {answered:?} framing to a host speaking {framing:?}");
        }
        for frame in frames {
            let Frame::Message(msg) = frame else {
                bail!("the server wrote something that is not JSON")
            };
            match kind_of(&msg) {
                Kind::Request(m)
                    if m == "account/chatgptAuthTokens/refresh"
                        && behaviour == Behaviour::Silent => {}
                Kind::Request(m) if m == "account/chatgptAuthTokens/refresh" => {
                    let account = msg["params"]["previousAccountId"]
                        .as_str()
                        .unwrap_or(ACCOUNT)
                        .to_owned();
                    let access = if behaviour == Behaviour::NotAJwt {
                        "not-a-jwt".to_owned()
                    } else {
                        token()
                    };
                    let answer = json!({"id": msg["id"], "result": {"accessToken": access, "chatgptAccountId": account, "chatgptPlanType": "pro"}});
                    stdin.write_all(&send(answer)).await?;
                }
                Kind::Request(m) => {
                    let answer = json!({"id": msg["id"], "error": {"code": -32601, "message": format!("Method not found: {m}")}});
                    stdin.write_all(&send(answer)).await?;
                }
                Kind::Response(id) if id == json!(1) => {
                    if msg.get("error").is_some() {
                        bail!("login failed: {}", msg["error"]);
                    }
                    let thread =
                        json!({"id": 2, "method": "thread/start", "params": {"ephemeral": true}});
                    stdin.write_all(&send(thread)).await?;
                }
                Kind::Response(id) if id == json!(2) => {
                    let Some(thread) = msg["result"]["thread"]["id"].as_str() else {
                        bail!("thread/start failed: {msg}");
                    };
                    let turn = json!({"id": 3, "method": "turn/start", "params": {"threadId": thread, "input": [{"type": "text", "text": "Say hello"}]}});
                    stdin.write_all(&send(turn)).await?;
                }
                Kind::Notification(m) if m == "item/agentMessage/delta" => {
                    text.push_str(msg["params"]["delta"].as_str().unwrap_or_default())
                }
                Kind::Notification(m) if m == "turn/completed" => {
                    eprintln!(
                        "sample-host: turn {}: {text}",
                        msg["params"]["turn"]["status"]
                    );
                    drop(stdin);
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}
