//! Credential stores: the Codex-compatible `auth.json` file and its lock (§4.1).
//! The ephemeral store is a slot in the manager's state.

pub mod file;
pub mod lock;

/// Where API-key logins (and managed tokens) are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// `auth_dir/auth.json`.
    File,
    /// Memory only.
    Ephemeral,
}
