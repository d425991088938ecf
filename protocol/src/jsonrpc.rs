//! The JSON-RPC envelope: ids, the three message kinds, the error object, and the
//! classification of one incoming frame in a single parse.
//!
//! Params and results travel as [`RawValue`]: the envelope is parsed once, and each
//! handler decodes its own params straight from the raw text.

use serde::de::{Deserializer, IgnoredAny};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Standard and authbridge error codes (docs/protocol.md §1.3).
pub mod codes {
    /// Not JSON, not UTF-8, or a malformed header block.
    pub const PARSE_ERROR: i64 = -32700;
    /// Valid JSON that is not a valid message, or refused by the session state or policy.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Params that do not match the method's schema.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal failure (credential store I/O, corrupt `auth.json`, ...).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Credentials are required and absent.
    pub const AUTH_REQUIRED: i64 = -32000;
    /// Too many requests in flight.
    pub const SERVER_OVERLOADED: i64 = -32001;
}

/// A request id: an integer (i64) or a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RequestId {
    Integer(i64),
    String(String),
}

/// For logs and error text: a string id is quoted and cut to [`MAX_QUOTED_CHARS`]
/// characters (a response still carries the whole id; only its display is cut).
impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Integer(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{:?}", quoted(s)),
        }
    }
}

/// The most characters of input an error message (or a log line) quotes.
pub const MAX_QUOTED_CHARS: usize = 200;

/// `input` cut to [`MAX_QUOTED_CHARS`] characters, with `…` when something was cut.
pub fn quoted(input: &str) -> std::borrow::Cow<'_, str> {
    match input.char_indices().nth(MAX_QUOTED_CHARS) {
        None => std::borrow::Cow::Borrowed(input),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &input[..end])),
    }
}

/// Cuts every quoted run (between a pair of `` ` `` or `"`) longer than
/// [`MAX_QUOTED_CHARS`] characters in a message that quotes input, such as a serde error
/// (`unknown variant `…``). Text outside quotes is kept; the result stays readable.
pub fn bound_quotes(message: &str) -> String {
    if message.chars().count() <= MAX_QUOTED_CHARS {
        return message.to_string();
    }
    let mut out = String::with_capacity(MAX_QUOTED_CHARS * 2);
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let mark = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let close = rest.find(mark).unwrap_or(rest.len());
        out.push_str(&quoted(&rest[..close]));
        rest = &rest[close..];
        if let Some(after) = rest.strip_prefix(mark) {
            out.push(mark);
            rest = after;
        }
    }
    out.push_str(&quoted(rest));
    out
}

/// A serde message without the value it quotes: "invalid type: string \"…\", expected
/// u64" becomes "invalid type, expected u64" (the value can be a token).
pub fn serde_message_without_value(message: &str) -> String {
    let quotes_a_value = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix));
    if !quotes_a_value {
        return bound_quotes(message);
    }
    let kind = message.split(':').next().unwrap_or(message);
    match message.rfind(", expected ") {
        Some(pos) => bound_quotes(&format!("{kind}{}", &message[pos..])),
        None => kind.to_string(),
    }
}

/// The JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    pub fn parse_error(why: impl std::fmt::Display) -> Self {
        Self::new(codes::PARSE_ERROR, format!("Parse error: {why}"))
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message)
    }
    /// `Method not found: <method>`, the method cut to [`MAX_QUOTED_CHARS`] characters.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("Method not found: {}", quoted(method)),
        )
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message)
    }
    pub fn overloaded() -> Self {
        Self::new(codes::SERVER_OVERLOADED, "Server overloaded; retry later.")
    }
    pub fn auth_required() -> Self {
        Self::new(
            codes::AUTH_REQUIRED,
            "authentication required: log in with account/login/start",
        )
        .with_data(serde_json::json!({"reason": "authRequired"}))
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code={} message={}", self.code, self.message)
    }
}

/// A request: it has an id and expects exactly one response.
#[derive(Clone, Debug)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

/// A notification: a method call without an id; nothing answers it.
#[derive(Clone, Debug)]
pub struct Notification {
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

/// A response: the result or the error of the request with this id. The id is `None`
/// only for errors about a message whose id could not be read (JSON `null`).
#[derive(Clone, Debug)]
pub struct Response {
    pub id: Option<RequestId>,
    pub result: Result<Box<RawValue>, ErrorObject>,
}

impl Response {
    pub fn ok(id: RequestId, result: Box<RawValue>) -> Self {
        Response {
            id: Some(id),
            result: Ok(result),
        }
    }
    pub fn error(id: Option<RequestId>, error: ErrorObject) -> Self {
        Response {
            id,
            result: Err(error),
        }
    }
}

/// One JSON-RPC message.
#[derive(Clone, Debug)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// A frame that parsed, with whether it carried the `"jsonrpc"` member.
#[derive(Debug)]
pub struct Parsed {
    pub message: Message,
    pub has_jsonrpc: bool,
}

/// Why a frame is not a message; turns into the error response to send back — unless
/// it is a malformed *response* (`response`), which is never answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    /// The id, when the frame had a readable one (so the error can answer it).
    pub id: Option<RequestId>,
    pub error: ErrorObject,
    /// Whether the frame carried `"jsonrpc"` (it still counts for dialect mirroring).
    pub has_jsonrpc: bool,
    /// The frame is an object with `result` or `error` and no `method`: a response that
    /// is malformed. It must not be replied to; `error.message` says what is wrong
    /// (without quoting values) and `id` is the request it answers, if readable.
    pub response: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "present")]
    jsonrpc: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    method: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Box<RawValue>>,
}

/// The text of a serde_json error without its " at line L column C" suffix.
pub fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_string(),
        None => text,
    }
}

fn parse_id(raw: &RawValue) -> Result<Option<RequestId>, ()> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    match serde_json::from_str::<RequestId>(text) {
        Ok(id) => Ok(Some(id)),
        Err(_) => Err(()),
    }
}

impl Message {
    /// Classifies one frame (docs/protocol.md §1.1, §1.3). Not JSON or not UTF-8 → -32700;
    /// a batch, a non-object or an object that is no message → -32600.
    pub fn parse(bytes: &[u8]) -> Result<Parsed, Invalid> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        let invalid = |error: ErrorObject| Invalid {
            id: None,
            error,
            has_jsonrpc: false,
            response: false,
        };
        if first != Some(b'{') {
            return Err(match serde_json::from_slice::<IgnoredAny>(bytes) {
                Err(e) => invalid(ErrorObject::parse_error(serde_message(&e))),
                Ok(_) if first == Some(b'[') => invalid(ErrorObject::invalid_request(
                    "Invalid request: batches are not supported",
                )),
                Ok(_) => invalid(ErrorObject::invalid_request(
                    "Invalid request: a message must be a JSON object",
                )),
            });
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            let error = if e.is_data() {
                ErrorObject::invalid_request(format!("Invalid request: {}", serde_message(&e)))
            } else {
                ErrorObject::parse_error(serde_message(&e))
            };
            invalid(error)
        })?;
        let has_jsonrpc = env.jsonrpc.is_some();
        let response = env.method.is_none() && (env.result.is_some() || env.error.is_some());
        let id = match env.id.as_deref().map(parse_id) {
            None => None,
            Some(Ok(id)) => id,
            Some(Err(())) => {
                return Err(Invalid {
                    id: None,
                    error: ErrorObject::invalid_request(
                        "Invalid request: `id` must be an integer or a string",
                    ),
                    has_jsonrpc,
                    response,
                })
            }
        };
        let fail = |why: &str| Invalid {
            id: id.clone(),
            error: ErrorObject::invalid_request(format!("Invalid request: {why}")),
            has_jsonrpc,
            response,
        };
        if let Some(method) = env.method {
            let method: String = serde_json::from_str(method.get())
                .map_err(|_| fail("`method` must be a string"))?;
            if env.result.is_some() || env.error.is_some() {
                return Err(fail(
                    "a message cannot have both `method` and `result`/`error`",
                ));
            }
            let params = env.params.filter(|p| p.get() != "null");
            let message = match (env.id.is_some(), id.clone()) {
                (false, _) => Message::Notification(Notification { method, params }),
                (true, Some(id)) => Message::Request(Request { id, method, params }),
                (true, None) => return Err(fail("`id` must be an integer or a string")),
            };
            return Ok(Parsed {
                message,
                has_jsonrpc,
            });
        }
        let result =
            match (env.result, env.error) {
                (Some(r), None) => Ok(r),
                (None, Some(e)) => Err(decode_error_object(e.get()).map_err(|why| {
                    fail(&format!(
                        "`error` must be an object with `code` and `message` ({why})"
                    ))
                })?),
                (Some(_), Some(_)) => {
                    return Err(fail("a response cannot have both `result` and `error`"))
                }
                (None, None) => return Err(fail(
                    "not a request, notification or response (no `method`, `result` or `error`)",
                )),
            };
        if env.id.is_none() {
            return Err(fail("a response must have an `id`"));
        }
        Ok(Parsed {
            message: Message::Response(Response { id, result }),
            has_jsonrpc,
        })
    }

    /// Serialises the message as one JSON object, with `"jsonrpc":"2.0"` when asked.
    pub fn to_vec(&self, with_jsonrpc: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out, with_jsonrpc);
        out
    }

    /// Appends the serialised message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>, with_jsonrpc: bool) {
        let wire = Wire {
            message: self,
            with_jsonrpc,
        };
        serde_json::to_writer(out, &wire).expect("serialising a message to memory cannot fail");
    }
}

struct Wire<'a> {
    message: &'a Message,
    with_jsonrpc: bool,
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if self.with_jsonrpc {
            map.serialize_entry("jsonrpc", "2.0")?;
        }
        match self.message {
            Message::Request(r) => {
                map.serialize_entry("id", &r.id)?;
                map.serialize_entry("method", &r.method)?;
                if let Some(p) = &r.params {
                    map.serialize_entry("params", p)?;
                }
            }
            Message::Notification(n) => {
                map.serialize_entry("method", &n.method)?;
                if let Some(p) = &n.params {
                    map.serialize_entry("params", p)?;
                }
            }
            Message::Response(r) => {
                map.serialize_entry("id", &r.id)?;
                match &r.result {
                    Ok(v) => map.serialize_entry("result", v)?,
                    Err(e) => map.serialize_entry("error", e)?,
                }
            }
        }
        map.end()
    }
}

/// Decodes a host's error object; the error says what is wrong without quoting a value.
fn decode_error_object(text: &str) -> Result<ErrorObject, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let what = serde_message_without_value(&serde_message(e.inner()));
        if path == "." {
            what
        } else {
            format!("{what} at `{}`", quoted(&path))
        }
    })
}

/// Decodes a method's params: absent or `null` params read as `{}` (so a params type
/// whose fields are all optional accepts them), or as `null` for unit-like types.
/// The error is the serde message naming the field, without a position suffix.
pub fn decode_params<P: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Result<P, String> {
    match raw {
        Some(raw) if raw.get() != "null" => decode_naming_path(raw.get()),
        _ => decode_naming_path("{}").or_else(|e| decode_naming_path("null").map_err(|_| e)),
    }
}

/// Decodes `text`; an error names where it happened (`model: invalid type: ...`) unless
/// serde's message already does (`missing field `x``).
fn decode_naming_path<P: serde::de::DeserializeOwned>(text: &str) -> Result<P, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // Both the path (map keys) and the message (values) can quote input: cut them.
        let path = e.path().to_string();
        let message = bound_quotes(&serde_message(e.inner()));
        if path == "." {
            message
        } else {
            format!("{}: {message}", quoted(&path))
        }
    })
}

/// Serialises a value to a raw JSON value (for params and results).
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("protocol types always serialise")
}

#[cfg(test)]
#[path = "jsonrpc_tests.rs"]
mod tests;
