//! End to end, threads and turns in Codex's shapes (docs/protocol.md "Threads and turns"):
//! the order of a turn's notifications, the conversation sent to the provider, thread
//! reads, the errors of `turn/start`, rate limits, Codex's launch line, and the promises
//! that every accepted turn completes (also at end of input) and counts against
//! `max_in_flight_requests`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use authbridge_testkit::session::{
    start_thread, start_turn_on, turn_params, wait_turn, wait_turn_completed,
};
use authbridge_testkit::{Failure, Jwt, MockOptions, RefreshPolicy, Session, SessionBuilder};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

async fn api_key_session_with(base: SessionBuilder) -> Session {
    base.api_key("sk-test").start().await
}

async fn api_key_session() -> Session {
    api_key_session_with(SessionBuilder::default()).await
}

fn jwt(tag: &str) -> String {
    Jwt::new()
        .email("user@example.com")
        .account("org-1")
        .plan("pro")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!(tag))
        .mint()
}

/// Every message the server sent about this thread after `from` (an index into
/// `messages()`), as `method` or `result`.
fn methods_since(s: &Session, from: usize) -> Vec<String> {
    s.host.messages()[from..]
        .iter()
        .map(|m| match m["method"].as_str() {
            Some(method) => method.to_string(),
            None if m.get("result").is_some() => "result".to_string(),
            None => "error".to_string(),
        })
        .collect()
}

#[tokio::test]
async fn a_turn_sends_codexs_notifications_in_codexs_order_and_ends_once() {
    let s = api_key_session().await;
    s.mock.set_deltas(["Hel", "lo"]);
    let thread = start_thread(&s.host).await;
    let started = s.host.messages().len();
    let answer = s
        .host
        .request("turn/start", turn_params(&thread, "say hello"))
        .await
        .unwrap();
    let turn = answer["turn"]["id"].as_str().unwrap().to_string();
    assert_eq!(answer["turn"]["status"], "inProgress");
    assert_eq!(answer["turn"]["items"], json!([]));
    let done = wait_turn_completed(&s.host, &turn).await;
    assert_eq!(
        methods_since(&s, started),
        [
            "result",
            "thread/status/changed",
            "turn/started",
            "item/started",
            "item/completed",
            "item/started",
            "item/agentMessage/delta",
            "item/agentMessage/delta",
            "item/completed",
            "thread/tokenUsage/updated",
            "thread/status/changed",
            "turn/completed",
        ]
    );
    let notes: Vec<Value> = s.host.messages()[started + 1..].to_vec();
    assert_eq!(
        notes[0]["params"],
        json!({"threadId": thread, "status": {"type": "active", "activeFlags": []}})
    );
    assert_eq!(notes[2]["params"]["item"]["type"], "userMessage");
    assert_eq!(
        notes[2]["params"]["item"]["content"],
        json!([{"type": "text", "text": "say hello", "text_elements": []}])
    );
    let agent = &notes[4]["params"]["item"];
    assert_eq!(agent["type"], "agentMessage");
    assert_eq!(agent["text"], "");
    let item_id = agent["id"].clone();
    assert_eq!(notes[5]["params"]["itemId"], item_id);
    assert_eq!(notes[5]["params"]["delta"], "Hel");
    assert_eq!(notes[7]["params"]["item"]["text"], "Hello");
    let usage = &notes[8]["params"]["tokenUsage"];
    assert_eq!(usage["last"]["inputTokens"], 5);
    assert_eq!(usage["last"]["outputTokens"], 2);
    assert_eq!(usage["last"]["cachedInputTokens"], 1);
    assert_eq!(notes[9]["params"]["status"], json!({"type": "idle"}));
    for note in &notes[1..] {
        if note["method"] != "thread/status/changed"
            && note["method"] != "thread/tokenUsage/updated"
        {
            let turn_of = note["params"]["turnId"]
                .as_str()
                .or(note["params"]["turn"]["id"].as_str());
            assert_eq!(turn_of, Some(turn.as_str()), "{note}");
        }
    }
    assert_eq!(done["threadId"], thread);
    assert_eq!(done["turn"]["status"], "completed");
    assert_eq!(done["turn"]["error"], Value::Null);
    assert_eq!(done["turn"]["itemsView"], "summary");
    assert_eq!(done["turn"]["items"][0]["id"], item_id);
    assert_eq!(done["turn"]["items"][0]["text"], "Hello");
    // Exactly one turn/completed.
    let completions = s
        .host
        .notifications()
        .iter()
        .filter(|m| m["method"] == "turn/completed")
        .count();
    assert_eq!(completions, 1);
}

#[tokio::test]
async fn a_second_turn_sends_the_first_as_the_conversation_with_the_instructions() {
    let s = api_key_session().await;
    let thread = s
        .host
        .request(
            "thread/start",
            json!({"developerInstructions": "Answer briefly.", "sandbox": "read-only",
                   "approvalPolicy": "never", "cwd": "/tmp", "personality": "friendly"}),
        )
        .await
        .unwrap()["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = start_turn_on(&s.host, &thread, "one").await;
    assert_eq!(wait_turn(&s.host, &first).await["status"], "completed");
    let second = start_turn_on(&s.host, &thread, "two").await;
    assert_eq!(wait_turn(&s.host, &second).await["status"], "completed");
    let bodies: Vec<Value> = s.mock.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 2);
    let msg = |role: &str, kind: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}]});
    assert_eq!(
        bodies[1],
        json!({
            "model": "gpt-5",
            "instructions": "Answer briefly.",
            "input": [
                msg("user", "input_text", "one"),
                msg("assistant", "output_text", "Hello, world!"),
                msg("user", "input_text", "two"),
            ],
            "stream": true,
            "store": false,
        })
    );
    // thread/read with its turns, thread/list with the thread.
    let read = s
        .host
        .request(
            "thread/read",
            json!({"threadId": thread, "includeTurns": true}),
        )
        .await
        .unwrap();
    let turns = read["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["id"], first.as_str());
    assert_eq!(turns[0]["itemsView"], "full");
    assert_eq!(turns[0]["items"][0]["type"], "userMessage");
    assert_eq!(turns[0]["items"][1]["text"], "Hello, world!");
    assert_eq!(read["thread"]["preview"], "one");
    assert_eq!(read["thread"]["ephemeral"], true);
    let without = s
        .host
        .request("thread/read", json!({"threadId": thread}))
        .await
        .unwrap();
    assert_eq!(without["thread"]["turns"], json!([]));
    let other = start_thread(&s.host).await;
    let list = s.host.request("thread/list", json!({})).await.unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other.as_str(), thread.as_str()], "newest first");
    let page = s
        .host
        .request("thread/list", json!({"limit": 1}))
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["nextCursor"], "1");
}

#[tokio::test]
async fn turn_start_refuses_unknown_threads_non_text_input_and_a_busy_thread() {
    let s = api_key_session().await;
    let unknown = s
        .host
        .request("turn/start", turn_params("no-such-thread", "hi"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code, -32602);
    assert!(unknown.message.contains("no-such-thread"), "{unknown:?}");
    let thread = start_thread(&s.host).await;
    let image = s
        .host
        .request(
            "turn/start",
            json!({"threadId": thread, "input": [{"type": "image", "url": "https://x"}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(image.code, -32602);
    assert!(image.message.contains("\"image\""), "{image:?}");
    let provider = s
        .host
        .request("thread/start", json!({"modelProvider": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(provider.code, -32602);
    assert!(provider.message.contains("\"nope\""), "{provider:?}");

    s.mock.set_delta_delay(Duration::from_millis(300));
    let running = start_turn_on(&s.host, &thread, "slow").await;
    let busy = s
        .host
        .request("turn/start", turn_params(&thread, "again"))
        .await
        .unwrap_err();
    assert_eq!(busy.code, -32600);
    assert!(
        busy.message.contains("already has a turn in progress"),
        "{busy:?}"
    );
    s.host
        .request(
            "turn/interrupt",
            json!({"threadId": thread, "turnId": running}),
        )
        .await
        .unwrap();
    assert_eq!(wait_turn(&s.host, &running).await["status"], "interrupted");
    // Once the turn is over the thread takes the next one.
    s.mock.set_delta_delay(Duration::ZERO);
    let next = start_turn_on(&s.host, &thread, "next").await;
    assert_eq!(wait_turn(&s.host, &next).await["status"], "completed");
}

#[tokio::test]
async fn a_failed_turn_sends_system_error_then_error_then_turn_completed() {
    let s = api_key_session().await;
    s.mock.fail_next(Failure::Status {
        status: 500,
        body: r#"{"error":{"message":"the model crashed"}}"#.into(),
    });
    let thread = start_thread(&s.host).await;
    let from = s.host.messages().len();
    let turn = start_turn_on(&s.host, &thread, "hi").await;
    let done = wait_turn_completed(&s.host, &turn).await;
    assert_eq!(
        methods_since(&s, from),
        [
            "result",
            "thread/status/changed",
            "turn/started",
            "item/started",
            "item/completed",
            "thread/status/changed",
            "error",
            "turn/completed",
        ]
    );
    let error = s
        .host
        .notifications()
        .into_iter()
        .find(|m| m["method"] == "error")
        .unwrap();
    let expected = json!({"message": "the model crashed", "codexErrorInfo": "internalServerError",
                          "additionalDetails": null, "misalignment": null});
    assert_eq!(
        error["params"],
        json!({"error": expected, "willRetry": false, "threadId": thread, "turnId": turn})
    );
    assert_eq!(done["turn"]["status"], "failed");
    assert_eq!(done["turn"]["error"], expected);
    let status = s
        .host
        .notifications()
        .into_iter()
        .rfind(|m| m["method"] == "thread/status/changed")
        .unwrap();
    assert_eq!(status["params"]["status"], json!({"type": "systemError"}));
}

#[tokio::test]
async fn rate_limits_come_from_the_usage_endpoint_and_a_401_there_is_healed_by_the_host() {
    let (old, new) = (jwt("old"), jwt("new"));
    let s = SessionBuilder::accepting([new.clone()])
        .refresh(RefreshPolicy::tokens(&new, "org-1", Some("pro")))
        .start()
        .await;
    s.login_external(&old, "org-1", Some("pro")).await.unwrap();
    let limits = s
        .host
        .request("account/rateLimits/read", json!({}))
        .await
        .unwrap();
    let codex = &limits["rateLimits"];
    assert_eq!(codex["limitId"], "codex");
    assert_eq!(
        codex["primary"],
        json!({"usedPercent": 42, "windowDurationMins": 300, "resetsAt": 1796240000})
    );
    assert_eq!(codex["secondary"]["windowDurationMins"], 10080);
    assert_eq!(
        codex["credits"],
        json!({"hasCredits": true, "unlimited": false, "balance": "9.99"})
    );
    assert_eq!(codex["planType"], "pro");
    assert_eq!(limits["rateLimitsByLimitId"]["codex"], *codex);
    let paths: Vec<(String, Option<String>, Option<String>)> = s
        .mock
        .requests()
        .into_iter()
        .map(|r| (r.path, r.authorization, r.account_id))
        .collect();
    assert_eq!(
        paths,
        [
            (
                "/backend-api/wham/usage".to_string(),
                Some(format!("Bearer {old}")),
                Some("org-1".to_string())
            ),
            (
                "/backend-api/wham/usage".to_string(),
                Some(format!("Bearer {new}")),
                Some("org-1".to_string())
            ),
        ]
    );
    assert_eq!(s.host.refresh_requests().len(), 1);
}

#[tokio::test]
async fn rate_limits_need_chatgpt_credentials() {
    let s = api_key_session().await;
    let e = s
        .host
        .request("account/rateLimits/read", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, -32600);
    assert_eq!(
        e.message,
        "chatgpt authentication required to read rate limits"
    );
    assert_eq!(s.mock.request_count(), 0);
}

#[tokio::test]
async fn rate_limit_headers_of_a_turn_are_sent_as_account_rate_limits_updated() {
    let s = api_key_session().await;
    s.mock.set_rate_limit_headers([
        ("x-codex-primary-used-percent", "12.5"),
        ("x-codex-primary-window-minutes", "300"),
        ("x-codex-primary-reset-at", "1796240000"),
        ("x-codex-secondary-used-percent", "3"),
    ]);
    let thread = start_thread(&s.host).await;
    let from = s.host.messages().len();
    let turn = start_turn_on(&s.host, &thread, "hi").await;
    wait_turn_completed(&s.host, &turn).await;
    let methods = methods_since(&s, from);
    let at = methods
        .iter()
        .position(|m| m == "account/rateLimits/updated")
        .expect("account/rateLimits/updated");
    assert_eq!(methods[at - 1], "thread/tokenUsage/updated", "{methods:?}");
    assert_eq!(methods[at + 1], "thread/status/changed", "{methods:?}");
    let update = &s.host.messages()[from + at]["params"]["rateLimits"];
    assert_eq!(update["limitId"], "codex");
    assert_eq!(
        update["primary"],
        json!({"usedPercent": 13, "windowDurationMins": 300, "resetsAt": 1796240000})
    );
    assert_eq!(update["secondary"]["usedPercent"], 3);
}

#[tokio::test]
async fn running_turns_count_against_max_in_flight_requests() {
    let s =
        api_key_session_with(SessionBuilder::default().config("max_in_flight_requests=2")).await;
    s.mock.set_failure(Some(Failure::StallAfterHeaders));
    let (a, b, c) = (
        start_thread(&s.host).await,
        start_thread(&s.host).await,
        start_thread(&s.host).await,
    );
    let first = start_turn_on(&s.host, &a, "one").await;
    let _second = start_turn_on(&s.host, &b, "two").await;
    assert!(s.mock.wait_for_requests(2, T).await);
    let third = s
        .host
        .request("turn/start", turn_params(&c, "three"))
        .await
        .unwrap_err();
    assert_eq!(third.code, -32001, "{third:?}");
    // turn/interrupt holds no place: it is served with every place taken by turns.
    s.host
        .request("turn/interrupt", json!({"threadId": a, "turnId": first}))
        .await
        .unwrap();
    assert_eq!(wait_turn(&s.host, &first).await["status"], "interrupted");
    // The interrupted turn gave its place back.
    let retried = s.host.request("turn/start", turn_params(&c, "three")).await;
    assert!(retried.is_ok(), "{retried:?}");
}

fn completions(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["method"] == "turn/completed")
        .collect()
}

#[tokio::test]
async fn a_turn_piped_with_its_thread_then_end_of_input_runs_and_completes_before_exit() {
    let mock = authbridge_testkit::MockProvider::start(MockOptions::with_tokens(["sk-test"]))
        .await
        .unwrap();
    // The host pipes initialize and thread/start, reads the thread's id (a host cannot
    // know it before), writes turn/start and closes stdin at once: the turn is read
    // just before end of input and must still run and complete before the exit.
    let home = tempfile::tempdir().unwrap();
    let overrides = authbridge_testkit::server::openai_overrides(&mock.url(), 500);
    let mut cmd = authbridge_testkit::server::command(home.path(), &overrides);
    cmd.env("AUTHBRIDGE_API_KEY", "sk-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout);
    stdin
        .write_all(
            b"{\"id\":0,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"pipe\",\"version\":\"1\"}}}\n\
              {\"id\":1,\"method\":\"thread/start\",\"params\":{}}\n",
        )
        .await
        .unwrap();
    let mut thread = None;
    let mut out = String::new();
    while thread.is_none() {
        let mut line = String::new();
        let n = tokio::time::timeout(
            T,
            tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(n > 0, "stdout ended early: {out}");
        out.push_str(&line);
        let m: Value = serde_json::from_str(&line).unwrap();
        if m["id"] == 1 {
            thread = m["result"]["thread"]["id"].as_str().map(str::to_string);
        }
    }
    let turn = json!({"id": 2, "method": "turn/start", "params": turn_params(thread.as_deref().unwrap(), "hi")});
    stdin
        .write_all(format!("{turn}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    tokio::time::timeout(T, lines.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = tokio::time::timeout(T, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let done = completions(&out);
    assert_eq!(done.len(), 1, "{out}");
    assert_eq!(done[0]["params"]["turn"]["status"], "completed", "{out}");
    assert_eq!(
        done[0]["params"]["turn"]["items"][0]["text"],
        "Hello, world!"
    );
}

#[tokio::test]
async fn five_turns_on_a_stalled_provider_then_end_of_input_get_five_completions() {
    // Five threads, a turn on each, all stalled at the provider; then the host closes
    // stdin with the five turns running.
    let s = SessionBuilder {
        mock: MockOptions::with_tokens(["sk-test"]),
        ..SessionBuilder::default()
    }
    .env("AUTHBRIDGE_API_KEY", "sk-test")
    .start()
    .await;
    s.mock.set_failure(Some(Failure::StallAfterHeaders));
    let mut turns = Vec::new();
    for i in 0..5 {
        let thread = start_thread(&s.host).await;
        turns.push(start_turn_on(&s.host, &thread, &format!("turn {i}")).await);
    }
    assert!(s.mock.wait_for_requests(5, T).await);
    let closed = Instant::now();
    s.host.close_stdin().await;
    let mut host = s.host;
    let status = host.wait_exit(Duration::from_secs(5)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
    let done: Vec<Value> = host
        .notifications()
        .into_iter()
        .filter(|m| m["method"] == "turn/completed")
        .collect();
    assert_eq!(done.len(), 5, "{}", host.transcript());
    for id in &turns {
        let one: Vec<&Value> = done
            .iter()
            .filter(|m| m["params"]["turn"]["id"] == id.as_str())
            .collect();
        assert_eq!(one.len(), 1, "turn {id}");
        assert_eq!(one[0]["params"]["turn"]["status"], "interrupted");
    }
}

#[tokio::test]
async fn codexs_launch_line_serves_and_other_listen_values_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let bin = authbridge_testkit::server::authbridge_bin();
    let out = tokio::process::Command::new(&bin)
        .args(["app-server", "--listen", "ws://127.0.0.1:4000"])
        .arg("--home")
        .arg(home.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stdio://"), "{stderr}");

    let mut child = tokio::process::Command::new(&bin)
        .args(["app-server", "--listen", "stdio://", "-c", "model=gpt-5"])
        .arg("--home")
        .arg(home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"{\"id\":0,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"codex_sdk\",\"version\":\"1\"}}}\n{\"id\":1,\"method\":\"thread/start\",\"params\":{}}\n")
        .await
        .unwrap();
    drop(stdin);
    let mut out = String::new();
    tokio::time::timeout(T, child.stdout.take().unwrap().read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = tokio::time::timeout(T, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let messages: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(messages[0]["id"], 0);
    assert!(messages[0]["result"]["codexHome"].is_string(), "{out}");
    assert_eq!(messages[1]["id"], 1);
    assert_eq!(messages[1]["result"]["model"], "gpt-5", "{out}");
    assert_eq!(messages[2]["method"], "thread/started", "{out}");
}
