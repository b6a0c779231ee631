//! Client keys: `mss_sk_<id>_<secret>` (secret keys) and `mss_pk_<id>_<secret>` (publishable keys). The id
//! is public (it finds the key without a scan, and names it in lists and the audit); only a digest of the
//! whole key is stored, compared in constant time.

use std::fmt;

use mss_types::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Error;

/// Lower-case RFC 4648 base32 alphabet: unambiguous in a terminal and safe in a header or a URL.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters of a key id (60 bits: unique among a file's keys with overwhelming odds, checked anyway).
pub(crate) const ID_LEN: usize = 12;
/// Characters of the secret part (260 bits of the OS generator).
const SECRET_LEN: usize = 52;
/// Domain separation of the digest.
const DIGEST_CONTEXT: &[u8] = b"mss client key v1\0";

/// Whether a key may be used server-side with any scope, or only in a browser for the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `mss_sk_…`: kept by the client's server, any scope.
    Secret,
    /// `mss_pk_…`: public (in a web page), `directory:read` only, from its origins only.
    Publishable,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "mss_sk_",
            KeyKind::Publishable => "mss_pk_",
        }
    }
}

/// The digest stored for a key: SHA-256 of the whole key. A key carries 260 random bits, so a fast hash
/// is enough (no password-style stretching needed: there is nothing to guess from a dictionary).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// The digest of `key`'s text.
    pub(crate) fn of(key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(DIGEST_CONTEXT);
        h.update(key.as_bytes());
        KeyDigest(h.finalize().into())
    }

    /// Whether `other` is the same digest, in time independent of where they differ.
    pub(crate) fn matches(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// `sha256:<hex>`, as stored.
    pub(crate) fn to_stored(self) -> String {
        format!("sha256:{}", mss_types::hex(&self.0))
    }

    /// Reads `sha256:<64 hex>`.
    pub(crate) fn from_stored(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(KeyDigest(out))
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

/// A key just made: shown once to whoever made it, then only its digest remains.
#[derive(Debug)]
pub struct NewKey {
    /// Its public id.
    pub id: String,
    /// The key itself.
    pub key: Secret,
    /// What is stored.
    pub(crate) digest: KeyDigest,
}

impl NewKey {
    /// A fresh key of `kind` from the OS's generator.
    pub(crate) fn generate(kind: KeyKind) -> Result<Self, Error> {
        let id = random_text(ID_LEN)?;
        let secret = random_text(SECRET_LEN)?;
        let key = format!("{}{id}_{secret}", kind.prefix());
        let digest = KeyDigest::of(&key);
        Ok(NewKey {
            id,
            key: Secret::new(key),
            digest,
        })
    }
}

/// `len` characters of the base32 alphabet, each from 5 random bits.
fn random_text(len: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::invalid(
            "key",
            format!("the operating system gave no random bytes: {e}"),
        )
    })?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// A key as presented in a request, split into its parts (nothing checked against the file yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    /// Its kind, from the prefix.
    pub kind: KeyKind,
    /// Its id.
    pub id: &'a str,
    text: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// Splits `text`; `None` when it does not have the shape of an mss key.
    pub fn parse(text: &'a str) -> Option<Self> {
        let (kind, rest) = if let Some(rest) = text.strip_prefix(KeyKind::Secret.prefix()) {
            (KeyKind::Secret, rest)
        } else {
            (
                KeyKind::Publishable,
                text.strip_prefix(KeyKind::Publishable.prefix())?,
            )
        };
        let (id, secret) = rest.split_once('_')?;
        let shaped =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| ALPHABET.contains(&b));
        (shaped(id, ID_LEN) && shaped(secret, SECRET_LEN)).then_some(PresentedKey {
            kind,
            id,
            text,
        })
    }

    /// Its digest.
    pub(crate) fn digest(&self) -> KeyDigest {
        KeyDigest::of(self.text)
    }
}

/// Whether `id` has the shape of a key id (to tell `mss client revoke NAME|KEY_ID` apart).
pub(crate) fn is_key_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_key_reads_back_and_matches_only_its_digest() {
        let k = NewKey::generate(KeyKind::Secret).unwrap();
        let text = k.key.expose();
        assert!(text.starts_with("mss_sk_"), "{text}");
        assert_eq!(text.len(), 7 + ID_LEN + 1 + SECRET_LEN);
        let p = PresentedKey::parse(text).unwrap();
        assert_eq!((p.kind, p.id), (KeyKind::Secret, k.id.as_str()));
        assert!(p.digest().matches(&k.digest));
        let other = NewKey::generate(KeyKind::Publishable).unwrap();
        assert!(other.key.expose().starts_with("mss_pk_"));
        assert!(
            !PresentedKey::parse(other.key.expose())
                .unwrap()
                .digest()
                .matches(&k.digest)
        );
        assert_ne!(k.id, other.id);
        let stored = k.digest.to_stored();
        assert_eq!(stored.len(), 7 + 64);
        assert!(KeyDigest::from_stored(&stored).unwrap().matches(&k.digest));
    }

    #[test]
    fn keys_of_the_wrong_shape_are_refused() {
        let id = "a".repeat(ID_LEN);
        let secret = "b".repeat(SECRET_LEN);
        assert!(PresentedKey::parse(&format!("mss_sk_{id}_{secret}")).is_some());
        for bad in [
            String::new(),
            format!("mss_xk_{id}_{secret}"),
            format!("mss_sk_{id}{secret}"),
            format!("mss_sk_{id}_{secret}b"),
            format!("mss_sk_{}_{secret}", "A".repeat(ID_LEN)),
            format!("mss_sk_{id}_{}", "1".repeat(SECRET_LEN)),
            format!("Bearer mss_sk_{id}_{secret}"),
        ] {
            assert_eq!(PresentedKey::parse(&bad), None, "{bad}");
        }
        assert_eq!(KeyDigest::from_stored("sha256:zz"), None);
        assert_eq!(
            KeyDigest::from_stored(&format!("md5:{}", "0".repeat(64))),
            None
        );
    }

    proptest! {
        #[test]
        fn parsing_any_header_value_never_panics(text in "\\PC{0,90}") {
            let _ = PresentedKey::parse(&text);
        }

        #[test]
        fn parsing_any_stored_digest_never_panics(text in "sha256:\\PC{0,70}") {
            let _ = KeyDigest::from_stored(&text);
        }
    }
}
