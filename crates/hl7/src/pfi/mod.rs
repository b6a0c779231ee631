//! The PFI's two flows between the DPI and MSSanté (docs/mssante.md H1–H3).
//!
//! - [`sending`]: an `MDM^T02/T10/T04` (2.6) or `ORU^R01` (2.5) of the DPI read as the compose requests
//!   it asks for (recipients from PRT, wishes from the OBX flags and the guide's matrix, the CDA byte for
//!   byte), or the fault that refuses it.
//! - [`listener`]: the MLLP handler that puts those messages in the durable outbox before it answers
//!   `AA`, once per MSH-10 and sending application.
//! - [`business_acks`]: the `ZAM^Z02`/`ZAM^Z03` the receipts of those messages call for, sent back to the
//!   DPI until it acknowledges them.
//! - [`receiving`]: the documents received in the mailbox sent to the DPI as `MDM`, its answer recorded.

pub mod business_acks;
mod config;
pub mod listener;
pub mod receiving;
pub mod sending;

pub use config::Hl7Config;
pub use listener::DpiListener;

/// An acknowledgement as the exchange log keeps it: MSA-1 and the error code and label (ERR-5's
/// application code when given, else ERR-3's).
pub(crate) fn answer(ack: &crate::ack::Ack) -> mss_outbox::exchanges::Answer {
    let (error_code, error_label) = ack.error_code().map(|(c, l)| (c, l.into_owned())).unzip();
    mss_outbox::exchanges::Answer {
        ack: ack.code.as_str().to_owned(),
        error_code,
        error_label,
    }
}
