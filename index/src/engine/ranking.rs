//! The best hits among the matches, by score then name: ranking shortcuts for segments numbered in
//! name order, and the general case by looking up each candidate's rank.

use std::collections::BinaryHeap;
use std::sync::Arc;

use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, SegmentReader, TERMINATED};

use super::cache::{Deleted, SegmentCache};
use super::matching::{Dense, Lists, Matches, Posting, resolve, with_scratch};
use super::order::SegmentOrder;
use crate::collect::{SortKey, Top};
use crate::query::{Clause, Plan, to_score};

/// A hit being ranked: score (higher first), then position in the segment's order.
pub(super) type Ranked = (std::cmp::Reverse<u16>, u32);

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
pub(super) fn best_in_name_order(
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
pub(super) fn best_by_rank(
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
pub(super) fn single_list(
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
pub(super) fn top_of(order: &SegmentOrder, segment: u32, total: u64, hits: Vec<Ranked>) -> Top {
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
pub(super) fn first_by_level(
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
