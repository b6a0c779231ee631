//! # mss-annuaire — the MSSanté directory model and its sources
//!
//! This crate owns what a mailbox (BAL) *is* for mss ([`Entry`] and its typed parts) and how entries are
//! read from the national sources:
//!
//! - [`extraction`]: the public extraction file `Extraction_Correspondance_MSSante` (31 `|`-separated
//!   columns, UTF-8), read streaming from a `.txt`, a `.zip` or stdin, with exact header checking, bad lines
//!   reported and duplicate addresses merged;
//! - [`demo`]: a deterministic generator of realistic synthetic extraction files (the real file cannot be
//!   downloaded in tests), which also provides the embedded default dataset;
//! - [`ldap`] (feature `ldap`, on by default): the national LDAP directory (docs/mssante.md D2): an async client
//!   (anonymous or simple bind, plain/StartTLS/LDAPS, timeouts, reconnection), an RFC 4515 filter builder,
//!   the attribute mapping as data, live search that flags partial answers, and the harvest that collects
//!   every entry despite the 100-entry cap;
//! - [`fhir`] (feature `fhir`, on by default): the Annuaire Santé FHIR API v2 (docs/mssante.md D3): typed R4
//!   resources, their mapping to entries, a client (API key, 17 requests/s, retries), full and delta sync;
//! - [`publication`] (feature `publication`, on by default): files the ANS publishes, fetched whole over
//!   HTTPS (the national whitelist and its checksum).
//!
//! It depends on no other mss crate: the index, the REST API and the CLI all build on it.

pub mod demo;
pub mod extraction;
#[cfg(feature = "fhir")]
pub mod fhir;
#[cfg(feature = "ldap")]
pub mod ldap;
pub mod model;
mod prehashed;
#[cfg(feature = "publication")]
pub mod publication;
pub mod sink;

pub use model::{
    BalType, Coded, Department, Entry, MailAddress, Source, Structure, city_of_delivery_line,
};
pub use mss_types::Secret;
pub use sink::HarvestSink;

/// Errors of the directory crate. Each names the field or place at fault and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value that does not fit its field.
    #[error("{field}: {reason}")]
    Invalid {
        /// Field name, snake_case as in [`Entry`].
        field: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// The extraction's header line is not the national one.
    #[error("extraction header: column {column} should be `{expected}`, found `{found}`")]
    Header {
        /// 1-based column number.
        column: usize,
        /// The national column name.
        expected: &'static str,
        /// What the file has there (empty when the header is too short).
        found: String,
    },
    /// The input holds no header at all.
    #[error("extraction: the input is empty (no header line)")]
    Empty,
    /// A zip that holds no `.txt` extraction.
    #[error("extraction zip: {0}")]
    Zip(String),
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The LDAP server could not be reached, or the connection broke (refused, unreachable, reset).
    #[error("LDAP {url}: {reason}")]
    LdapNetwork {
        /// The server's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// TLS with the LDAP server failed (untrusted or mismatched certificate, handshake refused).
    #[error("LDAP {url}: TLS: {reason}")]
    LdapTls {
        /// The server's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The LDAP server did not answer in time (connection or operation timeout of the client).
    #[error("LDAP {url}: no answer to the {operation} within {seconds} s")]
    LdapTimeout {
        /// The server's URL.
        url: String,
        /// `connection`, `bind` or `search`.
        operation: &'static str,
        /// The timeout.
        seconds: f64,
    },
    /// The LDAP server refused the bind (the password is never part of the message).
    #[error("LDAP {url}: bind as `{dn}` refused: {message} (result code {code})")]
    LdapBind {
        /// The server's URL.
        url: String,
        /// The bind DN.
        dn: String,
        /// The LDAP result code.
        code: u32,
        /// Its meaning, and the server's text if any.
        message: String,
    },
    /// The LDAP server answered an operation with an error result.
    #[error("LDAP {url}: the {operation} failed: {message} (result code {code})")]
    LdapOperation {
        /// The server's URL.
        url: String,
        /// `search`, `StartTLS`...
        operation: &'static str,
        /// The LDAP result code.
        code: u32,
        /// Its meaning, and the server's text if any.
        message: String,
    },
    /// A search filter text that is not RFC 4515.
    #[error("LDAP filter: {0}")]
    LdapFilter(String),
    /// Unusable LDAP settings: URL, base DN, mapping, CA file, state file.
    #[error("LDAP configuration: {0}")]
    LdapConfig(String),
    /// The FHIR server could not be reached, or the connection broke.
    #[error("FHIR {what}: {reason}")]
    FhirNetwork {
        /// The request (resource and search), never with the API key.
        what: String,
        /// What failed.
        reason: String,
    },
    /// The FHIR server did not answer within the client's timeout.
    #[error("FHIR {what}: no answer within {seconds} s")]
    FhirTimeout {
        /// The request.
        what: String,
        /// The timeout.
        seconds: f64,
    },
    /// The FHIR server answered with an error status (its `OperationOutcome` diagnostics, or its text).
    #[error("FHIR {what}: HTTP {status}: {diagnostics}")]
    FhirOutcome {
        /// The request.
        what: String,
        /// The HTTP status (200 when a search answered an `OperationOutcome` instead of a `Bundle`).
        status: u16,
        /// The `OperationOutcome` issues, or the start of the body.
        diagnostics: String,
    },
    /// A FHIR answer that does not read: not JSON, an unexpected resource type, an element of the wrong
    /// type.
    #[error("FHIR {resource}{}: {reason}", if field.is_empty() { String::new() } else { format!(", field `{field}`") })]
    FhirResponse {
        /// The resource (`Practitioner/123`) or the request it answered.
        resource: String,
        /// Path of the element at fault (`telecom[0].rank`), empty for the whole answer.
        field: String,
        /// Why it does not read.
        reason: String,
    },
    /// Unusable FHIR settings: base URL, API key, state file, delta window.
    #[error("FHIR configuration: {0}")]
    FhirConfig(String),
    /// A published file could not be downloaded (bad URL, status, size, network).
    #[error("{url}: {reason}")]
    Download {
        /// The file's URL.
        url: String,
        /// What failed.
        reason: String,
        /// The network failed, or the server was busy or failing: later may succeed.
        transient: bool,
    },
}

impl Error {
    /// A field-level validation error.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether trying again later may succeed: the network failed, the server timed out, or it said it
    /// was busy or unavailable (LDAP result codes 51, 52). Everything else is [`Error::is_permanent`].
    pub fn is_transient(&self) -> bool {
        match self {
            Error::LdapNetwork { .. }
            | Error::LdapTimeout { .. }
            | Error::FhirNetwork { .. }
            | Error::FhirTimeout { .. } => true,
            Error::Download { transient, .. } => *transient,
            // 429: over the rate limit; 5xx: the server or the gateway failed
            Error::FhirOutcome { status, .. } => *status == 429 || *status >= 500,
            Error::LdapOperation { code, .. } | Error::LdapBind { code, .. } => {
                matches!(code, 51 | 52)
            }
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    /// Whether trying again without changing anything cannot succeed (bad input, bad settings, refused
    /// credentials, untrusted certificate): the opposite of [`Error::is_transient`].
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }
}

impl From<mss_types::Error> for Error {
    /// A shared type's refusal keeps its shape: a field and a reason.
    fn from(e: mss_types::Error) -> Self {
        Error::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
