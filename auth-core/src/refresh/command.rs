//! The provider bearer command (§5): run it, trim its stdout, cache the token.
//!
//! One run at a time, and every caller that arrives while it runs shares its outcome: five
//! turns waiting on a command that hangs all fail at the one deadline. The command runs in
//! its own process group (Unix) or Job Object (Windows); a timeout, a dropped run or the
//! server's exit kills the whole tree. Its output is read with limits (64 KiB of stdout,
//! 4 KiB of stderr), so a runaway command cannot grow the server's memory.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::RefreshError;
use crate::refresh::external::BearerSource;
use crate::secret::Secret;

/// The most of the command's stdout that is read; more fails the run.
pub const STDOUT_LIMIT: usize = 64 * 1024;
/// The most of the command's stderr that is read; more fails the run.
pub const STDERR_LIMIT: usize = 4 * 1024;

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

type Run = Shared<BoxFuture<'static, Result<Secret, RefreshError>>>;

#[derive(Default)]
struct Cache {
    token: Option<(Secret, Instant)>,
    runs: u64,
    /// The run in progress, shared by everyone waiting for a token.
    running: Option<Run>,
}

/// Runs the command for a token; one run at a time; the [`BearerSource`] of a
/// [`BearerManager`](crate::BearerManager).
pub struct CommandBearerSource {
    cfg: Arc<CommandAuthConfig>,
    cache: Mutex<Cache>,
}

impl CommandBearerSource {
    /// A source for this command.
    pub fn new(cfg: CommandAuthConfig) -> Self {
        CommandBearerSource {
            cfg: Arc::new(cfg),
            cache: Mutex::new(Cache::default()),
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        self.cfg.refresh_interval.is_zero() || at.elapsed() < self.cfg.refresh_interval
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached token when `reuse` and still fresh; else joins the run in progress or
    /// starts one. A caller that gives up does not cancel a run others still wait on (the
    /// run is dropped, and its tree killed, only when nobody waits any more).
    async fn token(&self, reuse: bool) -> Result<Secret, RefreshError> {
        let run = {
            let mut cache = self.cache();
            if reuse {
                if let Some((token, at)) = &cache.token {
                    if self.fresh(*at) {
                        return Ok(token.clone());
                    }
                }
            }
            match &cache.running {
                Some(run) => run.clone(),
                None => {
                    cache.runs += 1;
                    let run = run_command(self.cfg.clone()).boxed().shared();
                    cache.running = Some(run.clone());
                    run
                }
            }
        };
        let outcome = run.clone().await;
        let mut cache = self.cache();
        if cache.running.as_ref().is_some_and(|r| r.ptr_eq(&run)) {
            cache.running = None;
            if let Ok(token) = &outcome {
                cache.token = Some((token.clone(), Instant::now()));
            }
        }
        outcome
    }

    /// How many times the command has run (for tests and diagnostics).
    pub async fn runs(&self) -> u64 {
        self.cache().runs
    }
}

/// The program to start: a relative path with a separator resolves against `cwd`.
fn program(cfg: &CommandAuthConfig) -> PathBuf {
    let cmd = Path::new(&cfg.command);
    let has_separator = cfg.command.contains('/') || (cfg!(windows) && cfg.command.contains('\\'));
    match &cfg.cwd {
        Some(cwd) if has_separator && cmd.is_relative() => cwd.join(cmd),
        _ => cmd.to_path_buf(),
    }
}

/// Kills the command's whole tree when dropped before it was reaped: on timeout, on a
/// limit, and when the server ends with the run still going.
struct TreeGuard {
    child: Box<dyn ChildWrapper>,
    reaped: bool,
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if !self.reaped {
            // Unix: SIGKILL to the process group; Windows: TerminateJobObject.
            let _ = self.child.start_kill();
        }
    }
}

fn spawn(cfg: &CommandAuthConfig) -> std::io::Result<Box<dyn ChildWrapper>> {
    let mut cmd = CommandWrap::with_new(program(cfg), |cmd| {
        cmd.args(&cfg.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &cfg.cwd {
            cmd.current_dir(cwd);
        }
    });
    cmd.wrap(KillOnDrop);
    #[cfg(unix)]
    cmd.wrap(process_wrap::tokio::ProcessGroup::leader());
    #[cfg(windows)]
    cmd.wrap(process_wrap::tokio::JobObject);
    cmd.spawn()
}

/// Reads `from` to its end, failing once it has given more than `limit` bytes.
async fn read_limited<R: AsyncRead + Unpin>(
    from: Option<R>,
    limit: usize,
    name: &str,
    stream: &str,
) -> Result<Vec<u8>, RefreshError> {
    let mut buf = Vec::new();
    let Some(from) = from else {
        return Ok(buf);
    };
    let read = from.take(limit as u64 + 1).read_to_end(&mut buf).await;
    if let Err(e) = read {
        return Err(RefreshError::transient(format!(
            "provider auth command `{name}` could not be read ({stream}): {e}"
        )));
    }
    if buf.len() > limit {
        return Err(RefreshError::transient(format!(
            "provider auth command `{name}` wrote more than {} KiB to {stream}",
            limit / 1024
        )));
    }
    Ok(buf)
}

async fn run_command(cfg: Arc<CommandAuthConfig>) -> Result<Secret, RefreshError> {
    let name = cfg.command.as_str();
    let child = spawn(&cfg).map_err(|e| {
        RefreshError::transient(format!(
            "provider auth command `{name}` failed to start: {e}"
        ))
    })?;
    let mut guard = TreeGuard {
        child,
        reaped: false,
    };
    let stdout = guard.child.stdout().take();
    let stderr = guard.child.stderr().take();
    let collect = async {
        let (out, err) = tokio::try_join!(
            read_limited(stdout, STDOUT_LIMIT, name, "stdout"),
            read_limited(stderr, STDERR_LIMIT, name, "stderr"),
        )?;
        let status = guard.child.wait().await.map_err(|e| {
            RefreshError::transient(format!(
                "provider auth command `{name}` could not be waited for: {e}"
            ))
        })?;
        Ok::<_, RefreshError>((status, out, err))
    };
    let (status, stdout, stderr) = match tokio::time::timeout(cfg.timeout, collect).await {
        Ok(done) => done?,
        Err(_) => {
            return Err(RefreshError::transient(format!(
                "provider auth command `{name}` timed out after {}ms",
                cfg.timeout.as_millis()
            )))
        }
    };
    guard.reaped = true;
    if !status.success() {
        let stderr: String = String::from_utf8_lossy(&stderr)
            .trim()
            .chars()
            .take(200)
            .collect();
        return Err(RefreshError::transient(format!(
            "provider auth command `{name}` exited with status {}: {stderr}",
            describe(status)
        )));
    }
    let token = String::from_utf8_lossy(&stdout).trim().to_owned();
    if token.is_empty() {
        return Err(RefreshError::transient(format!(
            "provider auth command `{name}` produced an empty token"
        )));
    }
    Ok(Secret::new(token))
}

/// The exit code, or on Unix the signal that ended it.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return code.to_string();
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("signal {sig}");
        }
    }
    "unknown".to_owned()
}

#[async_trait::async_trait]
impl BearerSource for CommandBearerSource {
    /// The cached token while it is fresh, else a run.
    async fn resolve(&self) -> Result<Option<Secret>, RefreshError> {
        self.token(true).await.map(Some)
    }

    /// A new run, whatever is cached.
    async fn refresh(&self) -> Result<Secret, RefreshError> {
        self.token(false).await
    }
}
