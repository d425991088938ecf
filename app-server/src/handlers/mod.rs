//! One module per method family; each handler takes typed params and returns its typed
//! result or a JSON-RPC error.

pub mod account;
pub mod handshake;
pub mod model;
pub mod rate_limits;
pub mod thread;
pub mod turn;
