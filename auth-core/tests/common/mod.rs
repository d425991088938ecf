//! Shared test parts: JWT minting, a loopback token endpoint, a counting refresher, auth.json helpers.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge_auth_core::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// An unsigned JWT with the ChatGPT claims.
pub fn jwt(account: &str, plan: &str, exp: i64, marker: &str) -> String {
    encode_unsigned_jwt(&json!({
        "exp": exp,
        "email": format!("{marker}@example.com"),
        "marker": marker,
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": plan, "chatgpt_account_id": account, "chatgpt_user_id": "user-1"
        }
    }))
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A JWT that expires in an hour.
pub fn fresh_jwt(account: &str, marker: &str) -> String {
    jwt(account, "pro", now() + 3600, marker)
}

pub fn config(dir: &Path) -> AuthManagerConfig {
    let mut cfg = AuthManagerConfig::new(dir);
    cfg.external_refresh_timeout = Duration::from_secs(5);
    cfg.token_timeout = Duration::from_secs(5);
    cfg
}

/// A manager on `dir`, with a forced workspace if given.
pub fn manager(dir: &Path, forced: Option<&str>) -> Arc<AuthManager> {
    let mut cfg = config(dir);
    cfg.forced_chatgpt_workspace_id = forced.map(str::to_owned);
    AuthManager::new(cfg)
}

/// Logs in with host tokens for `account` (a fresh JWT marked `marker`, no plan).
pub async fn login_external(mgr: &AuthManager, account: &str, marker: &str) -> Credentials {
    mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(
        fresh_jwt(account, marker),
        account,
        None,
    ))
    .await
    .expect("external login")
}

/// Writes a managed `auth.json` (chatgpt mode) with these tokens.
pub fn write_managed(dir: &Path, access: &str, id: &str, refresh: &str, account: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let body = json!({
        "auth_mode": "chatgpt", "OPENAI_API_KEY": null,
        "tokens": {"id_token": id, "access_token": access, "refresh_token": refresh, "account_id": account},
        "last_refresh": chrono::Utc::now().to_rfc3339(),
    });
    std::fs::write(dir.join("auth.json"), body.to_string()).unwrap();
}

pub fn read_auth_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("auth.json")).unwrap()).unwrap()
}

/// What the token endpoint answers.
pub type Responder = Arc<dyn Fn(&Value) -> (StatusCode, Value, Duration) + Send + Sync>;

/// A loopback OAuth token endpoint that records every request body.
pub struct TokenServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl TokenServer {
    pub async fn start(responder: Responder) -> TokenServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = (responder, requests.clone());
        async fn handle(
            State((responder, requests)): State<(Responder, Arc<Mutex<Vec<Value>>>)>,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            requests.lock().unwrap().push(body.clone());
            let (status, answer, delay) = responder(&body);
            tokio::time::sleep(delay).await;
            (status, Json(answer))
        }
        let app = Router::new()
            .route("/oauth/token", post(handle))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TokenServer { url, requests }
    }

    /// Always answers `status` with `body`.
    pub async fn fixed(status: u16, body: Value) -> TokenServer {
        let status = StatusCode::from_u16(status).unwrap();
        TokenServer::start(Arc::new(move |_| (status, body.clone(), Duration::ZERO))).await
    }

    /// Accepts each refresh token once (rotating it), then answers `refresh_token_reused`.
    pub async fn rotating(account: &'static str) -> TokenServer {
        let used = Arc::new(Mutex::new(HashSet::<String>::new()));
        TokenServer::start(Arc::new(move |body: &Value| {
            let rt = body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !used.lock().unwrap().insert(rt.clone()) {
                let err = json!({"error": {"code": "refresh_token_reused"}});
                return (StatusCode::BAD_REQUEST, err, Duration::ZERO);
            }
            let ok = json!({
                "access_token": fresh_jwt(account, &format!("access-after-{rt}")),
                "refresh_token": format!("{rt}-next"),
                "id_token": fresh_jwt(account, &format!("id-after-{rt}")),
            });
            (StatusCode::OK, ok, Duration::from_millis(50))
        }))
        .await
    }

    pub fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// A host refresher of ChatGPT tokens that counts calls and answers from a queue-less
/// script.
pub struct ScriptedRefresher {
    pub calls: AtomicUsize,
    pub contexts: Mutex<Vec<ExternalAuthRefreshContext>>,
    pub delay: Duration,
    pub answer: Mutex<Result<ExternalAuthTokens, RefreshError>>,
}

impl ScriptedRefresher {
    pub fn new(answer: Result<ExternalAuthTokens, RefreshError>) -> Arc<Self> {
        Self::slow(answer, Duration::ZERO)
    }

    pub fn slow(answer: Result<ExternalAuthTokens, RefreshError>, delay: Duration) -> Arc<Self> {
        Arc::new(ScriptedRefresher {
            calls: AtomicUsize::new(0),
            contexts: Mutex::new(Vec::new()),
            delay,
            answer: Mutex::new(answer),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl ExternalAuthRefresher for ScriptedRefresher {
    async fn refresh(
        &self,
        ctx: ExternalAuthRefreshContext,
    ) -> Result<ExternalAuthTokens, RefreshError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.contexts.lock().unwrap().push(ctx);
        tokio::time::sleep(self.delay).await;
        self.answer.lock().unwrap().clone()
    }
}

/// A bearer source that counts refreshes, answers from a script, and resolves to the
/// last refreshed token (or to `resolved` when set first).
pub struct ScriptedBearer {
    pub calls: AtomicUsize,
    pub answer: Mutex<Result<Secret, RefreshError>>,
    pub resolved: Mutex<Option<Secret>>,
    /// How long each refresh takes.
    pub delay: Mutex<Duration>,
}

impl ScriptedBearer {
    pub fn new(answer: Result<&str, RefreshError>) -> Arc<Self> {
        Arc::new(ScriptedBearer {
            calls: AtomicUsize::new(0),
            answer: Mutex::new(answer.map(Secret::new)),
            resolved: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl BearerSource for ScriptedBearer {
    async fn resolve(&self) -> Result<Option<Secret>, RefreshError> {
        Ok(self.resolved.lock().unwrap().clone())
    }

    async fn refresh(&self) -> Result<Secret, RefreshError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let answer = self.answer.lock().unwrap().clone();
        if let Ok(t) = &answer {
            *self.resolved.lock().unwrap() = Some(t.clone());
        }
        answer
    }
}

/// Yields until `done()` holds, failing with `what` after 5 s.
pub async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::task::yield_now().await;
    }
}
