//! HL7 v2 as the hospital integration platform (PFI) speaks it with the DPI, per the two CI-SIS guides
//! *Transmission de documents CDA en HL7v2* and *Transmission au LPS de documents CDA provenant d'un
//! courriel MSSanté* (docs/mssante.md H1–H3).
//!
//! - [`Message`] / [`Segment`]: parser and writer of ER7 messages (any segment, the guides' MSH, EVN,
//!   PID, PV1, ORC, OBR, TXA, OBX with ED data, PRT, NTE, MSA, ERR, ZAM among them), escape sequences,
//!   the character sets the guides allow (`UNICODE UTF-8`, `8859/15`). Written by hand: the Rust crates
//!   of the field (`hl7-parser`, `rust-hl7`) parse only (no writer), and neither reads ISO 8859-15;
//!   a PFI must write exactly what it reads (the CDA byte for byte, escapes kept).
//! - [`ack`]: acknowledgements (`MSA`, `ERR` with the 0357 codes) made and read.
//! - [`mllp`]: MLLP framing (`0x0B … 0x1C 0x0D`), a client that reconnects and resends the same bytes
//!   (same MSH-10), a server that answers one message at a time per connection.
//! - `pfi` (feature `pfi`): the two flows between the DPI and MSSanté, on the outbox and the inbox.

pub mod ack;
mod charset;
mod delimiters;
mod error;
mod message;
pub mod mllp;
#[cfg(feature = "pfi")]
pub mod pfi;

pub use ack::{AckCode, Fault};
pub use charset::Charset;
pub use delimiters::{Delimiters, escape, unescape};
pub use error::{Error, Result};
pub use message::{Message, Segment, Value};

/// Parses arbitrary bytes as an HL7 message and, when they parse, writes and re-reads them: nothing may
/// panic, and what is written must read back as the same message. The body of the fuzz target and of
/// the property tests.
pub fn fuzz_one(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        let written = m.to_bytes();
        let again = Message::parse(&written);
        assert!(
            again.as_ref().is_ok_and(|a| a == &m),
            "a parsed message must read back as itself once written"
        );
        for s in m.segments() {
            for n in 0..s.len() {
                let v = s.field(n);
                let _ = v.text();
                for r in v.repetitions() {
                    let _ = r.component(1).sub(1).text();
                }
            }
        }
        let _ = ack::Ack::read(&m);
    }
    let mut frames = mllp::FrameDecoder::new(1 << 20);
    let _ = frames.push(data);
}
