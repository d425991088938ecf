//! `initialize` (docs/protocol.md §2): answers who we are, records the host's notification
//! opt-outs, and wires the host into the credential manager (the refresh bridge, the
//! proactive-refresh opt-in, and the account-change watcher).

use std::sync::Arc;
use std::time::Duration;

use authbridge_protocol::account::{
    AccountUpdated, AccountUpdatedNotification, Warning, WarningNotification,
};
use authbridge_protocol::handshake::{InitializeParams, InitializeResponse, ServerInfo};
use authbridge_protocol::ErrorObject;

use crate::handlers::account::account_updated;
use crate::host_refresh::HostRefresher;
use crate::peer::{PeerHandle, RequestContext};
use crate::state::AppState;

pub const SERVER_NAME: &str = "authbridge";
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn initialize(
    state: &Arc<AppState>,
    ctx: &RequestContext,
    params: InitializeParams,
) -> Result<InitializeResponse, ErrorObject> {
    let caps = params.capabilities.unwrap_or_default();
    let peer = ctx.peer().clone();
    if let Some(methods) = caps.opt_out_notification_methods {
        peer.set_opt_out_notifications(methods);
    }
    state
        .auth
        .set_external_refresher(Arc::new(HostRefresher::new(peer.clone())));
    state.auth.set_proactive_external_refresh(
        caps.proactive_token_refresh
            .then(|| Duration::from_millis(state.config.external_auth_refresh_ahead_ms)),
    );
    let current = state.auth.subscribe().borrow().clone();
    *state.told.lock().await = Some(current);
    spawn_account_watcher(state.clone(), peer.clone());
    spawn_storage_watcher(state.clone(), peer);
    let client = &params.client_info;
    *crate::threads::lock(&state.client_name) = Some(client.name.clone());
    Ok(InitializeResponse {
        user_agent: format!(
            "{SERVER_NAME}/{SERVER_VERSION} ({}; {}) {}/{}",
            std::env::consts::OS,
            std::env::consts::ARCH,
            client.name,
            client.version
        ),
        codex_home: absolute(&state.home),
        platform_family: if cfg!(windows) { "windows" } else { "unix" }.into(),
        platform_os: match std::env::consts::OS {
            "macos" => "macos",
            "windows" => "windows",
            "linux" => "linux",
            other => other,
        }
        .into(),
        server_info: ServerInfo {
            name: SERVER_NAME.into(),
            version: SERVER_VERSION.into(),
        },
    })
}

/// Tells the host (`warning`) when refreshed tokens could not be written to `auth.json`
/// and are kept in memory (§4.2); once per distinct problem. Ends with the connection.
fn spawn_storage_watcher(state: Arc<AppState>, peer: PeerHandle) {
    let mut problems = state.auth.subscribe_storage();
    let cancel = peer.cancellation();
    tokio::spawn(async move {
        let mut pending = problems.borrow_and_update().clone();
        loop {
            if let Some(message) = pending.take() {
                let note = WarningNotification {
                    message,
                    thread_id: None,
                };
                peer.notify::<Warning>(&note).await;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                changed = problems.changed() => if changed.is_err() { break },
            }
            pending = problems.borrow_and_update().clone();
        }
    });
}

/// The home as an absolute path (Codex's `codexHome` is one).
fn absolute(home: &std::path::Path) -> String {
    std::path::absolute(home)
        .unwrap_or_else(|_| home.to_path_buf())
        .display()
        .to_string()
}

/// Tells the host when the credentials' (mode, account id, plan) change without a host
/// request (§3.7). Ends with the connection.
fn spawn_account_watcher(state: Arc<AppState>, peer: PeerHandle) {
    let mut changes = state.auth.subscribe();
    let cancel = peer.cancellation();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break },
            }
            let now = changes.borrow_and_update().clone();
            let mut told = state.told.lock().await;
            if told.as_ref() == Some(&now) {
                continue;
            }
            *told = Some(now.clone());
            let note: AccountUpdatedNotification = account_updated(&now);
            peer.notify::<AccountUpdated>(&note).await;
        }
    });
}
