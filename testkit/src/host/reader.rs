//! The host simulator's reader: owns the server's stdout, routes responses to waiting
//! requests, queues notifications and answers server requests (refresh by policy).

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::{id_key, lock, send, Shared, REFRESH_METHOD};
use crate::refresh_policy::RefreshRequest;
use crate::transcript::Direction;
use crate::wire::{Decoder, Frame};

pub(super) async fn read_stdout(
    mut stdout: tokio::process::ChildStdout,
    shared: Arc<Shared>,
    raw: bool,
) {
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lock(&shared.stdout).extend_from_slice(&buf[..n]);
        if !raw {
            for frame in decoder.push(&buf[..n]) {
                match frame {
                    Frame::Message(m) => dispatch(&shared, m),
                    Frame::NotJson(bytes) => lock(&shared.not_json).push(bytes),
                }
            }
        }
        shared.changed.notify_waiters();
    }
    lock(&shared.inbox).eof = true;
    lock(&shared.pending).clear();
    shared.changed.notify_waiters();
}

fn dispatch(shared: &Arc<Shared>, message: Value) {
    shared.transcript.record(Direction::Received, &message);
    lock(&shared.inbox).all.push(message.clone());
    let has_method = message.get("method").is_some();
    let has_id = message.get("id").is_some();
    if has_method && has_id {
        answer_server_request(shared, message);
    } else if has_method {
        lock(&shared.inbox).notifications.push_back(message);
    } else if let Some(tx) = lock(&shared.pending).remove(&id_key(&message["id"])) {
        let _ = tx.send(message);
    }
}

fn answer_server_request(shared: &Arc<Shared>, message: Value) {
    let id = message["id"].clone();
    if message["method"] != REFRESH_METHOD {
        let reply = json!({"id": id, "error": {"code": -32601, "message": format!("Method not found: {}", message["method"].as_str().unwrap_or(""))}});
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = send(&shared, reply).await;
        });
        return;
    }
    let request = RefreshRequest {
        id: id.clone(),
        params: message.get("params").cloned().unwrap_or(Value::Null),
        at: shared.start.elapsed(),
    };
    lock(&shared.refreshes).push(request.clone());
    let policy = lock(&shared.policy).clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        if !policy.pause().is_zero() {
            tokio::time::sleep(policy.pause()).await;
        }
        if let Some(reply) = policy.reply(&request).to_response(&id) {
            let _ = send(&shared, reply).await;
        }
    });
}
