//! One end-to-end session: a temporary home, a mock provider, and the real server driven by
//! the host simulator, plus the few calls every test makes (login, a whole turn).

use std::path::Path;
use std::time::Duration;

use authbridge_protocol::ErrorObject;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::host::{Host, HostOptions};
use crate::mock_provider::{MockOptions, MockProvider};
use crate::refresh_policy::RefreshPolicy;
use crate::server;

/// Deadline for a whole turn.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// What to start.
#[derive(Clone, Debug)]
pub struct SessionBuilder {
    pub mock: MockOptions,
    pub host: HostOptions,
    /// Extra `-c key=value` overrides, after the ones pointing `openai` at the mock.
    /// `{mock_url}` in them is replaced by the mock's base URL.
    pub overrides: Vec<String>,
    /// Extra environment variables for the server.
    pub env: Vec<(String, String)>,
    /// `external_auth_refresh_timeout_ms`.
    pub refresh_timeout_ms: u64,
    /// Send `initialize` (with these capabilities) before returning; `None`: do not.
    pub initialize: Option<Value>,
    /// Log in with this API key after `initialize` (the mock accepts it).
    pub api_key: Option<String>,
    /// Written as `auth.json` into the home before the server starts.
    pub auth_json: Option<Value>,
}

impl Default for SessionBuilder {
    fn default() -> Self {
        Self {
            mock: MockOptions::default(),
            host: HostOptions::default(),
            overrides: Vec::new(),
            env: Vec::new(),
            refresh_timeout_ms: 500,
            initialize: Some(json!({})),
            api_key: None,
            auth_json: None,
        }
    }
}

impl SessionBuilder {
    /// The default session with a mock that accepts only these tokens.
    pub fn accepting<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Self {
        Self {
            mock: MockOptions::with_tokens(tokens),
            ..Self::default()
        }
    }

    /// How the host answers `account/chatgptAuthTokens/refresh`.
    pub fn refresh(mut self, policy: RefreshPolicy) -> Self {
        self.host.refresh = policy;
        self
    }

    /// Logs in with `key` (`account/login/start` `apiKey`) once initialized; the mock
    /// accepts it.
    pub fn api_key(mut self, key: &str) -> Self {
        self.api_key = Some(key.to_owned());
        self
    }

    /// A managed login in `auth.json` before the server starts.
    pub fn auth_json(mut self, auth: &crate::auth_json::ManagedAuth) -> Self {
        self.auth_json = Some(auth.to_json());
        self
    }

    /// The active provider is `corp` (named `Corp`) at the mock, its bearer token from
    /// `command` (`model_providers.corp.auth.command`; a Windows path's `\` escaped).
    pub fn command_provider(self, command: &Path) -> Self {
        self.config("model_provider=corp")
            .config("model_providers.corp.name=Corp")
            .config("model_providers.corp.base_url={mock_url}")
            .config(&format!(
                "model_providers.corp.auth.command=\"{}\"",
                command.display().to_string().replace('\\', "\\\\")
            ))
    }

    /// Adds a `-c key=value` override.
    pub fn config(mut self, key_value: &str) -> Self {
        self.overrides.push(key_value.to_owned());
        self
    }

    /// Adds an environment variable for the server.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts everything.
    ///
    /// # Panics
    /// If the mock, the home or the process cannot be started, or `initialize` fails.
    pub async fn start(mut self) -> Session {
        let home = tempfile::tempdir().expect("temporary home");
        if let Some(auth) = &self.auth_json {
            crate::auth_json::write(home.path(), auth);
        }
        if let Some(key) = &self.api_key {
            self.mock.valid_tokens.push(key.clone());
        }
        let mock = MockProvider::start(self.mock).await.expect("mock provider");
        let mut overrides = server::openai_overrides(&mock.url(), self.refresh_timeout_ms);
        overrides.extend(
            self.overrides
                .iter()
                .map(|o| o.replace("{mock_url}", &mock.url())),
        );
        let mut cmd = server::command(home.path(), &overrides);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let host = Host::spawn(cmd, self.host).expect("spawn authbridge");
        if let Some(capabilities) = self.initialize {
            host.initialize(capabilities).await.expect("initialize");
        }
        if let Some(key) = &self.api_key {
            host.request(
                "account/login/start",
                json!({"type": "apiKey", "apiKey": key}),
            )
            .await
            .unwrap_or_else(|e| panic!("the API key login failed: {e:?}"));
        }
        Session { home, mock, host }
    }
}

/// A running session. Dropping it kills the server and stops the mock.
pub struct Session {
    pub home: TempDir,
    pub mock: MockProvider,
    pub host: Host,
}

impl Session {
    /// The default session, initialized.
    pub async fn start() -> Self {
        SessionBuilder::default().start().await
    }

    /// The temporary home.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Logs in with external ChatGPT tokens; the login result or its error.
    pub async fn login_external(
        &self,
        access_token: &str,
        account_id: &str,
        plan: Option<&str>,
    ) -> Result<Value, ErrorObject> {
        login_external(&self.host, access_token, account_id, plan).await
    }

    /// `getAuthStatus` with the token: what the server would send now.
    ///
    /// # Panics
    /// If the server does not answer it.
    pub async fn auth_status(&self) -> Value {
        self.host
            .request("getAuthStatus", json!({"includeToken": true}))
            .await
            .unwrap_or_else(|e| panic!("getAuthStatus failed: {e:?}"))
    }

    /// Runs one turn on a new thread to its end; its [`outcome`].
    pub async fn turn(&self, input: &str) -> Value {
        run_turn(&self.host, input).await
    }
}

/// `account/login/start` with `chatgptAuthTokens`.
pub async fn login_external(
    host: &Host,
    access_token: &str,
    account_id: &str,
    plan: Option<&str>,
) -> Result<Value, ErrorObject> {
    let mut params = json!({"type": "chatgptAuthTokens", "accessToken": access_token, "chatgptAccountId": account_id});
    if let Some(plan) = plan {
        params["chatgptPlanType"] = json!(plan);
    }
    host.request("account/login/start", params).await
}

/// `thread/start` with default settings; the new thread's id.
///
/// # Panics
/// If `thread/start` fails or answers without `thread.id`.
pub async fn start_thread(host: &Host) -> String {
    let result = host
        .request("thread/start", json!({}))
        .await
        .unwrap_or_else(|e| panic!("thread/start failed: {e:?}"));
    result["thread"]["id"]
        .as_str()
        .expect("thread.id")
        .to_owned()
}

/// `turn/start` params for one text input on a thread.
pub fn turn_params(thread_id: &str, input: &str) -> Value {
    json!({"threadId": thread_id, "input": [{"type": "text", "text": input}]})
}

/// Starts a turn on a thread; the turn's id.
///
/// # Panics
/// If `turn/start` fails or answers without `turn.id`.
pub async fn start_turn_on(host: &Host, thread_id: &str, input: &str) -> String {
    let result = host
        .request("turn/start", turn_params(thread_id, input))
        .await
        .unwrap_or_else(|e| panic!("turn/start failed: {e:?}"));
    result["turn"]["id"].as_str().expect("turn.id").to_owned()
}

/// Starts a turn on a new thread of its own (so turns started this way may run
/// concurrently); the turn's id.
pub async fn start_turn(host: &Host, input: &str) -> String {
    let thread = start_thread(host).await;
    start_turn_on(host, &thread, input).await
}

/// Starts one turn on each thread with every `turn/start` written before any answer is
/// read, so they reach the server together; the turns' ids, in thread order.
///
/// # Panics
/// If a `turn/start` fails or is not answered within [`TURN_TIMEOUT`].
pub async fn start_turns_together(host: &Host, threads: &[String], input: &str) -> Vec<String> {
    for (i, thread) in threads.iter().enumerate() {
        let request = json!({"id": format!("together-{i}"), "method": "turn/start",
            "params": turn_params(thread, input)});
        host.send(&request).await.expect("write turn/start");
    }
    let mut ids = Vec::with_capacity(threads.len());
    for i in 0..threads.len() {
        let id = format!("together-{i}");
        let answer = host
            .wait_message(|m| m["id"] == id.as_str(), TURN_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("turn/start {id} was not answered"));
        let turn = answer["result"]["turn"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("turn/start {id} failed: {answer}"));
        ids.push(turn.to_owned());
    }
    ids
}

/// Waits for the `turn/completed` of this turn; its params as sent.
///
/// # Panics
/// If it does not come within [`TURN_TIMEOUT`] (the message carries the transcript).
pub async fn wait_turn_completed(host: &Host, turn_id: &str) -> Value {
    let done = host
        .wait_message(
            |m| m["method"] == "turn/completed" && m["params"]["turn"]["id"] == turn_id,
            TURN_TIMEOUT,
        )
        .await;
    match done {
        Some(m) => m["params"].clone(),
        None => panic!(
            "turn {turn_id} did not complete within {TURN_TIMEOUT:?}\n--- transcript ---\n{}\n--- stderr ---\n{}",
            host.transcript(),
            host.stderr_text()
        ),
    }
}

/// The outcome of a `turn/completed`, in brief: `{"turnId","status","text"}` (the agent
/// messages' text) when it completed or was interrupted, `{"turnId","status","error"}`
/// (the turn's `TurnError`) when it failed.
pub fn outcome(completed: &Value) -> Value {
    let turn = &completed["turn"];
    let status = turn["status"].clone();
    if status == "failed" {
        return json!({"turnId": turn["id"], "status": status, "error": turn["error"]});
    }
    let text: String = turn["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "agentMessage")
        .filter_map(|i| i["text"].as_str())
        .collect();
    json!({"turnId": turn["id"], "status": status, "text": text})
}

/// The error message of a failed turn's [`outcome`].
///
/// # Panics
/// If the turn did not fail.
pub fn failure_message(outcome: &Value) -> String {
    assert_eq!(outcome["status"], "failed", "{outcome}");
    outcome["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits for the `turn/completed` of this turn; its [`outcome`].
pub async fn wait_turn(host: &Host, turn_id: &str) -> Value {
    outcome(&wait_turn_completed(host, turn_id).await)
}

/// Starts a turn on a new thread and waits for its end; its [`outcome`].
pub async fn run_turn(host: &Host, input: &str) -> Value {
    let id = start_turn(host, input).await;
    wait_turn(host, &id).await
}

/// The deltas the host received for a turn, joined.
pub fn streamed_text(host: &Host, turn_id: &str) -> String {
    host.notifications()
        .iter()
        .filter(|m| m["method"] == "item/agentMessage/delta" && m["params"]["turnId"] == turn_id)
        .filter_map(|m| m["params"]["delta"].as_str().map(str::to_owned))
        .collect()
}

/// Every file under `dir` whose bytes contain `needle` (recursively).
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}
