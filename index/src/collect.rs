//! Top hits in a total, stable order, and the cursor that resumes after the last one.
//!
//! Order: score (higher first), then the alphabetical name key, then the address hash. Every part is a
//! property of the entry alone (scores are exact sums of constants), so the order does not depend on
//! segments, merges or commits, and "strictly after the cursor" is well defined across them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tantivy::{DocAddress, Score};

use crate::Error;

/// Position of a hit in the order; smaller is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortKey {
    rank: u32,
    name: u64,
    hash: u64,
}

/// Maps a score to a rank that sorts ascending as the score descends (total order on the bits).
fn rank_of(score: Score) -> u32 {
    let bits = score.to_bits();
    let ascending = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    !ascending
}

fn score_of(rank: u32) -> Score {
    let ascending = !rank;
    let bits = if ascending & 0x8000_0000 != 0 {
        ascending & 0x7fff_ffff
    } else {
        !ascending
    };
    Score::from_bits(bits)
}

const CURSOR_VERSION: u8 = 1;

impl SortKey {
    pub(crate) fn new(score: Score, name: u64, hash: u64) -> Self {
        SortKey {
            rank: rank_of(score),
            name,
            hash,
        }
    }

    pub(crate) fn name_hash(&self) -> (u64, u64) {
        (self.name, self.hash)
    }

    pub(crate) fn score(&self) -> Score {
        score_of(self.rank)
    }

    /// The opaque cursor: base64url of version, score bits, name key and address hash.
    pub(crate) fn to_cursor(self) -> String {
        let mut bytes = [0u8; 21];
        bytes[0] = CURSOR_VERSION;
        bytes[1..5].copy_from_slice(&self.score().to_bits().to_be_bytes());
        bytes[5..13].copy_from_slice(&self.name.to_be_bytes());
        bytes[13..21].copy_from_slice(&self.hash.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn from_cursor(cursor: &str) -> Result<SortKey, Error> {
        let invalid = |reason: &str| Error::InvalidCursor(reason.to_string());
        if cursor.len() > 64 {
            return Err(invalid("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.trim())
            .map_err(|_| invalid("not base64url"))?;
        let bytes: [u8; 21] = bytes.try_into().map_err(|_| invalid("wrong length"))?;
        if bytes[0] != CURSOR_VERSION {
            return Err(invalid("unknown version"));
        }
        let be4 = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[r]);
            u32::from_be_bytes(b)
        };
        let be8 = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[r]);
            u64::from_be_bytes(b)
        };
        let score = Score::from_bits(be4(1..5));
        if !score.is_finite() {
            return Err(invalid("bad score"));
        }
        Ok(SortKey {
            rank: rank_of(score),
            name: be8(5..13),
            hash: be8(13..21),
        })
    }
}

/// What a search found.
#[derive(Debug, Default, Clone)]
pub(crate) struct Top {
    /// Every match, before and after the cursor.
    pub total: u64,
    /// The best hits after the cursor, best first.
    pub hits: Vec<(SortKey, DocAddress)>,
}

impl Top {
    /// Combines the tops of several segments, keeping the `keep` best.
    pub(crate) fn merge(tops: Vec<Top>, keep: usize) -> Top {
        let mut total = 0;
        let mut hits = Vec::new();
        for t in tops {
            total += t.total;
            hits.extend(t.hits);
        }
        hits.sort_unstable();
        hits.truncate(keep);
        Top { total, hits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_order_scores_descending() {
        let scores = [300.0f32, 100.0, 70.0, 1.5, 0.0, -0.0, -3.0];
        let ranks: Vec<u32> = scores.iter().map(|s| rank_of(*s)).collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
        for s in scores {
            assert_eq!(score_of(rank_of(s)).to_bits(), s.to_bits());
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = SortKey {
            rank: rank_of(170.0),
            name: 42,
            hash: u64::MAX,
        };
        assert_eq!(SortKey::from_cursor(&key.to_cursor()).unwrap(), key);
        for bad in [
            "",
            "!!!",
            "AAAA",
            &"A".repeat(100),
            "AgAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let err = SortKey::from_cursor(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidCursor(_)), "{bad}: {err}");
            assert!(err.to_string().starts_with("cursor: "), "{err}");
        }
    }
}
