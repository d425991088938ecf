//! Loopback TLS and proxy fixtures: a throwaway CA (made with `rcgen` at test time), a TLS
//! front for any plain loopback server (e.g. the mock provider), and a CONNECT proxy that
//! records what it was asked for and forwards every tunnel to one loopback address, so a
//! provider named `provider.test` is reached without any name being resolved.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A CA and a server certificate it signed, for `127.0.0.1` and `provider.test`.
pub struct TestCa {
    /// The CA certificate, PEM (what `SSL_CERT_FILE` points at).
    pub ca_pem: String,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

impl TestCa {
    /// A fresh CA and server certificate.
    ///
    /// # Panics
    /// If key generation or signing fails.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "authbridge throwaway test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let server_key = KeyPair::generate().expect("server key");
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "provider.test".to_owned()])
                .expect("server params");
        let server = server_params
            .signed_by(&server_key, &ca)
            .expect("server certificate");
        TestCa {
            ca_pem: ca.as_ref().pem(),
            server_cert_der: server.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        }
    }

    /// Writes the CA certificate to `<dir>/ca.pem`; its path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write ca.pem");
        path
    }

    fn server_config(&self) -> rustls::ServerConfig {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .expect("server certificate")
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// TLS on a loopback port in front of a plain server at `backend`; stops when dropped.
pub struct TlsFront {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Listens on `127.0.0.1:0` with `ca`'s server certificate.
    pub async fn start(ca: &TestCa, backend: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config()));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(TlsFront { addr, task })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP proxy on loopback: answers `CONNECT` by tunnelling to `target` (whatever host
/// was named) and records each request line; any other request is recorded and refused.
pub struct ConnectProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ConnectProxy {
    /// Listens on `127.0.0.1:0`; every tunnel goes to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = tunnel(tcp, target, log).await;
                });
            }
        });
        Ok(ConnectProxy { addr, seen, task })
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`/`HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request lines received so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tunnel(
    tcp: TcpStream,
    target: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut client = BufReader::new(tcp);
    let mut request_line = String::new();
    client.read_line(&mut request_line).await?;
    let request_line = request_line.trim_end().to_owned();
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request_line.clone());
    // The rest of the header block.
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    if !request_line.starts_with("CONNECT ") {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(target).await?;
    client
        .get_mut()
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    let mut client = client.into_inner();
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
