//! The `ExternalAuthRefresher` that asks the host for new ChatGPT tokens with
//! `account/chatgptAuthTokens/refresh` (docs/protocol.md §3.5), and the redaction of the host's
//! error message.
//!
//! The wait for the host's answer has one deadline, `external_auth_refresh_timeout_ms`,
//! and auth-core owns it: it drops this call when it passes (which frees the pending
//! request's slot) and words the failure. The peer's own deadline, which it needs for
//! every server→host request, is set a little later, so it never fires first.

use std::time::Duration;

use authbridge_auth_core::{
    redact_to_chars, ExternalAuthRefreshContext, ExternalAuthRefresher, ExternalAuthTokens,
    RefreshError, RefreshReason,
};
use authbridge_protocol::account::{
    ChatgptAuthTokensRefresh, ChatgptAuthTokensRefreshParams, ChatgptAuthTokensRefreshReason,
};

use crate::peer::{PeerHandle, PeerRequestError};

/// How long after auth-core's deadline the peer's own one would fire: only if a caller
/// other than the manager waited without a deadline.
const PEER_DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// Asks the host over the connection, within the deadline the manager gives each call.
pub struct HostRefresher {
    peer: PeerHandle,
}

impl HostRefresher {
    pub fn new(peer: PeerHandle) -> Self {
        HostRefresher { peer }
    }
}

#[async_trait::async_trait]
impl ExternalAuthRefresher for HostRefresher {
    async fn refresh(
        &self,
        ctx: ExternalAuthRefreshContext,
    ) -> Result<ExternalAuthTokens, RefreshError> {
        let params = ChatgptAuthTokensRefreshParams {
            reason: match ctx.reason {
                RefreshReason::Unauthorized => ChatgptAuthTokensRefreshReason::Unauthorized,
                RefreshReason::ExpiringSoon => ChatgptAuthTokensRefreshReason::ExpiringSoon,
            },
            previous_account_id: ctx.previous_account_id,
        };
        let deadline = ctx.timeout.saturating_add(PEER_DEADLINE_SLACK);
        match self
            .peer
            .request::<ChatgptAuthTokensRefresh>(&params, deadline)
            .await
        {
            Ok(answer) => Ok(ExternalAuthTokens::chatgpt(
                answer.access_token,
                answer.chatgpt_account_id,
                answer.chatgpt_plan_type,
            )),
            // Not reached through the manager, which gives up first and words the timeout.
            Err(e @ PeerRequestError::Timeout(_)) => Err(RefreshError::transient(e.to_string())),
            Err(PeerRequestError::Disconnected) => {
                Err(RefreshError::transient("host disconnected"))
            }
            Err(PeerRequestError::Rpc(e)) => Err(RefreshError::transient(format!(
                "auth refresh request failed: code={} message={}",
                e.code,
                redact_host_message(&e.message)
            ))),
            Err(PeerRequestError::InvalidResult(why)) => Err(RefreshError::transient(format!(
                "invalid auth refresh response: {}",
                redact_host_message(&why)
            ))),
            Err(e @ PeerRequestError::InvalidResponse(_)) => {
                Err(RefreshError::transient(redact_host_message(&e.to_string())))
            }
        }
    }
}

/// The host's own words, made safe to send back (docs/protocol.md §3.5): the one
/// redaction rule of `authbridge_auth_core::redact` (token-shaped words → `[redacted]`),
/// then cut to 200 characters.
pub fn redact_host_message(message: &str) -> String {
    redact_to_chars(message, &[], 200)
}

/// Token-shaped words replaced, then cut to `max_chars` characters: the same rule, for
/// callers that have no exact secret at hand (the provider layer already replaced the
/// bearer it sent).
pub fn redact_tokens(message: &str, max_chars: usize) -> String {
    redact_to_chars(message, &[], max_chars)
}

#[cfg(test)]
mod tests {
    use super::redact_host_message;

    #[test]
    fn a_jwt_and_an_api_key_in_the_host_message_are_redacted() {
        let msg = "token eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln expired; key sk-abc123XYZ bad.";
        assert_eq!(
            redact_host_message(msg),
            "token [redacted] expired; key [redacted] bad."
        );
    }

    #[test]
    fn ordinary_text_and_version_numbers_are_kept() {
        let msg = "user signed out (host v1.2.3); retry later";
        assert_eq!(redact_host_message(msg), msg);
    }

    #[test]
    fn a_file_path_is_not_taken_for_a_token() {
        let msg = "provider auth command `/tmp/.tmpXCuLPS/fail.sh` exited with status 3";
        assert_eq!(redact_host_message(msg), msg);
    }

    #[test]
    fn the_message_is_cut_to_200_characters_after_redaction() {
        let long = format!("{} sk-{}", "é".repeat(199), "k".repeat(40));
        let out = redact_host_message(&long);
        assert_eq!(out.chars().count(), 200);
        assert!(!out.contains("kkkk"));
    }
}
