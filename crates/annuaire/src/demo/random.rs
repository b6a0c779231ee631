//! Randomness and hashing helpers: every draw goes through `u32` ranges and every hash is fixed, so that a
//! seed gives the same file on every platform and in every run.

use rand::Rng;

/// True `per_mille` times out of 1000.
pub(super) fn chance(r: &mut impl Rng, per_mille: u32) -> bool {
    r.random_range(0..1000) < per_mille
}

/// A uniform index below `len` (drawn as `u32` so that it is the same on 32- and 64-bit targets).
pub(super) fn pick_index(r: &mut impl Rng, len: usize) -> usize {
    r.random_range(0..len.max(1) as u32) as usize
}

pub(super) fn pick<T: Copy>(r: &mut impl Rng, list: &[T]) -> T {
    list[pick_index(r, list.len())]
}

/// Weighted choice over a table, by cumulative weights.
pub(super) struct Picker {
    cumulative: Vec<u32>,
}

impl Picker {
    pub(super) fn new(weights: impl IntoIterator<Item = u32>) -> Self {
        let mut total = 0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Picker { cumulative }
    }

    pub(super) fn of<T>(table: &[(T, u32)]) -> Self {
        Picker::new(table.iter().map(|x| x.1))
    }

    pub(super) fn pick(&self, r: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let x = r.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// SplitMix64 finaliser: spreads seeds and keys over 64 bits.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a then mixed: a fixed hash (unlike `RandomState`), so uniqueness decisions never vary between runs.
pub(super) fn address_key(address: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in address.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    mix(h)
}
