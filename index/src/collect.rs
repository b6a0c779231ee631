//! Top hits in a total, stable order, and the cursor that resumes after the last one.
//!
//! Order: score (higher first), then the alphabetical name key, then the address hash. Every part is a
//! property of the entry alone (scores are exact sums of constants), so the order does not depend on
//! segments, merges or commits, and "strictly after the cursor" is well defined across them.

use std::collections::BinaryHeap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnIndex};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::Error;
use crate::schema::{ADDR_HASH, NAME_KEY};

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

/// Collects the `limit` best documents strictly after `after`, and counts every match.
pub(crate) struct TopByKey {
    pub limit: usize,
    pub after: Option<SortKey>,
}

/// What the collector found.
#[derive(Debug, Default)]
pub(crate) struct Top {
    /// Every match, before and after the cursor.
    pub total: u64,
    /// Up to `limit + 1` best hits after the cursor, best first (one more than asked tells whether there is
    /// a next page).
    pub hits: Vec<(SortKey, DocAddress)>,
}

/// A fast u64 column, read directly when every document has a value.
struct U64Column(Column<u64>);

impl U64Column {
    #[inline]
    fn get(&self, doc: DocId) -> u64 {
        match self.0.index {
            ColumnIndex::Full => self.0.values.get_val(doc),
            _ => self.0.first(doc).unwrap_or(u64::MAX),
        }
    }
}

pub(crate) struct SegmentTop {
    segment: SegmentOrdinal,
    keep: usize,
    after: Option<SortKey>,
    names: U64Column,
    hashes: U64Column,
    total: u64,
    /// Max-heap: the worst kept hit on top.
    heap: BinaryHeap<(SortKey, DocId)>,
}

impl Collector for TopByKey {
    type Fruit = Top;
    type Child = SegmentTop;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTop> {
        let fast = reader.fast_fields();
        let keep = self.limit.saturating_add(1);
        Ok(SegmentTop {
            segment,
            keep,
            after: self.after,
            names: U64Column(fast.u64(NAME_KEY)?),
            hashes: U64Column(fast.u64(ADDR_HASH)?),
            total: 0,
            heap: BinaryHeap::with_capacity(keep.min(1024)),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Top>) -> tantivy::Result<Top> {
        let mut total = 0;
        let mut hits = Vec::new();
        for f in fruits {
            total += f.total;
            hits.extend(f.hits);
        }
        hits.sort_unstable();
        hits.truncate(self.limit.saturating_add(1));
        Ok(Top { total, hits })
    }
}

impl SegmentCollector for SegmentTop {
    type Fruit = Top;

    #[inline]
    fn collect(&mut self, doc: DocId, score: Score) {
        self.total += 1;
        let rank = rank_of(score);
        // Cheap rejections on the score alone before reading the fast fields.
        if let Some(after) = &self.after
            && rank < after.rank
        {
            return;
        }
        let full = self.heap.len() >= self.keep;
        if full && self.heap.peek().is_some_and(|(worst, _)| rank > worst.rank) {
            return;
        }
        let key = SortKey {
            rank,
            name: self.names.get(doc),
            hash: self.hashes.get(doc),
        };
        if let Some(after) = &self.after
            && key <= *after
        {
            return;
        }
        if !full {
            self.heap.push((key, doc));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && (key, doc) < *worst
        {
            *worst = (key, doc);
        }
    }

    fn harvest(self) -> Top {
        let segment = self.segment;
        let hits = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|(key, doc)| (key, DocAddress::new(segment, doc)))
            .collect();
        Top {
            total: self.total,
            hits,
        }
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
