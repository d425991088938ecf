//! Real processes: four refreshers sharing one auth.json, and writers killed mid-write.
//!
//! The children are this test binary re-run with `AUTHCORE_CHILD` set; they enter through
//! `child_process_entry_point`, which is `#[ignore]`d so it only runs when asked for.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use authbridge_auth_core::store::file::{self, AuthFile};
use authbridge_auth_core::*;
use common::*;

fn child(role: &str, envs: &[(&str, &Path)], extra: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child_process_entry_point",
        "--test-threads=1",
        "-q",
    ])
    .env("AUTHCORE_CHILD", role)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

fn wait_for_file(path: &Path, deadline: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_refreshing_one_auth_json_make_one_endpoint_call() {
    let server = TokenServer::rotating("org-1").await;
    let dir = tempfile::tempdir().unwrap();
    let auth_dir = dir.path().join("home");
    write_managed(
        &auth_dir,
        &fresh_jwt("org-1", "a0"),
        &fresh_jwt("org-1", "i0"),
        "rt-0",
        "org-1",
    );
    let go = dir.path().join("go");
    let mut children = Vec::new();
    for i in 0..4 {
        let out = dir.path().join(format!("out-{i}"));
        let ready = dir.path().join(format!("ready-{i}"));
        let c = child(
            "refresh",
            &[
                ("AUTHCORE_DIR", &auth_dir),
                ("AUTHCORE_GO", &go),
                ("AUTHCORE_OUT", &out),
                ("AUTHCORE_READY", &ready),
            ],
            &[("AUTHCORE_URL", &server.url)],
        )
        .spawn()
        .unwrap();
        children.push((c, out, ready));
    }
    for (_, _, ready) in &children {
        let ready = ready.clone();
        tokio::task::spawn_blocking(move || wait_for_file(&ready, Duration::from_secs(30)))
            .await
            .unwrap();
    }
    std::fs::write(&go, "").unwrap();
    for (c, _, _) in &mut children {
        let status = tokio::time::timeout(Duration::from_secs(30), c.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
    }
    let file = read_auth_json(&auth_dir);
    let final_access = file["tokens"]["access_token"].as_str().unwrap().to_owned();
    for (_, out, _) in &children {
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            format!("ok {final_access}")
        );
    }
    assert_eq!(
        server.calls(),
        1,
        "exactly one endpoint call, so no refresh_token_reused"
    );
    assert_eq!(file["tokens"]["refresh_token"], "rt-0-next");
}

#[tokio::test]
async fn a_write_killed_at_any_point_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let a = AuthFile::api_key(&Secret::new("sk-".to_owned() + &"a".repeat(20_000)));
    let b = AuthFile::api_key(&Secret::new("sk-".to_owned() + &"b".repeat(30_000)));
    file::write(&path, &a).unwrap();
    for i in 0..15u64 {
        let mut c = child("write-loop", &[("AUTHCORE_DIR", dir.path())], &[])
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20 + (i * 7) % 40)).await;
        c.start_kill().unwrap();
        c.wait().await.unwrap();
        let now = file::read(&path).unwrap().unwrap();
        assert!(now == a || now == b, "iteration {i}: a partial file");
    }
    // Kills that landed between creating the temporary file and the rename leave it behind:
    // evidence that writes really were interrupted part-way.
    let interrupted = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".auth.json.tmp-")
        })
        .count();
    eprintln!("interrupted mid-write: {interrupted} of 15");
    assert!(interrupted > 0, "no kill landed mid-write");
}

/// The children's entry point (runs only when a test above re-runs this binary).
#[test]
#[ignore = "entry point for child processes of the tests above"]
fn child_process_entry_point() {
    let Ok(role) = std::env::var("AUTHCORE_CHILD") else {
        return;
    };
    let dir = PathBuf::from(std::env::var("AUTHCORE_DIR").unwrap());
    match role.as_str() {
        "refresh" => child_refresh(&dir),
        "write-loop" => child_write_loop(&dir),
        other => panic!("unknown child role {other}"),
    }
}

fn child_refresh(dir: &Path) {
    let env = |k: &str| PathBuf::from(std::env::var(k).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = config(dir);
        cfg.token_url = std::env::var("AUTHCORE_URL").unwrap();
        let mgr = AuthManager::new(cfg);
        let rejected = mgr.snapshot().unwrap().unwrap();
        std::fs::write(env("AUTHCORE_READY"), "").unwrap();
        wait_for_file(&env("AUTHCORE_GO"), Duration::from_secs(30));
        // Each process got a 401 with the same token and runs its recovery.
        let mut rec = mgr.unauthorized_recovery(&rejected);
        let result = rec.next().await;
        let now = mgr.snapshot().unwrap().unwrap();
        let line = match result {
            Ok(o) if o.changed => format!("ok {}", now.bearer_token().expose()),
            Ok(_) => "unchanged".to_owned(),
            Err(e) => format!("err {e}"),
        };
        std::fs::write(env("AUTHCORE_OUT"), line).unwrap();
    });
}

fn child_write_loop(dir: &Path) {
    let path = dir.join("auth.json");
    let a = AuthFile::api_key(&Secret::new("sk-".to_owned() + &"a".repeat(20_000)));
    let b = AuthFile::api_key(&Secret::new("sk-".to_owned() + &"b".repeat(30_000)));
    loop {
        file::write(&path, &b).unwrap();
        file::write(&path, &a).unwrap();
    }
}
