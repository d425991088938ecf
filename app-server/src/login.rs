//! The browser and device-code sign-in flows as the protocol runs them (docs/protocol.md
//! §3.8): `account/login/start` answers at once with a `loginId`, the flow runs in a task
//! of its own, and exactly one `account/login/completed` is sent for that `loginId` —
//! followed, on success, by `account/updated`.
//!
//! At most one flow is pending. A new `account/login/start` (any type) stops it and waits
//! until its `account/login/completed` (`success: false`) is queued, so the host hears of
//! the old flow's end before the new login's answer. `account/login/cancel` stops it too;
//! then the completion follows the cancel's answer. The flow's task is the only one that
//! sends its completion, which is what makes it exactly one; it ends with the connection.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge_auth_core::login::{browser::BrowserLogin, device, CallbackResponder};
use authbridge_auth_core::{
    AccountState, AuthError, Credentials, LoginConfig, LoginError, LoginTokens,
};
use authbridge_protocol::account::{
    AccountLoginCompleted, AccountLoginCompletedNotification, AccountUpdated,
    CancelLoginAccountParams, CancelLoginAccountResponse, CancelLoginAccountStatus,
    LoginAccountResponse,
};
use authbridge_protocol::ErrorObject;
use tokio::sync::{oneshot, watch};

use crate::config::{Config, ForcedLoginMethod};
use crate::handlers::account::{account_updated, external_auth_active, EXTERNAL_AUTH_ACTIVE};
use crate::peer::{PeerHandle, RequestContext};
use crate::state::AppState;

/// How long a new login waits for the flow it replaces to announce its end.
const REPLACE_WAIT: Duration = Duration::from_secs(5);

/// The sign-in settings from the config.
pub fn login_config(config: &Config) -> LoginConfig {
    LoginConfig {
        issuer: config.chatgpt_issuer.clone(),
        client_id: config.chatgpt_client_id.clone(),
        port: config.chatgpt_login_port,
        token_timeout: Duration::from_millis(config.chatgpt_token_timeout_ms),
        forced_workspace_id: config.forced_chatgpt_workspace_id.clone(),
        timeout: Duration::from_millis(config.chatgpt_login_timeout_ms),
    }
}

/// Why a flow was stopped from outside.
enum Stop {
    /// `account/login/cancel`: announce the end after the cancel's answer.
    Canceled(oneshot::Receiver<()>),
    /// A new login started.
    Replaced,
}

struct Pending {
    login_id: String,
    stop: oneshot::Sender<Stop>,
    /// Turns true once the flow's completion is queued.
    done: watch::Receiver<bool>,
}

/// The flow in progress, if any.
#[derive(Default)]
pub struct LoginFlows {
    pending: Mutex<Option<Pending>>,
}

impl LoginFlows {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the pending flow, if any, and waits (at most a few seconds) until its
    /// `account/login/completed` is queued.
    pub async fn replace(&self) {
        let Some(p) = self.lock().take() else {
            return;
        };
        tracing::debug!(login_id = %p.login_id, "a new login replaces a pending one");
        let _ = p.stop.send(Stop::Replaced);
        let mut done = p.done;
        let _ = tokio::time::timeout(REPLACE_WAIT, done.wait_for(|d| *d)).await;
    }

    /// Stops the flow with this id; false if no such flow is pending.
    fn cancel(&self, login_id: &str, after: oneshot::Receiver<()>) -> bool {
        let mut slot = self.lock();
        match slot.take() {
            Some(p) if p.login_id == login_id => {
                let _ = p.stop.send(Stop::Canceled(after));
                true
            }
            other => {
                *slot = other;
                false
            }
        }
    }

    fn register(&self, login_id: &str) -> (oneshot::Receiver<Stop>, watch::Sender<bool>) {
        let (stop, stop_rx) = oneshot::channel();
        let (done_tx, done) = watch::channel(false);
        *self.lock() = Some(Pending {
            login_id: login_id.to_owned(),
            stop,
            done,
        });
        (stop_rx, done_tx)
    }

    /// Takes the flow out of the table if it is still this one: it may then complete.
    fn claim(&self, login_id: &str) -> bool {
        let mut slot = self.lock();
        match slot.take() {
            Some(p) if p.login_id == login_id => true,
            other => {
                *slot = other;
                false
            }
        }
    }
}

fn state_of(creds: &Credentials) -> AccountState {
    creds.account_state()
}

/// The §3.8 policy checks shared by both flows.
fn check_allowed(state: &AppState) -> Result<(), ErrorObject> {
    if state.config.forced_login_method == Some(ForcedLoginMethod::Api) {
        return Err(ErrorObject::invalid_request(
            "ChatGPT login is disabled. Use API key login instead.",
        ));
    }
    if state.auth.external_tokens_active() {
        return Err(external_auth_active());
    }
    Ok(())
}

/// `account/login/start {"type":"chatgpt"}`.
pub async fn start_browser(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
) -> Result<LoginAccountResponse, ErrorObject> {
    check_allowed(state)?;
    let login = BrowserLogin::start(login_config(&state.config))
        .await
        .map_err(|e| ErrorObject::internal(e.to_string()))?;
    let login_id = uuid::Uuid::new_v4().to_string();
    let auth_url = login.auth_url().to_owned();
    tracing::info!(%login_id, port = login.port(), "browser sign-in started");
    let flow = async move {
        let (tokens, responder) = login.wait().await?;
        Ok((tokens, Some(responder)))
    };
    spawn_flow(state, ctx, &login_id, flow);
    Ok(LoginAccountResponse::Chatgpt { login_id, auth_url })
}

/// `account/login/start {"type":"chatgptDeviceCode"}`.
pub async fn start_device(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
) -> Result<LoginAccountResponse, ErrorObject> {
    check_allowed(state)?;
    let cfg = login_config(&state.config);
    let code = device::request_device_code(&cfg)
        .await
        .map_err(|e| ErrorObject::internal(e.to_string()))?;
    let login_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(%login_id, "device-code sign-in started");
    let response = LoginAccountResponse::ChatgptDeviceCode {
        login_id: login_id.clone(),
        verification_url: code.verification_url.clone(),
        user_code: code.user_code.clone(),
    };
    let flow = async move {
        let tokens = device::complete_device_code(&cfg, &code).await?;
        Ok((tokens, None))
    };
    spawn_flow(state, ctx, &login_id, flow);
    Ok(response)
}

/// `account/login/cancel`.
pub async fn cancel(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
    params: CancelLoginAccountParams,
) -> Result<CancelLoginAccountResponse, ErrorObject> {
    let after = ctx.after_response();
    let status = if state.logins.cancel(&params.login_id, after) {
        CancelLoginAccountStatus::Canceled
    } else {
        CancelLoginAccountStatus::NotFound
    };
    Ok(CancelLoginAccountResponse { status })
}

type FlowResult = Result<(LoginTokens, Option<CallbackResponder>), LoginError>;

fn spawn_flow<F>(state: &Arc<AppState>, ctx: &mut RequestContext, login_id: &str, flow: F)
where
    F: Future<Output = FlowResult> + Send + 'static,
{
    let (stop, done) = state.logins.register(login_id);
    let started = ctx.after_response();
    let task = FlowTask {
        state: state.clone(),
        peer: ctx.peer().clone(),
        login_id: login_id.to_owned(),
    };
    tokio::spawn(async move {
        task.run(flow, stop, started).await;
        let _ = done.send(true);
    });
}

struct FlowTask {
    state: Arc<AppState>,
    peer: PeerHandle,
    login_id: String,
}

impl FlowTask {
    async fn run<F: Future<Output = FlowResult>>(
        self,
        flow: F,
        mut stop: oneshot::Receiver<Stop>,
        started: oneshot::Receiver<()>,
    ) {
        let timeout = Duration::from_millis(self.state.config.chatgpt_login_timeout_ms);
        let closed = self.peer.cancellation();
        let outcome: Result<_, (LoginError, Option<oneshot::Receiver<()>>)> = tokio::select! {
            r = flow => r.map_err(|e| (e, None)),
            s = &mut stop => Err(stopped(s.ok())),
            _ = tokio::time::sleep(timeout) => Err((LoginError::TimedOut, None)),
            _ = closed.cancelled() => {
                self.state.logins.claim(&self.login_id);
                return;
            }
        };
        // Never before the answer to the login start itself.
        let _ = started.await;
        let (tokens, responder) = match outcome {
            Ok(ok) => ok,
            Err((e, after)) => {
                self.state.logins.claim(&self.login_id);
                return self.fail(e, after).await;
            }
        };
        if !self.state.logins.claim(&self.login_id) {
            // Cancelled or replaced after the tokens came: the stop wins, nothing is stored.
            let (e, after) = stopped(stop.try_recv().ok());
            if let Some(mut r) = responder {
                r.failure(&e.to_string());
            }
            return self.fail(e, after).await;
        }
        let mut told = self.state.told.lock().await;
        match self.state.auth.login_chatgpt(&tokens).await {
            Ok(creds) => {
                let now = state_of(&creds);
                *told = Some(now.clone());
                tracing::info!(login_id = %self.login_id, "ChatGPT sign-in completed");
                self.completed(true, None).await;
                self.peer
                    .notify::<AccountUpdated>(&account_updated(&now))
                    .await;
                drop(told);
                if let Some(mut r) = responder {
                    r.success(creds.email());
                    r.finish().await;
                }
            }
            Err(e) => {
                drop(told);
                let e = LoginError::Store(match e {
                    AuthError::ExternalAuthActive => EXTERNAL_AUTH_ACTIVE.to_owned(),
                    other => other.to_string(),
                });
                if let Some(mut r) = responder {
                    r.failure(&e.to_string());
                }
                self.fail(e, None).await;
            }
        }
    }

    async fn fail(&self, e: LoginError, after: Option<oneshot::Receiver<()>>) {
        if let Some(after) = after {
            let _ = after.await;
        }
        tracing::info!(login_id = %self.login_id, error = %e, "ChatGPT sign-in did not complete");
        self.completed(false, Some(e.to_string())).await;
    }

    async fn completed(&self, success: bool, error: Option<String>) {
        self.peer
            .notify::<AccountLoginCompleted>(&AccountLoginCompletedNotification {
                login_id: Some(self.login_id.clone()),
                success,
                error,
                onboarding_entrypoint: None,
            })
            .await;
    }
}

fn stopped(stop: Option<Stop>) -> (LoginError, Option<oneshot::Receiver<()>>) {
    match stop {
        Some(Stop::Canceled(after)) => (LoginError::Canceled, Some(after)),
        Some(Stop::Replaced) => (LoginError::Replaced, None),
        None => (LoginError::Canceled, None),
    }
}
