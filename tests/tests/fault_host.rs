//! Fault injection, host side, against the real binary over real pipes: garbage
//! bytes, a message cut off by end of input, a real 100 MiB line (memory stays bounded),
//! responses nobody asked for (unknown ids, duplicates, after the deadline), and 10,000
//! requests written while the host reads nothing. (Invalid UTF-8, oversized messages under a
//! small `max_message_bytes`, malformed headers and stdin closed mid-refresh are proved in
//! `e2e_handshake.rs` and `e2e_refresh.rs`.)

use std::collections::HashSet;
use std::time::{Duration, Instant};

use authbridge_testkit::jwt::tagged as jwt;
use authbridge_testkit::sys::{sample_rss, vm_rss_kib};
use authbridge_testkit::{
    server, HostOptions, MockOptions, RefreshPolicy, Session, SessionBuilder,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const KEY: &str = "sk-fault-host-key";

/// A session logged in with an API key.
async fn api_key_session() -> Session {
    SessionBuilder::default().api_key(KEY).start().await
}

/// The server answers `getAuthStatus` with the key the host gave it.
async fn still_serves(s: &Session) {
    let status = s.auth_status().await;
    assert_eq!(
        status,
        json!({"authMethod": "apikey", "authToken": KEY, "requiresOpenaiAuth": true})
    );
}

#[tokio::test]
async fn garbage_bytes_get_parse_errors_and_the_next_request_is_served() {
    let s = api_key_session().await;
    let mut garbage: Vec<u8> = (0..=255u8).filter(|b| *b != b'\n').collect();
    garbage.extend_from_slice(b"\n\x00\x00\x00\n}{][\n\"\\u12\n");
    s.host.write_raw(&garbage).await.unwrap();
    still_serves(&s).await;
    let parse_errors = s
        .host
        .messages()
        .iter()
        .filter(|m| m["error"]["code"] == -32700 && m["id"].is_null())
        .count();
    assert_eq!(parse_errors, 4, "one -32700 per garbage line");
}

#[tokio::test]
async fn a_message_cut_off_by_end_of_input_ends_the_session_cleanly() {
    let mut s = api_key_session().await;
    s.host
        .write_raw(br#"{"id":77,"method":"account/read","params":{"#)
        .await
        .unwrap();
    s.host.close_stdin().await;
    let status = s.host.wait_exit(Duration::from_secs(3)).await;
    assert_eq!(status.map(|st| st.code()), Some(Some(0)));
    assert!(
        s.host.non_protocol_output().is_empty(),
        "stdout held something else"
    );
    assert!(
        !s.host
            .messages()
            .iter()
            .any(|m| m["id"] == 77 && m.get("result").is_some()),
        "a cut-off request was run"
    );
}

#[tokio::test]
async fn a_real_100_mib_line_is_refused_with_bounded_memory_and_the_next_request_is_served() {
    let s = api_key_session().await;
    let pid = s.host.pid().expect("pid");
    let before = vm_rss_kib(pid).expect("VmRSS");
    let (stop, sampler) = sample_rss(pid);
    let mut line = Vec::with_capacity(100 * 1024 * 1024 + 64);
    line.extend_from_slice(br#"{"id":1,"method":"account/read","params":{"pad":""#);
    line.resize(100 * 1024 * 1024, b'a');
    line.extend_from_slice(b"\"}}\n");
    let started = Instant::now();
    s.host.write_raw(&line).await.unwrap();
    drop(line);
    still_serves(&s).await;
    let _ = stop.send(());
    let peak = sampler.await.unwrap();
    let too_large = s
        .host
        .messages()
        .into_iter()
        .filter(|m| m["error"]["code"] == -32600)
        .map(|m| (m["id"].clone(), m["error"]["message"].clone()))
        .collect::<Vec<_>>();
    assert_eq!(
        too_large,
        vec![(
            Value::Null,
            json!("message too large: more than 16777216 bytes")
        )]
    );
    // The 16 MiB limit bounds what is held: the peak stays far below the 100 MiB line.
    assert!(
        peak < before + 40 * 1024,
        "VmRSS grew from {before} KiB to {peak} KiB for a 100 MiB line"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    eprintln!("100 MiB line: VmRSS {before} KiB before, peak {peak} KiB");
}

#[tokio::test]
async fn responses_nobody_asked_for_are_ignored_without_a_reply() {
    let s = api_key_session().await;
    let before = s.host.messages().len();
    for junk in [
        json!({"id": 424242, "result": {"accessToken": "x"}}),
        json!({"id": "not-ours", "result": null}),
        json!({"id": -1, "error": {"code": -32000, "message": "nope"}}),
        json!({"id": 0, "result": {}}),
        json!({"id": 0, "result": {}}),
    ] {
        s.host.send(&junk).await.unwrap();
    }
    still_serves(&s).await;
    let after = s.host.messages_after(before);
    assert_eq!(after.len(), 1, "only the getAuthStatus answer: {after:?}");
}

/// An external-tokens session whose mock accepts only `valid`.
async fn external_session(old: &str, valid: &[&str], policy: RefreshPolicy) -> Session {
    let s = SessionBuilder {
        mock: MockOptions::with_tokens(valid.iter().map(|t| t.to_string())),
        host: HostOptions {
            refresh: policy,
            ..HostOptions::default()
        },
        refresh_timeout_ms: 300,
        ..SessionBuilder::default()
    }
    .start()
    .await;
    s.login_external(old, "org-1", Some("pro")).await.unwrap();
    s
}

async fn reported_token(s: &Session) -> Value {
    s.auth_status().await["authToken"].clone()
}

#[tokio::test]
async fn a_duplicate_refresh_answer_is_ignored_and_the_first_one_counts() {
    let (old, new, other) = (jwt("old"), jwt("new"), jwt("other"));
    let s = external_session(
        &old,
        &[&new],
        RefreshPolicy::tokens(&new, "org-1", Some("pro")),
    )
    .await;
    assert_eq!(s.turn("hi").await["status"], "completed");
    let id = s.host.refresh_requests()[0].id.clone();
    let duplicate = json!({"id": id, "result": {"accessToken": other, "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}});
    s.host.send(&duplicate).await.unwrap();
    s.host.send(&duplicate).await.unwrap();
    assert_eq!(reported_token(&s).await, json!(new));
    assert_eq!(s.turn("again").await["status"], "completed");
    assert_eq!(s.host.refresh_requests().len(), 1);
}

#[tokio::test]
async fn an_answer_after_the_refresh_deadline_is_ignored() {
    let (old, late) = (jwt("old"), jwt("late"));
    let s = external_session(&old, &[&late], RefreshPolicy::silence()).await;
    let done = s.turn("hi").await;
    assert_eq!(done["status"], "failed", "{done}");
    let id = s.host.refresh_requests()[0].id.clone();
    s.host
        .send(&json!({"id": id, "result": {"accessToken": late, "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}}))
        .await
        .unwrap();
    assert_eq!(
        reported_token(&s).await,
        json!(old),
        "the late answer was adopted"
    );
}

#[tokio::test]
async fn ten_thousand_requests_unread_push_back_with_bounded_memory_then_all_are_answered() {
    const N: i64 = 10_000;
    let home = tempfile::tempdir().unwrap();
    let server::RawServer {
        child: _child,
        pid,
        mut stdin,
        mut stdout,
    } = server::spawn_raw(home.path(), KEY).await;
    let before = vm_rss_kib(pid).unwrap();
    let (stop, sampler) = sample_rss(pid);

    let writer = tokio::spawn(async move {
        let mut written = 0;
        for id in 0..N {
            let msg = format!("{{\"id\":{id},\"method\":\"getAuthStatus\",\"params\":{{\"includeToken\":true}}}}\n");
            if stdin.write_all(msg.as_bytes()).await.is_err() {
                break;
            }
            written += 1;
        }
        (written, stdin)
    });
    // The host reads nothing for a while: the server must push back, not buffer everything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let blocked = !writer.is_finished();
    let idle_peak = vm_rss_kib(pid).unwrap();

    let mut answered = HashSet::new();
    let (mut ok, mut shed) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    while (answered.len() as i64) < N {
        line.clear();
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stdout.read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("only {} of {N} answered", answered.len()))
            .unwrap();
        assert!(
            n > 0,
            "the server closed its output after {} answers",
            answered.len()
        );
        let m: Value = serde_json::from_str(&line).expect("an answer is JSON");
        match (&m["result"]["authToken"], m["error"]["code"].as_i64()) {
            (Value::String(t), None) if t == KEY => ok += 1,
            (_, Some(-32001)) => shed += 1,
            _ => panic!("unexpected answer {m}"),
        }
        assert!(
            answered.insert(m["id"].as_i64().expect("an integer id")),
            "answered twice: {m}"
        );
    }
    let (written, mut stdin) = writer.await.unwrap();
    let _ = stop.send(());
    let peak = sampler.await.unwrap();
    assert_eq!((written, answered.len() as i64, ok + shed), (N, N, N));
    assert!(
        blocked || shed > 0,
        "the server neither pushed back nor shed load (it read all {N} requests into memory)"
    );
    assert!(
        peak < before + 64 * 1024,
        "VmRSS grew from {before} KiB to {peak} KiB (idle peak {idle_peak} KiB)"
    );
    // And afterwards the connection is as good as new.
    stdin
        .write_all(b"{\"id\":\"last\",\"method\":\"getAuthStatus\",\"params\":{}}\n")
        .await
        .unwrap();
    line.clear();
    tokio::time::timeout(Duration::from_secs(5), stdout.read_line(&mut line))
        .await
        .expect("the next request is answered")
        .unwrap();
    let m: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(m["id"], "last");
    assert_eq!(m["result"]["authMethod"], "apikey");
    eprintln!(
        "10k unread: writer blocked={blocked}, ok={ok}, shed={shed}, rss {before}→{peak} KiB"
    );
}
