//! The relevance table: what a user types, and what must come first.

mod common;

use std::sync::OnceLock;

use common::{build, fixture, labels, shared_dir};
use mss_annuaire::BalType;
use mss_index::{DirectoryIndex, Filters, SearchRequest};

fn index() -> &'static DirectoryIndex {
    static INDEX: OnceLock<DirectoryIndex> = OnceLock::new();
    INDEX.get_or_init(|| build(&shared_dir("index-relevance"), fixture()))
}

/// What a row expects of the hits.
enum Expect {
    /// The first hits, exactly and in this order.
    Starts(&'static [&'static str]),
    /// Exactly these hits, in this order, and nothing else.
    Only(&'static [&'static str]),
    /// This hit among the first `n`.
    Within(&'static str, usize),
    /// No hit at all.
    Nothing,
}
use Expect::*;

fn f(
    dept: Option<&str>,
    bal: Option<BalType>,
    profession: Option<&str>,
    postal: Option<&str>,
) -> Filters {
    Filters {
        bal_type: bal,
        profession: profession.map(str::to_string),
        speciality: None,
        department: dept.map(str::to_string),
        postal_code: postal.map(str::to_string),
    }
}

const FD: &str = "François Dupont";
const FDU: &str = "Françoise Dupuis";
const JB: &str = "Jean Bernard";
const MB: &str = "Marco Bernardo";
const ASM: &str = "Anne-Sophie Martin";
const PLH: &str = "Paul L'Hermite";
const HLT: &str = "Henri de La Tour d'Auvergne";
const YLG: &str = "Yann Le Gall";
const AND: &str = "Aminata N'Diaye";
const CHU: &str = "CHU de Saint-Étienne – Cardiologie";
const HEGP: &str = "Hôpital Européen Georges Pompidou – Urgences";
const CHL: &str = "Centre Hospitalier de L'Haÿ-les-Roses – Pharmacie";
const BIO: &str = "Laboratoire Biomnis";
const LIL: &str = "Cabinet médical des Lilas";

fn table() -> Vec<(&'static str, Filters, Expect)> {
    let none = Filters::default;
    vec![
        // accents and case, typed or not; exact before prefix before typo
        ("francois", none(), Starts(&[FD, FDU])),
        ("François", none(), Starts(&[FD, FDU])),
        ("FRANCOIS DUPONT", none(), Only(&[FD])),
        ("franc", none(), Starts(&[FD, FDU])),
        ("françoise", none(), Starts(&[FDU, FD])),
        ("Françoise Dupuis", none(), Only(&[FDU])),
        ("oceane loeuillet", none(), Only(&["Océane Lœuillet"])),
        ("lœuil", none(), Only(&["Océane Lœuillet"])),
        // typos: one substitution, one swap; none below four letters
        ("dupont", none(), Starts(&[FD])),
        ("dupnot", none(), Starts(&[FD])),
        ("dupond", none(), Starts(&[FD])),
        ("bernard", none(), Starts(&[JB, MB])),
        ("bernrad", none(), Only(&[JB])),
        ("bernar", none(), Starts(&[JB, MB])),
        ("bernardo", none(), Starts(&[MB, JB])),
        (
            "rolland",
            none(),
            Only(&["Gaspard Rolland", "Gaspard Rollandin", "Gaspard Roland"]),
        ),
        (
            "gaspard rolland",
            none(),
            Starts(&["Gaspard Rolland", "Gaspard Rollandin", "Gaspard Roland"]),
        ),
        (
            "roland",
            none(),
            Starts(&["Gaspard Roland", "Gaspard Rolland"]),
        ),
        ("lyn", none(), Nothing),
        // hyphens and apostrophes, split or glued
        ("anne sophie", none(), Only(&[ASM])),
        ("annesophie", none(), Only(&[ASM])),
        ("anne-sophie martin", none(), Only(&[ASM])),
        ("lhermite", none(), Only(&[PLH])),
        ("l'hermite", none(), Only(&[PLH])),
        ("L’Hermite", none(), Only(&[PLH])),
        ("hermite", none(), Only(&[PLH])),
        ("lherm", none(), Only(&[PLH])),
        // particles
        ("de la tour", none(), Starts(&[HLT])),
        ("latour", none(), Only(&[HLT])),
        ("dauvergne", none(), Only(&[HLT])),
        ("d'auvergne", none(), Only(&[HLT])),
        ("henri de la tour d'auvergne", none(), Only(&[HLT])),
        ("le gall", none(), Only(&[YLG])),
        ("legall", none(), Only(&[YLG])),
        ("ndiaye", none(), Only(&[AND])),
        ("n'diaye", none(), Only(&[AND])),
        ("diaye", none(), Only(&[AND])),
        // places
        ("saintetienne", none(), Only(&[CHU, PLH])),
        ("saint-etienne", none(), Only(&[CHU, PLH])),
        ("lhay les roses", none(), Only(&[CHL, AND])),
        ("l'haÿ", none(), Only(&[CHL, AND])),
        // organisations and services
        ("saint etienne cardiologie", none(), Only(&[CHU])),
        ("chu saint-étienne", none(), Only(&[CHU])),
        ("pompidou urgences", none(), Only(&[HEGP])),
        ("hopital europeen", none(), Only(&[HEGP])),
        ("hôpital", none(), Only(&[HEGP])),
        ("cardiologie", none(), Only(&[CHU, JB])),
        ("cardio", none(), Only(&[CHU, JB])),
        ("biomnis", none(), Only(&[BIO])),
        ("lyon labo", none(), Only(&[BIO])),
        // issue 18: every word may be a prefix, below whole words (was `Nothing`: only the last word was)
        ("labo lyon", none(), Only(&[BIO])),
        ("cabinet lilas", none(), Only(&[LIL])),
        // professions and specialities
        ("pediatrie", none(), Only(&[AND])),
        ("kine", none(), Only(&[YLG])),
        ("masseur kinésithérapeute", none(), Only(&[YLG])),
        ("sage femme", none(), Only(&[ASM])),
        ("dentiste", none(), Only(&[HLT])),
        ("psychiatrie saint etienne", none(), Only(&[PLH])),
        ("pharmacien marseille", none(), Within(MB, 10)),
        // several words narrow
        ("dupont paris", none(), Only(&[FD])),
        // issue 18: nothing matches both, so the word matching more entries is dropped, and the answer
        // says so (was `Nothing`)
        ("dupont lyon", none(), Only(&[FD])),
        ("jean bernard lyon", none(), Only(&[JB])),
        ("bernard marseille", none(), Only(&[MB])),
        // filters
        ("bernard", f(Some("69"), None, None, None), Only(&[JB])),
        ("bernard", f(Some("13"), None, None, None), Only(&[MB])),
        ("bernard", f(None, None, Some("21"), None), Only(&[MB])),
        ("martin", f(None, None, None, Some("33000")), Only(&[ASM])),
        (
            "",
            f(None, Some(BalType::Org), None, None),
            Only(&[CHL, CHU, HEGP]),
        ),
        ("", f(None, Some(BalType::App), None, None), Only(&[BIO])),
        (
            "lyon",
            f(None, Some(BalType::App), None, None),
            Only(&[BIO]),
        ),
        ("", f(Some("94"), None, None, None), Only(&[AND, CHL])),
        ("dupont", f(Some("69"), None, None, None), Nothing),
        // red-listed never found; nonsense finds nothing
        ("zorglub", none(), Nothing),
        ("mystere", none(), Nothing),
        ("xyzzyxyzzy", none(), Nothing),
        // short prefixes only look at names
        ("f", none(), Within(FD, 10)),
        ("y", none(), Starts(&[YLG])),
    ]
}

#[test]
fn relevance_table() {
    let index = index();
    let rows = table();
    assert!(rows.len() >= 40);
    let mut failures = Vec::new();
    for (q, filters, expect) in rows {
        let req = SearchRequest {
            q: q.into(),
            filters: filters.clone(),
            limit: 20,
            cursor: None,
        };
        let got: Vec<String> = index
            .search(&req)
            .expect("search")
            .hits
            .into_iter()
            .map(|h| h.entry.display_name())
            .collect();
        let ok = match &expect {
            Starts(want) => got.len() >= want.len() && got[..want.len()] == **want,
            Only(want) => got == *want,
            Within(want, n) => got.iter().take(*n).any(|g| g == want),
            Nothing => got.is_empty(),
        };
        if !ok {
            let want = match expect {
                Starts(w) => format!("starts {w:?}"),
                Only(w) => format!("only {w:?}"),
                Within(w, n) => format!("{w:?} within {n}"),
                Nothing => "nothing".into(),
            };
            failures.push(format!("{q:?} {filters:?}: want {want}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn scores_say_exact_then_prefix_then_typo() {
    let hits = index()
        .search(&SearchRequest {
            q: "rolland".into(),
            limit: 10,
            ..Default::default()
        })
        .expect("search")
        .hits;
    let scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
    assert_eq!(scores.len(), 3);
    assert!(scores[0] > scores[1] && scores[1] > scores[2], "{scores:?}");
}

#[test]
fn totals_count_every_match() {
    let index = index();
    let all = index
        .search(&SearchRequest {
            q: String::new(),
            limit: 5,
            ..Default::default()
        })
        .expect("search");
    assert_eq!(all.total, index.num_entries());
    assert_eq!(all.hits.len(), 5);
    // red-listed left out of the count too
    assert_eq!(index.num_entries() as usize, fixture().len() - 1);
    let count = index
        .search(&SearchRequest {
            q: "gaspard".into(),
            limit: 0,
            ..Default::default()
        })
        .expect("search");
    assert_eq!(
        (count.total, count.hits.len(), count.next_cursor),
        (3, 0, None)
    );
}

#[test]
fn autocomplete_marks_what_matched() {
    let index = index();
    let s = index
        .autocomplete("francois dup", &Filters::default(), 5)
        .expect("autocomplete");
    assert_eq!(s[0].label, FD);
    assert_eq!(s[0].highlights, [[0, 8], [9, 12]]);
    assert_eq!(s[0].city.as_deref(), Some("PARIS"));
    assert_eq!(s[0].department.as_deref(), Some("75"));
    assert_eq!(s[0].profession.as_deref(), Some("Médecin"));
    let s = index
        .autocomplete("lhermite", &Filters::default(), 5)
        .expect("autocomplete");
    assert_eq!(s[0].label, PLH);
    assert_eq!(s[0].highlights, [[5, 14]]);
    let s = index
        .autocomplete("bernrad", &Filters::default(), 5)
        .expect("autocomplete");
    assert_eq!(s[0].highlights, [[5, 12]]);
    assert!(
        index
            .autocomplete("", &Filters::default(), 5)
            .expect("empty")
            .is_empty()
    );
    assert!(
        index
            .autocomplete("  ,; ", &Filters::default(), 5)
            .expect("blank")
            .is_empty()
    );
    let orgs = index
        .autocomplete("", &f(None, Some(BalType::Org), None, None), 10)
        .expect("filter only");
    assert_eq!(orgs.len(), 3);
}

#[test]
fn bad_parameters_are_named() {
    let index = index();
    let err = index
        .search(&SearchRequest {
            q: "x".into(),
            limit: 10,
            cursor: Some("not a cursor".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, mss_index::Error::InvalidCursor(_)), "{err}");
    assert!(err.to_string().starts_with("cursor: "));
    let err = index
        .search(&SearchRequest {
            q: "x".into(),
            limit: 100_000,
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().starts_with("limit: "), "{err}");
    let err = index
        .autocomplete("x", &f(Some("100"), None, None, None), 5)
        .unwrap_err();
    assert!(err.to_string().starts_with("department: "), "{err}");
    let err = index.get("not an address").unwrap_err();
    assert!(err.to_string().starts_with("address: "), "{err}");
}

#[test]
fn labels_helper_agrees() {
    assert_eq!(labels(index(), "legall", 3), [YLG]);
}
