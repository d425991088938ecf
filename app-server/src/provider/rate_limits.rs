//! Rate limits as the ChatGPT backend reports them (docs/protocol.md §6.4): the
//! `x-codex-*` headers of a model response, and the body of the usage endpoint
//! (`GET {origin}/backend-api/wham/usage`), both mapped to Codex's `RateLimitSnapshot`.

use std::collections::BTreeMap;

use authbridge_protocol::account::PlanType;
use authbridge_protocol::rate_limits::{
    CreditsSnapshot, GetAccountRateLimitsResponse, RateLimitSnapshot, RateLimitWindow,
};
use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The `codex` limit from a response's headers, or `None` when the response carries no
/// rate-limit header at all (then nothing is sent to the host).
///
/// Headers read: `x-codex-{primary,secondary}-used-percent`, `-window-minutes`,
/// `-reset-at` (Unix seconds), `x-codex-credits-has-credits`, `-unlimited`, `-balance`,
/// `x-codex-limit-name`.
pub fn from_headers(headers: &HeaderMap) -> Option<RateLimitSnapshot> {
    let any = headers
        .keys()
        .any(|name| name.as_str().starts_with("x-codex-"));
    if !any {
        return None;
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let window = |which: &str| {
        let used: f64 = text(&format!("x-codex-{which}-used-percent"))?
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())?;
        Some(RateLimitWindow {
            used_percent: percent(used),
            window_duration_mins: text(&format!("x-codex-{which}-window-minutes"))
                .and_then(|v| v.parse().ok()),
            resets_at: text(&format!("x-codex-{which}-reset-at")).and_then(|v| v.parse().ok()),
        })
    };
    let flag = |name: &str| match text(name)? {
        v if v.eq_ignore_ascii_case("true") || v == "1" => Some(true),
        v if v.eq_ignore_ascii_case("false") || v == "0" => Some(false),
        _ => None,
    };
    let credits = match (
        flag("x-codex-credits-has-credits"),
        flag("x-codex-credits-unlimited"),
    ) {
        (Some(has_credits), Some(unlimited)) => Some(CreditsSnapshot {
            has_credits,
            unlimited,
            balance: text("x-codex-credits-balance").map(str::to_string),
        }),
        _ => None,
    };
    Some(RateLimitSnapshot {
        limit_id: Some("codex".into()),
        limit_name: text("x-codex-limit-name").map(str::to_string),
        primary: window("primary"),
        secondary: window("secondary"),
        credits,
        ..RateLimitSnapshot::default()
    })
}

/// Codex reports whole percents.
fn percent(used: f64) -> i32 {
    used.round().clamp(0.0, i32::MAX as f64) as i32
}

#[derive(Deserialize)]
struct UsageWindow {
    used_percent: f64,
    #[serde(default)]
    limit_window_seconds: Option<i64>,
    #[serde(default)]
    reset_at: Option<i64>,
}

#[derive(Deserialize)]
struct UsageLimit {
    #[serde(default)]
    primary_window: Option<UsageWindow>,
    #[serde(default)]
    secondary_window: Option<UsageWindow>,
}

#[derive(Deserialize)]
struct UsageCredits {
    has_credits: bool,
    unlimited: bool,
    #[serde(default)]
    balance: Option<String>,
}

#[derive(Deserialize)]
struct AdditionalLimit {
    metered_feature: String,
    #[serde(default)]
    limit_name: Option<String>,
    #[serde(default)]
    rate_limit: Option<UsageLimit>,
}

#[derive(Deserialize)]
struct ReachedType {
    #[serde(rename = "type")]
    kind: String,
}

/// The usage endpoint's body.
#[derive(Deserialize)]
struct UsagePayload {
    #[serde(default)]
    plan_type: Option<String>,
    #[serde(default)]
    rate_limit: Option<UsageLimit>,
    #[serde(default)]
    credits: Option<UsageCredits>,
    #[serde(default)]
    additional_rate_limits: Option<Vec<AdditionalLimit>>,
    #[serde(default)]
    rate_limit_reached_type: Option<ReachedType>,
}

fn window(w: Option<UsageWindow>) -> Option<RateLimitWindow> {
    let w = w?;
    Some(RateLimitWindow {
        used_percent: percent(w.used_percent),
        // Minutes, rounded up, as Codex does; no window length is `null`.
        window_duration_mins: w
            .limit_window_seconds
            .filter(|s| *s > 0)
            .map(|s| (s + 59) / 60),
        resets_at: w.reset_at,
    })
}

/// Maps the usage endpoint's body to Codex's `GetAccountRateLimitsResponse`.
pub fn from_usage_body(body: &[u8]) -> Result<GetAccountRateLimitsResponse, String> {
    let payload: UsagePayload = serde_json::from_slice(body)
        .map_err(|e| format!("the usage endpoint returned an unexpected body: {e}"))?;
    let plan = payload.plan_type.as_deref().map(PlanType::parse);
    let (primary, secondary) = match payload.rate_limit {
        Some(l) => (window(l.primary_window), window(l.secondary_window)),
        None => (None, None),
    };
    let codex = RateLimitSnapshot {
        limit_id: Some("codex".into()),
        primary,
        secondary,
        credits: payload.credits.map(|c| CreditsSnapshot {
            has_credits: c.has_credits,
            unlimited: c.unlimited,
            balance: c.balance,
        }),
        plan_type: plan,
        rate_limit_reached_type: payload.rate_limit_reached_type.map(|r| r.kind),
        ..RateLimitSnapshot::default()
    };
    let mut by_id = BTreeMap::new();
    by_id.insert("codex".to_string(), codex.clone());
    for extra in payload.additional_rate_limits.unwrap_or_default() {
        let (primary, secondary) = match extra.rate_limit {
            Some(l) => (window(l.primary_window), window(l.secondary_window)),
            None => (None, None),
        };
        by_id.insert(
            extra.metered_feature.clone(),
            RateLimitSnapshot {
                limit_id: Some(extra.metered_feature),
                limit_name: extra.limit_name,
                primary,
                secondary,
                plan_type: plan,
                ..RateLimitSnapshot::default()
            },
        );
    }
    Ok(GetAccountRateLimitsResponse {
        rate_limits: codex,
        rate_limits_by_limit_id: Some(by_id),
    })
}

/// The usage endpoint for a `chatgpt_base_url`: the same origin, `/backend-api/wham/usage`
/// (where Codex reads it).
pub fn usage_url(chatgpt_base_url: &str) -> String {
    let origin = match reqwest::Url::parse(chatgpt_base_url) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => chatgpt_base_url.trim_end_matches('/').to_string(),
    };
    format!("{origin}/backend-api/wham/usage")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_map_to_the_codex_limit() {
        let mut h = HeaderMap::new();
        h.insert("x-codex-primary-used-percent", "12.6".parse().unwrap());
        h.insert("x-codex-primary-window-minutes", "300".parse().unwrap());
        h.insert("x-codex-primary-reset-at", "1796240000".parse().unwrap());
        h.insert("x-codex-credits-has-credits", "true".parse().unwrap());
        h.insert("x-codex-credits-unlimited", "0".parse().unwrap());
        let s = from_headers(&h).unwrap();
        assert_eq!(s.limit_id.as_deref(), Some("codex"));
        let p = s.primary.unwrap();
        assert_eq!(
            (p.used_percent, p.window_duration_mins, p.resets_at),
            (13, Some(300), Some(1796240000))
        );
        assert_eq!(s.secondary, None);
        assert_eq!(
            s.credits,
            Some(CreditsSnapshot {
                has_credits: true,
                unlimited: false,
                balance: None
            })
        );
        assert_eq!(from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn the_usage_body_maps_windows_in_minutes_and_every_limit() {
        let body = br#"{"plan_type":"pro","rate_limit":{"allowed":true,"limit_reached":false,
            "primary_window":{"used_percent":42,"limit_window_seconds":18000,"reset_after_seconds":5,"reset_at":123},
            "secondary_window":{"used_percent":7,"limit_window_seconds":61,"reset_at":456}},
            "credits":{"has_credits":true,"unlimited":false,"balance":"9.99"},
            "additional_rate_limits":[{"metered_feature":"codex_other","limit_name":"other","rate_limit":null}]}"#;
        let r = from_usage_body(body).unwrap();
        let p = r.rate_limits.primary.clone().unwrap();
        assert_eq!((p.used_percent, p.window_duration_mins), (42, Some(300)));
        assert_eq!(
            r.rate_limits.secondary.unwrap().window_duration_mins,
            Some(2)
        );
        assert_eq!(r.rate_limits.plan_type, Some(PlanType::Pro));
        let by_id = r.rate_limits_by_limit_id.unwrap();
        assert_eq!(by_id.len(), 2);
        assert_eq!(by_id["codex_other"].limit_name.as_deref(), Some("other"));
        assert!(from_usage_body(br#"{"rate_limit": 5}"#).is_err());
        assert!(from_usage_body(b"<html>").is_err());
    }

    #[test]
    fn the_usage_url_is_on_the_chatgpt_origin() {
        assert_eq!(
            usage_url("https://chatgpt.com/backend-api/codex"),
            "https://chatgpt.com/backend-api/wham/usage"
        );
        assert_eq!(
            usage_url("http://127.0.0.1:4000/backend-api/codex/"),
            "http://127.0.0.1:4000/backend-api/wham/usage"
        );
    }
}
