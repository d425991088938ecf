//! A minimal lsp-server (rust-analyzer's scaffold) answering `account/read`, written as its docs
//! show: `Connection::stdio()` (reader and writer threads), the initialize handshake, one loop.

use lsp_server::{Connection, Message, Response};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (connection, io_threads) = Connection::stdio();
    connection.initialize(serde_json::json!({"capabilities": {}}))?;
    for message in &connection.receiver {
        let Message::Request(request) = message else {
            continue;
        };
        if connection.handle_shutdown(&request)? {
            break;
        }
        let response = if request.method == authbridge_bench::METHOD {
            Response::new_ok(request.id, authbridge_bench::account_read_result())
        } else {
            Response::new_err(
                request.id,
                -32601,
                format!("unknown method {}", request.method),
            )
        };
        connection.sender.send(Message::Response(response))?;
    }
    drop(connection);
    io_threads.join()?;
    Ok(())
}
