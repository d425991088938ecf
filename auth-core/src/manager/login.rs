//! Logins and logout: they replace credentials at once and win over a refresh in flight.

use crate::credentials::{CredentialSource, Credentials};
use crate::error::AuthError;
use crate::jwt::decode_jwt_claims;
use crate::login::LoginTokens;
use crate::manager::{lock, write_lock, AuthManager, Shared, Stored};
use crate::secret::Secret;
use crate::store::file::{self, AuthFile};
use crate::store::lock::AuthFileLock;
use crate::store::StoreMode;
use crate::tokens::{check_header_value, ExternalAuthTokens};

impl AuthManager {
    /// Stores an API key (file or ephemeral). A corrupt `auth.json` is first moved aside to
    /// `auth.json.corrupt-<unix time>`. Refused while external tokens are active.
    pub async fn login_api_key(&self, key: Secret) -> Result<Credentials, AuthError> {
        if self.external_tokens_active() {
            return Err(AuthError::ExternalAuthActive);
        }
        check_header_value(key.expose()).map_err(|why| AuthError::InvalidCredential {
            field: "apiKey",
            why,
        })?;
        let creds = Credentials::api_key(key.clone(), CredentialSource::StoredApiKey);
        let sh = &self.shared;
        let _guard = sh.managed_lock.lock().await;
        let _file_lock = match sh.cfg.store {
            StoreMode::File => {
                Some(AuthFileLock::acquire_async(&sh.cfg.auth_dir, sh.cfg.lock_timeout).await?)
            }
            StoreMode::Ephemeral => None,
        };
        if sh.cfg.store == StoreMode::File {
            if let Err(AuthError::CorruptAuthFile { .. }) = file::read(&sh.auth_path) {
                file::move_aside(&sh.auth_path)?;
            }
            file::write(&sh.auth_path, &AuthFile::api_key(&key))?;
        }
        let mut st = write_lock(&sh.state);
        st.stored = Stored::Loaded(Some(creds.clone()));
        st.stamp = file::stamp(&sh.auth_path);
        *lock(&sh.permanent) = None;
        sh.commit(st);
        sh.forget_unsaved();
        Ok(creds)
    }

    /// Stores the tokens of a browser or device-code sign-in as managed ChatGPT
    /// credentials (`auth_mode: "chatgpt"`, `last_refresh` now) — in `auth.json` or, with
    /// the ephemeral store, in memory — which the managed refresh then keeps fresh. A
    /// corrupt `auth.json` is first moved aside. Refused while external tokens are active.
    pub async fn login_chatgpt(&self, tokens: &LoginTokens) -> Result<Credentials, AuthError> {
        if self.external_tokens_active() {
            return Err(AuthError::ExternalAuthActive);
        }
        let file = AuthFile {
            auth_mode: Some("chatgpt".into()),
            openai_api_key: None,
            tokens: Some(file::TokenData {
                id_token: tokens.id_token.expose().to_owned(),
                access_token: tokens.access_token.expose().to_owned(),
                refresh_token: tokens.refresh_token.expose().to_owned(),
                account_id: tokens.account_id.clone(),
                extra: Default::default(),
            }),
            last_refresh: Some(chrono::Utc::now()),
            extra: Default::default(),
        };
        let creds = file
            .credentials()
            .ok_or(AuthError::MissingChatgptMetadata)?;
        let sh = &self.shared;
        let _guard = sh.managed_lock.lock().await;
        if sh.cfg.store == StoreMode::File {
            let _file_lock = AuthFileLock::acquire_async(&sh.cfg.auth_dir, sh.lock_wait()).await?;
            if let Err(AuthError::CorruptAuthFile { .. }) = file::read(&sh.auth_path) {
                file::move_aside(&sh.auth_path)?;
            }
            file::write(&sh.auth_path, &file)?;
        }
        let mut st = write_lock(&sh.state);
        st.stored = Stored::Loaded(Some(creds.clone()));
        st.stamp = file::stamp(&sh.auth_path);
        *lock(&sh.permanent) = None;
        *lock(&sh.managed_backoff) = None;
        sh.commit(st);
        Ok(creds)
    }

    /// Accepts host-pushed ChatGPT tokens (§3.1): metadata required, the access token must
    /// be a JWT, the forced workspace must match. Memory only; replaces any current ones.
    pub async fn login_external_chatgpt(
        &self,
        tokens: ExternalAuthTokens,
    ) -> Result<Credentials, AuthError> {
        let creds = validate_external(&self.shared, &tokens)?;
        let mut st = write_lock(&self.shared.state);
        st.external = Some(creds.clone());
        self.shared.commit(st);
        Ok(creds)
    }

    /// Clears the active credentials: external tokens if active (auth.json untouched),
    /// else the store (deletes `auth.json`). An env API key still applies afterwards.
    pub async fn logout(&self) -> Result<(), AuthError> {
        let sh = &self.shared;
        {
            let mut st = write_lock(&sh.state);
            if st.external.take().is_some() {
                sh.commit(st);
                return Ok(());
            }
        }
        let _guard = sh.managed_lock.lock().await;
        if sh.cfg.store == StoreMode::File {
            let _file_lock =
                AuthFileLock::acquire_async(&sh.cfg.auth_dir, sh.cfg.lock_timeout).await?;
            // A corrupt file is kept (moved aside), never silently destroyed.
            match file::read(&sh.auth_path) {
                Err(AuthError::CorruptAuthFile { .. }) => {
                    file::move_aside(&sh.auth_path)?;
                }
                _ => file::delete(&sh.auth_path)?,
            }
        }
        let mut st = write_lock(&sh.state);
        st.stored = Stored::Loaded(None);
        st.stamp = None;
        *lock(&sh.permanent) = None;
        sh.commit(st);
        sh.forget_unsaved();
        Ok(())
    }
}

/// The §3.1 checks, as `AuthError`s.
pub(crate) fn validate_external(
    sh: &Shared,
    tokens: &ExternalAuthTokens,
) -> Result<Credentials, AuthError> {
    let meta = tokens
        .chatgpt_metadata()
        .ok_or(AuthError::MissingChatgptMetadata)?;
    // Both go into headers of every provider request: a CR/LF there would fail every
    // request without a 401, so nothing would ever heal it (§3.1).
    check_header_value(tokens.access_token().expose()).map_err(|why| {
        AuthError::InvalidCredential {
            field: "accessToken",
            why,
        }
    })?;
    check_header_value(&meta.account_id).map_err(|why| AuthError::InvalidCredential {
        field: "chatgptAccountId",
        why,
    })?;
    let claims = decode_jwt_claims(tokens.access_token().expose())
        .map_err(|e| AuthError::InvalidAccessToken(e.to_string()))?;
    if let Some(forced) = &sh.cfg.forced_chatgpt_workspace_id {
        if *forced != meta.account_id {
            return Err(AuthError::WorkspaceMismatch {
                forced: forced.clone(),
                received: meta.account_id.clone(),
            });
        }
    }
    Ok(Credentials::external_chatgpt(
        tokens.access_token().clone(),
        meta.account_id.clone(),
        meta.plan_type.clone().or(claims.plan_type),
        claims.email,
        claims.exp,
    ))
}
