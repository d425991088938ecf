//! The `ExternalAuthRefresher` that asks the host for new ChatGPT tokens with
//! `account/chatgptAuthTokens/refresh` (contract §3.5), and the redaction of the host's
//! error message.

use std::time::Duration;

use authbridge_auth_core::{
    ExternalAuthRefreshContext, ExternalAuthRefresher, ExternalAuthTokens, RefreshError,
    RefreshReason, RefresherKind,
};
use authbridge_protocol::account::{
    ChatgptAuthTokensRefresh, ChatgptAuthTokensRefreshParams, ChatgptAuthTokensRefreshReason,
};

use crate::peer::{PeerHandle, PeerRequestError};

/// Asks the host over the connection; each call has the configured deadline.
pub struct HostRefresher {
    peer: PeerHandle,
    timeout: Duration,
}

impl HostRefresher {
    pub fn new(peer: PeerHandle, timeout: Duration) -> Self {
        HostRefresher { peer, timeout }
    }
}

#[async_trait::async_trait]
impl ExternalAuthRefresher for HostRefresher {
    fn kind(&self) -> RefresherKind {
        RefresherKind::Chatgpt
    }

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
        match self
            .peer
            .request::<ChatgptAuthTokensRefresh>(&params, self.timeout)
            .await
        {
            Ok(answer) => Ok(ExternalAuthTokens::chatgpt(
                answer.access_token,
                answer.chatgpt_account_id,
                answer.chatgpt_plan_type,
            )),
            Err(PeerRequestError::Timeout(after)) => Err(RefreshError::transient(format!(
                "auth refresh request timed out after {}ms",
                after.as_millis()
            ))),
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

/// The host's own words, made safe to send back: anything shaped like a JWT (three
/// dot-separated base64url runs) or an `sk-` key becomes `[redacted]`, then the text is
/// cut to 200 characters.
pub fn redact_host_message(message: &str) -> String {
    redact_tokens(message, 200)
}

/// Replaces every word shaped like a JWT or an `sk-` key with `[redacted]` and cuts the
/// text to `max_chars` characters. Words are runs of base64url characters and dots, so
/// a file path (`/tmp/x.sh`) is not mistaken for a token.
pub fn redact_tokens(message: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(message.len().min(256));
    let mut rest = message;
    while !rest.is_empty() {
        let start = rest
            .char_indices()
            .find(|&(_, c)| is_token_char(c))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.is_empty() {
            break;
        }
        let end = rest
            .char_indices()
            .find(|&(_, c)| !(is_token_char(c) || c == '.'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let word = &rest[..end];
        if looks_secret(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.chars().take(max_chars).collect()
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn looks_secret(word: &str) -> bool {
    let word = word.trim_matches('.');
    if word.starts_with("sk-") && word.len() > 3 {
        return true;
    }
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() >= 3 && parts.iter().filter(|p| p.len() >= 2).count() >= 3 && word.len() >= 16
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
