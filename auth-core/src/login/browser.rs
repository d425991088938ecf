//! The browser flow: the authorize URL, and a loopback server on `127.0.0.1` that waits
//! for the issuer's redirect to `/auth/callback`, checks its `state`, exchanges the code
//! and shows the person a short page saying whether sign-in worked.
//!
//! The server listens on the configured port; when that port is taken it tries Codex's
//! second registered port (only when the configured one is the default) and then any free
//! port, and the `redirect_uri` in the URL names the port actually bound. Port 0 means
//! "any free port" from the start.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::login::pkce::{generate_state, Pkce};
use crate::login::{
    exchange_code, LoginConfig, LoginError, LoginTokens, DEFAULT_LOGIN_PORT, ORIGINATOR,
    SECOND_LOGIN_PORT,
};

/// The scopes Codex asks for.
const SCOPES: &str =
    "openid profile email offline_access api.connectors.read api.connectors.invoke";

/// What the browser is shown at the end.
#[derive(Debug)]
struct Page {
    ok: bool,
    message: String,
}

/// One request to `/auth/callback`: its query, and where to send the page.
struct Callback {
    query: HashMap<String, String>,
    reply: oneshot::Sender<Page>,
}

/// Stops the callback server when dropped (graceful: a page being sent is finished,
/// then the server is aborted after a few seconds at most).
struct ServerGuard {
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        task.abort();
                    });
                }
                Err(_) => task.abort(),
            }
        }
    }
}

/// A browser sign-in in progress: open [`auth_url`](BrowserLogin::auth_url), then
/// [`wait`](BrowserLogin::wait). Dropping it stops the callback server (a browser that
/// arrives later is told the sign-in is no longer in progress).
pub struct BrowserLogin {
    auth_url: String,
    port: u16,
    redirect_uri: String,
    state: String,
    pkce: Pkce,
    cfg: LoginConfig,
    callbacks: mpsc::Receiver<Callback>,
    server: ServerGuard,
}

impl std::fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLogin")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Answers the browser's callback once the caller has stored the tokens (or failed to).
/// Dropped unanswered, the browser is told sign-in was not completed.
pub struct CallbackResponder {
    reply: Option<oneshot::Sender<Page>>,
    _server: ServerGuard,
}

impl CallbackResponder {
    /// Shows the success page.
    pub fn success(&mut self, who: Option<&str>) {
        let message = match who {
            Some(who) => format!("You are signed in as {who}. You can close this window."),
            None => "You are signed in. You can close this window.".into(),
        };
        self.send(true, message);
    }

    /// Shows the failure page with this message.
    pub fn failure(&mut self, message: &str) {
        self.send(false, message.to_owned());
    }

    /// Stops the callback server once the page is sent (at most 3 s), so a process that
    /// exits next does not cut the browser off. Unanswered, the page says sign-in was
    /// not completed.
    pub async fn finish(mut self) {
        self.send(false, LoginError::Canceled.to_string());
        let _ = self._server.shutdown.send(true);
        if let Some(task) = self._server.task.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
    }

    fn send(&mut self, ok: bool, message: String) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Page { ok, message });
        }
    }
}

impl Drop for CallbackResponder {
    fn drop(&mut self) {
        self.send(false, LoginError::Canceled.to_string());
    }
}

/// Binds the callback listener: the configured port, else (for the default port)
/// Codex's second one, else any free port.
async fn bind(port: u16) -> Result<TcpListener, LoginError> {
    let mut candidates = vec![port];
    if port == DEFAULT_LOGIN_PORT {
        candidates.push(SECOND_LOGIN_PORT);
    }
    if port != 0 {
        candidates.push(0);
    }
    let mut last = None;
    for p in candidates {
        match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))).await {
            Ok(l) => {
                if p != port {
                    tracing::info!(
                        wanted = port,
                        "the login callback port is taken; listening on another one"
                    );
                }
                return Ok(l);
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse => last = Some(e),
            Err(e) => {
                return Err(LoginError::Server(format!(
                    "cannot listen on 127.0.0.1:{p}: {e}"
                )))
            }
        }
    }
    Err(LoginError::Server(format!(
        "cannot listen on 127.0.0.1: {}",
        last.map_or_else(|| "no port".to_string(), |e| e.to_string())
    )))
}

/// The authorize URL, with the members (and order) Codex uses.
pub fn authorize_url(
    cfg: &LoginConfig,
    redirect_uri: &str,
    code_challenge: &str,
    state: &str,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_challenge", code_challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state)
        .append_pair("scope", SCOPES)
        .append_pair("id_token_add_organizations", "true")
        .append_pair("codex_cli_simplified_flow", "true")
        .append_pair("originator", ORIGINATOR);
    if let Some(ws) = &cfg.forced_workspace_id {
        query.append_pair("allowed_workspace_id", ws);
    }
    format!("{}/oauth/authorize?{}", cfg.issuer(), query.finish())
}

struct ServerState {
    callbacks: mpsc::Sender<Callback>,
    page_deadline: Duration,
}

async fn callback(
    State(st): State<Arc<ServerState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (reply, page) = oneshot::channel();
    if st.callbacks.send(Callback { query, reply }).await.is_err() {
        return page_response(&Page {
            ok: false,
            message: "This sign-in is no longer in progress. Start it again.".into(),
        });
    }
    let page = match tokio::time::timeout(st.page_deadline, page).await {
        Ok(Ok(page)) => page,
        Ok(Err(_)) => Page {
            ok: false,
            message: LoginError::Canceled.to_string(),
        },
        Err(_) => Page {
            ok: false,
            message: "Sign-in took too long to finish. Start it again.".into(),
        },
    };
    page_response(&page)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page_response(page: &Page) -> Response {
    let title = if page.ok {
        "Signed in"
    } else {
        "Sign-in failed"
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>authbridge: {title}</title></head>\n\
         <body style=\"font-family: sans-serif; margin: 3em\"><h1>{title}</h1>\n<p id=\"message\">{}</p>\n</body></html>\n",
        escape(&page.message)
    );
    let status = if page.ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, [("connection", "close")], Html(body)).into_response()
}

impl BrowserLogin {
    /// Binds the callback server and builds the authorize URL. Nothing waits yet.
    pub async fn start(cfg: LoginConfig) -> Result<BrowserLogin, LoginError> {
        let pkce = Pkce::generate()?;
        let state = generate_state()?;
        let listener = bind(cfg.port).await?;
        let port = listener
            .local_addr()
            .map_err(|e| LoginError::Server(e.to_string()))?
            .port();
        // `localhost`, as Codex registers it with the issuer; we listen on 127.0.0.1.
        let redirect_uri = format!("http://localhost:{port}/auth/callback");
        let auth_url = authorize_url(&cfg, &redirect_uri, &pkce.challenge, &state);
        let (tx, callbacks) = mpsc::channel(4);
        let app = Router::new()
            .route("/auth/callback", get(callback))
            .with_state(Arc::new(ServerState {
                callbacks: tx,
                page_deadline: cfg.token_timeout + Duration::from_secs(10),
            }));
        let (shutdown, mut stop) = watch::channel(false);
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "the login callback server stopped");
            }
        });
        tracing::debug!(port, "login callback server listening");
        Ok(BrowserLogin {
            auth_url,
            port,
            redirect_uri,
            state,
            pkce,
            cfg,
            callbacks,
            server: ServerGuard {
                shutdown,
                task: Some(task),
            },
        })
    }

    /// The URL to open in a browser.
    pub fn auth_url(&self) -> &str {
        &self.auth_url
    }

    /// The port the callback server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the callback (no deadline of its own: the caller applies the flow's
    /// timeout and cancellation by dropping this future), checks `state`, and exchanges
    /// the code. On success the browser waits for the caller's
    /// [`CallbackResponder`]; on failure it has been shown the failure page.
    pub async fn wait(mut self) -> Result<(LoginTokens, CallbackResponder), LoginError> {
        let Some(cb) = self.callbacks.recv().await else {
            return Err(LoginError::Server("the callback server stopped".into()));
        };
        let fail = |reply: oneshot::Sender<Page>, e: LoginError| {
            let _ = reply.send(Page {
                ok: false,
                message: e.to_string(),
            });
            Err(e)
        };
        let q = &cb.query;
        let has_code = q.get("code").is_some_and(|c| !c.is_empty());
        tracing::debug!(
            has_code,
            has_error = q.contains_key("error"),
            "login callback received"
        );
        if q.get("state").map(String::as_str) != Some(self.state.as_str()) {
            tracing::info!("login callback with a state that does not match");
            return fail(cb.reply, LoginError::StateMismatch);
        }
        if let Some(code) = q.get("error").filter(|c| !c.is_empty()) {
            let description = q
                .get("error_description")
                .filter(|d| !d.trim().is_empty())
                .unwrap_or(code);
            let e = LoginError::Denied(crate::login::clean(description, &[]));
            return fail(cb.reply, e);
        }
        let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
            return fail(cb.reply, LoginError::MissingCode);
        };
        match exchange_code(
            &self.cfg,
            code,
            self.pkce.verifier.expose(),
            &self.redirect_uri,
        )
        .await
        {
            Ok(tokens) => Ok((
                tokens,
                CallbackResponder {
                    reply: Some(cb.reply),
                    _server: self.server,
                },
            )),
            Err(e) => fail(cb.reply, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_has_codex_members_in_codex_order() {
        let mut cfg = LoginConfig::new("app_x");
        cfg.issuer = "https://issuer.example/".into();
        let url = authorize_url(&cfg, "http://localhost:1455/auth/callback", "CH", "ST");
        assert_eq!(
            url,
            "https://issuer.example/oauth/authorize?response_type=code&client_id=app_x\
             &redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback&code_challenge=CH\
             &code_challenge_method=S256&state=ST\
             &scope=openid+profile+email+offline_access+api.connectors.read+api.connectors.invoke\
             &id_token_add_organizations=true&codex_cli_simplified_flow=true&originator=codex_cli_rs"
        );
        cfg.forced_workspace_id = Some("org-1".into());
        assert!(authorize_url(&cfg, "r", "c", "s").ends_with("&allowed_workspace_id=org-1"));
    }

    #[tokio::test]
    async fn a_taken_port_falls_back_to_a_free_one() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let mut cfg = LoginConfig::new("app_x");
        cfg.port = port;
        let login = BrowserLogin::start(cfg).await.unwrap();
        assert_ne!(login.port(), port);
        assert!(login
            .auth_url()
            .contains(&format!("localhost%3A{}%2Fauth%2Fcallback", login.port())));
    }

    #[test]
    fn pages_escape_the_message() {
        let r = page_response(&Page {
            ok: false,
            message: "<script>".into(),
        });
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
