//! Finding and deleting documents by address.
//!
//! Addresses are not indexed as terms: a unique term per document costs, at every segment write and
//! merge, a posting list and a dictionary entry each, which was a fifth of the whole import. Documents
//! carry the 64-bit hash of their address in a fast column instead; lookups go through a sorted
//! `(hash, doc)` table built once per segment on first use, and deletions through a query that reads
//! the column. The stored record tells colliding addresses apart.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use mss_annuaire::Entry;
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::query::{ConstScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED};

use crate::Result;
use crate::schema::{ADDR_HASH, Fields, LOCAL_HASH, load};

fn column(segment: &SegmentReader) -> tantivy::Result<Column<u64>> {
    segment.fast_fields().u64(ADDR_HASH)
}

/// Which hash a lookup goes by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum By {
    /// The whole address.
    Address,
    /// Its local part, lower-cased (an address typed by its beginning).
    LocalPart,
}

/// Per segment, every `(address hash, document)`, sorted: built on first lookup, kept while the segment
/// is searched.
#[derive(Default)]
pub(crate) struct AddressIndex {
    tables: Mutex<HashMap<(SegmentId, By), Arc<Table>>>,
}

/// `(address hash, document)` of every document of a segment, sorted.
type Table = Vec<(u64, DocId)>;

impl AddressIndex {
    fn table(&self, segment: &SegmentReader, by: By) -> tantivy::Result<Arc<Table>> {
        let id = (segment.segment_id(), by);
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tables.get(&id) {
            return Ok(Arc::clone(t));
        }
        let col = match by {
            By::Address => column(segment)?,
            By::LocalPart => segment.fast_fields().u64(LOCAL_HASH)?,
        };
        let mut t: Table = (0..segment.max_doc())
            .filter_map(|doc| col.first(doc).map(|h| (h, doc)))
            .collect();
        t.sort_unstable();
        let t = Arc::new(t);
        tables.insert(id, Arc::clone(&t));
        Ok(t)
    }

    /// Forgets the tables of segments no longer searched.
    fn prune(&self, searcher: &Searcher) {
        let live: HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.retain(|(id, _), _| live.contains(id));
    }

    /// Every live entry whose address hashes to `hash` (normally one or none).
    pub(crate) fn entries(&self, searcher: &Searcher, f: &Fields, hash: u64) -> Result<Vec<Entry>> {
        self.entries_by(searcher, f, By::Address, hash)
    }

    /// Every live entry whose address (`By::Address`) or local part (`By::LocalPart`) hashes to `hash`.
    pub(crate) fn entries_by(
        &self,
        searcher: &Searcher,
        f: &Fields,
        by: By,
        hash: u64,
    ) -> Result<Vec<Entry>> {
        self.prune(searcher);
        if by == By::LocalPart && f.local_hash.is_none() {
            return Ok(Vec::new()); // an index built before the column existed
        }
        let mut out = Vec::new();
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let table = self.table(segment, by)?;
            let start = table.partition_point(|(h, _)| *h < hash);
            for &(_, doc) in table[start..].iter().take_while(|(h, _)| *h == hash) {
                if segment.alive_bitset().is_none_or(|a| a.is_alive(doc)) {
                    let ord = u32::try_from(ord).unwrap_or(u32::MAX);
                    out.push(load(searcher, f, DocAddress::new(ord, doc))?);
                }
            }
        }
        Ok(out)
    }
}

/// Matches the documents whose address hash is in the set: the deletion query of a batch.
#[derive(Clone)]
pub(crate) struct HashSetQuery(pub Arc<HashSet<u64>>);

impl std::fmt::Debug for HashSetQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashSetQuery({} hashes)", self.0.len())
    }
}

impl Query for HashSetQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for HashSetQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let col = column(reader)?;
        let docs: Vec<DocId> = (0..reader.max_doc())
            .filter(|&doc| col.first(doc).is_some_and(|h| self.0.contains(&h)))
            .collect();
        if docs.is_empty() {
            return Ok(Box::new(EmptyScorer));
        }
        Ok(Box::new(ConstScorer::new(Docs { docs, at: 0 }, boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let col = column(reader)?;
        if col.first(doc).is_some_and(|h| self.0.contains(&h)) {
            Ok(Explanation::new("HashSetQuery", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )))
        }
    }
}

/// A sorted list of documents.
struct Docs {
    docs: Vec<DocId>,
    at: usize,
}

impl DocSet for Docs {
    fn advance(&mut self) -> DocId {
        if self.at < self.docs.len() {
            self.at += 1;
        }
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc() >= target {
            return self.doc();
        }
        self.at += self.docs[self.at..].partition_point(|&d| d < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        u32::try_from(self.docs.len() - self.at).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_seek_and_advance() {
        let mut d = Docs {
            docs: vec![1, 5, 9, 20],
            at: 0,
        };
        assert_eq!(d.doc(), 1);
        assert_eq!(d.seek(6), 9);
        assert_eq!(d.seek(9), 9);
        assert_eq!(d.advance(), 20);
        assert_eq!(d.advance(), TERMINATED);
        assert_eq!(d.seek(100), TERMINATED);
        assert_eq!(d.size_hint(), 0);
    }
}
