//! INS (Identifiant National de Santé): the 15-character matricule and its assigning authority.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which INS-NIR assigning authority an INS belongs to (its OID in `patientId` and in the CDA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsAuthority {
    /// Real patients: `1.2.250.1.213.1.4.8`.
    Prod,
    /// Test identities: `1.2.250.1.213.1.4.10`.
    Test,
    /// Demonstration identities: `1.2.250.1.213.1.4.11`.
    Demo,
}

impl InsAuthority {
    /// The OID of this authority.
    pub fn oid(self) -> &'static str {
        match self {
            InsAuthority::Prod => "1.2.250.1.213.1.4.8",
            InsAuthority::Test => "1.2.250.1.213.1.4.10",
            InsAuthority::Demo => "1.2.250.1.213.1.4.11",
        }
    }

    /// The authority of an OID, if it is one of the three INS-NIR OIDs.
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "1.2.250.1.213.1.4.8" => Some(InsAuthority::Prod),
            "1.2.250.1.213.1.4.10" => Some(InsAuthority::Test),
            "1.2.250.1.213.1.4.11" => Some(InsAuthority::Demo),
            _ => None,
        }
    }
}

/// A syntactically valid INS matricule: 13 characters (NIR, Corsica `2A`/`2B` allowed as the
/// department) and a 2-digit key equal to `97 - (NIR mod 97)`, with `2A` read as `19` and `2B` as
/// `18` for the computation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ins(String);

/// Why a string is not an INS. Messages never repeat the value (it identifies a patient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsError {
    /// Not 15 characters.
    Length(usize),
    /// A character that is neither a digit nor the Corsican department letter.
    Character,
    /// The key (last two digits) does not match the first 13 characters.
    Key,
}

impl fmt::Display for InsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsError::Length(n) => write!(f, "an INS has 15 characters, found {n}"),
            InsError::Character => f.write_str(
                "an INS is made of digits (department 2A or 2B allowed at positions 6-7)",
            ),
            InsError::Key => f.write_str("the INS key (last 2 digits) does not match"),
        }
    }
}

impl std::error::Error for InsError {}

impl Ins {
    /// Checks length, characters and key. Lower-case `2a`/`2b` are accepted and stored upper-case.
    pub fn parse(value: &str) -> Result<Self, InsError> {
        let n = value.chars().count();
        if n != 15 {
            return Err(InsError::Length(n));
        }
        let upper = value.to_ascii_uppercase();
        let b = upper.as_bytes();
        let corsica = match &b[5..7] {
            b"2A" => Some(19u64),
            b"2B" => Some(18u64),
            _ => None,
        };
        let mut nir: u64 = 0;
        for (i, &c) in b[..13].iter().enumerate() {
            let digit = if (5..7).contains(&i) && corsica.is_some() {
                continue;
            } else if c.is_ascii_digit() {
                u64::from(c - b'0')
            } else {
                return Err(InsError::Character);
            };
            nir = nir * 10 + digit;
            if i == 4
                && let Some(dept) = corsica
            {
                nir = nir * 100 + dept;
            }
        }
        let mut key = 0u64;
        for &c in &b[13..] {
            if !c.is_ascii_digit() {
                return Err(InsError::Character);
            }
            key = key * 10 + u64::from(c - b'0');
        }
        if key != 97 - nir % 97 {
            return Err(InsError::Key);
        }
        Ok(Ins(upper))
    }

    /// The 15 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ans_test_identities_are_valid() {
        for s in ["279035121518989", "162018885045327", "146026322000196"] {
            assert_eq!(Ins::parse(s).map(|i| i.0), Ok(s.to_string()));
        }
    }

    #[test]
    fn corsica_is_read_as_19_and_18() {
        // 1 85 07 2A 123 456 is computed as 1850719123456 (key 65); 2B as 1850718123456 (key 92).
        assert!(Ins::parse("185072A12345665").is_ok());
        assert_eq!(
            Ins::parse("185072a12345665").map(|i| i.0),
            Ok("185072A12345665".into())
        );
        assert!(Ins::parse("185072B12345692").is_ok());
        assert_eq!(Ins::parse("185072B12345665"), Err(InsError::Key));
    }

    #[test]
    fn bad_inputs_are_named() {
        assert_eq!(Ins::parse("27903512151898"), Err(InsError::Length(14)));
        assert_eq!(Ins::parse("279035121518988"), Err(InsError::Key));
        assert_eq!(Ins::parse("27903512151898X"), Err(InsError::Character));
        assert_eq!(Ins::parse("2790X5121518989"), Err(InsError::Character));
        assert_eq!(Ins::parse("2790351215189é9"), Err(InsError::Character));
        assert_eq!(
            InsError::Key.to_string(),
            "the INS key (last 2 digits) does not match"
        );
    }

    #[test]
    fn authorities_round_trip() {
        for a in [InsAuthority::Prod, InsAuthority::Test, InsAuthority::Demo] {
            assert_eq!(InsAuthority::from_oid(a.oid()), Some(a));
        }
        assert_eq!(InsAuthority::from_oid("1.2.250.1.213.1.4.9"), None);
    }

    proptest! {
        #[test]
        fn any_nir_with_its_key_is_valid(nir in 1_000_000_000_000u64..3_000_000_000_000u64) {
            let s = format!("{nir:013}{:02}", 97 - nir % 97);
            prop_assert!(Ins::parse(&s).is_ok());
            let wrong = format!("{nir:013}{:02}", (97 - nir % 97) % 97 + 1);
            prop_assert_eq!(Ins::parse(&wrong), Err(InsError::Key));
        }
    }
}
