//! `AuthManager::login_chatgpt`: what a browser or device-code sign-in stores, and when
//! it refuses.

mod common;

use std::os::unix::fs::PermissionsExt;

use authbridge_auth_core::*;
use common::*;
use serde_json::Value;

fn tokens(account: &str, marker: &str) -> LoginTokens {
    LoginTokens {
        id_token: Secret::new(fresh_jwt(account, &format!("{marker}-id"))),
        access_token: Secret::new(fresh_jwt(account, marker)),
        refresh_token: Secret::new(format!("rt_{marker}")),
        account_id: Some(account.to_owned()),
    }
}

#[tokio::test]
async fn a_sign_in_is_stored_as_managed_chatgpt_credentials_in_a_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let t = tokens("org-1", "signin");
    let creds = mgr.login_chatgpt(&t).await.unwrap();
    assert_eq!(creds.mode(), ApiAuthMode::Chatgpt);
    assert_eq!(creds.source(), CredentialSource::ManagedChatgpt);
    assert_eq!(creds.account_id(), Some("org-1"));
    assert_eq!(creds.email(), Some("signin-id@example.com"));
    let path = dir.path().join("auth.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["auth_mode"], "chatgpt");
    assert_eq!(v["OPENAI_API_KEY"], Value::Null);
    assert_eq!(v["tokens"]["access_token"], t.access_token.expose());
    assert_eq!(v["tokens"]["id_token"], t.id_token.expose());
    assert_eq!(v["tokens"]["refresh_token"], "rt_signin");
    assert_eq!(v["tokens"]["account_id"], "org-1");
    assert!(v["last_refresh"].is_string());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        mgr.subscribe().borrow().mode,
        Some(ApiAuthMode::Chatgpt),
        "the change is published"
    );
    // A second manager on the same directory (another process) reads the same account.
    let other = manager(dir.path(), None);
    assert_eq!(
        other.snapshot().unwrap().unwrap().account_id(),
        Some("org-1")
    );
}

#[tokio::test]
async fn a_sign_in_is_refused_while_external_tokens_are_active_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    login_external(&mgr, "org-1", "host").await;
    let e = mgr.login_chatgpt(&tokens("org-1", "x")).await.unwrap_err();
    assert!(matches!(e, AuthError::ExternalAuthActive), "{e}");
    assert!(!dir.path().join("auth.json").exists());
}

#[tokio::test]
async fn a_corrupt_auth_json_is_moved_aside_and_the_ephemeral_store_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("auth.json"), b"{ not json").unwrap();
    let mgr = manager(dir.path(), None);
    mgr.login_chatgpt(&tokens("org-1", "c")).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("auth.json.corrupt-")),
        "{names:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.store = StoreMode::Ephemeral;
    let mgr = AuthManager::new(cfg);
    let creds = mgr.login_chatgpt(&tokens("org-2", "e")).await.unwrap();
    assert_eq!(creds.account_id(), Some("org-2"));
    assert_eq!(mgr.snapshot().unwrap().unwrap().account_id(), Some("org-2"));
    assert!(!dir.path().join("auth.json").exists());
}
