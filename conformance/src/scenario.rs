//! The scenario file format: one JSON file per scenario under `conformance/scenarios/`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use authbridge_testkit::wire::Framing;

/// Tag of scenarios that only our server is held to (the model surface, "beyond Codex").
pub const OURS_ONLY: &str = "ours-only";

/// One scenario, as written in its file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file name without `.json`.
    #[serde(default)]
    pub name: String,
    /// What it checks, for a person (and the docs/protocol.md section).
    #[serde(default)]
    pub description: String,
    /// `ours-only`: skipped for a peer.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A documented difference of other implementations (docs/protocol.md §1.3): when a peer
    /// fails this scenario it is reported as "differs (documented)".
    #[serde(default)]
    pub differs: Option<String>,
    /// The framing the kit speaks (`lines`, the default, or `content-length`).
    #[serde(default)]
    pub framing: Framing,
    /// Extra `-c key=value` arguments appended to the server command.
    #[serde(default)]
    pub config: Vec<String>,
    /// Extra arguments appended to the server command after the `-c` ones (e.g. Codex's
    /// launch line `app-server --listen stdio://`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for the server.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Tokens minted before the first step: name → `account=org-1,plan=pro,exp=+3600`;
    /// use them as `{{ref:NAME}}`.
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    /// The mock model provider, for scenarios that need one.
    #[serde(default)]
    pub provider: Option<ProviderSpec>,
    /// Methods of messages from the server that are dropped on arrival (e.g. `item/agentMessage/delta`).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Files written into the fresh home before the server starts: name → text (templates).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Default deadline of every wait, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    pub steps: Vec<Step>,
}

fn default_timeout() -> u64 {
    2000
}

/// The mock provider's behaviour.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Bearer tokens it accepts (templates, e.g. `{{ref:fresh}}`); any other gets a 401.
    #[serde(default)]
    pub accept: Vec<String>,
    /// The text deltas of every streamed answer (default `Hello`, `, `, `world`, `!`).
    #[serde(default)]
    pub deltas: Option<Vec<String>>,
    /// Pause before each delta, in milliseconds (a turn that streams slowly, to interrupt).
    #[serde(default)]
    pub delta_delay_ms: Option<u64>,
}

/// One step. Exactly one action member per step; `skip_other` and `within_ms` qualify waits.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A message (template) to send in the scenario's framing.
    pub send: Option<Value>,
    /// Text sent as is, without framing (escapes such as `\n` are JSON's).
    pub send_raw: Option<String>,
    /// Bytes sent as is, written in hex (`"ff fe 0a"`), for input that is not UTF-8.
    pub send_raw_hex: Option<String>,
    /// A pattern the next message of its kind must match.
    pub expect: Option<Value>,
    /// A pattern for a server→host request, answered with `respond`.
    pub expect_request: Option<Value>,
    /// `{"result": …}`, `{"error": {…}}` or `"silence"`.
    pub respond: Option<Value>,
    /// Nothing (not even a message left from earlier) may arrive for this long.
    pub expect_none_within_ms: Option<u64>,
    /// Close the server's stdin.
    pub close_stdin: Option<bool>,
    /// The server must exit within this long (with `exit_code` if given).
    pub expect_exit_within_ms: Option<u64>,
    pub exit_code: Option<i32>,
    /// Wait this long.
    pub sleep_ms: Option<u64>,
    /// The mock provider must have answered exactly this many 401s so far.
    pub expect_provider_401s: Option<usize>,
    /// The input of the latest model request (`POST …/responses`) holds these messages, in
    /// this order, written `role: text` (other items may come between them).
    pub expect_provider_input: Option<Vec<String>>,
    /// Messages of other kinds arriving before the match are left for later steps
    /// instead of failing the step.
    #[serde(default)]
    pub skip_other: bool,
    /// This step's deadline (default: the scenario's `timeout_ms`).
    pub within_ms: Option<u64>,
    /// A peer failing at this step shows the scenario's `differs` note instead of a failure.
    #[serde(default)]
    pub peer_may_differ: bool,
    /// A comment for a person; the kit does not read it.
    #[allow(dead_code)]
    pub note: Option<String>,
}

impl Step {
    /// A short label for reports: `step 3 (expect account/updated)`.
    pub fn label(&self, index: usize) -> String {
        let what = if let Some(v) = &self.send {
            format!("send {}", describe(v))
        } else if self.send_raw.is_some() || self.send_raw_hex.is_some() {
            "send_raw".into()
        } else if let Some(v) = &self.expect {
            format!("expect {}", describe(v))
        } else if let Some(v) = &self.expect_request {
            format!("expect_request {}", describe(v))
        } else if let Some(ms) = self.expect_none_within_ms {
            format!("expect_none_within_ms {ms}")
        } else if self.close_stdin.is_some() {
            "close_stdin".into()
        } else if let Some(ms) = self.expect_exit_within_ms {
            format!("expect_exit_within_ms {ms}")
        } else if let Some(n) = self.expect_provider_401s {
            format!("expect_provider_401s {n}")
        } else if self.expect_provider_input.is_some() {
            "expect_provider_input".into()
        } else {
            "sleep".into()
        };
        format!("step {} ({what})", index + 1)
    }
}

fn describe(v: &Value) -> String {
    match (v.get("method").and_then(Value::as_str), v.get("id")) {
        (Some(m), _) => m.to_owned(),
        (None, Some(id)) => format!("response id={id}"),
        _ => "message".into(),
    }
}

/// Loads every `*.json` in `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Scenario>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read the scenario directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_file(p)).collect()
}

fn load_file(path: &Path) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(path)?;
    let mut scenario: Scenario =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if scenario.name.is_empty() {
        scenario.name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    if scenario.differs.is_some() != scenario.steps.iter().any(|s| s.peer_may_differ) {
        anyhow::bail!(
            "{}: `differs` and steps marked `peer_may_differ` go together",
            path.display()
        );
    }
    for (i, step) in scenario.steps.iter().enumerate() {
        let actions = [
            step.send.is_some(),
            step.send_raw.is_some(),
            step.send_raw_hex.is_some(),
            step.expect.is_some(),
            step.expect_request.is_some(),
            step.expect_none_within_ms.is_some(),
            step.close_stdin.is_some(),
            step.expect_exit_within_ms.is_some(),
            step.sleep_ms.is_some(),
            step.expect_provider_401s.is_some(),
            step.expect_provider_input.is_some(),
        ];
        let n = actions.iter().filter(|a| **a).count();
        if n != 1 || (step.expect_request.is_some() != step.respond.is_some()) {
            anyhow::bail!(
                "{}: step {} needs exactly one action (and `respond` goes with `expect_request`)",
                path.display(),
                i + 1
            );
        }
    }
    Ok(scenario)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_scenario_loads_and_names_itself_after_its_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let all = load_dir(&dir).unwrap();
        assert!(all.len() >= 30, "only {} scenarios", all.len());
        for s in &all {
            assert!(
                dir.join(format!("{}.json", s.name)).is_file(),
                "{} is not its file name",
                s.name
            );
            assert!(!s.description.is_empty(), "{} has no description", s.name);
        }
    }
}
