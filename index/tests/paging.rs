//! Walking every page with the cursor: no duplicate, no gap, the same total, across commits.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::collections::HashSet;

use common::{build, fixture, shared_dir, structure};
use mss_annuaire::BalType;
use mss_index::{DirectoryIndex, Filters, SearchRequest};

/// Every address of a query, page by page; `between` runs after each page.
fn walk(
    index: &DirectoryIndex,
    q: &str,
    filters: &Filters,
    limit: usize,
    mut between: impl FnMut(usize),
) -> (Vec<(String, f32)>, u64) {
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut totals = HashSet::new();
    for page in 0.. {
        let r = index
            .search(&SearchRequest {
                q: q.into(),
                filters: filters.clone(),
                limit,
                cursor: cursor.clone(),
            })
            .expect("page");
        totals.insert(r.total);
        assert!(r.hits.len() <= limit);
        seen.extend(
            r.hits
                .iter()
                .map(|h| (h.entry.address.to_string(), h.score)),
        );
        between(page);
        match r.next_cursor {
            Some(c) => {
                assert_eq!(r.hits.len(), limit, "a page before the last one is full");
                cursor = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(
        totals.len(),
        1,
        "the total does not change from page to page: {totals:?}"
    );
    (seen, totals.into_iter().next().unwrap_or(0))
}

fn single_page(index: &DirectoryIndex, q: &str, filters: &Filters) -> Vec<(String, f32)> {
    let r = index
        .search(&SearchRequest {
            q: q.into(),
            filters: filters.clone(),
            limit: 1000,
            cursor: None,
        })
        .unwrap();
    assert!(r.next_cursor.is_none());
    r.hits
        .iter()
        .map(|h| (h.entry.address.to_string(), h.score))
        .collect()
}

#[test]
fn pages_cover_every_match_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    let people = Filters {
        bal_type: Some(BalType::Per),
        ..Default::default()
    };
    for (q, filters) in [
        ("", people.clone()),
        ("ma", Filters::default()),
        ("l", Filters::default()),
        ("gaspard rolland", Filters::default()),
        ("medecin", people.clone()),
    ] {
        let all = single_page(&index, q, &filters);
        for limit in [1, 3, 7, 50] {
            let (paged, total) = walk(&index, q, &filters, limit, |_| {});
            assert_eq!(paged, all, "{q:?} by {limit}");
            assert_eq!(total as usize, all.len());
            let unique: HashSet<_> = paged.iter().map(|p| &p.0).collect();
            assert_eq!(unique.len(), paged.len(), "no duplicate");
        }
        assert!(all.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {q}");
    }
}

#[test]
fn cursor_survives_unrelated_commits() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    let people = Filters {
        bal_type: Some(BalType::Per),
        ..Default::default()
    };
    let before: HashSet<String> = single_page(&index, "", &people)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let mut writer = index.writer().unwrap();
    let (paged, _) = walk(&index, "", &people, 10, |page| {
        if page < 3 {
            // an unrelated box (an organisation) added while the user pages through the people
            let a = format!("late.{page}@chu-reunion.mssante.fr");
            writer
                .upsert(&structure(
                    &a,
                    BalType::Org,
                    "CHU de La Réunion",
                    Some("Accueil"),
                    "97400",
                    "Saint-Denis",
                ))
                .unwrap();
            writer.commit().unwrap();
        }
    });
    let paged_set: HashSet<String> = paged.iter().map(|p| p.0.clone()).collect();
    assert_eq!(paged_set.len(), paged.len(), "no duplicate across commits");
    assert_eq!(before, paged_set, "no entry skipped across commits");
    assert_eq!(index.num_entries() as usize, fixture().len() - 1 + 3);
}

#[test]
fn large_levels_page_like_small_ones() {
    // enough entries that one score level holds thousands of documents (ranked by walking the order)
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), mss_annuaire::demo::entries(6000, 7).collect());
    let people = Filters {
        bal_type: Some(BalType::Per),
        ..Default::default()
    };
    for (q, filters, big) in [
        ("", people, true),
        ("", Filters::default(), true),
        ("m", Filters::default(), false),
    ] {
        let (by_50, total) = walk(&index, q, &filters, 50, |_| {});
        let (by_999, _) = walk(&index, q, &filters, 999, |_| {});
        assert!(!big || total > 2048, "{q:?}: {total}");
        assert_eq!(by_50.len() as u64, total, "{q:?}");
        assert_eq!(by_50, by_999, "{q:?}");
        let unique: HashSet<_> = by_50.iter().map(|p| &p.0).collect();
        assert_eq!(unique.len(), by_50.len());
        assert!(
            by_50.windows(2).all(|w| w[0].1 >= w[1].1),
            "best first: {q}"
        );
    }
}

/// The first page is found by scanning documents in name order (the index is sorted by name), the
/// next pages by ranking candidates after the cursor: both must give the same order, on a segment with
/// deleted documents, next to an unsorted one written by updates, with large groups of entries whose
/// names share their first ten letters (`Centre Hospitalier ...`).
mod first_pages {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    fn index() -> &'static DirectoryIndex {
        static INDEX: OnceLock<DirectoryIndex> = OnceLock::new();
        INDEX.get_or_init(|| {
            let entries: Vec<_> = mss_annuaire::demo::entries(6000, 11).collect();
            let index = build(&shared_dir("index-paging"), entries.clone());
            let mut writer = index.writer().expect("writer");
            for (i, e) in entries.iter().enumerate().filter(|(i, _)| i % 7 == 0) {
                if i % 2 == 0 {
                    writer.delete(&e.address).expect("delete");
                } else {
                    let mut e = e.clone();
                    e.service = Some("Accueil des urgences".into());
                    writer.upsert(&e).expect("upsert");
                }
            }
            writer.commit().expect("commit");
            index
        })
    }

    fn query() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{0,3}",
            Just("centre hospitalier".to_string()),
            Just("cabinet".to_string()),
            Just("pharmacie".to_string()),
            "(centre|cabinet|laboratoire|pharmacie) [a-z]{0,2}",
            "[a-z]{4,6}",
            // words of places and professions, whole or being typed: exact matches there share a score
            // level with one-typo name matches, and prefixes outside names come after them
            "(paris|lyon|nantes|lille|medecin|infirmier|pharmacien|dentaire|sante)",
            "(pari|lyo|nant|lill|medec|infirm|pharma|denta|sant)",
        ]
    }

    fn filters() -> impl Strategy<Value = Filters> {
        prop_oneof![
            Just(Filters::default()),
            Just(Filters {
                bal_type: Some(BalType::Per),
                ..Default::default()
            }),
            Just(Filters {
                bal_type: Some(BalType::Org),
                ..Default::default()
            }),
            Just(Filters {
                profession: Some("10".into()),
                ..Default::default()
            }),
            // rare: the filter leads, not the word
            Just(Filters {
                department: Some("2A".into()),
                ..Default::default()
            }),
            Just(Filters {
                bal_type: Some(BalType::Per),
                department: Some("75".into()),
                ..Default::default()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

        #[test]
        fn first_page_agrees_with_cursor_pages(q in query(), filters in filters(), limit in 1usize..12) {
            let index = index();
            // computed afresh, then with the clauses kept by the engine from the earlier queries
            let request = SearchRequest { q: q.clone(), filters: filters.clone(), limit: limit * 3, cursor: None };
            let addresses = |r: &mss_index::SearchResults| -> Vec<(String, f32)> {
                r.hits.iter().map(|h| (h.entry.address.to_string(), h.score)).collect()
            };
            let suggest = || index.autocomplete(&q, &filters, limit).expect("autocomplete");
            let addresses_of = |s: &[mss_index::Suggestion]| -> Vec<String> {
                s.iter().map(|s| s.address.clone()).collect()
            };
            // a word being typed is looked up level by level when nothing was kept for it
            index.clear_query_caches();
            let suggested_afresh = suggest();
            index.clear_query_caches();
            let fresh = index.search(&request).expect("fresh");
            for _ in 0..2 {
                let _ = index.search(&request).expect("again");
            }
            let kept = index.search(&request).expect("kept");
            prop_assert_eq!(fresh.total, kept.total);
            prop_assert_eq!(addresses(&fresh), addresses(&kept));
            let first = index
                .search(&SearchRequest { q: q.clone(), filters: filters.clone(), limit: limit * 3, cursor: None })
                .expect("first page");
            let mut paged = Vec::new();
            let mut cursor = None;
            for _ in 0..3 {
                let r = index
                    .search(&SearchRequest { q: q.clone(), filters: filters.clone(), limit, cursor: cursor.clone() })
                    .expect("page");
                prop_assert_eq!(r.total, first.total);
                paged.extend(r.hits.iter().map(|h| (h.entry.address.to_string(), h.score)));
                match r.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let first: Vec<_> = first.hits.iter().map(|h| (h.entry.address.to_string(), h.score)).collect();
            prop_assert_eq!(first, paged, "{:?} {:?} by {}", q, filters, limit);
            let suggested = suggest();
            let searched: Vec<String> = index
                .search(&SearchRequest { q: q.clone(), filters: filters.clone(), limit, cursor: None })
                .expect("search")
                .hits
                .into_iter()
                .map(|h| h.entry.address.to_string())
                .collect();
            if !(q.trim().is_empty() && filters.is_empty()) {
                prop_assert_eq!(addresses_of(&suggested_afresh), searched.clone(), "afresh");
                prop_assert_eq!(addresses_of(&suggested), searched);
                // read again from the suggestions kept per document: the same, highlights included
                prop_assert_eq!(suggested, suggested_afresh);
            }
        }
    }
}
