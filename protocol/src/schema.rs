//! JSON Schema (draft 2020-12) for every message's params and result, and one TypeScript
//! file derived from those schemas — so the TypeScript types come from the Rust types and
//! are never written by hand.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde_json::Value;

use crate::method::{NotificationMethod, RequestMethod};
pub use crate::typescript::typescript;
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
/// shape, so always-present `null` fields are required) for messages the server sends,
/// what the server accepts (deserialize shape, defaults optional) for the host's.
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

/// Every message of docs/protocol.md.
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
    notification::<account::Warning>("server", &mut out);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_its_parts_and_a_draft_2020_12_schema() {
        let all = all();
        assert_eq!(all.len(), 43);
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
