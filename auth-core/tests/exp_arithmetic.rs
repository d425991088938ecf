//! Where a clock meets a token's `exp` claim: every `i64` and every finite `f64` value must
//! give the exact answer — no wrap, no panic in a debug build — and a token that expired
//! long ago (exp = -1e16, i64::MIN) must be refreshed before it is used.

mod common;

use std::sync::Arc;

use authbridge_auth_core::jwt::expires_within;
use authbridge_auth_core::*;
use common::*;
use proptest::prelude::*;
use serde_json::json;

/// A JWT with this `exp` (any JSON value) and the ChatGPT claims.
fn jwt_with_exp(exp: serde_json::Value, marker: &str) -> String {
    encode_unsigned_jwt(&json!({
        "exp": exp,
        "marker": marker,
        "https://api.openai.com/auth": {"chatgpt_plan_type": "pro", "chatgpt_account_id": "org-1"}
    }))
}

/// A managed `auth.json` whose access token has `exp`; a manager on it, pointed at a
/// rotating token endpoint. The first `auth()` must refresh when `exp` is past.
async fn managed_with_exp(
    exp: serde_json::Value,
) -> (tempfile::TempDir, TokenServer, Arc<AuthManager>, String) {
    let server = TokenServer::rotating("org-1").await;
    let dir = tempfile::tempdir().unwrap();
    let expired = jwt_with_exp(exp, "expired");
    write_managed(
        dir.path(),
        &expired,
        &fresh_jwt("org-1", "id"),
        "rt-0",
        "org-1",
    );
    let mut cfg = config(dir.path());
    cfg.token_url = server.url.clone();
    let mgr = AuthManager::new(cfg);
    (dir, server, mgr, expired)
}

#[tokio::test]
async fn a_managed_access_token_with_exp_minus_1e16_is_refreshed_before_use() {
    for exp in [
        json!(-10_000_000_000_000_000i64),
        json!(-1e16),
        json!(i64::MIN),
    ] {
        let (dir, server, mgr, expired) = managed_with_exp(exp.clone()).await;
        let creds = mgr.auth().await.unwrap().expect("credentials");
        assert_ne!(
            creds.bearer_token().expose(),
            expired,
            "exp {exp}: the expired token was handed out"
        );
        assert_eq!(server.calls(), 1, "exp {exp}");
        assert_eq!(
            read_auth_json(dir.path())["tokens"]["refresh_token"],
            "rt-0-next",
            "exp {exp}"
        );
    }
}

#[tokio::test]
async fn a_managed_access_token_with_a_huge_exp_is_not_refreshed() {
    for exp in [json!(i64::MAX), json!(u64::MAX), json!(1e300)] {
        let (_dir, server, mgr, expired) = managed_with_exp(exp.clone()).await;
        let creds = mgr.auth().await.unwrap().expect("credentials");
        assert_eq!(creds.bearer_token().expose(), expired, "exp {exp}");
        assert_eq!(server.calls(), 0, "exp {exp}");
    }
}

#[tokio::test]
async fn external_tokens_with_exp_minus_1e16_are_refreshed_proactively() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager(dir.path(), None);
    let refresher = ScriptedRefresher::new(Ok(ExternalAuthTokens::chatgpt(
        fresh_jwt("org-1", "renewed"),
        "org-1",
        None,
    )));
    mgr.set_external_refresher(refresher.clone());
    // The largest "ahead" there is: it must not turn negative on the way to the check.
    mgr.set_proactive_external_refresh(Some(std::time::Duration::MAX));
    mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(
        jwt_with_exp(json!(-1e16), "old"),
        "org-1",
        None,
    ))
    .await
    .unwrap();
    let creds = mgr.auth().await.unwrap().unwrap();
    assert_eq!(refresher.calls(), 1);
    assert_eq!(
        decode_jwt_claims(creds.bearer_token().expose())
            .unwrap()
            .exp
            .map(|e| e > now()),
        Some(true)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The check is exact for every `exp`, clock and margin (compared with `i128` maths).
    #[test]
    fn expires_within_is_exact_for_every_i64(
        exp in any::<i64>(),
        now in any::<i64>(),
        ahead in any::<i64>(),
    ) {
        let exact = i128::from(exp) * 1000 - i128::from(now) <= i128::from(ahead);
        prop_assert_eq!(expires_within(exp, now, ahead), exact);
    }

    /// With a real clock and the managed margin, any `exp` at or before now is due.
    #[test]
    fn every_past_exp_is_due(exp in i64::MIN..=1_700_000_000i64) {
        let now_ms = now() * 1000;
        prop_assert!(expires_within(exp, now_ms, 300_000));
    }

    /// Decoding any finite float or any integer `exp` never panics and clamps to `i64`.
    #[test]
    fn decoding_any_exp_never_panics(
        f in any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()),
        i in any::<i64>(),
        u in any::<u64>(),
    ) {
        let claims = decode_jwt_claims(&jwt_with_exp(json!(f), "f")).unwrap();
        // serde_json's float parsing may differ from `f` in the last bit: compare with
        // what the same text parses to.
        let parsed: f64 = serde_json::from_str(&json!(f).to_string()).unwrap();
        prop_assert_eq!(claims.exp, Some(parsed as i64));
        let claims = decode_jwt_claims(&jwt_with_exp(json!(i), "i")).unwrap();
        prop_assert_eq!(claims.exp, Some(i));
        let claims = decode_jwt_claims(&jwt_with_exp(json!(u), "u")).unwrap();
        prop_assert_eq!(claims.exp, Some(i64::try_from(u).unwrap_or(i64::MAX)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Through the whole manager, in a debug build: any `exp` on external tokens with the
    /// proactive refresh on never panics, and refreshes exactly when `exp` is near or past.
    #[test]
    fn auth_never_panics_and_refreshes_exactly_when_due(exp in any::<i64>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mgr = manager(dir.path(), None);
            let refresher = ScriptedRefresher::new(
                Ok(ExternalAuthTokens::chatgpt(fresh_jwt("org-1", "renewed"), "org-1", None)),
            );
            mgr.set_external_refresher(refresher.clone());
            mgr.set_proactive_external_refresh(Some(std::time::Duration::from_secs(300)));
            mgr.login_external_chatgpt(ExternalAuthTokens::chatgpt(
                jwt_with_exp(json!(exp), "any"),
                "org-1",
                None,
            ))
            .await
            .unwrap();
            let before = now() * 1000;
            mgr.auth().await.unwrap();
            let due = i128::from(exp) * 1000 - i128::from(before) <= 300_000;
            // A token expiring right at the margin may flip between the two clock reads.
            let borderline = (i128::from(exp) * 1000 - i128::from(before) - 300_000).abs() < 5_000;
            if !borderline {
                assert_eq!(refresher.calls(), usize::from(due), "exp {exp}");
            }
        });
    }
}
