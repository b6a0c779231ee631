//! The crate's one error type. Messages name files, ports and programs, never a token or a key.

use std::path::PathBuf;

/// What went wrong in the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The system error.
        source: std::io::Error,
    },
    /// A program the sandbox runs is missing.
    #[error("{program} is not installed (install it with: {install})")]
    Missing {
        /// The program.
        program: &'static str,
        /// The command that installs it.
        install: &'static str,
    },
    /// The sandbox could not be started.
    #[error("the sandbox did not start: {0}")]
    Start(String),
    /// No sandbox runs from that directory.
    #[error("no sandbox is running from {0} (start one with `mss sandbox start --dir {0}`)")]
    NotRunning(PathBuf),
    /// A sandbox already runs from that directory.
    #[error("a sandbox already runs from {0} (stop it with `mss sandbox stop --dir {0}`)")]
    AlreadyRunning(PathBuf),
    /// A key or certificate could not be made or read.
    #[error("{0}")]
    Crypto(String),
    /// A setting or an argument is wrong (the text names it).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
