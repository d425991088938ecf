//! Codex's schema as the judge: installs `@openai/codex@0.171.0` from the npm registry (cached
//! under the target directory), generates its JSON Schema with `codex app-server
//! generate-json-schema`, drives the real `authbridge` binary through a full session over real
//! pipes against the loopback mock provider, and validates every message authbridge sends
//! against the definition for its method: responses against the response type of the
//! request's method, errors against `JSONRPCError`, notifications and server requests by
//! method. Zero invalid, zero unknown methods. The one allowed difference is the parse-error
//! reply's `id: null`, which JSON-RPC requires (documented in docs/conformance.md).
//!
//! `getAuthStatus` is not sent: Codex 0.171's live server answers it, but its generated
//! schema has no definition for it, so there is nothing to judge it against.
//!
//! Needs `npm` and the npm registry (CI has both); without them it fails, saying so.

mod codex_kit;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use authbridge_testkit::jwt::Jwt;
use authbridge_testkit::{Host, HostOptions, MockOptions, MockProvider, RefreshPolicy};
use serde_json::{json, Value};

use codex_kit::{Judge, Tally};

const ACCOUNT: &str = "org-schema";
const WAIT: Duration = Duration::from_secs(10);

/// The host side: every request gets an id from 1000 up and its method is remembered, so
/// each response can be judged against the response type of its request's method.
struct Driver {
    host: Host,
    mock: MockProvider,
    methods: Mutex<HashMap<String, String>>,
    next_id: AtomicI64,
    _home: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        let home = tempfile::tempdir().expect("temporary home");
        let mock = MockProvider::start(MockOptions {
            deltas: ["po", "ng"].map(String::from).to_vec(),
            ..MockOptions::default()
        })
        .await
        .expect("mock provider");
        let mut overrides = authbridge_testkit::server::openai_overrides(&mock.url(), 300);
        overrides.push("model=gpt-5".into());
        let mut cmd = authbridge_testkit::server::command(home.path(), &overrides);
        // Codex's launch line, as every Codex host spawns its server.
        let std_cmd = cmd.as_std_mut();
        let args: Vec<_> = std_cmd.get_args().map(|a| a.to_owned()).collect();
        let mut launch = tokio::process::Command::new(std_cmd.get_program());
        launch
            .args(["app-server", "--listen", "stdio://"])
            .args(args);
        for (k, v) in std_cmd.get_envs() {
            match v {
                Some(v) => launch.env(k, v),
                None => launch.env_remove(k),
            };
        }
        let host = Host::spawn(launch, HostOptions::default()).expect("spawn authbridge");
        Self {
            host,
            mock,
            methods: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1000),
            _home: home,
        }
    }

    /// Sends a request and returns the whole response message.
    async fn call(&self, method: &str, params: Option<Value>) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.methods
            .lock()
            .unwrap()
            .insert(json!(id).to_string(), method.to_owned());
        let mut message = json!({"id": id, "method": method});
        if let Some(p) = params {
            message["params"] = p;
        }
        match self.host.call_message(message, WAIT).await {
            Ok(response) => response,
            Err(e) => panic!(
                "{e}\n--- transcript ---\n{}\n--- stderr ---\n{}",
                self.host.transcript(),
                self.host.stderr_text()
            ),
        }
    }

    async fn ok(&self, method: &str, params: Value) -> Value {
        let response = self.call(method, Some(params)).await;
        assert!(
            response.get("result").is_some(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    async fn err(&self, method: &str, params: Option<Value>, code: i64) -> Value {
        let response = self.call(method, params).await;
        assert_eq!(
            response["error"]["code"], code,
            "{method}: expected error {code}, got {response}"
        );
        response["error"].clone()
    }

    async fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        match self.host.wait_message(pred, WAIT).await {
            Some(m) => m,
            None => panic!(
                "no {what} within {WAIT:?}\n--- transcript ---\n{}\n--- stderr ---\n{}",
                self.host.transcript(),
                self.host.stderr_text()
            ),
        }
    }

    async fn login_tokens(&self, token: &str) {
        self.ok(
            "account/login/start",
            json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": ACCOUNT, "chatgptPlanType": "pro"}),
        )
        .await;
    }

    /// Starts a turn on `thread`; its id.
    async fn start_turn(&self, thread: &str, text: &str) -> String {
        let result = self
            .ok(
                "turn/start",
                json!({"threadId": thread, "input": [{"type": "text", "text": text, "text_elements": []}]}),
            )
            .await;
        result["turn"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("turn/start result without turn.id: {result}"))
            .to_owned()
    }

    /// Waits for this turn's `turn/completed`; its `turn`.
    async fn completed(&self, turn: &str) -> Value {
        let done = self
            .wait(&format!("turn/completed for {turn}"), |m| {
                m["method"] == "turn/completed" && m["params"]["turn"]["id"] == turn
            })
            .await;
        done["params"]["turn"].clone()
    }

    async fn turn(&self, thread: &str, text: &str) -> Value {
        let id = self.start_turn(thread, text).await;
        self.completed(&id).await
    }

    fn method_of(&self, id: &Value) -> Option<String> {
        self.methods.lock().unwrap().get(&id.to_string()).cloned()
    }
}

fn token(gen: u32) -> String {
    Jwt::new()
        .email("schema@example.com")
        .account(ACCOUNT)
        .user("user-schema")
        .plan("pro")
        .exp_in(Duration::from_secs(3600))
        .claim("gen", json!(gen))
        .mint()
}

/// The whole session; every message it makes authbridge send is judged afterwards.
async fn drive(d: &Driver) {
    // Handshake, and the requests around it.
    d.err("account/read", Some(json!({})), -32600).await;
    let init = d
        .ok(
            "initialize",
            json!({"clientInfo": {"name": "schema_judge", "title": "Schema judge", "version": "0.0.1"},
                   "capabilities": {"experimentalApi": true}}),
        )
        .await;
    for member in ["userAgent", "codexHome", "platformFamily", "platformOs"] {
        assert!(
            init.get(member).is_some(),
            "initialize lacks {member}: {init}"
        );
    }
    d.host.notify("initialized", None).await.unwrap();
    d.err(
        "initialize",
        Some(json!({"clientInfo": {"name": "schema_judge", "version": "0.0.1"}})),
        -32600,
    )
    .await;

    // Logged out.
    d.ok("account/read", json!({"refreshToken": false})).await;
    d.call("account/read", None).await;
    d.err("model/list", Some(json!({})), -32000).await;
    let no_account = d.call("account/rateLimits/read", None).await;
    assert!(
        no_account.get("error").is_some(),
        "rate limits without an account: {no_account}"
    );

    // API key.
    d.ok(
        "account/login/start",
        json!({"type": "apiKey", "apiKey": "sk-schema-test-0123456789"}),
    )
    .await;
    d.wait("account/updated apikey", |m| {
        m["method"] == "account/updated" && m["params"]["authMode"] == "apikey"
    })
    .await;
    d.ok("account/read", json!({})).await;
    let with_key = d.call("account/rateLimits/read", None).await;
    assert!(
        with_key.get("error").is_some(),
        "rate limits with an API key: {with_key}"
    );
    d.ok("account/logout", json!({})).await;
    d.call("account/logout", None).await;

    // Login errors.
    d.err(
        "account/login/start",
        Some(json!({"type": "apiKey"})),
        -32602,
    )
    .await;
    d.err(
        "account/login/start",
        Some(json!({"type": "bogusType"})),
        -32602,
    )
    .await;
    d.err(
        "account/login/start",
        Some(json!({"type": "amazonBedrock"})),
        -32602,
    )
    .await;
    d.err(
        "account/login/start",
        Some(json!({"type": "chatgptAuthTokens", "accessToken": "not-a-jwt", "chatgptAccountId": ACCOUNT})),
        -32602,
    )
    .await;
    d.err(
        "account/login/start",
        Some(json!({"type": "chatgptAuthTokens", "accessToken": token(0)})),
        -32602,
    )
    .await;
    d.err("account/read", Some(json!({"refreshToken": "yes"})), -32602)
        .await;
    d.err("foo/bar", Some(json!({})), -32601).await;
    // Codex methods authbridge does not serve: -32601, like any unknown method.
    d.err("thread/fork", Some(json!({"threadId": "x"})), -32601)
        .await;
    // A line that is not JSON: -32700 with `id: null` (the documented difference).
    d.host
        .write_raw(b"{\"id\": 99, \"method\": \"account/read\", \"params\": {\n")
        .await
        .unwrap();
    d.wait("the parse error", |m| m["error"]["code"] == -32700)
        .await;
    // Browser sign-in where the build has it; either way the answer is judged. The cancel
    // of a login that does not exist is judged too.
    let browser = d
        .call("account/login/start", Some(json!({"type": "chatgpt"})))
        .await;
    if let Some(login_id) = browser["result"]["loginId"].as_str() {
        d.ok("account/login/cancel", json!({"loginId": login_id}))
            .await;
        d.wait("the cancelled login's completion", |m| {
            m["method"] == "account/login/completed" && m["params"]["loginId"] == login_id
        })
        .await;
    }
    d.call(
        "account/login/cancel",
        Some(json!({"loginId": "no-such-login"})),
    )
    .await;

    // External ChatGPT tokens; the first one is stale.
    let stale = token(0);
    let fresh = token(1);
    d.mock.accept_token(&fresh);
    d.login_tokens(&stale).await;
    d.ok("account/read", json!({"refreshToken": false})).await;
    d.ok("account/read", json!({"refreshToken": true})).await;
    d.err(
        "account/login/start",
        Some(json!({"type": "apiKey", "apiKey": "sk-schema-test-0123456789"})),
        -32600,
    )
    .await;

    // Models with a cursor, and rate limits, on a token the provider accepts.
    d.login_tokens(&fresh).await;
    let page = d.ok("model/list", json!({"limit": 1})).await;
    let cursor = page["nextCursor"].clone();
    assert!(
        cursor.is_string(),
        "model/list limit 1 of 2 gives a nextCursor: {page}"
    );
    d.ok("model/list", json!({"cursor": cursor, "limit": 10}))
        .await;
    d.ok("model/list", json!({})).await;
    d.ok("account/rateLimits/read", json!({})).await;
    d.call("account/rateLimits/read", None).await;
    d.login_tokens(&stale).await;

    // Threads.
    let started = d
        .ok("thread/start", json!({"ephemeral": true, "cwd": "/tmp"}))
        .await;
    let thread = started["thread"]["id"]
        .as_str()
        .expect("thread.id")
        .to_owned();
    d.wait("thread/started", |m| m["method"] == "thread/started")
        .await;
    d.ok("thread/read", json!({"threadId": thread})).await;
    d.ok("thread/list", json!({})).await;
    d.err(
        "thread/read",
        Some(json!({"threadId": "no-such-thread"})),
        -32602,
    )
    .await;

    // A turn whose first provider call gets 401: the host refresh heals it.
    d.host
        .set_refresh_policy(RefreshPolicy::tokens(&fresh, ACCOUNT, Some("pro")));
    let healed = d.turn(&thread, "ping").await;
    assert_eq!(healed["status"], "completed", "healed turn: {healed}");
    assert_eq!(d.host.refresh_requests().len(), 1);
    // A second turn in the same thread, and the thread read with its turns.
    let second = d.turn(&thread, "ping again").await;
    assert_eq!(second["status"], "completed", "second turn: {second}");
    d.ok(
        "thread/read",
        json!({"threadId": thread, "includeTurns": true}),
    )
    .await;

    // The refresh answered with an error, with a token that is not a JWT, and not at all.
    for (policy, what) in [
        (RefreshPolicy::error(-32000, "refresh failed"), "error"),
        (RefreshPolicy::not_a_jwt(ACCOUNT), "not a JWT"),
        (RefreshPolicy::silence(), "silence"),
    ] {
        d.mock.reject_token(&fresh);
        d.login_tokens(&fresh).await;
        d.host.set_refresh_policy(policy);
        let failed = d.turn(&thread, "ping").await;
        assert_eq!(
            failed["status"], "failed",
            "refresh answered with {what}: {failed}"
        );
        d.mock.accept_token(&fresh);
    }

    // Interrupt a turn that streams slowly; a second turn meanwhile, and non-text input.
    d.login_tokens(&fresh).await;
    d.mock
        .set_deltas(["one ", "two ", "three ", "four ", "five"]);
    d.mock.set_delta_delay(Duration::from_millis(300));
    let running = d.start_turn(&thread, "count").await;
    d.wait("the first delta", |m| {
        m["method"] == "item/agentMessage/delta" && m["params"]["turnId"] == running.as_str()
    })
    .await;
    d.err(
        "turn/start",
        Some(json!({"threadId": thread, "input": [{"type": "text", "text": "steer"}]})),
        -32600,
    )
    .await;
    d.ok(
        "turn/interrupt",
        json!({"threadId": thread, "turnId": running}),
    )
    .await;
    let interrupted = d.completed(&running).await;
    assert_eq!(interrupted["status"], "interrupted", "{interrupted}");
    d.mock.set_delta_delay(Duration::ZERO);
    d.err(
        "turn/start",
        Some(json!({"threadId": thread, "input": [{"type": "image", "url": "https://example.com/a.png"}]})),
        -32602,
    )
    .await;
    d.err(
        "turn/start",
        Some(json!({"threadId": "no-such-thread", "input": [{"type": "text", "text": "x"}]})),
        -32602,
    )
    .await;
    // A turn that is not running: answered (either way), and judged.
    d.call(
        "turn/interrupt",
        Some(json!({"threadId": thread, "turnId": "no-such-turn"})),
    )
    .await;

    // Logout, and the state after it.
    d.ok("account/logout", json!({})).await;
    d.wait("account/updated after logout", |m| {
        m["method"] == "account/updated" && m["params"]["authMode"].is_null()
    })
    .await;
    d.ok("account/read", json!({})).await;
    d.err(
        "turn/start",
        Some(json!({"threadId": thread, "input": [{"type": "text", "text": "x"}]})),
        -32000,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_authbridge_sends_in_a_full_session_is_valid_in_codex_0_171_schema() {
    let bundle = tokio::task::spawn_blocking(codex_kit::generate_schema)
        .await
        .expect("schema generation");
    let judge = Judge::new(bundle);
    // The judge must be able to fail: a v1 shape and an unknown method are caught.
    let v1_turn = judge.judge(
        &json!({"method": "turn/completed", "params": {"turnId": "t", "status": "completed", "text": "x"}}),
        None,
    );
    assert!(
        v1_turn.problem.is_some(),
        "v1's turn/completed must be invalid"
    );
    let delta = judge.judge(
        &json!({"method": "turn/delta", "params": {"turnId": "t", "delta": "x"}}),
        None,
    );
    assert!(delta.problem.is_some(), "turn/delta is no Codex method");

    let mut d = Driver::start().await;
    drive(&d).await;
    // End the session and wait for the server to exit: everything it sent is then read.
    d.host.close_stdin().await;
    let status = d.host.wait_exit(Duration::from_secs(5)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the server did not exit 0 after stdin closed: {status:?}"
    );
    // Returns as soon as the reader has seen the end of stdout.
    let _ = d.host.wait_message(|_| false, Duration::from_secs(5)).await;

    let mut tally = Tally::default();
    for message in d.host.messages() {
        let method = message.get("id").and_then(|id| d.method_of(id));
        let verdict = judge.judge(&message, method.as_deref());
        tally.add(verdict, &message);
    }
    eprintln!("{}", tally.summary());
    assert!(
        tally.total >= 80,
        "the session made only {} messages",
        tally.total
    );
    for kind in [
        "response initialize",
        "response thread/start",
        "response turn/start",
        "response model/list",
        "response account/rateLimits/read",
        "notification item/agentMessage/delta",
        "notification turn/completed",
        "notification error",
        "request account/chatgptAuthTokens/refresh",
    ] {
        assert!(
            tally.by_kind.contains_key(kind),
            "the session made no {kind}\n{}",
            tally.summary()
        );
    }
    assert_eq!(
        tally.documented.len(),
        1,
        "exactly one documented difference (the parse error's id: null)\n{}",
        tally.summary()
    );
    assert!(
        tally.invalid.is_empty(),
        "{} message(s) authbridge sent are not valid in Codex {}'s schema:\n{}",
        tally.invalid.len(),
        codex_kit::CODEX_VERSION,
        tally.summary()
    );
}
