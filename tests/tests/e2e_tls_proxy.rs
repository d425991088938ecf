//! End to end, TLS trust and proxies (docs/protocol.md §5): a loopback HTTPS provider with a
//! certificate from a throwaway CA is trusted through `SSL_CERT_FILE` and only then; a
//! provider named by a host name is reached through `HTTPS_PROXY` (a loopback CONNECT proxy
//! that tunnels to the loopback provider, so no name is resolved); a loopback provider is
//! never proxied, over HTTPS or plain HTTP.

use authbridge_testkit::tls::{ConnectProxy, TestCa, TlsFront};
use authbridge_testkit::{MockOptions, Session, SessionBuilder};
use serde_json::Value;

const KEY: &str = "corp-env-key";

/// Everything a test needs: the CA, the mock behind a TLS front, a CONNECT proxy to it.
struct Fixture {
    _dir: tempfile::TempDir,
    ca_file: String,
    /// The mock's plain `http://127.0.0.1:<port>/v1`.
    plain_url: String,
    front: TlsFront,
    proxy: ConnectProxy,
}

/// A session whose provider `corp` is at `base_url`, authenticated by an env key, with
/// the proxy variables cleared and then `env` applied.
async fn session(base_url: &str, env: &[(&str, &str)]) -> Session {
    let mut builder = SessionBuilder {
        mock: MockOptions::with_tokens([KEY]),
        ..SessionBuilder::default()
    }
    .config("model_provider=corp")
    .config("model_providers.corp.name=Corp")
    .config(&format!("model_providers.corp.base_url=\"{base_url}\""))
    .config("model_providers.corp.env_key=CORP_KEY")
    .env("CORP_KEY", KEY);
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        builder = builder.env(name, "");
    }
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    builder.start().await
}

/// The fixture around `s`'s mock provider.
async fn fixture(s: &Session) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_ca(dir.path()).display().to_string();
    let front = TlsFront::start(&ca, s.mock.addr()).await.unwrap();
    let tls_addr = format!("127.0.0.1:{}", front.port()).parse().unwrap();
    let proxy = ConnectProxy::start(tls_addr).await.unwrap();
    Fixture {
        _dir: dir,
        ca_file,
        plain_url: s.mock.url(),
        front,
        proxy,
    }
}

fn status(done: &Value) -> &str {
    done["status"].as_str().unwrap_or_default()
}

fn message(done: &Value) -> String {
    done["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Starts a first session only to host the mock the fixture wraps, then the real one with
/// `env` built from the fixture. The mock and the fixture outlive the returned session.
async fn with_fixture<F>(base: impl Fn(&Fixture) -> String, env: F) -> (Session, Session, Fixture)
where
    F: Fn(&Fixture) -> Vec<(String, String)>,
{
    let backend = session("http://127.0.0.1:9/v1", &[]).await;
    let fx = fixture(&backend).await;
    let env = env(&fx);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = session(&base(&fx), &env).await;
    (backend, s, fx)
}

#[tokio::test]
async fn an_https_provider_signed_by_a_ca_in_ssl_cert_file_is_trusted() {
    let (backend, s, fx) = with_fixture(
        |fx| format!("https://127.0.0.1:{}/v1", fx.front.port()),
        |fx| vec![("SSL_CERT_FILE".into(), fx.ca_file.clone())],
    )
    .await;
    let done = s.turn("over tls").await;
    assert_eq!(status(&done), "completed", "{done}");
    assert_eq!(
        backend.mock.authorizations(),
        vec![Some(format!("Bearer {KEY}"))]
    );
    assert!(fx.proxy.requests().is_empty());
}

#[tokio::test]
async fn without_the_ca_the_turn_fails_with_a_tls_error_naming_the_host() {
    let (backend, s, _fx) = with_fixture(
        |fx| format!("https://127.0.0.1:{}/v1", fx.front.port()),
        |_| vec![],
    )
    .await;
    let done = s.turn("over tls").await;
    assert_eq!(status(&done), "failed", "{done}");
    let text = message(&done);
    eprintln!("the TLS failure: {text}");
    assert!(text.contains("https://127.0.0.1:"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert_eq!(backend.mock.request_count(), 0);
}

#[tokio::test]
async fn a_named_https_provider_is_reached_through_the_connect_proxy() {
    let (backend, s, fx) = with_fixture(
        |fx| format!("https://provider.test:{}/v1", fx.front.port()),
        |fx| {
            vec![
                ("SSL_CERT_FILE".into(), fx.ca_file.clone()),
                ("HTTPS_PROXY".into(), fx.proxy.url()),
            ]
        },
    )
    .await;
    let done = s.turn("via the proxy").await;
    assert_eq!(status(&done), "completed", "{done}");
    let port = fx.front.port();
    let requests = fx.proxy.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("CONNECT provider.test:{port} "))),
        "{requests:?}"
    );
    assert_eq!(backend.mock.request_count(), 1);
}

#[tokio::test]
async fn a_loopback_https_provider_never_goes_through_the_proxy() {
    let (backend, s, fx) = with_fixture(
        |fx| format!("https://127.0.0.1:{}/v1", fx.front.port()),
        |fx| {
            vec![
                ("SSL_CERT_FILE".into(), fx.ca_file.clone()),
                ("HTTPS_PROXY".into(), fx.proxy.url()),
                ("ALL_PROXY".into(), fx.proxy.url()),
            ]
        },
    )
    .await;
    let done = s.turn("direct").await;
    assert_eq!(status(&done), "completed", "{done}");
    assert_eq!(fx.proxy.requests(), Vec::<String>::new());
    assert_eq!(backend.mock.request_count(), 1);
}

#[tokio::test]
async fn the_bearer_for_a_plain_http_loopback_provider_never_goes_through_http_proxy() {
    let (backend, s, fx) = with_fixture(
        |fx| fx.plain_url.clone(),
        |fx| {
            vec![
                ("HTTP_PROXY".into(), fx.proxy.url()),
                ("http_proxy".into(), fx.proxy.url()),
                ("ALL_PROXY".into(), fx.proxy.url()),
            ]
        },
    )
    .await;
    let done = s.turn("plain").await;
    assert_eq!(status(&done), "completed", "{done}");
    assert_eq!(fx.proxy.requests(), Vec::<String>::new());
    assert_eq!(
        backend.mock.authorizations(),
        vec![Some(format!("Bearer {KEY}"))]
    );
}
