//! Codex 0.171.0 as the judge: its JSON Schema, and messages judged against the
//! definition for their method. `authbridge_testkit::codex` gets the binary.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{json, Value};

#[allow(unused_imports)]
pub use authbridge_testkit::codex::{codex_bin, generate_schema, CODEX_VERSION};

/// Responses of requests whose params give no name to derive the response's from.
const RESPONSE_OF_PARAMLESS: &[(&str, &str)] = &[
    ("account/logout", "v2/LogoutAccountResponse"),
    ("account/rateLimits/read", "v2/GetAccountRateLimitsResponse"),
];

/// What one message was judged against, and the outcome.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// `response account/read`, `notification turn/completed`, `request account/…`,
    /// `error initialize`, …
    pub kind: String,
    /// `None`: valid. `Some(why)`: invalid, or no definition for it (unknown).
    pub problem: Option<String>,
    /// Not valid, but the one documented difference (a parse error's `id: null`).
    pub documented: bool,
}

/// Judges messages against Codex's schema bundle by method.
pub struct Judge {
    bundle: Value,
    /// Method → index of its variant in `ClientRequest.oneOf` and its params `$ref`.
    client_requests: HashMap<String, Option<String>>,
    server_requests: HashMap<String, usize>,
    server_notifications: HashMap<String, usize>,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

fn variants(bundle: &Value, name: &str) -> Vec<(String, usize, Option<String>)> {
    bundle["definitions"][name]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("Codex's bundle has no {name}.oneOf"))
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let method = v["properties"]["method"]["enum"][0].as_str()?.to_owned();
            let params = v["properties"]["params"]["$ref"]
                .as_str()
                .map(str::to_owned);
            Some((method, i, params))
        })
        .collect()
}

impl Judge {
    pub fn new(bundle: Value) -> Self {
        let client_requests = variants(&bundle, "ClientRequest")
            .into_iter()
            .map(|(m, _, p)| (m, p))
            .collect();
        let server_requests = variants(&bundle, "ServerRequest")
            .into_iter()
            .map(|(m, i, _)| (m, i))
            .collect();
        let server_notifications = variants(&bundle, "ServerNotification")
            .into_iter()
            .map(|(m, i, _)| (m, i))
            .collect();
        Self {
            bundle,
            client_requests,
            server_requests,
            server_notifications,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// Whether Codex's schema has this client request.
    pub fn knows_request(&self, method: &str) -> bool {
        self.client_requests.contains_key(method)
    }

    /// The definition (under `#/definitions/`) of the result of `method`.
    pub fn response_definition(&self, method: &str) -> Option<String> {
        if let Some((_, def)) = RESPONSE_OF_PARAMLESS.iter().find(|(m, _)| *m == method) {
            return Some((*def).to_owned());
        }
        let params = self.client_requests.get(method)?.as_ref()?;
        let def = params
            .strip_prefix("#/definitions/")?
            .strip_suffix("Params")?
            .to_owned()
            + "Response";
        self.pointer_exists(&def).then_some(def)
    }

    fn pointer_exists(&self, def: &str) -> bool {
        self.bundle
            .pointer(&format!("/definitions/{def}"))
            .is_some()
    }

    fn validator(&self, def: &str) -> std::sync::Arc<jsonschema::Validator> {
        let mut cache = self.validators.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(def.to_owned())
            .or_insert_with(|| {
                let schema = json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "$ref": format!("#/definitions/{def}"),
                    "definitions": self.bundle["definitions"],
                });
                std::sync::Arc::new(
                    jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft7)
                        .build(&schema)
                        .unwrap_or_else(|e| panic!("Codex's definition {def} compiles: {e}")),
                )
            })
            .clone()
    }

    fn check(&self, def: &str, instance: &Value) -> Option<String> {
        let validator = self.validator(def);
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .take(5)
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .collect();
        (!errors.is_empty()).then(|| format!("against {def}: {}", errors.join("; ")))
    }

    /// Judges one message the server sent. `request_method` is the method of the request a
    /// response answers (looked up by id by the caller; `None` for an unknown id).
    pub fn judge(&self, message: &Value, request_method: Option<&str>) -> Verdict {
        let method = message.get("method").and_then(Value::as_str);
        let has_id = message.get("id").is_some();
        match (method, has_id) {
            (Some(m), true) => {
                let kind = format!("request {m}");
                let problem = match self.server_requests.get(m) {
                    Some(i) => self.check(&format!("ServerRequest/oneOf/{i}"), message),
                    None => Some("unknown method: no such server request in Codex's schema".into()),
                };
                Verdict {
                    kind,
                    problem,
                    documented: false,
                }
            }
            (Some(m), false) => {
                let kind = format!("notification {m}");
                let problem = match self.server_notifications.get(m) {
                    Some(i) => self.check(&format!("ServerNotification/oneOf/{i}"), message),
                    None => {
                        Some("unknown method: no such server notification in Codex's schema".into())
                    }
                };
                Verdict {
                    kind,
                    problem,
                    documented: false,
                }
            }
            (None, _) if message.get("error").is_some() => {
                let kind = format!("error {}", request_method.unwrap_or("(no request)"));
                let problem = self.check("JSONRPCError", message);
                let documented = problem.is_some()
                    && message["id"].is_null()
                    && message["error"]["code"] == -32700
                    && self.check("JSONRPCErrorError", &message["error"]).is_none();
                Verdict {
                    kind,
                    problem,
                    documented,
                }
            }
            (None, _) => {
                let Some(m) = request_method else {
                    return Verdict {
                        kind: "response (unknown id)".into(),
                        problem: Some("a response to no request the host sent".into()),
                        documented: false,
                    };
                };
                let kind = format!("response {m}");
                let problem = self.check("JSONRPCResponse", message).or_else(|| {
                    match self.response_definition(m) {
                        Some(def) => self.check(&def, &message["result"]),
                        None => Some(format!(
                            "unknown method: Codex's schema has no response type for {m}"
                        )),
                    }
                });
                Verdict {
                    kind,
                    problem,
                    documented: false,
                }
            }
        }
    }
}

/// The tally of a judged session.
#[derive(Default)]
pub struct Tally {
    pub by_kind: BTreeMap<String, usize>,
    pub invalid: Vec<(String, Value, String)>,
    pub documented: Vec<(String, Value, String)>,
    pub total: usize,
}

impl Tally {
    pub fn add(&mut self, verdict: Verdict, message: &Value) {
        self.total += 1;
        *self.by_kind.entry(verdict.kind.clone()).or_default() += 1;
        if let Some(problem) = verdict.problem {
            let entry = (verdict.kind, message.clone(), problem);
            if verdict.documented {
                self.documented.push(entry);
            } else {
                self.invalid.push(entry);
            }
        }
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} messages judged against Codex {CODEX_VERSION}'s schema: {} valid, {} invalid, {} documented difference(s)\n",
            self.total,
            self.total - self.invalid.len() - self.documented.len(),
            self.invalid.len(),
            self.documented.len()
        );
        for (kind, n) in &self.by_kind {
            s.push_str(&format!("  {n:>4}  {kind}\n"));
        }
        for (kind, message, why) in &self.documented {
            s.push_str(&format!("documented ({kind}): {message}\n    {why}\n"));
        }
        for (kind, message, why) in &self.invalid {
            s.push_str(&format!(
                "INVALID ({kind}): {}\n    {why}\n",
                cut(&message.to_string(), 600)
            ));
        }
        s
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
