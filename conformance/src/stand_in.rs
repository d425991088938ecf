//! The stand-in server of host mode: answers like authbridge, asks the host for tokens with
//! each refresh reason, checks every answer, and writes its findings to the report file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::host::{Finding, CHECKS};
use crate::pattern::decode_jwt;
use authbridge_testkit::wire::{encode, Decoder, Frame, Framing};

use crate::kind::{kind_of, Kind};

#[derive(Clone)]
struct Shared {
    out: mpsc::UnboundedSender<Value>,
    pending: Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>,
    next_id: Arc<AtomicI64>,
    findings: Arc<Mutex<Vec<Finding>>>,
    report: PathBuf,
    /// How long the host has to answer a refresh request (5 s unless the kit says otherwise).
    answer_within: Duration,
    /// Becomes true when the refresh checks are over (or were never started).
    checks_done: watch::Sender<bool>,
}

impl Shared {
    fn record(&self, check: &str, status: &str, detail: impl Into<String>) {
        let mut all = self.findings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = all.iter_mut().find(|f| f.check == check) {
            f.status = status.into();
            f.detail = detail.into();
        }
        save(&self.report, &all);
    }

    fn send(&self, message: Value) {
        let _ = self.out.send(message);
    }

    /// Sends a server→host request and waits for the answer (or `None` after the deadline).
    async fn ask(&self, method: &str, params: Value) -> Option<Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        self.send(json!({"id": id, "method": method, "params": params}));
        tokio::time::timeout(self.answer_within, rx)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

fn save(path: &Path, findings: &[Finding]) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, json!({"findings": findings}).to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// Serves one host on stdin/stdout until it closes stdin.
pub async fn run(report: &Path, answer_within: Duration) -> anyhow::Result<()> {
    let findings: Vec<Finding> = CHECKS.iter().map(|(c, _)| Finding::pending(c)).collect();
    save(report, &findings);
    let (out, mut out_rx) = mpsc::unbounded_channel::<Value>();
    let (checks_done, _) = watch::channel(false);
    let shared = Shared {
        out,
        pending: Arc::default(),
        next_id: Arc::new(AtomicI64::new(0)),
        findings: Arc::new(Mutex::new(findings)),
        report: report.to_owned(),
        answer_within,
        checks_done,
    };
    let framing = Arc::new(Mutex::new(Framing::Ndjson));
    let writer_framing = framing.clone();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(msg) = out_rx.recv().await {
            let f = *writer_framing.lock().unwrap_or_else(|p| p.into_inner());
            if stdout.write_all(&encode(f, &msg)).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let mut state = State::default();
    let mut decoder = Decoder::default();
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stdin.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        for frame in decoder.push(&buf[..n]) {
            if let Some(f) = decoder.framing() {
                *framing.lock().unwrap_or_else(|p| p.into_inner()) = f;
            }
            match frame {
                Frame::Message(m) => state.handle(&shared, m),
                Frame::NotJson(_) => shared.send(json!({"id": null, "error": {"code": -32700, "message": "Parse error: the message is not JSON"}})),
            }
        }
    }
    shared.record(
        "closes-stdin",
        "pass",
        "the host ended the session by closing stdin",
    );
    {
        let mut all = shared.findings.lock().unwrap_or_else(|p| p.into_inner());
        for f in all.iter_mut().filter(|f| f.status == "pending") {
            if state.account.is_none() && f.check.starts_with("refresh-") {
                f.status = "skipped".into();
                f.detail = "the host never logged in with chatgptAuthTokens".into();
            } else {
                f.status = "fail".into();
                f.detail = "the host closed the connection before this was checked".into();
            }
        }
        save(report, &all);
    }
    drop(shared);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    Ok(())
}

#[derive(Default)]
struct State {
    initialized: bool,
    seen_request: bool,
    account: Option<String>,
    api_key: bool,
    plan: Option<String>,
}

impl State {
    fn handle(&mut self, shared: &Shared, msg: Value) {
        let kind = kind_of(&msg);
        if let Kind::Response(Value::Number(id)) = &kind {
            let waiter = id.as_i64().and_then(|id| {
                shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id)
            });
            if let Some(tx) = waiter {
                let _ = tx.send(msg);
            }
            return;
        }
        let Kind::Request(method) = kind else { return };
        let id = msg["id"].clone();
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        let reply = |result: Result<Value, (i64, String)>| match result {
            Ok(r) => shared.send(json!({"id": id, "result": r})),
            Err((code, message)) => {
                shared.send(json!({"id": id, "error": {"code": code, "message": message}}))
            }
        };
        let first = !self.seen_request;
        self.seen_request = true;
        if method == "initialize" {
            if first {
                shared.record(
                    "initialize-first",
                    "pass",
                    "initialize was the first request",
                );
            }
            if self.initialized {
                return reply(Err((-32600, "Already initialized".into())));
            }
            self.initialized = true;
            return reply(Ok(json!({
                "userAgent": "authbridge-stand-in/0.1.0",
                "codexHome": std::env::temp_dir(),
                "platformFamily": if cfg!(windows) { "windows" } else { "unix" },
                "platformOs": std::env::consts::OS,
                "serverInfo": {"name": "authbridge", "version": "0.1.0"}
            })));
        }
        if !self.initialized {
            shared.record(
                "initialize-first",
                "fail",
                format!("the host sent {method} before initialize"),
            );
            return reply(Err((-32600, "Not initialized".into())));
        }
        match method.as_str() {
            "account/login/start" => self.login(shared, &params, reply),
            "account/read" => {
                let account = match (&self.account, self.api_key) {
                    (Some(_), _) => {
                        json!({"type": "chatgpt", "email": null, "planType": self.plan.clone().unwrap_or("unknown".into())})
                    }
                    (None, true) => json!({"type": "apiKey"}),
                    _ => Value::Null,
                };
                reply(Ok(json!({"account": account, "requiresOpenaiAuth": true})));
            }
            "account/logout" => {
                self.account = None;
                self.api_key = false;
                reply(Ok(json!({})));
                shared.send(json!({"method": "account/updated", "params": {"authMode": null, "planType": null}}));
            }
            "getAuthStatus" => {
                let mode = if self.account.is_some() {
                    json!("chatgptAuthTokens")
                } else if self.api_key {
                    json!("apikey")
                } else {
                    Value::Null
                };
                reply(Ok(
                    json!({"authMethod": mode, "authToken": null, "requiresOpenaiAuth": true}),
                ));
            }
            "model/list" => reply(Ok(
                json!({"data": [codex_v2::model("gpt-5")], "nextCursor": null}),
            )),
            "thread/start" => {
                let thread = codex_v2::thread(&uuid::Uuid::new_v4().to_string());
                reply(Ok(codex_v2::thread_start_response(&thread)));
                shared.send(json!({"method": "thread/started", "params": {"thread": thread}}));
            }
            "turn/interrupt" => reply(Ok(json!({}))),
            "turn/start" => {
                let thread = params["threadId"].as_str().unwrap_or_default().to_owned();
                let turn = uuid::Uuid::new_v4().to_string();
                reply(Ok(
                    json!({"turn": codex_v2::turn(&turn, "inProgress", vec![])}),
                ));
                let shared = shared.clone();
                let wait = self.account.is_some();
                tokio::spawn(async move {
                    // As if the provider said 401 first: the turn streams once the refreshes are over.
                    let mut done = shared.checks_done.subscribe();
                    if wait {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(20), done.wait_for(|d| *d))
                                .await;
                    }
                    for m in
                        codex_v2::turn_notifications(&thread, &turn, &["Hello", ", ", "world", "!"])
                    {
                        shared.send(m);
                    }
                });
            }
            other => reply(Err((-32601, format!("Method not found: {other}")))),
        }
    }

    fn login(
        &mut self,
        shared: &Shared,
        params: &Value,
        reply: impl FnOnce(Result<Value, (i64, String)>),
    ) {
        let kind = params["type"].as_str().unwrap_or_default();
        let mode = match kind {
            "apiKey" if params["apiKey"].is_string() => {
                self.api_key = true;
                json!("apikey")
            }
            "chatgptAuthTokens" => {
                let token = params["accessToken"].as_str().unwrap_or_default();
                let account = params["chatgptAccountId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if let Err(why) = decode_jwt(token) {
                    shared.record(
                        "login-chatgpt-auth-tokens",
                        "fail",
                        format!("accessToken is not a JWT: {why}"),
                    );
                    return reply(Err((-32602, format!("invalid access token: {why}"))));
                }
                if account.is_empty() {
                    shared.record(
                        "login-chatgpt-auth-tokens",
                        "fail",
                        "chatgptAccountId is missing or empty",
                    );
                    return reply(Err((
                        -32602,
                        "chatgptAccountId: expected a non-empty string".into(),
                    )));
                }
                shared.record(
                    "login-chatgpt-auth-tokens",
                    "pass",
                    format!("logged in as {account}"),
                );
                let first = self.account.is_none();
                self.account = Some(account.clone());
                self.plan = params["chatgptPlanType"].as_str().map(str::to_owned);
                if first {
                    tokio::spawn(refresh_checks(shared.clone(), account));
                }
                json!("chatgptAuthTokens")
            }
            other => return reply(Err((-32602, format!("unsupported login type \"{other}\"")))),
        };
        let kind = if mode == "apikey" {
            "apiKey"
        } else {
            "chatgptAuthTokens"
        };
        reply(Ok(json!({"type": kind})));
        shared.send(json!({"method": "account/login/completed", "params": {"loginId": null, "success": true, "error": null}}));
        shared.send(json!({"method": "account/updated", "params": {"authMode": mode, "planType": self.plan}}));
    }
}

/// Asks the host for tokens three ways, one after another, and records each verdict.
async fn refresh_checks(shared: Shared, account: String) {
    let cases = [
        (
            "refresh-unauthorized",
            json!({"reason": "unauthorized", "previousAccountId": account}),
            Some(account.as_str()),
        ),
        (
            "refresh-unauthorized-no-previous",
            json!({"reason": "unauthorized", "previousAccountId": null}),
            None,
        ),
        (
            "refresh-expiring-soon",
            json!({"reason": "expiringSoon", "previousAccountId": account}),
            Some(account.as_str()),
        ),
    ];
    for (check, params, expected_account) in cases {
        let started = Instant::now();
        let verdict = match shared
            .ask("account/chatgptAuthTokens/refresh", params)
            .await
        {
            None => Err(format!(
                "no answer within {} ms",
                shared.answer_within.as_millis()
            )),
            Some(answer) => judge(&answer, expected_account),
        };
        match verdict {
            Ok(()) => shared.record(
                check,
                "pass",
                format!("answered in {} ms", started.elapsed().as_millis()),
            ),
            Err(why) => shared.record(check, "fail", why),
        }
    }
    let _ = shared.checks_done.send(true);
}

/// Checks one refresh answer: a result with a JWT, the expected account id, an optional plan.
pub fn judge(answer: &Value, expected_account: Option<&str>) -> Result<(), String> {
    if let Some(e) = answer.get("error") {
        return Err(format!("the host answered with an error: {e}"));
    }
    let result = answer
        .get("result")
        .and_then(Value::as_object)
        .ok_or("the answer has no result object")?;
    let token = result
        .get("accessToken")
        .and_then(Value::as_str)
        .ok_or("result.accessToken is missing or not a string")?;
    decode_jwt(token).map_err(|why| format!("result.accessToken is not a JWT: {why}"))?;
    let account = result
        .get("chatgptAccountId")
        .and_then(Value::as_str)
        .ok_or("result.chatgptAccountId is missing or not a string")?;
    if account.is_empty() {
        return Err("result.chatgptAccountId is empty".into());
    }
    if let Some(expected) = expected_account {
        if account != expected {
            return Err(format!("result.chatgptAccountId is {account:?}, expected the previous account {expected:?}"));
        }
    }
    match result.get("chatgptPlanType") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(format!(
            "result.chatgptPlanType is {other}, expected a string or null"
        )),
    }
}

#[cfg(test)]
#[path = "stand_in_tests.rs"]
mod tests;

/// Minimal Codex v2 objects (the members Codex 0.171's schema requires, with neutral values)
/// for the stand-in's chat-only thread/turn surface.
mod codex_v2 {
    use serde_json::{json, Value};

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    pub fn model(id: &str) -> Value {
        json!({"id": id, "model": id, "displayName": id, "description": "", "hidden": false,
               "supportedReasoningEfforts": [], "defaultReasoningEffort": "medium", "isDefault": true})
    }

    pub fn thread(id: &str) -> Value {
        let cwd = std::env::temp_dir();
        json!({"id": id, "sessionId": id, "preview": "", "ephemeral": true, "projectId": null,
               "modelProvider": "openai", "createdAt": now(), "updatedAt": now(),
               "status": {"type": "idle"}, "cwd": cwd, "cliVersion": "0.1.0",
               "source": "appServer", "turns": []})
    }

    pub fn thread_start_response(thread: &Value) -> Value {
        json!({"thread": thread, "model": "gpt-5", "modelProvider": "openai", "cwd": thread["cwd"],
               "approvalPolicy": "never", "approvalsReviewer": "user",
               "sandbox": {"type": "dangerFullAccess"}})
    }

    pub fn turn(id: &str, status: &str, items: Vec<Value>) -> Value {
        json!({"id": id, "items": items, "status": status, "error": null})
    }

    /// Codex's order for a turn that streams `deltas` and completes.
    pub fn turn_notifications(thread: &str, turn_id: &str, deltas: &[&str]) -> Vec<Value> {
        let ms = now() * 1000;
        let text: String = deltas.concat();
        let item_id = format!("msg_{turn_id}");
        let agent = |text: &str| json!({"type": "agentMessage", "id": item_id, "text": text});
        let mut out = vec![
            json!({"method": "thread/status/changed", "params": {"threadId": thread, "status": {"type": "active", "activeFlags": []}}}),
            json!({"method": "turn/started", "params": {"threadId": thread, "turn": turn(turn_id, "inProgress", vec![])}}),
            json!({"method": "item/started", "params": {"threadId": thread, "turnId": turn_id, "startedAtMs": ms, "item": agent("")}}),
        ];
        for delta in deltas {
            out.push(json!({"method": "item/agentMessage/delta", "params": {"threadId": thread, "turnId": turn_id, "itemId": item_id, "delta": delta}}));
        }
        out.push(json!({"method": "item/completed", "params": {"threadId": thread, "turnId": turn_id, "completedAtMs": ms, "item": agent(&text)}}));
        out.push(json!({"method": "thread/status/changed", "params": {"threadId": thread, "status": {"type": "idle"}}}));
        out.push(json!({"method": "turn/completed", "params": {"threadId": thread, "turn": turn(turn_id, "completed", vec![agent(&text)])}}));
        out
    }
}
