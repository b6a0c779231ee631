//! # mss-message — compose and read MSSanté messages
//!
//! This crate turns a [`ComposeRequest`] (the JSON body of `POST /v1/messages/compose` and of
//! `mss compose --json`) into the exact bytes of an MSSanté message, and reads such messages back:
//!
//! - [`compose()`]: validation (sender label, recipients, espace de confiance, Mon espace santé rules, size),
//!   the `IHE_XDM.zip` archive ([`xdm`], [`metadata`]) built from the CDA R2 headers ([`cda`]), the
//!   MIME message with the Ségur headers `X-MSS-NIL`, `X-MSS-CODECDA`, `X-MSS-INS`, `X-MSS-MES`,
//!   and the SMTP envelope with its DSN parameters ([`ComposedMessage`]);
//! - [`read_message()`]: an incoming message with its bodies, its XDM archives (hashes, sizes and
//!   patient verified), its `X-MSS-*` headers, whether it comes from a patient ([`patient`]) and,
//!   for a DSN or an MDN, the report correlated to the original Message-ID ([`receipt`]); a faulty
//!   message is read as far as it goes and flagged with its `problems`, never refused, and its
//!   JSON view ([`MessageView`]) is what the inbox shows;
//! - [`check::check_message`]: the conformance check of any message (docs/mssante.md K1), each finding
//!   with its Référentiel #2 rule, severity, place and reason, read by the same reader;
//! - [`mdn::build_mdn`]: the RFC 8098 read receipt (success or `processed/Error`) of a received
//!   message, as the ANS volet describes it;
//! - [`Whitelist`]: the national domain whitelist (`listeblanchemssante.xml` + its SHA-256 checksum);
//! - [`Trust`]: the espace de confiance every path checks: the installed whitelist, or `*.mssante.fr`.
//!
//! Nothing here performs I/O besides reading and installing the whitelist ([`Whitelist::from_files`],
//! [`Trust::installed`], [`trust::install`]): sending is the `lps` crate's job.
//! Every function is pure given its [`Env`] (clock and random source), so tests pin exact bytes.
//!
//! Errors name the request field at fault in a JSON-path-like form (`documents[0].cda.content`,
//! `recipients.to[1]`) and never quote document contents.

pub mod cda;
pub mod check;
mod compose;
mod env;
pub mod ins;
pub mod mdn;
pub mod metadata;
pub mod patient;
mod read;
pub mod receipt;
mod request;
pub mod trust;
pub mod whitelist;
pub mod xdm;
mod xml;

pub use compose::{ComposedMessage, compose, compose_with};
pub use env::Env;
pub use ins::{Ins, InsAuthority};
pub use mss_types::{DsnNotify, DsnRequest, DsnReturn, Envelope, MailAddress};
pub use read::{
    AttachmentView, MessageView, MssHeaders, PARSER_FAILURE, PatientView, ReceivedAttachment,
    ReceivedMessage, Redacted, XdmAttachment, XdmDocumentView, XdmView, header_fields,
    read_message,
};
pub use receipt::Report;
pub use request::{
    Attachment, Body, ClassifiedCode, ComposeConfig, ComposeRequest, Content, Document,
    EndOfExchangeStyle, PatientRequest, Receipts, Recipients, Rendering, Sender, SenderKind, Sex,
};
pub use trust::{Trust, in_mssante_domain};
pub use whitelist::Whitelist;

/// The domain of Mon espace santé patient mailboxes (`<INS>@patient.mssante.fr`).
pub const PATIENT_DOMAIN: &str = "patient.mssante.fr";

/// Errors of the message crate: each names where the problem is and why, never with document contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request field that does not fit its format (the caller must fix the request).
    #[error("{field}: {reason}")]
    Invalid {
        /// JSON-path-like field name, e.g. `documents[0].cda.content`.
        field: String,
        /// Why the value was refused.
        reason: String,
    },
    /// A well-formed request that an MSSanté rule forbids (whitelist, patient, size).
    #[error("{field}: {reason}")]
    Refused {
        /// JSON-path-like field name, e.g. `recipients.to[1]`.
        field: String,
        /// The rule that refuses it.
        reason: String,
    },
    /// The service configuration cannot compose anything (e.g. no product reference).
    #[error("config.{field}: {reason}")]
    Config {
        /// Configuration field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Incoming data (message, archive, METADATA.XML, report) that cannot be read.
    #[error("{part}: {reason}")]
    Malformed {
        /// The part at fault, e.g. `IHE_XDM.zip/IHE_XDM/SUBSET01/DOC00001.XML`.
        part: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The whitelist file or its checksum is unusable.
    #[error("whitelist: {0}")]
    Whitelist(String),
    /// Reading a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn refused(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Refused {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(part: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Malformed {
            part: part.into(),
            reason: reason.into(),
        }
    }

    /// The request field (or incoming part) the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } | Error::Refused { field, .. } => Some(field),
            Error::Config { field, .. } => Some(field),
            Error::Malformed { part, .. } => Some(part),
            Error::Whitelist(_) | Error::Io { .. } => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
