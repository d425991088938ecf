//! Shared bits of the benchmark peers: the one custom method they all serve and its canned answer.
//!
//! Layout: `src/bin/limit.rs` is the no-parse pipe ceiling; `src/bin/peer-*.rs` are minimal
//! servers on peer frameworks answering `account/read` with the same JSON shape as authbridge.

/// The method every peer serves, named as in authbridge's account surface.
pub const METHOD: &str = "account/read";

/// The result every target returns for [`METHOD`]: authbridge's answer with no credentials.
pub fn account_read_result() -> serde_json::Value {
    serde_json::json!({"account": null, "requiresOpenaiAuth": true})
}
