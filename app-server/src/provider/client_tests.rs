//! Tests of the provider client's requests against a real HTTP server on 127.0.0.1: headers,
//! status handling and wording, redirects, connection errors, and no token in any error.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::test_server::*;
use super::{ProviderClient, ProviderError, ProviderTimeouts, ResponsesRequest, TurnEvent};

#[tokio::test]
async fn without_auth_no_authorization_or_account_header_is_sent() {
    within(async {
        let server = Server::start(|_| sse_events(&[completed()])).await;
        let base = format!("{}/", server.base);
        let mut stream = client()
            .start_response(&base, None, &ResponsesRequest::text("m", "x"))
            .await
            .unwrap();
        assert_eq!(
            stream.next_event().await,
            Ok(Some(TurnEvent::Completed(None)))
        );
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
            .start_response(&server.base, auth(), &ResponsesRequest::text("m", "x"))
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
            .start_response(&server.base, auth(), &ResponsesRequest::text("m", "x"))
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
            .start_response(&server.base, auth(), &ResponsesRequest::text("m", "x"))
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
            .start_response(&server.base, auth(), &ResponsesRequest::text("m", "x"))
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

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_naming_the_url() {
    within(async {
        let base = refused_base().await;
        let error = client()
            .start_response(&base, auth(), &ResponsesRequest::text("m", "x"))
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

#[tokio::test]
async fn a_provider_that_never_answers_fails_after_connect_plus_idle_timeout() {
    within(async {
        // Accepts connections and never writes a byte.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let client = ProviderClient::new(ProviderTimeouts {
            connect: Duration::from_millis(100),
            stream_idle: IDLE,
        });
        let started = Instant::now();
        let error = client
            .start_response(&base, auth(), &ResponsesRequest::text("m", "x"))
            .await
            .err();
        let waited = started.elapsed();
        assert_eq!(
            error,
            Some(ProviderError::Transport(format!(
                "request to the provider at {base}/responses timed out after 400ms"
            )))
        );
        assert!(
            waited >= Duration::from_millis(400) && waited < Duration::from_secs(2),
            "waited {waited:?}"
        );
    })
    .await
}
