//! From the words a user typed to a query plan: for each word, the ways it may match and what each is
//! worth.
//!
//! Every word must match (several words narrow). Per word, the best way it matches counts, from a fixed
//! table: exact word in the name > prefix of a name word (the word being typed) > name word within the
//! typo budget > the same in the organisation, then profession and place. Scores are small integers, so
//! sums are exact: a document gets the same score in any segment, which keeps cursors stable.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tantivy::query::{DfaWrapper, FuzzyTermQuery};
use tantivy::schema::Field;
use tantivy::{Score, Term};

use crate::analysis::{MAX_PREFIX_CHARS, QueryToken, typo_budget};
use crate::schema::Fields;

/// Score of a word matched in each field family, by kind of match: exact, prefix, 1 typo, 2 typos.
#[derive(Clone, Copy)]
struct Boosts {
    exact: u8,
    prefix: u8,
    typo1: u8,
    typo2: u8,
}

const NAME: Boosts = Boosts {
    exact: 100,
    prefix: 70,
    typo1: 50,
    typo2: 40,
};
const ORG: Boosts = Boosts {
    exact: 60,
    prefix: 40,
    typo1: 25,
    typo2: 20,
};
/// Profession, speciality and place words.
const OTHER: Boosts = Boosts {
    exact: 50,
    prefix: 30,
    typo1: 20,
    typo2: 15,
};

/// Shortest prefix looked up outside names: 1–2 letter prefixes of organisations, places and
/// professions would match most of the directory and say little.
const MIN_OTHER_PREFIX: usize = 3;

/// Words longer than this get no typo tolerance: the automaton grows with the word, and such long words
/// are glued forms or pasted text, not typed names.
const MAX_FUZZY_CHARS: usize = 24;

/// Words that say little on their own (articles, prepositions, particles): they count when present but
/// are not required, unless the query has nothing else. `centre de radiologie de paris` would otherwise
/// intersect with every entry whose organisation has a `de`.
const STOP_WORDS: &[&str] = &[
    "a", "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "sur", "par",
    "pour", "un", "une", "dans", "chez",
];

/// Score of an optional stop word present in the name: enough to order, less than any real match.
const STOP_WORD_SCORE: u8 = 5;

/// Score of a one-letter stop word (`a`, `d`, `l`) read as the initial of a name: optional like the
/// stop word, but above it.
const INITIAL_SCORE: u8 = 30;

/// Bonus of an entry located in a place the query names whole (`saint etienne` -> Saint-Étienne, not
/// Saint-Étienne-du-Rouvray; `lyon`, `42`). Above what the other words of a short query can score more
/// in one entry than in another (two words: a name against a place word, a service against a
/// speciality): the boxes located in the named city come first (issue 18), then the others.
const LOCATED_SCORE: u8 = 200;

/// Bonus of each word of a query of several that is also a place word of the entry.
const ALSO_PLACE_SCORE: u8 = 10;

/// Longest run of query words read as one place name (`saint laurent du maroni`).
const MAX_PLACE_WORDS: usize = 4;

/// Whether `word` (folded) is a stop word: counted when present, never required.
pub(crate) fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// How an alternative picks the words of a field.
#[derive(Clone)]
pub(crate) enum How {
    /// This word.
    Term(String),
    /// Words starting with this one, other than itself (the exact alternative scores that one).
    Prefix(String),
    /// Words within the typo budget of this one, other than itself. The first letter is taken as typed.
    /// With a budget of two, a word one typo away scores the third value instead (closer is better).
    Typo(Arc<Typos>, String, u8),
}

/// The typo automaton of a word, built on first use: a clause the engine finds in its cache (the same
/// word, keystroke after keystroke) needs none, and building it was a tenth of a query's time.
pub(crate) struct Typos {
    text: String,
    budget: u8,
    dfa: OnceLock<Option<DfaWrapper>>,
}

impl Typos {
    /// The number of typos allowed.
    pub(crate) fn budget(&self) -> u8 {
        self.budget
    }

    /// The automaton; `None` if the word cannot have one (never for the words [`word`] gives it).
    pub(crate) fn dfa(&self) -> Option<&DfaWrapper> {
        self.dfa
            .get_or_init(|| {
                // the field does not matter: only the text and the budget make the automaton
                let term = Term::from_field_text(Field::from_field_id(0), &self.text);
                FuzzyTermQuery::new(term, self.budget, true)
                    .automaton()
                    .ok()
            })
            .as_ref()
    }
}

/// One way for a clause to match, and its score.
#[derive(Clone)]
pub(crate) struct Alternative {
    pub field: Field,
    pub how: How,
    pub score: u8,
}

impl fmt::Debug for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, text) = match &self.how {
            How::Term(t) => ("term", t),
            How::Prefix(t) => ("prefix", t),
            How::Typo(_, t, _) => ("typo", t),
        };
        write!(f, "{kind}({:?}, {text})={}", self.field, self.score)
    }
}

/// A word of the query, or a filter: matches when any alternative does, scoring the best one.
#[derive(Clone, Debug)]
pub(crate) struct Clause {
    pub alternatives: Vec<Alternative>,
    /// Documents must match it; an optional clause only adds its score.
    pub required: bool,
}

impl Clause {
    /// Names the clause for the engine's caches: every alternative's field, kind, text and score.
    /// Written by hand: the `Debug` form cost a twentieth of a query.
    pub(crate) fn key(&self) -> String {
        let mut key = String::with_capacity(16 * self.alternatives.len());
        self.push_key(&mut key);
        key
    }

    fn push_key(&self, key: &mut String) {
        key.push(if self.required { '+' } else { '?' });
        for a in &self.alternatives {
            let (kind, text) = match &a.how {
                How::Term(t) => ('=', t),
                How::Prefix(t) => ('*', t),
                How::Typo(_, t, one) => {
                    key.push(char::from(*one));
                    ('~', t)
                }
            };
            // numbers as chars (no formatting), the text after its length: no two clauses share a key
            for n in [
                a.field.field_id(),
                u32::try_from(text.len()).unwrap_or(u32::MAX),
            ] {
                key.extend(n.to_le_bytes().map(char::from));
            }
            key.push(kind);
            key.push(char::from(a.score));
            key.push_str(text);
        }
    }
}

/// What to look for; no clause at all lists every entry.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    pub clauses: Vec<Clause>,
}

/// Filters resolved to index terms.
#[derive(Debug, Default, Clone)]
pub(crate) struct TermFilters(pub Vec<(Field, String)>);

impl Plan {
    /// Names the plan for the engine's caches ([`Clause::key`] of each clause).
    pub(crate) fn key(&self) -> String {
        let mut key = String::with_capacity(64 * self.clauses.len());
        for c in &self.clauses {
            c.push_key(&mut key);
        }
        key
    }

    /// The plan for `tokens` and `filters`.
    pub(crate) fn new(f: &Fields, tokens: &[QueryToken], filters: &TermFilters) -> Plan {
        let all_stop = tokens.iter().all(|t| is_stop_word(&t.text));
        let mut clauses = Vec::with_capacity(tokens.len() + filters.0.len() + 1);
        let mut optional = Vec::new();
        for t in tokens {
            if !all_stop && is_stop_word(&t.text) {
                optional.push(Alternative {
                    field: f.name,
                    how: How::Term(t.text.clone()),
                    score: STOP_WORD_SCORE,
                });
                // `d goddas`: a letter alone may be an initial too
                if t.text.len() == 1 {
                    optional.push(Alternative {
                        field: f.name_pfx,
                        how: How::Term(t.text.clone()),
                        score: INITIAL_SCORE,
                    });
                }
            } else {
                clauses.push(word(f, t));
            }
        }
        for (field, value) in &filters.0 {
            clauses.push(Clause {
                alternatives: vec![Alternative {
                    field: *field,
                    how: How::Term(value.clone()),
                    score: 0,
                }],
                required: true,
            });
        }
        if !optional.is_empty() {
            clauses.push(Clause {
                alternatives: optional,
                required: false,
            });
        }
        let words = tokens.iter().filter(|t| !is_stop_word(&t.text)).count();
        if let (Some(field), 2..) = (f.located, words) {
            clauses.push(located(field, tokens));
        }
        if words >= 2 {
            // a word matching the entry's place as well as another field: more of the query matched
            // in more fields (`saint etienne` in the name and the city) ranks higher
            for t in tokens.iter().filter(|t| !is_stop_word(&t.text)) {
                clauses.push(Clause {
                    alternatives: vec![Alternative {
                        field: f.place,
                        how: How::Term(t.text.clone()),
                        score: ALSO_PLACE_SCORE,
                    }],
                    required: false,
                });
            }
        }
        Plan { clauses }
    }

    /// Whether the plan lists everything (no word, no filter).
    pub(crate) fn is_all(&self) -> bool {
        !self.clauses.iter().any(|c| c.required)
    }
}

/// The location bonus: every run of consecutive words glued, as the whole place it may name. Optional,
/// and one clause: an entry gets the bonus once, whichever place of the query it is in.
fn located(field: Field, tokens: &[QueryToken]) -> Clause {
    let mut places: Vec<String> = Vec::new();
    for start in 0..tokens.len() {
        let mut place = String::new();
        for t in tokens.iter().skip(start).take(MAX_PLACE_WORDS) {
            place.push_str(&t.text);
            if !places.contains(&place) {
                places.push(place.clone());
            }
        }
    }
    Clause {
        alternatives: places
            .into_iter()
            .map(|p| Alternative {
                field,
                how: How::Term(p),
                score: LOCATED_SCORE,
            })
            .collect(),
        required: false,
    }
}

/// All the ways one word may match.
fn word(f: &Fields, t: &QueryToken) -> Clause {
    let text = t.text.as_str();
    let chars = text.chars().count();
    let budget = if chars <= MAX_FUZZY_CHARS {
        typo_budget(chars)
    } else {
        0
    };
    // One automaton for the word, shared by every field.
    let typos = (budget > 0).then(|| {
        Arc::new(Typos {
            text: text.to_string(),
            budget,
            dfa: OnceLock::new(),
        })
    });
    let mut alternatives = Vec::with_capacity(12);
    let mut add = |field, how, score| {
        alternatives.push(Alternative { field, how, score });
    };
    for (field, boosts) in [
        (f.name, NAME),
        (f.org, ORG),
        (f.job, OTHER),
        (f.place, OTHER),
    ] {
        add(field, How::Term(t.text.clone()), boosts.exact);
        if t.prefix {
            if field == f.name && chars <= MAX_PREFIX_CHARS {
                add(f.name_pfx, How::Term(t.text.clone()), boosts.prefix);
            } else if field == f.name || chars >= MIN_OTHER_PREFIX {
                add(field, How::Prefix(t.text.clone()), boosts.prefix);
            }
        }
        if let Some(typos) = &typos {
            let score = if budget == 1 {
                boosts.typo1
            } else {
                boosts.typo2
            };
            let how = How::Typo(Arc::clone(typos), t.text.clone(), boosts.typo1);
            add(field, how, score);
        }
    }
    Clause {
        alternatives,
        required: true,
    }
}

/// A score as the API reports it.
pub(crate) fn to_score(sum: u16) -> Score {
    Score::from(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(alternatives: &[(u32, How, u8)], required: bool) -> Clause {
        Clause {
            alternatives: alternatives
                .iter()
                .map(|(field, how, score)| Alternative {
                    field: Field::from_field_id(*field),
                    how: how.clone(),
                    score: *score,
                })
                .collect(),
            required,
        }
    }

    #[test]
    fn keys_tell_clauses_apart() {
        let term = |t: &str| How::Term(t.to_string());
        let prefix = |t: &str| How::Prefix(t.to_string());
        let clauses = [
            clause(&[(0, term("ab"), 100), (0, term("c"), 100)], true),
            clause(&[(0, term("a"), 100), (0, term("bc"), 100)], true),
            clause(&[(0, term("abc"), 100)], true),
            clause(&[(0, prefix("abc"), 100)], true),
            clause(&[(1, term("abc"), 100)], true),
            clause(&[(0, term("abc"), 70)], true),
            clause(&[(0, term("abc"), 100)], false),
        ];
        let keys: std::collections::HashSet<String> = clauses.iter().map(Clause::key).collect();
        assert_eq!(keys.len(), clauses.len());
        let plan = |c: &[Clause]| {
            Plan {
                clauses: c.to_vec(),
            }
            .key()
        };
        assert_ne!(
            plan(&[clauses[2].clone(), clauses[3].clone()]),
            plan(&[clauses[3].clone(), clauses[2].clone()])
        );
        assert_eq!(clauses[2].key(), clauses[2].clone().key());
    }
}
