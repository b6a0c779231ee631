//! The crate's one error type. Messages name servers, users and commands, never a token, key or password.

use std::fmt;
use std::time::Duration;

use crate::imap_response::ImapStatus;
use crate::smtp_reply::{RecipientResult, SmtpReply};

/// Which protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// SMTP submission.
    Smtp,
    /// IMAP.
    Imap,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Smtp => "SMTP",
            Protocol::Imap => "IMAP",
        })
    }
}

/// Why TLS failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server only speaks a version below TLS 1.2.
    ProtocolVersion,
    /// The server certificate does not chain to the configured trust roots.
    UntrustedCertificate,
    /// The server certificate is not valid for the host name.
    NameMismatch,
    /// The server certificate is expired or not yet valid.
    CertificateExpired,
    /// The server certificate is revoked.
    CertificateRevoked,
    /// The server refused our client certificate during the handshake.
    ClientCertificateRejected,
    /// Any other handshake failure (no common cipher suite, bad message, ...).
    Handshake,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::ProtocolVersion => "the server does not offer TLS 1.2 or later",
            TlsFailure::UntrustedCertificate => {
                "the server certificate is not signed by a trusted authority"
            }
            TlsFailure::NameMismatch => "the server certificate does not match the host name",
            TlsFailure::CertificateExpired => "the server certificate is expired or not yet valid",
            TlsFailure::CertificateRevoked => "the server certificate is revoked",
            TlsFailure::ClientCertificateRejected => "the server refused the client certificate",
            TlsFailure::Handshake => "TLS handshake failed",
        })
    }
}

/// Why authentication failed, as precisely as the server's answer and the token's own claims allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The PSC token has expired (IMAP `[EXPIRED]`, or a refusal of a token whose `exp` is past).
    TokenExpired,
    /// The token was refused and nothing more specific is known (bad signature, revoked, malformed).
    InvalidToken,
    /// The token is valid but not for this mailbox (IMAP `[AUTHORIZATIONFAILED]`, or a refusal of a token
    /// whose user claim names someone else).
    WrongUser,
    /// The token was not issued by Pro Santé Connect.
    UntrustedIssuer,
    /// The client certificate was missing, not trusted, or not accepted for this mailbox (APP).
    CertificateRejected,
    /// The server does not offer the mechanism this mailbox type needs.
    MechanismUnavailable,
    /// The server wants a stronger channel (SMTP 530/538, 534).
    EncryptionRequired,
    /// The server could not check the credentials now (SMTP 454 4.7.0, IMAP `[UNAVAILABLE]`): retry later.
    ServerFault,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::TokenExpired => "the PSC access token has expired",
            AuthFailure::InvalidToken => "the access token was refused",
            AuthFailure::WrongUser => "the access token was issued for another user",
            AuthFailure::UntrustedIssuer => "the access token was not issued by Pro Santé Connect",
            AuthFailure::CertificateRejected => "the client certificate was refused",
            AuthFailure::MechanismUnavailable => "the server does not offer the required mechanism",
            AuthFailure::EncryptionRequired => "the server requires a stronger channel",
            AuthFailure::ServerFault => "the server could not check the credentials (temporary)",
        })
    }
}

/// Everything that can go wrong. [`Error::is_transient`] and [`Error::is_permanent`] drive retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// TCP connection failed.
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// `host:port`.
        server: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("{server}: no answer within {after:?} ({during})")]
    Timeout {
        /// `host:port`.
        server: String,
        /// What was going on.
        during: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// Network I/O failed.
    #[error("{server}: {source}")]
    Io {
        /// `host:port`.
        server: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The server closed the connection (or reset it).
    #[error("{server} closed the connection")]
    ConnectionClosed {
        /// `host:port`.
        server: String,
    },
    /// The server ended the session itself (SMTP 421, IMAP BYE).
    #[error("{server} ended the session: {reply}")]
    ServerShutdown {
        /// `host:port`.
        server: String,
        /// What it said.
        reply: String,
    },
    /// STARTTLS is not offered: nothing is sent that could authenticate (docs/mssante.md L1).
    #[error("{server} does not offer STARTTLS on {protocol}: refusing to go on without TLS")]
    StartTlsUnavailable {
        /// `host:port`.
        server: String,
        /// Which protocol.
        protocol: Protocol,
    },
    /// STARTTLS was refused.
    #[error("{server} refused STARTTLS: {reply}")]
    StartTlsRefused {
        /// `host:port`.
        server: String,
        /// Its answer.
        reply: String,
    },
    /// TLS failed.
    #[error("TLS with {server}: {failure} ({detail})")]
    Tls {
        /// `host:port`.
        server: String,
        /// Kind.
        failure: TlsFailure,
        /// Library detail.
        detail: String,
    },
    /// Authentication failed.
    #[error("authentication of {user} at {server} failed: {failure} (server: {reply})")]
    Auth {
        /// `host:port`.
        server: String,
        /// The mailbox.
        user: String,
        /// Kind.
        failure: AuthFailure,
        /// The server's answer, any echoed credential removed.
        reply: String,
    },
    /// An SMTP command was refused.
    #[error("{server} refused {command}: {reply}")]
    Smtp {
        /// `host:port`.
        server: String,
        /// The command (verb and address, no credentials).
        command: String,
        /// The reply.
        reply: Box<SmtpReply>,
    },
    /// An IMAP command was refused.
    #[error("{server} refused {command}: {status}")]
    Imap {
        /// `host:port`.
        server: String,
        /// The command (no credentials).
        command: String,
        /// The tagged answer.
        status: Box<ImapStatus>,
    },
    /// The message is larger than the server's SIZE.
    #[error("the message is {size} bytes, more than the server's limit of {limit}")]
    MessageTooLarge {
        /// Message size.
        size: u64,
        /// Server limit.
        limit: u64,
    },
    /// Every recipient was refused; nothing was sent.
    #[error("{server} refused every recipient: {}", summary(.results))]
    RecipientsRefused {
        /// `host:port`.
        server: String,
        /// One result per recipient.
        results: Vec<RecipientResult>,
    },
    /// The server lacks something needed.
    #[error("{server} does not support {what}")]
    Unsupported {
        /// `host:port`.
        server: String,
        /// What.
        what: String,
    },
    /// The server broke the protocol.
    #[error("protocol error with {server}: {reason}")]
    Protocol {
        /// `host:port`.
        server: String,
        /// What was wrong.
        reason: String,
    },
    /// DNS failed.
    #[error("DNS lookup of {name}: {reason}")]
    Dns {
        /// The name looked up.
        name: String,
        /// Cause.
        reason: String,
        /// Whether retrying may help (timeouts, SERVFAIL).
        transient: bool,
    },
    /// The domain publishes no SRV record for this service and mailbox type.
    #[error(
        "no SRV record {name} with priority {priority} (auto-configuration, docs/mssante.md L4)"
    )]
    NoService {
        /// `_submission._tcp.<domain>.` or `_imap._tcp.<domain>.`.
        name: String,
        /// 10 (PER/ORG) or 20 (APP).
        priority: u16,
    },
    /// The PSC session has ended: the sessions were closed and will not reopen.
    #[error("the Pro Santé Connect session has ended")]
    SessionEnded,
    /// The token provider could not give a token.
    #[error("no access token: {reason}")]
    TokenUnavailable {
        /// Why.
        reason: String,
    },
    /// Bad configuration (files, names, missing certificate).
    #[error("configuration: {reason}")]
    Config {
        /// What.
        reason: String,
    },
    /// The message or envelope cannot be sent as given.
    #[error("invalid message: {reason}")]
    InvalidMessage {
        /// What.
        reason: String,
    },
}

fn summary(results: &[RecipientResult]) -> String {
    results
        .iter()
        .map(|r| format!("{} ({})", r.recipient, r.reply))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// Retrying later, unchanged, may succeed: network failures, timeouts, 4xx replies, server faults.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::Io { .. }
            | Error::ConnectionClosed { .. }
            | Error::ServerShutdown { .. }
            | Error::TokenUnavailable { .. } => true,
            Error::Auth { failure, .. } => *failure == AuthFailure::ServerFault,
            Error::Smtp { reply, .. } => reply.is_transient(),
            Error::Imap { status, .. } => status.is_transient(),
            Error::RecipientsRefused { results, .. } => {
                results.iter().any(|r| r.reply.is_transient())
            }
            Error::Dns { transient, .. } => *transient,
            _ => false,
        }
    }

    /// Retrying unchanged will never succeed: the message, the recipients, the server or the configuration
    /// must change. Authentication failures other than [`AuthFailure::ServerFault`] are neither transient
    /// nor permanent: they need new credentials ([`Error::needs_credentials`]).
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::StartTlsUnavailable { .. }
            | Error::StartTlsRefused { .. }
            | Error::Tls { .. }
            | Error::MessageTooLarge { .. }
            | Error::Unsupported { .. }
            | Error::Protocol { .. }
            | Error::NoService { .. }
            | Error::Config { .. }
            | Error::InvalidMessage { .. } => true,
            Error::Smtp { reply, .. } => reply.is_permanent(),
            Error::Imap { status, .. } => !status.is_transient(),
            Error::RecipientsRefused { results, .. } => {
                results.iter().all(|r| r.reply.is_permanent())
            }
            Error::Dns { transient, .. } => !*transient,
            Error::Auth { failure, .. } => matches!(
                failure,
                AuthFailure::MechanismUnavailable | AuthFailure::EncryptionRequired
            ),
            _ => false,
        }
    }

    /// The user must authenticate again (new PSC token, other certificate) before anything can go.
    pub fn needs_credentials(&self) -> bool {
        match self {
            Error::SessionEnded => true,
            Error::Auth { failure, .. } => matches!(
                failure,
                AuthFailure::TokenExpired
                    | AuthFailure::InvalidToken
                    | AuthFailure::WrongUser
                    | AuthFailure::UntrustedIssuer
                    | AuthFailure::CertificateRejected
            ),
            _ => false,
        }
    }

    /// The authentication failure, if this is one.
    pub fn auth_failure(&self) -> Option<AuthFailure> {
        match self {
            Error::Auth { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    /// The TLS failure, if this is one.
    pub fn tls_failure(&self) -> Option<TlsFailure> {
        match self {
            Error::Tls { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    /// The connection is gone (a new one may be opened): closed, reset, 421/BYE, I/O failure, timeout.
    pub(crate) fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::ConnectionClosed { .. }
                | Error::ServerShutdown { .. }
                | Error::Io { .. }
                | Error::Timeout { .. }
        )
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
