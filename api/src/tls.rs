//! TLS on the listener: the service's certificate, TLS 1.2 and 1.3 only (rustls, aws-lc-rs), HTTP/1.1, and
//! optionally client certificates required from one CA, whose subject names the client (docs/mssante.md S3).
//! PEM files are read by `mss_lps`, the workspace's one TLS configuration place.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use mss_lps::Error;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::Service;

/// A client that has not finished its handshake by then is dropped (a slow one never holds the accept loop:
/// handshakes run beside it).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's TLS configuration: its certificate and key, and the CA client certificates must chain to
/// when required.
#[derive(Clone)]
pub struct ListenerTls {
    config: Arc<ServerConfig>,
    client_certificates: bool,
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTls")
            .field("client_certificates", &self.client_certificates)
            .finish_non_exhaustive()
    }
}

impl ListenerTls {
    /// The certificate chain of `cert` with the private key of `key` (PEM), and with `client_ca` a client
    /// certificate chaining to one of its certificates required at the handshake. Errors name the file at
    /// fault (unreadable, not PEM, key not matching the certificate), never a key.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, Error> {
        let chain = mss_lps::read_pem_certificates(cert)?;
        let private = mss_lps::read_pem_private_key(key)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::Config {
                reason: format!("TLS configuration: {e}"),
            })?;
        let builder = match client_ca {
            Some(ca) => {
                let roots = mss_lps::TrustRoots::from_pem_file(ca)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.store(), provider)
                    .build()
                    .map_err(|e| Error::Config {
                        reason: format!("client CA {}: {e}", ca.display()),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, private)
            .map_err(|e| Error::Config {
                reason: match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "the private key {} does not match the certificate {}",
                        key.display(),
                        cert.display()
                    ),
                    e => format!(
                        "certificate {} with key {}: {e}",
                        cert.display(),
                        key.display()
                    ),
                },
            })?;
        // the service speaks HTTP/1.1 only
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ListenerTls {
            config: Arc::new(config),
            client_certificates: client_ca.is_some(),
        })
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_certificates
    }
}

/// The client certificate of the connection a request came on (only with client certificates required):
/// a request extension, naming the client (an IGC Santé organisation certificate names a legal entity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate's subject, `C=FR, O=…, CN=…`.
    pub subject: String,
}

/// Whether `addr` is a loopback address (127.0.0.0/8, ::1, or IPv4-mapped loopback): the only addresses
/// where plain HTTP is served without being asked for.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Accepts TCP connections and hands out those whose TLS handshake succeeded.
pub(crate) struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    pub(crate) fn new(tcp: TcpListener, tls: &ListenerTls) -> Self {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::clone(&tls.config)),
            handshakes: JoinSet::new(),
        }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // both branches are cancel-safe: axum drops this future when shutting down
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        self.handshakes.spawn(handshake(self.acceptor.clone(), tcp, peer));
                    }
                    Err(e) => {
                        // out of file descriptors and the like: wait rather than spin
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some((stream, peer)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake refused");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Makes, per TLS connection, the service that tells each request its peer address and client certificate.
#[derive(Clone)]
pub(crate) struct MakeTlsService {
    pub(crate) router: Router,
}

impl Service<IncomingStream<'_, TlsListener>> for MakeTlsService {
    type Response = ConnectionService;
    type Error = Infallible;
    type Future = Ready<Result<ConnectionService, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: IncomingStream<'_, TlsListener>) -> Self::Future {
        let peer = *incoming.remote_addr();
        let (_, connection) = incoming.io().get_ref();
        let certificate = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| ClientCertificate {
                subject: mss_lps::certificate_subject(leaf).unwrap_or_default(),
            });
        if let Some(c) = &certificate {
            tracing::info!(%peer, subject = %c.subject, "client certificate accepted");
        }
        ready(Ok(ConnectionService {
            router: self.router.clone(),
            peer,
            certificate,
        }))
    }
}

/// The router, with the connection's peer address (as `ConnectInfo<SocketAddr>`, like on plain HTTP) and
/// client certificate added to each request.
#[derive(Clone)]
pub(crate) struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
}

impl Service<Request> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(c) = &self.certificate {
            request.extensions_mut().insert(c.clone());
        }
        self.router.call(request)
    }
}
