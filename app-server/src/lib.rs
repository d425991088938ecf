//! The authbridge app-server: one host on stdin/stdout, model calls with the host's credentials.
//!
//! # Layout
//! - [`peer`]: the JSON-RPC connection — framing, the reader and writer tasks, the pending
//!   table of server→host requests, lifecycle gating, backpressure. Knows no method.
//! - [`stdio`]: stdin/stdout as non-blocking async pipes.
//! - [`provider`]: the model provider's HTTP client and the SSE parser.

pub mod config;
pub mod peer;
pub mod provider;
pub mod stdio;
