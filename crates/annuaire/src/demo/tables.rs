//! The tables of the generator: names, places, professions and structures, read once from the files of
//! `data/` (one record per line, fields separated by tabs, `#` starts a comment line), and the weighted
//! pickers drawn from them. The few tables tied to the code's own enums stay here as constants.
//!
//! The order of the records is part of the output: a table's row `i` is what a draw of `i` gives, so
//! reordering a file changes every generated file.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;

use crate::model::BalType;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::random::{Picker, chance, pick, pick_index};

/// A kind of structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Chu,
    Ch,
    Hopital,
    Clinique,
    Ehpad,
    CentreSante,
    Laboratoire,
    Pharmacie,
    Cabinet,
}

use Kind::{Cabinet, CentreSante, Ch, Chu, Clinique, Ehpad, Hopital, Laboratoire, Pharmacie};

impl Kind {
    /// Every kind with its name in the data files.
    const NAMES: [(Kind, &'static str); 9] = [
        (Chu, "chu"),
        (Ch, "ch"),
        (Hopital, "hopital"),
        (Clinique, "clinique"),
        (Ehpad, "ehpad"),
        (CentreSante, "centre-sante"),
        (Laboratoire, "laboratoire"),
        (Pharmacie, "pharmacie"),
        (Cabinet, "cabinet"),
    ];

    fn parse(name: &str) -> Kind {
        Kind::NAMES
            .into_iter()
            .find_map(|(kind, n)| (n == name).then_some(kind))
            .unwrap_or_else(|| panic!("unknown kind of structure {name:?} in a demo table"))
    }

    pub(super) fn is_hospital(self) -> bool {
        matches!(self, Chu | Ch | Hopital | Clinique)
    }

    /// Per mille of structures of this kind with their own mail domain (the others use a shared operator).
    pub(super) fn own_domain(self) -> u32 {
        match self {
            Chu | Ch => 1000,
            Hopital => 850,
            Clinique => 700,
            Laboratoire => 600,
            CentreSante => 500,
            Ehpad => 350,
            Pharmacie | Cabinet => 0,
        }
    }
}

/// BAL types per 10 000 boxes: the real file shows PER and ORG; a few APP and CAB let filters be tested.
pub(super) const BAL_TYPES: &[(BalType, u32)] = &[
    (BalType::Per, 8_400),
    (BalType::Org, 1_500),
    (BalType::App, 70),
    (BalType::Cab, 30),
];

/// `Catégorie profession` and its label.
pub(super) const CATEGORIES: [(&str, &str); 3] =
    [("C", "Civil"), ("M", "Militaire"), ("E", "Etudiant")];

/// Professions with CAB boxes and cabinet ORG boxes (TRE_G15 codes of [`Data::professions`]).
const CAB_PROFESSIONS: &[(&str, u32)] =
    &[("10", 40), ("40", 25), ("70", 20), ("60", 10), ("50", 5)];

/// ORG boxes are mostly hospital services.
pub(super) const ORG_KINDS: &[(Kind, u32)] = &[
    (Ch, 36),
    (Chu, 10),
    (Hopital, 13),
    (Clinique, 15),
    (Ehpad, 7),
    (CentreSante, 6),
    (Laboratoire, 5),
    (Cabinet, 6),
    (Pharmacie, 2),
];

/// Spread over many structures: a real hospital has one or two APP boxes.
pub(super) const APP_KINDS: &[(Kind, u32)] = &[
    (Chu, 1),
    (Ch, 5),
    (Hopital, 3),
    (Clinique, 3),
    (Laboratoire, 4),
];

/// Where the second box of a person is, most often their hospital.
pub(super) const REUSE_KINDS: &[(Kind, u32)] = &[(Chu, 3), (Ch, 5), (Hopital, 2), (Clinique, 2)];

/// A TRE_G15 profession (`data/professions.tsv`).
pub(super) struct Profession {
    /// TRE_G15 code and label.
    pub(super) code: &'static str,
    pub(super) label: &'static str,
    /// Share of personal boxes, per 10 000.
    pub(super) weight: u32,
    /// Per mille women.
    pub(super) female: u32,
    /// Per mille identified by ADELI (professions not yet in RPPS), the others by RPPS.
    pub(super) adeli: u32,
    /// Per mille with civility `DR`/`PR` (the others `M`/`MME`).
    pub(super) doctor: u32,
    /// Per mille students and military.
    pub(super) student: u32,
    pub(super) military: u32,
    /// Domain of the ordinal operator, for professions that have one.
    pub(super) domain: Option<&'static str>,
    /// How their cabinets are named.
    pub(super) cabinet: &'static str,
    /// Where they work; `None` is a box attached to no structure.
    pub(super) places: Vec<(Option<Kind>, u32)>,
    pub(super) specialities: Vec<Speciality>,
    /// Per mille with a speciality.
    pub(super) speciality_share: u32,
}

/// A speciality of a profession (`data/specialities.tsv`).
pub(super) struct Speciality {
    pub(super) code: &'static str,
    pub(super) label: &'static str,
    pub(super) weight: u32,
    /// The hospital service such a doctor works in.
    pub(super) service: &'static str,
}

/// A city (`data/cities.tsv`).
pub(super) struct City {
    /// Name as written in prose (`Saint-Étienne`); the delivery line uses it folded and upper-cased.
    pub(super) name: &'static str,
    /// Relative weight inside its department (about the population in 10 000s).
    pub(super) weight: u32,
    /// Its postal codes (one per arrondissement or district for big cities).
    pub(super) postal: Vec<&'static str>,
    /// University hospital of the city: name and domain label.
    pub(super) chu: Option<(&'static str, &'static str)>,
}

/// A department (`data/departments.tsv`).
pub(super) struct Dept {
    pub(super) code: &'static str,
    /// Population in 10 000s (Paris raised for its density of health professionals).
    pub(super) weight: u32,
    /// Region slug for regional operator domains.
    pub(super) region: &'static str,
    /// Prefecture first, then the main cities.
    pub(super) cities: Vec<City>,
}

/// The tables of `data/`, parsed.
pub(super) struct Data {
    pub(super) last_names: Vec<(&'static str, u32)>,
    pub(super) female_names: Vec<(&'static str, u32)>,
    pub(super) male_names: Vec<(&'static str, u32)>,
    pub(super) tail_stems: Vec<&'static str>,
    pub(super) tail_endings: Vec<&'static str>,
    pub(super) toponym_firsts: Vec<&'static str>,
    pub(super) toponym_seconds: Vec<&'static str>,
    pub(super) professions: Vec<Profession>,
    pub(super) departments: Vec<Dept>,
    pub(super) hospital_names: Vec<&'static str>,
    pub(super) clinic_names: Vec<&'static str>,
    pub(super) ehpad_prefixes: Vec<&'static str>,
    pub(super) ehpad_names: Vec<&'static str>,
    pub(super) health_centre_names: Vec<&'static str>,
    pub(super) lab_names: Vec<&'static str>,
    pub(super) pharmacy_names: Vec<&'static str>,
    pub(super) cabinet_suffixes: Vec<&'static str>,
    /// Services (label, local part) by [`Kind`] (indexed by `kind as usize`); see [`services_of`].
    services: Vec<Vec<(&'static str, &'static str)>>,
    pub(super) applications: Vec<(&'static str, &'static str)>,
    pub(super) commercial_domains: Vec<&'static str>,
    pub(super) street_types: Vec<(&'static str, u32)>,
    pub(super) street_names: Vec<&'static str>,
    pub(super) complements: Vec<&'static str>,
    pub(super) localities: Vec<&'static str>,
}

/// The tables, parsed on first use.
pub(super) static DATA: LazyLock<Data> = LazyLock::new(Data::load);

/// Hospital services (label and local part) of a kind of structure; CHU and CH have the hospital ones.
pub(super) fn services_of(kind: Kind) -> &'static [(&'static str, &'static str)] {
    let kind = match kind {
        Chu | Ch => Hopital,
        k => k,
    };
    &DATA.services[kind as usize]
}

/// The records of a data file: its lines but blank ones and `#` comments, split at tabs.
fn records(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split('\t').collect())
}

/// Field `i` of a record. The files are part of the source, so a missing field is a bug.
fn field(record: &[&'static str], i: usize) -> &'static str {
    record
        .get(i)
        .copied()
        .unwrap_or_else(|| panic!("demo table record {record:?} has no field {i}"))
}

fn number(record: &[&'static str], i: usize) -> u32 {
    let text = field(record, i);
    text.parse()
        .unwrap_or_else(|_| panic!("demo table record {record:?}: {text:?} is not a number"))
}

/// Hands each record of a child file (specialities, cities) to the parent whose code is its first field.
fn attach<P>(
    parents: &mut [P],
    text: &'static str,
    code_of: impl Fn(&P) -> &'static str,
    mut add: impl FnMut(&mut P, &[&'static str]),
) {
    for r in records(text) {
        let code = field(&r, 0);
        let parent = parents
            .iter_mut()
            .find(|p| code_of(p) == code)
            .unwrap_or_else(|| panic!("demo table record {r:?}: no parent with code {code:?}"));
        add(parent, &r);
    }
}

/// A file of one value per line.
fn list(text: &'static str) -> Vec<&'static str> {
    records(text).map(|r| field(&r, 0)).collect()
}

/// A file of `value <TAB> weight` lines.
fn weighted(text: &'static str) -> Vec<(&'static str, u32)> {
    records(text)
        .map(|r| (field(&r, 0), number(&r, 1)))
        .collect()
}

/// A file of `value <TAB> value` lines.
fn pairs(text: &'static str) -> Vec<(&'static str, &'static str)> {
    records(text)
        .map(|r| (field(&r, 0), field(&r, 1)))
        .collect()
}

impl Data {
    fn load() -> Data {
        let mut services = vec![Vec::new(); Kind::NAMES.len()];
        for r in records(include_str!("data/services.tsv")) {
            services[Kind::parse(field(&r, 0)) as usize].push((field(&r, 1), field(&r, 2)));
        }
        Data {
            last_names: weighted(include_str!("data/last_names.tsv")),
            female_names: weighted(include_str!("data/female_names.tsv")),
            male_names: weighted(include_str!("data/male_names.tsv")),
            tail_stems: list(include_str!("data/tail_stems.txt")),
            tail_endings: list(include_str!("data/tail_endings.txt")),
            toponym_firsts: list(include_str!("data/toponym_firsts.txt")),
            toponym_seconds: list(include_str!("data/toponym_seconds.txt")),
            professions: professions(),
            departments: departments(),
            hospital_names: list(include_str!("data/hospital_names.txt")),
            clinic_names: list(include_str!("data/clinic_names.txt")),
            ehpad_prefixes: list(include_str!("data/ehpad_prefixes.txt")),
            ehpad_names: list(include_str!("data/ehpad_names.txt")),
            health_centre_names: list(include_str!("data/health_centre_names.txt")),
            lab_names: list(include_str!("data/lab_names.txt")),
            pharmacy_names: list(include_str!("data/pharmacy_names.txt")),
            cabinet_suffixes: list(include_str!("data/cabinet_suffixes.txt")),
            services,
            applications: pairs(include_str!("data/applications.tsv")),
            commercial_domains: list(include_str!("data/commercial_domains.txt")),
            street_types: weighted(include_str!("data/street_types.tsv")),
            street_names: list(include_str!("data/street_names.txt")),
            complements: list(include_str!("data/complements.txt")),
            localities: list(include_str!("data/localities.txt")),
        }
    }

    /// Index of a profession in [`Data::professions`].
    pub(super) fn profession_index(&self, code: &str) -> Option<usize> {
        self.professions.iter().position(|p| p.code == code)
    }

    /// Index of a department in [`Data::departments`].
    pub(super) fn department_index(&self, code: &str) -> Option<usize> {
        self.departments.iter().position(|d| d.code == code)
    }
}

fn professions() -> Vec<Profession> {
    let mut professions: Vec<Profession> = records(include_str!("data/professions.tsv"))
        .map(|r| Profession {
            code: field(&r, 0),
            label: field(&r, 1),
            weight: number(&r, 2),
            female: number(&r, 3),
            adeli: number(&r, 4),
            doctor: number(&r, 5),
            student: number(&r, 6),
            military: number(&r, 7),
            domain: Some(field(&r, 8)).filter(|d| *d != "-"),
            cabinet: field(&r, 9),
            speciality_share: number(&r, 10),
            places: field(&r, 11)
                .split(' ')
                .map(|place| {
                    let (kind, weight) = place.split_once(':').unwrap_or((place, ""));
                    let kind = (kind != "none").then(|| Kind::parse(kind));
                    (kind, number(&[weight], 0))
                })
                .collect(),
            specialities: Vec::new(),
        })
        .collect();
    attach(
        &mut professions,
        include_str!("data/specialities.tsv"),
        |p| p.code,
        |profession, r| {
            profession.specialities.push(Speciality {
                code: field(r, 1),
                label: field(r, 2),
                weight: number(r, 3),
                service: field(r, 4),
            })
        },
    );
    professions
}

fn departments() -> Vec<Dept> {
    let mut departments: Vec<Dept> = records(include_str!("data/departments.tsv"))
        .map(|r| Dept {
            code: field(&r, 0),
            weight: number(&r, 1),
            region: field(&r, 2),
            cities: Vec::new(),
        })
        .collect();
    attach(
        &mut departments,
        include_str!("data/cities.tsv"),
        |d| d.code,
        |dept, r| {
            dept.cities.push(City {
                name: field(r, 1),
                weight: number(r, 2),
                postal: field(r, 3).split(' ').collect(),
                chu: r.get(4).map(|name| (*name, field(r, 5))),
            })
        },
    );
    departments
}

/// The weighted pickers over the tables, built once.
pub(super) struct Tables {
    pub(super) bal: Picker,
    pub(super) professions: Picker,
    pub(super) places: Vec<Picker>,
    pub(super) specialities: Vec<Picker>,
    pub(super) female: Picker,
    pub(super) male: Picker,
    pub(super) last: Picker,
    /// The long tail of family names (see [`tail_names`]).
    pub(super) tail: Vec<String>,
    pub(super) depts: Picker,
    pub(super) cities: Vec<Picker>,
    pub(super) org_kinds: Picker,
    pub(super) app_kinds: Picker,
    pub(super) reuse_kinds: Picker,
    /// Indexes in [`Data::professions`] of [`CAB_PROFESSIONS`], and their picker.
    pub(super) cab_professions: Vec<usize>,
    pub(super) cab_profs: Picker,
    pub(super) street_types: Picker,
}

pub(super) fn tables() -> &'static Tables {
    static TABLES: LazyLock<Tables> = LazyLock::new(|| {
        let d = &*DATA;
        Tables {
            bal: Picker::of(BAL_TYPES),
            professions: Picker::new(d.professions.iter().map(|p| p.weight)),
            places: d
                .professions
                .iter()
                .map(|p| Picker::of(&p.places))
                .collect(),
            specialities: d
                .professions
                .iter()
                .map(|p| Picker::new(p.specialities.iter().map(|s| s.weight)))
                .collect(),
            female: Picker::of(&d.female_names),
            male: Picker::of(&d.male_names),
            last: Picker::of(&d.last_names),
            tail: tail_names(d),
            depts: Picker::new(d.departments.iter().map(|d| d.weight)),
            cities: d
                .departments
                .iter()
                .map(|d| Picker::new(d.cities.iter().map(|c| c.weight)))
                .collect(),
            org_kinds: Picker::of(ORG_KINDS),
            app_kinds: Picker::of(APP_KINDS),
            reuse_kinds: Picker::of(REUSE_KINDS),
            cab_professions: CAB_PROFESSIONS
                .iter()
                .map(|(code, _)| {
                    d.profession_index(code)
                        .unwrap_or_else(|| panic!("no profession {code} in the demo tables"))
                })
                .collect(),
            cab_profs: Picker::of(CAB_PROFESSIONS),
            street_types: Picker::of(&d.street_types),
        }
    });
    &TABLES
}

/// The long tail of family names: French stems with their usual endings (`Chab` + `ert`) and toponymic
/// compounds (`Beau` + `champ`), without the names already in the named table. Sorted, so the same
/// everywhere.
fn tail_names(d: &Data) -> Vec<String> {
    let named: HashSet<&str> = d.last_names.iter().map(|n| n.0).collect();
    let mut tail = BTreeSet::new();
    for stem in &d.tail_stems {
        for ending in &d.tail_endings {
            tail.insert(format!("{stem}{ending}"));
        }
    }
    for first in &d.toponym_firsts {
        for second in &d.toponym_seconds {
            tail.insert(format!("{first}{second}"));
        }
    }
    tail.into_iter()
        .filter(|n| !named.contains(n.as_str()))
        .collect()
}

/// A family name: a quarter from the named table (with its frequency skew: Martin is about 0.6 %), a few
/// double-barrelled, the rest from the long tail. The named table alone would make most people homonyms at
/// the ordinal operators' domains, where real files rarely need a number.
pub(super) fn last_name(rng: &mut ChaCha8Rng) -> Cow<'static, str> {
    let t = tables();
    let roll = rng.random_range(0..1000);
    if roll < 250 {
        Cow::Borrowed(DATA.last_names[t.last.pick(rng)].0)
    } else if roll < 280 {
        let a = DATA.last_names[t.last.pick(rng)].0;
        let b = DATA.last_names[t.last.pick(rng)].0;
        // `de La Tour d'Auvergne-Martin` is not how double names are written
        if a == b || a.contains([' ', '\'']) || b.contains([' ', '\'']) {
            Cow::Borrowed(a)
        } else {
            Cow::Owned(format!("{a}-{b}"))
        }
    } else {
        Cow::Borrowed(t.tail[pick_index(rng, t.tail.len())].as_str())
    }
}

/// A regional (GRADeS-like) or commercial operator domain.
pub(super) fn shared_domain(rng: &mut ChaCha8Rng, dept: usize) -> String {
    if chance(rng, 500) {
        format!("{}.mssante.fr", DATA.departments[dept].region)
    } else {
        pick(rng, &DATA.commercial_domains).to_string()
    }
}
