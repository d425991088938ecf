//! What a message is, by its members: the three kinds an `expect` step tells apart. The
//! framing itself is the test kit's (`authbridge_testkit::wire`).

use serde_json::Value;

/// What a message is, by its members: the three kinds an `expect` step tells apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Has `id` and `result` or `error`, no `method`.
    Response(Value),
    /// Has `method` and `id`.
    Request(String),
    /// Has `method`, no `id`.
    Notification(String),
    /// Anything else (not an object, a batch, …).
    Other,
}

/// The kind of a message (or of a pattern written like one).
pub fn kind_of(message: &Value) -> Kind {
    let Some(obj) = message.as_object() else {
        return Kind::Other;
    };
    match (obj.get("method").and_then(Value::as_str), obj.get("id")) {
        (Some(m), Some(_)) => Kind::Request(m.to_owned()),
        (Some(m), None) => Kind::Notification(m.to_owned()),
        (None, Some(id)) if obj.contains_key("result") || obj.contains_key("error") => {
            Kind::Response(id.clone())
        }
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_told_apart_by_their_members() {
        assert_eq!(
            kind_of(&json!({"id": 1, "result": {}})),
            Kind::Response(json!(1))
        );
        assert_eq!(
            kind_of(&json!({"id": 1, "method": "a"})),
            Kind::Request("a".into())
        );
        assert_eq!(
            kind_of(&json!({"method": "b", "params": {}})),
            Kind::Notification("b".into())
        );
        assert_eq!(kind_of(&json!([1])), Kind::Other);
    }
}
