//! # mss-types — the mail vocabulary shared by the mss crates
//!
//! Defined once here, used by the directory (`mss-annuaire`), the API LPS client (`mss-lps`), message
//! composition (`mss-message`) and the outbox (`mss-outbox`):
//!
//! - [`MailAddress`]: a checked mailbox address, and [`BalType`], the kind of mailbox;
//! - [`Secret`]: a password, key or token that never reaches a log line;
//! - [`Envelope`]: the SMTP sender and recipients of one message, with its [`DsnRequest`];
//! - [`xtext`]: the RFC 3461 encoding of DSN parameters, both ways;
//! - [`hex()`] and [`push_hex`]: lower-case hexadecimal of a byte string;
//! - [`text::fold_latin`]: the ASCII form of the accented Latin letters of names;
//! - [`span::parse_span`]: a span of time of a configuration file (`15m`, `24h`).
//!
//! It depends on no other mss crate and on nothing that performs I/O besides reading a secret file.

mod address;
mod dsn;
mod envelope;
mod secret;
pub mod span;
pub mod text;
pub mod xtext;

pub use address::{AddressFault, BalType, MailAddress};
pub use dsn::{DsnNotify, DsnRequest, DsnReturn};
pub use envelope::Envelope;
pub use secret::Secret;

/// The one way a shared type refuses input: a value that does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
#[non_exhaustive]
pub struct Error {
    /// Field name, e.g. `address`.
    pub field: &'static str,
    /// Why the value was refused.
    pub reason: String,
}

impl Error {
    /// `field` refused for `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Error {
            field,
            reason: reason.into(),
        }
    }
}

/// Lower-case hexadecimal of a byte string (hashes, keys).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends the lower-case hexadecimal of `bytes` to `out` (identifiers built piece by piece).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xAB, 0x0f]), "00ab0f");
        assert_eq!(hex(&[]), "");
        let mut s = String::from("id-");
        push_hex(&mut s, &[0xFE, 0x01]);
        assert_eq!(s, "id-fe01");
    }
}
