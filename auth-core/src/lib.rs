//! authbridge auth core: credentials, stores, refresh and 401 recovery. Knows nothing of JSON-RPC.
//!
//! # Layout
//! - [`secret`]: `Secret`, a string that never prints its value.
//! - [`jwt`]: unsigned JWT claim decoding.
//! - [`redact`]: the one redaction rule for text from outside (exact secrets, then token
//!   shapes, then the cut).
//! - [`tokens`]: `ExternalAuthTokens`, what a host or a bearer source hands over.
//! - [`credentials`]: `Credentials`, `ApiAuthMode`, `AccountState`.
//! - [`error`]: `AuthError`, `RefreshError`.
//! - [`store`]: `auth.json` (atomic 0600 writes, tolerant reads) and its lock file.
//! - [`refresh`]: the `ExternalAuthRefresher` (host) and `BearerSource` traits, the provider
//!   command, the token endpoint.
//! - `single_flight`: one refresh at a time, shared by every waiter.
//! - [`login`]: ChatGPT sign-in (browser with PKCE, device code); the tokens go to
//!   `AuthManager::login_chatgpt`.
//! - [`manager`]: `AuthManager`, the account's credentials, which ties them together
//!   (state, logins, managed and external refresh in its submodules); `BearerManager`, a
//!   provider's token from a `BearerSource`; and [`manager::recovery`]:
//!   `UnauthorizedRecovery`, the 401 state machine both of them hand out.
//!
//! Precedence: external ChatGPT tokens → `env_api_key` → the store. See `docs/auth.md`.
//!
//! # Example
//! ```
//! use authbridge_auth_core::{ApiAuthMode, AuthManager, AuthManagerConfig, Secret};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let home = tempfile::tempdir().unwrap();
//! let manager = AuthManager::new(AuthManagerConfig::new(home.path()));
//! manager.login_api_key(Secret::new("sk-example")).await.unwrap();
//! let creds = manager.auth().await.unwrap().expect("logged in");
//! assert_eq!(creds.mode(), ApiAuthMode::ApiKey);
//! assert!(!format!("{creds:?}").contains("sk-example"));
//! // On a 401: run the recovery, retrying while it reports a change.
//! let recovery = manager.unauthorized_recovery(&creds);
//! assert_eq!(recovery.unavailable_reason().as_str(), "not_chatgpt_auth");
//! # });
//! ```

pub mod credentials;
pub mod error;
pub mod http;
pub mod jwt;
pub mod login;
pub mod manager;
pub mod redact;
pub mod refresh;
pub mod secret;
mod single_flight;
pub mod store;
pub mod tokens;

pub use credentials::{AccountState, ApiAuthMode, CredentialSource, Credentials};
pub use error::{AuthError, RefreshError};
pub use jwt::{decode_jwt_claims, encode_unsigned_jwt, JwtClaims, JwtError};
pub use login::{LoginConfig, LoginError, LoginTokens};
pub use manager::recovery::{
    RecoveryMode, RecoveryOutcome, RecoveryStep, UnauthorizedRecovery, UnavailableReason,
};
pub use manager::{AuthManager, AuthManagerConfig, BearerManager};
pub use redact::{redact, redact_to_bytes, redact_to_chars};
pub use refresh::command::{CommandAuthConfig, CommandBearerSource};
pub use refresh::external::{
    BearerSource, ExternalAuthRefreshContext, ExternalAuthRefresher, RefreshReason,
};
pub use secret::{redact_secrets, Secret};
pub use store::StoreMode;
pub use tokens::{check_header_value, ChatgptMetadata, ExternalAuthTokens, HeaderUnsafe};
