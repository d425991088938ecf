//! `AuthManager`: the account's cached credentials, their precedence, and the hot path
//! `auth()`. A provider whose token comes from its `[auth]` command has a
//! [`BearerManager`] of its own instead; both hand out an [`UnauthorizedRecovery`] (§4.3).
//!
//! State lives in one `RwLock` that is never held across an `.await`: `auth()` and
//! `snapshot()` take it for reading, clone an `Arc` and let go. Changes go through
//! [`Shared::commit`], which publishes the (mode, account, plan) triple (§3.7) and wakes
//! refresh waiters. Another process's rewrite of `auth.json` is noticed by a `stat` at
//! most once a second (and by the reload step of 401 recovery).

mod bearer;
mod external;
mod login;
mod managed;
pub mod recovery;
mod state;

pub use bearer::BearerManager;
pub use recovery::UnauthorizedRecovery;

use state::{base_state, load_file};

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::credentials::{AccountState, CredentialSource, Credentials};
use crate::error::{AuthError, RefreshError};
use crate::refresh::external::{ExternalAuthRefresher, RefreshReason};
use crate::refresh::token_endpoint::TokenEndpoint;
use crate::secret::Secret;
use crate::single_flight::SingleFlight;
use crate::store::file::{self, FileStamp};
use crate::store::StoreMode;

/// Everything the manager needs to know; the app-server fills it from `config.toml`.
#[derive(Clone, Debug)]
pub struct AuthManagerConfig {
    /// Where `auth.json` lives.
    pub auth_dir: PathBuf,
    /// `cli_auth_credentials_store`.
    pub store: StoreMode,
    /// `AUTHBRIDGE_API_KEY`, read by the caller.
    pub env_api_key: Option<Secret>,
    /// `forced_chatgpt_workspace_id`.
    pub forced_chatgpt_workspace_id: Option<String>,
    /// `chatgpt_token_url` (or its environment override).
    pub token_url: String,
    /// `chatgpt_client_id`.
    pub client_id: String,
    /// `chatgpt_token_timeout_ms`.
    pub token_timeout: Duration,
    /// `external_auth_refresh_timeout_ms`.
    pub external_refresh_timeout: Duration,
    /// `auth_lock_timeout_ms`: how long a login or logout waits for `auth.json.lock`.
    pub lock_timeout: Duration,
}

/// The token endpoint of managed ChatGPT refresh (`chatgpt_token_url`).
pub const DEFAULT_TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
/// The OAuth client id sent to the token endpoint and the issuer (`chatgpt_client_id`).
pub const DEFAULT_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// `chatgpt_token_timeout_ms`.
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// `external_auth_refresh_timeout_ms`.
pub const DEFAULT_EXTERNAL_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// `auth_lock_timeout_ms`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

impl AuthManagerConfig {
    /// The documented defaults (docs/config.md) with this `auth_dir`.
    pub fn new(auth_dir: impl Into<PathBuf>) -> Self {
        AuthManagerConfig {
            auth_dir: auth_dir.into(),
            store: StoreMode::File,
            env_api_key: None,
            forced_chatgpt_workspace_id: None,
            token_url: DEFAULT_TOKEN_URL.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            token_timeout: DEFAULT_TOKEN_TIMEOUT,
            external_refresh_timeout: DEFAULT_EXTERNAL_REFRESH_TIMEOUT,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

enum Stored {
    Loaded(Option<Credentials>),
    Corrupt(String),
    /// `auth.json` exists but cannot be read (a directory, no permission): the OS error
    /// kind, reported as an I/O error on the store (docs/protocol.md §1.3).
    Unreadable(std::io::ErrorKind, String),
}

struct State {
    external: Option<Credentials>,
    env: Option<Credentials>,
    stored: Stored,
    stamp: Option<FileStamp>,
}

/// The manager's state, also held by the refresh tasks it spawns.
pub(crate) struct Shared {
    cfg: AuthManagerConfig,
    auth_path: PathBuf,
    state: RwLock<State>,
    account_tx: watch::Sender<AccountState>,
    generation_tx: watch::Sender<u64>,
    publish_lock: Mutex<()>,
    managed_lock: tokio::sync::Mutex<()>,
    chatgpt_flight: SingleFlight,
    permanent: Mutex<Option<(Credentials, RefreshError)>>,
    managed_backoff: Mutex<Option<(Credentials, i64)>>,
    proactive_ahead_ms: AtomicU64,
    proactive_tried: Mutex<Option<Secret>>,
    next_stat_ms: AtomicI64,
    endpoint: TokenEndpoint,
    /// Refresh tokens the endpoint has accepted (and rotated): never sent again (§4.2).
    spent: Mutex<Vec<Secret>>,
    /// Refreshed tokens that could not be written to `auth.json` (disk full, read-only):
    /// in use from memory, written at the next chance.
    unsaved: Mutex<Option<managed::Unsaved>>,
    /// True while `unsaved` holds tokens: the hot path reads this, not the mutex.
    has_unsaved: std::sync::atomic::AtomicBool,
    /// The storage problem the host is told about (`None` once the tokens are saved).
    storage_tx: watch::Sender<Option<String>>,
}

/// The account's credential manager. See the crate docs for the modes and precedence.
pub struct AuthManager {
    shared: Arc<Shared>,
    /// The host's refresher of external ChatGPT tokens, once registered.
    refresher: RwLock<Option<Arc<dyn ExternalAuthRefresher>>>,
}

const PROACTIVE_OFF: u64 = u64::MAX;
const MANAGED_AHEAD_MS: i64 = 5 * 60 * 1000;
const MANAGED_MAX_AGE_MS: i64 = 8 * 24 * 3600 * 1000;
const MANAGED_BACKOFF_MS: i64 = 30_000;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AuthManager {
    /// A manager. Never fails: a corrupt `auth.json` surfaces when credentials are used.
    pub fn new(cfg: AuthManagerConfig) -> Arc<AuthManager> {
        let auth_path = file::auth_path(&cfg.auth_dir);
        let env = cfg
            .env_api_key
            .clone()
            .map(|k| Credentials::api_key(k, CredentialSource::EnvApiKey));
        let mut state = State {
            external: None,
            env,
            stored: Stored::Loaded(None),
            stamp: None,
        };
        if cfg.store == StoreMode::File {
            load_file(&auth_path, &mut state);
        }
        let initial = base_state(&state);
        let endpoint = TokenEndpoint::new(
            cfg.token_url.clone(),
            cfg.client_id.clone(),
            cfg.token_timeout,
        );
        let shared = Shared {
            cfg,
            auth_path,
            state: RwLock::new(state),
            account_tx: watch::channel(initial).0,
            generation_tx: watch::channel(0).0,
            publish_lock: Mutex::new(()),
            managed_lock: tokio::sync::Mutex::new(()),
            chatgpt_flight: SingleFlight::default(),
            permanent: Mutex::new(None),
            managed_backoff: Mutex::new(None),
            proactive_ahead_ms: AtomicU64::new(PROACTIVE_OFF),
            proactive_tried: Mutex::new(None),
            next_stat_ms: AtomicI64::new(now_ms() + 1000),
            endpoint,
            spent: Mutex::new(Vec::new()),
            unsaved: Mutex::new(None),
            has_unsaved: std::sync::atomic::AtomicBool::new(false),
            storage_tx: watch::channel(None).0,
        };
        Arc::new(AuthManager {
            shared: Arc::new(shared),
            refresher: RwLock::new(None),
        })
    }

    /// The credentials for a provider request. Runs a proactive managed refresh (exp
    /// within 5 min or 8 days old) and, when enabled, a proactive external refresh; a
    /// failed proactive refresh returns the current ones. Host-pushed tokens that a
    /// provider refused while their refresh is still running are not handed out: the call
    /// waits for that refresh and returns the new tokens, or its error
    /// ([`AuthError::Refresh`]) when it failed and left the refused ones in place.
    pub async fn auth(&self) -> Result<Option<Credentials>, AuthError> {
        let now = now_ms();
        let Some(mut creds) = self.shared.current(now)? else {
            return Ok(None);
        };
        if creds.source() == CredentialSource::ManagedChatgpt && self.shared.save_due(now) {
            self.shared.save_unsaved().await;
            match self.shared.current(now)? {
                Some(c) => creds = c,
                None => return Ok(None),
            }
        }
        match creds.source() {
            CredentialSource::ManagedChatgpt if self.shared.managed_due(&creds, now) => {
                if let Err(e) = self.shared.refresh_managed_from(&creds).await {
                    tracing::debug!(error = %e, "proactive managed refresh failed");
                    if !e.is_permanent() {
                        *lock(&self.shared.managed_backoff) =
                            Some((creds.clone(), now + MANAGED_BACKOFF_MS));
                    }
                }
                self.shared.current(now_ms())
            }
            // Tokens the provider just refused, with their host refresh running: wait for
            // it (it has its own deadline) rather than send a request bound to get a 401.
            CredentialSource::ExternalChatgpt => {
                if let Some(flight) = self.shared.chatgpt_flight.rejected(creds.bearer_token()) {
                    // Failed, and the tokens are still the refused ones: sending them
                    // would only earn another 401 and ask the host again.
                    if let Err(e) = flight.wait().await {
                        if self.shared.external_is(&creds) {
                            return Err(AuthError::Refresh(e));
                        }
                    }
                    return self.shared.current(now_ms());
                }
                if !self.external_due(&creds, now) {
                    return Ok(Some(creds));
                }
                if let Err(e) = self
                    .refresh_external(&creds, RefreshReason::ExpiringSoon)
                    .await
                {
                    tracing::debug!(error = %e, "proactive external refresh failed");
                }
                self.shared.current(now_ms())
            }
            _ => Ok(Some(creds)),
        }
    }

    /// The current credentials: no refresh, never waits on one.
    pub fn snapshot(&self) -> Result<Option<Credentials>, AuthError> {
        self.shared.current(now_ms())
    }

    /// True while host-pushed ChatGPT tokens are in use.
    pub fn external_tokens_active(&self) -> bool {
        read_lock(&self.shared.state).external.is_some()
    }

    /// True when a permanent refresh failure is recorded for exactly these credentials.
    pub fn has_permanent_failure(&self, creds: &Credentials) -> bool {
        self.shared.permanent_for(creds).is_some()
    }

    /// Registers the host's refresher of external ChatGPT tokens (§3.5); a second one
    /// replaces the first.
    pub fn set_external_refresher(&self, r: Arc<dyn ExternalAuthRefresher>) {
        *write_lock(&self.refresher) = Some(r);
    }

    /// Removes the refresher: a 401 on external tokens then has no recovery.
    pub fn clear_external_refresher(&self) {
        *write_lock(&self.refresher) = None;
    }

    /// §3.6: refresh external tokens whose `exp` is within `ahead`; `None` = off.
    pub fn set_proactive_external_refresh(&self, ahead: Option<Duration>) {
        let ms = ahead.map_or(PROACTIVE_OFF, |d| {
            d.as_millis().min(u64::MAX as u128 - 1) as u64
        });
        self.shared.proactive_ahead_ms.store(ms, Ordering::Relaxed);
    }

    /// The 401 recovery sequence for `rejected` (§4.3).
    pub fn unauthorized_recovery(self: &Arc<Self>, rejected: &Credentials) -> UnauthorizedRecovery {
        UnauthorizedRecovery::account(self.clone(), rejected.clone())
    }

    /// Why refreshed managed tokens are held in memory only (writing `auth.json` failed),
    /// or `None` when everything is saved. Changes are seen with [`Self::subscribe_storage`].
    pub fn storage_problem(&self) -> Option<String> {
        self.shared.storage_tx.borrow().clone()
    }

    /// Changes of [`Self::storage_problem`]: `Some(message)` when refreshed tokens could not
    /// be written, `None` again once they are.
    pub fn subscribe_storage(&self) -> watch::Receiver<Option<String>> {
        self.shared.storage_tx.subscribe()
    }

    /// Changes of (mode, account id, plan) of the account credentials (§3.7).
    pub fn subscribe(&self) -> watch::Receiver<AccountState> {
        self.shared.account_tx.subscribe()
    }

    fn refresher(&self) -> Option<Arc<dyn ExternalAuthRefresher>> {
        read_lock(&self.refresher).clone()
    }

    fn external_due(&self, creds: &Credentials, now: i64) -> bool {
        let ahead = self.shared.proactive_ahead_ms.load(Ordering::Relaxed);
        if ahead == PROACTIVE_OFF {
            return false;
        }
        let Some(exp) = creds.expires_at() else {
            return false;
        };
        // Cheap checks first: most calls see a token far from expiry.
        let ahead = i64::try_from(ahead).unwrap_or(i64::MAX);
        if !crate::jwt::expires_within(exp, now, ahead) || self.refresher().is_none() {
            return false;
        }
        let mut tried = lock(&self.shared.proactive_tried);
        if tried.as_ref() == Some(creds.bearer_token()) {
            return false;
        }
        *tried = Some(creds.bearer_token().clone());
        true
    }
}
