//! The mock provider over real HTTP on loopback: auth, streaming, failures, recording.

use std::time::Duration;

use authbridge_testkit::mock_provider::RecordedRequest;
use authbridge_testkit::{Failure, MockOptions, MockProvider};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .no_proxy()
        .build()
        .unwrap()
}

async fn post_responses(mock: &MockProvider, token: &str) -> reqwest::Response {
    client()
        .post(format!("{}/responses", mock.url()))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .header("ChatGPT-Account-Id", "org-1")
        .json(&json!({"model": "gpt-5", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap()
}

/// The `data:` JSON of each SSE event.
fn events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_owned())))
        .collect()
}

#[tokio::test]
async fn a_valid_token_gets_the_deltas_then_response_completed() {
    let mock = MockProvider::start(MockOptions::with_tokens(["good"]))
        .await
        .unwrap();
    let response = post_responses(&mock, "good").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(&response.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(events[1]["item"]["type"], "message");
    assert_eq!(events[6]["item"]["content"][0]["text"], "Hello, world!");
    let usage = &events.last().unwrap()["response"]["usage"];
    assert_eq!(usage["input_tokens"], 5);
    assert_eq!(usage["output_tokens"], 4);
    let text: String = events.iter().filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(text, "Hello, world!");
    assert_eq!(text, mock.expected_text());
}

#[tokio::test]
async fn every_request_is_recorded_with_its_headers_and_body() {
    let mock = MockProvider::start(MockOptions::with_tokens(["good"]))
        .await
        .unwrap();
    post_responses(&mock, "good").await.text().await.unwrap();
    assert_eq!(
        mock.requests(),
        vec![RecordedRequest {
            method: "POST".into(),
            path: "/v1/responses".into(),
            authorization: Some("Bearer good".into()),
            account_id: Some("org-1".into()),
            accept: Some("text/event-stream".into()),
            body: json!({"model": "gpt-5", "input": "hi", "stream": true}),
        }]
    );
    assert_eq!(mock.request_count(), 1);
    assert_eq!(mock.unauthorized_count(), 0);
}

#[tokio::test]
async fn an_unknown_or_rejected_token_gets_a_401_with_a_json_error() {
    let mock = MockProvider::start(MockOptions::with_tokens(["old"]))
        .await
        .unwrap();
    let unknown = post_responses(&mock, "stranger").await;
    assert_eq!(unknown.status(), 401);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Your authentication token is not valid."
    );

    mock.reject_token("old");
    let expired = post_responses(&mock, "old").await;
    assert_eq!(expired.status(), 401);
    let body: Value = expired.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Your authentication token has expired."
    );

    mock.accept_token("new");
    assert_eq!(post_responses(&mock, "new").await.status(), 200);
    assert_eq!(mock.unauthorized_count(), 2);
    assert_eq!(
        mock.authorizations(),
        [
            Some("Bearer stranger"),
            Some("Bearer old"),
            Some("Bearer new")
        ]
        .map(|s| s.map(String::from))
    );
}

#[tokio::test]
async fn models_are_listed_in_the_openai_format() {
    let mock = MockProvider::start(MockOptions::with_tokens(["good"]))
        .await
        .unwrap();
    let body: Value = client()
        .get(format!("{}/models", mock.url()))
        .bearer_auth("good")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"object": "list", "data": [{"id": "gpt-5", "object": "model"}, {"id": "gpt-5-mini", "object": "model"}]})
    );
}

#[tokio::test]
async fn a_scripted_status_applies_to_the_next_request_only() {
    let mock = MockProvider::start(MockOptions::with_tokens(["good"]))
        .await
        .unwrap();
    mock.fail_next(Failure::Status {
        status: 429,
        body: r#"{"error":{"message":"slow down"}}"#.into(),
    });
    let first = post_responses(&mock, "good").await;
    assert_eq!(first.status(), 429);
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"error": {"message": "slow down"}})
    );
    assert_eq!(post_responses(&mock, "good").await.status(), 200);
}

#[tokio::test]
async fn unauthorized_always_rejects_even_a_valid_token() {
    let mock = MockProvider::start(MockOptions::with_tokens(["good"]))
        .await
        .unwrap();
    mock.set_failure(Some(Failure::UnauthorizedAlways));
    assert_eq!(post_responses(&mock, "good").await.status(), 401);
    mock.set_failure(None);
    assert_eq!(post_responses(&mock, "good").await.status(), 200);
}

#[tokio::test]
async fn response_failed_and_end_early_and_malformed_streams_look_as_described() {
    let mock = MockProvider::start(MockOptions::with_tokens(["t"]))
        .await
        .unwrap();
    mock.fail_next(Failure::ResponseFailed {
        message: "model overloaded".into(),
    });
    let failed = events(&post_responses(&mock, "t").await.text().await.unwrap());
    assert_eq!(
        failed.last().unwrap(),
        &json!({"type": "response.failed", "response": {"id": "resp_mock_1", "status": "failed", "error": {"message": "model overloaded"}}})
    );

    mock.fail_next(Failure::EndEarly { deltas: 2 });
    let early = events(&post_responses(&mock, "t").await.text().await.unwrap());
    let kinds: Vec<&str> = early.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta",
            "response.output_text.delta"
        ]
    );

    mock.fail_next(Failure::MalformedSse);
    let malformed = post_responses(&mock, "t").await.text().await.unwrap();
    assert_eq!(
        malformed,
        "event: response.output_text.delta\ndata: {not json\n\n"
    );
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_on_the_client_side() {
    let mock = MockProvider::start(MockOptions::with_tokens(["t"]))
        .await
        .unwrap();
    mock.fail_next(Failure::CutAfter { deltas: 1 });
    let response = post_responses(&mock, "t").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.is_err(),
        "the body should not end cleanly"
    );
}

#[tokio::test]
async fn stalls_before_and_after_headers_never_answer() {
    let mock = MockProvider::start(MockOptions::with_tokens(["t"]))
        .await
        .unwrap();
    let quick = reqwest::Client::builder().no_proxy().build().unwrap();
    mock.fail_next(Failure::StallBeforeHeaders);
    let send = quick
        .post(format!("{}/responses", mock.url()))
        .bearer_auth("t")
        .send();
    assert!(tokio::time::timeout(Duration::from_millis(300), send)
        .await
        .is_err());

    mock.fail_next(Failure::StallAfterHeaders);
    let response = quick
        .post(format!("{}/responses", mock.url()))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), response.text())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn delta_delay_spaces_the_events() {
    let mut opts = MockOptions::with_tokens(["t"]);
    opts.deltas = vec!["a".into(), "b".into(), "c".into()];
    opts.delta_delay = Duration::from_millis(50);
    let mock = MockProvider::start(opts).await.unwrap();
    let started = std::time::Instant::now();
    let text = post_responses(&mock, "t").await.text().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        events(&text)
            .iter()
            .filter_map(|e| e["delta"].as_str())
            .collect::<String>(),
        "abc"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_streams_all_complete() {
    let mut opts = MockOptions::with_tokens(["t"]);
    opts.delta_delay = Duration::from_millis(10);
    let mock = MockProvider::start(opts).await.unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/responses", mock.url());
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth("t")
                    .json(&json!({"input": "x"}))
                    .send()
                    .await?;
                r.text().await
            })
        })
        .collect();
    let mut completed = 0;
    for t in tasks {
        let body = t.await.unwrap().unwrap();
        if body.contains("response.completed") {
            completed += 1;
        }
    }
    assert_eq!(completed, 1000);
    assert_eq!(mock.request_count(), 1000);
}

#[tokio::test]
async fn wait_for_requests_returns_false_at_its_deadline() {
    let mock = MockProvider::start(MockOptions::default()).await.unwrap();
    assert!(!mock.wait_for_requests(1, Duration::from_millis(50)).await);
}

#[tokio::test]
async fn the_usage_endpoint_answers_with_a_valid_token_and_rate_limit_headers_ride_the_stream() {
    let mock = MockProvider::start(MockOptions::with_tokens(["t"]))
        .await
        .unwrap();
    let client = client();
    let url = format!("http://{}/backend-api/wham/usage", mock.addr());
    let denied = client.get(&url).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let usage: Value = client
        .get(&url)
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["rate_limit"]["primary_window"]["used_percent"], 42);
    mock.set_usage(json!({"plan_type": "plus"}));
    let usage: Value = client
        .get(&url)
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage, json!({"plan_type": "plus"}));
    mock.set_rate_limit_headers([("x-codex-primary-used-percent", "9")]);
    let streamed = post_responses(&mock, "t").await;
    assert_eq!(streamed.headers()["x-codex-primary-used-percent"], "9");
}
