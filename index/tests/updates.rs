//! Incremental changes by address, lookups, reloads and how a rebuild treats repeated and red-listed lines.

mod common;

use common::{MEDECIN, addr, build, fixture, labels, person, structure};
use mss_annuaire::BalType;
use mss_index::{Builder, DirectoryIndex, Error, Filters, SearchRequest};

/// Entries matching every word of `q` (an answer that had to drop words counts none).
fn count(index: &DirectoryIndex, q: &str) -> u64 {
    let r = index
        .search(&SearchRequest {
            q: q.into(),
            limit: 0,
            ..Default::default()
        })
        .expect("search");
    if r.dropped.is_empty() { r.total } else { 0 }
}

#[test]
fn get_normalises_the_domain() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    let e = index
        .get(" francois.dupont@MEDECIN.MSSante.fr ")
        .unwrap()
        .expect("found");
    assert_eq!(e.first_name.as_deref(), Some("François"));
    assert_eq!(index.get("nobody@medecin.mssante.fr").unwrap(), None);
    // red-listed entries are not there to be found
    assert_eq!(
        index.get("zorglub.mystere@medecin.mssante.fr").unwrap(),
        None
    );
    let err = index.get("not-an-address").unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidParameter {
                param: "address",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn upsert_and_delete_by_address() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    let before = index.num_entries();

    // a new entry
    let mut w = index.writer().unwrap();
    w.upsert(&person(
        "nina.quesnel@medecin.mssante.fr",
        "Nina",
        "Quesnel",
        MEDECIN,
        None,
        "87000",
        "Limoges",
    ))
    .unwrap();
    assert_eq!(count(&index, "quesnel"), 0, "not visible before commit");
    w.commit().unwrap();
    assert_eq!(labels(&index, "quesnel", 5), ["Nina Quesnel"]);
    assert_eq!(index.num_entries(), before + 1);
    // suggestions are kept per document: a replaced entry shows its new self
    let shown = |q: &str| -> Vec<(String, Option<String>)> {
        index
            .autocomplete(q, &Default::default(), 5)
            .unwrap()
            .into_iter()
            .map(|s| (s.label, s.city))
            .collect()
    };
    let first_shown = shown("quesnel");
    assert_eq!(first_shown.len(), 1);
    assert_eq!(first_shown[0].0, "Nina Quesnel");

    // the same address again replaces it: moved to Brest, renamed
    let mut moved = person(
        "nina.quesnel@medecin.mssante.fr",
        "Nina",
        "Quesnel-Riou",
        MEDECIN,
        None,
        "29200",
        "Brest",
    );
    moved.civility = Some("DR".into());
    w.upsert(&moved).unwrap();
    w.commit().unwrap();
    assert_eq!(index.num_entries(), before + 1);
    assert_eq!(count(&index, "quesnel limoges"), 0);
    assert_eq!(labels(&index, "quesnel brest", 5), ["Nina Quesnel-Riou"]);
    assert_eq!(labels(&index, "riou", 5), ["Nina Quesnel-Riou"]);
    let moved_shown = shown("quesnel");
    assert_eq!(moved_shown.len(), 1);
    assert_eq!(moved_shown[0].0, "Nina Quesnel-Riou");
    assert_ne!(moved_shown[0].1, first_shown[0].1, "the new city");
    let got = index
        .get("nina.quesnel@medecin.mssante.fr")
        .unwrap()
        .unwrap();
    assert_eq!(got, moved);

    // several changes to one address in a batch: the last one counts
    w.upsert(&person(
        "nina.quesnel@medecin.mssante.fr",
        "Nina",
        "Abc",
        MEDECIN,
        None,
        "29200",
        "Brest",
    ))
    .unwrap();
    w.delete(&addr("nina.quesnel@medecin.mssante.fr")).unwrap();
    w.upsert(&moved).unwrap();
    w.commit().unwrap();
    assert_eq!(labels(&index, "quesnel", 5), ["Nina Quesnel-Riou"]);
    assert_eq!(count(&index, "abc"), 0);

    // deleted
    w.delete(&addr("nina.quesnel@medecin.mssante.fr")).unwrap();
    w.delete(&addr("nobody@nowhere.fr")).unwrap();
    w.commit().unwrap();
    assert_eq!(count(&index, "quesnel"), 0);
    assert_eq!(index.num_entries(), before);

    // a red-listed upsert removes the entry, from pages asked for before too (kept by the engine)
    let suggested = |q: &str| -> Vec<String> {
        index
            .autocomplete(q, &Default::default(), 5)
            .unwrap()
            .into_iter()
            .map(|s| s.label)
            .collect()
    };
    assert_eq!(
        labels(&index, "bernard", 5),
        ["Jean Bernard", "Marco Bernardo"]
    );
    assert_eq!(suggested("bernard"), ["Jean Bernard", "Marco Bernardo"]);
    let mut secret = index
        .get("jean.bernard@medecin.mssante.fr")
        .unwrap()
        .unwrap();
    secret.red_listed = true;
    w.upsert(&secret).unwrap();
    w.commit().unwrap();
    assert_eq!(labels(&index, "bernard", 5), ["Marco Bernardo"]);
    assert_eq!(suggested("bernard"), ["Marco Bernardo"]);
    assert_eq!(index.get("jean.bernard@medecin.mssante.fr").unwrap(), None);
}

#[test]
fn uncommitted_changes_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    {
        let mut w = index.writer().unwrap();
        w.delete(&addr("francois.dupont@medecin.mssante.fr"))
            .unwrap();
    }
    index.reload().unwrap();
    assert_eq!(labels(&index, "dupont", 5), ["François Dupont"]);
}

#[test]
fn one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    let _w = index.writer().unwrap();
    let err = index.writer().unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
}

#[test]
fn another_process_commits_are_seen_after_reload() {
    let dir = tempfile::tempdir().unwrap();
    let serving = build(dir.path(), fixture());
    let other = DirectoryIndex::open(dir.path()).unwrap();
    let mut w = other.writer().unwrap();
    w.delete(&addr("francois.dupont@medecin.mssante.fr"))
        .unwrap();
    w.commit().unwrap();
    assert_eq!(count(&serving, "dupont"), 1, "a snapshot until reloaded");
    serving.reload().unwrap();
    assert_eq!(count(&serving, "dupont"), 0);
}

#[test]
fn rebuild_merges_repeated_addresses_and_leaves_out_red_listed() {
    let dir = tempfile::tempdir().unwrap();
    let a = "julie.morel@medecin.mssante.fr";
    let mut first = person(a, "Julie", "Morel", MEDECIN, None, "44000", "Nantes");
    first.organisation_name = Some("Clinique Jules Verne".into());
    let mut second = person(
        a,
        "Julie",
        "Morel",
        MEDECIN,
        None,
        "85000",
        "La Roche-sur-Yon",
    );
    second.organisation_name = Some("Centre Hospitalier Départemental Vendée".into());
    second.civility = Some("DR".into());
    let mut third = second.clone();
    third.organisation_name = Some("Maison de santé des Sables".into());
    let b = "paul.riviere@medecin.mssante.fr";
    let plain = person(b, "Paul", "Rivière", MEDECIN, None, "44000", "Nantes");
    let mut hidden = plain.clone();
    hidden.red_listed = true;
    let c = "secret@ch-vendee.mssante.fr";
    let mut red_first = structure(
        c,
        BalType::Org,
        "CHD Vendée",
        Some("Direction"),
        "85000",
        "La Roche-sur-Yon",
    );
    red_first.red_listed = true;
    let red_later = structure(
        c,
        BalType::Org,
        "CHD Vendée",
        Some("Direction"),
        "85000",
        "La Roche-sur-Yon",
    );

    let mut builder = Builder::create(dir.path()).unwrap();
    for e in [first, plain, second, hidden, red_first, third, red_later] {
        builder.add(e).unwrap();
    }
    let stats = builder.commit().unwrap();
    assert_eq!((stats.entries, stats.merged, stats.red_listed), (1, 2, 2));

    let index = DirectoryIndex::open(dir.path()).unwrap();
    let e = index.get(a).unwrap().expect("merged entry");
    assert_eq!(
        e.civility.as_deref(),
        Some("DR"),
        "filled from a later line"
    );
    assert_eq!(e.organisation_name.as_deref(), Some("Clinique Jules Verne"));
    assert_eq!(e.other_structures.len(), 2);
    // every structure of a merged entry is searchable
    assert_eq!(labels(&index, "morel vendee", 5), ["Julie Morel"]);
    assert_eq!(labels(&index, "morel sables", 5), ["Julie Morel"]);
    let in_85 = index
        .search(&SearchRequest {
            q: "morel".into(),
            filters: Filters {
                department: Some("85".into()),
                ..Default::default()
            },
            limit: 5,
            cursor: None,
        })
        .unwrap();
    assert_eq!(in_85.total, 1);
    // a red-listed line hides the address, whatever the order of the lines
    assert_eq!(index.get(b).unwrap(), None);
    assert_eq!(index.get(c).unwrap(), None);
}

#[test]
fn reload_picks_up_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    assert_eq!(labels(&index, "dupont", 5), ["François Dupont"]);
    let mut b = Builder::create(dir.path()).unwrap();
    b.add(person(
        "ana.dupont@medecin.mssante.fr",
        "Ana",
        "Dupont",
        MEDECIN,
        None,
        "13001",
        "Marseille",
    ))
    .unwrap();
    b.commit().unwrap();
    // the old generation keeps answering until reloaded (its files stay readable while open)
    assert_eq!(labels(&index, "dupont", 5), ["François Dupont"]);
    index.reload().unwrap();
    assert_eq!(labels(&index, "dupont", 5), ["Ana Dupont"]);
    assert_eq!(index.num_entries(), 1);
    // only the new generation is left on disk
    let gens: Vec<_> = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    assert_eq!(gens.len(), 1, "{gens:?}");
    assert!(index.size_on_disk() > 0);
}

#[test]
fn no_index_yet() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!DirectoryIndex::exists(dir.path()));
    let err = DirectoryIndex::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("run an import first"), "{err}");
    build(dir.path(), fixture());
    assert!(DirectoryIndex::exists(dir.path()));
}

#[test]
fn an_empty_rebuild_answers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Builder::create(dir.path()).unwrap().commit().unwrap();
    assert_eq!(stats.entries, 0);
    let index = DirectoryIndex::open(dir.path()).unwrap();
    assert_eq!(index.num_entries(), 0);
    assert_eq!(count(&index, ""), 0);
    assert_eq!(count(&index, "dupont"), 0);
    assert!(
        index
            .autocomplete("d", &Filters::default(), 5)
            .unwrap()
            .is_empty()
    );
    // and it takes updates
    let mut w = index.writer().unwrap();
    w.upsert(&person(
        "a.b@medecin.mssante.fr",
        "Alice",
        "Bertin",
        MEDECIN,
        None,
        "75011",
        "Paris",
    ))
    .unwrap();
    w.commit().unwrap();
    assert_eq!(labels(&index, "bertin", 5), ["Alice Bertin"]);
}

#[test]
fn source_states_live_with_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    assert_eq!(index.source_state("fhir").unwrap(), None);
    let state = serde_json::json!({"last_sync": "2026-11-23T08:00:00Z"});

    // pending until the commit, then durable, and read back by another opening
    let mut w = index.writer().unwrap();
    w.set_source_state("fhir", state.clone());
    assert_eq!(index.source_state("fhir").unwrap(), None);
    w.commit().unwrap();
    drop(w);
    assert_eq!(index.source_state("fhir").unwrap(), Some(state.clone()));

    // a later commit that does not set it keeps it
    let mut w = index.writer().unwrap();
    w.delete(&addr("francois.dupont@medecin.mssante.fr"))
        .unwrap();
    assert_eq!(
        w.current(&addr("francois.dupont@medecin.mssante.fr"))
            .unwrap(),
        None,
        "the pending deletion is what the updater reports"
    );
    w.commit().unwrap();
    drop(w);
    let reopened = DirectoryIndex::open(dir.path()).unwrap();
    assert_eq!(reopened.source_state("fhir").unwrap(), Some(state));

    // a rebuild starts without: its entries are not the synced ones
    let rebuilt = build(dir.path(), fixture());
    assert_eq!(rebuilt.source_state("fhir").unwrap(), None);
}

#[test]
fn a_complete_sync_removes_what_its_source_no_longer_publishes() {
    use mss_annuaire::fhir::Carried;
    use mss_annuaire::{HarvestSink, Source};
    use std::collections::HashSet;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let index = DirectoryIndex::open_or_create(&data).unwrap();
    assert_eq!(index.num_entries(), 0, "created empty");
    let from = |address: &str, source: Source, published_by: &[&str]| {
        let mut e = person(address, "Alice", "Bertin", MEDECIN, None, "75011", "Paris");
        e.source = source;
        e.published_by = published_by.iter().map(|r| r.to_string()).collect();
        e
    };
    let mut w = index.writer().unwrap();
    let sink: &mut dyn HarvestSink<Error = Error> = &mut w;
    for e in [
        from("a@medecin.mssante.fr", Source::Ldap, &[]),
        from("b@medecin.mssante.fr", Source::Ldap, &[]),
        from("c@medecin.mssante.fr", Source::Extraction, &[]),
        from("d@medecin.mssante.fr", Source::Fhir, &["Practitioner/1"]),
        from(
            "e@medecin.mssante.fr",
            Source::Fhir,
            &["Practitioner/1", "Organization/2"],
        ),
    ] {
        sink.upsert(&e).unwrap();
    }
    sink.commit().unwrap();
    let mut all = Vec::new();
    index
        .for_each_entry(|e| all.push(e.address.to_string()))
        .unwrap();
    all.sort();
    assert_eq!(all.len(), 5, "{all:?}");

    // LDAP saw only `a`: `b` goes, the other sources' entries stay
    let seen: HashSet<_> = [addr("a@medecin.mssante.fr")].into();
    assert_eq!(w.remove_vanished(&index, Source::Ldap, &seen).unwrap(), 1);
    assert!(index.get("b@medecin.mssante.fr").unwrap().is_none());
    assert!(index.get("a@medecin.mssante.fr").unwrap().is_some());
    assert!(index.get("c@medecin.mssante.fr").unwrap().is_some());

    // a delta re-read Practitioner/1 without its boxes: `d` goes, `e` keeps Organization/2
    let carried: Carried = [("Practitioner/1".to_string(), Default::default())].into();
    assert_eq!(w.remove_dropped(&index, &carried).unwrap(), 1);
    assert!(index.get("d@medecin.mssante.fr").unwrap().is_none());
    let e = index
        .get("e@medecin.mssante.fr")
        .unwrap()
        .expect("narrowed, kept");
    assert_eq!(e.published_by, ["Organization/2"]);
    assert_eq!(w.remove_dropped(&index, &Carried::new()).unwrap(), 0);
}
