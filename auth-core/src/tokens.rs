//! `ExternalAuthTokens`: what a host pushes or a refresher returns.

use crate::secret::Secret;

/// ChatGPT account facts that come with external tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatgptMetadata {
    /// The workspace/account id (`chatgptAccountId`).
    pub account_id: String,
    /// The raw plan type, if the host gave one.
    pub plan_type: Option<String>,
}

/// An access token plus optional ChatGPT metadata. Bearer sources carry no metadata;
/// ChatGPT credentials cannot be seeded from such tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAuthTokens {
    access_token: Secret,
    chatgpt: Option<ChatgptMetadata>,
}

impl ExternalAuthTokens {
    /// A bare bearer token (provider command, other bearer sources).
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
