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
//!
//! The parts: [`matching`] (posting lists to matches), [`cache`] (what a segment's searches reuse),
//! [`order`] (a segment's documents in name order) and [`ranking`] (the best hits of the matches).

mod cache;
mod matching;
mod order;
mod ranking;

use std::sync::Arc;

use tantivy::{DocAddress, DocId, SegmentReader};

use crate::collect::{SortKey, Top};
use crate::query::{Plan, to_score};

pub(crate) use cache::SegmentCache;
use matching::{Found, Lists, Matches, apply, materialize};
use ranking::{best_by_rank, best_in_name_order, first_by_level, single_list, top_of};

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

/// How many postings a clause has in a segment: how little a query word narrows (relaxation drops the
/// word that narrows least).
pub(crate) fn clause_postings(
    clause: &crate::query::Clause,
    reader: &SegmentReader,
    cache: &SegmentCache,
) -> tantivy::Result<u64> {
    Ok(cache.lists(clause, reader)?.postings)
}

/// Highest score a plan can give, bounding the score histogram.
fn max_score(plan: &Plan) -> usize {
    let best = |c: &crate::query::Clause| c.alternatives.iter().map(|a| usize::from(a.score)).max();
    plan.clauses.iter().filter_map(best).sum::<usize>() + 1
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
    let search = SegmentSearch {
        plan,
        reader,
        cache,
        segment,
    };
    if after.is_some() {
        return search.uncached(keep, after, count);
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
    let top = search.uncached(keep, None, count)?;
    cache.pages().insert(key, top.clone());
    Ok(top)
}

/// One segment of one search, as [`search_segment`] was given it.
#[derive(Clone, Copy)]
struct SegmentSearch<'a> {
    plan: &'a Plan,
    reader: &'a SegmentReader,
    cache: &'a SegmentCache,
    segment: u32,
}

impl SegmentSearch<'_> {
    /// [`search_segment`] without its page cache.
    fn uncached(self, keep: usize, after: Option<SortKey>, count: bool) -> tantivy::Result<Top> {
        let SegmentSearch {
            plan,
            reader,
            cache,
            segment,
        } = self;
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
}
