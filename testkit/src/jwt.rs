//! Unsigned JWTs for tests: a builder that mints `alg: none` tokens with the ChatGPT claims.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// The claim object that carries the ChatGPT account fields.
pub const AUTH_CLAIM: &str = "https://api.openai.com/auth";

/// A JWT builder. Every field is optional; `mint()` writes only the ones that were set.
///
/// ```
/// use std::time::Duration;
/// use authbridge_testkit::jwt::Jwt;
/// let token = Jwt::new().account("org-1").plan("pro").exp_in(Duration::from_secs(3600)).mint();
/// assert_eq!(token.split('.').count(), 3);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Jwt {
    email: Option<String>,
    exp: Option<i64>,
    plan: Option<String>,
    user_id: Option<String>,
    account_id: Option<String>,
    extra: Map<String, Value>,
}

impl Jwt {
    /// An empty builder (no claims).
    pub fn new() -> Self {
        Self::default()
    }

    /// The top-level `email` claim.
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// `exp` as an absolute unix time in seconds.
    pub fn exp(mut self, unix_seconds: i64) -> Self {
        self.exp = Some(unix_seconds);
        self
    }

    /// `exp` = now + `d`.
    pub fn exp_in(self, d: Duration) -> Self {
        let exp = now_unix() + d.as_secs() as i64;
        self.exp(exp)
    }

    /// `exp` = now − `d` (an already expired token).
    pub fn expired_since(self, d: Duration) -> Self {
        let exp = now_unix() - d.as_secs() as i64;
        self.exp(exp)
    }

    /// `chatgpt_plan_type` in the auth claim.
    pub fn plan(mut self, plan: &str) -> Self {
        self.plan = Some(plan.to_owned());
        self
    }

    /// `chatgpt_user_id` in the auth claim.
    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    /// `chatgpt_account_id` in the auth claim.
    pub fn account(mut self, account_id: &str) -> Self {
        self.account_id = Some(account_id.to_owned());
        self
    }

    /// Any other top-level claim (e.g. a `jti` to make two tokens differ).
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// The claims object this builder describes.
    pub fn claims(&self) -> Value {
        let mut claims = self.extra.clone();
        if let Some(email) = &self.email {
            claims.insert("email".into(), json!(email));
        }
        if let Some(exp) = self.exp {
            claims.insert("exp".into(), json!(exp));
        }
        let mut auth = Map::new();
        if let Some(plan) = &self.plan {
            auth.insert("chatgpt_plan_type".into(), json!(plan));
        }
        if let Some(user) = &self.user_id {
            auth.insert("chatgpt_user_id".into(), json!(user));
        }
        if let Some(account) = &self.account_id {
            auth.insert("chatgpt_account_id".into(), json!(account));
        }
        if !auth.is_empty() {
            claims.insert(AUTH_CLAIM.into(), Value::Object(auth));
        }
        Value::Object(claims)
    }

    /// The token: `base64url(header).base64url(claims).sig`, unpadded.
    pub fn mint(&self) -> String {
        mint_claims(&self.claims())
    }
}

/// The kit's everyday token: account `org-1`, plan `pro`, valid for an hour, made unique by
/// `tag` (its `jti`), so two tags never mint the same token.
pub fn tagged(tag: &str) -> String {
    Jwt::new()
        .account("org-1")
        .plan("pro")
        .exp_in(Duration::from_secs(3600))
        .claim("jti", Value::String(tag.to_string()))
        .mint()
}

/// A token of `user@example.com` for `account_id` on `plan`, valid for an hour.
pub fn for_account(account_id: &str, plan: &str) -> String {
    Jwt::new()
        .email("user@example.com")
        .account(account_id)
        .plan(plan)
        .exp_in(Duration::from_secs(3600))
        .mint()
}

/// Mints a token for an arbitrary claims value.
pub fn mint_claims(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Decodes the claims of a token minted here (or any unsigned JWT); `None` if it is not one.
pub fn decode_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || sig.is_empty() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Seconds since the unix epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_has_the_none_header_three_segments_and_a_dummy_signature() {
        let token = Jwt::new().account("org-1").mint();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "none", "typ": "JWT"}));
        assert_eq!(parts[2], "sig");
        assert!(!token.contains('='), "no padding: {token}");
    }

    #[test]
    fn the_claims_round_trip_with_the_nested_auth_object() {
        let token = Jwt::new()
            .email("a@example.com")
            .exp(1_900_000_000)
            .plan("pro")
            .user("user-1")
            .account("org-1")
            .mint();
        assert_eq!(
            decode_claims(&token),
            Some(json!({
                "email": "a@example.com",
                "exp": 1_900_000_000,
                AUTH_CLAIM: {
                    "chatgpt_plan_type": "pro",
                    "chatgpt_user_id": "user-1",
                    "chatgpt_account_id": "org-1"
                }
            }))
        );
    }

    #[test]
    fn exp_in_and_expired_since_are_relative_to_now() {
        let later = Jwt::new().exp_in(Duration::from_secs(600)).claims();
        let earlier = Jwt::new().expired_since(Duration::from_secs(600)).claims();
        let now = now_unix();
        let later = later["exp"].as_i64().unwrap();
        let earlier = earlier["exp"].as_i64().unwrap();
        assert!((now + 599..=now + 601).contains(&later), "{later} vs {now}");
        assert!(
            (now - 601..=now - 599).contains(&earlier),
            "{earlier} vs {now}"
        );
    }

    #[test]
    fn an_empty_builder_mints_an_empty_claims_object() {
        assert_eq!(decode_claims(&Jwt::new().mint()), Some(json!({})));
    }

    #[test]
    fn decode_claims_refuses_what_is_not_a_jwt() {
        assert_eq!(decode_claims("not-a-jwt"), None);
        assert_eq!(decode_claims("a.b."), None);
    }
}
