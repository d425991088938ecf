//! Tests of the provider client against a real HTTP server on 127.0.0.1.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{ProviderAuth, ProviderClient, ProviderError, ProviderTimeouts, TurnEvent};

const TOKEN: &str = "sk-test-secret-token-0123456789";
const IDLE: Duration = Duration::from_millis(300);

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    accept: Option<String>,
    account_id: Option<String>,
    body: Option<Value>,
}

type Reply = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(reply: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state: (Reply, Arc<Mutex<Vec<Seen>>>) = (Arc::new(reply), seen.clone());
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
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

fn reply(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

/// An SSE reply sent in these chunks, 2 ms apart.
fn sse(chunks: Vec<String>) -> Response {
    let stream = futures_util::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, Infallible>(Bytes::from(chunk))
    });
    reply(200, "text/event-stream", Body::from_stream(stream))
}

/// An SSE reply sent as one chunk per event.
fn sse_events(events: &[Value]) -> Response {
    sse(events.iter().map(|e| format!("data: {e}\n\n")).collect())
}

fn delta(text: &str) -> Value {
    json!({"type": "response.output_text.delta", "delta": text})
}

fn completed() -> Value {
    json!({"type": "response.completed", "response": {"id": "resp_1"}})
}

fn client() -> ProviderClient {
    ProviderClient::new(ProviderTimeouts {
        connect: Duration::from_secs(5),
        stream_idle: IDLE,
    })
}

fn auth() -> Option<ProviderAuth<'static>> {
    Some(ProviderAuth {
        bearer: TOKEN,
        account_id: Some("acct-1"),
    })
}

/// Every test ends within 10 s.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test timed out")
}

/// Starts a response and collects events until the first error or `Ok(None)`.
async fn run(
    server: &Server,
    auth: Option<ProviderAuth<'_>>,
) -> Vec<Result<Option<TurnEvent>, ProviderError>> {
    let mut stream = match client()
        .start_response(&server.base, auth, "gpt-5", "hi")
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

#[tokio::test]
async fn deltas_then_completed_arrive_in_order_with_the_headers_and_body_sent() {
    within(async {
        let stream = "data: {\"type\":\"response.created\"}\n\n\
            data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hel\"}\r\n\r\n\
            data: {\"type\":\"response.output_text.delta\",\"delta\":\"lo\"}\n\n\
            data: {\"type\":\"response.completed\",\"response\":{}}\n\n";
        // Chunks of 7 bytes: events and lines split everywhere.
        let chunks: Vec<String> = stream
            .as_bytes()
            .chunks(7)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let server = Server::start(move |_| sse(chunks.clone())).await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("Hel".into()))),
                Ok(Some(TurnEvent::Delta("lo".into()))),
                Ok(Some(TurnEvent::Completed)),
                Ok(None),
            ]
        );
        assert_eq!(
            server.seen(),
            vec![Seen {
                method: "POST".into(),
                path: "/v1/responses".into(),
                authorization: Some(format!("Bearer {TOKEN}")),
                accept: Some("text/event-stream".into()),
                account_id: Some("acct-1".into()),
                body: Some(json!({"model": "gpt-5", "input": "hi", "stream": true})),
            }]
        );
    })
    .await
}

#[tokio::test]
async fn without_auth_no_authorization_or_account_header_is_sent() {
    within(async {
        let server = Server::start(|_| sse_events(&[completed()])).await;
        let base = format!("{}/", server.base);
        let mut stream = client()
            .start_response(&base, None, "m", "x")
            .await
            .unwrap();
        assert_eq!(stream.next_event().await, Ok(Some(TurnEvent::Completed)));
        let seen = server.seen();
        assert_eq!(
            (
                seen[0].path.as_str(),
                &seen[0].authorization,
                &seen[0].account_id
            ),
            ("/v1/responses", &None, &None)
        );
    })
    .await
}

#[tokio::test]
async fn unknown_events_done_and_anything_after_completed_are_ignored() {
    within(async {
        let server = Server::start(|_| {
            sse(vec![
                ": comment\n\n".into(),
                "event: response.output_text.delta\ndata: {\"delta\":\"by event line\"}\n\n".into(),
                "data: {\"type\":\"response.in_progress\"}\n\n".into(),
                "data: [DONE]\n\n".into(),
                format!("data: {}\n\n", completed()),
                format!("data: {}\n\n", delta("late")),
            ])
        })
        .await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("by event line".into()))),
                Ok(Some(TurnEvent::Completed)),
                Ok(None),
            ]
        );
    })
    .await
}

#[tokio::test]
async fn response_failed_fails_with_the_providers_message() {
    within(async {
        let failed = json!({"type": "response.failed", "response": {"error": {"message": "model overloaded"}}});
        let server = Server::start(move |_| sse_events(&[delta("a"), failed.clone()])).await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("a".into()))),
                Err(ProviderError::Failed("model overloaded".into())),
            ]
        );
    })
    .await
}

#[tokio::test]
async fn an_error_event_fails_with_its_message_and_keeps_failing() {
    within(async {
        let error = json!({"type": "error", "message": "rate limited"});
        let server = Server::start(move |_| sse_events(std::slice::from_ref(&error))).await;
        let mut stream = client()
            .start_response(&server.base, auth(), "m", "x")
            .await
            .unwrap();
        let expected = Err(ProviderError::Failed("rate limited".into()));
        assert_eq!(stream.next_event().await, expected);
        assert_eq!(stream.next_event().await, expected);
    })
    .await
}

#[tokio::test]
async fn a_stream_that_ends_before_completed_fails() {
    within(async {
        let server = Server::start(|_| sse_events(&[delta("partial")])).await;
        assert_eq!(
            run(&server, auth()).await,
            vec![
                Ok(Some(TurnEvent::Delta("partial".into()))),
                Err(ProviderError::Failed(
                    "stream ended before response.completed".into()
                )),
            ]
        );
    })
    .await
}

#[tokio::test]
async fn a_stalled_stream_fails_as_transport_within_the_idle_timeout() {
    within(async {
        let server = Server::start(|_| {
            let first = format!("data: {}\n\n", delta("then silence"));
            let stream = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from(first))])
                .chain(futures_util::stream::pending());
            reply(200, "text/event-stream", Body::from_stream(stream))
        })
        .await;
        let mut stream = client()
            .start_response(&server.base, auth(), "m", "x")
            .await
            .unwrap();
        assert_eq!(
            stream.next_event().await,
            Ok(Some(TurnEvent::Delta("then silence".into())))
        );
        let started = Instant::now();
        assert_eq!(
            stream.next_event().await,
            Err(ProviderError::Transport(
                "provider stream idle for 300ms".into()
            ))
        );
        let waited = started.elapsed();
        assert!(waited >= IDLE && waited < IDLE * 3, "waited {waited:?}");
    })
    .await
}

#[tokio::test]
async fn a_401_with_a_json_body_is_unauthorized_with_its_message() {
    within(async {
        let server = Server::start(|_| {
            reply(
                401,
                "application/json",
                r#"{"error":{"message":"token expired","code":"expired"}}"#,
            )
        })
        .await;
        let result = client()
            .start_response(&server.base, auth(), "m", "x")
            .await;
        let error = result.err().unwrap();
        assert_eq!(
            error,
            ProviderError::Unauthorized {
                message: "token expired".into()
            }
        );
        assert_eq!(error.http_status(), Some(401));
    })
    .await
}

#[tokio::test]
async fn a_401_without_json_uses_the_generic_wording() {
    within(async {
        let server = Server::start(|_| reply(401, "text/plain", "nope")).await;
        let result = client().list_models(&server.base, auth()).await;
        assert_eq!(
            result,
            Err(ProviderError::Unauthorized {
                message: "provider returned HTTP 401: nope".into()
            })
        );
    })
    .await
}

#[tokio::test]
async fn a_500_with_html_is_http_with_the_first_200_bytes() {
    within(async {
        let html = format!("<html><body>{}</body></html>", "x".repeat(500));
        let body = html.clone();
        let server = Server::start(move |_| reply(500, "text/html", body.clone())).await;
        let result = client()
            .start_response(&server.base, auth(), "m", "x")
            .await;
        let error = result.err().unwrap();
        assert_eq!(
            error,
            ProviderError::Http {
                status: 500,
                message: format!("provider returned HTTP 500: {}", &html[..200]),
            }
        );
        assert_eq!(error.http_status(), Some(500));
    })
    .await
}

#[tokio::test]
async fn a_429_with_a_json_error_uses_its_message() {
    within(async {
        let server = Server::start(|_| {
            reply(
                429,
                "application/json",
                r#"{"error":{"message":"slow down"}}"#,
            )
        })
        .await;
        assert_eq!(
            client().list_models(&server.base, auth()).await,
            Err(ProviderError::Http {
                status: 429,
                message: "slow down".into()
            })
        );
    })
    .await
}

#[tokio::test]
async fn list_models_returns_the_ids_and_sends_the_auth_headers() {
    within(async {
        let server = Server::start(|_| {
            reply(
                200,
                "application/json",
                r#"{"object":"list","data":[{"id":"gpt-5","object":"model"},{"id":"gpt-5-mini"}]}"#,
            )
        })
        .await;
        let base = format!("{}//", server.base);
        assert_eq!(
            client().list_models(&base, auth()).await,
            Ok(vec!["gpt-5".to_string(), "gpt-5-mini".to_string()])
        );
        assert_eq!(
            server.seen(),
            vec![Seen {
                method: "GET".into(),
                path: "/v1/models".into(),
                authorization: Some(format!("Bearer {TOKEN}")),
                accept: Some("application/json".into()),
                account_id: Some("acct-1".into()),
                body: None,
            }]
        );
    })
    .await
}

#[tokio::test]
async fn list_models_with_an_unexpected_body_is_an_invalid_response() {
    within(async {
        let server = Server::start(|_| reply(200, "application/json", r#"{"models":[]}"#)).await;
        let error = client()
            .list_models(&server.base, None)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, ProviderError::InvalidResponse(m)
                if m.starts_with("provider returned an invalid model list")),
            "{error:?}"
        );
    })
    .await
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    within(async {
        let server = Server::start(|seen| {
            if seen.path == "/elsewhere" {
                return sse_events(&[completed()]);
            }
            Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header("location", "/elsewhere")
                .body(Body::empty())
                .unwrap()
        })
        .await;
        let result = client()
            .start_response(&server.base, auth(), "m", "x")
            .await;
        assert_eq!(
            result.err(),
            Some(ProviderError::Http {
                status: 307,
                message: "provider returned HTTP 307: ".into()
            })
        );
        let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, vec!["/v1/responses".to_string()]);
    })
    .await
}

#[tokio::test]
async fn error_messages_never_contain_the_bearer_token() {
    within(async {
        // A provider that echoes the Authorization header back in every error.
        let server = Server::start(|seen| {
            let echoed = seen.authorization.clone().unwrap_or_default();
            match seen.path.as_str() {
                "/v1/models" => reply(401, "text/plain", format!("bad credentials: {echoed}")),
                _ => reply(
                    403,
                    "application/json",
                    json!({"error": {"message": echoed}}).to_string(),
                ),
            }
        })
        .await;
        let unauthorized = client()
            .list_models(&server.base, auth())
            .await
            .err()
            .unwrap();
        assert_eq!(
            unauthorized,
            ProviderError::Unauthorized {
                message: "provider returned HTTP 401: bad credentials: Bearer <redacted>".into()
            }
        );
        let forbidden = client()
            .start_response(&server.base, auth(), "m", "x")
            .await
            .err()
            .unwrap();
        assert_eq!(
            forbidden,
            ProviderError::Http {
                status: 403,
                message: "Bearer <redacted>".into()
            }
        );
        let refused = client()
            .list_models(&refused_base().await, auth())
            .await
            .err()
            .unwrap();
        for text in [
            unauthorized.to_string(),
            format!("{unauthorized:?}"),
            forbidden.to_string(),
            refused.to_string(),
            format!("{:?}", auth().unwrap()),
        ] {
            assert!(!text.contains(TOKEN), "token leaked in {text:?}");
        }
    })
    .await
}

/// A loopback URL nothing listens on.
async fn refused_base() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    base
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_naming_the_url() {
    within(async {
        let base = refused_base().await;
        let error = client()
            .start_response(&base, auth(), "m", "x")
            .await
            .err()
            .unwrap();
        let prefix = format!("could not connect to the provider at {base}/responses: ");
        assert!(
            matches!(&error, ProviderError::Transport(m) if m.starts_with(&prefix)),
            "{error:?}"
        );
        assert_eq!(error.http_status(), None);
    })
    .await
}

#[tokio::test]
async fn the_http_client_is_built_on_first_use_not_at_construction() {
    within(async {
        let client = client();
        assert!(format!("{client:?}").contains("built: false"));
        let _ = client.list_models(&refused_base().await, None).await;
        assert!(format!("{client:?}").contains("built: true"));
    })
    .await
}
