//! What a segment's searches reuse from one query to the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::{DocId, SegmentReader};

use super::matching::{Dense, Lists, Posting, collect_codes, resolve, spread};
use super::order::SegmentOrder;
use crate::collect::Top;
use crate::query::Clause;

/// What a segment's searches reuse: its [`SegmentOrder`], built once and kept while the segment is
/// searched; its deleted documents, listed once per number of deletions (a segment's deletions only
/// grow); and its frequent clauses ([`Dense`]), least recently used first out past a memory budget.
pub(crate) struct SegmentCache {
    orders: Mutex<HashMap<SegmentId, Arc<SegmentOrder>>>,
    deleted: Mutex<HashMap<SegmentId, Arc<Deleted>>>,
    dense: Mutex<DenseClauses>,
    /// By segment and clause: the lists and their total postings.
    resolved: Mutex<ResolvedClauses>,
    /// First pages: a few queries (`centre hospitalier`, `cabinet medical`) come back far more often than
    /// the rest and match tens of thousands of entries each.
    pages: Mutex<Recent<PageKey, Top>>,
}

impl Default for SegmentCache {
    fn default() -> Self {
        SegmentCache {
            orders: Mutex::default(),
            deleted: Mutex::default(),
            dense: Mutex::default(),
            resolved: Mutex::new(Recent::new(RESOLVED_CLAUSES)),
            pages: Mutex::new(Recent::new(FIRST_PAGES)),
        }
    }
}

/// A clause of a segment: its [`Clause::key`] names every alternative (field, word, kind, score).
type ClauseKey = (SegmentId, String);

/// Clauses whose posting lists are kept (a few hundred bytes each).
const RESOLVED_CLAUSES: usize = 4096;

/// Clauses of segments and their posting lists, with their total postings.
type ResolvedClauses = Recent<ClauseKey, (Arc<[Posting]>, u64)>;

/// First pages kept (a few hundred bytes each).
const FIRST_PAGES: usize = 4096;

/// The most recently used values, up to a count: past it, the older half goes (one sort per half-fill
/// rather than a scan per insert).
pub(super) struct Recent<K, V> {
    map: HashMap<K, (V, u64)>,
    clock: u64,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq, V: Clone> Recent<K, V> {
    fn new(capacity: usize) -> Self {
        Recent {
            map: HashMap::new(),
            clock: 0,
            capacity,
        }
    }

    pub(super) fn get(&mut self, key: &K) -> Option<V> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|(v, used)| {
            *used = clock;
            v.clone()
        })
    }

    pub(super) fn insert(&mut self, key: K, value: V) {
        if self.map.len() >= self.capacity {
            let mut uses: Vec<u64> = self.map.values().map(|v| v.1).collect();
            uses.sort_unstable();
            let cut = uses[uses.len() / 2];
            self.map.retain(|_, v| v.1 > cut);
        }
        self.clock += 1;
        self.map.insert(key, (value, self.clock));
    }
}

/// A first page of a segment: the plan ([`Plan::key`]), the number of hits kept, whether every match
/// was counted; and the segment's deletions, which only grow.
pub(super) type PageKey = (SegmentId, u32, String, usize, bool);

/// The deleted documents of a segment, ascending.
pub(crate) struct Deleted {
    count: u32,
    pub(crate) docs: Vec<DocId>,
}

/// A clause with more postings than a segment's documents divided by this is kept as [`Dense`]: below,
/// spreading its postings costs less than the cache's allocation of a byte per document.
const CACHED_FRACTION: u64 = 8;

/// Memory for frequent clauses: 40 MiB holds about 30 of them on a 535 k-entry segment.
const DENSE_BUDGET: usize = 40 << 20;

#[derive(Default)]
struct DenseClauses {
    /// By segment and clause ([`Clause::key`]): the codes and their last use.
    map: HashMap<ClauseKey, (Arc<Dense>, u64)>,
    bytes: usize,
    clock: u64,
}

impl DenseClauses {
    fn get(&mut self, key: &ClauseKey) -> Option<Arc<Dense>> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|(d, used)| {
            *used = clock;
            Arc::clone(d)
        })
    }

    fn insert(&mut self, key: ClauseKey, dense: Arc<Dense>) {
        self.clock += 1;
        self.bytes += dense.size();
        if let Some((old, _)) = self.map.insert(key, (dense, self.clock)) {
            self.bytes -= old.size();
        }
        while self.bytes > DENSE_BUDGET {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((d, _)) = self.map.remove(&oldest) {
                self.bytes -= d.size();
            }
        }
    }
}

impl SegmentCache {
    pub(crate) fn order(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentOrder>> {
        let id = reader.segment_id();
        if let Some(o) = self.lock().get(&id) {
            return Ok(Arc::clone(o));
        }
        // built outside the lock: a big segment takes tens of ms
        let built = Arc::new(SegmentOrder::build(reader)?);
        Ok(Arc::clone(self.lock().entry(id).or_insert(built)))
    }

    /// The deleted documents of `reader`, ascending.
    pub(crate) fn deleted(&self, reader: &SegmentReader) -> Arc<Deleted> {
        let id = reader.segment_id();
        let count = reader.num_deleted_docs();
        let mut cache = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = cache.get(&id).filter(|d| d.count == count) {
            return Arc::clone(d);
        }
        let docs = match reader.alive_bitset() {
            Some(alive) if count > 0 => (0..reader.max_doc())
                .filter(|&d| alive.is_deleted(d))
                .collect(),
            _ => Vec::new(),
        };
        let fresh = Arc::new(Deleted { count, docs });
        cache.insert(id, Arc::clone(&fresh));
        fresh
    }

    /// The matches of `clause` in `reader`: its posting lists, or its codes per document when it is
    /// frequent (kept for the next queries; postings never change in a segment, deletions are applied
    /// later).
    pub(super) fn lists(&self, clause: &Clause, reader: &SegmentReader) -> tantivy::Result<Lists> {
        let max_doc = reader.max_doc();
        let key = (reader.segment_id(), clause.key());
        let cached = self.dense().get(&key);
        let dense = match cached {
            Some(d) => d,
            None => {
                let (lists, seen_before) = self.resolved(&key, clause, reader)?;
                // kept from its second query on: a clause seen once (a word being typed) would cost
                // more to keep than to compute
                if !seen_before || lists.postings * CACHED_FRACTION < u64::from(max_doc) {
                    return Ok(lists);
                }
                let mut codes = vec![0u8; max_doc as usize].into_boxed_slice();
                spread(&lists, &mut codes)?;
                let matches = collect_codes(&codes, lists.postings);
                let dense = Arc::new(Dense { codes, matches });
                self.dense().insert(key, Arc::clone(&dense));
                dense
            }
        };
        Ok(Lists {
            lists: Arc::new([]),
            postings: dense.matches.docs.len() as u64,
            required: clause.required,
            dense: Some(dense),
        })
    }

    /// The posting lists of `clause` in `reader`, and whether they were asked for before; looked up in
    /// the term dictionaries once: the same
    /// words come back keystroke after keystroke (`jean` in `jean m`, `jean ma`...), and expanding a
    /// prefix or a typo automaton over four dictionaries is a large part of a small query.
    pub(super) fn resolved(
        &self,
        key: &ClauseKey,
        clause: &Clause,
        reader: &SegmentReader,
    ) -> tantivy::Result<(Lists, bool)> {
        let cached = self.resolved_lists().get(key);
        if let Some((lists, postings)) = cached {
            let lists = Lists {
                lists,
                postings,
                required: clause.required,
                dense: None,
            };
            return Ok((lists, true));
        }
        let lists = resolve(clause, reader)?;
        self.resolved_lists()
            .insert(key.clone(), (Arc::clone(&lists.lists), lists.postings));
        Ok((lists, false))
    }

    /// The lists of a clause resolved before, if still kept.
    pub(super) fn resolved_before(&self, key: &ClauseKey) -> Option<(Arc<[Posting]>, u64)> {
        self.resolved_lists().get(key)
    }

    /// Keeps the lists of a clause resolved level by level, once every level was.
    pub(super) fn remember_resolved(&self, key: ClauseKey, lists: Arc<[Posting]>, postings: u64) {
        self.resolved_lists().insert(key, (lists, postings));
    }

    /// Forgets what queries left (frequent clauses, resolved lists), keeping what segments need.
    pub(crate) fn clear_queries(&self) {
        self.resolved_lists().map.clear();
        self.pages().map.clear();
        let mut dense = self.dense();
        dense.map.clear();
        dense.bytes = 0;
    }

    /// Forgets the segments not in `live`.
    pub(crate) fn retain(&self, live: &[SegmentId]) {
        self.resolved_lists()
            .map
            .retain(|(id, _), _| live.contains(id));
        self.pages().map.retain(|(id, ..), _| live.contains(id));
        self.lock().retain(|id, _| live.contains(id));
        self.deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| live.contains(id));
        let mut dense = self.dense();
        dense.map.retain(|(id, _), _| live.contains(id));
        dense.bytes = dense.map.values().map(|(d, _)| d.size()).sum();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<SegmentOrder>>> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn resolved_lists(&self) -> std::sync::MutexGuard<'_, ResolvedClauses> {
        self.resolved.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn pages(&self) -> std::sync::MutexGuard<'_, Recent<PageKey, Top>> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dense(&self) -> std::sync::MutexGuard<'_, DenseClauses> {
        self.dense.lock().unwrap_or_else(|e| e.into_inner())
    }
}
