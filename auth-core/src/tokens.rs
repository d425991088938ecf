//! `ExternalAuthTokens`: what a host pushes or its refresher returns.

use crate::secret::Secret;

/// ChatGPT account facts that come with external tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatgptMetadata {
    /// The workspace/account id (`chatgptAccountId`).
    pub account_id: String,
    /// The raw plan type, if the host gave one.
    pub plan_type: Option<String>,
}

/// An access token plus optional ChatGPT metadata. ChatGPT credentials cannot be seeded
/// from tokens without metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAuthTokens {
    access_token: Secret,
    chatgpt: Option<ChatgptMetadata>,
}

impl ExternalAuthTokens {
    /// A bare access token, without ChatGPT metadata (which a login refuses).
    pub fn access_token_only(token: impl Into<String>) -> Self {
        ExternalAuthTokens {
            access_token: Secret::new(token),
            chatgpt: None,
        }
    }

    /// ChatGPT tokens with their account id and optional plan.
    pub fn chatgpt(
        token: impl Into<String>,
        account_id: impl Into<String>,
        plan_type: Option<String>,
    ) -> Self {
        ExternalAuthTokens {
            access_token: Secret::new(token),
            chatgpt: Some(ChatgptMetadata {
                account_id: account_id.into(),
                plan_type,
            }),
        }
    }

    /// The access token.
    pub fn access_token(&self) -> &Secret {
        &self.access_token
    }

    /// The ChatGPT metadata, if any.
    pub fn chatgpt_metadata(&self) -> Option<&ChatgptMetadata> {
        self.chatgpt.as_ref()
    }
}

/// Why a value cannot be sent as an HTTP header value (§3.1). Never quotes the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderUnsafe {
    /// Empty, or only whitespace.
    #[error("it is empty")]
    Empty,
    /// CR or LF: the value would end the header line.
    #[error("it contains a line break (CR or LF), so it cannot be sent in an HTTP header")]
    LineBreak,
    /// A NUL byte.
    #[error("it contains a NUL character, so it cannot be sent in an HTTP header")]
    Nul,
    /// Any other control character (tab, escape, DEL, C1 controls).
    #[error("it contains a control character, so it cannot be sent in an HTTP header")]
    Control,
}

/// Checks that `value` can be sent as (part of) an HTTP header value: not empty, no CR,
/// LF, NUL or other control character.
pub fn check_header_value(value: &str) -> Result<(), HeaderUnsafe> {
    if value.trim().is_empty() {
        return Err(HeaderUnsafe::Empty);
    }
    for c in value.chars() {
        match c {
            '\r' | '\n' => return Err(HeaderUnsafe::LineBreak),
            '\0' => return Err(HeaderUnsafe::Nul),
            c if c.is_control() => return Err(HeaderUnsafe::Control),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_unsafe_values_are_named_by_kind() {
        let cases = [
            ("", Err(HeaderUnsafe::Empty)),
            ("  ", Err(HeaderUnsafe::Empty)),
            ("sk-a\r\nX-Evil: 1", Err(HeaderUnsafe::LineBreak)),
            ("sk-a\nb", Err(HeaderUnsafe::LineBreak)),
            ("sk-a\0b", Err(HeaderUnsafe::Nul)),
            ("sk-a\tb", Err(HeaderUnsafe::Control)),
            ("sk-a\u{7f}b", Err(HeaderUnsafe::Control)),
            ("sk-a\u{85}b", Err(HeaderUnsafe::Control)),
            ("sk-plain-key_0123", Ok(())),
            ("org-émoji", Ok(())),
        ];
        for (value, expected) in cases {
            assert_eq!(check_header_value(value), expected, "{value:?}");
        }
    }
}
