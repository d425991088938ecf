//! Rate limits (docs/protocol.md §6.4): `account/rateLimits/read` and
//! `account/rateLimits/updated`, in Codex's shapes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::account::PlanType;
use crate::handshake::EmptyParams;
use crate::method::{notification, request};

/// One usage window: how much of it is used, how long it is, when it resets (Unix
/// seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitWindow {
    pub used_percent: i32,
    pub window_duration_mins: Option<i64>,
    pub resets_at: Option<i64>,
}

/// The account's credits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditsSnapshot {
    pub has_credits: bool,
    pub unlimited: bool,
    pub balance: Option<String>,
}

/// One metered limit (Codex's `RateLimitSnapshot`); `limitId` is e.g. `codex`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSnapshot {
    pub limit_id: Option<String>,
    pub limit_name: Option<String>,
    pub primary: Option<RateLimitWindow>,
    pub secondary: Option<RateLimitWindow>,
    pub credits: Option<CreditsSnapshot>,
    pub plan_type: Option<PlanType>,
    pub normal_model_slug: Option<String>,
    pub individual_limit: Option<serde_json::Value>,
    pub spend_control_reached: Option<bool>,
    /// Codex's `RateLimitReachedType` (e.g. `rate_limit_reached`), as the backend said it.
    pub rate_limit_reached_type: Option<String>,
}

/// `account/rateLimits/read` result (Codex's `GetAccountRateLimitsResponse`): the `codex`
/// limit, and every limit by id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAccountRateLimitsResponse {
    pub rate_limits: RateLimitSnapshot,
    pub rate_limits_by_limit_id: Option<BTreeMap<String, RateLimitSnapshot>>,
}

/// `account/rateLimits/updated`: a snapshot read from a provider response's headers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountRateLimitsUpdatedNotification {
    pub rate_limits: RateLimitSnapshot,
}

request!(
    /// `account/rateLimits/read`.
    GetAccountRateLimits,
    "account/rateLimits/read",
    EmptyParams,
    GetAccountRateLimitsResponse
);
notification!(
    /// `account/rateLimits/updated`.
    AccountRateLimitsUpdated,
    "account/rateLimits/updated",
    AccountRateLimitsUpdatedNotification
);
