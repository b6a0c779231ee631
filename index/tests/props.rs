//! Whatever is typed or passed as a cursor, searching answers (or refuses the cursor) without panicking.

mod common;

use std::sync::OnceLock;

use common::{build, fixture, shared_dir};
use mss_index::{DirectoryIndex, Error, Filters, SearchRequest};
use proptest::prelude::*;

fn index() -> &'static DirectoryIndex {
    static INDEX: OnceLock<DirectoryIndex> = OnceLock::new();
    INDEX.get_or_init(|| build(&shared_dir("index-props"), fixture()))
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Zéèàçœ' -]{0,40}",
        "\\PC{0,300}",
        "[a-z]{1,3}( [a-z]{1,12}){0,12}",
        "(de |la |le ){0,6}[a-z]{0,8}",
        // addresses typed whole or by their beginning
        "[a-zA-Z0-9.+_-]{0,12}@[a-zA-Z0-9.-]{0,20}",
        "\\PC{0,10}@\\PC{0,10}",
        Just("a".repeat(5000)),
        Just("é-".repeat(3000)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_query_answers_within_the_limit(q in query(), limit in 0usize..30) {
        let r = index().search(&SearchRequest { q: q.clone(), filters: Filters::default(), limit, cursor: None });
        let r = r.map_err(|e| TestCaseError::fail(format!("{q:?}: {e}")))?;
        prop_assert!(r.hits.len() <= limit);
        prop_assert!(r.total >= r.hits.len() as u64);
        let s = index().autocomplete(&q, &Filters::default(), limit);
        let s = s.map_err(|e| TestCaseError::fail(format!("{q:?}: {e}")))?;
        prop_assert!(s.len() <= limit);
        for sug in &s {
            let chars = sug.label.chars().count();
            for [a, b] in &sug.highlights {
                prop_assert!(a < b && *b <= chars, "{:?} in {:?}", sug.highlights, sug.label);
            }
        }
    }

    #[test]
    fn any_beginning_of_an_address_past_its_at_sign_finds_it_first(pick in 0usize..1000, cut in 0usize..100, upper in any::<bool>()) {
        // red-listed boxes are never indexed
        let entries: Vec<_> = fixture().into_iter().filter(|e| !e.red_listed).collect();
        let e = &entries[pick % entries.len()];
        let address = e.address.as_str();
        let at = address.find('@').unwrap_or(0) + 1;
        let typed = &address[..at + cut % (address.len() - at + 1)];
        let typed = if upper { typed.to_uppercase() } else { typed.to_string() };
        let s = index().autocomplete(&typed, &Filters::default(), 50).unwrap();
        // every box the beginning names, and only those, the exact address first
        prop_assert!(s.iter().any(|s| s.address == address), "{typed:?}: {s:?}");
        prop_assert!(s.iter().all(|s| s.address.to_lowercase().starts_with(&typed.to_lowercase())));
        if typed.eq_ignore_ascii_case(address) {
            prop_assert_eq!(&s[0].address, address);
        }
    }

    #[test]
    fn any_cursor_is_used_or_refused(cursor in "\\PC{0,40}|[A-Za-z0-9_-]{28}", q in "[a-z]{0,3}") {
        let r = index().search(&SearchRequest { q, filters: Filters::default(), limit: 5, cursor: Some(cursor) });
        match r {
            Ok(r) => prop_assert!(r.hits.len() <= 5),
            Err(Error::InvalidCursor(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
