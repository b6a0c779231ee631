//! The orders issue 18 asks for, exactly, on both routes: boxes located in the city a query names come
//! first, every word may be a prefix, a query that matches nothing drops a word and says so, and an
//! address typed whole or by its beginning finds its box first.

mod common;

use std::sync::OnceLock;

use common::{MEDECIN, build, person, shared_dir, structure};
use mss_annuaire::{BalType, Entry};
use mss_index::{DirectoryIndex, Filters, SearchRequest};

fn org(address: &str, organisation: &str, service: &str, postal_code: &str, city: &str) -> Entry {
    structure(
        address,
        BalType::Org,
        organisation,
        Some(service),
        postal_code,
        city,
    )
}

fn fixture() -> Vec<Entry> {
    let cardio = Some(("SM04", "Cardiologie et maladies vasculaires"));
    vec![
        // what `saint etienne cardio` found first before: a centre named after Saint-Étienne, elsewhere
        org(
            "cardio@cds-se-limoges.fr",
            "Centre de santé Saint-Étienne",
            "Cardiologie",
            "87000",
            "Limoges",
        ),
        org(
            "cardio@cds-se-brest.fr",
            "Centre de santé Saint-Étienne",
            "Cardiologie",
            "29200",
            "Brest",
        ),
        org(
            "cardio@cds-se-stdenis.fr",
            "Centre de santé Saint-Étienne",
            "Cardiologie",
            "93200",
            "Saint-Denis",
        ),
        org(
            "cardiologie@ch-rouvray.fr",
            "Centre Hospitalier de Saint-Étienne-du-Rouvray",
            "Cardiologie",
            "76800",
            "Saint-Étienne-du-Rouvray",
        ),
        org(
            "cardiologie@chu-saint-etienne.fr",
            "CHU de Saint-Étienne",
            "Cardiologie",
            "42055",
            "Saint-Étienne",
        ),
        org(
            "cardiologie@hopital-nord-se.fr",
            "Hôpital Nord",
            "Cardiologie",
            "42100",
            "Saint-Étienne",
        ),
        // cardiology in Limoges, and a centre named after Limoges elsewhere
        org(
            "cardiologie@chu-limoges.fr",
            "CHU de Limoges",
            "Cardiologie",
            "87000",
            "Limoges",
        ),
        org(
            "cardio@cds-limoges-brest.fr",
            "Centre de santé Limoges",
            "Cardiologie",
            "29200",
            "Brest",
        ),
        org(
            "cardiologie@clinique-emailleurs.fr",
            "Clinique des Émailleurs",
            "Cardiologie",
            "87000",
            "Limoges",
        ),
        person(
            "anne.aubert@medecin.mssante.fr",
            "Anne",
            "Aubert",
            MEDECIN,
            cardio,
            "87100",
            "Limoges",
        ),
        // emergencies in Nantes, and centres named after Nantes elsewhere
        org(
            "urgences@cds-nantes-brest.fr",
            "Centre de santé Nantes",
            "Urgences",
            "29200",
            "Brest",
        ),
        org(
            "urgences@cds-nantes-strasbourg.fr",
            "Centre de santé Nantes",
            "Urgences",
            "67000",
            "Strasbourg",
        ),
        org(
            "urgences@chu-nantes.fr",
            "CHU de Nantes",
            "Urgences",
            "44093",
            "Nantes",
        ),
        org(
            "urgences@clinique-jules-verne.fr",
            "Clinique Jules Verne",
            "Urgences",
            "44300",
            "Nantes",
        ),
        // addresses that share their beginnings
        person(
            "vasseur.0@medecin.mssante.fr",
            "Paul",
            "Vasseur",
            MEDECIN,
            None,
            "59000",
            "Lille",
        ),
        person(
            "vasseur.0@infirmier.mssante.fr",
            "Marc",
            "Vasseur",
            MEDECIN,
            None,
            "59000",
            "Lille",
        ),
        person(
            "vasseur.01@medecin.mssante.fr",
            "Luc",
            "Vasseur",
            MEDECIN,
            None,
            "59000",
            "Lille",
        ),
        person(
            "jean.dupont@chu-nantes.mssante.fr",
            "Jean",
            "Dupont",
            MEDECIN,
            None,
            "44093",
            "Nantes",
        ),
        person(
            "jean.dupont@chu-limoges.mssante.fr",
            "Jean",
            "Dupont",
            MEDECIN,
            None,
            "87000",
            "Limoges",
        ),
        person(
            "jean.dupont@ch-dax.mssante.fr",
            "Jean",
            "Dupont",
            MEDECIN,
            None,
            "40100",
            "Dax",
        ),
        person(
            "jean.dupont2@chu-nantes.mssante.fr",
            "Jean",
            "Dupont",
            MEDECIN,
            None,
            "44093",
            "Nantes",
        ),
        // short names of structures
        org(
            "urgences@ch-dax.fr",
            "Centre Hospitalier de Dax",
            "Urgences",
            "40100",
            "Dax",
        ),
        org(
            "cardiologie@aphp.fr",
            "Assistance Publique - Hôpitaux de Paris",
            "Cardiologie",
            "75013",
            "Paris",
        ),
    ]
}

fn index() -> &'static DirectoryIndex {
    static INDEX: OnceLock<DirectoryIndex> = OnceLock::new();
    INDEX.get_or_init(|| build(&shared_dir("index-ranking"), fixture()))
}

/// The addresses of the first `n` answers of the search route.
fn search(q: &str, n: usize) -> Vec<String> {
    let req = SearchRequest {
        q: q.into(),
        limit: n,
        ..Default::default()
    };
    let r = index().search(&req).expect("search");
    r.hits
        .into_iter()
        .map(|h| h.entry.address.to_string())
        .collect()
}

/// The same on the autocomplete route.
fn suggest(q: &str, n: usize) -> Vec<String> {
    let s = index()
        .autocomplete(q, &Filters::default(), n)
        .expect("autocomplete");
    s.into_iter().map(|s| s.address).collect()
}

/// Both routes give exactly `want`, in this order, as their first answers.
fn assert_first(q: &str, want: &[&str]) {
    assert_eq!(search(q, want.len()), want, "search {q:?}");
    assert_eq!(suggest(q, want.len()), want, "autocomplete {q:?}");
}

#[test]
fn a_service_and_a_city_lists_the_boxes_located_there_first() {
    // the CHU names the city in its organisation and is located there: above the hospital that is only
    // located there; then Saint-Étienne-du-Rouvray's hospital (both words in its name and its city),
    // the centre in Saint-Denis (`saint` in its city too), the centres matching in their name only
    // (ties: alphabetical, then by address hash)
    assert_first(
        "saint etienne cardio",
        &[
            "cardiologie@chu-saint-etienne.fr",
            "cardiologie@hopital-nord-se.fr",
            "cardiologie@ch-rouvray.fr",
            "cardio@cds-se-stdenis.fr",
        ],
    );
    let last_two = search("saint etienne cardio", 6).split_off(4);
    let mut sorted = last_two.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["cardio@cds-se-brest.fr", "cardio@cds-se-limoges.fr"]
    );
}

#[test]
fn an_earlier_word_may_be_a_prefix() {
    // `cardio` is not the last word: it matches as a prefix, below whole words; Limoges boxes first
    // (the CHU names the city too), the structure boxes before the cardiologist (a speciality is a
    // lesser field than a service; ties alphabetical)
    assert_first(
        "cardio limoges",
        &[
            "cardiologie@chu-limoges.fr",
            "cardio@cds-se-limoges.fr",
            "cardiologie@clinique-emailleurs.fr",
            "anne.aubert@medecin.mssante.fr",
            "cardio@cds-limoges-brest.fr",
        ],
    );
    assert_first(
        "urgences nantes",
        &["urgences@chu-nantes.fr", "urgences@clinique-jules-verne.fr"],
    );
    // then the centres named after Nantes, elsewhere (same name: by address hash)
    let mut rest = search("urgences nantes", 4).split_off(2);
    rest.sort();
    assert_eq!(
        rest,
        [
            "urgences@cds-nantes-brest.fr",
            "urgences@cds-nantes-strasbourg.fr"
        ]
    );
}

#[test]
fn a_department_may_be_named() {
    // Loire-Atlantique is the department of Nantes: only its boxes match, the CHU first (its
    // organisation words), the clinic after
    let req = SearchRequest {
        q: "urgences loire atlantique".into(),
        limit: 5,
        ..Default::default()
    };
    let r = index().search(&req).expect("search");
    assert_eq!(r.total, 2);
    assert!(r.dropped.is_empty());
    assert_first(
        "urgences loire atlantique",
        &["urgences@chu-nantes.fr", "urgences@clinique-jules-verne.fr"],
    );
    // and by its number
    assert_first(
        "urgences 44",
        &["urgences@chu-nantes.fr", "urgences@clinique-jules-verne.fr"],
    );
}

#[test]
fn an_address_typed_whole_or_by_its_beginning_finds_its_box_first() {
    assert_first(
        "vasseur.0@medecin.mssante.fr",
        &["vasseur.0@medecin.mssante.fr"],
    );
    // the beginning: every box it begins, alphabetically; `vasseur.01` has another local part
    assert_first(
        "vasseur.0@",
        &[
            "vasseur.0@infirmier.mssante.fr",
            "vasseur.0@medecin.mssante.fr",
        ],
    );
    assert_first(
        "jean.dupont@chu-",
        &[
            "jean.dupont@chu-limoges.mssante.fr",
            "jean.dupont@chu-nantes.mssante.fr",
        ],
    );
    // typed in capitals, as pasted from a letter head
    assert_first("Jean.Dupont@CH-", &["jean.dupont@ch-dax.mssante.fr"]);
    // a filter still applies: no personal box, the words of the address are searched instead
    let only_org = Filters {
        bal_type: Some(BalType::Org),
        ..Default::default()
    };
    let orgs = index()
        .autocomplete("jean.dupont@chu-", &only_org, 5)
        .expect("autocomplete");
    assert!(orgs.iter().all(|s| s.bal_type == BalType::Org), "{orgs:?}");
}

#[test]
fn short_names_of_structures_match_their_long_forms() {
    assert_first("ch dax urgences", &["urgences@ch-dax.fr"]);
    assert_first("aphp cardio", &["cardiologie@aphp.fr"]);
    assert_first("ap-hp", &["cardiologie@aphp.fr"]);
    assert_first(
        "centre hospitalier universitaire nantes",
        &["urgences@chu-nantes.fr"],
    );
}

#[test]
fn a_query_that_matches_nothing_drops_its_least_selective_word_and_says_so() {
    // `xyzzy` matches nothing at all: it goes first
    let req = SearchRequest {
        q: "urgences nantes xyzzy".into(),
        limit: 2,
        ..Default::default()
    };
    let r = index().search(&req).expect("search");
    assert_eq!(r.dropped, ["xyzzy"]);
    let got: Vec<String> = r.hits.iter().map(|h| h.entry.address.to_string()).collect();
    assert_eq!(
        got,
        ["urgences@chu-nantes.fr", "urgences@clinique-jules-verne.fr"]
    );
    let s = index()
        .suggest("urgences nantes xyzzy", &Filters::default(), 2)
        .expect("suggest");
    assert_eq!(s.dropped, ["xyzzy"]);
    let got: Vec<&str> = s.suggestions.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(
        got,
        ["urgences@chu-nantes.fr", "urgences@clinique-jules-verne.fr"]
    );
    // every word matches, but not together: the one matching more entries goes (Nantes: 6, Dax: 3)
    let r = index()
        .search(&SearchRequest {
            q: "dax nantes".into(),
            limit: 3,
            ..Default::default()
        })
        .expect("search");
    assert_eq!(r.dropped, ["nantes"]);
    assert_eq!(r.total, 2);
    // a query that matches needs nothing dropped
    let r = index()
        .search(&SearchRequest {
            q: "urgences nantes".into(),
            limit: 1,
            ..Default::default()
        })
        .expect("search");
    assert!(r.dropped.is_empty());
}
