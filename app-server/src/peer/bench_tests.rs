//! A throughput check of the whole peer (framing, dispatch, writer) with a trivial
//! handler: `cargo test --release -p authbridge-app-server --lib pipelined -- --ignored
//! --nocapture` prints requests per second.

use std::sync::Arc;
use std::time::Instant;

use authbridge_protocol::jsonrpc::to_raw;
use authbridge_protocol::ErrorObject;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{serve, DispatchKind, PeerConfig, PeerHandle, RequestContext, Service};

struct Reads;

#[async_trait::async_trait]
impl Service for Reads {
    fn dispatch_kind(&self, _method: &str) -> DispatchKind {
        DispatchKind::Concurrent
    }

    async fn handle_request(
        &self,
        _ctx: RequestContext,
        method: String,
        _params: Option<Box<RawValue>>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        match method.as_str() {
            "initialize" | "account/read" => Ok(to_raw(
                &json!({"account": null, "requiresOpenaiAuth": true}),
            )),
            other => Err(ErrorObject::method_not_found(other)),
        }
    }

    async fn handle_notification(&self, _: PeerHandle, _: String, _: Option<Box<RawValue>>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run in release with --ignored --nocapture"]
async fn pipelined_account_reads_per_second() {
    const N: usize = 200_000;
    let (host, server) = tokio::io::duplex(1 << 20);
    let (server_in, server_out) = tokio::io::split(server);
    let serving = tokio::spawn(serve(
        server_in,
        server_out,
        Arc::new(Reads),
        PeerConfig::default(),
    ));
    let (host_in, mut host_out) = tokio::io::split(host);
    let mut input = String::from("{\"id\":0,\"method\":\"initialize\"}\n");
    for id in 1..=N {
        input.push_str(&format!(
            "{{\"id\":{id},\"method\":\"account/read\",\"params\":{{\"refreshToken\":false}}}}\n"
        ));
    }
    let started = Instant::now();
    let sending = tokio::spawn(async move {
        host_out.write_all(input.as_bytes()).await.unwrap();
        host_out.shutdown().await.unwrap();
    });
    let mut lines = BufReader::new(host_in).lines();
    let mut answered = 0;
    while let Some(line) = lines.next_line().await.unwrap() {
        assert!(line.contains("\"result\""), "{line}");
        answered += 1;
    }
    let elapsed = started.elapsed();
    sending.await.unwrap();
    serving.await.unwrap().unwrap();
    assert_eq!(answered, N + 1);
    eprintln!(
        "{N} pipelined requests in {elapsed:?}: {:.0} per second",
        N as f64 / elapsed.as_secs_f64()
    );
}
