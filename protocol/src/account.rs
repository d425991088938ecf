//! The account surface (docs/protocol.md §3), Codex-compatible in names, casing and shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::handshake::EmptyParams;
use crate::method::{notification, request};

/// `authMode` as reported by `account/updated` and `getAuthStatus` (note `apikey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AuthMode {
    #[serde(rename = "apikey")]
    ApiKey,
    #[serde(rename = "chatgpt")]
    Chatgpt,
    #[serde(rename = "chatgptAuthTokens")]
    ChatgptAuthTokens,
}

/// A ChatGPT plan. Any unrecognised value reads as `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanType {
    Free,
    Go,
    Plus,
    Pro,
    Prolite,
    Promax,
    Team,
    SelfServeBusinessProlite,
    SelfServeBusinessUsageBased,
    Business,
    Ent26,
    EnterpriseCbpAutomation,
    EnterpriseCbpUsageBased,
    Enterprise,
    Edu,
    EduPlus,
    EduPro,
    Sci,
    SciPlus,
    #[serde(other)]
    Unknown,
}

impl PlanType {
    /// Reads a plan name as the wire spells it (lowercase); anything else is `Unknown`.
    pub fn parse(s: &str) -> PlanType {
        serde_json::from_value(Value::String(s.to_ascii_lowercase())).unwrap_or(PlanType::Unknown)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PlanType::Free => "free",
            PlanType::Go => "go",
            PlanType::Plus => "plus",
            PlanType::Pro => "pro",
            PlanType::Prolite => "prolite",
            PlanType::Promax => "promax",
            PlanType::Team => "team",
            PlanType::SelfServeBusinessProlite => "self_serve_business_prolite",
            PlanType::SelfServeBusinessUsageBased => "self_serve_business_usage_based",
            PlanType::Business => "business",
            PlanType::Ent26 => "ent26",
            PlanType::EnterpriseCbpAutomation => "enterprise_cbp_automation",
            PlanType::EnterpriseCbpUsageBased => "enterprise_cbp_usage_based",
            PlanType::Enterprise => "enterprise",
            PlanType::Edu => "edu",
            PlanType::EduPlus => "edu_plus",
            PlanType::EduPro => "edu_pro",
            PlanType::Sci => "sci",
            PlanType::SciPlus => "sci_plus",
            PlanType::Unknown => "unknown",
        }
    }

    /// Every plan value, `unknown` last (Codex 0.171's `PlanType` list).
    pub const ALL: [PlanType; 20] = [
        PlanType::Free,
        PlanType::Go,
        PlanType::Plus,
        PlanType::Pro,
        PlanType::Prolite,
        PlanType::Promax,
        PlanType::Team,
        PlanType::SelfServeBusinessProlite,
        PlanType::SelfServeBusinessUsageBased,
        PlanType::Business,
        PlanType::Ent26,
        PlanType::EnterpriseCbpAutomation,
        PlanType::EnterpriseCbpUsageBased,
        PlanType::Enterprise,
        PlanType::Edu,
        PlanType::EduPlus,
        PlanType::EduPro,
        PlanType::Sci,
        PlanType::SciPlus,
        PlanType::Unknown,
    ];
}

/// `account/login/start` params, tagged by `type`.
#[derive(Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type")]
pub enum LoginAccountParams {
    #[serde(rename = "apiKey", rename_all = "camelCase")]
    ApiKey { api_key: String },
    #[serde(rename = "chatgptAuthTokens", rename_all = "camelCase")]
    ChatgptAuthTokens {
        access_token: String,
        chatgpt_account_id: String,
        #[serde(default)]
        chatgpt_plan_type: Option<String>,
    },
    /// Browser sign-in (§3.8): the server answers with a URL to open.
    #[serde(rename = "chatgpt")]
    Chatgpt {},
    /// Device-code sign-in (§3.8): the server answers with a code to enter.
    #[serde(rename = "chatgptDeviceCode")]
    ChatgptDeviceCode {},
}

impl std::fmt::Debug for LoginAccountParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginAccountParams::ApiKey { .. } => f.write_str("ApiKey { api_key: [redacted] }"),
            LoginAccountParams::ChatgptAuthTokens {
                chatgpt_account_id,
                chatgpt_plan_type,
                ..
            } => f
                .debug_struct("ChatgptAuthTokens")
                .field("access_token", &"[redacted]")
                .field("chatgpt_account_id", chatgpt_account_id)
                .field("chatgpt_plan_type", chatgpt_plan_type)
                .finish(),
            LoginAccountParams::Chatgpt {} => f.write_str("Chatgpt"),
            LoginAccountParams::ChatgptDeviceCode {} => f.write_str("ChatgptDeviceCode"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiKeyFields {
    api_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenFields {
    access_token: String,
    chatgpt_account_id: String,
    #[serde(default)]
    chatgpt_plan_type: Option<String>,
}

impl<'de> Deserialize<'de> for LoginAccountParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        let kind = match value.get("type") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(D::Error::custom(
                    "invalid type: field `type` must be a string",
                ))
            }
            None => return Err(D::Error::missing_field("type")),
        };
        match kind.as_str() {
            "apiKey" => {
                let f: ApiKeyFields = serde_json::from_value(value).map_err(D::Error::custom)?;
                Ok(LoginAccountParams::ApiKey { api_key: f.api_key })
            }
            "chatgptAuthTokens" => {
                let f: TokenFields = serde_json::from_value(value).map_err(D::Error::custom)?;
                Ok(LoginAccountParams::ChatgptAuthTokens {
                    access_token: f.access_token,
                    chatgpt_account_id: f.chatgpt_account_id,
                    chatgpt_plan_type: f.chatgpt_plan_type,
                })
            }
            "chatgpt" => Ok(LoginAccountParams::Chatgpt {}),
            "chatgptDeviceCode" => Ok(LoginAccountParams::ChatgptDeviceCode {}),
            other => Err(D::Error::custom(format!(
                "unsupported login type {other:?}"
            ))),
        }
    }
}

/// `account/login/start` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum LoginAccountResponse {
    #[serde(rename = "apiKey")]
    ApiKey {},
    #[serde(rename = "chatgptAuthTokens")]
    ChatgptAuthTokens {},
    /// The browser flow started: open `authUrl`, then wait for `account/login/completed`
    /// with this `loginId`.
    #[serde(rename = "chatgpt", rename_all = "camelCase")]
    Chatgpt { login_id: String, auth_url: String },
    /// The device-code flow started: show `userCode` and `verificationUrl`, then wait for
    /// `account/login/completed` with this `loginId`.
    #[serde(rename = "chatgptDeviceCode", rename_all = "camelCase")]
    ChatgptDeviceCode {
        login_id: String,
        verification_url: String,
        user_code: String,
    },
}

/// `account/login/cancel` params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelLoginAccountParams {
    pub login_id: String,
}

/// Whether `account/login/cancel` found a login in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CancelLoginAccountStatus {
    /// It was running and is now cancelled (its `account/login/completed` follows).
    Canceled,
    /// No login with that id is in progress (unknown, or already finished).
    NotFound,
}

/// `account/login/cancel` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CancelLoginAccountResponse {
    pub status: CancelLoginAccountStatus,
}

/// `account/login/completed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountLoginCompletedNotification {
    pub login_id: Option<String>,
    pub success: bool,
    pub error: Option<String>,
    /// Codex's desktop onboarding entry point; always null here.
    pub onboarding_entrypoint: Option<String>,
}

/// `account/updated`: the active mode and plan after a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdatedNotification {
    pub auth_mode: Option<AuthMode>,
    pub plan_type: Option<PlanType>,
    /// Codex's routing-discovery reason; always null here.
    pub reason: Option<String>,
}

/// `warning` (Codex's `WarningNotification`): something the user should know that is not
/// the answer to a request — here, refreshed ChatGPT tokens that could not be written to
/// `auth.json` and are kept in memory (docs/protocol.md §4.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarningNotification {
    /// A short message for the user.
    pub message: String,
    /// The thread it concerns; `null` for the account.
    pub thread_id: Option<String>,
}

/// `account/read` params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAccountParams {
    #[serde(default)]
    pub refresh_token: bool,
}

/// The account as `account/read` reports it. External tokens report `chatgpt`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum Account {
    #[serde(rename = "apiKey")]
    ApiKey {},
    #[serde(rename = "chatgpt", rename_all = "camelCase")]
    Chatgpt {
        email: Option<String>,
        plan_type: PlanType,
    },
}

/// `account/read` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAccountResponse {
    pub account: Option<Account>,
    pub requires_openai_auth: bool,
}

/// `account/logout` result (`{}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogoutAccountResponse {}

/// `getAuthStatus` params (legacy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthStatusParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_token: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<bool>,
}

/// `getAuthStatus` result.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthStatusResponse {
    pub auth_method: Option<AuthMode>,
    pub auth_token: Option<String>,
    pub requires_openai_auth: bool,
}

impl std::fmt::Debug for GetAuthStatusResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetAuthStatusResponse")
            .field("auth_method", &self.auth_method)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "[redacted]"),
            )
            .field("requires_openai_auth", &self.requires_openai_auth)
            .finish()
    }
}

/// Why the server asks the host for new tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChatgptAuthTokensRefreshReason {
    /// The provider answered 401.
    Unauthorized,
    /// The token expires soon (only for hosts that opted in, §3.6).
    ExpiringSoon,
}

/// `account/chatgptAuthTokens/refresh` params (server → host).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatgptAuthTokensRefreshParams {
    pub reason: ChatgptAuthTokensRefreshReason,
    pub previous_account_id: Option<String>,
}

/// `account/chatgptAuthTokens/refresh` result (host → server).
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatgptAuthTokensRefreshResponse {
    pub access_token: String,
    pub chatgpt_account_id: String,
    #[serde(default)]
    pub chatgpt_plan_type: Option<String>,
}

impl std::fmt::Debug for ChatgptAuthTokensRefreshResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatgptAuthTokensRefreshResponse")
            .field("access_token", &"[redacted]")
            .field("chatgpt_account_id", &self.chatgpt_account_id)
            .field("chatgpt_plan_type", &self.chatgpt_plan_type)
            .finish()
    }
}

request!(
    /// `account/login/start`.
    LoginAccount, "account/login/start", LoginAccountParams, LoginAccountResponse
);
request!(
    /// `account/login/cancel`.
    CancelLoginAccount,
    "account/login/cancel",
    CancelLoginAccountParams,
    CancelLoginAccountResponse
);
request!(
    /// `account/read`.
    GetAccount, "account/read", GetAccountParams, GetAccountResponse
);
request!(
    /// `account/logout`.
    LogoutAccount, "account/logout", EmptyParams, LogoutAccountResponse
);
request!(
    /// `getAuthStatus` (legacy).
    GetAuthStatus, "getAuthStatus", GetAuthStatusParams, GetAuthStatusResponse
);
request!(
    /// `account/chatgptAuthTokens/refresh`: server → host.
    ChatgptAuthTokensRefresh,
    "account/chatgptAuthTokens/refresh",
    ChatgptAuthTokensRefreshParams,
    ChatgptAuthTokensRefreshResponse
);
notification!(
    /// `account/login/completed`.
    AccountLoginCompleted, "account/login/completed", AccountLoginCompletedNotification
);
notification!(
    /// `account/updated`.
    AccountUpdated, "account/updated", AccountUpdatedNotification
);
notification!(
    /// `warning`.
    Warning, "warning", WarningNotification
);
