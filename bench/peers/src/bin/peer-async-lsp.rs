//! A minimal async-lsp server answering `account/read`, built as async-lsp's own server example
//! is: a router behind the lifecycle and concurrency layers, on non-blocking stdio pipes and a
//! current-thread runtime.

use std::ops::ControlFlow;

use async_lsp::concurrency::ConcurrencyLayer;
use async_lsp::lsp_types::{notification, request, InitializeResult};
use async_lsp::router::Router;
use async_lsp::server::LifecycleLayer;
use serde::{Deserialize, Serialize};
use tower::ServiceBuilder;

enum AccountRead {}

#[derive(Deserialize, Serialize)]
struct AccountReadParams {}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountReadResponse {
    account: Option<()>,
    requires_openai_auth: bool,
}

impl request::Request for AccountRead {
    type Params = AccountReadParams;
    type Result = AccountReadResponse;
    const METHOD: &'static str = authbridge_bench::METHOD;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (server, _) = async_lsp::MainLoop::new_server(|client| {
        // The main loop ends when every client socket is gone, so the state keeps one.
        let mut router = Router::new(client);
        router
            .request::<request::Initialize, _>(
                |_, _| async move { Ok(InitializeResult::default()) },
            )
            .request::<AccountRead, _>(|_, _| async move {
                Ok(AccountReadResponse {
                    account: None,
                    requires_openai_auth: true,
                })
            })
            .notification::<notification::Initialized>(|_, _| ControlFlow::Continue(()));
        ServiceBuilder::new()
            .layer(LifecycleLayer::default())
            .layer(ConcurrencyLayer::default())
            .service(router)
    });
    let stdin = async_lsp::stdio::PipeStdin::lock_tokio().expect("stdin is a pipe");
    let stdout = async_lsp::stdio::PipeStdout::lock_tokio().expect("stdout is a pipe");
    // The load generator ends the session by closing stdin (or killing us): end of input is
    // the normal way out, not an error worth a panic.
    if let Err(err) = server.run_buffered(stdin, stdout).await {
        if !matches!(err, async_lsp::Error::Eof) {
            eprintln!("peer-async-lsp: {err}");
        }
    }
}
