//! The PFI's two flows between the DPI and MSSanté (docs/mssante.md H1–H3).
//!
//! - [`sending`]: an `MDM^T02/T10/T04` (2.6) or `ORU^R01` (2.5) of the DPI read as the compose requests
//!   it asks for (recipients from PRT, wishes from the OBX flags and the guide's matrix, the CDA byte for
//!   byte), or the fault that refuses it.
//! - [`listener`]: the MLLP handler that puts those messages in the durable outbox before it answers
//!   `AA`, once per MSH-10 and sending application.

mod config;
pub mod listener;
pub mod receiving;
pub mod sending;

pub use config::Hl7Config;
pub use listener::DpiListener;
