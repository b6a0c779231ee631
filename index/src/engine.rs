//! Runs a [`Plan`] on one segment: the matching documents with their scores, then the best of them.
//!
//! Written for the shape of our queries rather than with tantivy's generic scorers: every match scores a
//! constant, so a clause is a set of posting lists with a score each. The rarest required clause gives the
//! candidates; every other clause is then checked on the candidates only, the cheaper of two ways:
//! seeking each of its posting lists to the candidates (few candidates), or spreading its postings into a
//! byte per document and looking the candidates up (many candidates, or many lists). A frequent word
//! (`paris`, `centre`) next to a rare one thus costs a few seeks, not a scan of its postings.
//!
//! The best hits are then picked by score, ties broken by each segment's alphabetical order
//! ([`SegmentOrder`]). The index is sorted by name key, so a segment's documents are numbered in that
//! order: the best of a score level holding a large part of the segment (`m`, a type filter) are its
//! first documents, found by a scan that stops early; a plan of one posting list reads only the start of
//! it. Segments written otherwise (older indexes) walk the order instead. Every match is still counted:
//! the total is part of the answer.

use std::cell::RefCell;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::postings::TermInfo;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, InvertedIndexReader, SegmentReader, TERMINATED, Term};

use crate::collect::{SortKey, Top};
use crate::query::{Clause, How, MAX_CLAUSE_SCORE, Plan, to_score};
use crate::schema::{ADDR_HASH, NAME_KEY};

/// A posting list and the code (score + 1) of the alternative that found it.
type Posting = (Arc<InvertedIndexReader>, TermInfo, u8);

/// The posting lists of a clause in one segment, each with its score + 1 (0 means "no match"); or, for
/// a frequent clause, its code per document, computed once ([`Dense`]).
struct Lists {
    lists: Arc<[Posting]>,
    postings: u64,
    required: bool,
    dense: Option<Arc<Dense>>,
}

impl Lists {
    fn is_empty(&self) -> bool {
        self.postings == 0
    }
}

/// A frequent clause of one segment as one byte per document: its best code (score + 1, 0 for no
/// match). Words like `centre`, `hospitalier`, `cabinet` or a type filter match a large part of the
/// directory and come back in query after query; decoding and spreading their postings was most of
/// the cost of such queries, and a lookup per candidate replaces it.
pub(crate) struct Dense {
    codes: Box<[u8]>,
    /// The same as documents and scores: the candidates when the clause is the rarest of its query.
    matches: Matches,
}

impl Dense {
    /// Bytes held.
    fn size(&self) -> usize {
        self.codes.len() + self.matches.docs.len() * 6
    }
}

/// The matches of a plan: computed for this query, or a frequent clause's, shared.
enum Found {
    Owned(Matches),
    Cached(Arc<Dense>),
}

impl std::ops::Deref for Found {
    type Target = Matches;

    fn deref(&self) -> &Matches {
        match self {
            Found::Owned(m) => m,
            Found::Cached(d) => &d.matches,
        }
    }
}

/// Documents matching every required clause, ascending, with their score.
#[derive(Default, Clone)]
struct Matches {
    docs: Vec<DocId>,
    scores: Vec<u16>,
}

/// The first key after every key starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn resolve(clause: &Clause, reader: &SegmentReader) -> tantivy::Result<Lists> {
    let mut lists = Vec::new();
    for alt in &clause.alternatives {
        let inverted = reader.inverted_index(alt.field)?;
        let code = alt.score.saturating_add(1);
        let mut push = |info: &TermInfo| lists.push((Arc::clone(&inverted), info.clone(), code));
        match &alt.how {
            How::Term(text) => {
                let term = Term::from_field_text(alt.field, text);
                if let Some(info) = inverted.get_term_info(&term)? {
                    push(&info);
                }
            }
            How::Prefix(text) => {
                let word = text.as_bytes();
                let mut range = inverted.terms().range().gt(word);
                if let Some(end) = prefix_end(word) {
                    range = range.lt(end);
                }
                let mut stream = range.into_stream()?;
                while stream.advance() {
                    push(stream.value());
                }
            }
            How::Typo(typos, text) => {
                let Some(dfa) = typos.dfa() else {
                    continue;
                };
                // The automaton only walks the words under the first letter as typed.
                let word = text.as_bytes();
                let lead = text.chars().next().map_or(0, char::len_utf8);
                let lead = &word[..lead];
                let mut search = inverted.terms().search(dfa).ge(lead);
                if let Some(end) = prefix_end(lead) {
                    search = search.lt(end);
                }
                let mut stream = search.into_stream()?;
                while stream.advance() {
                    if stream.key() != word {
                        push(stream.value());
                    }
                }
            }
        }
    }
    let postings = lists.iter().map(|(_, i, _)| u64::from(i.doc_freq)).sum();
    Ok(Lists {
        lists: lists.into(),
        postings,
        required: clause.required,
        dense: None,
    })
}

thread_local! {
    /// One byte per document of the largest segment seen, reused by every query of this thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Spreads the postings of `lists` into `bytes` (zeroed, one per document): the best code per document.
fn spread(lists: &Lists, bytes: &mut [u8]) -> tantivy::Result<()> {
    for (inverted, info, code) in lists.lists.iter() {
        let mut block =
            inverted.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
        loop {
            let docs = block.docs();
            if docs.is_empty() {
                break;
            }
            for &d in docs {
                if let Some(b) = bytes.get_mut(d as usize) {
                    *b = (*b).max(*code);
                }
            }
            block.advance();
        }
    }
    Ok(())
}

/// Runs `f` on the scratch bytes, zeroed, `n` long.
fn with_scratch<T>(n: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        s.clear();
        s.resize(n, 0);
        f(&mut s)
    })
}

/// A clause with more postings than a segment's documents divided by this is spread into a byte per
/// document; fewer are sorted (a stable sort: the lists are sorted runs, which it merges).
const DENSE_FRACTION: u64 = 64;

/// The documents of a clause: the first candidates.
fn materialize(lists: &Lists, max_doc: DocId) -> tantivy::Result<Matches> {
    if let Some(dense) = &lists.dense {
        return Ok(dense.matches.clone());
    }
    let mut m = Matches::default();
    if let [(inverted, info, code)] = &lists.lists[..] {
        let mut block =
            inverted.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
        m.docs.reserve(info.doc_freq as usize);
        while !block.docs().is_empty() {
            m.docs.extend_from_slice(block.docs());
            block.advance();
        }
        m.scores = vec![u16::from(code - 1); m.docs.len()];
        return Ok(m);
    }
    if lists.postings * DENSE_FRACTION < u64::from(max_doc) {
        let mut pairs: Vec<(DocId, u8)> = Vec::with_capacity(lists.postings as usize);
        for (inverted, info, code) in lists.lists.iter() {
            let mut block =
                inverted.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
            while !block.docs().is_empty() {
                pairs.extend(block.docs().iter().map(|&d| (d, *code)));
                block.advance();
            }
        }
        // best code first among equal documents, then keep the first of each; a stable sort, because
        // the pairs are a few sorted runs (one per list) that it merges in linear time
        pairs.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        pairs.dedup_by_key(|p| p.0);
        m.docs = pairs.iter().map(|p| p.0).collect();
        m.scores = pairs.iter().map(|p| u16::from(p.1 - 1)).collect();
        return Ok(m);
    }
    with_scratch(max_doc as usize, |bytes| {
        spread(lists, bytes)?;
        Ok(collect_codes(bytes, lists.postings))
    })
}

/// The documents with a non-zero code in `bytes` (one per document), with their scores.
fn collect_codes(bytes: &[u8], postings: u64) -> Matches {
    // Eight documents at a time: the set bytes of a word are found with bit tricks, so only the
    // matches are visited, without a branch per document.
    let cap = usize::try_from(postings)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let mut docs: Vec<DocId> = Vec::with_capacity(cap);
    let mut scores: Vec<u16> = Vec::with_capacity(cap);
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    for (ci, chunk) in chunks.enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        if word == 0 {
            continue;
        }
        // high bit of every non-zero byte
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let mut set = ((word & LOW7).wrapping_add(LOW7) | word) & !LOW7;
        while set != 0 {
            let j = (set.trailing_zeros() / 8) as usize;
            docs.push((ci * 8 + j) as DocId);
            scores.push(u16::from(chunk[j] - 1));
            set &= set - 1;
        }
    }
    let base = bytes.len() - tail.len();
    for (j, &b) in tail.iter().enumerate() {
        if b != 0 {
            docs.push((base + j) as DocId);
            scores.push(u16::from(b - 1));
        }
    }
    Matches { docs, scores }
}

/// Checks the candidates against another clause: drops those that miss a required one, adds the score.
fn apply(m: &mut Matches, lists: &Lists, max_doc: DocId) -> tantivy::Result<()> {
    let mut best = vec![0u8; m.docs.len()];
    if let Some(dense) = &lists.dense {
        for (b, &d) in best.iter_mut().zip(&m.docs) {
            *b = dense.codes.get(d as usize).copied().unwrap_or(0);
        }
        return keep_matching(m, lists.required, &best);
    }
    // Rough costs in ns: a seek per candidate and list, or a pass over the postings plus the scratch.
    let seek_cost = (m.docs.len() * lists.lists.len()) as u64 * 15;
    let spread_cost = lists.postings * 2 + u64::from(max_doc) / 4;
    if seek_cost <= spread_cost {
        for (inverted, info, code) in lists.lists.iter() {
            let mut postings =
                inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
            let mut current = postings.doc();
            for (i, &d) in m.docs.iter().enumerate() {
                if current < d {
                    current = postings.seek(d);
                }
                if current == TERMINATED {
                    break;
                }
                if current == d {
                    best[i] = best[i].max(*code);
                }
            }
        }
    } else {
        with_scratch(max_doc as usize, |bytes| -> tantivy::Result<()> {
            spread(lists, bytes)?;
            for (b, &d) in best.iter_mut().zip(&m.docs) {
                *b = bytes.get(d as usize).copied().unwrap_or(0);
            }
            Ok(())
        })?;
    }
    keep_matching(m, lists.required, &best)
}

/// Adds each candidate's code for a clause (`best`, 0: no match) to its score, and drops the candidates
/// that miss a required clause.
fn keep_matching(m: &mut Matches, required: bool, best: &[u8]) -> tantivy::Result<()> {
    if required {
        // branch-free compaction, as in `materialize`
        let mut keep = 0;
        #[allow(clippy::needless_range_loop)] // reads index i, writes index keep <= i
        for i in 0..m.docs.len() {
            // read before writing: `keep` often equals `i`
            let (d, s, b) = (m.docs[i], m.scores[i], best[i]);
            m.docs[keep] = d;
            m.scores[keep] = s + u16::from(b.saturating_sub(1));
            keep += usize::from(b != 0);
        }
        m.docs.truncate(keep);
        m.scores.truncate(keep);
    } else {
        for (s, b) in m.scores.iter_mut().zip(best) {
            *s += u16::from(b.saturating_sub(1));
        }
    }
    Ok(())
}

/// The documents of the segment matching the plan, with their scores (deleted ones included: they are
/// skipped when counting and ranking, which read every match anyway).
fn matches(plan: &Plan, reader: &SegmentReader, cache: &SegmentCache) -> tantivy::Result<Found> {
    let max_doc = reader.max_doc();
    if plan.is_all() {
        return Ok(Found::Owned(Matches {
            docs: (0..max_doc).collect(),
            scores: vec![0; max_doc as usize],
        }));
    }
    let mut clauses = plan
        .clauses
        .iter()
        .map(|c| cache.lists(c, reader))
        .collect::<tantivy::Result<Vec<Lists>>>()?;
    if clauses.iter().any(|c| c.required && c.is_empty()) {
        return Ok(Found::Owned(Matches::default()));
    }
    // required clauses rarest first, optional ones last
    clauses.sort_by_key(|c| (!c.required, c.postings));
    let mut rest = clauses.iter();
    let Some(first) = rest.next() else {
        return Ok(Found::Owned(Matches::default()));
    };
    if let (Some(dense), 1) = (&first.dense, clauses.len()) {
        return Ok(Found::Cached(Arc::clone(dense)));
    }
    let mut m = materialize(first, max_doc)?;
    for lists in rest {
        if m.docs.is_empty() {
            break;
        }
        apply(&mut m, lists, max_doc)?;
    }
    Ok(Found::Owned(m))
}

/// The documents of a segment in sort-key order (name key, then address hash): ties of score are broken
/// by comparing small integers instead of reading two fast fields per candidate.
pub(crate) struct SegmentOrder {
    /// Position of each document in the order.
    rank: Vec<u32>,
    /// The documents, in order.
    order: Vec<DocId>,
    names: Column<u64>,
    hashes: Column<u64>,
    /// Whether the documents are numbered in name order (the index is sorted by name key, see `build`):
    /// the best of a score level are then its first documents, and a scan finds them.
    name_ordered: bool,
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

    fn name_hash(&self, doc: DocId) -> (u64, u64) {
        (
            self.names.first(doc).unwrap_or(u64::MAX),
            self.hashes.first(doc).unwrap_or(u64::MAX),
        )
    }

    /// How many documents sort at or before `(name, hash)`.
    fn count_up_to(&self, name: u64, hash: u64) -> u32 {
        let n = self
            .order
            .partition_point(|&d| self.name_hash(d) <= (name, hash));
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

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
struct Recent<K, V> {
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

    fn get(&mut self, key: &K) -> Option<V> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|(v, used)| {
            *used = clock;
            v.clone()
        })
    }

    fn insert(&mut self, key: K, value: V) {
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
type PageKey = (SegmentId, u32, String, usize, bool);

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
    fn lists(&self, clause: &Clause, reader: &SegmentReader) -> tantivy::Result<Lists> {
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
    fn resolved(
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
    fn resolved_before(&self, key: &ClauseKey) -> Option<(Arc<[Posting]>, u64)> {
        self.resolved_lists().get(key)
    }

    /// Keeps the lists of a clause resolved level by level, once every level was.
    fn remember_resolved(&self, key: ClauseKey, lists: Arc<[Posting]>, postings: u64) {
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

    fn pages(&self) -> std::sync::MutexGuard<'_, Recent<PageKey, Top>> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dense(&self) -> std::sync::MutexGuard<'_, DenseClauses> {
        self.dense.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Highest score a plan can give, bounding the score histogram.
fn max_score(plan: &Plan) -> usize {
    plan.clauses.len() * usize::from(MAX_CLAUSE_SCORE) + 1
}

/// Runs `plan` on a segment: keeps the `keep` best strictly after `after` and, with `count`, counts
/// every match (without it, `total` is 0: search-as-you-type shows no total, and not counting lets a
/// one-word query stop after its first hits). First pages are kept for the next time.
pub(crate) fn search_segment(
    plan: &Plan,
    reader: &SegmentReader,
    cache: &SegmentCache,
    segment: u32,
    keep: usize,
    after: Option<SortKey>,
    count: bool,
) -> tantivy::Result<Top> {
    if after.is_some() {
        return search_uncached(plan, reader, cache, segment, keep, after, count);
    }
    let key = (
        reader.segment_id(),
        reader.num_deleted_docs(),
        plan.key(),
        keep,
        count,
    );
    let cached = cache.pages().get(&key);
    if let Some(top) = cached {
        return Ok(Top {
            total: top.total,
            hits: top
                .hits
                .iter()
                .map(|&(k, a)| (k, DocAddress::new(segment, a.doc_id)))
                .collect(),
        });
    }
    let top = search_uncached(plan, reader, cache, segment, keep, None, count)?;
    cache.pages().insert(key, top.clone());
    Ok(top)
}

#[allow(clippy::too_many_arguments)] // `search_segment`'s, passed on
fn search_uncached(
    plan: &Plan,
    reader: &SegmentReader,
    cache: &SegmentCache,
    segment: u32,
    keep: usize,
    after: Option<SortKey>,
    count: bool,
) -> tantivy::Result<Top> {
    let order = &*cache.order(reader)?;
    let deleted = &*cache.deleted(reader);
    // a word being typed (no count) is walked level by level first: `single_list` would look up all of
    // its alternatives to learn whether they make one list
    if order.name_ordered
        && after.is_none()
        && !count
        && let Some(top) = first_by_level(plan, reader, cache, order, segment, keep)?
    {
        return Ok(top);
    }
    if order.name_ordered
        && after.is_none()
        && let Some(top) = single_list(plan, reader, cache, order, deleted, segment, keep)?
    {
        return Ok(top);
    }
    let m = matches(plan, reader, cache)?;
    let alive = reader.alive_bitset();
    let is_alive = |doc: DocId| alive.is_none_or(|a| a.is_alive(doc));
    let mut histogram = vec![0u32; max_score(plan) + 1];
    let top_bucket = histogram.len() - 1;
    let level_of = |s: u16| usize::from(s).min(top_bucket);
    let mut total = m.docs.len() as u64;
    // Deleted documents are few: count every match, then take back the deleted ones found among them
    // (a binary search each), rather than testing every match.
    if deleted.docs.len() * 32 < m.docs.len() {
        for &s in &m.scores {
            histogram[level_of(s)] += 1;
        }
        for d in &deleted.docs {
            if let Ok(i) = m.docs.binary_search(d) {
                histogram[level_of(m.scores[i])] -= 1;
                total -= 1;
            }
        }
    } else {
        total = 0;
        for (&d, &s) in m.docs.iter().zip(&m.scores) {
            let live = is_alive(d);
            histogram[level_of(s)] += u32::from(live);
            total += u64::from(live);
        }
    }
    if keep == 0 || total == 0 {
        return Ok(Top {
            total,
            hits: Vec::new(),
        });
    }
    // Only the best score levels can hold the `keep` best: count documents per score, from the top,
    // until there are enough (the cursor's own level does not count: part of it may be before the cursor).
    let after_score = after.map(|a| a.score());
    let mut floor = 0;
    let mut enough = 0usize;
    for level in (0..histogram.len()).rev() {
        let score = to_score(u16::try_from(level).unwrap_or(u16::MAX));
        if after_score.is_some_and(|a| score >= a) {
            continue;
        }
        enough += histogram[level] as usize;
        if enough >= keep {
            floor = level;
            break;
        }
    }
    let hits = if order.name_ordered && after.is_none() {
        best_in_name_order(&m, order, &histogram, floor, keep, &is_alive)
    } else {
        best_by_rank(&m, reader, order, &histogram, floor, keep, after, &is_alive)
    };
    Ok(top_of(order, segment, total, hits))
}

/// A hit being ranked: score (higher first), then position in the segment's order.
type Ranked = (std::cmp::Reverse<u16>, u32);

/// The `need` first documents by rank among documents offered in number order, on a segment numbered
/// in name order. Documents of one name key sort by address hash, not by number, and one key can hold
/// tens of thousands (`centre hos`, ten characters): once `need` are in, only the rest of the last
/// one's name group can still take a place, and a bounded heap keeps the best of it.
struct FirstByRank<'a> {
    order: &'a SegmentOrder,
    need: usize,
    /// Max-heap of the ranks kept.
    heap: BinaryHeap<u32>,
    /// Ranks from this one on sort after the name group where `need` was reached.
    group_end: u32,
    done: bool,
}

impl<'a> FirstByRank<'a> {
    fn new(order: &'a SegmentOrder, need: usize) -> Self {
        FirstByRank {
            order,
            need,
            heap: BinaryHeap::with_capacity(need + 1),
            group_end: u32::MAX,
            done: need == 0,
        }
    }

    /// Offers the next matching document; sets `done` once no later one can take a place.
    fn offer(&mut self, doc: DocId) {
        let rank = self
            .order
            .rank
            .get(doc as usize)
            .copied()
            .unwrap_or(u32::MAX);
        if self.heap.len() < self.need {
            self.heap.push(rank);
            if self.heap.len() == self.need {
                let (name, _) = self.order.name_hash(doc);
                self.group_end = self.order.count_up_to(name, u64::MAX);
            }
        } else if rank >= self.group_end {
            self.done = true;
        } else if let Some(mut worst) = self.heap.peek_mut()
            && rank < *worst
        {
            *worst = rank;
        }
    }
}

/// The `keep` best of `m` when documents are numbered in name order: every match above the floor
/// level (fewer than `keep`), and the first of the floor level, up to the end of the name group where
/// the count is reached (documents of one name key sort by address hash, not by number). One pass, that
/// stops once both are found: `m` a type filter of 450 000 documents is read for its first few dozen.
fn best_in_name_order(
    m: &Matches,
    order: &SegmentOrder,
    histogram: &[u32],
    floor: usize,
    keep: usize,
    is_alive: &impl Fn(DocId) -> bool,
) -> Vec<Ranked> {
    let top_bucket = histogram.len() - 1;
    let above: usize = histogram[floor + 1..].iter().map(|&n| n as usize).sum();
    let mut above_left = above;
    let mut hits: Vec<Ranked> = Vec::with_capacity(keep + 1);
    let mut first = FirstByRank::new(order, keep.saturating_sub(above));
    for (&doc, &s) in m.docs.iter().zip(&m.scores) {
        let level = usize::from(s).min(top_bucket);
        if level < floor || (level == floor && first.done) || !is_alive(doc) {
            continue;
        }
        if level > floor {
            let rank = order.rank.get(doc as usize).copied().unwrap_or(u32::MAX);
            hits.push((std::cmp::Reverse(s), rank));
            above_left -= 1;
        } else {
            first.offer(doc);
        }
        if first.done && above_left == 0 {
            break;
        }
    }
    let floor_score = u16::try_from(floor).unwrap_or(u16::MAX);
    hits.extend(
        first
            .heap
            .into_iter()
            .map(|rank| (std::cmp::Reverse(floor_score), rank)),
    );
    hits.sort_unstable();
    hits.truncate(keep);
    hits
}

/// The `keep` best of `m` strictly after `after`, by looking up each candidate's rank; a floor level
/// holding a large part of the segment is walked in name order instead.
#[allow(clippy::too_many_arguments)] // the parts of one search, split only to keep each readable
fn best_by_rank(
    m: &Matches,
    reader: &SegmentReader,
    order: &SegmentOrder,
    histogram: &[u32],
    floor: usize,
    keep: usize,
    after: Option<SortKey>,
    is_alive: &impl Fn(DocId) -> bool,
) -> Vec<Ranked> {
    let top_bucket = histogram.len() - 1;
    let after_score = after.map(|a| a.score());
    // At the cursor's score, only documents sorting after it.
    let after_rank = after.map(|a| {
        let (name, hash) = a.name_hash();
        order.count_up_to(name, hash)
    });
    // Max-heap on (score descending, rank): the worst kept hit on top.
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(keep.min(1024) + 1);
    // Fewer than `keep` documents score above the floor; the floor level itself may hold most of the
    // segment (`m`, `centre hospitalier`). Then its best are found by walking the segment's order and
    // stopping after enough, rather than ranking every one of them. The walk visits about
    // keep × max_doc / level documents (at random places of the marks), the ranking every one of the
    // level: walk when the level is large enough.
    let level_size = histogram.get(floor).map_or(0, |&n| u64::from(n));
    let walk_floor = level_size * level_size * 3 > keep as u64 * u64::from(reader.max_doc()) * 5;
    let floor_score = u16::try_from(floor).unwrap_or(u16::MAX);
    let walk_from = match (walk_floor, after_score, after_rank) {
        (false, _, _) => None,
        (true, Some(a), _) if to_score(floor_score) > a => None,
        (true, Some(a), Some(r)) if to_score(floor_score) == a => Some(r as usize),
        (true, _, _) => Some(0),
    };
    with_scratch(
        if walk_from.is_some() {
            reader.max_doc() as usize
        } else {
            0
        },
        |marks| {
            for (&doc, &s) in m.docs.iter().zip(&m.scores) {
                let level = usize::from(s).min(top_bucket);
                if level < floor || !is_alive(doc) {
                    continue;
                }
                if walk_floor && level == floor {
                    if let Some(b) = marks.get_mut(doc as usize) {
                        *b = 1;
                    }
                    continue;
                }
                let rank = order.rank.get(doc as usize).copied().unwrap_or(u32::MAX);
                if let (Some(a), Some(after_rank)) = (after_score, after_rank) {
                    let score = to_score(s);
                    if score > a || (score == a && rank < after_rank) {
                        continue;
                    }
                }
                let item = (std::cmp::Reverse(s), rank);
                if heap.len() < keep {
                    heap.push(item);
                } else if let Some(mut worst) = heap.peek_mut()
                    && item < *worst
                {
                    *worst = item;
                }
            }
            if let Some(start) = walk_from {
                let need = keep.saturating_sub(heap.len());
                let mut found = 0;
                for (rank, &doc) in order.order.iter().enumerate().skip(start) {
                    if found == need {
                        break;
                    }
                    if marks.get(doc as usize) == Some(&1) {
                        heap.push((std::cmp::Reverse(floor_score), rank as u32));
                        found += 1;
                    }
                }
            }
        },
    );
    heap.into_sorted_vec()
}

/// A plan of one word or filter that resolves to a single posting list, on a segment numbered in name
/// order: every match scores the same, so the best are the first documents of the list and the count
/// is its length less its deleted documents. `None` for any other plan.
fn single_list(
    plan: &Plan,
    reader: &SegmentReader,
    cache: &SegmentCache,
    order: &SegmentOrder,
    deleted: &Deleted,
    segment: u32,
    keep: usize,
) -> tantivy::Result<Option<Top>> {
    let [clause] = plan.clauses.as_slice() else {
        return Ok(None);
    };
    if !clause.required {
        return Ok(None);
    }
    let key = (reader.segment_id(), clause.key());
    let (lists, _) = cache.resolved(&key, clause, reader)?;
    let [(inverted, info, code)] = &lists.lists[..] else {
        return Ok(None);
    };
    let score = u16::from(code - 1);
    let mut total = u64::from(info.doc_freq);
    if !deleted.docs.is_empty() {
        let mut postings = inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
        for &d in &deleted.docs {
            if postings.doc() < d && postings.seek(d) == TERMINATED {
                break;
            }
            if postings.doc() == d {
                total -= 1;
            }
        }
    }
    let mut first = FirstByRank::new(order, keep);
    if !first.done {
        let alive = reader.alive_bitset();
        let mut postings = inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
        let mut doc = postings.doc();
        while doc != TERMINATED && !first.done {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                first.offer(doc);
            }
            doc = postings.advance();
        }
    }
    let mut hits: Vec<Ranked> = first
        .heap
        .into_iter()
        .map(|rank| (std::cmp::Reverse(score), rank))
        .collect();
    hits.sort_unstable();
    Ok(Some(top_of(order, segment, total, hits)))
}

/// Hits of one segment as a [`Top`]: `(score, rank)` pairs, rank being the position in `order`.
fn top_of(order: &SegmentOrder, segment: u32, total: u64, hits: Vec<Ranked>) -> Top {
    Top {
        total,
        hits: hits
            .into_iter()
            .filter_map(|(std::cmp::Reverse(s), rank)| {
                let doc = *order.order.get(rank as usize)?;
                let (name, hash) = order.name_hash(doc);
                Some((
                    SortKey::new(to_score(s), name, hash),
                    DocAddress::new(segment, doc),
                ))
            })
            .collect(),
    }
}

/// A plan of one word next to a filter bigger than this many times the word's postings is run the
/// usual way: led by the filter, the rarer, rather than walking the word's matches until enough pass it.
const FILTER_LEADS: u64 = 8;

/// A required clause without score (a filter), tested on documents offered in ascending order.
enum Filter {
    Dense(Arc<Dense>),
    Lists(Vec<tantivy::postings::SegmentPostings>),
}

impl Filter {
    fn open(lists: &Lists) -> tantivy::Result<Filter> {
        if let Some(dense) = &lists.dense {
            return Ok(Filter::Dense(Arc::clone(dense)));
        }
        let cursors = lists
            .lists
            .iter()
            .map(|(inverted, info, _)| {
                inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Filter::Lists(cursors))
    }

    fn contains(&mut self, doc: DocId) -> bool {
        match self {
            Filter::Dense(dense) => dense.codes.get(doc as usize).is_some_and(|&c| c != 0),
            Filter::Lists(cursors) => cursors.iter_mut().any(|p| {
                if p.doc() < doc {
                    p.seek(doc);
                }
                p.doc() == doc
            }),
        }
    }
}

/// The best `keep` of a plan of one word and filters on a segment numbered in name order, without
/// counting the matches: the word's posting lists are grouped by score, and each score level, best
/// first, is walked in document (name) order until enough are found. A level that does not fill the
/// page is read whole, so it holds fewer than `keep` documents: skipping those already taken is enough
/// to score every document by its best match. `m` (tens of thousands of matches) reads a few dozen.
/// `None` for any other plan.
fn first_by_level(
    plan: &Plan,
    reader: &SegmentReader,
    cache: &SegmentCache,
    order: &SegmentOrder,
    segment: u32,
    keep: usize,
) -> tantivy::Result<Option<Top>> {
    if plan.clauses.iter().any(|c| !c.required) {
        return Ok(None);
    }
    let scored = |c: &Clause| c.alternatives.iter().any(|a| a.score > 0);
    let mut words = plan.clauses.iter().filter(|c| scored(c));
    let (Some(word), None) = (words.next(), words.next()) else {
        return Ok(None);
    };
    let key = (reader.segment_id(), word.key());
    let filtered = plan.clauses.iter().any(|c| !scored(c));
    // Without a filter, a word's levels are walked best first and most words fill `keep` from their
    // first levels: unless it was resolved before, each level's alternatives are looked up in the term
    // dictionaries only when the walk reaches it. Prefix ranges and typo automata, the costly lookups,
    // score lowest, so a word being typed rarely needs them.
    let word_lists: Option<Arc<[Posting]>> = match cache.resolved_before(&key) {
        Some((lists, _)) => Some(lists),
        None if filtered => Some(cache.resolved(&key, word, reader)?.0.lists),
        None => None,
    };
    let mut filter_lists = Vec::new();
    if let Some(lists) = &word_lists {
        let postings: u64 = lists.iter().map(|(_, i, _)| u64::from(i.doc_freq)).sum();
        for clause in plan.clauses.iter().filter(|c| !scored(c)) {
            let filter = cache.lists(clause, reader)?;
            if filter.postings.saturating_mul(FILTER_LEADS) < postings {
                return Ok(None);
            }
            filter_lists.push(filter);
        }
    }
    let mut codes: Vec<u8> = match &word_lists {
        Some(lists) => lists.iter().map(|(_, _, c)| *c).collect(),
        None => word
            .alternatives
            .iter()
            .map(|a| a.score.saturating_add(1))
            .collect(),
    };
    codes.sort_unstable_by(|a, b| b.cmp(a));
    codes.dedup();
    // with levels resolved one by one: what they gave, kept for the next time once all were
    let mut resolved_levels: Vec<Posting> = Vec::new();
    let mut every_level = word_lists.is_none();
    let alive = reader.alive_bitset();
    let mut hits: Vec<Ranked> = Vec::with_capacity(keep);
    let mut taken: Vec<DocId> = Vec::new();
    for &code in &codes {
        let need = keep.saturating_sub(hits.len());
        if need == 0 {
            every_level = false;
            break;
        }
        let level_lists: Vec<Posting> = match &word_lists {
            Some(lists) => lists
                .iter()
                .filter(|(_, _, c)| *c == code)
                .cloned()
                .collect(),
            None => {
                let alternatives = word
                    .alternatives
                    .iter()
                    .filter(|a| a.score.saturating_add(1) == code)
                    .cloned()
                    .collect();
                let this_level = Clause {
                    alternatives,
                    required: word.required,
                };
                let lists = resolve(&this_level, reader)?.lists.to_vec();
                resolved_levels.extend(lists.iter().cloned());
                lists
            }
        };
        let mut cursors = Vec::new();
        for (inverted, info, _) in &level_lists {
            cursors.push(inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?);
        }
        // the level's documents in ascending order: a heap of (document, list)
        let mut heap: BinaryHeap<std::cmp::Reverse<(DocId, usize)>> = cursors
            .iter()
            .enumerate()
            .filter(|(_, p)| p.doc() != TERMINATED)
            .map(|(i, p)| std::cmp::Reverse((p.doc(), i)))
            .collect();
        // each level starts again from the first document
        let mut filters = filter_lists
            .iter()
            .map(Filter::open)
            .collect::<tantivy::Result<Vec<_>>>()?;
        let mut first = FirstByRank::new(order, need);
        let mut last = None;
        while let Some(std::cmp::Reverse((doc, i))) = heap.pop() {
            let next = cursors[i].advance();
            if next != TERMINATED {
                heap.push(std::cmp::Reverse((next, i)));
            }
            if last == Some(doc) {
                continue;
            }
            last = Some(doc);
            if taken.contains(&doc)
                || !alive.is_none_or(|a| a.is_alive(doc))
                || !filters.iter_mut().all(|f| f.contains(doc))
            {
                continue;
            }
            first.offer(doc);
            if first.done {
                break;
            }
        }
        let score = u16::from(code - 1);
        for rank in first.heap.into_vec() {
            if let Some(&doc) = order.order.get(rank as usize) {
                taken.push(doc);
            }
            hits.push((std::cmp::Reverse(score), rank));
        }
    }
    if every_level {
        let postings = resolved_levels
            .iter()
            .map(|(_, i, _)| u64::from(i.doc_freq))
            .sum();
        cache.remember_resolved(key, resolved_levels.into(), postings);
    }
    hits.sort_unstable();
    hits.truncate(keep);
    Ok(Some(top_of(order, segment, 0, hits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_end_after_every_extension() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
