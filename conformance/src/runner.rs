//! Runs one scenario against one server: the host side of the conversation, step by step.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use authbridge_testkit::chatgpt_backend::ChatGptBackend;
use authbridge_testkit::{MockOptions, MockProvider};

use crate::pattern::{self, expand, Captures, JwtSpec};
use crate::scenario::{Scenario, Step};
use crate::session::{cut, Launch, Session};
use authbridge_testkit::wire::{encode, Framing};

use crate::kind::{kind_of, Kind};

/// How one scenario went against one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// The first mismatch, as expected-vs-got.
    Fail(String),
    Skipped(String),
    /// A peer failed a scenario whose difference docs/protocol.md documents.
    Differs(String),
}

/// Runs `scenario` against a fresh server started by `launch`. For a peer, a failure at a
/// step marked `peer_may_differ` of a scenario with a `differs` note is a documented difference.
pub async fn run(scenario: &Scenario, launch: &Launch, peer: bool) -> Outcome {
    let mut failed_at = None;
    match run_inner(scenario, launch, &mut failed_at).await {
        Ok(()) => Outcome::Pass,
        Err(e) => match (&scenario.differs, failed_at.map(|i| &scenario.steps[i])) {
            (Some(doc), Some(step)) if peer && step.peer_may_differ => {
                Outcome::Differs(format!("{doc}\n  got: {e}"))
            }
            _ => Outcome::Fail(e),
        },
    }
}

async fn run_inner(
    scenario: &Scenario,
    launch: &Launch,
    failed_at: &mut Option<usize>,
) -> Result<(), String> {
    let home = tempfile::tempdir().map_err(|e| format!("cannot create a temporary home: {e}"))?;
    let mut caps = Captures::new();
    for (name, spec) in &scenario.tokens {
        let token = JwtSpec::parse(spec)
            .map_err(|e| format!("token {name}: {e}"))?
            .mint();
        caps.insert(name.clone(), Value::String(token));
    }
    let spec = scenario.provider.clone().unwrap_or_default();
    let mut accept = Vec::new();
    for t in &spec.accept {
        accept.push(pattern::expand_str(t, &mut caps)?);
    }
    let mut options = MockOptions::with_tokens(accept);
    if let Some(deltas) = spec.deltas {
        options.deltas = deltas;
    }
    options.delta_delay = Duration::from_millis(spec.delta_delay_ms.unwrap_or(0));
    let provider = MockProvider::start(options)
        .await
        .map_err(|e| format!("cannot start the mock provider: {e}"))?;
    let url = provider.url();
    let backend = ChatGptBackend::start("org-1")
        .await
        .map_err(|e| format!("cannot start the backend stand-in: {e}"))?;
    let backend_url = backend.url();
    let home_str = home.path().to_string_lossy().into_owned();
    for (name, text) in &scenario.files {
        let path = home.path().join(name);
        let text = pattern::expand_str(text, &mut caps)?;
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let extra: Vec<String> = scenario
        .config
        .iter()
        .flat_map(|c| {
            [
                "-c".to_owned(),
                c.replace("{provider_url}", &url)
                    .replace("{backend_url}", &backend_url)
                    .replace("{home}", &home_str),
            ]
        })
        .chain(scenario.args.iter().cloned())
        .collect();
    let mut cmd = launch.command(&home_str, &url, &backend_url, &extra);
    cmd.env_remove("AUTHBRIDGE_API_KEY")
        .env("AUTHBRIDGE_HOME", home.path())
        .current_dir(home.path());
    cmd.envs(&scenario.env);
    let ignore = scenario
        .ignore
        .iter()
        .chain(launch.ignore())
        .cloned()
        .collect();
    let session =
        Session::spawn(cmd, ignore).map_err(|e| format!("cannot start the server: {e}"))?;
    let mut host = Host {
        session,
        caps,
        framing: scenario.framing,
        jsonrpc: None,
        allow_extra: launch.allow_extra(),
        default_ms: scenario.timeout_ms,
        provider,
    };
    let mut result = Ok(());
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Err(e) = host.step(step).await {
            let mut msg = format!("{}: {e}", step.label(i));
            let tail = host.session.stderr_tail();
            if !tail.trim().is_empty() {
                msg.push_str(&format!(
                    "\n    server stderr (tail): {}",
                    cut(tail.trim(), 400).replace('\n', "\n      ")
                ));
            }
            result = Err(msg);
            *failed_at = Some(i);
            break;
        }
    }
    if result.is_ok() {
        if let Some(answered) = host
            .session
            .output_framing()
            .filter(|f| *f != scenario.framing)
        {
            result = Err(format!(
                "the host spoke {:?} framing, the server answered in {answered:?} framing",
                scenario.framing
            ));
        }
    }
    host.session.finish().await;
    result
}

struct Host {
    /// Extra members in the server's objects are not a mismatch (`--peer-allow-extra-members`).
    allow_extra: bool,
    session: Session,
    caps: Captures,
    framing: Framing,
    /// Whether the kit's messages carry `"jsonrpc":"2.0"`: decided by the first one it sends.
    jsonrpc: Option<bool>,
    default_ms: u64,
    provider: MockProvider,
}

impl Host {
    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let within = Duration::from_millis(step.within_ms.unwrap_or(self.default_ms));
        if let Some(template) = &step.send {
            let msg = expand(template, &mut self.caps)?;
            if self.jsonrpc.is_none() && msg.is_object() {
                self.jsonrpc = Some(msg.get("jsonrpc").is_some());
            }
            return self.session.write(&encode(self.framing, &msg)).await;
        }
        if let Some(text) = &step.send_raw {
            let text = pattern::expand_str(text, &mut self.caps)?;
            return self.session.write(text.as_bytes()).await;
        }
        if let Some(hex) = &step.send_raw_hex {
            let bytes = parse_hex(hex)?;
            return self.session.write(&bytes).await;
        }
        if let Some(p) = &step.expect {
            self.expect(p, step.skip_other, within).await?;
            return Ok(());
        }
        if let (Some(p), Some(respond)) = (&step.expect_request, &step.respond) {
            let request = self.expect(p, step.skip_other, within).await?;
            return self.respond(&request, respond).await;
        }
        if let Some(ms) = step.expect_none_within_ms {
            return self.expect_none(Duration::from_millis(ms)).await;
        }
        if step.close_stdin.is_some() {
            self.session.close_stdin();
            return Ok(());
        }
        if let Some(ms) = step.expect_exit_within_ms {
            return match self.session.wait_exit(Duration::from_millis(ms)).await {
                None => Err(format!(
                    "expected the server to exit within {ms} ms, got: still running"
                )),
                Some(code) if step.exit_code.is_some() && code != step.exit_code => Err(format!(
                    "expected exit code {:?}, got {code:?}",
                    step.exit_code
                )),
                Some(_) => Ok(()),
            };
        }
        if let Some(n) = step.expect_provider_401s {
            let got = self.provider.unauthorized_count();
            return if got == n {
                Ok(())
            } else {
                Err(format!(
                    "expected the provider to have answered {n} 401s, got {got}"
                ))
            };
        }
        if let Some(want) = &step.expect_provider_input {
            return expect_provider_input(&self.provider, want);
        }
        if let Some(ms) = step.sleep_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(())
    }

    /// Takes the first message of the pattern's kind; it must match.
    async fn expect(
        &mut self,
        pattern: &Value,
        skip_other: bool,
        within: Duration,
    ) -> Result<Value, String> {
        let want = kind_of(pattern);
        let deadline = Instant::now() + within;
        loop {
            let inbox = &self.session.inbox;
            if let Some(i) = inbox.iter().position(|m| same_kind(&want, &kind_of(m))) {
                if i > 0 && !skip_other {
                    return Err(format!("expected {pattern}\n    got {} first (set \"skip_other\": true if that is fine)", inbox[0]));
                }
                let got = inbox[i].clone();
                return match pattern::matches_with(pattern, &got, &mut self.caps, self.allow_extra)
                {
                    Ok(()) => {
                        self.session.inbox.remove(i);
                        Ok(got)
                    }
                    Err(m) => Err(format!(
                        "at {}: expected {}, got {}\n    expected {pattern}\n    got      {got}",
                        m.path, m.expected, m.got
                    )),
                };
            }
            if !skip_other && !inbox.is_empty() {
                return Err(format!(
                    "expected {pattern}\n    got {} (set \"skip_other\": true if that is fine)",
                    inbox[0]
                ));
            }
            match self.session.pull(deadline).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "expected {pattern}\n    got nothing within {} ms",
                        within.as_millis()
                    ))
                }
                Err(e) => return Err(format!("expected {pattern}\n    got: {e}")),
            }
        }
    }

    async fn respond(&mut self, request: &Value, respond: &Value) -> Result<(), String> {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let mut reply = match respond {
            Value::String(s) if s == "silence" => return Ok(()),
            Value::Object(o)
                if o.len() == 1 && (o.contains_key("result") || o.contains_key("error")) =>
            {
                let mut reply = expand(respond, &mut self.caps)?;
                reply["id"] = id;
                reply
            }
            other => {
                return Err(format!(
                "respond must be {{\"result\": …}}, {{\"error\": …}} or \"silence\", not {other}"
            ))
            }
        };
        if self.jsonrpc == Some(true) {
            reply["jsonrpc"] = json!("2.0");
        }
        self.session.write(&encode(self.framing, &reply)).await
    }

    async fn expect_none(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(first) = self.session.inbox.front() {
                return Err(format!(
                    "expected no message within {} ms, got {first}",
                    within.as_millis()
                ));
            }
            if self.session.eof {
                return Ok(());
            }
            match self.session.pull(deadline).await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(_) if self.session.eof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The latest model request's input messages hold `want` (`role: text`) in order.
fn expect_provider_input(provider: &MockProvider, want: &[String]) -> Result<(), String> {
    let Some(last) = provider
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST" && r.path.ends_with("/responses"))
    else {
        return Err("expected a model request, the provider got none".into());
    };
    let got = input_messages(&last.body);
    let mut rest = got.iter();
    for w in want {
        if !rest.any(|g| g == w) {
            return Err(format!(
                "expected the model request's input to hold {want:?} in order, got {got:?}"
            ));
        }
    }
    Ok(())
}

/// `role: text` for each text part of each input item of a Responses API request body.
pub fn input_messages(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for item in body["input"].as_array().into_iter().flatten() {
        let role = item["role"].as_str().unwrap_or("?");
        match &item["content"] {
            Value::String(text) => out.push(format!("{role}: {text}")),
            Value::Array(parts) => out.extend(
                parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .map(|text| format!("{role}: {text}")),
            ),
            _ => {}
        }
    }
    out
}

/// A pattern whose id or method is itself a matcher matches any message of that shape.
fn same_kind(want: &Kind, got: &Kind) -> bool {
    let wild = |v: &str| v.starts_with("{{");
    match (want, got) {
        (Kind::Other, _) => true,
        (Kind::Response(Value::String(p)), Kind::Response(_)) if wild(p) => true,
        (Kind::Request(p), Kind::Request(_)) | (Kind::Notification(p), Kind::Notification(_))
            if wild(p) =>
        {
            true
        }
        _ => want == got,
    }
}

fn parse_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digits: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("send_raw_hex: odd number of hex digits in {hex:?}"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("send_raw_hex: {hex:?} is not hex"))
        })
        .collect()
}
