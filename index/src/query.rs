//! From the words a user typed to a tantivy query.
//!
//! Every word must match (several words narrow). Per word, the best way it matches counts, from a fixed
//! table: exact word in the name > prefix of a name word (the word being typed) > name word within the
//! typo budget > the same in organisation, then profession and place. Scores are small integers so that
//! sums are exact in `f32`: the same document gets the same score in any segment, which keeps cursors stable.

use std::fmt;
use std::sync::Arc;

use tantivy::query::{
    BitSetDocSet, BooleanQuery, ConstScoreQuery, ConstScorer, DfaWrapper, DisjunctionMaxQuery,
    EmptyScorer, EnableScoring, Explanation, FuzzyTermQuery, Occur, Query, Scorer, TermQuery,
    Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, Score, SegmentReader, Term};
use tantivy::{DocSet, TERMINATED};

use crate::analysis::{MAX_PREFIX_CHARS, QueryToken, typo_budget};
use crate::schema::{Fields, MIN_OTHER_PREFIX};

/// Score of a word matched in each field family, by kind of match: exact, prefix, 1 typo, 2 typos.
#[derive(Clone, Copy)]
struct Boosts {
    exact: Score,
    prefix: Score,
    typo1: Score,
    typo2: Score,
}

const NAME: Boosts = Boosts {
    exact: 100.0,
    prefix: 70.0,
    typo1: 50.0,
    typo2: 40.0,
};
const ORG: Boosts = Boosts {
    exact: 60.0,
    prefix: 40.0,
    typo1: 25.0,
    typo2: 20.0,
};
/// Profession, speciality and place words.
const OTHER: Boosts = Boosts {
    exact: 50.0,
    prefix: 30.0,
    typo1: 20.0,
    typo2: 15.0,
};

/// Words longer than this get no typo tolerance: the automaton grows with the word, and such long words
/// are glued forms or pasted text, not typed names.
const MAX_FUZZY_CHARS: usize = 24;

/// Filters resolved to index terms.
#[derive(Debug, Default, Clone)]
pub(crate) struct TermFilters(pub Vec<Term>);

/// The query for `tokens` and `filters`; `None` when there is nothing to match on (no words, no filters).
pub(crate) fn build(
    f: &Fields,
    tokens: &[QueryToken],
    filters: &TermFilters,
) -> Option<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        Vec::with_capacity(tokens.len() + filters.0.len());
    for t in tokens {
        clauses.push((Occur::Must, token_query(f, t)));
    }
    for term in &filters.0 {
        let q = TermQuery::new(term.clone(), IndexRecordOption::Basic);
        clauses.push((
            Occur::Must,
            Box::new(ConstScoreQuery::new(Box::new(q), 0.0)),
        ));
    }
    match clauses.len() {
        0 => None,
        1 => clauses.pop().map(|(_, q)| q),
        _ => Some(Box::new(BooleanQuery::new(clauses))),
    }
}

fn constant(q: impl Query, score: Score) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(Box::new(q), score))
}

fn term(field: Field, text: &str) -> TermQuery {
    TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic)
}

/// All the ways one word may match, the best one counting.
fn token_query(f: &Fields, t: &QueryToken) -> Box<dyn Query> {
    let text = t.text.as_str();
    let chars = text.chars().count();
    let families = [
        (f.name, f.name_pfx, NAME, 1),
        (f.org, f.org_pfx, ORG, MIN_OTHER_PREFIX),
        (f.job, f.job_pfx, OTHER, MIN_OTHER_PREFIX),
        (f.place, f.place_pfx, OTHER, MIN_OTHER_PREFIX),
    ];
    let budget = if chars <= MAX_FUZZY_CHARS {
        typo_budget(chars)
    } else {
        0
    };
    // One automaton for the word, shared by every field.
    let dfa = (budget > 0)
        .then(|| {
            FuzzyTermQuery::new(Term::from_field_text(f.name, text), budget, true)
                .automaton()
                .ok()
        })
        .flatten()
        .map(Arc::new);
    let mut alternatives: Vec<Box<dyn Query>> = Vec::with_capacity(12);
    for (word, pfx, boosts, min_prefix) in families {
        alternatives.push(constant(term(word, text), boosts.exact));
        if t.prefix && chars >= min_prefix {
            if chars <= MAX_PREFIX_CHARS {
                alternatives.push(constant(term(pfx, text), boosts.prefix));
            } else {
                // longer than the indexed n-grams: few words share such a prefix, expand it
                let q = FuzzyTermQuery::new_prefix(Term::from_field_text(word, text), 0, true);
                alternatives.push(constant(q, boosts.prefix));
            }
        }
        if let Some(dfa) = &dfa {
            let q = Typo {
                field: word,
                dfa: Arc::clone(dfa),
                exact: text.as_bytes().into(),
            };
            let score = if budget == 1 {
                boosts.typo1
            } else {
                boosts.typo2
            };
            alternatives.push(constant(q, score));
        }
    }
    Box::new(DisjunctionMaxQuery::new(alternatives))
}

/// Words of `field` within the typo budget of the query word, other than the word itself (that one is
/// matched, higher, by the exact clause; leaving it out keeps a frequent correct word from being read twice).
#[derive(Clone)]
struct Typo {
    field: Field,
    dfa: Arc<DfaWrapper>,
    exact: Box<[u8]>,
}

impl fmt::Debug for Typo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Typo({:?}, {})",
            self.field,
            String::from_utf8_lossy(&self.exact)
        )
    }
}

impl Query for Typo {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for Typo {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let inverted = reader.inverted_index(self.field)?;
        let mut stream = inverted.terms().search(&*self.dfa).into_stream()?;
        let mut docs: Vec<DocId> = Vec::new();
        let mut terms = 0;
        while stream.advance() {
            if stream.key() == &*self.exact {
                continue;
            }
            terms += 1;
            let mut postings = inverted
                .read_block_postings_from_terminfo(stream.value(), IndexRecordOption::Basic)?;
            loop {
                let block = postings.docs();
                if block.is_empty() {
                    break;
                }
                docs.extend_from_slice(block);
                postings.advance();
            }
        }
        if docs.is_empty() {
            return Ok(Box::new(EmptyScorer));
        }
        if terms > 1 {
            docs.sort_unstable();
            docs.dedup();
        }
        // A dense set is cheaper as a bit set; typo variants are usually a handful of documents.
        if docs.len() as u64 * 32 > u64::from(reader.max_doc()) {
            let mut bits = tantivy::BitSet::with_max_value(reader.max_doc());
            for d in docs {
                bits.insert(d);
            }
            return Ok(Box::new(ConstScorer::new(BitSetDocSet::from(bits), boost)));
        }
        Ok(Box::new(ConstScorer::new(SortedDocs::new(docs), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("Typo", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )))
        }
    }
}

/// A sorted, deduplicated list of documents.
struct SortedDocs {
    docs: Vec<DocId>,
    at: usize,
}

impl SortedDocs {
    fn new(docs: Vec<DocId>) -> Self {
        SortedDocs { docs, at: 0 }
    }
}

impl DocSet for SortedDocs {
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
    fn sorted_docs_seek_and_advance() {
        let mut d = SortedDocs::new(vec![1, 5, 9, 20]);
        assert_eq!(d.doc(), 1);
        assert_eq!(d.seek(6), 9);
        assert_eq!(d.seek(9), 9);
        assert_eq!(d.advance(), 20);
        assert_eq!(d.advance(), TERMINATED);
        assert_eq!(d.seek(100), TERMINATED);
        assert_eq!(d.size_hint(), 0);
    }
}
