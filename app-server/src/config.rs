//! `config.toml` plus `-c key=value` overrides, resolved into the settings the server runs
//! with (docs/protocol.md §5). Unknown keys and values of the wrong type are start-up errors that
//! name the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use authbridge_auth_core::manager;
use serde::Deserialize;
use toml::{Table, Value};

use crate::peer::PeerConfig;

/// Why the configuration could not be loaded. Each message names the file or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid override `{0}`: expected key=value, e.g. -c model=\"gpt-5\"")]
    BadOverride(String),
    #[error("override `{key}` cannot be applied: `{parent}` is not a table")]
    OverrideNotTable { key: String, parent: String },
    #[error("invalid config key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("model_provider = \"{0}\" names no [model_providers.{0}] table")]
    UnknownProvider(String),
    #[error("model_providers.{0}: env_key and [auth] cannot both be set; pick one source of credentials")]
    TwoCredentialSources(String),
    #[error("no home directory: set AUTHBRIDGE_HOME or pass --home DIR")]
    NoHome,
}

/// `forced_login_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForcedLoginMethod {
    Chatgpt,
    Api,
}

/// `cli_auth_credentials_store`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialsStore {
    #[default]
    File,
    Ephemeral,
}

/// `[model_providers.<id>.auth]`: a command that prints a bearer token.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderAuthCommand {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_command_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval_ms: u64,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// `[model_providers.<id>]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub base_url: String,
    #[serde(default)]
    pub chatgpt_base_url: Option<String>,
    #[serde(default)]
    pub requires_openai_auth: bool,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_stream_idle_timeout")]
    pub stream_idle_timeout_ms: u64,
    #[serde(default)]
    pub env_key: Option<String>,
    #[serde(default)]
    pub auth: Option<ProviderAuthCommand>,
}

/// The whole `config.toml`, every key optional.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_provider")]
    pub model_provider: String,
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default)]
    pub auth_dir: Option<String>,
    #[serde(default)]
    pub forced_login_method: Option<ForcedLoginMethod>,
    #[serde(default)]
    pub forced_chatgpt_workspace_id: Option<String>,
    #[serde(default)]
    pub cli_auth_credentials_store: CredentialsStore,
    #[serde(default = "default_external_timeout")]
    pub external_auth_refresh_timeout_ms: u64,
    #[serde(default = "default_refresh_ahead")]
    pub external_auth_refresh_ahead_ms: u64,
    #[serde(default = "default_token_url")]
    pub chatgpt_token_url: String,
    #[serde(default = "default_token_timeout")]
    pub chatgpt_token_timeout_ms: u64,
    #[serde(default = "default_client_id")]
    pub chatgpt_client_id: String,
    /// The OAuth issuer of ChatGPT sign-in (§3.8). When it is set and `chatgpt_token_url`
    /// is not, refreshes go to `<chatgpt_issuer>/oauth/token` too.
    #[serde(default = "default_issuer")]
    pub chatgpt_issuer: String,
    /// Where the browser sign-in's callback server listens first (0: any free port).
    #[serde(default = "default_login_port")]
    pub chatgpt_login_port: u16,
    /// How long a browser or device-code sign-in may take (10 minutes; tests shorten it).
    #[serde(default = "default_login_timeout")]
    pub chatgpt_login_timeout_ms: u64,
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight_requests: usize,
    /// Bytes of output that may wait for the host to read them before the server stops
    /// reading (docs/protocol.md §1.2).
    #[serde(default = "default_max_unsent_output_bytes")]
    pub max_unsent_output_bytes: usize,
    /// How long a login or logout waits for another process's `auth.json.lock` (§4.1).
    #[serde(default = "default_auth_lock_timeout")]
    pub auth_lock_timeout_ms: u64,
    #[serde(default)]
    pub model_providers: BTreeMap<String, ProviderConfig>,
}

fn default_provider() -> String {
    "openai".into()
}
fn default_model() -> String {
    "gpt-5".into()
}
fn default_external_timeout() -> u64 {
    manager::DEFAULT_EXTERNAL_REFRESH_TIMEOUT.as_millis() as u64
}
fn default_refresh_ahead() -> u64 {
    300_000
}
fn default_token_url() -> String {
    manager::DEFAULT_TOKEN_URL.into()
}
fn default_auth_lock_timeout() -> u64 {
    manager::DEFAULT_LOCK_TIMEOUT.as_millis() as u64
}
fn default_token_timeout() -> u64 {
    manager::DEFAULT_TOKEN_TIMEOUT.as_millis() as u64
}
fn default_client_id() -> String {
    manager::DEFAULT_CLIENT_ID.into()
}
fn default_issuer() -> String {
    authbridge_auth_core::login::DEFAULT_ISSUER.into()
}
fn default_login_port() -> u16 {
    authbridge_auth_core::login::DEFAULT_LOGIN_PORT
}
fn default_login_timeout() -> u64 {
    authbridge_auth_core::login::DEFAULT_LOGIN_TIMEOUT.as_millis() as u64
}
fn default_max_message_bytes() -> usize {
    PeerConfig::default().max_message_bytes
}
fn default_max_in_flight() -> usize {
    PeerConfig::default().max_in_flight_requests
}
fn default_max_unsent_output_bytes() -> usize {
    PeerConfig::default().max_unsent_output_bytes
}
fn default_command_timeout() -> u64 {
    5_000
}
fn default_refresh_interval() -> u64 {
    300_000
}
fn default_connect_timeout() -> u64 {
    10_000
}
fn default_stream_idle_timeout() -> u64 {
    300_000
}

/// The built-in `openai` provider's fields; a config's own fields win one by one.
fn builtin_openai() -> Table {
    let mut t = Table::new();
    t.insert("name".into(), Value::String("OpenAI".into()));
    t.insert(
        "base_url".into(),
        Value::String("https://api.openai.com/v1".into()),
    );
    t.insert(
        "chatgpt_base_url".into(),
        Value::String("https://chatgpt.com/backend-api/codex".into()),
    );
    t.insert("requires_openai_auth".into(), Value::Boolean(true));
    t
}

/// Parses one `-c` value: TOML if it parses, else the raw text as a string.
fn parse_override_value(raw: &str) -> Value {
    match format!("v = {raw}").parse::<Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(raw.into())),
        Err(_) => Value::String(raw.into()),
    }
}

/// Applies one `key=value` override to the table, creating tables on the dotted path.
pub fn apply_override(root: &mut Table, spec: &str) -> Result<(), ConfigError> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| ConfigError::BadOverride(spec.into()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
        return Err(ConfigError::BadOverride(spec.into()));
    }
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let mut table = root;
    for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        table = match entry {
            Value::Table(t) => t,
            _ => {
                return Err(ConfigError::OverrideNotTable {
                    key: key.into(),
                    parent: parts[..=i].join("."),
                })
            }
        };
    }
    table.insert(
        parts[parts.len() - 1].to_string(),
        parse_override_value(raw.trim()),
    );
    Ok(())
}

impl Config {
    /// Loads `<home>/config.toml` (absent is fine) and applies the overrides in order.
    pub fn load(home: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let path = home.join("config.toml");
        let mut table = match std::fs::read_to_string(&path) {
            Ok(text) => text.parse::<Table>().map_err(|e| ConfigError::Syntax {
                path: path.clone(),
                message: e.message().to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        for spec in overrides {
            apply_override(&mut table, spec)?;
        }
        Config::from_table(table)
    }

    /// Resolves a table (file plus overrides) into a checked config.
    pub fn from_table(mut table: Table) -> Result<Config, ConfigError> {
        // A configured issuer also serves the refreshes, unless a token URL is given.
        if !table.contains_key("chatgpt_token_url") {
            if let Some(Value::String(issuer)) = table.get("chatgpt_issuer") {
                let url = format!("{}/oauth/token", issuer.trim_end_matches('/'));
                table.insert("chatgpt_token_url".into(), Value::String(url));
            }
        }
        let providers = table
            .entry("model_providers")
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(providers) = providers {
            let mut openai = builtin_openai();
            let merged = match providers.remove("openai") {
                Some(Value::Table(user)) => {
                    openai.extend(user);
                    Value::Table(openai)
                }
                // Not a table: left as it is, so deserialising names the key.
                Some(other) => other,
                None => Value::Table(openai),
            };
            providers.insert("openai".into(), merged);
        }
        let config: Config =
            serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                let message = inner.message().to_string();
                let key = match unknown_field(&message) {
                    Some(field) if key == "." => field,
                    _ => key,
                };
                ConfigError::Key { key, message }
            })?;
        if !config.model_providers.contains_key(&config.model_provider) {
            return Err(ConfigError::UnknownProvider(config.model_provider));
        }
        for (id, p) in &config.model_providers {
            if p.env_key.is_some() && p.auth.is_some() {
                return Err(ConfigError::TwoCredentialSources(id.clone()));
            }
        }
        Ok(config)
    }

    /// The provider turns and model lists go to.
    pub fn active_provider(&self) -> &ProviderConfig {
        &self.model_providers[&self.model_provider]
    }

    /// Where `auth.json` lives: `auth_dir` (with `~` expanded), else the home.
    pub fn auth_dir(&self, home: &Path) -> PathBuf {
        match &self.auth_dir {
            Some(dir) => expand_tilde(dir),
            None => home.to_path_buf(),
        }
    }

    pub fn external_refresh_timeout(&self) -> Duration {
        Duration::from_millis(self.external_auth_refresh_timeout_ms)
    }
}

/// serde says "unknown field `x`, expected ..."; pull out `x` so the key can be named whole.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The user's home directory by the platform's conventions (the `home` crate): `$HOME`
/// (else the password database) on Unix, `%USERPROFILE%` (else the profile folder) on
/// Windows. An empty value counts as unset.
pub fn user_home() -> Option<PathBuf> {
    home::home_dir().filter(|h| !h.as_os_str().is_empty())
}

/// Expands a leading `~` (`~/` or, on Windows, `~\\`) to the user's home directory.
pub fn expand_tilde(path: &str) -> PathBuf {
    let sep = path == "~" || path.starts_with("~/") || (cfg!(windows) && path.starts_with("~\\"));
    if sep {
        if let Some(home) = user_home() {
            let rest = path[1..].trim_start_matches(['/', '\\']);
            return home.join(rest);
        }
    }
    PathBuf::from(path)
}

/// `--home`, else `$AUTHBRIDGE_HOME`, else `~/.authbridge`.
pub fn resolve_home(flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("AUTHBRIDGE_HOME").filter(|d| !d.is_empty()) {
        return Ok(expand_tilde(&dir.to_string_lossy()));
    }
    match user_home() {
        Some(home) => Ok(home.join(".authbridge")),
        None => Err(ConfigError::NoHome),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "config_doc_tests.rs"]
mod doc_tests;
