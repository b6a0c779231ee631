//! Property tests of the RFC 4515 filter builder: any text becomes an assertion value that reads back as
//! exactly that text, both with our parser and with ldap3's (the one that encodes what goes on the wire),
//! and never changes the filter's structure.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![cfg(feature = "ldap")]

use ldap3::asn1::{ASNTag, PL, StructureTag};
use mss_annuaire::ldap::{Attribute, Filter, escape_value};
use proptest::prelude::*;

fn attr(name: &str) -> Attribute {
    Attribute::new(name).unwrap()
}

/// Any text, with the characters that matter to filters made frequent.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('*'),
                Just('('),
                Just(')'),
                Just('\\'),
                Just('\0'),
                Just('|'),
                Just('&'),
                Just('!'),
                Just('='),
                Just('é'),
                Just(' '),
                any::<char>(),
            ],
            0..40
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

/// What ldap3 puts on the wire for `text`: (filter tag number, attribute, value pieces).
fn wire(text: &str) -> StructureTag {
    ldap3::parse_filter(text)
        .unwrap_or_else(|()| panic!("ldap3 refuses {text:?}"))
        .into_structure()
}

fn primitive(t: &StructureTag) -> Vec<u8> {
    match &t.payload {
        PL::P(bytes) => bytes.clone(),
        PL::C(_) => panic!("expected a primitive tag: {t:?}"),
    }
}

fn children(t: &StructureTag) -> &[StructureTag] {
    match &t.payload {
        PL::C(v) => v,
        PL::P(_) => panic!("expected a constructed tag: {t:?}"),
    }
}

fn arb_filter() -> impl Strategy<Value = Filter> {
    let names = prop_oneof![Just("cn"), Just("sn"), Just("mail"), Just("2.5.4.3")];
    let leaf = (names, text(), text(), 0..5u8).prop_map(|(n, a, b, kind)| {
        let at = attr(n);
        match kind {
            0 => Filter::equal(&at, a),
            1 => Filter::prefix(&at, a),
            2 => Filter::substrings(&at, Some(a.clone()), vec![b.clone(), a], Some(b)),
            3 => Filter::GreaterOrEqual(at, a),
            _ => Filter::present(&at),
        }
    });
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_text_is_one_literal_value(value in text()) {
        let f = Filter::equal(&attr("cn"), value.clone());
        let text = f.to_string();
        // our parser reads back exactly the literal
        prop_assert_eq!(Filter::parse(&text).unwrap(), f);
        // ldap3 encodes one equality match (context tag 3) of cn with exactly these bytes
        let tag = wire(&text);
        prop_assert_eq!(tag.id, 3);
        let parts = children(&tag);
        prop_assert_eq!(parts.len(), 2);
        prop_assert_eq!(primitive(&parts[0]), b"cn".to_vec());
        prop_assert_eq!(primitive(&parts[1]), value.as_bytes().to_vec());
        // the escaped value holds none of the filter's structural characters
        prop_assert!(!escape_value(&value).contains(['*', '(', ')', '\0']));
    }

    #[test]
    fn any_prefix_is_one_substring_initial(value in text().prop_filter("non-empty", |v| !v.is_empty())) {
        let f = Filter::prefix(&attr("sn"), value.clone());
        let text = f.to_string();
        prop_assert_eq!(Filter::parse(&text).unwrap(), f);
        let tag = wire(&text);
        prop_assert_eq!(tag.id, 4, "a substring filter");
        let pieces = children(&children(&tag)[1]);
        prop_assert_eq!(pieces.len(), 1);
        prop_assert_eq!(pieces[0].id, 0, "initial");
        prop_assert_eq!(primitive(&pieces[0]), value.as_bytes().to_vec());
    }

    #[test]
    fn any_filter_reads_back_as_built(f in arb_filter()) {
        let text = f.to_string();
        prop_assert_eq!(Filter::parse(&text).unwrap(), f);
        prop_assert!(ldap3::parse_filter(&text).is_ok(), "ldap3 refuses {}", text);
    }
}
