//! The one way authbridge builds an HTTP client (provider calls and the token endpoint):
//! TLS trusting the bundled Mozilla roots and the operating system's store (or, where set,
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` instead of the OS store), and proxies from the
//! environment that never apply to loopback (docs/protocol.md §5): a bearer for
//! `http://127.0.0.1` must not cross a proxy in clear text.

/// What is never proxied, whatever `NO_PROXY` says: every loopback name and address.
pub const NEVER_PROXIED: &str = "localhost,.localhost,127.0.0.0/8,::1";

/// The environment's value of the first of `names` that is set and not empty.
fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// `NO_PROXY`/`no_proxy` plus [`NEVER_PROXIED`].
pub fn no_proxy_list() -> String {
    match env_first(&["NO_PROXY", "no_proxy"]) {
        Some(list) => format!("{list},{NEVER_PROXIED}"),
        None => NEVER_PROXIED.to_owned(),
    }
}

/// A client builder with authbridge's TLS roots and proxy rules; the caller adds timeouts.
///
/// Proxies: `HTTPS_PROXY` (or `ALL_PROXY`) for `https://` URLs, `HTTP_PROXY` (or
/// `ALL_PROXY`) for `http://` ones, upper or lower case, `NO_PROXY` honoured, loopback
/// never. `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set (a CGI request could set it
/// from a `Proxy:` header). An invalid proxy URL fails the build with a message naming
/// the variable.
pub fn client_builder() -> Result<reqwest::ClientBuilder, String> {
    // Our own proxy list replaces reqwest's system proxies, which would proxy loopback.
    let mut builder = reqwest::Client::builder().no_proxy();
    let no_proxy = no_proxy_list();
    let cgi = std::env::var_os("REQUEST_METHOD").is_some();
    let https = env_first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]);
    let http = if cgi {
        env_first(&["ALL_PROXY", "all_proxy"])
    } else {
        env_first(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
    };
    if let Some(url) = https {
        let proxy = reqwest::Proxy::https(&url)
            .map_err(|e| format!("HTTPS_PROXY is not a valid proxy URL: {e}"))?;
        builder = builder.proxy(proxy.no_proxy(reqwest::NoProxy::from_string(&no_proxy)));
    }
    if let Some(url) = http {
        let proxy = reqwest::Proxy::http(&url)
            .map_err(|e| format!("HTTP_PROXY is not a valid proxy URL: {e}"))?;
        builder = builder.proxy(proxy.no_proxy(reqwest::NoProxy::from_string(&no_proxy)));
    }
    Ok(builder.use_rustls_tls().tls_built_in_root_certs(true))
}
