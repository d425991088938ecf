//! The authbridge app-server: one host on stdin/stdout, model calls with the host's credentials.
//!
//! # Layout
//! - [`cli`] and [`config`]: the command line, `config.toml` and `-c` overrides.
//! - [`peer`]: the JSON-RPC connection — framing, the reader and writer tasks, the pending
//!   table of server→host requests, lifecycle gating, backpressure. Knows no method.
//! - [`stdio`]: stdin/stdout as non-blocking async pipes.
//! - [`logging`]: the stderr log, which ignores a closed stderr.
//! - [`service`]: the router from method names to [`handlers`], one module per family.
//! - [`state`]: what the handlers share (config, credential managers, providers, threads).
//! - [`threads`]: the threads of the process (in memory) and their conversation.
//! - [`login`]: the browser and device-code sign-in flows behind `account/login/start`
//!   and `account/login/cancel`; [`login_cli`]: `authbridge login` for people.
//! - [`host_refresh`]: the refresher that asks the host for new tokens.
//! - [`provider_auth`]: which credentials the provider gets, and the 401 recovery loop.
//! - [`provider`]: the model provider's HTTP client and the SSE parser.

pub mod cli;
pub mod config;
pub mod handlers;
pub mod host_refresh;
pub mod logging;
pub mod login;
pub mod login_cli;
pub mod peer;
pub mod provider;
pub mod provider_auth;
pub mod service;
pub mod state;
pub mod stdio;
pub mod threads;
