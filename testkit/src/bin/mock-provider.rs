//! `mock-provider`: runs the loopback mock provider for people and non-Rust hosts.
//!
//! Prints its base URL on stdout line 1 and serves until stdin closes. Tokens to accept
//! come from `--token` (repeatable); `--any-token` accepts requests without checking.

#![allow(clippy::print_stdout)] // line 1 of stdout is this tool's interface

use std::time::Duration;

use authbridge_testkit::{MockOptions, MockProvider};
use clap::Parser;
use tokio::io::AsyncReadExt;

/// A loopback OpenAI-compatible provider that streams canned text.
#[derive(Debug, Parser)]
#[command(name = "mock-provider")]
struct Args {
    /// A bearer token to accept (repeatable).
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// Accept requests without checking the Authorization header.
    #[arg(long)]
    any_token: bool,
    /// A text delta of every stream (repeatable; default "Hello", ", ", "world", "!").
    #[arg(long = "delta")]
    deltas: Vec<String>,
    /// Pause before each delta, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delta_delay_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut opts = MockOptions::with_tokens(args.tokens);
    opts.require_auth = !args.any_token;
    if !args.deltas.is_empty() {
        opts.deltas = args.deltas;
    }
    opts.delta_delay = Duration::from_millis(args.delta_delay_ms);
    let mock = MockProvider::start(opts).await?;
    println!("{}", mock.url());
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 1024];
    while stdin.read(&mut buf).await.unwrap_or(0) > 0 {}
    eprintln!(
        "mock-provider: stdin closed after {} requests",
        mock.request_count()
    );
    Ok(())
}
