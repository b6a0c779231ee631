//! API LPS client (docs/mssante.md L1–L7): SMTP submission and IMAP over STARTTLS with XOAUTH2 (PER/ORG mailboxes, Pro
//! Santé Connect token) or a TLS client certificate (APP mailboxes), SRV auto-configuration, sessions that
//! follow the PSC session, and the operator's proof of deployment.
//!
//! Layers, bottom up:
//! - [`smtp::connect`] / [`imap::connect`] give a TLS-protected, unauthenticated connection (STARTTLS is
//!   mandatory, TLS ≥ 1.2, server certificate checked against [`TrustRoots`]); `authenticate` turns it into
//!   an [`smtp::SmtpSession`] / [`imap::ImapSession`]. Credentials cannot be sent before TLS: the types
//!   that can send them only exist after the handshake.
//! - [`LpsClient`] holds the sessions of one mailbox: reuse, idle/age limits, end of the PSC session,
//!   reconnection.
//! - [`discovery`] finds the fronts from DNS SRV; [`proof`] produces the proof of deployment.
//!
//! Secrets ([`AccessToken`], [`Secret`], private keys) never appear in `Debug`/`Display`, logs or errors.

mod auth;
mod conn;
pub mod discovery;
mod error;
pub mod imap;
mod imap_response;
pub mod proof;
mod secret;
mod session;
pub mod smtp;
mod smtp_reply;
mod tls;

pub use auth::{Login, OAuthChallenge, PSC_ISSUER_PRODUCTION, PSC_ISSUER_SANDBOX, TokenPolicy};
pub use conn::{ConnectOptions, Endpoint, Timeouts};
pub use discovery::{DnsResolver, ServerEndpoints, ServerSource, SrvResolver, StaticResolver};
pub use error::{AuthFailure, Error, Protocol, Result, TlsFailure};
pub use mss_types::{BalType, DsnNotify, DsnRequest, DsnReturn, Envelope, MailAddress};
pub use secret::{AccessToken, Secret, TokenClaims};
pub use session::{
    Credentials, LpsClient, MailboxConfig, SessionPolicy, SessionStats, SharedToken, StaticToken,
    TokenError, TokenProvider,
};
pub use smtp::{SendReport, message_envelope, message_id, without_bcc};
pub use tls::{
    CA_FILE_ENV, ClientIdentity, TlsSettings, TrustRoots, certificate_subject,
    read_pem_certificates, read_pem_private_key,
};
