//! Secret hygiene: a representative session at `AUTHBRIDGE_LOG=trace` with canary
//! secrets — API key login, external tokens, a refresh through the host (and a host error
//! quoting secrets), a managed refresh through the token endpoint, a bearer command, and
//! failing logins. No canary may appear on stderr, in any message the server sends (except
//! `getAuthStatus` with `includeToken`), or in any file under the home but `auth.json`;
//! `auth.json` and its lock are 0600 and the home the server creates is 0700.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use authbridge_testkit::session::files_containing;
use authbridge_testkit::{
    Failure, Host, HostOptions, Jwt, MockOptions, MockProvider, RefreshPolicy, RefreshReply,
    TokenEndpoint,
};
use serde_json::{json, Value};

fn jwt(tag: &str) -> String {
    Jwt::new()
        .email("canary@example.com")
        .account("org-1")
        .plan("pro")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", json!(format!("CANARY-{tag}")))
        .mint()
}

/// The parts of a secret worth looking for: the whole of it, and each JWT segment but the
/// header (which every unsigned JWT shares).
fn needles(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    let parts: Vec<&str> = secret.split('.').collect();
    if parts.len() == 3 {
        out.push(parts[1].to_owned());
    }
    out
}

struct Canaries(Vec<String>);

impl Canaries {
    fn found_in(&self, text: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|c| text.contains(c.as_str()))
            .cloned()
            .collect()
    }

    /// Asserts the host saw no canary except in `getAuthStatus` answers, and none on stderr.
    fn assert_clean(&self, what: &str, host: &Host) {
        assert_eq!(
            self.found_in(&host.stderr_text()),
            Vec::<String>::new(),
            "{what}: stderr"
        );
        assert!(
            host.stderr_text().contains("TRACE"),
            "{what}: the server did not log at trace level: the test would prove little"
        );
        for m in host.messages() {
            if m["result"].get("authToken").is_some() {
                continue; // getAuthStatus with includeToken may carry the token
            }
            assert_eq!(
                self.found_in(&m.to_string()),
                Vec::<String>::new(),
                "{what}: message {m}"
            );
        }
    }

    /// Asserts no file under `home` but `auth.json` holds a canary, and the modes.
    fn assert_home_clean(&self, what: &str, home: &Path) {
        for c in &self.0 {
            let found: Vec<PathBuf> = files_containing(home, c.as_bytes())
                .into_iter()
                .filter(|p| p.file_name().is_none_or(|n| n != "auth.json"))
                .collect();
            assert_eq!(found, Vec::<PathBuf>::new(), "{what}: a canary on disk");
        }
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(home), 0o700, "{what}: home mode");
        for name in ["auth.json", "auth.json.lock"] {
            let path = home.join(name);
            if path.exists() {
                assert_eq!(mode(&path), 0o600, "{what}: {name} mode");
            }
        }
    }
}

/// A server at trace level over a home it has to create itself.
fn spawn(
    home: &Path,
    mock: &MockProvider,
    extra: &[String],
    env: &[(&str, String)],
    refresh: RefreshPolicy,
) -> Host {
    let mut overrides = authbridge_testkit::server::openai_overrides(&mock.url(), 500);
    overrides.extend(extra.iter().cloned());
    let mut cmd = authbridge_testkit::server::command(home, &overrides);
    cmd.env("AUTHBRIDGE_LOG", "trace");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Host::spawn(
        cmd,
        HostOptions {
            refresh,
            ..HostOptions::default()
        },
    )
    .unwrap()
}

async fn turn(host: &Host) -> Value {
    authbridge_testkit::session::run_turn(host, "hello").await
}

#[tokio::test]
async fn a_session_at_trace_level_leaks_no_canary_to_stderr_messages_or_files() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home-made-by-the-server");
    let api_key = "sk-CANARY-api-key-0123456789".to_owned();
    let (old, new, third) = (jwt("old"), jwt("new"), jwt("third"));
    let quoted = jwt("quoted-in-host-error");
    let not_a_jwt = "CANARY-not-a-jwt-token".to_owned();
    let mut all = vec![
        api_key.clone(),
        not_a_jwt.clone(),
        "sk-CANARY-quoted".into(),
    ];
    for t in [&old, &new, &third, &quoted] {
        all.extend(needles(t));
    }

    // 1. API key, external tokens, a host refresh, a host error quoting secrets.
    let mock = MockProvider::start(MockOptions::with_tokens([
        api_key.clone(),
        old.clone(),
        new.clone(),
    ]))
    .await
    .unwrap();
    let policy = RefreshPolicy::queue([
        RefreshReply::tokens(&new, "org-1", Some("pro")),
        RefreshReply::Error {
            code: -32000,
            message: format!("host says no: {quoted} sk-CANARY-quoted"),
        },
    ]);
    let host = spawn(&home, &mock, &[], &[], policy);
    host.initialize(json!({})).await.unwrap();
    host.request(
        "account/login/start",
        json!({"type": "apiKey", "apiKey": api_key}),
    )
    .await
    .unwrap();
    assert_eq!(turn(&host).await["status"], "completed");
    host.request("account/logout", json!({})).await.unwrap();
    let bad = host
        .request("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": not_a_jwt, "chatgptAccountId": "org-1"}))
        .await;
    assert!(bad.is_err());
    host.request("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": old, "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}))
        .await
        .unwrap();
    assert_eq!(turn(&host).await["status"], "completed");
    mock.reject_token(&old);
    mock.set_failure(None);
    host.request("account/login/start", json!({"type": "chatgptAuthTokens", "accessToken": old, "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}))
        .await
        .unwrap();
    assert_eq!(
        turn(&host).await["status"],
        "completed",
        "401 → host refresh → retry"
    );
    mock.reject_token(&new);
    assert_eq!(turn(&host).await["status"], "failed", "401 → host error");
    let status = host
        .request("getAuthStatus", json!({"includeToken": true}))
        .await
        .unwrap();
    assert_eq!(
        status["authToken"],
        json!(new),
        "getAuthStatus may show the token it was given"
    );
    // A positive control: the search does find a canary where one is allowed.
    assert_eq!(
        Canaries(all.clone()).found_in(&status.to_string()),
        needles(&new)
    );
    let turn_error = host
        .messages()
        .into_iter()
        .rev()
        .find(|m| m["method"] == "turn/completed")
        .unwrap();
    assert!(
        turn_error["params"]["turn"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[redacted]"),
        "{turn_error}"
    );
    host.request("account/read", json!({})).await.unwrap();
    Canaries(all.clone()).assert_clean("account session", &host);
    drop(host);

    // 2. Managed auth.json refreshed through the token endpoint after a 401.
    let rt = "rt_CANARY_refresh_token".to_owned();
    let id_token = jwt("id-token");
    all.push(rt.clone());
    all.extend(needles(&id_token));
    let auth = json!({"auth_mode": "chatgpt", "OPENAI_API_KEY": null, "last_refresh": "2099-01-01T00:00:00Z",
        "tokens": {"id_token": id_token, "access_token": old, "refresh_token": rt, "account_id": "org-1"}});
    std::fs::write(home.join("auth.json"), serde_json::to_vec(&auth).unwrap()).unwrap();
    std::fs::set_permissions(
        home.join("auth.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let endpoint = TokenEndpoint::start("org-1", "pro", [rt.clone()])
        .await
        .unwrap();
    endpoint.issue_access_tokens([third.clone()]);
    mock.accept_token(&third);
    let host = spawn(
        &home,
        &mock,
        &[],
        &[("AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE", endpoint.url())],
        RefreshPolicy::silence(),
    );
    host.initialize(json!({})).await.unwrap();
    assert_eq!(
        turn(&host).await["status"],
        "completed",
        "401 → reload → refresh → retry"
    );
    assert_eq!(endpoint.calls(), 1);
    for issued in endpoint.issued() {
        all.extend(needles(&issued.id_token));
        all.push(issued.refresh_token);
    }
    host.request("account/read", json!({"refreshToken": true}))
        .await
        .unwrap();
    Canaries(all.clone()).assert_clean("managed session", &host);
    drop(host);

    // 3. A custom provider whose bearer command prints a canary; a 401 re-runs it.
    let tools = tempfile::tempdir().unwrap();
    let bearer = "CANARY-bearer-from-command".to_owned();
    all.push(bearer.clone());
    let cmd_path = tools.path().join("token.sh");
    std::fs::write(&cmd_path, format!("#!/bin/sh\necho {bearer}\n")).unwrap();
    std::fs::set_permissions(&cmd_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    mock.accept_token(&bearer);
    let corp = [
        "model_provider=corp".to_owned(),
        "model_providers.corp.name=Corp".to_owned(),
        format!("model_providers.corp.base_url={}", mock.url()),
        format!(
            "model_providers.corp.auth.command=\"{}\"",
            cmd_path.display()
        ),
    ];
    let host = spawn(&home, &mock, &corp, &[], RefreshPolicy::silence());
    host.initialize(json!({})).await.unwrap();
    assert_eq!(turn(&host).await["status"], "completed");
    mock.fail_next(Failure::Status {
        status: 401,
        body: r#"{"error":{"message":"expired"}}"#.into(),
    });
    assert_eq!(
        turn(&host).await["status"],
        "completed",
        "401 → re-run → retry"
    );
    mock.set_failure(Some(Failure::UnauthorizedAlways));
    assert_eq!(turn(&host).await["status"], "failed");
    host.request("getAuthStatus", json!({"includeToken": true}))
        .await
        .unwrap();
    Canaries(all.clone()).assert_clean("bearer command session", &host);
    drop(host);

    Canaries(all).assert_home_clean("home", &home);
}

/// Waits for the `account/login/completed` of `login_id`.
async fn login_completed(host: &Host, login_id: &str) -> Value {
    let id = json!(login_id);
    host.wait_message(
        |m| m["method"] == "account/login/completed" && m["params"]["loginId"] == id,
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|| panic!("no completion\n{}", host.transcript()))["params"]
        .clone()
}

#[tokio::test]
async fn browser_and_device_sign_ins_at_trace_level_leak_no_token_or_code() {
    use authbridge_testkit::mock_issuer::browse;
    use authbridge_testkit::{AuthorizeMode, DeviceResolution, MockIssuer};

    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home-made-by-the-server");
    let issuer = MockIssuer::start().await.unwrap();
    let mock = MockProvider::start(MockOptions::default()).await.unwrap();
    let extra = [
        format!("chatgpt_issuer={}", issuer.url()),
        "chatgpt_login_port=0".to_owned(),
    ];
    let host = spawn(&home, &mock, &extra, &[], RefreshPolicy::silence());
    host.initialize(json!({})).await.unwrap();
    let mut all: Vec<String> = Vec::new();

    // A browser sign-in, then a managed refresh of its tokens.
    let r = host
        .request("account/login/start", json!({"type": "chatgpt"}))
        .await
        .unwrap();
    let visit = browse(r["authUrl"].as_str().unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(visit.status, 200, "{}", visit.body);
    let callback = visit.callback_url.unwrap();
    let code = callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();
    all.push(code);
    assert_eq!(
        login_completed(&host, r["loginId"].as_str().unwrap()).await["success"],
        true
    );
    host.request("account/read", json!({"refreshToken": true}))
        .await
        .unwrap();
    host.request("getAuthStatus", json!({})).await.unwrap();

    // A failing browser sign-in and a device-code sign-in.
    issuer.set_authorize(AuthorizeMode::WrongState);
    let r = host
        .request("account/login/start", json!({"type": "chatgpt"}))
        .await
        .unwrap();
    let visit = browse(r["authUrl"].as_str().unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(visit.status, 400);
    assert_eq!(
        login_completed(&host, r["loginId"].as_str().unwrap()).await["success"],
        false
    );
    let r = host
        .request("account/login/start", json!({"type": "chatgptDeviceCode"}))
        .await
        .unwrap();
    issuer.resolve_device(r["userCode"].as_str().unwrap(), DeviceResolution::Approve);
    assert_eq!(
        login_completed(&host, r["loginId"].as_str().unwrap()).await["success"],
        true
    );
    host.request("account/read", json!({})).await.unwrap();

    // Every token the issuer handed out, and every PKCE verifier sent to it.
    let issued = issuer.issued();
    assert_eq!(issued.len(), 3, "two sign-ins and one refresh");
    for t in issued {
        all.extend(needles(&t.id_token));
        all.extend(needles(&t.access_token));
        all.push(t.refresh_token);
    }
    for call in issuer.token_calls() {
        if let Some(v) = call.params.get("code_verifier") {
            all.push(v.clone());
        }
    }
    // A positive control: the newest tokens are in auth.json, where they belong.
    let stored = std::fs::read_to_string(home.join("auth.json")).unwrap();
    assert!(!Canaries(all.clone()).found_in(&stored).is_empty());
    Canaries(all.clone()).assert_clean("sign-in session", &host);
    drop(host);
    Canaries(all).assert_home_clean("home", &home);
}
