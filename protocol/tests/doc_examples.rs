//! Every example message in `docs/protocol.md` is a valid message and matches the schema
//! of the method it belongs to.

use std::collections::HashMap;
use std::path::Path;

use authbridge_protocol::jsonrpc::{Message, RequestId};
use authbridge_protocol::schema;
use serde_json::Value;

/// The `json` fenced blocks of a Markdown text.
fn json_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```json") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.push(current.take().unwrap()),
            (Some(buf), _) => {
                buf.push_str(line);
                buf.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn validator(method: &str, part: &str) -> jsonschema::Validator {
    let all = schema::all();
    let s = all
        .iter()
        .find(|s| s.method == method && s.part == part)
        .unwrap_or_else(|| panic!("no schema for {method} {part}"));
    jsonschema::validator_for(&s.schema).expect("the schema compiles")
}

#[test]
fn every_example_in_docs_protocol_md_matches_its_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let blocks = json_blocks(&text);
    assert!(blocks.len() >= 30, "only {} examples found", blocks.len());
    let mut methods: HashMap<RequestId, String> = HashMap::new();
    for block in blocks {
        let parsed = Message::parse(block.as_bytes())
            .unwrap_or_else(|e| panic!("example is not a message: {block}\n{e:?}"));
        let value: Value = serde_json::from_str(&block).unwrap();
        let (method, part, instance) = match parsed.message {
            Message::Request(r) => {
                methods.insert(r.id.clone(), r.method.clone());
                (
                    r.method,
                    "params",
                    value.get("params").cloned().unwrap_or(Value::Null),
                )
            }
            Message::Notification(n) => (
                n.method,
                "notification",
                value
                    .get("params")
                    .cloned()
                    .unwrap_or(serde_json::json!({})),
            ),
            Message::Response(r) => match r.result {
                Ok(_) => {
                    let id = r.id.expect("a result has an id");
                    let method = methods
                        .get(&id)
                        .unwrap_or_else(|| panic!("result {block} follows no request with its id"))
                        .clone();
                    (method, "result", value["result"].clone())
                }
                Err(_) => ("error".to_string(), "object", value["error"].clone()),
            },
        };
        let v = validator(&method, part);
        let errors: Vec<String> = v.iter_errors(&instance).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{method} {part} example {block} does not match: {errors:?}"
        );
    }
}
