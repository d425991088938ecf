//! The provider bearer command (§5): run it, trim its stdout, cache the token.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::error::RefreshError;
use crate::refresh::external::{ExternalAuthRefreshContext, ExternalAuthRefresher, RefresherKind};
use crate::secret::Secret;
use crate::tokens::ExternalAuthTokens;

/// `[model_providers.<id>.auth]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandAuthConfig {
    /// The program: a bare name is looked up on `PATH`; one with `/` resolves against `cwd`.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Killed after this long.
    pub timeout: Duration,
    /// How long a token is reused; `ZERO` = until a 401.
    pub refresh_interval: Duration,
    /// Working directory.
    pub cwd: Option<PathBuf>,
}

#[derive(Default)]
struct Cache {
    token: Option<(Secret, Instant)>,
    runs: u64,
}

/// Runs the command for a token; one run at a time; implements the Bearer refresher.
pub struct CommandBearerSource {
    cfg: CommandAuthConfig,
    cache: Mutex<Cache>,
}

impl CommandBearerSource {
    /// A source for this command.
    pub fn new(cfg: CommandAuthConfig) -> Self {
        CommandBearerSource {
            cfg,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        self.cfg.refresh_interval.is_zero() || at.elapsed() < self.cfg.refresh_interval
    }

    fn program(&self) -> PathBuf {
        let cmd = Path::new(&self.cfg.command);
        match &self.cfg.cwd {
            Some(cwd) if self.cfg.command.contains('/') && cmd.is_relative() => cwd.join(cmd),
            _ => cmd.to_path_buf(),
        }
    }

    async fn run(&self) -> Result<Secret, RefreshError> {
        let name = &self.cfg.command;
        let mut cmd = tokio::process::Command::new(self.program());
        cmd.args(&self.cfg.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so a timeout kills what it started too.
            .process_group(0);
        if let Some(cwd) = &self.cfg.cwd {
            cmd.current_dir(cwd);
        }
        let child = cmd.spawn().map_err(|e| {
            RefreshError::transient(format!(
                "provider auth command `{name}` failed to start: {e}"
            ))
        })?;
        let pid = child.id();
        let waited = tokio::time::timeout(self.cfg.timeout, child.wait_with_output()).await;
        if waited.is_err() {
            if let Some(pid) = pid {
                // SAFETY: kill(2) on the group we created; no memory is involved.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
        }
        let output = match waited {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                return Err(RefreshError::transient(format!(
                    "provider auth command `{name}` failed to start: {e}"
                )))
            }
            Err(_) => {
                return Err(RefreshError::transient(format!(
                    "provider auth command `{name}` timed out after {}ms",
                    self.cfg.timeout.as_millis()
                )))
            }
        };
        if !output.status.success() {
            use std::os::unix::process::ExitStatusExt;
            let status = match (output.status.code(), output.status.signal()) {
                (Some(code), _) => code.to_string(),
                (None, Some(sig)) => format!("signal {sig}"),
                (None, None) => "unknown".to_owned(),
            };
            let stderr: String = String::from_utf8_lossy(&output.stderr)
                .trim()
                .chars()
                .take(200)
                .collect();
            return Err(RefreshError::transient(format!(
                "provider auth command `{name}` exited with status {status}: {stderr}"
            )));
        }
        let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if token.is_empty() {
            return Err(RefreshError::transient(format!(
                "provider auth command `{name}` produced an empty token"
            )));
        }
        Ok(Secret::new(token))
    }

    /// How many times the command has run (for tests and diagnostics).
    pub async fn runs(&self) -> u64 {
        self.cache.lock().await.runs
    }
}

#[async_trait::async_trait]
impl ExternalAuthRefresher for CommandBearerSource {
    fn kind(&self) -> RefresherKind {
        RefresherKind::Bearer
    }

    async fn resolve(&self) -> Result<Option<ExternalAuthTokens>, RefreshError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, at)) = &cache.token {
            if self.fresh(*at) {
                return Ok(Some(ExternalAuthTokens::access_token_only(token.expose())));
            }
        }
        cache.runs += 1;
        let token = self.run().await?;
        cache.token = Some((token.clone(), Instant::now()));
        Ok(Some(ExternalAuthTokens::access_token_only(token.expose())))
    }

    async fn refresh(
        &self,
        _ctx: ExternalAuthRefreshContext,
    ) -> Result<ExternalAuthTokens, RefreshError> {
        let mut cache = self.cache.lock().await;
        cache.runs += 1;
        let token = self.run().await?;
        cache.token = Some((token.clone(), Instant::now()));
        Ok(ExternalAuthTokens::access_token_only(token.expose()))
    }
}
