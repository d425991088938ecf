//! The checks the fuzz targets run on one input, shared with `app-server/tests/fuzz_corpus.rs`
//! (which replays the committed corpus through the same functions under `cargo test`).
//!
//! Each function panics when an invariant breaks; returning is a pass.

use std::sync::Arc;
use std::time::Duration;

use authbridge_app_server::config::Config;
use authbridge_app_server::peer::{
    serve, DispatchKind, PeerConfig, PeerHandle, RequestContext, Service,
};
use authbridge_app_server::provider::SseParser;
use authbridge_auth_core::decode_jwt_claims;
use authbridge_auth_core::store::file::AuthFile;
use authbridge_protocol::jsonrpc::Message;
use authbridge_protocol::ErrorObject;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fuzz targets, by name (the directory names under `fuzz/corpus/`).
pub const TARGETS: [&str; 6] = [
    "message_parse",
    "framing",
    "jwt_claims",
    "auth_json",
    "config",
    "sse",
];

/// Runs the check of `target` on `data`.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "message_parse" => message_parse(data),
        "framing" => framing(data),
        "jwt_claims" => jwt_claims(data),
        "auth_json" => auth_json(data),
        "config" => config(data),
        "sse" => sse(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// Classifying any bytes as a JSON-RPC message never panics, and a message that parses
/// serialises and parses again.
pub fn message_parse(data: &[u8]) {
    if let Ok(parsed) = Message::parse(data) {
        let again = parsed.message.to_vec(parsed.has_jsonrpc);
        assert!(
            Message::parse(&again).is_ok(),
            "a re-serialised message does not parse"
        );
    }
}

/// Any text either decodes into claims or gives an error naming a part; never a panic, and
/// the error text never quotes the token.
pub fn jwt_claims(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    if let Err(e) = decode_jwt_claims(&token) {
        let text = e.to_string();
        assert!(text.len() < 80, "an over-long JWT error: {text}");
    }
}

/// Any bytes either deserialise as `auth.json` (the same serde step `store::file::read`
/// runs) or fail; a file that parses yields its credentials and writes back to JSON that
/// parses to the same credentials' kind.
pub fn auth_json(data: &[u8]) {
    if let Ok(file) = serde_json::from_slice::<AuthFile>(data) {
        let creds = file.credentials();
        let again = serde_json::to_vec(&file).expect("an AuthFile serialises");
        let reparsed: AuthFile =
            serde_json::from_slice(&again).expect("a written auth.json parses");
        assert_eq!(
            reparsed.credentials().map(|c| format!("{:?}", c.mode())),
            creds.map(|c| format!("{:?}", c.mode())),
            "the credentials changed kind through a write and a read"
        );
    }
}

/// Any config text either loads or gives an error; never a panic.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(table) = text.parse::<toml::Table>() {
            let _ = Config::from_table(table);
        }
    }
}

/// SSE: the first byte picks chunk sizes; the events (and the size error) are the same
/// whether the rest arrives whole or in those chunks. A small limit exercises the bound.
pub fn sse(data: &[u8]) {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let limit = 64 + usize::from(seed) * 4;
    let mut whole = SseParser::with_limit(limit);
    let expected = whole.push(body);
    let mut split = SseParser::with_limit(limit);
    let mut got = Vec::new();
    for chunk in chunks(body, seed) {
        got.extend(split.push(chunk));
    }
    assert_eq!(got, expected, "splitting changed the events");
    assert_eq!(
        split.error(),
        whole.error(),
        "splitting changed the size error"
    );
}

/// Cuts `data` into chunks whose sizes follow from `seed` (1..=16 bytes, varying).
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut state = u32::from(seed) | 1;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (((state >> 16) % 16) as usize + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// Framing and classification through the real peer: the first byte picks chunk sizes; the
/// rest is the host's byte stream. The peer must finish after end of input (no hang), and
/// the set of messages it answers with is the same whether the stream arrives whole or in
/// chunks.
pub fn framing(data: &[u8]) {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = run_peer(&[body]);
    let split = run_peer(&chunks(body, seed));
    assert_eq!(split, whole, "splitting the input changed the answers");
}

/// A service that answers every request with `null`.
struct Echo;

#[async_trait::async_trait]
impl Service for Echo {
    fn dispatch_kind(&self, method: &str) -> DispatchKind {
        if method == "barrier" {
            DispatchKind::Barrier
        } else {
            DispatchKind::Concurrent
        }
    }

    async fn handle_request(
        &self,
        _ctx: RequestContext,
        _method: String,
        _params: Option<Box<RawValue>>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        Ok(RawValue::from_string("null".into()).expect("null is JSON"))
    }

    async fn handle_notification(
        &self,
        _peer: PeerHandle,
        _method: String,
        _params: Option<Box<RawValue>>,
    ) {
    }
}

/// Feeds `chunks` to a fresh peer, closes the input, and returns its answers split into
/// messages and sorted (concurrent requests may answer in any order).
pub fn run_peer(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let output = rt.block_on(async {
        let (mut host_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, mut host_out) = tokio::io::duplex(1 << 16);
        let config = PeerConfig {
            max_message_bytes: 256,
            max_in_flight_requests: 1024,
            shutdown_grace: Duration::from_millis(200),
            ..PeerConfig::default()
        };
        let server = tokio::spawn(serve(server_in, server_out, Arc::new(Echo), config));
        let owned: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let feeder = tokio::spawn(async move {
            for chunk in owned {
                if host_in.write_all(&chunk).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            let _ = host_in.shutdown().await;
        });
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), host_out.read_to_end(&mut out));
        read.await
            .expect("the peer did not finish after end of input")
            .expect("read");
        let result = server.await.expect("the peer panicked");
        assert!(result.is_ok(), "the peer failed: {result:?}");
        feeder.await.expect("feeder");
        out
    });
    let mut messages = split_output(&output);
    messages.sort();
    messages
}

/// Splits the peer's output into messages (lines, or `Content-Length` frames).
fn split_output(out: &[u8]) -> Vec<Vec<u8>> {
    if !out.starts_with(b"Content-Length") {
        return out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
    }
    let mut messages = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block ends in a blank line");
        let header = std::str::from_utf8(&rest[..end]).expect("headers are ASCII");
        let len: usize = header
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("a Content-Length header")
            .trim()
            .parse()
            .expect("a length");
        let body = &rest[end + 4..end + 4 + len];
        messages.push(body.to_vec());
        rest = &rest[end + 4 + len..];
    }
    messages
}
