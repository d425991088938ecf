//! Runs the conformance kit (`authbridge-conformance`) against our server binary, in both
//! modes: every scenario must pass in server mode, and host mode must pass a well-behaved
//! host and fail a broken one.

use std::process::{Command, Output};

use serde_json::Value;

const KIT: &str = env!("CARGO_BIN_EXE_authbridge-conformance");

/// The server command with the kit's placeholders: a fresh home and the mock provider.
fn server_command() -> Vec<String> {
    vec![
        authbridge_testkit::server::authbridge_bin()
            .to_string_lossy()
            .into_owned(),
        "--home".into(),
        "{home}".into(),
        "-c".into(),
        "model_providers.openai.base_url={provider_url}".into(),
        "-c".into(),
        "model_providers.openai.chatgpt_base_url={provider_url}".into(),
    ]
}

fn kit(args: &[&str], tail: &[String], peer: Option<&str>) -> Output {
    let mut cmd = Command::new(KIT);
    cmd.args(args)
        .arg("--")
        .args(tail)
        .env_remove("AUTHBRIDGE_CONFORMANCE_PEER");
    if let Some(peer) = peer {
        cmd.env("AUTHBRIDGE_CONFORMANCE_PEER", peer);
    }
    cmd.output().expect("the conformance kit runs")
}

fn scenario_count() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
        .expect("the scenario directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count()
}

fn statuses(report: &Value, column: &str) -> Vec<(String, String)> {
    report["scenarios"]
        .as_array()
        .expect("a scenario list")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s[column]["status"].as_str().unwrap_or("none").to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_scenario_passes_against_our_server() {
    let out = kit(&["server", "--json"], &server_command(), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}): {stdout}"));
    let failures: Vec<(String, String)> = report["scenarios"]
        .as_array()
        .expect("a scenario list")
        .iter()
        .filter(|s| s["ours"]["status"] != "pass")
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["ours"]["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        Vec::<(String, String)>::new(),
        "scenarios that did not pass"
    );
    assert_eq!(
        report["summary"]["line"],
        format!("{} passed, 0 failed, 0 skipped", scenario_count())
    );
    assert!(out.status.success(), "exit status {:?}", out.status);
}

#[test]
fn a_failing_scenario_shows_expected_and_got_and_fails_the_run() {
    // A server that cannot accept any message: every scenario must fail, with the mismatch.
    let mut command = server_command();
    command.extend(["-c".into(), "max_message_bytes=20".into()]);
    let out = kit(&["server", "--scenario", "handshake-ok"], &command, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = concat!(
        "FAIL     handshake-ok\n",
        "    step 2 (expect response id=0): expected ",
        r#"{"id":0,"result":{"codexHome":"{{string}}","platformFamily":"{{string}}","platformOs":"{{string}}","serverInfo":{"name":"{{string}}","version":"{{string}}"},"userAgent":"{{string}}"}}"#,
        "\n        got ",
        r#"{"error":{"code":-32600,"message":"message too large: more than 20 bytes"},"id":null}"#,
        " (set \"skip_other\": true if that is fine)\n",
        "0 passed, 1 failed, 0 skipped\n"
    );
    assert_eq!(stdout, expected);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_peer_column_shows_passes_failures_skips_and_documented_differences() {
    // The "peer" is our server limited to 300-byte messages: it fails only where a scenario
    // sends a bigger one. Where that step is marked `peer_may_differ` and the scenario has a
    // `differs` note, the failure is listed as a documented difference.
    let dir = tempfile::tempdir().expect("a temp dir");
    let init = r#"{"send": {"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "t", "version": "1"}}}},
        {"expect": {"id": 0, "result": {"userAgent": "{{string}}", "...": true}}}"#;
    let pad = "x".repeat(400);
    let big = format!(
        r#"{{"send": {{"id": 1, "method": "nope/nothing", "params": {{"pad": "{pad}"}}}}}}"#
    );
    let not_found = r#"{"expect": {"id": 1, "error": {"code": -32601, "message": "Method not found: nope/nothing"}}"#;
    let scenarios = [
        (
            "documented",
            format!(
                r#"{{"description": "d", "differs": "the peer limits message size", "steps": [{init}, {big}, {not_found}, "peer_may_differ": true}}]}}"#
            ),
        ),
        (
            "undocumented",
            format!(r#"{{"description": "u", "steps": [{init}, {big}, {not_found}}}]}}"#),
        ),
        (
            "ours-only-thing",
            format!(r#"{{"description": "o", "tags": ["ours-only"], "steps": [{init}]}}"#),
        ),
        (
            "plain",
            format!(r#"{{"description": "p", "steps": [{init}]}}"#),
        ),
    ];
    for (name, text) in &scenarios {
        std::fs::write(dir.path().join(format!("{name}.json")), text).expect("a scenario file");
    }
    let peer = format!(
        "{} --home {{home}} -c max_message_bytes=300",
        authbridge_testkit::server::authbridge_bin().display()
    );
    let scenario_dir = dir.path().to_string_lossy().into_owned();
    let out = kit(
        &["server", "--json", "--scenario-dir", &scenario_dir],
        &server_command(),
        Some(&peer),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let rows: Vec<(String, String, String)> = statuses(&report, "ours")
        .into_iter()
        .zip(statuses(&report, "peer"))
        .map(|((name, ours), (_, peer))| (name, ours, peer))
        .collect();
    let expected = [
        ("documented", "pass", "differs"),
        ("ours-only-thing", "pass", "skipped"),
        ("plain", "pass", "pass"),
        ("undocumented", "pass", "fail"),
    ];
    assert_eq!(
        rows,
        expected
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
            .to_vec()
    );
    assert_eq!(
        report["peer_summary"]["line"],
        "1 passed, 1 failed, 1 skipped, 1 differ (documented)"
    );
    assert!(
        out.status.success(),
        "the peer's failures do not fail the run: {:?}",
        out.status
    );
}

#[test]
fn host_mode_passes_a_well_behaved_host() {
    let out = kit(&["host"], &[KIT.to_owned(), "sample-host".into()], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with("\n6 passed, 0 failed, 0 skipped\n"),
        "{stdout}"
    );
    assert!(out.status.success(), "{stdout}");
}

#[test]
fn host_mode_speaks_content_length_to_a_host_that_does() {
    let host = [
        KIT.to_owned(),
        "sample-host".into(),
        "--content-length".into(),
    ];
    let out = kit(&["host"], &host, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with("\n6 passed, 0 failed, 0 skipped\n"),
        "{stdout}"
    );
    assert!(out.status.success(), "{stdout}");
}

#[test]
fn host_mode_fails_a_host_that_answers_refreshes_with_a_non_jwt() {
    let out = kit(
        &["host", "--json"],
        &[KIT.to_owned(), "sample-host".into(), "--bad".into()],
        None,
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let verdicts: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_owned(),
                f["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("initialize-first", "pass"),
        ("login-chatgpt-auth-tokens", "pass"),
        ("refresh-unauthorized", "fail"),
        ("refresh-unauthorized-no-previous", "fail"),
        ("refresh-expiring-soon", "fail"),
        ("closes-stdin", "pass"),
    ];
    assert_eq!(
        verdicts,
        expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
    assert_eq!(
        report["findings"][2]["detail"],
        "result.accessToken is not a JWT: not three non-empty dot-separated segments"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn host_mode_fails_a_host_that_never_answers_a_refresh() {
    let host = [KIT.to_owned(), "sample-host".into(), "--silent".into()];
    let out = kit(
        &["host", "--json", "--answer-within-ms", "300"],
        &host,
        None,
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let refresh_details: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            f["check"]
                .as_str()
                .is_some_and(|c| c.starts_with("refresh-"))
        })
        .map(|f| f["detail"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(refresh_details, vec!["no answer within 300 ms"; 3]);
    assert_eq!(report["summary"]["line"], "3 passed, 3 failed, 0 skipped");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn host_mode_fails_a_host_that_never_starts_the_server() {
    let out = kit(&["host"], &["true".into()], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "host: the host exited with exit status: 0\nFAIL     spawns-authbridge-cmd: \n    the host never started $AUTHBRIDGE_CMD (the host exited with exit status: 0)\n0 passed, 1 failed, 0 skipped\n"
    );
    assert_eq!(out.status.code(), Some(1));
}
