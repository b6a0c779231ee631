//! TLS: trust roots, the APP client certificate, the rustls configuration (aws-lc-rs only, TLS 1.2 and 1.3)
//! and the mapping of handshake failures to [`TlsFailure`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, PeerIncompatible, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, TlsFailure};
use crate::secret::Secret;

/// Environment variable naming a PEM file whose certificates replace the trust roots.
pub const CA_FILE_ENV: &str = "MSS_CA_FILE";

/// The certificate authorities a server certificate must chain to. In production: the IGC Santé chain
/// (Ref#2 ECO.1.1.10, "the only accepted CA"), given as a PEM file; in tests, the test CA.
#[derive(Clone)]
pub struct TrustRoots {
    store: Arc<RootCertStore>,
    origin: String,
}

impl TrustRoots {
    /// Every certificate of a PEM file (at least one).
    pub fn from_pem_file(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Config {
            reason: format!("cannot read the CA file {}: {e}", path.display()),
        })?;
        Self::from_pem(&bytes, &path.display().to_string())
    }

    /// Every certificate of PEM text; `origin` names it in messages.
    pub fn from_pem(pem: &[u8], origin: &str) -> Result<Self, Error> {
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::Config {
                reason: format!("{origin}: bad PEM certificate: {e}"),
            })?;
            store.add(cert).map_err(|e| Error::Config {
                reason: format!("{origin}: unusable CA certificate: {e}"),
            })?;
        }
        if store.is_empty() {
            return Err(Error::Config {
                reason: format!("{origin}: no certificate found"),
            });
        }
        Ok(TrustRoots {
            store: Arc::new(store),
            origin: origin.to_owned(),
        })
    }

    /// The operating system's store. IGC Santé is usually **not** in it: use this only for operators whose
    /// API LPS front has a public certificate.
    pub fn system() -> Result<Self, Error> {
        let found = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(Error::Config {
                reason: "no usable certificate in the system trust store".into(),
            });
        }
        Ok(TrustRoots {
            store: Arc::new(store),
            origin: "system trust store".into(),
        })
    }

    /// `MSS_CA_FILE` when set, else `None`.
    pub fn from_env() -> Result<Option<Self>, Error> {
        match std::env::var_os(CA_FILE_ENV) {
            Some(p) if !p.is_empty() => Self::from_pem_file(Path::new(&p)).map(Some),
            _ => Ok(None),
        }
    }

    /// Where the roots came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The rustls store of these roots (the listener's client-certificate verifier is built on it).
    pub fn store(&self) -> Arc<RootCertStore> {
        Arc::clone(&self.store)
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether there is none (never true for a built value).
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

impl fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TrustRoots({}, {} certificates)",
            self.origin,
            self.store.len()
        )
    }
}

/// The TLS client certificate of an APP mailbox (IGC Santé ORG AUTH_CLI) with its private key.
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    subject: String,
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        ClientIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            subject: self.subject.clone(),
        }
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientIdentity({}, key [redacted])", self.subject)
    }
}

impl ClientIdentity {
    /// A PKCS#12 file (`.p12`, as the IGC Santé delivers software certificates) and its password.
    pub fn from_pkcs12_file(path: &Path, password: &Secret) -> Result<Self, Error> {
        let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| Error::Config {
            reason: format!("cannot read the certificate {}: {e}", path.display()),
        })?);
        Self::from_pkcs12(&bytes, password, &path.display().to_string())
    }

    /// PKCS#12 bytes; `origin` names them in messages.
    pub fn from_pkcs12(bytes: &[u8], password: &Secret, origin: &str) -> Result<Self, Error> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            bytes,
            password.expose(),
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| Error::Config {
            // the library's message never contains the password
            reason: format!("{origin}: cannot open the PKCS#12 file (wrong password?): {e}"),
        })?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| Error::Config {
            reason: format!("{origin}: no private key with its certificate in the PKCS#12 file"),
        })?;
        let certs: Vec<CertificateDer<'static>> = chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect();
        let subject = chain
            .certs()
            .first()
            .map(|c| c.subject().to_owned())
            .unwrap_or_default();
        if certs.is_empty() {
            return Err(Error::Config {
                reason: format!("{origin}: the private key has no certificate"),
            });
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
        Ok(ClientIdentity {
            chain: certs,
            key,
            subject,
        })
    }

    /// A PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, Error> {
        Ok(ClientIdentity {
            chain: read_pem_certificates(cert)?,
            key: read_pem_private_key(key)?,
            subject: cert.display().to_string(),
        })
    }

    /// The certificate's subject (or file name), for messages.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// Every certificate of a PEM file (at least one), the leaf first: a certificate chain. Errors name the file.
pub fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config {
            reason: format!("{}: bad PEM certificate: {e}", path.display()),
        })?;
    if chain.is_empty() {
        return Err(Error::Config {
            reason: format!("{}: no certificate found", path.display()),
        });
    }
    Ok(chain)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1). Errors name the file, never the key.
pub fn read_pem_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| Error::Config {
        reason: format!("{}: no usable private key: {e}", path.display()),
    })
}

/// The subject of a DER certificate as `C=FR, O=…, CN=…`; `None` when it does not parse.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    p12_keystore::Certificate::from_der(der)
        .ok()
        .map(|c| c.subject().to_owned())
}

fn read_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| Error::Config {
            reason: format!("cannot read {}: {e}", path.display()),
        })
}

/// What a connection needs for TLS.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ClientConfig>,
    roots: TrustRoots,
    has_identity: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("roots", &self.roots)
            .field("client_certificate", &self.has_identity)
            .finish()
    }
}

impl TlsSettings {
    /// TLS 1.2 or 1.3 only, aws-lc-rs, server certificate checked against `roots` (name included), and the
    /// client certificate presented when given.
    pub fn new(roots: TrustRoots, identity: Option<ClientIdentity>) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::Config {
                reason: format!("TLS configuration: {e}"),
            })?
            .with_root_certificates(Arc::clone(&roots.store));
        let has_identity = identity.is_some();
        let config = match identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain, id.key)
                .map_err(|e| Error::Config {
                    reason: format!("client certificate {}: {e}", id.subject),
                })?,
            None => builder.with_no_client_auth(),
        };
        Ok(TlsSettings {
            config: Arc::new(config),
            roots,
            has_identity,
        })
    }

    /// Whether a client certificate is presented.
    pub fn has_client_certificate(&self) -> bool {
        self.has_identity
    }

    /// The trust roots.
    pub fn roots(&self) -> &TrustRoots {
        &self.roots
    }

    /// Runs the handshake over an established TCP stream (after STARTTLS) and checks the version.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        server: &str,
        timeout: std::time::Duration,
    ) -> Result<TlsStream<TcpStream>, Error> {
        let name = ServerName::try_from(host.trim_end_matches('.').to_owned()).map_err(|_| {
            Error::Config {
                reason: format!("`{host}` is not a valid server name"),
            }
        })?;
        let connector = TlsConnector::from(Arc::clone(&self.config));
        let stream = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
            Err(_) => {
                return Err(Error::Timeout {
                    server: server.to_owned(),
                    during: "the TLS handshake",
                    after: timeout,
                });
            }
            Ok(Err(e)) => return Err(io_error(server, e)),
            Ok(Ok(s)) => s,
        };
        let (_, conn) = stream.get_ref();
        let version = conn.protocol_version();
        // rustls cannot negotiate below 1.2; the check documents the requirement (docs/mssante.md L1)
        if !matches!(
            version,
            Some(rustls::ProtocolVersion::TLSv1_2 | rustls::ProtocolVersion::TLSv1_3)
        ) {
            return Err(Error::Tls {
                server: server.to_owned(),
                failure: TlsFailure::ProtocolVersion,
                detail: format!("negotiated {version:?}"),
            });
        }
        tracing::debug!(
            server,
            version = ?version,
            suite = ?conn.negotiated_cipher_suite().map(|s| s.suite()),
            "TLS established"
        );
        Ok(stream)
    }
}

/// The version and cipher suite of an established stream, for reports.
pub(crate) fn describe(stream: &TlsStream<TcpStream>) -> String {
    let (_, conn) = stream.get_ref();
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
        other => format!("{other:?}"),
    };
    match conn.negotiated_cipher_suite() {
        Some(s) => format!("{version}, {:?}", s.suite()),
        None => version,
    }
}

/// Maps an I/O error, which may carry a rustls error, to the crate's error.
pub(crate) fn io_error(server: &str, e: std::io::Error) -> Error {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        Some(t) => Error::Tls {
            server: server.to_owned(),
            failure: classify(&t),
            detail: t.to_string(),
        },
        None if matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        ) =>
        {
            Error::ConnectionClosed {
                server: server.to_owned(),
            }
        }
        None => Error::Io {
            server: server.to_owned(),
            source: e,
        },
    }
}

fn classify(e: &rustls::Error) -> TlsFailure {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsFailure::CertificateExpired,
            CertificateError::Revoked => TlsFailure::CertificateRevoked,
            _ => TlsFailure::UntrustedCertificate,
        },
        E::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled,
        )
        | E::AlertReceived(AlertDescription::ProtocolVersion) => TlsFailure::ProtocolVersion,
        E::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::CertificateRequired
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied,
        ) => TlsFailure::ClientCertificateRejected,
        _ => TlsFailure::Handshake,
    }
}
