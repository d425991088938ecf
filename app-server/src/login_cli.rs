//! `authbridge login`, `authbridge login status` and `authbridge logout`: sign-in for a
//! person at a terminal (docs/protocol.md §7). These commands are not the protocol
//! channel, so they talk to the person on stdout — in sentences, and never with a token.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use authbridge_auth_core::login::browser::BrowserLogin;
use authbridge_auth_core::login::device;
use authbridge_auth_core::{
    ApiAuthMode, AuthManager, CredentialSource, Credentials, LoginError, LoginTokens, Secret,
};

use crate::cli::{LoginArgs, LoginCommand};
use crate::config::{resolve_home, Config, ForcedLoginMethod};
use crate::login::login_config;
use crate::state::AppState;

/// Prints a line for the person (stdout is theirs here, not a protocol channel).
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// Failure: a sentence on stderr, exit 1.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("authbridge: {message}");
    ExitCode::FAILURE
}

struct Ctx {
    config: Config,
    auth_path: PathBuf,
    auth: Arc<AuthManager>,
}

/// Loads the config like the server does; `Err` is the exit code already reported.
fn load(
    home: Option<&Path>,
    overrides: &[String],
) -> Result<(Ctx, tokio::runtime::Runtime), ExitCode> {
    let loaded = resolve_home(home)
        .and_then(|home| Config::load(&home, overrides).map(|config| (home, config)));
    let (home, config) = loaded.map_err(|e| {
        eprintln!("authbridge: {e}");
        ExitCode::from(2)
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("could not start the async runtime: {e}")))?;
    let auth_path = config.auth_dir(&home).join("auth.json");
    // The server's own wiring: same manager, same store, same environment variables.
    let state = runtime.block_on(async { AppState::new(config.clone(), home) });
    Ok((
        Ctx {
            config,
            auth_path,
            auth: state.auth.clone(),
        },
        runtime,
    ))
}

/// `authbridge login [--device-auth | --with-api-key]` and `authbridge login status`.
pub fn login(home: Option<&Path>, overrides: &[String], args: LoginArgs) -> ExitCode {
    let (ctx, runtime) = match load(home, overrides) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        match (args.command, args.with_api_key, args.device_auth) {
            (Some(LoginCommand::Status), _, _) => status(&ctx),
            (None, true, _) => api_key(&ctx).await,
            (None, false, true) => device_code(&ctx).await,
            (None, false, false) => browser(&ctx).await,
        }
    })
}

/// `authbridge logout`.
pub fn logout(home: Option<&Path>, overrides: &[String]) -> ExitCode {
    let (ctx, runtime) = match load(home, overrides) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let existed = ctx.auth_path.exists();
        if let Err(e) = ctx.auth.logout().await {
            return fail(format!("could not sign out: {e}"));
        }
        if existed {
            say!("Signed out: removed {}.", ctx.auth_path.display());
        } else {
            say!(
                "Not signed in: there was no {} to remove.",
                ctx.auth_path.display()
            );
        }
        if std::env::var_os(crate::state::API_KEY_ENV).is_some_and(|v| !v.is_empty()) {
            say!(
                "Note: {} is set, so the server still uses that API key.",
                crate::state::API_KEY_ENV
            );
        }
        ExitCode::SUCCESS
    })
}

fn chatgpt_allowed(ctx: &Ctx) -> Result<(), ExitCode> {
    if ctx.config.forced_login_method == Some(ForcedLoginMethod::Api) {
        return Err(fail(
            "ChatGPT login is disabled (forced_login_method = \"api\"). Sign in with `authbridge login --with-api-key` instead.",
        ));
    }
    Ok(())
}

/// Runs `flow` until it finishes, Ctrl-C, or the sign-in timeout.
async fn until_done<T>(
    ctx: &Ctx,
    flow: impl std::future::Future<Output = Result<T, LoginError>>,
) -> Result<T, LoginError> {
    let timeout = Duration::from_millis(ctx.config.chatgpt_login_timeout_ms);
    tokio::select! {
        r = flow => r,
        _ = tokio::signal::ctrl_c() => Err(LoginError::Canceled),
        _ = tokio::time::sleep(timeout) => Err(LoginError::TimedOut),
    }
}

async fn store(ctx: &Ctx, tokens: &LoginTokens) -> Result<Credentials, LoginError> {
    ctx.auth
        .login_chatgpt(tokens)
        .await
        .map_err(|e| LoginError::Store(e.to_string()))
}

fn signed_in(ctx: &Ctx, creds: &Credentials) {
    let who = creds.email().unwrap_or("an account without an email");
    let plan = creds.plan_type().unwrap_or("unknown");
    say!("Signed in with ChatGPT as {who} (plan: {plan}).");
    say!("Credentials saved to {}.", ctx.auth_path.display());
}

async fn browser(ctx: &Ctx) -> ExitCode {
    if let Err(code) = chatgpt_allowed(ctx) {
        return code;
    }
    let login = match BrowserLogin::start(login_config(&ctx.config)).await {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let url = login.auth_url().to_owned();
    say!("To sign in with ChatGPT, open this address in your browser:\n\n  {url}\n");
    if std::io::stdout().is_terminal() {
        open_browser(&url);
    }
    say!("Waiting for the browser to finish signing in (Ctrl-C cancels)...");
    let (tokens, mut responder) = match until_done(ctx, login.wait()).await {
        Ok(ok) => ok,
        Err(e) => return fail(format!("sign-in did not complete: {e}")),
    };
    match store(ctx, &tokens).await {
        Ok(creds) => {
            responder.success(creds.email());
            responder.finish().await;
            signed_in(ctx, &creds);
            ExitCode::SUCCESS
        }
        Err(e) => {
            responder.failure(&e.to_string());
            responder.finish().await;
            fail(e)
        }
    }
}

/// Tries the platform's opener; a failure only means the person opens the URL.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reap it in the background so it leaves no zombie.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Err(_) => say!("(Could not start {opener}; open the address yourself.)"),
    }
}

async fn device_code(ctx: &Ctx) -> ExitCode {
    if let Err(code) = chatgpt_allowed(ctx) {
        return code;
    }
    let cfg = login_config(&ctx.config);
    let code = match device::request_device_code(&cfg).await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    say!(
        "To sign in with ChatGPT, open this address on any device:\n\n  {}\n\nand enter this one-time code:\n\n  {}\n\nNever share the code: whoever enters it signs in as you.",
        code.verification_url,
        code.user_code
    );
    say!("Waiting for you to approve the sign-in (Ctrl-C cancels)...");
    let tokens = match until_done(ctx, device::complete_device_code(&cfg, &code)).await {
        Ok(t) => t,
        Err(e) => return fail(format!("sign-in did not complete: {e}")),
    };
    match store(ctx, &tokens).await {
        Ok(creds) => {
            signed_in(ctx, &creds);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn api_key(ctx: &Ctx) -> ExitCode {
    if ctx.config.forced_login_method == Some(ForcedLoginMethod::Chatgpt) {
        return fail("API key login is disabled (forced_login_method = \"chatgpt\"). Sign in with `authbridge login` instead.");
    }
    let mut input = String::new();
    // At most 64 KiB: a key is short, and a mistaken pipe must not fill memory.
    if let Err(e) = std::io::stdin().take(64 * 1024).read_to_string(&mut input) {
        return fail(format!(
            "could not read the API key from standard input: {e}"
        ));
    }
    let key = input.trim();
    if key.is_empty() {
        return fail("no API key on standard input. Pipe it in, e.g. `printenv OPENAI_API_KEY | authbridge login --with-api-key`.");
    }
    if key.bytes().any(|b| b.is_ascii_control()) {
        return fail("the API key on standard input contains control characters or several lines; pass the key alone.");
    }
    match ctx.auth.login_api_key(Secret::new(key)).await {
        Ok(_) => {
            say!(
                "Signed in with an API key. Saved to {}.",
                ctx.auth_path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("could not store the API key: {e}")),
    }
}

fn status(ctx: &Ctx) -> ExitCode {
    let creds = match ctx.auth.snapshot() {
        Ok(Some(c)) => c,
        Ok(None) => {
            say!("Not signed in. Run `authbridge login` to sign in.");
            say!("Credentials file: {} (absent)", ctx.auth_path.display());
            return ExitCode::FAILURE;
        }
        Err(e) => return fail(e),
    };
    match (creds.mode(), creds.source()) {
        (ApiAuthMode::ApiKey, CredentialSource::EnvApiKey) => {
            say!(
                "Signed in with an API key from the {} environment variable.",
                crate::state::API_KEY_ENV
            );
        }
        (ApiAuthMode::ApiKey, _) => {
            say!("Signed in with an API key.");
            say!("  credentials:  {}", ctx.auth_path.display());
        }
        _ => {
            say!("Signed in with ChatGPT.");
            say!("  email:        {}", creds.email().unwrap_or("(none)"));
            say!("  plan:         {}", creds.plan_type().unwrap_or("unknown"));
            if let Some(account) = creds.account_id() {
                say!("  workspace:    {account}");
            }
            say!("  token expiry: {}", expiry(creds.expires_at()));
            say!("  credentials:  {}", ctx.auth_path.display());
        }
    }
    ExitCode::SUCCESS
}

/// `2026-12-03 10:00:00 UTC (in 59 minutes)`, `… (expired; it is refreshed on next use)`.
fn expiry(exp: Option<i64>) -> String {
    let Some(exp) = exp else {
        return "unknown (the access token carries no expiry)".into();
    };
    let Some(at) = chrono::DateTime::<chrono::Utc>::from_timestamp(exp, 0) else {
        return "unknown (the expiry is out of range)".into();
    };
    let left = exp - chrono::Utc::now().timestamp();
    let when = at.format("%Y-%m-%d %H:%M:%S UTC");
    if left <= 0 {
        format!("{when} (expired; it is refreshed on next use)")
    } else if left < 3600 {
        format!("{when} (in {} minutes)", (left as u64).div_ceil(60))
    } else {
        format!("{when} (in {} hours)", left / 3600)
    }
}
