//! The mailbox address and the kind of mailbox.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Kind of mailbox (`Type de BAL`, TRE_R257-TypeBAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BalType {
    /// Personal: one health professional.
    Per,
    /// Organisational: a service or structure.
    Org,
    /// Applicative: a machine sender (lab system, hospital PFI/DPI).
    App,
    /// Cabinet (group practice).
    Cab,
}

impl BalType {
    /// Every variant, in code order.
    pub const ALL: [BalType; 4] = [BalType::Per, BalType::Org, BalType::App, BalType::Cab];

    /// The national code: `PER`, `ORG`, `APP` or `CAB`.
    pub fn code(self) -> &'static str {
        match self {
            BalType::Per => "PER",
            BalType::Org => "ORG",
            BalType::App => "APP",
            BalType::Cab => "CAB",
        }
    }
}

impl fmt::Display for BalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for BalType {
    type Err = Error;

    /// Accepts the national codes, in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        BalType::ALL
            .into_iter()
            .find(|t| t.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error {
                field: "bal_type",
                reason: format!("`{s}` is not one of PER, ORG, APP, CAB"),
            })
    }
}

/// A validated mailbox address: ASCII local part kept as written, domain in lower case.
///
/// MSSanté addresses are plain `local@domain` (no quoted local parts, no comments, no IP literals), so the
/// check is the RFC 5321 dot-atom subset actually used by operators, not the whole RFC 5322 grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailAddress(String);

/// Local part + `@` + domain, RFC 5321 §4.5.3.1.
const MAX_ADDRESS_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// Why [`MailAddress::check`] refused an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressFault {
    /// Nothing but blanks.
    Empty,
    /// Longer than the 254 characters of RFC 5321 (the length found).
    TooLong(usize),
    /// A character outside ASCII.
    NonAscii,
    /// No `@`.
    NoAt,
    /// The local part is empty, too long, or has a character or a `.` out of place.
    LocalPart,
    /// The domain is not dotted host name labels.
    Domain,
}

impl fmt::Display for AddressFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressFault::Empty => f.write_str("is empty"),
            AddressFault::TooLong(len) => {
                write!(f, "is {len} characters long, more than {MAX_ADDRESS_LEN}")
            }
            AddressFault::NonAscii => f.write_str("non-ASCII addresses are not supported"),
            AddressFault::NoAt => f.write_str("not an e-mail address"),
            AddressFault::LocalPart => f.write_str("invalid local part"),
            AddressFault::Domain => f.write_str("invalid domain"),
        }
    }
}

impl AddressFault {
    /// The fault then the address as it may be shown (`invalid domain: a@b.fr`), as a request field's
    /// error says it; the address is left out when it is empty or too long.
    pub fn describe(self, raw: &str) -> String {
        match self {
            AddressFault::Empty | AddressFault::TooLong(_) => self.to_string(),
            _ => format!("{self}: {}", printable(raw.trim())),
        }
    }
}

impl MailAddress {
    /// Parses and normalises `raw` (surrounding blanks removed, domain lower-cased): [`MailAddress::check`]
    /// with an error about the field `address` that quotes the address first.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        MailAddress::check(raw).map_err(|fault| Error {
            field: "address",
            reason: match fault {
                AddressFault::Empty | AddressFault::TooLong(_) => fault.to_string(),
                _ => format!("`{}`: {fault}", printable(raw.trim())),
            },
        })
    }

    /// The one address check: surrounding blanks removed, ASCII dot-atom local part of at most 64
    /// characters, a dotted domain of host name labels (lower-cased), 254 characters at most.
    pub fn check(raw: &str) -> Result<Self, AddressFault> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(AddressFault::Empty);
        }
        if !raw.is_ascii() {
            return Err(AddressFault::NonAscii);
        }
        let Some((local, domain)) = raw.rsplit_once('@') else {
            return Err(AddressFault::NoAt);
        };
        if raw.len() > MAX_ADDRESS_LEN {
            return Err(AddressFault::TooLong(raw.len()));
        }
        if local.is_empty()
            || local.len() > MAX_LOCAL_LEN
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local.chars().all(|c| is_atext(c) || c == '.')
        {
            return Err(AddressFault::LocalPart);
        }
        let domain = domain.to_ascii_lowercase();
        let labels_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= MAX_LABEL_LEN
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !labels_ok {
            return Err(AddressFault::Domain);
        }
        Ok(MailAddress(format!("{local}@{domain}")))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    /// The lower-case domain.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// RFC 5322 `atext`.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// An address as it may appear in an error: control characters (a header injection) removed, length
/// bounded.
fn printable(a: &str) -> String {
    a.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ADDRESS_LEN)
        .collect()
}

impl fmt::Display for MailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MailAddress {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        MailAddress::parse(s)
    }
}

impl TryFrom<String> for MailAddress {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        MailAddress::parse(&s)
    }
}

impl From<MailAddress> for String {
    fn from(a: MailAddress) -> String {
        a.0
    }
}

impl AsRef<str> for MailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        let a = MailAddress::parse("  Jean.Dupont@Medecin.MSSante.FR ").unwrap();
        assert_eq!(a.as_str(), "Jean.Dupont@medecin.mssante.fr");
        assert_eq!(a.domain(), "medecin.mssante.fr");
        assert_eq!(a.local_part(), "Jean.Dupont");
        for bad in [
            "",
            "nobody",
            "@x.fr",
            "a@",
            "a@localhost",
            "a..b@x.fr",
            "a b@x.fr",
            "a@-x.fr",
            "a@x..fr",
            "é@x.fr",
        ] {
            let err = MailAddress::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("address: "), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_name_the_fault_and_quote_a_printable_address() {
        let parse = |raw: &str| MailAddress::parse(raw).err().map(|e| e.to_string());
        assert_eq!(
            parse("jean dupont@Medecin.MSSante.fr").as_deref(),
            Some("address: `jean dupont@Medecin.MSSante.fr`: invalid local part")
        );
        assert_eq!(parse(" ").as_deref(), Some("address: is empty"));
        let describe = |raw: &str| MailAddress::check(raw).err().map(|f| f.describe(raw));
        assert_eq!(
            describe("a@b\r\n.fr").as_deref(),
            Some("invalid domain: a@b.fr")
        );
        assert_eq!(
            describe("not an address").as_deref(),
            Some("not an e-mail address: not an address")
        );
        assert_eq!(
            describe("é@x.fr").as_deref(),
            Some("non-ASCII addresses are not supported: é@x.fr")
        );
    }

    #[test]
    fn bal_types_read_in_any_case() {
        assert_eq!(" per ".parse::<BalType>().ok(), Some(BalType::Per));
        let err = "XYZ".parse::<BalType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "bal_type: `XYZ` is not one of PER, ORG, APP, CAB"
        );
    }
}
