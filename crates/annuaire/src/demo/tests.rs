use std::collections::{BTreeMap, HashMap, HashSet};

use crate::extraction::read_bytes;
use crate::model::{BalType, Department, Entry, MailAddress};

use super::faults::FaultPlan;
use super::ids::{luhn_digit, scramble};
use super::sites::de;
use super::tables::DATA;
use super::text::{fold, local_word, slug};
use super::*;

fn file(count: usize, seed: u64, faults: bool) -> (Vec<u8>, DemoSummary) {
    let mut out = Vec::new();
    let summary = write(
        &mut out,
        &DemoOptions {
            count,
            seed,
            faults,
        },
    )
    .unwrap();
    (out, summary)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, sa) = file(1_500, 7, true);
    let (b, sb) = file(1_500, 7, true);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = file(1_500, 8, true);
    assert_ne!(a, c);
    let (d, sd) = file(1_500, 7, false);
    assert_ne!(a, d);
    assert_eq!(
        sd,
        DemoSummary {
            lines: 1_500,
            entries: 1_500,
            duplicates: 0,
            malformed: 0
        }
    );
}

#[test]
fn a_smaller_file_is_a_prefix() {
    let small: Vec<Entry> = entries(300, 42).collect();
    let big: Vec<Entry> = entries(900, 42).collect();
    assert_eq!(small[..], big[..300]);
}

#[test]
fn faults_are_counted_exactly() {
    for (count, seed) in [(1usize, 1u64), (50, 2), (100, 3), (5_000, 4), (12_345, 5)] {
        let (bytes, s) = file(count, seed, true);
        let (read, rejected) = read_bytes(&bytes).unwrap();
        assert_eq!(rejected.len(), s.malformed, "{count}: {rejected:?}");
        assert_eq!(read.len(), s.entries);
        assert_eq!(s.entries, count + s.duplicates);
        assert_eq!(s.lines, s.entries + s.malformed);
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), s.lines + 1);
        let distinct: HashSet<&str> = read.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(distinct.len(), s.entries - s.duplicates);
        assert!(s.duplicates >= 1 && s.malformed >= 4, "{s:?}");
        if count >= 100 {
            assert!(s.duplicates >= 2, "{s:?}");
        }
        // every kind of fault is there
        let reasons: Vec<&str> = rejected.iter().map(|r| r.reason.as_str()).collect();
        for needle in ["columns", "address", "bal_type", "UTF-8"] {
            assert!(
                reasons.iter().any(|r| r.contains(needle)),
                "{needle}: {reasons:?}"
            );
        }
        // the first line of each address is the fault-free entry, in order
        let mut seen = HashSet::new();
        let firsts: Vec<Entry> = read
            .iter()
            .filter(|e| seen.insert(e.address.clone()))
            .cloned()
            .collect();
        assert_eq!(firsts, entries(count, seed).collect::<Vec<_>>());
        // and a duplicate line carries another structure
        let mut by_address: HashMap<&str, Vec<&Entry>> = HashMap::new();
        for e in &read {
            by_address.entry(e.address.as_str()).or_default().push(e);
        }
        for lines in by_address.values().filter(|l| l.len() > 1) {
            assert_ne!(lines[0].structure(), lines[1].structure());
        }
    }
}

#[test]
fn fault_rates_at_national_size_are_realistic() {
    let plan = FaultPlan::new(&DemoOptions {
        count: 535_000,
        seed: 1,
        faults: true,
    });
    assert_eq!(plan.duplicate_at.len(), 161);
    assert_eq!(plan.malformed.len(), 268);
}

#[test]
fn a_big_file_covers_departments_names_and_types() {
    let all: Vec<Entry> = entries(20_000, 2026).collect();
    let mut addresses = HashSet::new();
    let mut depts = HashSet::new();
    let mut last = HashSet::new();
    let mut first = HashSet::new();
    let mut types = BTreeMap::new();
    let mut professions = BTreeMap::new();
    for e in &all {
        assert!(addresses.insert(e.address.as_str()), "{}", e.address);
        assert_eq!(MailAddress::parse(e.address.as_str()).unwrap(), e.address);
        if let Some(d) = &e.department {
            depts.insert(d.as_str());
            let pc = e.postal_code.as_deref().unwrap();
            assert_eq!(Department::from_postal_code(pc).as_ref(), Some(d));
            let line = e.delivery_line.as_deref().unwrap();
            assert!(line.starts_with(pc), "{line}");
            assert_eq!(e.country.as_deref(), Some("France"));
        }
        last.extend(e.last_name.as_deref());
        first.extend(e.first_name.as_deref());
        *types.entry(e.bal_type).or_insert(0usize) += 1;
        if let Some(p) = &e.profession {
            *professions.entry(p.code.as_str()).or_insert(0usize) += 1;
        }
    }
    for d in [
        "2A", "2B", "971", "972", "973", "974", "975", "976", "75", "13",
    ] {
        assert!(depts.contains(d), "{d}");
    }
    assert!(!depts.contains("20"));
    for name in [
        "Dupont",
        "Dupuis",
        "Bernard",
        "L'Hermite",
        "Le Gall",
        "N'Diaye",
        "de La Tour d'Auvergne",
        "Lefèvre",
    ] {
        assert!(last.contains(name), "{name}");
    }
    for name in ["François", "Anne-Sophie", "Jean-Éric", "Hélène", "Zoé"] {
        assert!(first.contains(name), "{name}");
    }
    let per = types[&BalType::Per] as f64 / all.len() as f64;
    assert!((0.81..0.87).contains(&per), "{types:?}");
    assert!(types[&BalType::Org] > 2_500, "{types:?}");
    assert!(types.contains_key(&BalType::App) && types.contains_key(&BalType::Cab));
    let doctors = professions["10"] as f64 / types[&BalType::Per] as f64;
    assert!((0.42..0.48).contains(&doctors), "{professions:?}");
    assert_eq!(professions.len(), DATA.professions.len());
}

#[test]
fn required_names_are_in_every_file_of_2000() {
    for seed in [0, 1, u64::MAX] {
        let all: Vec<Entry> = entries(2_000, seed).collect();
        let has_last = |n: &str| all.iter().any(|e| e.last_name.as_deref() == Some(n));
        let has_first = |n: &str| all.iter().any(|e| e.first_name.as_deref() == Some(n));
        for n in [
            "Dupont",
            "Dupuis",
            "Bernard",
            "L'Hermite",
            "Le Gall",
            "N'Diaye",
        ] {
            assert!(has_last(n), "{n}");
        }
        assert!(has_last("de La Tour d'Auvergne") && has_last("Lefèvre"));
        for n in ["François", "Anne-Sophie", "Jean-Éric", "Hélène", "Zoé"] {
            assert!(has_first(n), "{n}");
        }
    }
}

#[test]
fn person_boxes_look_national() {
    for e in entries(3_000, 9).filter(|e| e.bal_type == BalType::Per) {
        let id = e.person_id.as_deref().unwrap();
        let national = e.person_national_id.as_deref().unwrap();
        match e.person_id_type.as_deref() {
            Some("8") => {
                assert_eq!(id.len(), 11);
                assert!(id.starts_with("10"));
                assert_eq!(luhn_digit(&id[..10]), u32::from(id.as_bytes()[10] - b'0'));
                assert_eq!(national, format!("8{id}"));
            }
            Some("0") => {
                assert_eq!(id.len(), 9, "{id}");
                assert!(id.bytes().all(|b| b.is_ascii_digit()));
                assert_eq!(national, format!("0{id}"));
            }
            other => panic!("{other:?}"),
        }
        let civility = e.civility.as_deref().unwrap();
        assert!(["DR", "PR", "M", "MME"].contains(&civility));
        let local = e.address.local_part();
        assert!(
            local
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
            "{local}"
        );
    }
}

#[test]
fn an_rpps_is_one_person() {
    let mut people: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    let mut boxes = 0;
    for e in entries(20_000, 4).filter(|e| e.person_id_type.as_deref() == Some("8")) {
        let id = e.person_id.clone().unwrap();
        let name = (e.first_name.clone(), e.last_name.clone());
        assert_eq!(*people.entry(id).or_insert_with(|| name.clone()), name);
        boxes += 1;
    }
    // a few people have a second box, as in the national file
    assert!(people.len() < boxes && people.len() > boxes * 9 / 10);
    assert_eq!(scramble(7, 3, 1_000), (7 * 761 + 3) % 1_000);
    let all: HashSet<u64> = (0..1_000_000).map(|n| scramble(n, 99, 1_000_000)).collect();
    assert_eq!(all.len(), 1_000_000);
}

#[test]
fn structures_are_consistent_across_lines() {
    // the same organisation id always has the same name and delivery line
    let mut seen: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    for e in entries(10_000, 3) {
        if let Some(id) = e.organisation_id.clone() {
            let v = (e.organisation_name.clone(), e.delivery_line.clone());
            let first = seen.entry(id.clone()).or_insert_with(|| v.clone());
            assert_eq!(*first, v, "{id}");
        }
    }
    let ids: Vec<&String> = seen.keys().collect();
    assert!(ids.len() > 1_000, "{}", ids.len());
    for id in ids.iter().filter(|i| i.len() == 14) {
        assert_eq!(luhn_digit(&id[..13]), u32::from(id.as_bytes()[13] - b'0'));
    }
}

#[test]
fn tables_are_sound() {
    assert!(DATA.last_names.len() >= 300, "{}", DATA.last_names.len());
    assert!(DATA.female_names.len() + DATA.male_names.len() >= 200);
    let mut unique = HashSet::new();
    for (n, _) in &DATA.last_names {
        assert!(unique.insert(*n), "duplicate last name {n}");
        assert!(local_word(n).len() > 1, "{n}");
    }
    let mut unique = HashSet::new();
    for (n, _) in DATA.female_names.iter().chain(&DATA.male_names) {
        assert!(
            unique.insert(*n) || *n == "Dominique",
            "duplicate first name {n}"
        );
        assert!(fold(n).is_ascii(), "{n}");
    }
    assert_eq!(local_word("de La Tour d'Auvergne"), "de-la-tour-dauvergne");
    assert_eq!(local_word("N'Diaye"), "ndiaye");
    assert_eq!(local_word("Jean-Éric"), "jean-eric");
    assert_eq!(local_word("Şahin"), "sahin");
    assert_eq!(
        slug("Hôpital Saint-Joseph Marseille", 50),
        "hopital-saint-joseph-marseille"
    );
    assert_eq!(de("Le Mans"), "du Mans");
    assert_eq!(de("Angers"), "d'Angers");
    assert_eq!(de("Les Abymes"), "des Abymes");
    assert_eq!(de("Évreux"), "d'Évreux");
    let mut codes = HashSet::new();
    for d in &DATA.departments {
        assert!(codes.insert(d.code));
        let parsed = Department::parse(d.code).unwrap();
        assert_eq!(parsed.as_str(), d.code);
        for c in &d.cities {
            assert!(fold(c.name).is_ascii(), "{}", c.name);
            for pc in &c.postal {
                assert_eq!(
                    Department::from_postal_code(pc).as_ref(),
                    Some(&parsed),
                    "{} {pc}",
                    c.name
                );
            }
        }
    }
    // 01–95 without 20, 2A, 2B, 971–976
    assert_eq!(codes.len(), 102);
    for p in &DATA.professions {
        let places: u32 = p.places.iter().map(|x| x.1).sum();
        assert!(places > 0, "{}", p.code);
    }
}
