//! What one server process shares between its handlers: the config, the account's
//! credential manager, each provider's credential source and HTTP client, and the
//! threads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authbridge_auth_core::{
    AccountState, AuthManager, AuthManagerConfig, BearerManager, CommandAuthConfig,
    CommandBearerSource, Secret, StoreMode,
};

use crate::config::{Config, CredentialsStore, ProviderConfig};
use crate::provider::{ProviderClient, ProviderTimeouts};
use crate::provider_auth::ProviderAuthSource;
use crate::threads::ThreadStore;

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
    pub provider_auth: Arc<ProviderAuthSource>,
    /// The active provider's HTTP client.
    pub client: ProviderClient,
    /// Every configured provider (the active one included), for threads that name one.
    pub providers: BTreeMap<String, ProviderRuntime>,
    /// The threads of this process (in memory only).
    pub threads: ThreadStore,
    /// The account state the host was last told about; held while a login or logout
    /// changes it, so the change watcher does not announce it a second time.
    pub told: tokio::sync::Mutex<Option<AccountState>>,
    /// The host's `clientInfo.name` (a thread's `originator`).
    pub client_name: std::sync::Mutex<Option<String>>,
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
            lock_timeout: Duration::from_millis(config.auth_lock_timeout_ms),
        });
        let providers: BTreeMap<String, ProviderRuntime> = config
            .model_providers
            .iter()
            .map(|(id, provider)| (id.clone(), ProviderRuntime::new(provider, &auth)))
            .collect();
        let active = providers
            .get(&config.model_provider)
            .cloned()
            .unwrap_or_else(|| ProviderRuntime::new(config.active_provider(), &auth));
        Arc::new(AppState {
            config,
            home,
            auth,
            provider_auth: active.auth.clone(),
            client: active.client.clone(),
            providers,
            threads: ThreadStore::default(),
            told: tokio::sync::Mutex::new(None),
            client_name: std::sync::Mutex::new(None),
            logins: crate::login::LoginFlows::default(),
        })
    }
}

/// One provider's credential source and HTTP client.
#[derive(Clone)]
pub struct ProviderRuntime {
    pub config: ProviderConfig,
    pub auth: Arc<ProviderAuthSource>,
    pub client: ProviderClient,
}

impl ProviderRuntime {
    fn new(provider: &ProviderConfig, account: &Arc<AuthManager>) -> Self {
        let auth = if provider.requires_openai_auth {
            ProviderAuthSource::Account(account.clone())
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
            ProviderAuthSource::Command(BearerManager::new(Arc::new(source)))
        } else {
            ProviderAuthSource::None
        };
        let client = ProviderClient::new(ProviderTimeouts {
            connect: Duration::from_millis(provider.connect_timeout_ms),
            stream_idle: Duration::from_millis(provider.stream_idle_timeout_ms),
        });
        ProviderRuntime {
            config: provider.clone(),
            auth: Arc::new(auth),
            client,
        }
    }
}

impl AppState {
    pub fn client_name(&self) -> Option<String> {
        crate::threads::lock(&self.client_name).clone()
    }

    /// The provider a thread or request names (the active one when `None`); -32602 for
    /// an id not in `[model_providers]`.
    pub fn provider(
        &self,
        id: Option<&str>,
    ) -> Result<(&str, &ProviderRuntime), authbridge_protocol::ErrorObject> {
        let id = id.unwrap_or(&self.config.model_provider);
        self.providers
            .get_key_value(id)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| {
                let known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
                authbridge_protocol::ErrorObject::invalid_params(format!(
                    "unknown model provider {:?}: configured providers are {}",
                    id.chars().take(200).collect::<String>(),
                    known.join(", ")
                ))
            })
    }
}
