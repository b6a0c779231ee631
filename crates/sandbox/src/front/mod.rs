//! mss's own API LPS fronts: they terminate TLS (STARTTLS), authenticate (XOAUTH2 against the PSC
//! stand-in, or a client certificate then PLAIN), record what the client did, then hand the session to the
//! real servers (Dovecot IMAP, Postfix SMTP) and relay bytes both ways.
//!
//! Terminating TLS and SASL here, rather than in Dovecot, is what lets the sandbox tell a vendor what its
//! client did: whether it sent credentials before STARTTLS, which TLS version it negotiated, whether it used
//! SASL-IR, which mechanism, the certificate it presented, and why a token was refused (Dovecot's loopback
//! connections count as secured and its logs give neither SASL-IR nor plain reasons).

mod imap;
mod smtp;
mod wire;

pub use wire::{parse_bearer, parse_plain};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::psc::TokenValidator;
use crate::{Error, Result};

/// Which front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Front {
    /// IMAP, PER/ORG (XOAUTH2).
    Imap,
    /// Submission, PER/ORG (XOAUTH2).
    Submission,
    /// IMAP, APP (client certificate, PLAIN).
    AppImap,
    /// Submission, APP (client certificate, PLAIN).
    AppSubmission,
}

impl Front {
    /// APP front: client certificate then PLAIN.
    pub fn is_app(self) -> bool {
        matches!(self, Front::AppImap | Front::AppSubmission)
    }
    /// IMAP rather than SMTP.
    pub fn is_imap(self) -> bool {
        matches!(self, Front::Imap | Front::AppImap)
    }
    /// The name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            Front::Imap => "imap",
            Front::Submission => "submission",
            Front::AppImap => "app_imap",
            Front::AppSubmission => "app_submission",
        }
    }
    /// The mechanisms offered after STARTTLS.
    fn mechanisms(self) -> &'static [&'static str] {
        if self.is_app() {
            &["PLAIN"]
        } else {
            &["XOAUTH2", "OAUTHBEARER"]
        }
    }
}

/// What one client connection did, up to its authentication (then the session is the server's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// When it started (RFC 3339, UTC).
    pub at: String,
    /// The front.
    pub front: Option<Front>,
    /// The client's address.
    pub peer: String,
    /// Whether the client sent STARTTLS.
    pub starttls: bool,
    /// The TLS version negotiated (`TLSv1_2`, `TLSv1_3`).
    pub tls_version: Option<String>,
    /// Why the TLS handshake failed.
    pub tls_error: Option<String>,
    /// The subject of the client certificate presented, verified against the sandbox's CA.
    pub client_certificate: Option<String>,
    /// Commands that need TLS, sent before it (`AUTHENTICATE`, `LOGIN`, `AUTH`, `MAIL`).
    pub before_tls: Vec<String>,
    /// The SASL mechanism asked.
    pub mechanism: Option<String>,
    /// Whether the initial response came on the command line (SASL-IR, RFC 4959 / RFC 4954).
    pub sasl_ir: Option<bool>,
    /// The mailbox named.
    pub user: Option<String>,
    /// Whether authentication succeeded.
    pub authenticated: bool,
    /// Why authentication failed, in plain words.
    pub refused: Option<String>,
}

/// Where the fronts write their records: one JSON line per connection, appended.
#[derive(Debug, Clone)]
pub struct Recorder {
    file: Arc<Mutex<std::fs::File>>,
}

impl Recorder {
    /// Appends to `path` (made with its directory).
    pub fn open(path: &Path) -> Result<Recorder> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io(format!("creating {}", parent.display())))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        Ok(Recorder {
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn record(&self, c: &Connection) {
        use std::io::Write;
        let Ok(mut line) = serde_json::to_vec(c) else {
            return;
        };
        line.push(b'\n');
        if let Ok(mut f) = self.file.lock()
            && let Err(e) = f.write_all(&line)
        {
            tracing::warn!(error = %e, "cannot record a connection");
        }
    }
}

/// What the fronts share.
#[derive(Debug)]
pub struct Shared {
    /// The PSC stand-in's keys.
    pub tokens: TokenValidator,
    /// TLS of the PER/ORG fronts (no client certificate asked).
    pub tls: Arc<ServerConfig>,
    /// TLS of the APP fronts (client certificate of the sandbox's CA asked, its absence recorded).
    pub app_tls: Arc<ServerConfig>,
    /// Dovecot's IMAP port.
    pub backend_imap: u16,
    /// Postfix's SMTP port.
    pub backend_smtp: u16,
    /// The secret the fronts log into Dovecot with.
    pub backend_secret: String,
    /// Where connections are recorded.
    pub recorder: Recorder,
}

/// The two TLS configurations from the PKI files.
pub fn tls_configs(
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>)> {
    let crypto = |e: &dyn std::fmt::Display| Error::Crypto(format!("TLS of the fronts: {e}"));
    let chain = mss_lps::read_pem_certificates(cert).map_err(|e| crypto(&e))?;
    let key = mss_lps::read_pem_private_key(key).map_err(|e| crypto(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in mss_lps::read_pem_certificates(ca).map_err(|e| crypto(&e))? {
        roots.add(c).map_err(|e| crypto(&e))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let plain = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| crypto(&e))?
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| crypto(&e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| crypto(&e))?;
    let app = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| crypto(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| crypto(&e))?;
    Ok((Arc::new(plain), Arc::new(app)))
}

/// Serves one front on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, front: Front, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, front = front.name(), "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut record = Connection {
                at: now_rfc3339(),
                front: Some(front),
                peer: peer.to_string(),
                ..Connection::default()
            };
            let result = if front.is_imap() {
                imap::session(stream, front, &shared, &mut record).await
            } else {
                smtp::session(stream, front, &shared, &mut record).await
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, peer = %peer, "connection ended");
            }
        });
    }
}

/// How a front's conversation before the server's session ended.
enum Outcome {
    /// The client left (or was sent away).
    Closed,
    /// STARTTLS accepted: handshake next.
    StartTls,
    /// Authenticated as this mailbox: relay to the server (IMAP: answering the command tagged `tag`).
    Authenticated {
        /// The mailbox.
        user: String,
        /// The IMAP tag of the AUTHENTICATE command (empty for SMTP).
        tag: String,
    },
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The local address a record's peer connected from, for logs.
pub fn peer_ip(peer: &str) -> Option<std::net::IpAddr> {
    peer.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// The part of a session before the relay, the same for both protocols: the front's conversation until the
/// client authenticates (the connection, with the mailbox and IMAP tag it authenticated as), leaves or fails
/// its STARTTLS handshake; TLS once STARTTLS is accepted. The record is written in every case.
async fn until_authenticated(
    mut io: wire::Io,
    front: Front,
    shared: &Shared,
    record: &mut Connection,
) -> std::io::Result<Option<(wire::Io, String, String)>> {
    let mut tls = false;
    let done = loop {
        let outcome = if front.is_imap() {
            imap::converse(&mut io, front, shared, record, tls).await
        } else {
            smtp::converse(&mut io, front, shared, record, tls).await
        };
        match outcome {
            Err(e) => {
                shared.recorder.record(record);
                return Err(e);
            }
            Ok(Outcome::Closed) => break None,
            Ok(Outcome::StartTls) => match wire::handshake(io, front, shared, record).await {
                Some(next) => {
                    io = next;
                    tls = true;
                }
                None => break None,
            },
            Ok(Outcome::Authenticated { user, tag }) => break Some((io, user, tag)),
        }
    };
    shared.recorder.record(record);
    Ok(done)
}
