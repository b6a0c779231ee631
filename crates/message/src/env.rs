//! The clock and random source of a composition, so that tests can pin every byte.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use time::OffsetDateTime;

/// Time and randomness used while composing: Message-ID, MIME boundaries, XDS unique ids, dates.
///
/// [`Env::system`] is what production uses; [`Env::fixed`] makes the output a pure function of the
/// request, which the byte-level tests and the bench rely on.
#[derive(Debug, Clone)]
pub struct Env {
    now: OffsetDateTime,
    rng: ChaCha20Rng,
}

impl Env {
    /// The current UTC time and an OS-seeded random source.
    pub fn system() -> Self {
        Env {
            now: OffsetDateTime::now_utc(),
            rng: ChaCha20Rng::from_os_rng(),
        }
    }

    /// A fixed time (converted to UTC) and a seeded random source: same inputs, same bytes.
    pub fn fixed(now: OffsetDateTime, seed: u64) -> Self {
        Env {
            now: now.to_offset(time::UtcOffset::UTC),
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// The composition time, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    fn random_bytes(&mut self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        bytes
    }

    /// A random (version 4) UUID, lower-case hyphenated.
    pub fn uuid(&mut self) -> String {
        let mut b = self.random_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        format_uuid(&b)
    }

    /// A random OID under `2.25` (ITU-T X.667: an OID made of a UUID), for XDS unique ids that
    /// need no registered root.
    pub fn oid(&mut self) -> String {
        let mut b = self.random_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        format!("2.25.{}", u128::from_be_bytes(b))
    }

    /// 16 hex digits for MIME boundaries.
    pub(crate) fn token(&mut self) -> String {
        mss_types::hex(&self.random_bytes()[..8])
    }
}

pub(crate) fn format_uuid(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, group) in [&b[..4], &b[4..6], &b[6..8], &b[8..10], &b[10..]]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            s.push('-');
        }
        mss_types::push_hex(&mut s, group);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn uuid_has_version_and_variant() {
        let mut env = Env::fixed(datetime!(2026-11-23 10:00 UTC), 1);
        let u = env.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, env.uuid());
    }

    #[test]
    fn same_seed_same_ids() {
        let mut a = Env::fixed(datetime!(2026-11-23 10:00 UTC), 7);
        let mut b = Env::fixed(datetime!(2026-11-23 11:00 +01:00), 7);
        assert_eq!(a.oid(), b.oid());
        assert_eq!(a.now(), b.now());
        assert!(a.oid().starts_with("2.25."));
    }
}
