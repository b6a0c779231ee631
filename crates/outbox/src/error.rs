//! The crate's error: the store could not persist or read, or the input is not acceptable.

/// Everything that can go wrong in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store cannot be reached or cannot write now (database down, disk full, locked too long):
    /// nothing was persisted, retrying later may succeed.
    #[error("the outbox store is unavailable: {reason}")]
    Unavailable {
        /// What the database said (no credentials: connection strings are never included).
        reason: String,
    },
    /// The store answered something unexpected (corrupt row, schema mismatch).
    #[error("the outbox store failed: {reason}")]
    Store {
        /// What went wrong.
        reason: String,
    },
    /// The mailbox could not be read (receipts): the server, the network or the credentials.
    #[error("reading the mailbox failed: {0}")]
    Mailbox(#[from] mss_lps::Error),
    /// An item cannot be accepted as given.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// An item that an MSSanté rule refuses (a recipient outside the whitelist, a sender that is not the
    /// batch's): the request is well formed, the item cannot go.
    #[error("refused {field}: {reason}")]
    Refused {
        /// The field at fault.
        field: String,
        /// The rule.
        reason: String,
    },
    /// This service cannot handle such an item as it is configured (compose requests without a product
    /// reference).
    #[error("{field}: {reason}")]
    Unconfigured {
        /// The field at fault.
        field: String,
        /// What is missing.
        reason: String,
    },
    /// An input of a batch run (a file, a manifest line) cannot be read as an item.
    #[error("{item}: {reason}")]
    Input {
        /// The file or `manifest:line`.
        item: String,
        /// Why.
        reason: String,
    },
    /// A received message's files could not be written out (`mss inbox export`).
    #[error("exporting to {path}: {reason}")]
    Export {
        /// The file or directory.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// A service's configuration of the outbox is not acceptable (`[[senders]]`).
    #[error("{0}")]
    Config(String),
    /// Another live process holds this worker name on this outbox (see [`crate::Store::hold_worker_name`]).
    #[error(
        "the worker name {name:?} is in use by another live process on this outbox; give each \
         concurrent process its own worker name (`mss batch --worker`, `[outbox] worker` of `mss serve`)"
    )]
    WorkerNameInUse {
        /// The name.
        name: String,
    },
    /// Items for a batch that another client created (or, for the command line, a client's batch): nothing
    /// was stored. The other owner is not named.
    #[error("the batch {batch:?} belongs to another client")]
    BatchOwner {
        /// The batch.
        batch: String,
    },
}

impl Error {
    /// Retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Mailbox(e) => e.is_transient(),
            other => matches!(other, Error::Unavailable { .. }),
        }
    }

    /// Retrying the same call will never succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Mailbox(e) => e.is_permanent(),
            other => matches!(
                other,
                Error::Invalid { .. }
                    | Error::Refused { .. }
                    | Error::Input { .. }
                    | Error::BatchOwner { .. }
            ),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        let transient = matches!(
            e.sqlite_error_code(),
            Some(
                C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::DiskFull
                    | C::SystemIoFailure
                    | C::CannotOpen
                    | C::ReadOnly
                    | C::OutOfMemory
            )
        );
        if transient {
            Error::Unavailable {
                reason: e.to_string(),
            }
        } else {
            Error::Store {
                reason: e.to_string(),
            }
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        // a server-side error with a SQLSTATE: classes 08 (connection), 53 (resources: disk full, too many
        // connections), 57 (shutdown) and 40 (serialization, deadlock) may pass later
        let transient = match e.code() {
            None => true,
            Some(c) => ["08", "53", "57", "40"]
                .iter()
                .any(|class| c.code().starts_with(class)),
        };
        // Display of a DbError is its message only; connection strings are never part of it
        let reason = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        if transient {
            Error::Unavailable { reason }
        } else {
            Error::Store { reason }
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Error::Unavailable {
                reason: other.to_string(),
            },
        }
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
