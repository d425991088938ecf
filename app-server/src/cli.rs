//! The command line (docs/protocol.md §7).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// authbridge: an app-server that IDE extensions and desktop apps run as a child process.
///
/// With no subcommand it serves one host over stdin/stdout (JSON-RPC; newline-delimited
/// JSON or Content-Length framing, detected from the host's first bytes). Logs go to
/// stderr (filter with AUTHBRIDGE_LOG or RUST_LOG, e.g. AUTHBRIDGE_LOG=debug). It exits 0
/// when the host closes stdin.
#[derive(Debug, Parser)]
#[command(name = "authbridge", version, about, long_about, after_long_help = ENVIRONMENT)]
pub struct Cli {
    /// Home directory holding config.toml (and auth.json unless auth_dir says otherwise).
    /// Default: $AUTHBRIDGE_HOME, else ~/.authbridge.
    #[arg(long, value_name = "DIR", global = true)]
    pub home: Option<PathBuf>,

    /// Override a config key: a dotted TOML path and a TOML value (taken as a string if it
    /// does not parse), e.g. -c model_providers.openai.base_url=http://127.0.0.1:8080/v1.
    /// May be repeated; later ones win.
    #[arg(short = 'c', long = "config", value_name = "key=value", global = true)]
    pub overrides: Vec<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

const ENVIRONMENT: &str = "Environment:
  AUTHBRIDGE_HOME                        home directory (default ~/.authbridge)
  AUTHBRIDGE_API_KEY                     an API key used when the host pushed no ChatGPT tokens
  AUTHBRIDGE_REFRESH_TOKEN_URL_OVERRIDE  token endpoint for auth.json refreshes
  AUTHBRIDGE_LOG / RUST_LOG              log filter (logs go to stderr), e.g. debug

Exit status: 0 when the host closes stdin; 2 for a bad command line or config.
Protocol reference: docs/protocol.md.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one host on stdin/stdout, exactly as with no subcommand: the launch line of
    /// Codex hosts (`<binary> app-server --listen stdio://`).
    AppServer {
        /// Where to serve. Only `stdio://` (stdin/stdout) is supported.
        #[arg(long, value_name = "URL", default_value = "stdio://", value_parser = parse_listen)]
        listen: String,
    },
    /// Write a JSON Schema (draft 2020-12) per message and one TypeScript file with every
    /// params, result and notification type into DIR.
    Schema {
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Sign in from a terminal: with ChatGPT in a browser (the default), with a device
    /// code (--device-auth), or with an API key read from stdin (--with-api-key). The
    /// credentials go to auth.json, where the server finds them.
    Login(LoginArgs),
    /// Sign out: delete the stored credentials (auth.json).
    #[command(after_long_help = LOGIN_EXIT)]
    Logout,
}

/// `authbridge login`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_long_help = LOGIN_EXIT)]
pub struct LoginArgs {
    /// Sign in with a one-time code entered on any device (for remote or headless machines).
    #[arg(long)]
    pub device_auth: bool,

    /// Read an API key from standard input, e.g. `printenv OPENAI_API_KEY | authbridge login --with-api-key`.
    #[arg(long, conflicts_with = "device_auth")]
    pub with_api_key: bool,

    #[command(subcommand)]
    pub command: Option<LoginCommand>,
}

#[derive(Debug, Subcommand)]
pub enum LoginCommand {
    /// Show how you are signed in: mode, email, plan, token expiry and the auth.json path
    /// (never a token).
    Status,
}

const LOGIN_EXIT: &str = "Exit status:
  0  signed in (login, login status) or signed out (logout)
  1  the sign-in failed, was cancelled or timed out; login status: not signed in
  2  a bad command line or config

Progress and results are printed to stdout; tokens and keys never are.";

/// `--listen`: only `stdio://` is served; anything else is a usage error (exit 2).
fn parse_listen(value: &str) -> Result<String, String> {
    if value == "stdio://" {
        Ok(value.to_string())
    } else {
        Err(format!(
            "unsupported listen URL {:?}: authbridge serves one host over stdin/stdout; the only supported value is stdio://",
            value.chars().take(200).collect::<String>()
        ))
    }
}
