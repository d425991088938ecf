//! `authbridge-demo`: one command that shows the whole bridge on loopback.
//!
//! It starts the mock provider, runs the real `authbridge` with a temporary home, logs in
//! with minted external ChatGPT tokens, starts a thread, streams a turn, expires the token
//! at the provider, and streams a second turn of the same thread through 401 →
//! `account/chatgptAuthTokens/refresh` → retry; then reads the models and the rate limits.
//! Then it prints the transcript (tokens as fingerprints) and a summary. No network, no
//! setup, and `~/.authbridge` is never touched.
//!
//! Run by `cargo run`, it first builds `authbridge` up to date in the same target
//! directory (cargo has released it by then), and times its own run apart from that build.

#![allow(clippy::print_stdout)] // this binary's output is for a person

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use authbridge_testkit::session::{login_external, start_thread, start_turn_on};
use authbridge_testkit::transcript::{fingerprint, mask_str};
use authbridge_testkit::{
    server, Host, HostOptions, Jwt, MockOptions, MockProvider, RefreshPolicy, RefreshReply,
};
use clap::Parser;
use serde_json::json;

/// Shows authbridge refreshing ChatGPT tokens through its host, on loopback.
#[derive(Debug, Parser)]
#[command(name = "authbridge-demo")]
struct Args {
    /// Pause between streamed deltas, in milliseconds.
    #[arg(long, default_value_t = 60)]
    delta_delay_ms: u64,
    /// Do not print the transcript at the end.
    #[arg(long)]
    no_transcript: bool,
}

const ACCOUNT: &str = "org-demo";

fn token(tag: &str) -> String {
    Jwt::new()
        .email("dev@example.com")
        .account(ACCOUNT)
        .plan("plus")
        .user("user-demo")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!(tag))
        .mint()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Up to date and in the workspace's target directory, before the clock starts: the
    // total below is the demo's own run, not cargo's.
    let build = server::build_authbridge_for(env!("CARGO_PKG_NAME"))
        .map_err(|e| anyhow::anyhow!("building the authbridge binary: {e}"))?;
    let started = Instant::now();
    let home = tempfile::tempdir().context("creating a temporary home")?;

    let first = token("first");
    let opts = MockOptions {
        valid_tokens: vec![first.clone()],
        deltas: [
            "Tokens ", "are ", "fresh ", "and ", "the ", "stream ", "flows.",
        ]
        .map(String::from)
        .to_vec(),
        delta_delay: Duration::from_millis(args.delta_delay_ms),
        ..MockOptions::default()
    };
    let mock = Arc::new(
        MockProvider::start(opts)
            .await
            .context("starting the mock provider")?,
    );

    // The host's "auth system": each refresh mints a new token, which the provider accepts.
    let issued = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let policy = {
        let (mock, issued) = (mock.clone(), issued.clone());
        RefreshPolicy::with(move |_| {
            let mut issued = issued.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = token(&format!("refreshed-{}", issued.len() + 1));
            mock.accept_token(&fresh);
            issued.push(fresh.clone());
            RefreshReply::tokens(&fresh, ACCOUNT, Some("plus"))
        })
    };

    let overrides = server::openai_overrides(&mock.url(), 5000);
    let bin = server::authbridge_bin();
    println!("authbridge demo");
    match build {
        Some(took) => println!(
            "  server:   {} (cargo build: {:.1} s, not counted below)",
            bin.display(),
            took.as_secs_f64()
        ),
        None => println!("  server:   {}", bin.display()),
    }
    println!("  home:     {} (temporary)", home.path().display());
    println!("  provider: {} (loopback mock)\n", mock.url());
    let mut host = Host::spawn(
        server::command(home.path(), &overrides),
        HostOptions {
            refresh: policy,
            ..HostOptions::default()
        },
    )
    .context("spawning authbridge")?;

    step(&host, "1. initialize");
    let init = host
        .initialize(json!({}))
        .await
        .map_err(|e| anyhow::anyhow!("initialize failed: {e:?}"))?;
    println!("   server: {}", init["userAgent"].as_str().unwrap_or("?"));

    step(
        &host,
        &format!(
            "2. log in with external ChatGPT tokens (access token {})",
            mask_str(&first)
        ),
    );
    login_external(&host, &first, ACCOUNT, Some("plus"))
        .await
        .map_err(|e| anyhow::anyhow!("login failed: {e:?}"))?;
    let account = host
        .request("account/read", json!({}))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    println!("   account: {}", account["account"]);

    step(&host, "3. start a thread (in memory, Codex's thread/start)");
    let thread = start_thread(&host).await;
    println!("   thread: {thread}");

    step(&host, "4. a turn that streams");
    let t1 = Instant::now();
    let first_turn = stream_turn(&host, &thread, "Say something about tokens.").await?;
    let t1 = t1.elapsed();

    step(&host, "5. the access token expires at the provider");
    mock.reject_token(&first);
    println!("   provider now answers 401 to {}", mask_str(&first));
    mock.set_deltas([
        "A ",
        "401, ",
        "one ",
        "host ",
        "refresh, ",
        "one ",
        "retry, ",
        "and ",
        "here ",
        "we ",
        "are.",
    ]);

    step(
        &host,
        "6. the next turn of the thread: 401 → account/chatgptAuthTokens/refresh → retry → stream",
    );
    let t2 = Instant::now();
    let second_turn = stream_turn(&host, &thread, "And once more, after the refresh.").await?;
    let t2 = t2.elapsed();
    let history = mock
        .requests()
        .last()
        .map(|r| r.body["input"].as_array().map_or(0, Vec::len))
        .unwrap_or(0);
    println!("   the provider got the conversation: {history} input messages");

    step(&host, "7. models and rate limits");
    let models = host
        .request("model/list", json!({}))
        .await
        .map_err(|e| anyhow::anyhow!("model/list failed: {e:?}"))?;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    println!("   models: {}", ids.join(", "));
    let limits = host
        .request("account/rateLimits/read", json!({}))
        .await
        .map_err(|e| anyhow::anyhow!("account/rateLimits/read failed: {e:?}"))?;
    println!(
        "   rate limits: {}% of the {}-minute window used",
        limits["rateLimits"]["primary"]["usedPercent"],
        limits["rateLimits"]["primary"]["windowDurationMins"]
    );

    host.close_stdin().await;
    let status = host.wait_exit(Duration::from_secs(2)).await;

    if !args.no_transcript {
        println!(
            "\n--- transcript (→ host to server, ← server to host; tokens as fingerprints) ---"
        );
        println!("{}", host.transcript());
    }
    let refreshes = host.refresh_requests();
    let issued = issued.lock().unwrap_or_else(|p| p.into_inner()).clone();
    println!("\n--- summary ---");
    println!("  turn 1: {first_turn:?} in {} ms", t1.as_millis());
    println!(
        "  turn 2: {second_turn:?} in {} ms (including the refresh)",
        t2.as_millis()
    );
    println!(
        "  provider requests: {} ({} answered 401)",
        mock.request_count(),
        mock.unauthorized_count()
    );
    for r in mock.requests() {
        let auth = r
            .authorization
            .as_deref()
            .map(mask_str)
            .unwrap_or_else(|| "-".into());
        println!(
            "    {} {}  Authorization: {auth}  ChatGPT-Account-Id: {}",
            r.method,
            r.path,
            r.account_id.as_deref().unwrap_or("-")
        );
    }
    println!("  host refresh requests: {}", refreshes.len());
    for r in &refreshes {
        println!("    at {} ms: {}", r.at.as_millis(), r.params);
    }
    println!(
        "  tokens issued by the host: {}",
        issued
            .iter()
            .map(|t| format!("<jwt:{}>", fingerprint(t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  server exit: {}",
        status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "still running after 2 s".into())
    );
    println!(
        "  total: {} ms (the demo's own run)",
        started.elapsed().as_millis()
    );
    if refreshes.len() != 1 || first_turn.is_empty() || second_turn.is_empty() {
        bail!("the demo did not go as planned: see the transcript above");
    }
    Ok(())
}

fn step(host: &Host, title: &str) {
    println!("\n{title}");
    host.note(&format!("# {title}"));
}

/// Starts a turn on the thread and prints its deltas as they arrive; the completed text.
async fn stream_turn(host: &Host, thread: &str, input: &str) -> anyhow::Result<String> {
    let turn = start_turn_on(host, thread, input).await;
    print!("   streaming: ");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(delta) = host
            .next_notification("item/agentMessage/delta", Duration::from_millis(20))
            .await
        {
            print!("{}", delta["params"]["delta"].as_str().unwrap_or(""));
            let _ = std::io::stdout().flush();
            continue;
        }
        let done = host
            .wait_message(
                |m| m["method"] == "turn/completed" && m["params"]["turn"]["id"] == turn,
                Duration::ZERO,
            )
            .await;
        if let Some(done) = done {
            println!();
            let outcome = authbridge_testkit::session::outcome(&done["params"]);
            if outcome["status"] != "completed" {
                bail!(
                    "turn {turn} ended {}: {}",
                    outcome["status"],
                    outcome["error"]
                );
            }
            return Ok(outcome["text"].as_str().unwrap_or("").to_owned());
        }
        if Instant::now() > deadline {
            bail!(
                "turn {turn} did not complete within 15 s\n{}\n{}",
                host.transcript(),
                host.stderr_text()
            );
        }
    }
}
