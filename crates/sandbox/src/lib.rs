//! The vendor's conformance sandbox (docs/mssante.md K2–K4), the offline equivalent of the agency's online
//! test tools, for any software that speaks the API LPS:
//!
//! - [`psc`]: a Pro Santé Connect stand-in (RS256 tokens, the failing kinds, the validation);
//! - [`operator`]: a reference API LPS operator on loopback, on real Dovecot (mail store, LMTP) and Postfix
//!   (submission relay, delivery), behind mss's own fronts ([`front`]): a PER/ORG front (STARTTLS, XOAUTH2
//!   against the stand-in) and an APP front (STARTTLS with a client certificate of the sandbox's CA, then
//!   PLAIN), which record what each client connection did;
//! - [`responder`]: mailboxes that answer every message with an IHE_XDM message of a test patient;
//! - [`report`]: per client mailbox, each check passed or failed with its reason.
//!
//! Everything lives in one directory ([`Layout`]); [`operator::start`] returns once the operator serves, and
//! [`operator::stop`] leaves nothing behind.

mod error;
pub mod front;
pub mod operator;
mod pki;
pub mod psc;
pub mod report;
pub mod responder;
mod servers;

pub use error::{Error, Result};
pub use operator::{Endpoints, Mailboxes, Responders, StartOptions};
pub use psc::{Psc, TokenKind, TokenValidator};

use std::path::{Path, PathBuf};

/// The domain of the sandbox's mailboxes: a sub-domain of `mssante.fr`, so that the default espace de
/// confiance (docs/mssante.md M8) lets clients write to it.
pub const DOMAIN: &str = "sandbox.mssante.fr";
/// The domain of the auto-responder's mailboxes.
pub const RESPONDER_DOMAIN: &str = "repondeur.sandbox.mssante.fr";
/// The domain of Mon espace santé mailboxes.
pub const PATIENT_DOMAIN: &str = "patient.mssante.fr";
/// A test INS-NIR (qualified, OID 1.2.250.1.213.1.4.10), whose `<INS>@patient.mssante.fr` mailbox the
/// sandbox serves; the same patient as the responder's documents.
pub const TEST_INS: &str = "279037505612309";

/// The test mailboxes of the sandbox.
pub fn mailboxes() -> Mailboxes {
    Mailboxes {
        professional: format!("marie.martin@{DOMAIN}"),
        organisation: format!("secretariat.cardiologie@{DOMAIN}"),
        application: format!("labo.resultats@{DOMAIN}"),
        patient: format!("{TEST_INS}@{PATIENT_DOMAIN}"),
    }
}

/// The auto-responder's mailboxes.
pub fn responders() -> Responders {
    Responders {
        vsm: format!("vsm@{RESPONDER_DOMAIN}"),
        crbio: format!("crbio-xdm@{RESPONDER_DOMAIN}"),
    }
}

/// Where things are in a sandbox directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory (absolute).
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of `dir` (made absolute against the current directory).
    pub fn new(dir: &Path) -> Layout {
        let dir = if dir.is_absolute() {
            dir.to_owned()
        } else {
            std::env::current_dir().unwrap_or_default().join(dir)
        };
        Layout { dir }
    }
    /// A path inside the directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    /// The endpoints file, written once the operator serves.
    pub fn endpoints(&self) -> PathBuf {
        self.path("sandbox.json")
    }
    /// The background process's id.
    pub fn pid(&self) -> PathBuf {
        self.path("sandbox.pid")
    }
    /// The background process's log.
    pub fn log(&self) -> PathBuf {
        self.path("sandbox.log")
    }
    /// The records of client connections (JSON Lines).
    pub fn connections(&self) -> PathBuf {
        self.path("report/connections.jsonl")
    }
    /// The maildir of a mailbox.
    pub fn maildir(&self, address: &str) -> PathBuf {
        self.path("mail").join(address.to_ascii_lowercase())
    }
    /// The address every message is copied to, for the report.
    pub fn journal_address() -> &'static str {
        "journal@journal.invalid"
    }
}
