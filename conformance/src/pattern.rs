//! Message patterns (`{{matcher}}` strings, exact objects unless `"...": true`) and the
//! templates of sent messages (`{{ref:NAME}}`, `{{jwt:account=org-1,exp=+3600}}`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Values captured by `{{capture:NAME}}` (and tokens minted with `as=NAME`).
pub type Captures = BTreeMap<String, Value>;

/// The first place where a message differs from its pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// JSON-pointer-like path, e.g. `/error/message`.
    pub path: String,
    pub expected: String,
    pub got: String,
}

/// Matches `got` against `pattern`; on success the captures it made are added to `caps`.
#[cfg(test)]
pub fn matches(pattern: &Value, got: &Value, caps: &mut Captures) -> Result<(), Mismatch> {
    matches_with(pattern, got, caps, false)
}

/// [`matches`], where `allow_extra` treats every object pattern as if it had `"...": true`.
pub fn matches_with(
    pattern: &Value,
    got: &Value,
    caps: &mut Captures,
    allow_extra: bool,
) -> Result<(), Mismatch> {
    let mut scratch = caps.clone();
    match_at("", pattern, got, &mut scratch, allow_extra)?;
    *caps = scratch;
    Ok(())
}

fn mismatch(path: &str, expected: impl Into<String>, got: &Value) -> Mismatch {
    Mismatch {
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        expected: expected.into(),
        got: got.to_string(),
    }
}

fn match_at(
    path: &str,
    pattern: &Value,
    got: &Value,
    caps: &mut Captures,
    extra: bool,
) -> Result<(), Mismatch> {
    match pattern {
        Value::String(s) => match matcher(s) {
            Some((name, arg)) => match_matcher(path, s, name, arg, got, caps),
            None if got == pattern => Ok(()),
            None => Err(mismatch(path, pattern.to_string(), got)),
        },
        Value::Object(p) => {
            let Some(g) = got.as_object() else {
                return Err(mismatch(path, "an object", got));
            };
            let open = extra || p.get("...") == Some(&Value::Bool(true));
            for (key, sub) in p.iter().filter(|(k, _)| k.as_str() != "...") {
                let here = format!("{path}/{key}");
                match (sub.as_str(), g.get(key)) {
                    (Some("{{absent}}"), None) => {}
                    (Some("{{absent}}"), Some(v)) => {
                        return Err(mismatch(&here, "no such member", v))
                    }
                    (_, None) => {
                        return Err(Mismatch {
                            path: here,
                            expected: sub.to_string(),
                            got: "no such member".into(),
                        })
                    }
                    (_, Some(v)) => match_at(&here, sub, v, caps, extra)?,
                }
            }
            if !open {
                if let Some(extra) = g.keys().find(|k| !p.contains_key(*k)) {
                    return Err(Mismatch {
                        path: format!("{path}/{extra}"),
                        expected: "no such member".into(),
                        got: g[extra].to_string(),
                    });
                }
            }
            Ok(())
        }
        Value::Array(p) => {
            let Some(g) = got.as_array() else {
                return Err(mismatch(path, "an array", got));
            };
            if p.len() != g.len() {
                return Err(mismatch(
                    path,
                    format!("an array of {} items", p.len()),
                    got,
                ));
            }
            for (i, (sub, v)) in p.iter().zip(g).enumerate() {
                match_at(&format!("{path}/{i}"), sub, v, caps, extra)?;
            }
            Ok(())
        }
        _ if pattern == got => Ok(()),
        _ => Err(mismatch(path, pattern.to_string(), got)),
    }
}

/// `"{{name:arg}}"` → `(name, arg)`; `None` for a plain string.
fn matcher(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    Some(inner.split_once(':').unwrap_or((inner, "")))
}

fn match_matcher(
    path: &str,
    raw: &str,
    name: &str,
    arg: &str,
    got: &Value,
    caps: &mut Captures,
) -> Result<(), Mismatch> {
    let ok = match name {
        "any" => true,
        "string" => got.is_string(),
        "integer" => got.is_i64() || got.is_u64(),
        "bool" => got.is_boolean(),
        "jwt" => got.as_str().is_some_and(|t| decode_jwt(t).is_ok()),
        "uuid" => got.as_str().is_some_and(is_uuid),
        "contains" => got.as_str().is_some_and(|t| t.contains(arg)),
        "prefix" => got.as_str().is_some_and(|t| t.starts_with(arg)),
        "capture" => {
            caps.insert(arg.to_owned(), got.clone());
            true
        }
        "ref" => match caps.get(arg) {
            Some(v) => v == got,
            None => {
                return Err(mismatch(
                    path,
                    format!("{raw} (nothing was captured as {arg:?})"),
                    got,
                ))
            }
        },
        _ => return Err(mismatch(path, format!("a known matcher, not {raw}"), got)),
    };
    if ok {
        Ok(())
    } else {
        Err(mismatch(path, raw, got))
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Fills a template: a string that is exactly one `{{…}}` becomes that value; `{{…}}`
/// inside a longer string is replaced by its text.
pub fn expand(template: &Value, caps: &mut Captures) -> Result<Value, String> {
    Ok(match template {
        Value::String(s) => match matcher(s) {
            Some((name, arg)) if s.matches("{{").count() == 1 => placeholder(name, arg, caps)?,
            _ => Value::String(expand_str(s, caps)?),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| expand(v, caps))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), expand(v, caps)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Replaces every `{{…}}` inside a string by its text.
pub fn expand_str(s: &str, caps: &mut Captures) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + len];
        let (name, arg) = inner.split_once(':').unwrap_or((inner, ""));
        match placeholder(name, arg, caps)? {
            Value::String(v) => out.push_str(&v),
            v => out.push_str(&v.to_string()),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn placeholder(name: &str, arg: &str, caps: &mut Captures) -> Result<Value, String> {
    match name {
        "ref" => caps
            .get(arg)
            .cloned()
            .ok_or_else(|| format!("{{{{ref:{arg}}}}}: nothing was captured as {arg:?}")),
        "jwt" => {
            let spec = JwtSpec::parse(arg)?;
            let token = Value::String(spec.mint());
            if let Some(name) = spec.name {
                caps.insert(name, token.clone());
            }
            Ok(token)
        }
        _ => Err(format!("{{{{{name}}}}} cannot be used in a sent message")),
    }
}

/// What `{{jwt:account=org-1,plan=pro,email=a@b.c,user=u-1,exp=+3600,as=NAME}}` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwtSpec {
    pub account: Option<String>,
    pub plan: Option<String>,
    pub email: Option<String>,
    pub user: Option<String>,
    /// Absolute unix seconds.
    pub exp: Option<i64>,
    /// Capture name for the minted token.
    pub name: Option<String>,
}

impl JwtSpec {
    /// Parses `key=value` pairs separated by commas; `exp=+N`/`-N` is relative to now.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("jwt: {pair:?} is not key=value"))?;
            let v = v.to_owned();
            match k {
                "account" => out.account = Some(v),
                "plan" => out.plan = Some(v),
                "email" => out.email = Some(v),
                "user" => out.user = Some(v),
                "as" => out.name = Some(v),
                "exp" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("jwt: exp {v:?} is not an integer"))?;
                    out.exp = Some(if v.starts_with(['+', '-']) {
                        now_unix() + n
                    } else {
                        n
                    });
                }
                _ => {
                    return Err(format!(
                        "jwt: unknown key {k:?} (account, plan, email, user, exp, as)"
                    ))
                }
            }
        }
        Ok(out)
    }

    /// An unsigned (`alg: none`) token with these claims and a random `jti`, so no two are equal.
    pub fn mint(&self) -> String {
        let mut auth = Map::new();
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        if let Some(e) = &self.email {
            claims.insert("email".into(), json!(e));
        }
        if let Some(e) = self.exp {
            claims.insert("exp".into(), json!(e));
        }
        for (key, value) in [
            ("chatgpt_plan_type", &self.plan),
            ("chatgpt_user_id", &self.user),
            ("chatgpt_account_id", &self.account),
        ] {
            if let Some(v) = value {
                auth.insert(key.into(), json!(v));
            }
        }
        claims.insert("https://api.openai.com/auth".into(), Value::Object(auth));
        let header = json!({"alg": "none", "typ": "JWT"});
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        )
    }
}

/// Seconds since the unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The payload of an unsigned JWT: three non-empty base64url segments, a JSON object in the middle.
pub fn decode_jwt(token: &str) -> Result<Map<String, Value>, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err("not three non-empty dot-separated segments".into());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| "the payload is not base64url".to_string())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err("the payload is not a JSON object".into()),
    }
}

#[cfg(test)]
#[path = "pattern_tests.rs"]
mod tests;
