//! A segment's documents in sort-key order, for ranking ties.

use tantivy::columnar::Column;
use tantivy::{DocId, SegmentReader};

use crate::schema::{ADDR_HASH, NAME_KEY};

/// The documents of a segment in sort-key order (name key, then address hash): ties of score are broken
/// by comparing small integers instead of reading two fast fields per candidate.
pub(crate) struct SegmentOrder {
    /// Position of each document in the order.
    pub(super) rank: Vec<u32>,
    /// The documents, in order.
    pub(super) order: Vec<DocId>,
    names: Column<u64>,
    hashes: Column<u64>,
    /// Whether the documents are numbered in name order (the index is sorted by name key, see `build`):
    /// the best of a score level are then its first documents, and a scan finds them.
    pub(super) name_ordered: bool,
}

impl SegmentOrder {
    pub(crate) fn build(reader: &SegmentReader) -> tantivy::Result<SegmentOrder> {
        let fast = reader.fast_fields();
        let names = fast.u64(NAME_KEY)?;
        let hashes = fast.u64(ADDR_HASH)?;
        let max_doc = reader.max_doc();
        let mut keyed: Vec<(u64, u64, DocId)> = (0..max_doc)
            .map(|d| {
                (
                    names.first(d).unwrap_or(u64::MAX),
                    hashes.first(d).unwrap_or(u64::MAX),
                    d,
                )
            })
            .collect();
        let name_ordered = keyed.windows(2).all(|w| w[0].0 <= w[1].0);
        keyed.sort_unstable();
        let order: Vec<DocId> = keyed.iter().map(|k| k.2).collect();
        let mut rank = vec![0u32; max_doc as usize];
        for (r, &d) in order.iter().enumerate() {
            rank[d as usize] = r as u32;
        }
        Ok(SegmentOrder {
            rank,
            order,
            names,
            hashes,
            name_ordered,
        })
    }

    #[inline]
    pub(super) fn name_hash(&self, doc: DocId) -> (u64, u64) {
        (
            self.names.first(doc).unwrap_or(u64::MAX),
            self.hashes.first(doc).unwrap_or(u64::MAX),
        )
    }

    /// How many documents sort at or before `(name, hash)`.
    pub(super) fn count_up_to(&self, name: u64, hash: u64) -> u32 {
        let n = self
            .order
            .partition_point(|&d| self.name_hash(d) <= (name, hash));
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}
