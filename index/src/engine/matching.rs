//! From a plan's clauses to the documents that match: posting lists resolved in the term dictionaries,
//! the rarest required clause materialized, every other clause checked on its candidates.

use std::cell::RefCell;
use std::sync::Arc;

use tantivy::postings::TermInfo;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, DocSet, InvertedIndexReader, SegmentReader, TERMINATED, Term};

use crate::analysis::edit_distance;
use crate::query::{Clause, How};

/// A posting list and the code (score + 1) of the alternative that found it.
pub(super) type Posting = (Arc<InvertedIndexReader>, TermInfo, u8);

/// The posting lists of a clause in one segment, each with its score + 1 (0 means "no match"); or, for
/// a frequent clause, its code per document, computed once ([`Dense`]).
pub(super) struct Lists {
    pub(super) lists: Arc<[Posting]>,
    pub(super) postings: u64,
    pub(super) required: bool,
    pub(super) dense: Option<Arc<Dense>>,
}

impl Lists {
    pub(super) fn is_empty(&self) -> bool {
        self.postings == 0
    }
}

/// A frequent clause of one segment as one byte per document: its best code (score + 1, 0 for no
/// match). Words like `centre`, `hospitalier`, `cabinet` or a type filter match a large part of the
/// directory and come back in query after query; decoding and spreading their postings was most of
/// the cost of such queries, and a lookup per candidate replaces it.
pub(crate) struct Dense {
    pub(super) codes: Box<[u8]>,
    /// The same as documents and scores: the candidates when the clause is the rarest of its query.
    pub(super) matches: Matches,
}

impl Dense {
    /// Bytes held.
    pub(super) fn size(&self) -> usize {
        self.codes.len() + self.matches.docs.len() * 6
    }
}

/// The matches of a plan: computed for this query, or a frequent clause's, shared.
pub(super) enum Found {
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
pub(super) struct Matches {
    pub(super) docs: Vec<DocId>,
    pub(super) scores: Vec<u16>,
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

pub(super) fn resolve(clause: &Clause, reader: &SegmentReader) -> tantivy::Result<Lists> {
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
            How::Typo(typos, text, one_typo) => {
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
                    let key = stream.key();
                    if key == word {
                        continue;
                    }
                    let one = typos.budget() > 1
                        && std::str::from_utf8(key)
                            .is_ok_and(|k| edit_distance(k, text, 1).is_some());
                    let code = if one {
                        one_typo.saturating_add(1)
                    } else {
                        code
                    };
                    lists.push((Arc::clone(&inverted), stream.value().clone(), code));
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
pub(super) fn spread(lists: &Lists, bytes: &mut [u8]) -> tantivy::Result<()> {
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
pub(super) fn with_scratch<T>(n: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
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
pub(super) fn materialize(lists: &Lists, max_doc: DocId) -> tantivy::Result<Matches> {
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
pub(super) fn collect_codes(bytes: &[u8], postings: u64) -> Matches {
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
pub(super) fn apply(m: &mut Matches, lists: &Lists, max_doc: DocId) -> tantivy::Result<()> {
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
