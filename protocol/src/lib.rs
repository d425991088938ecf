//! Wire types of the authbridge protocol (`docs/protocol.md`).
//!
//! # Layout
//! - [`jsonrpc`]: the envelope — ids, requests, notifications, responses, the error
//!   object — and the one-parse classification of incoming bytes.
//! - [`method`]: the traits that tie a method name to its params and result, so the
//!   router and the host side cannot disagree.
//! - [`handshake`]: `initialize` / `initialized`.
//! - [`account`]: the Codex-compatible account surface (login, read, logout, status,
//!   the server→host token refresh, and the account notifications).
//! - [`thread`] and [`turn`]: Codex's thread/turn subset (`thread/*`, `turn/*`, the item
//!   notifications); [`model`]: `model/list`; [`rate_limits`]: `account/rateLimits/*`.
//! - [`schema`]: JSON Schema generated from these types; [`typescript`]: the TypeScript
//!   declarations derived from those schemas.
//!
//! This crate depends on no other crate of the workspace.

pub mod account;
pub mod handshake;
pub mod jsonrpc;
pub mod method;
pub mod model;
pub mod rate_limits;
pub mod schema;
pub mod thread;
pub mod turn;
pub mod typescript;

pub use jsonrpc::{ErrorObject, Message, Notification, Request, RequestId, Response};
pub use method::{NotificationMethod, RequestMethod};
