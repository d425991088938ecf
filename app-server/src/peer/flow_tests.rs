//! Server→host requests, notifications, backpressure and shutdown — over a duplex pipe
//! with a test service.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::test_support::{small, Host, TestService, DEADLINE};
use super::PeerConfig;

/// Reads messages until one is a server→host request; returns (id, params).
async fn server_request(host: &mut Host) -> (i64, Value) {
    let message = host.recv().await;
    assert_eq!(message["method"], json!("test/ask"), "{message}");
    (message["id"].as_i64().unwrap(), message["params"].clone())
}

#[tokio::test]
async fn a_server_request_is_answered_by_the_host_with_ids_from_zero() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"ask","params":{"question":"why?"}}"#)
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":0,"method":"test/ask","params":"why?"})
    );
    host.send(r#"{"id":0,"result":"because"}"#).await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"result":{"answer":"because"}})
    );
    host.send(r#"{"id":2,"method":"ask","params":{"question":"again?"}}"#)
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"method":"test/ask","params":"again?"})
    );
}

#[tokio::test]
async fn two_server_requests_answered_in_reverse_order_reach_their_callers() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":"a","method":"ask","params":{"question":"a"}}"#)
        .await;
    host.send(r#"{"id":"b","method":"ask","params":{"question":"b"}}"#)
        .await;
    let first = server_request(&mut host).await;
    let second = server_request(&mut host).await;
    for (id, question) in [second, first] {
        host.send(
            &json!({"id": id, "result": format!("for {}", question.as_str().unwrap())}).to_string(),
        )
        .await;
    }
    let mut answers = vec![host.recv().await, host.recv().await];
    answers.sort_by_key(|v| v["id"].as_str().map(str::to_string));
    assert_eq!(
        answers,
        vec![
            json!({"id":"a","result":{"answer":"for a"}}),
            json!({"id":"b","result":{"answer":"for b"}}),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_request_ignores_the_late_answer_and_leaves_the_table_empty() {
    let service = TestService::new();
    let mut host = Host::start(service.clone(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"ask","params":{"question":"q","timeoutMs":1000}}"#)
        .await;
    let (id, _) = server_request(&mut host).await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"error":{"code":-32603,"message":"request timed out after 1000ms"}})
    );
    assert_eq!(service.peer().pending_count(), 0);
    host.send(&json!({"id": id, "result": "too late"}).to_string())
        .await;
    host.send(&json!({"id": id, "result": "twice"}).to_string())
        .await;
    host.send(r#"{"id":"x","result":"unknown id"}"#).await;
    host.send(r#"{"id":2,"method":"echo"}"#).await;
    assert_eq!(host.recv().await, json!({"id":2,"result":null}));
    assert_eq!(service.peer().pending_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn when_the_host_goes_away_every_pending_request_fails_at_once() {
    let service = TestService::new();
    let mut host = Host::start(service.clone(), PeerConfig::default());
    host.initialize().await;
    for id in 1..=3 {
        host.send(&format!(
            r#"{{"id":{id},"method":"ask","params":{{"question":{id}}}}}"#
        ))
        .await;
    }
    for _ in 1..=3 {
        server_request(&mut host).await;
    }
    assert_eq!(service.peer().pending_count(), 3);
    let started = tokio::time::Instant::now();
    host.close_input().await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    let mut rest: Vec<Value> = host
        .rest()
        .await
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    rest.sort_by_key(|v| v["id"].as_i64());
    let failed = |id: i64| json!({"id":id,"error":{"code":-32603,"message":"host disconnected"}});
    assert_eq!(rest, vec![failed(1), failed(2), failed(3)]);
    assert_eq!(service.log(), vec!["failed host disconnected"; 3]);
    assert!(service.peer().is_closed());
}

#[tokio::test]
async fn a_barrier_awaiting_the_host_gets_the_answer_sent_behind_other_messages() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"ask_barrier","params":{"question":"q"}}"#)
        .await;
    let (id, _) = server_request(&mut host).await;
    // The host pipelines a request before its answer: the request waits for the barrier,
    // the answer does not.
    host.send(r#"{"id":2,"method":"echo","params":"queued"}"#)
        .await;
    host.send(&json!({"id": id, "result": "first"}).to_string())
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"result":{"answer":"first"}})
    );
    assert_eq!(host.recv().await, json!({"id":2,"result":"queued"}));
}

#[tokio::test]
async fn a_handler_awaiting_the_host_does_not_hold_up_what_the_host_sends_first() {
    let service = TestService::new();
    let mut host = Host::start(service.clone(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"ask","params":{"question":"q"}}"#)
        .await;
    let (id, _) = server_request(&mut host).await;
    // Before answering, the host sends a request and a notification of its own.
    host.send(r#"{"method":"test/note","params":"meanwhile"}"#)
        .await;
    host.send(r#"{"id":2,"method":"echo","params":"meanwhile"}"#)
        .await;
    assert_eq!(host.recv().await, json!({"id":2,"result":"meanwhile"}));
    host.send(&json!({"id": id, "result": "later"}).to_string())
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"result":{"answer":"later"}})
    );
    assert_eq!(
        service.log(),
        vec![
            r#"test/note "meanwhile""#.to_string(),
            r#"answered "later""#.to_string()
        ]
    );
}

#[tokio::test]
async fn three_hundred_notifications_arrive_in_order_before_the_response() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"notify_many","params":{"n":300}}"#)
        .await;
    for seq in 0..300 {
        assert_eq!(
            host.recv().await,
            json!({"method":"test/note","params":{"seq":seq}})
        );
    }
    assert_eq!(host.recv().await, json!({"id":1,"result":{"sent":300}}));
}

#[tokio::test]
async fn notify_after_writes_notifications_right_after_the_response() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"after"}"#).await;
    assert_eq!(host.recv().await, json!({"id":1,"result":"after"}));
    assert_eq!(
        host.recv().await,
        json!({"method":"test/note","params":{"seq":1}})
    );
    assert_eq!(
        host.recv().await,
        json!({"method":"test/note","params":{"seq":2}})
    );
}

#[tokio::test]
async fn opted_out_notifications_are_not_sent() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send(r#"{"id":0,"method":"initialize","params":{"optOut":["test/note"]}}"#)
        .await;
    assert_eq!(host.recv().await, json!({"id":0,"result":{"ok":true}}));
    host.send(r#"{"id":1,"method":"notify_many","params":{"n":3}}"#)
        .await;
    assert_eq!(host.recv().await, json!({"id":1,"result":{"sent":3}}));
    host.send(r#"{"id":2,"method":"after"}"#).await;
    assert_eq!(host.recv().await, json!({"id":2,"result":"after"}));
    host.send(r#"{"id":3,"method":"echo"}"#).await;
    assert_eq!(host.recv().await, json!({"id":3,"result":null}));
}

#[tokio::test]
async fn an_error_answer_and_an_ill_typed_answer_are_told_apart_without_the_value() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"ask","params":{"question":"q"}}"#)
        .await;
    let (id, _) = server_request(&mut host).await;
    host.send(&json!({"id": id, "error": {"code": -32000, "message": "no tokens"}}).to_string())
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":1,"error":{"code":-32603,"message":"code=-32000 message=no tokens"}})
    );
    host.send(r#"{"id":2,"method":"ask","params":{"question":"n","typed":true}}"#)
        .await;
    let message = host.recv().await;
    host.send(&json!({"id": message["id"], "result": "secret-token-value"}).to_string())
        .await;
    assert_eq!(
        host.recv().await,
        json!({"id":2,"error":{"code":-32603,"message":"invalid response: invalid type, expected u64"}})
    );
}

#[tokio::test]
async fn a_host_that_stops_reading_does_not_stop_the_reader_from_routing_responses() {
    let service = TestService::new();
    // A small pipe, so the flood below fills it and the writer's queue quickly.
    let mut host = Host::with_buffer(service.clone(), small(4, 1 << 20), 1024);
    host.initialize().await;
    host.send(r#"{"id":1,"method":"ask","params":{"question":"q"}}"#)
        .await;
    let (id, _) = server_request(&mut host).await;
    host.send(r#"{"id":2,"method":"notify_many","params":{"n":5000}}"#)
        .await;
    // Give the flood time to fill everything, then answer without reading anything.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A request now has to wait for room in the output; the answer behind it does not.
    host.send(r#"{"id":3,"method":"echo","params":"waited"}"#)
        .await;
    host.send(&json!({"id": id, "result": "routed"}).to_string())
        .await;
    tokio::time::timeout(DEADLINE, service.answered.notified())
        .await
        .expect("the answer was routed while the output was full");
    assert_eq!(service.log(), vec![r#"answered "routed""#.to_string()]);
    // Reading again lets everything out; nothing was dropped.
    let (mut notes, mut responses) = (0, Vec::new());
    while responses.len() < 3 {
        let message = host.recv().await;
        if message["method"] == "test/note" {
            assert_eq!(message["params"]["seq"], json!(notes));
            notes += 1;
        } else {
            responses.push(message);
        }
    }
    responses.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(
        responses,
        vec![
            json!({"id":1,"result":{"answer":"routed"}}),
            json!({"id":2,"result":{"sent":5000}}),
            json!({"id":3,"result":"waited"}),
        ]
    );
    assert_eq!(notes, 5000);
}

#[tokio::test]
async fn a_reader_facing_a_full_output_stops_reading_and_resumes_when_the_host_reads() {
    let mut host = Host::with_buffer(TestService::new(), small(16, 1 << 20), 256);
    host.initialize().await;
    let input: String = (0..2000)
        .map(|id| format!("{{\"id\":{id},\"method\":\"echo\",\"params\":{id}}}\n"))
        .collect();
    let mut writer = host.take_writer();
    let sending = tokio::spawn(async move {
        writer.write_all(input.as_bytes()).await.unwrap();
        writer
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !sending.is_finished(),
        "the server stopped reading while its output was full"
    );
    // Reading lets everything through: every request gets exactly one answer.
    let mut answered = vec![0; 2000];
    for _ in 0..2000 {
        let message = host.recv().await;
        let id = message["id"].as_u64().unwrap() as usize;
        let overloaded =
            json!({"id":id,"error":{"code":-32001,"message":"Server overloaded; retry later."}});
        assert!(
            message == json!({"id":id,"result":id}) || message == overloaded,
            "{message}"
        );
        answered[id] += 1;
    }
    assert_eq!(answered, vec![1; 2000]);
    let mut writer = tokio::time::timeout(DEADLINE, sending)
        .await
        .unwrap()
        .unwrap();
    writer.shutdown().await.unwrap();
    host.close_input().await.unwrap();
}

#[tokio::test]
async fn messages_read_before_end_of_input_are_still_answered() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.send_raw(
        b"{\"id\":0,\"method\":\"initialize\"}\n{\"id\":1,\"method\":\"echo\",\"params\":1}\n{\"id\":2,\"method\":\"echo\",\"params\":2}",
    )
    .await;
    host.close_input().await.unwrap();
    assert_eq!(
        host.rest().await,
        "{\"id\":0,\"result\":{\"ok\":true}}\n{\"id\":1,\"result\":1}\n{\"id\":2,\"result\":2}\n"
    );
}

/// Lets every task run until the counter stops moving (all of them wait).
async fn until_still(counter: &std::sync::atomic::AtomicUsize) -> usize {
    let mut last = usize::MAX;
    loop {
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
        let now = counter.load(std::sync::atomic::Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn output_over_the_byte_budget_stops_the_reader_until_the_host_reads() {
    const N: usize = 400;
    let config = PeerConfig {
        max_unsent_output_bytes: 16 * 1024,
        ..small(1024, 1 << 20)
    };
    let mut host = Host::with_buffer(TestService::new(), config, 4096);
    host.initialize().await;
    let pad = "p".repeat(8 * 1024);
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writer = host.take_writer();
    let (progress, padding) = (written.clone(), pad.clone());
    let sending = tokio::spawn(async move {
        for id in 0..N {
            let line = format!("{{\"id\":{id},\"method\":\"echo\",\"params\":\"{padding}\"}}\n");
            writer.write_all(line.as_bytes()).await.unwrap();
            progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        writer
    });
    // The host reads nothing. Counted in messages the queue has room for all 400
    // answers; counted in bytes it is full after two, and the reader stops soon after
    // (it reads ahead at most 64 messages to route responses).
    let read = until_still(&written).await;
    assert!(
        read < 100,
        "the server read {read} requests of 8 KiB with a 16 KiB output budget"
    );
    for id in 0..N {
        let message = host.recv().await;
        assert_eq!(message, json!({"id": id, "result": pad}), "answer {id}");
    }
    let mut writer = tokio::time::timeout(DEADLINE, sending)
        .await
        .unwrap()
        .unwrap();
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_answer_behind_a_thousand_pipelined_requests_is_routed_before_they_run() {
    let mut host = Host::start(TestService::new(), PeerConfig::default());
    host.initialize().await;
    host.send(r#"{"id":1,"method":"ask","params":{"question":"q"}}"#)
        .await;
    let (id, _) = server_request(&mut host).await;
    // A host that pipelines: a thousand requests, then the answer, in one write.
    let mut batch = String::new();
    for i in 0..1000 {
        batch.push_str(&format!(
            "{{\"id\":{},\"method\":\"echo\",\"params\":{i}}}\n",
            100 + i
        ));
    }
    batch.push_str(&json!({"id": id, "result": "ahead"}).to_string());
    batch.push('\n');
    host.send_raw(batch.as_bytes()).await;
    let mut echoes_before = 0;
    loop {
        let message = host.recv().await;
        if message["id"] == json!(1) {
            assert_eq!(message, json!({"id":1,"result":{"answer":"ahead"}}));
            break;
        }
        assert_eq!(message["result"], json!(echoes_before), "{message}");
        echoes_before += 1;
    }
    // Read ahead while the server waited: the answer did not wait for the thousand
    // requests in front of it to be dispatched.
    assert!(echoes_before < 100, "{echoes_before} echoes came first");
    for i in echoes_before..1000 {
        assert_eq!(host.recv().await, json!({"id": 100 + i, "result": i}));
    }
}
