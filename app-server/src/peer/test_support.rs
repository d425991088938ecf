//! A scripted host over `tokio::io::duplex` and a small service, for the peer's tests.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge_protocol::jsonrpc::to_raw;
use authbridge_protocol::{ErrorObject, NotificationMethod, RequestMethod};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::io::{
    AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf,
};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use super::{serve, DispatchKind, PeerConfig, PeerHandle, RequestContext, Service};

/// How long a test waits for anything before failing.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// `test/ask`: a server→host request with any params and any result.
pub(crate) enum Ask {}
impl RequestMethod for Ask {
    const NAME: &'static str = "test/ask";
    type Params = Value;
    type Result = Value;
}

/// `test/count`: a server→host request whose result must be a number.
pub(crate) enum Count {}
impl RequestMethod for Count {
    const NAME: &'static str = "test/count";
    type Params = Value;
    type Result = u64;
}

/// `test/note`: a notification either way.
pub(crate) enum Note {}
impl NotificationMethod for Note {
    const NAME: &'static str = "test/note";
    type Params = Value;
}

/// A service with one method per behaviour the tests need.
pub(crate) struct TestService {
    /// What the handlers did, in order.
    pub(crate) log: Mutex<Vec<String>>,
    /// The connection, once `initialize` ran.
    pub(crate) peer: Mutex<Option<PeerHandle>>,
    /// `hold` requests wait for a permit here.
    pub(crate) release: Semaphore,
    /// Signalled whenever a server→host request got its outcome.
    pub(crate) answered: Notify,
}

impl TestService {
    pub(crate) fn new() -> Arc<TestService> {
        Arc::new(TestService {
            log: Mutex::default(),
            peer: Mutex::default(),
            release: Semaphore::new(0),
            answered: Notify::new(),
        })
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }

    pub(crate) fn peer(&self) -> PeerHandle {
        self.peer.lock().unwrap().clone().expect("initialized")
    }

    async fn ask(&self, ctx: &RequestContext, params: Value) -> Result<Value, ErrorObject> {
        let timeout = Duration::from_millis(params["timeoutMs"].as_u64().unwrap_or(60_000));
        let outcome = if params["typed"] == true {
            ctx.peer()
                .request::<Count>(&params["question"], timeout)
                .await
                .map(|n| json!(n))
        } else {
            ctx.peer()
                .request::<Ask>(&params["question"], timeout)
                .await
        };
        self.record(match &outcome {
            Ok(answer) => format!("answered {answer}"),
            Err(e) => format!("failed {e}"),
        });
        self.answered.notify_one();
        outcome
            .map(|answer| json!({ "answer": answer }))
            .map_err(|e| ErrorObject::internal(e.to_string()))
    }
}

fn value(params: &Option<Box<RawValue>>) -> Value {
    params
        .as_deref()
        .map(|raw| serde_json::from_str(raw.get()).unwrap())
        .unwrap_or(Value::Null)
}

#[async_trait::async_trait]
impl Service for TestService {
    fn dispatch_kind(&self, method: &str) -> DispatchKind {
        match method {
            "slow" | "ask_barrier" => DispatchKind::Barrier,
            _ => DispatchKind::Concurrent,
        }
    }

    async fn handle_request(
        &self,
        mut ctx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        let params = value(&params);
        let result = match method.as_str() {
            "initialize" => {
                if params["fail"] == true {
                    return Err(ErrorObject::invalid_params("refused"));
                }
                if let Some(methods) = params["optOut"].as_array() {
                    let methods = methods.iter().map(|m| m.as_str().unwrap().to_string());
                    ctx.peer().set_opt_out_notifications(methods.collect());
                }
                *self.peer.lock().unwrap() = Some(ctx.peer().clone());
                json!({ "ok": true })
            }
            "echo" => params,
            "record" => {
                self.record(format!("record {params}"));
                params
            }
            "slow" => {
                tokio::time::sleep(Duration::from_millis(params["ms"].as_u64().unwrap())).await;
                self.record("slow done".to_string());
                json!("slow")
            }
            "ask" | "ask_barrier" => self.ask(&ctx, params).await?,
            "notify_many" => {
                let n = params["n"].as_u64().unwrap();
                for seq in 0..n {
                    ctx.peer().notify::<Note>(&json!({ "seq": seq })).await;
                }
                json!({ "sent": n })
            }
            "hold" => {
                self.release.acquire().await.unwrap().forget();
                json!("released")
            }
            "after" => {
                ctx.notify_after::<Note>(&json!({ "seq": 1 }));
                ctx.notify_after::<Note>(&json!({ "seq": 2 }));
                json!("after")
            }
            "panic" => panic!("a handler bug"),
            other => return Err(ErrorObject::method_not_found(other)),
        };
        Ok(to_raw(&result))
    }

    async fn handle_notification(
        &self,
        _peer: PeerHandle,
        method: String,
        params: Option<Box<RawValue>>,
    ) {
        self.record(format!("{method} {}", value(&params)));
    }
}

/// The host's side of a connection served by [`serve`].
pub(crate) struct Host {
    writer: Option<WriteHalf<DuplexStream>>,
    reader: BufReader<ReadHalf<DuplexStream>>,
    server: JoinHandle<io::Result<()>>,
}

impl Host {
    /// Serves `service` over a duplex pipe with 64 KiB of buffer each way.
    pub(crate) fn start(service: Arc<TestService>, config: PeerConfig) -> Host {
        Host::with_buffer(service, config, 64 * 1024)
    }

    pub(crate) fn with_buffer(service: Arc<TestService>, config: PeerConfig, bytes: usize) -> Host {
        let (host, server) = tokio::io::duplex(bytes);
        let (server_in, server_out) = tokio::io::split(server);
        let server = tokio::spawn(serve(server_in, server_out, service, config));
        let (reader, writer) = tokio::io::split(host);
        Host {
            writer: Some(writer),
            reader: BufReader::new(reader),
            server,
        }
    }

    /// Hands the input over to the test (for writing from another task).
    pub(crate) fn take_writer(&mut self) -> WriteHalf<DuplexStream> {
        self.writer.take().expect("input still open")
    }

    /// Writes raw bytes.
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        let writer = self.writer.as_mut().expect("input still open");
        tokio::time::timeout(DEADLINE, writer.write_all(bytes))
            .await
            .expect("the server reads its input")
            .unwrap();
    }

    /// Writes one line.
    pub(crate) async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    /// Reads one line and parses it.
    pub(crate) async fn recv(&mut self) -> Value {
        let mut line = String::new();
        let read = tokio::time::timeout(DEADLINE, self.reader.read_line(&mut line))
            .await
            .expect("the server answers in time")
            .unwrap();
        assert!(read > 0, "the server closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }

    /// Reads one `Content-Length` framed message; returns its exact header too.
    pub(crate) async fn recv_framed(&mut self) -> (String, Value) {
        let mut header = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(DEADLINE, self.reader.read_line(&mut line))
                .await
                .expect("the server answers in time")
                .unwrap();
            assert!(read > 0, "the server closed its output");
            header.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length: usize = header
            .trim()
            .strip_prefix("Content-Length: ")
            .expect("a Content-Length header")
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await.unwrap();
        (header, serde_json::from_slice(&body).unwrap())
    }

    /// Sends `initialize` and checks its answer.
    pub(crate) async fn initialize(&mut self) {
        self.send(r#"{"id":"init","method":"initialize"}"#).await;
        assert_eq!(self.recv().await, json!({"id":"init","result":{"ok":true}}));
    }

    /// Closes the server's input and waits for `serve` to return.
    /// (If the test took the input, it must have dropped it.)
    pub(crate) async fn close_input(&mut self) -> io::Result<()> {
        if let Some(mut writer) = self.writer.take() {
            writer.shutdown().await.unwrap();
        }
        tokio::time::timeout(DEADLINE, &mut self.server)
            .await
            .expect("serve returns after end of input")
            .unwrap()
    }

    /// Reads everything the server writes until it closes its output.
    pub(crate) async fn rest(&mut self) -> String {
        let mut rest = String::new();
        tokio::time::timeout(DEADLINE, self.reader.read_to_string(&mut rest))
            .await
            .expect("the server closes its output")
            .unwrap();
        rest
    }
}

/// A config with a small in-flight limit and message size.
pub(crate) fn small(max_in_flight_requests: usize, max_message_bytes: usize) -> PeerConfig {
    PeerConfig {
        max_message_bytes,
        max_in_flight_requests,
        ..PeerConfig::default()
    }
}
