//! `auth.json` on disk: permissions, atomic replacement, corrupt files, stores, logout.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use authbridge_auth_core::store::file::{self, AuthFile};
use authbridge_auth_core::*;
use common::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn auth_json_is_0600_from_the_moment_it_exists_even_with_umask_0() {
    // SAFETY: umask(2) only changes this process's file-creation mask.
    unsafe { libc::umask(0) };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (dir, stop) = (dir.path().to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                    if let Ok(m) = entry.metadata() {
                        let perms = m.permissions().mode() & 0o777;
                        assert_eq!(perms & 0o077, 0, "{:?} was {perms:o}", entry.file_name());
                        seen += 1;
                    }
                }
            }
            seen
        })
    };
    for i in 0..300 {
        file::write(&path, &AuthFile::api_key(&Secret::new(format!("sk-{i}")))).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0, "the watcher saw files");
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn the_directory_is_created_0700() {
    let dir = tempfile::tempdir().unwrap();
    let auth_dir = dir.path().join("nested/home");
    let mgr = AuthManager::new(config(&auth_dir));
    mgr.login_api_key(Secret::new("sk-1")).await.unwrap();
    assert_eq!(mode(&auth_dir), 0o700);
    assert_eq!(
        read_auth_json(&auth_dir),
        serde_json::json!({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-1", "tokens": null, "last_refresh": null})
    );
}

#[tokio::test]
async fn a_corrupt_file_is_an_error_naming_the_path_and_is_moved_aside_on_login() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, "{\"OPENAI_API_KEY\": \"sk-canary-corrupt\"").unwrap();
    let mgr = AuthManager::new(config(dir.path()));
    let err = mgr.snapshot().unwrap_err();
    assert!(
        matches!(&err, AuthError::CorruptAuthFile { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "credential file {} is corrupt (unexpected end of file error at line 1 column 38); log in again to replace it",
            path.display()
        )
    );
    assert!(mgr.auth().await.is_err());

    mgr.login_api_key(Secret::new("sk-new")).await.unwrap();
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with("auth.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(&aside[0])).unwrap(),
        "{\"OPENAI_API_KEY\": \"sk-canary-corrupt\"",
        "nothing is lost"
    );
    assert_eq!(
        mgr.snapshot().unwrap().unwrap().bearer_token().expose(),
        "sk-new"
    );
}

#[test]
fn a_file_being_rewritten_in_place_is_read_again_before_it_is_called_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, "{\"auth_mode\":").unwrap();
    let fixer = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            std::fs::write(&path, r#"{"OPENAI_API_KEY":"sk-ok"}"#).unwrap();
        })
    };
    let read = file::read(&path).unwrap().unwrap();
    fixer.join().unwrap();
    assert_eq!(read.openai_api_key.as_deref(), Some("sk-ok"));
}

#[tokio::test]
async fn logout_deletes_auth_json_and_the_env_key_still_applies() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.env_api_key = Some(Secret::new("sk-env"));
    let mgr = AuthManager::new(cfg);
    mgr.login_api_key(Secret::new("sk-stored")).await.unwrap();
    assert_eq!(
        mgr.auth().await.unwrap().unwrap().bearer_token().expose(),
        "sk-env",
        "env beats the store"
    );
    mgr.logout().await.unwrap();
    assert!(!dir.path().join("auth.json").exists());
    let creds = mgr.auth().await.unwrap().unwrap();
    assert_eq!(
        (creds.bearer_token().expose(), creds.source()),
        ("sk-env", CredentialSource::EnvApiKey)
    );
}

#[tokio::test]
async fn external_tokens_beat_the_env_key_and_the_store() {
    let dir = tempfile::tempdir().unwrap();
    write_managed(
        dir.path(),
        &fresh_jwt("org-1", "a"),
        &fresh_jwt("org-1", "i"),
        "rt",
        "org-1",
    );
    let mut cfg = config(dir.path());
    cfg.env_api_key = Some(Secret::new("sk-env"));
    let mgr = AuthManager::new(cfg);
    let ext = fresh_jwt("org-2", "ext");
    mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(ext.clone(), "org-2", None))
        .await
        .unwrap();
    assert_eq!(
        mgr.auth().await.unwrap().unwrap().bearer_token().expose(),
        ext
    );
    mgr.logout().await.unwrap();
    assert_eq!(
        mgr.auth().await.unwrap().unwrap().bearer_token().expose(),
        "sk-env"
    );
    assert!(
        dir.path().join("auth.json").exists(),
        "external logout leaves auth.json alone"
    );
}

#[tokio::test]
async fn the_ephemeral_store_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.store = StoreMode::Ephemeral;
    let mgr = AuthManager::new(cfg);
    mgr.login_api_key(Secret::new("sk-mem")).await.unwrap();
    assert_eq!(
        mgr.snapshot().unwrap().unwrap().bearer_token().expose(),
        "sk-mem"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    mgr.logout().await.unwrap();
    assert!(mgr.snapshot().unwrap().is_none());
}

#[test]
fn unknown_members_survive_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, r#"{"OPENAI_API_KEY":"sk-1","codex_extra":{"x":1}}"#).unwrap();
    let f = file::read(&path).unwrap().unwrap();
    file::write(&path, &f).unwrap();
    assert_eq!(
        read_auth_json(dir.path())["codex_extra"],
        serde_json::json!({"x": 1})
    );
}

#[test]
fn temporary_files_left_by_a_dead_writer_are_removed_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".auth.json.tmp-999999-0");
    let fresh = dir.path().join(".auth.json.tmp-999999-1");
    for p in [&stale, &fresh] {
        std::fs::write(p, "partial").unwrap();
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    file::write(
        &dir.path().join("auth.json"),
        &AuthFile::api_key(&Secret::new("sk-1")),
    )
    .unwrap();
    assert_eq!((stale.exists(), fresh.exists()), (false, true));
}

#[tokio::test]
async fn logout_moves_a_corrupt_file_aside_instead_of_deleting_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("auth.json"), "{not json").unwrap();
    let mgr = AuthManager::new(config(dir.path()));
    mgr.logout().await.unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with("auth.json"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}"); // the lock file and the moved-aside file
    assert!(
        names.iter().any(|n| n.starts_with("auth.json.corrupt-")),
        "{names:?}"
    );
    assert!(mgr.snapshot().unwrap().is_none());
}

#[tokio::test]
async fn waiting_for_a_held_lock_gives_up_at_its_deadline() {
    use authbridge_auth_core::store::lock::AuthFileLock;
    let dir = tempfile::tempdir().unwrap();
    let held = AuthFileLock::acquire(dir.path()).unwrap();
    let started = std::time::Instant::now();
    let err = AuthFileLock::acquire_async(dir.path(), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot access credential file {}: timed out after 100ms waiting for the lock",
            dir.path().join("auth.json.lock").display()
        )
    );
    drop(held);
    AuthFileLock::acquire_async(dir.path(), Duration::from_millis(100))
        .await
        .unwrap();
}
