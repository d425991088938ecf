//! A loopback HTTP server for the provider tests: records each request and answers with a
//! closure's reply; plus the helpers the tests share.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{ProviderAuth, ProviderClient, ProviderError, ProviderTimeouts, TurnEvent};

pub(super) const TOKEN: &str = "sk-test-secret-token-0123456789";
pub(super) const IDLE: Duration = Duration::from_millis(300);

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) authorization: Option<String>,
    pub(super) accept: Option<String>,
    pub(super) account_id: Option<String>,
    pub(super) body: Option<Value>,
}

pub(super) type Reply = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;

pub(super) struct Server {
    pub(super) base: String,
    pub(super) seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub(super) async fn start(reply: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state: (Reply, Arc<Mutex<Vec<Seen>>>) = (Arc::new(reply), seen.clone());
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { base, seen }
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub(super) async fn handle(
    State((reply, seen)): State<(Reply, Arc<Mutex<Vec<Seen>>>)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    let request = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization: header("authorization"),
        accept: header("accept"),
        account_id: header("chatgpt-account-id"),
        body: serde_json::from_slice(&body).ok(),
    };
    seen.lock().unwrap().push(request.clone());
    reply(&request)
}

pub(super) fn reply(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

/// An SSE reply sent in these chunks, 2 ms apart.
pub(super) fn sse(chunks: Vec<String>) -> Response {
    let stream = futures_util::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, Infallible>(Bytes::from(chunk))
    });
    reply(200, "text/event-stream", Body::from_stream(stream))
}

/// An SSE reply sent as one chunk per event.
pub(super) fn sse_events(events: &[Value]) -> Response {
    sse(events.iter().map(|e| format!("data: {e}\n\n")).collect())
}

pub(super) fn delta(text: &str) -> Value {
    json!({"type": "response.output_text.delta", "delta": text})
}

pub(super) fn completed() -> Value {
    json!({"type": "response.completed", "response": {"id": "resp_1"}})
}

pub(super) fn client() -> ProviderClient {
    ProviderClient::new(ProviderTimeouts {
        connect: Duration::from_secs(5),
        stream_idle: IDLE,
    })
}

pub(super) fn auth() -> Option<ProviderAuth<'static>> {
    Some(ProviderAuth {
        bearer: TOKEN,
        account_id: Some("acct-1"),
    })
}

/// Every test ends within 10 s.
pub(super) async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test timed out")
}

/// Starts a response and collects events until the first error or `Ok(None)`.
pub(super) async fn run(
    server: &Server,
    auth: Option<ProviderAuth<'_>>,
) -> Vec<Result<Option<TurnEvent>, ProviderError>> {
    let mut stream = match client()
        .start_response(
            &server.base,
            auth,
            &super::ResponsesRequest::text("gpt-5", "hi"),
        )
        .await
    {
        Ok(stream) => stream,
        Err(e) => return vec![Err(e)],
    };
    let mut out = Vec::new();
    loop {
        let next = stream.next_event().await;
        let end = !matches!(next, Ok(Some(_)));
        out.push(next);
        if end {
            return out;
        }
    }
}

/// A loopback URL nothing listens on.
pub(super) async fn refused_base() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    base
}
