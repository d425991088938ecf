//! Host mode: spawns the host under test with `AUTHBRIDGE_CMD` naming the kit's stand-in
//! server, waits for the host to exit (or kills it at the deadline), and prints the
//! stand-in's findings with the summary line.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::report::Summary;
use crate::runner::Outcome;

/// The environment variable the host reads to spawn its server.
pub const CMD_ENV: &str = "AUTHBRIDGE_CMD";

/// Every check of host mode, with what it means.
pub const CHECKS: [(&str, &str); 6] = [
    ("initialize-first", "the first request is initialize"),
    (
        "login-chatgpt-auth-tokens",
        "the host logs in with chatgptAuthTokens: a JWT and an account id",
    ),
    (
        "refresh-unauthorized",
        "refresh {reason: unauthorized, previousAccountId} → a JWT for the same account in time",
    ),
    (
        "refresh-unauthorized-no-previous",
        "refresh {reason: unauthorized, previousAccountId: null} → a JWT and an account id in time",
    ),
    (
        "refresh-expiring-soon",
        "refresh {reason: expiringSoon, previousAccountId} → a JWT for the same account in time",
    ),
    (
        "closes-stdin",
        "the host ends the session by closing the server's stdin",
    ),
];

/// One check's verdict, as the stand-in writes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub check: String,
    /// `pending`, `pass`, `fail` or `skipped`.
    pub status: String,
    pub detail: String,
}

impl Finding {
    /// Not checked yet.
    pub fn pending(check: &str) -> Self {
        Self {
            check: check.into(),
            status: "pending".into(),
            detail: String::new(),
        }
    }
}

/// Runs the host; `Ok(false)` when a check failed.
pub async fn run(
    command: &[String],
    json_out: bool,
    deadline: Duration,
    answer_within_ms: u64,
) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir()?;
    let report = dir.path().join("report.json");
    let exe = std::env::current_exe()?;
    let stand_in = format!(
        "{} stand-in --report {} --answer-within-ms {answer_within_ms}",
        exe.display(),
        report.display()
    );
    if stand_in.split_whitespace().count() != 6 {
        anyhow::bail!("the kit's path or the temp dir contains whitespace; {CMD_ENV} would not split: {stand_in}");
    }
    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .env(CMD_ENV, &stand_in)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start the host {:?}: {e}", command[0]))?;
    // The host's own stdout goes to our stderr, so our stdout holds only the report.
    if let Some(mut out) = child.stdout.take() {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = out.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
        });
    }
    let exit = tokio::time::timeout(deadline, child.wait()).await;
    let host_note = match exit {
        Ok(Ok(status)) => format!("the host exited with {status}"),
        Ok(Err(e)) => format!("waiting for the host failed: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            format!("the host was killed after {} s", deadline.as_secs())
        }
    };
    // The stand-in writes its last findings when its stdin closes; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let findings: Vec<Finding> = match std::fs::read_to_string(&report) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| serde_json::from_value(v["findings"].clone()).ok())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let outcomes: Vec<(String, Outcome)> = if findings.is_empty() {
        vec![(
            "spawns-authbridge-cmd".into(),
            Outcome::Fail(format!("the host never started ${CMD_ENV} ({host_note})")),
        )]
    } else {
        findings
            .iter()
            .map(|f| {
                let o = match f.status.as_str() {
                    "pass" => Outcome::Pass,
                    "skipped" => Outcome::Skipped(f.detail.clone()),
                    "pending" => Outcome::Fail(format!("not checked: {host_note}")),
                    _ => Outcome::Fail(f.detail.clone()),
                };
                (f.check.clone(), o)
            })
            .collect()
    };
    let summary = Summary::of(outcomes.iter().map(|(_, o)| o));
    let text = if json_out {
        let list: Vec<_> = outcomes
            .iter()
            .map(|(check, o)| {
                let (status, detail) = match o {
                    Outcome::Pass => ("pass", ""),
                    Outcome::Fail(d) => ("fail", d.as_str()),
                    Outcome::Skipped(d) | Outcome::Differs(d) => ("skipped", d.as_str()),
                };
                json!({"check": check, "status": status, "detail": detail})
            })
            .collect();
        format!(
            "{:#}\n",
            json!({"host": host_note, "findings": list, "summary": {"passed": summary.passed, "failed": summary.failed, "skipped": summary.skipped, "line": summary.line()}})
        )
    } else {
        let mut t = format!("host: {host_note}\n");
        for (check, o) in &outcomes {
            let (label, detail) = match o {
                Outcome::Pass => ("pass", ""),
                Outcome::Fail(d) => ("FAIL", d.as_str()),
                Outcome::Skipped(d) | Outcome::Differs(d) => ("skipped", d.as_str()),
            };
            let what = CHECKS
                .iter()
                .find(|(c, _)| c == check)
                .map_or("", |(_, w)| w);
            t.push_str(&format!("{label:<8} {check}: {what}\n"));
            if !detail.is_empty() {
                t.push_str(&format!("    {detail}\n"));
            }
        }
        t.push_str(&summary.line());
        t.push('\n');
        t
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(summary.failed == 0)
}
