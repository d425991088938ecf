//! authbridge test kit: the pieces the end-to-end tests and the demo are built from.
//!
//! # Layout
//! - [`loopback`]: the base of every mock HTTP server here (bind 127.0.0.1:0, nodelay,
//!   graceful shutdown, the request log, response builders).
//! - [`jwt`]: mint unsigned JWTs with the ChatGPT claims.
//! - [`mock_provider`]: a loopback OpenAI-compatible provider (`/models`, streaming
//!   `/responses`) that accepts only the tokens it is told, fails or stalls on demand and
//!   records every request.
//! - [`mock_issuer`]: a loopback OAuth issuer for browser and device-code sign-in, and a
//!   scripted browser that follows an `authUrl`.
//! - [`token_endpoint`]: a loopback OAuth refresh endpoint for managed `auth.json` refresh.
//! - [`chatgpt_backend`]: a loopback ChatGPT backend (account check, usage) for a Codex peer.
//! - [`codex`]: Codex 0.171 from npm, its JSON Schema, and the overrides that run it offline.
//! - [`bins`]: where the workspace's binaries are, and building them once (never twice).
//! - [`server`]: the `authbridge` binary and the command that runs it.
//! - [`session`]: a temporary home + mock + server + host, and login/turn helpers.
//! - [`host`]: the host simulator — the real binary over real pipes, requests with
//!   deadlines, notifications, refresh answers by [`refresh_policy`], a transcript.
//! - [`wire`]: host-side framing (NDJSON or `Content-Length`).
//! - [`transcript`]: `→`/`←` lines with tokens shown as fingerprints.
//! - [`auth_json`]: a managed `auth.json` written into a home, and the file read back.
//! - [`mounts`]: real storage faults (a tmpfs, a bind mount, a full disk); needs root.
//! - [`sys`]: raise `RLIMIT_NOFILE`; a process's resident memory and CPU time.

pub mod auth_json;
pub mod bins;
pub mod chatgpt_backend;
pub mod codex;
pub mod host;
pub mod jwt;
pub mod loopback;
pub mod mock_issuer;
pub mod mock_provider;
pub mod mounts;
pub mod refresh_policy;
pub mod server;
pub mod session;
pub mod sys;
pub mod tls;
pub mod token_endpoint;
pub mod transcript;
pub mod wire;

pub use host::{Host, HostError, HostOptions, StderrMode};
pub use jwt::Jwt;
pub use mock_issuer::{AuthorizeMode, DeviceResolution, ExchangeMode, MockIssuer};
pub use mock_provider::{Failure, MockOptions, MockProvider, RecordedRequest};
pub use refresh_policy::{RefreshPolicy, RefreshReply, RefreshRequest};
pub use session::{Session, SessionBuilder};
pub use token_endpoint::{TokenEndpoint, TokenMode};
pub use wire::Framing;
