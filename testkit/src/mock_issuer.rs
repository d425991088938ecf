//! A loopback OAuth issuer for ChatGPT sign-in (docs/protocol.md §3.8), and a scripted
//! browser that follows an `authUrl` the way a person's browser would.
//!
//! Routes:
//! - `GET /oauth/authorize`: checks the PKCE members, then redirects (302) to the
//!   `redirect_uri` with `code` and `state` — or with `error=access_denied`, or with a
//!   forged `state`, as told by [`AuthorizeMode`].
//! - `POST /oauth/token`: `authorization_code` (form-encoded; the code is single-use and
//!   must come with the verifier of its challenge and the same `redirect_uri`) and
//!   `refresh_token` (JSON or form; each refresh token it issued is accepted once and
//!   rotated). [`ExchangeMode`] makes the code exchange fail, wait or hang.
//! - `POST /api/accounts/deviceauth/usercode` and `/deviceauth/token`: the device-code
//!   flow; a code stays pending (403) until the test resolves it with
//!   [`MockIssuer::resolve_device`]; [`MockIssuer::set_device_enabled`] turns both into 404s.
//!
//! Issued tokens are minted JWTs for the configured account, plan and email (see
//! [`MockIssuer::set_account`]: a token "for another workspace").

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::jwt::Jwt;
use crate::loopback::{json_response, lock, respond, Binding, LoopbackServer, Shutdown};
use crate::token_endpoint::IssuedTokens;

/// How `/oauth/authorize` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeMode {
    /// Redirect with a fresh code and the request's `state`.
    Approve,
    /// Redirect with `error=access_denied` (the person declined).
    Deny,
    /// Redirect with a code and a `state` that is not the request's.
    WrongState,
}

/// How the `authorization_code` grant answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeMode {
    /// Issue tokens.
    Issue,
    /// Answer this status with `{"error": code, "error_description": …}`.
    Fail { status: u16, code: String },
    /// Wait this long, then issue tokens.
    Delay(Duration),
    /// Never answer.
    Hang,
}

/// What becomes of a pending device code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceResolution {
    Approve,
    Deny,
    Expire,
}

#[derive(Clone, Debug)]
struct DeviceCode {
    device_auth_id: String,
    user_code: String,
    state: Option<DeviceResolution>,
}

/// One call to the token endpoint, as received.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenCall {
    /// `grant_type`.
    pub grant_type: String,
    /// Every member of the body (form or JSON), as strings.
    pub params: HashMap<String, String>,
}

struct Settings {
    authorize: AuthorizeMode,
    exchange: ExchangeMode,
    account_id: String,
    plan: String,
    email: String,
    access_ttl: Duration,
    device_enabled: bool,
}

#[derive(Default)]
struct Records {
    authorize: Vec<HashMap<String, String>>,
    token_calls: Vec<TokenCall>,
    /// code → (challenge, redirect_uri).
    codes: HashMap<String, (String, String)>,
    unused_refresh: std::collections::HashSet<String>,
    used_refresh: std::collections::HashSet<String>,
    issued: Vec<IssuedTokens>,
    devices: Vec<DeviceCode>,
    device_polls: usize,
}

struct Inner {
    settings: Mutex<Settings>,
    records: Mutex<Records>,
    counter: AtomicUsize,
    base: String,
    shutdown: Shutdown,
}

/// A running mock issuer. Dropping it stops the server.
pub struct MockIssuer {
    inner: Arc<Inner>,
    server: LoopbackServer,
}

impl MockIssuer {
    /// Starts an issuer that approves every sign-in for `org-1` (plan `plus`,
    /// `user@example.com`).
    pub async fn start() -> std::io::Result<MockIssuer> {
        let binding = Binding::new().await?;
        let inner = Arc::new(Inner {
            settings: Mutex::new(Settings {
                authorize: AuthorizeMode::Approve,
                exchange: ExchangeMode::Issue,
                account_id: "org-1".into(),
                plan: "plus".into(),
                email: "user@example.com".into(),
                access_ttl: Duration::from_secs(3600),
                device_enabled: true,
            }),
            records: Mutex::new(Records::default()),
            counter: AtomicUsize::new(0),
            base: format!("http://{}", binding.addr()),
            shutdown: binding.shutdown(),
        });
        let server = binding.serve(Router::new().fallback(handle).with_state(inner.clone()));
        Ok(MockIssuer { inner, server })
    }

    /// `http://127.0.0.1:PORT` (what `chatgpt_issuer` is set to).
    pub fn url(&self) -> String {
        self.server.url("")
    }

    /// `<url>/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.url())
    }

    /// How later authorize requests are answered.
    pub fn set_authorize(&self, mode: AuthorizeMode) {
        lock(&self.inner.settings).authorize = mode;
    }

    /// How later code exchanges are answered.
    pub fn set_exchange(&self, mode: ExchangeMode) {
        lock(&self.inner.settings).exchange = mode;
    }

    /// The account (workspace), plan and email of the tokens issued from now on.
    pub fn set_account(&self, account_id: &str, plan: &str, email: &str) {
        let mut s = lock(&self.inner.settings);
        s.account_id = account_id.into();
        s.plan = plan.into();
        s.email = email.into();
    }

    /// Lifetime of the access tokens issued from now on.
    pub fn set_access_ttl(&self, ttl: Duration) {
        lock(&self.inner.settings).access_ttl = ttl;
    }

    /// `false`: both device-code endpoints answer 404.
    pub fn set_device_enabled(&self, enabled: bool) {
        lock(&self.inner.settings).device_enabled = enabled;
    }

    /// Resolves a pending device code; false if no code has this user code.
    pub fn resolve_device(&self, user_code: &str, how: DeviceResolution) -> bool {
        let mut r = lock(&self.inner.records);
        match r.devices.iter_mut().find(|d| d.user_code == user_code) {
            Some(d) => {
                d.state = Some(how);
                true
            }
            None => false,
        }
    }

    /// The user codes handed out so far.
    pub fn device_codes(&self) -> Vec<String> {
        lock(&self.inner.records)
            .devices
            .iter()
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// Number of device token polls so far.
    pub fn device_polls(&self) -> usize {
        lock(&self.inner.records).device_polls
    }

    /// The query of every authorize request so far.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        lock(&self.inner.records).authorize.clone()
    }

    /// Every token endpoint call so far.
    pub fn token_calls(&self) -> Vec<TokenCall> {
        lock(&self.inner.records).token_calls.clone()
    }

    /// Every token set issued so far (exchanges and refreshes).
    pub fn issued(&self) -> Vec<IssuedTokens> {
        lock(&self.inner.records).issued.clone()
    }
}

fn oauth_error(status: u16, code: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": code, "error_description": description}),
    )
}

fn redirect(location: &str) -> Response {
    Response::builder()
        .status(302)
        .header("location", location)
        .body(Body::empty())
        .unwrap_or_default()
}

fn query_of(raw: Option<&str>) -> HashMap<String, String> {
    url_decode_pairs(raw.unwrap_or(""))
}

fn url_decode_pairs(raw: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

/// A body's members as strings: JSON object or form-encoded.
fn body_params(bytes: &[u8]) -> HashMap<String, String> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) {
        return map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
    }
    url_decode_pairs(&String::from_utf8_lossy(bytes))
}

fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{q}")
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    match (parts.method.as_str(), path.as_str()) {
        ("GET", "/oauth/authorize") => authorize(&inner, query_of(parts.uri.query())),
        ("POST", "/oauth/token") => token(&inner, body_params(&bytes)).await,
        ("POST", "/api/accounts/deviceauth/usercode") => usercode(&inner, body_params(&bytes)),
        ("POST", "/api/accounts/deviceauth/token") => device_token(&inner, body_params(&bytes)),
        _ => respond(404, "text/plain", "no such route"),
    }
}

fn authorize(inner: &Inner, q: HashMap<String, String>) -> Response {
    lock(&inner.records).authorize.push(q.clone());
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || get("client_id").is_empty()
        || get("redirect_uri").is_empty()
    {
        return respond(400, "text/plain", "bad authorize request");
    }
    let mode = lock(&inner.settings).authorize.clone();
    let redirect_uri = get("redirect_uri");
    let state = get("state");
    match mode {
        AuthorizeMode::Deny => redirect(&with_query(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user declined to sign in"),
                ("state", state),
            ],
        )),
        AuthorizeMode::Approve | AuthorizeMode::WrongState => {
            let n = inner.counter.fetch_add(1, Ordering::SeqCst) + 1;
            let code = format!("code_{n}");
            lock(&inner.records).codes.insert(
                code.clone(),
                (get("code_challenge").to_owned(), redirect_uri.to_owned()),
            );
            let state = if mode == AuthorizeMode::WrongState {
                "forged-state"
            } else {
                state
            };
            redirect(&with_query(
                redirect_uri,
                &[("code", &code), ("state", state)],
            ))
        }
    }
}

fn mint(inner: &Inner) -> IssuedTokens {
    let s = lock(&inner.settings);
    let n = inner.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let base = Jwt::new()
        .email(&s.email)
        .plan(&s.plan)
        .account(&s.account_id)
        .exp_in(s.access_ttl)
        .claim("jti", json!(format!("issuer-{n}")));
    IssuedTokens {
        id_token: base.clone().claim("kind", json!("id")).mint(),
        access_token: base.mint(),
        refresh_token: format!("rt_issuer_{n}"),
    }
}

fn issue(inner: &Inner) -> Response {
    let t = mint(inner);
    let mut r = lock(&inner.records);
    r.unused_refresh.insert(t.refresh_token.clone());
    r.issued.push(t.clone());
    let body = json!({"id_token": t.id_token, "access_token": t.access_token, "refresh_token": t.refresh_token, "token_type": "Bearer", "expires_in": 3600});
    json_response(200, &body)
}

async fn token(inner: &Inner, p: HashMap<String, String>) -> Response {
    let grant = p.get("grant_type").cloned().unwrap_or_default();
    lock(&inner.records).token_calls.push(TokenCall {
        grant_type: grant.clone(),
        params: p.clone(),
    });
    match grant.as_str() {
        "authorization_code" => {
            let mode = lock(&inner.settings).exchange.clone();
            match mode {
                ExchangeMode::Fail { status, code } => {
                    return oauth_error(status, &code, "the issuer refused the code")
                }
                ExchangeMode::Hang => {
                    inner.shutdown.wait().await;
                    return respond(503, "text/plain", "shutting down");
                }
                ExchangeMode::Delay(d) => tokio::time::sleep(d).await,
                ExchangeMode::Issue => {}
            }
            let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
            let Some((challenge, redirect_uri)) = lock(&inner.records).codes.remove(get("code"))
            else {
                return oauth_error(400, "invalid_grant", "unknown or used code");
            };
            if challenge_of(get("code_verifier")) != challenge {
                return oauth_error(400, "invalid_grant", "code_verifier does not match");
            }
            if get("redirect_uri") != redirect_uri {
                return oauth_error(400, "invalid_grant", "redirect_uri does not match");
            }
            if get("client_id").is_empty() {
                return oauth_error(400, "invalid_client", "client_id is required");
            }
            issue(inner)
        }
        "refresh_token" => {
            let rt = p.get("refresh_token").cloned().unwrap_or_default();
            {
                let mut r = lock(&inner.records);
                if r.used_refresh.contains(&rt) {
                    return oauth_error(401, "refresh_token_reused", "already used");
                }
                if !r.unused_refresh.remove(&rt) {
                    return oauth_error(401, "refresh_token_invalidated", "unknown");
                }
                r.used_refresh.insert(rt);
            }
            issue(inner)
        }
        _ => oauth_error(400, "unsupported_grant_type", "unsupported grant_type"),
    }
}

fn usercode(inner: &Inner, p: HashMap<String, String>) -> Response {
    if !lock(&inner.settings).device_enabled {
        return respond(404, "text/plain", "Not Found");
    }
    if p.get("client_id").is_none_or(|c| c.is_empty()) {
        return oauth_error(400, "invalid_client", "client_id is required");
    }
    let n = inner.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let d = DeviceCode {
        device_auth_id: format!("deviceauth_{n}"),
        user_code: format!("ABCD-{:04}", n % 10_000),
        state: None,
    };
    let body =
        json!({"device_auth_id": d.device_auth_id, "user_code": d.user_code, "interval": "0"});
    lock(&inner.records).devices.push(d);
    json_response(200, &body)
}

fn device_token(inner: &Inner, p: HashMap<String, String>) -> Response {
    if !lock(&inner.settings).device_enabled {
        return respond(404, "text/plain", "Not Found");
    }
    let mut r = lock(&inner.records);
    r.device_polls += 1;
    let found = r
        .devices
        .iter()
        .find(|d| {
            Some(&d.device_auth_id) == p.get("device_auth_id")
                && Some(&d.user_code) == p.get("user_code")
        })
        .cloned();
    let Some(d) = found else {
        return oauth_error(400, "invalid_request", "unknown device code");
    };
    match d.state {
        None => oauth_error(403, "deviceauth_authorization_pending", "pending"),
        Some(DeviceResolution::Deny) => oauth_error(400, "access_denied", "denied"),
        Some(DeviceResolution::Expire) => oauth_error(400, "expired_token", "expired"),
        Some(DeviceResolution::Approve) => {
            let n = inner.counter.fetch_add(1, Ordering::SeqCst) + 1;
            let verifier = format!("device-verifier-{n}-0123456789abcdefghijklmnopqrstuvwxyz");
            let challenge = challenge_of(&verifier);
            let code = format!("device_code_{n}");
            let redirect_uri = format!("{}/deviceauth/callback", inner.base);
            r.codes
                .insert(code.clone(), (challenge.clone(), redirect_uri));
            // Approved once: a second poll finds it pending again.
            if let Some(d) = r.devices.iter_mut().find(|x| x.user_code == d.user_code) {
                d.state = None;
            }
            let body = json!({"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier});
            json_response(200, &body)
        }
    }
}

/// What the scripted browser saw.
#[derive(Clone, Debug)]
pub struct BrowserVisit {
    /// The status of the authorize request (302 when the issuer redirected).
    pub authorize_status: u16,
    /// Where the issuer redirected to.
    pub callback_url: Option<String>,
    /// The status of the callback page.
    pub status: u16,
    /// The callback page's HTML.
    pub body: String,
}

/// Follows `auth_url` like a person's browser: GET the authorize page, follow its
/// redirect to the `redirect_uri` (the server's loopback callback), read the page.
/// Every request has a deadline of `timeout`.
pub async fn browse(auth_url: &str, timeout: Duration) -> Result<BrowserVisit, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let first = client
        .get(auth_url)
        .send()
        .await
        .map_err(|e| format!("GET authorize: {e}"))?;
    let authorize_status = first.status().as_u16();
    let Some(location) = first
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
    else {
        let body = first.text().await.unwrap_or_default();
        return Ok(BrowserVisit {
            authorize_status,
            callback_url: None,
            status: authorize_status,
            body,
        });
    };
    let page = client
        .get(&location)
        .send()
        .await
        .map_err(|e| format!("GET callback: {e}"))?;
    let status = page.status().as_u16();
    let body = page
        .text()
        .await
        .map_err(|e| format!("callback body: {e}"))?;
    Ok(BrowserVisit {
        authorize_status,
        callback_url: Some(location),
        status,
        body,
    })
}
