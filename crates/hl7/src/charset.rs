//! The character sets of MSH-18 the CI-SIS guides allow: `UNICODE UTF-8` and `8859/15` (Latin-9).
//! Latin-9 is Latin-1 with eight code points changed (€, Š, š, Ž, ž, Œ, œ, Ÿ): a table of eight
//! entries, not worth a dependency.

use crate::{Error, Result};

/// A character set of MSH-18.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    /// `UNICODE UTF-8`; also what an empty MSH-18 (ASCII, HL7's default) is read as.
    #[default]
    Utf8,
    /// `8859/15`.
    Latin9,
}

/// The eight Latin-9 bytes that differ from Latin-1, and their characters.
const LATIN9: [(u8, char); 8] = [
    (0xA4, '€'),
    (0xA6, 'Š'),
    (0xA8, 'š'),
    (0xB4, 'Ž'),
    (0xB8, 'ž'),
    (0xBC, 'Œ'),
    (0xBD, 'œ'),
    (0xBE, 'Ÿ'),
];

impl Charset {
    /// The charset MSH-18 names (first repetition), or an error naming the value.
    pub fn from_msh18(value: &str) -> Result<Self> {
        match value.trim() {
            "" | "ASCII" | "UNICODE UTF-8" => Ok(Charset::Utf8),
            "8859/15" => Ok(Charset::Latin9),
            other => Err(Error::Charset(format!(
                "{other:?} is not allowed: UNICODE UTF-8 or 8859/15"
            ))),
        }
    }

    /// Its MSH-18 value.
    pub fn msh18(self) -> &'static str {
        match self {
            Charset::Utf8 => "UNICODE UTF-8",
            Charset::Latin9 => "8859/15",
        }
    }

    /// `bytes` as text.
    pub fn decode(self, bytes: &[u8]) -> Result<String> {
        match self {
            Charset::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|e| {
                Error::Charset(format!(
                    "UNICODE UTF-8, but byte {} is not UTF-8",
                    e.utf8_error().valid_up_to()
                ))
            }),
            Charset::Latin9 => Ok(bytes
                .iter()
                .map(|&b| {
                    LATIN9
                        .iter()
                        .find(|(code, _)| *code == b)
                        .map_or(char::from(b), |(_, c)| *c)
                })
                .collect()),
        }
    }

    /// `text` in this charset; a character Latin-9 cannot write becomes `?` (HL7 has no escape for it
    /// in 8859/15 but `\X..\`, which is Latin-1 only).
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Latin9 => text
                .chars()
                .map(|c| {
                    if let Some((b, _)) = LATIN9.iter().find(|(_, ch)| *ch == c) {
                        return *b;
                    }
                    match u8::try_from(u32::from(c)) {
                        Ok(b) if !LATIN9.iter().any(|(code, _)| *code == b) => b,
                        _ => b'?',
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin9_round_trip() {
        let text = "Éric Œuvre 5 € Ÿ";
        let bytes = Charset::Latin9.encode(text);
        assert_eq!(bytes.len(), text.chars().count());
        assert_eq!(bytes[13], 0xA4);
        assert_eq!(Charset::Latin9.decode(&bytes).ok().as_deref(), Some(text));
        assert_eq!(Charset::Latin9.encode("¤"), b"?");
    }

    #[test]
    fn refused_charsets_are_named() {
        let e = Charset::from_msh18("UNICODE UTF-16")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("MSH-18: \"UNICODE UTF-16\" is not allowed: UNICODE UTF-8 or 8859/15")
        );
    }
}
