//! Sets and maps keyed by 64-bit hashes (of addresses, of sites): hashing such a key again would only
//! cost time.

use std::hash::{BuildHasherDefault, Hasher};

/// A hasher that passes a `u64` key through unchanged.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The hasher builder of sets and maps whose keys are already hashes.
pub(crate) type PreHashed = BuildHasherDefault<PassThrough>;
