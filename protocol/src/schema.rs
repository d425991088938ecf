//! JSON Schema (draft 2020-12) for every message's params and result, and one TypeScript
//! file derived from those schemas — so the TypeScript types come from the Rust types and
//! are never written by hand.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde_json::{Map, Value};

use crate::method::{NotificationMethod, RequestMethod};
use crate::{account, handshake, model, rate_limits, thread, turn};

/// The schema of one message part, e.g. `account/login/start` params.
pub struct MessageSchema {
    /// The method name.
    pub method: &'static str,
    /// `params`, `result` (requests) or `notification`.
    pub part: &'static str,
    /// Who sends it: `host` or `server`.
    pub sender: &'static str,
    pub schema: Value,
}

impl MessageSchema {
    /// The file it is written to: the method with `/` as `_`, then the part.
    pub fn file_name(&self) -> String {
        format!(
            "{}.{}.schema.json",
            self.method.replace('/', "_"),
            self.part
        )
    }
}

/// The schema of `T` as its receiver reads it: what the sender writes (serialize
/// contract, so always-present `null` fields are required) for messages the server sends,
/// what the server accepts (deserialize contract, defaults optional) for the host's.
fn schema_of<T: JsonSchema>(sender: &str) -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    let settings = if sender == "host" {
        settings.for_deserialize()
    } else {
        settings.for_serialize()
    };
    let schema = settings.into_generator().into_root_schema_for::<T>();
    serde_json::to_value(schema).expect("a schema is JSON")
}

fn other(sender: &'static str) -> &'static str {
    if sender == "host" {
        "server"
    } else {
        "host"
    }
}

fn request<M: RequestMethod>(sender: &'static str, out: &mut Vec<MessageSchema>)
where
    M::Params: JsonSchema,
    M::Result: JsonSchema,
{
    out.push(MessageSchema {
        method: M::NAME,
        part: "params",
        sender,
        schema: schema_of::<M::Params>(sender),
    });
    out.push(MessageSchema {
        method: M::NAME,
        part: "result",
        sender: other(sender),
        schema: schema_of::<M::Result>(other(sender)),
    });
}

fn notification<N: NotificationMethod>(sender: &'static str, out: &mut Vec<MessageSchema>)
where
    N::Params: JsonSchema,
{
    out.push(MessageSchema {
        method: N::NAME,
        part: "notification",
        sender,
        schema: schema_of::<N::Params>(sender),
    });
}

/// Every message of the contract.
pub fn all() -> Vec<MessageSchema> {
    let mut out = Vec::new();
    request::<handshake::Initialize>("host", &mut out);
    notification::<handshake::Initialized>("host", &mut out);
    request::<account::LoginAccount>("host", &mut out);
    request::<account::CancelLoginAccount>("host", &mut out);
    request::<account::GetAccount>("host", &mut out);
    request::<account::LogoutAccount>("host", &mut out);
    request::<account::GetAuthStatus>("host", &mut out);
    request::<account::ChatgptAuthTokensRefresh>("server", &mut out);
    notification::<account::AccountLoginCompleted>("server", &mut out);
    notification::<account::AccountUpdated>("server", &mut out);
    request::<model::ModelList>("host", &mut out);
    request::<rate_limits::GetAccountRateLimits>("host", &mut out);
    notification::<rate_limits::AccountRateLimitsUpdated>("server", &mut out);
    request::<thread::ThreadStart>("host", &mut out);
    request::<thread::ThreadRead>("host", &mut out);
    request::<thread::ThreadList>("host", &mut out);
    notification::<thread::ThreadStarted>("server", &mut out);
    notification::<thread::ThreadStatusChanged>("server", &mut out);
    notification::<thread::ThreadTokenUsageUpdated>("server", &mut out);
    notification::<thread::ErrorNotice>("server", &mut out);
    request::<turn::TurnStart>("host", &mut out);
    request::<turn::TurnInterrupt>("host", &mut out);
    notification::<turn::TurnStarted>("server", &mut out);
    notification::<turn::ItemStarted>("server", &mut out);
    notification::<turn::AgentMessageDelta>("server", &mut out);
    notification::<turn::ItemCompleted>("server", &mut out);
    notification::<turn::TurnCompleted>("server", &mut out);
    out.push(MessageSchema {
        method: "error",
        part: "object",
        sender: "either",
        schema: schema_of::<crate::ErrorObject>("server"),
    });
    out
}

/// The generated files: name → contents. Written by `authbridge schema --out DIR`.
pub fn files() -> BTreeMap<String, String> {
    let schemas = all();
    let mut files = BTreeMap::new();
    for s in &schemas {
        let mut text = serde_json::to_string_pretty(&s.schema).expect("JSON");
        text.push('\n');
        files.insert(s.file_name(), text);
    }
    files.insert("authbridge.ts".into(), typescript(&schemas));
    files
}

/// Writes every file into `dir` (created if missing); returns how many.
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let files = files();
    for (name, text) in &files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(files.len())
}

/// The TypeScript declarations of every schema and its definitions.
pub fn typescript(schemas: &[MessageSchema]) -> String {
    let mut defs: BTreeMap<String, String> = BTreeMap::new();
    let mut methods = String::new();
    for s in schemas {
        let title = s.schema["title"].as_str().unwrap_or("Unnamed").to_string();
        defs.entry(title.clone())
            .or_insert_with(|| ts_type(&s.schema));
        if let Some(Value::Object(d)) = s.schema.get("$defs") {
            for (name, schema) in d {
                defs.entry(name.clone()).or_insert_with(|| ts_type(schema));
            }
        }
        if s.method != "error" {
            methods.push_str(&format!(
                "  /** {} {} (sent by the {}) */\n  {:?}: {};\n",
                s.method,
                s.part,
                s.sender,
                format!("{}#{}", s.method, s.part),
                title
            ));
        }
    }
    let mut out = String::from(
        "// Generated by `authbridge schema --out docs/schema` from the Rust wire types.\n\
         // Do not edit: change the types in protocol/src and run the command again.\n\n",
    );
    for (name, body) in &defs {
        out.push_str(&format!("export type {name} = {body};\n\n"));
    }
    out.push_str("/** Each message part by `<method>#<part>`. */\nexport interface Messages {\n");
    out.push_str(&methods);
    out.push_str("}\n");
    out
}

fn ts_type(schema: &Value) -> String {
    let Value::Object(map) = schema else {
        return if schema == &Value::Bool(false) {
            "never".into()
        } else {
            "unknown".into()
        };
    };
    if let Some(Value::String(r)) = map.get("$ref") {
        return r.rsplit('/').next().unwrap_or("unknown").to_string();
    }
    if let Some(c) = map.get("const") {
        return c.to_string();
    }
    if let Some(Value::Array(values)) = map.get("enum") {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let mut parts = Vec::new();
    if map.contains_key("type") || map.contains_key("properties") {
        parts.push(ts_typed(map));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(options)) = map.get(key) {
            let union: Vec<String> = options.iter().map(ts_type).collect();
            parts.push(union.join(" | "));
        }
    }
    if let Some(Value::Array(all)) = map.get("allOf") {
        parts.extend(all.iter().map(ts_type));
    }
    match parts.len() {
        0 => "unknown".into(),
        1 => parts.pop().unwrap_or_default(),
        _ => parts
            .iter()
            .map(|p| paren(p))
            .collect::<Vec<_>>()
            .join(" & "),
    }
}

fn paren(t: &str) -> String {
    if t.contains(" | ") || t.contains(" & ") {
        format!("({t})")
    } else {
        t.to_string()
    }
}

fn ts_typed(map: &Map<String, Value>) -> String {
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec!["object"],
    };
    let rendered: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "string" => "string".into(),
            "integer" | "number" => "number".into(),
            "boolean" => "boolean".into(),
            "null" => "null".into(),
            "array" => {
                let item = map
                    .get("items")
                    .map(ts_type)
                    .unwrap_or_else(|| "unknown".into());
                format!("{}[]", paren(&item))
            }
            _ => ts_object(map),
        })
        .collect();
    rendered.join(" | ")
}

fn ts_object(map: &Map<String, Value>) -> String {
    let Some(Value::Object(props)) = map.get("properties") else {
        return "Record<string, never>".into();
    };
    let required: Vec<&str> = match map.get("required") {
        Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fields: Vec<String> = props
        .iter()
        .map(|(name, schema)| {
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                "?"
            };
            format!("{name}{optional}: {}", ts_type(schema))
        })
        .collect();
    format!("{{ {} }}", fields.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_its_parts_and_a_draft_2020_12_schema() {
        let all = all();
        assert_eq!(all.len(), 42);
        for s in &all {
            assert_eq!(
                s.schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema",
                "{}",
                s.file_name()
            );
        }
    }

    #[test]
    fn typescript_renders_unions_options_and_literals() {
        let ts = typescript(&all());
        assert!(
            ts.contains("export type AuthMode = \"apikey\" | \"chatgpt\" | \"chatgptAuthTokens\";"),
            "{ts}"
        );
        assert!(ts.contains("planType: PlanType | null"), "{ts}");
        assert!(ts.contains("email: string | null"), "{ts}");
        assert!(
            ts.contains(
                "\"account/chatgptAuthTokens/refresh#params\": ChatgptAuthTokensRefreshParams;"
            ),
            "{ts}"
        );
    }
}
