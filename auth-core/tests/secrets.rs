//! Canary test: a full refresh cycle at trace level leaks no token into logs, errors or Debug.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge_auth_core::*;
use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JWT whose payload carries a canary claim (the email is not a secret, so it is plain).
fn canary_jwt(account: &str, n: u32) -> String {
    encode_unsigned_jwt(&json!({
        "exp": now() + 60,
        "email": "user@example.com",
        "nonce": format!("CANARY-jwt-{n}"),
        "https://api.openai.com/auth": {"chatgpt_plan_type": "pro", "chatgpt_account_id": account}
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refresh_cycle_at_trace_level_leaks_no_token() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let mut secrets: Vec<String> = vec!["sk-CANARY-apikey".into(), "rt-CANARY-refresh-0".into()];
    let mut seen: Vec<String> = Vec::new();

    // Managed: an endpoint that first fails echoing the refresh token, then succeeds.
    let new_access = canary_jwt("org-1", 10);
    let new_id = canary_jwt("org-1", 11);
    secrets.extend([
        new_access.clone(),
        new_id.clone(),
        "rt-CANARY-refresh-1".into(),
    ]);
    let calls = Arc::new(AtomicUsize::new(0));
    let server = {
        let (calls, a, i) = (calls.clone(), new_access.clone(), new_id.clone());
        TokenServer::start(Arc::new(move |body: &serde_json::Value| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                let msg = format!(
                    "bad token {} {}",
                    body["refresh_token"].as_str().unwrap(),
                    a
                );
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": {"message": msg}}),
                    Duration::ZERO,
                );
            }
            let ok =
                json!({"access_token": a, "id_token": i, "refresh_token": "rt-CANARY-refresh-1"});
            (StatusCode::OK, ok, Duration::ZERO)
        }))
        .await
    };
    let dir = tempfile::tempdir().unwrap();
    let access0 = canary_jwt("org-1", 0);
    let id0 = canary_jwt("org-1", 1);
    secrets.extend([access0.clone(), id0.clone()]);
    write_managed(dir.path(), &access0, &id0, "rt-CANARY-refresh-0", "org-1");
    let mut cfg = config(dir.path());
    cfg.token_url = server.url.clone();
    let mgr = AuthManager::new(cfg);
    let creds = mgr.auth().await.unwrap().unwrap(); // proactive refresh (exp in 60 s) fails
    seen.push(format!("{creds:?}"));
    let err = mgr.unauthorized_recovery(&creds).next().await;
    seen.push(format!(
        "{err:?} {}",
        err.as_ref()
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    ));
    let err = mgr.refresh_managed().await;
    seen.push(format!("{err:?}"));
    let creds = mgr.auth().await.unwrap().unwrap();
    assert_eq!(
        creds.bearer_token().expose(),
        new_access,
        "the cycle did refresh"
    );
    seen.push(format!("{creds:?} {}", creds.bearer_token()));

    // External: login, a rejected refresh answer, a good one.
    let ext0 = canary_jwt("org-1", 20);
    let ext1 = canary_jwt("org-1", 21);
    secrets.extend([ext0.clone(), ext1.clone()]);
    let tokens = ExternalAuthTokens::chatgpt(ext0.clone(), "org-1", None);
    seen.push(format!("{tokens:?}"));
    let creds = mgr.login_external_chatgpt(tokens).await.unwrap();
    let r = ScriptedRefresher::new(Ok(ExternalAuthTokens::chatgpt(
        "CANARY.not-a.jwt!",
        "org-1",
        None,
    )));
    secrets.push("CANARY.not-a.jwt!".into());
    mgr.set_external_refresher(r.clone());
    let err = mgr.unauthorized_recovery(&creds).next().await.unwrap_err();
    seen.push(format!("{err:?} {err}"));
    *r.answer.lock().unwrap() = Ok(ExternalAuthTokens::chatgpt(ext1.clone(), "org-1", None));
    mgr.unauthorized_recovery(&creds).next().await.unwrap();
    let creds = mgr.auth().await.unwrap().unwrap();
    assert_eq!(creds.bearer_token().expose(), ext1);
    seen.push(format!("{creds:?}"));
    let err = mgr
        .login_api_key(Secret::new("sk-CANARY-apikey"))
        .await
        .unwrap_err();
    seen.push(format!("{err:?} {err}"));
    mgr.logout().await.unwrap();

    // A corrupt file holding a key.
    std::fs::write(
        dir.path().join("auth.json"),
        r#"{"OPENAI_API_KEY": "sk-CANARY-apikey", "#,
    )
    .unwrap();
    let err = AuthManager::new(config(dir.path())).snapshot().unwrap_err();
    seen.push(format!("{err:?} {err}"));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TRACE"), "trace logging was on");
    let haystack = format!("{logs}\n{}", seen.join("\n"));
    for s in &secrets {
        assert!(!haystack.contains(s.as_str()), "a secret leaked");
        for part in s.split('.').filter(|p| p.len() > 8) {
            assert!(!haystack.contains(part), "part of a secret leaked");
        }
    }
    assert!(!haystack.contains("CANARY"), "a canary leaked");
}
