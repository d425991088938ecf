//! What one server process shares between its handlers: the config, the account's
//! credential manager, the active provider's credential source, the HTTP client and the
//! running turns.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge_auth_core::{
    AccountState, AuthManager, AuthManagerConfig, CommandAuthConfig, CommandBearerSource, Secret,
    StoreMode,
};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, CredentialsStore};
use crate::provider::{ProviderClient, ProviderTimeouts};
use crate::provider_auth::ProviderAuthSource;

/// The environment variable whose API key applies after external tokens (§4.1).
pub const API_KEY_ENV: &str = "AUTHBRIDGE_API_KEY";
/// Overrides `chatgpt_token_url` (§4.2).
pub const TOKEN_URL_ENV: &str = "AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE";

/// Shared state of the server.
pub struct AppState {
    pub config: Config,
    pub home: PathBuf,
    /// The account's credentials (external tokens, env key, auth.json).
    pub auth: Arc<AuthManager>,
    /// Where the active provider's credentials come from.
    pub provider_auth: ProviderAuthSource,
    pub client: ProviderClient,
    pub turns: TurnRegistry,
    /// The account state the host was last told about; held while a login or logout
    /// changes it, so the change watcher does not announce it a second time.
    pub told: tokio::sync::Mutex<Option<AccountState>>,
    /// The browser or device-code sign-in in progress (§3.8).
    pub logins: crate::login::LoginFlows,
}

impl AppState {
    pub fn new(config: Config, home: PathBuf) -> Arc<AppState> {
        let token_url = std::env::var(TOKEN_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| config.chatgpt_token_url.clone());
        let env_api_key = std::env::var(API_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| Secret::new(k.trim().to_string()));
        let auth = AuthManager::new(AuthManagerConfig {
            auth_dir: config.auth_dir(&home),
            store: match config.cli_auth_credentials_store {
                CredentialsStore::File => StoreMode::File,
                CredentialsStore::Ephemeral => StoreMode::Ephemeral,
            },
            env_api_key,
            forced_chatgpt_workspace_id: config.forced_chatgpt_workspace_id.clone(),
            token_url,
            client_id: config.chatgpt_client_id.clone(),
            token_timeout: Duration::from_millis(config.chatgpt_token_timeout_ms),
            external_refresh_timeout: config.external_refresh_timeout(),
        });
        let provider = config.active_provider().clone();
        let provider_auth = if provider.requires_openai_auth {
            ProviderAuthSource::Account(auth.clone())
        } else if let Some(name) = &provider.env_key {
            ProviderAuthSource::EnvKey(name.clone())
        } else if let Some(cmd) = &provider.auth {
            let source = CommandBearerSource::new(CommandAuthConfig {
                command: cmd.command.clone(),
                args: cmd.args.clone(),
                timeout: Duration::from_millis(cmd.timeout_ms),
                refresh_interval: Duration::from_millis(cmd.refresh_interval_ms),
                cwd: cmd.cwd.clone(),
            });
            ProviderAuthSource::Command(auth.with_external_bearer_refresher(Arc::new(source)))
        } else {
            ProviderAuthSource::None
        };
        let client = ProviderClient::new(ProviderTimeouts {
            connect: Duration::from_millis(provider.connect_timeout_ms),
            stream_idle: Duration::from_millis(provider.stream_idle_timeout_ms),
        });
        Arc::new(AppState {
            config,
            home,
            auth,
            provider_auth,
            client,
            turns: TurnRegistry::default(),
            told: tokio::sync::Mutex::new(None),
            logins: crate::login::LoginFlows::default(),
        })
    }
}

/// Running turns by id, so `turn/interrupt` can stop them.
#[derive(Default)]
pub struct TurnRegistry {
    turns: Mutex<HashMap<String, CancellationToken>>,
}

impl TurnRegistry {
    pub fn insert(&self, id: String, token: CancellationToken) {
        self.lock().insert(id, token);
    }
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
    /// Cancels the turn if it is running; an unknown or finished turn is not an error.
    pub fn interrupt(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.turns.lock().unwrap_or_else(|p| p.into_inner())
    }
}
