//! A minimal tower-lsp server answering `account/read` as a custom method, over
//! `tokio::io::stdin()`/`stdout()` as tower-lsp's examples do.

use serde::{Deserialize, Serialize};
use tower_lsp::jsonrpc::Result;
use tower_lsp::lsp_types::{InitializeParams, InitializeResult};
use tower_lsp::{Client, LanguageServer, LspService, Server};

struct Backend {
    _client: Client,
}

#[derive(Deserialize)]
struct AccountReadParams {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountReadResponse {
    account: Option<()>,
    requires_openai_auth: bool,
}

impl Backend {
    async fn account_read(&self, _params: AccountReadParams) -> Result<AccountReadResponse> {
        Ok(AccountReadResponse {
            account: None,
            requires_openai_auth: true,
        })
    }
}

#[tower_lsp::async_trait]
impl LanguageServer for Backend {
    async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
        Ok(InitializeResult::default())
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let (service, socket) = LspService::build(|client| Backend { _client: client })
        .custom_method(authbridge_bench::METHOD, Backend::account_read)
        .finish();
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .serve(service)
        .await;
}
