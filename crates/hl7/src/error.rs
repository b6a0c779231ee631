//! The crate's one error type.

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading, writing or exchanging HL7.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not an HL7 v2 message: `location` is where (`MSH-2`, `segment 4`, `PID-3`).
    #[error("{location}: {reason}")]
    Parse {
        /// Segment and field, HL7 style.
        location: String,
        /// Why.
        reason: String,
    },
    /// MSH-18 names a character set the guides do not allow, or the bytes are not in it.
    #[error("MSH-18: {0}")]
    Charset(String),
    /// The MLLP stream broke its framing (a byte outside a block, a block too large).
    #[error("MLLP framing: {0}")]
    Framing(String),
    /// The peer could not be reached or the connection broke.
    #[error("{peer}: {source}")]
    Io {
        /// `HOST:PORT`.
        peer: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The peer did not answer in time.
    #[error("{peer}: no answer after {after:?} ({what})")]
    Timeout {
        /// `HOST:PORT`.
        peer: String,
        /// What was awaited.
        what: &'static str,
        /// How long.
        after: std::time::Duration,
    },
    /// The peer answered with something that is not an acknowledgement of what was sent.
    #[error("{peer}: {reason}")]
    Protocol {
        /// `HOST:PORT`.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A configuration value is wrong (`[hl7]`).
    #[error("[hl7] {0}")]
    Config(String),
    /// The outbox or the inbox failed.
    #[cfg(feature = "pfi")]
    #[error(transparent)]
    Outbox(#[from] mss_outbox::Error),
}

impl Error {
    /// A parse error at `location`.
    pub fn parse(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Parse {
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// Trying again later may succeed (the peer was down, slow, or cut the connection).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Io { .. } | Error::Timeout { .. } => true,
            #[cfg(feature = "pfi")]
            Error::Outbox(e) => e.is_transient(),
            _ => false,
        }
    }

    /// Trying again the same way cannot succeed.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }
}
