//! # mss-annuaire — the MSSanté directory model and its sources
//!
//! This crate owns what a mailbox (BAL) *is* for mss ([`Entry`] and its typed parts) and how entries are
//! read from the national sources:
//!
//! - [`extraction`]: the public extraction file `Extraction_Correspondance_MSSante` (31 `|`-separated
//!   columns, UTF-8), read streaming from a `.txt`, a `.zip` or stdin, with exact header checking, bad lines
//!   reported and duplicate addresses merged;
//! - [`demo`]: a deterministic generator of realistic synthetic extraction files (the real file cannot be
//!   downloaded in tests), which also provides the embedded default dataset.
//!
//! It depends on no other mss crate: the index, the REST API and the CLI all build on it.

pub mod demo;
pub mod extraction;
pub mod model;

pub use model::{
    BalType, Coded, Department, Entry, MailAddress, Source, Structure, city_of_delivery_line,
};

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
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
