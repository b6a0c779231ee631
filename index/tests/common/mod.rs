//! A small hand-written directory for the integration tests: the names, places and professions that
//! exercise folding, glued forms, typos and filters, plus a deterministic filler of ordinary entries.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};

use mss_annuaire::{BalType, Coded, Department, Entry, MailAddress, Source};
use mss_index::{Builder, DirectoryIndex, SearchRequest};

/// A directory for data shared by one test binary's tests. Such data lives in a static, never dropped,
/// so a temp dir would be left behind at every run: this one, under cargo's target tmp dir and named
/// for the fixture, is wiped and reused instead.
pub fn shared_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a shared test dir");
    dir
}

pub fn addr(a: &str) -> MailAddress {
    MailAddress::parse(a).expect("fixture address")
}

fn coded(code: &str, label: &str) -> Coded {
    Coded {
        code: code.into(),
        label: label.into(),
    }
}

fn place(e: &mut Entry, postal_code: &str, city: &str) {
    e.postal_code = Some(postal_code.into());
    e.delivery_line = Some(format!("{postal_code} {}", city.to_uppercase()));
    e.department = Department::from_postal_code(postal_code);
}

/// A health professional.
pub fn person(
    address: &str,
    first: &str,
    last: &str,
    profession: (&str, &str),
    speciality: Option<(&str, &str)>,
    postal_code: &str,
    city: &str,
) -> Entry {
    let mut e = Entry::new(addr(address), BalType::Per, Source::Extraction);
    e.first_name = Some(first.into());
    e.last_name = Some(last.into());
    e.profession = Some(coded(profession.0, profession.1));
    e.speciality = speciality.map(|(c, l)| coded(c, l));
    place(&mut e, postal_code, city);
    e
}

/// An organisational (or applicative, cabinet) mailbox.
pub fn structure(
    address: &str,
    bal_type: BalType,
    organisation: &str,
    service: Option<&str>,
    postal_code: &str,
    city: &str,
) -> Entry {
    let mut e = Entry::new(addr(address), bal_type, Source::Extraction);
    e.organisation_name = Some(organisation.into());
    e.service = service.map(str::to_string);
    place(&mut e, postal_code, city);
    e
}

pub const MEDECIN: (&str, &str) = ("10", "Médecin");
pub const PHARMACIEN: (&str, &str) = ("21", "Pharmacien");
pub const DENTISTE: (&str, &str) = ("40", "Chirurgien-Dentiste");
pub const KINE: (&str, &str) = ("50", "Masseur-Kinésithérapeute");
pub const INFIRMIER: (&str, &str) = ("60", "Infirmier");
pub const SAGE_FEMME: (&str, &str) = ("70", "Sage-Femme");

/// The named entries the relevance table is about.
pub fn named() -> Vec<Entry> {
    let ms = "medecin.mssante.fr";
    let mut v = vec![
        person(
            &format!("francois.dupont@{ms}"),
            "François",
            "Dupont",
            MEDECIN,
            Some(("SM54", "Médecine générale")),
            "75013",
            "Paris",
        ),
        person(
            "francoise.dupuis@infirmier.mssante.fr",
            "Françoise",
            "Dupuis",
            INFIRMIER,
            None,
            "69003",
            "Lyon",
        ),
        person(
            &format!("jean.bernard@{ms}"),
            "Jean",
            "Bernard",
            MEDECIN,
            Some(("SM04", "Cardiologie et maladies vasculaires")),
            "69003",
            "Lyon",
        ),
        person(
            "marco.bernardo@pharmacien.mssante.fr",
            "Marco",
            "Bernardo",
            PHARMACIEN,
            None,
            "13001",
            "Marseille",
        ),
        person(
            "anne-sophie.martin@sagefemme.mssante.fr",
            "Anne-Sophie",
            "Martin",
            SAGE_FEMME,
            None,
            "33000",
            "Bordeaux",
        ),
        person(
            &format!("paul.lhermite@{ms}"),
            "Paul",
            "L'Hermite",
            MEDECIN,
            Some(("SM42", "Psychiatrie")),
            "42000",
            "Saint-Étienne",
        ),
        person(
            "henri.delatour@dentiste.mssante.fr",
            "Henri",
            "de La Tour d'Auvergne",
            DENTISTE,
            None,
            "63000",
            "Clermont-Ferrand",
        ),
        person(
            "yann.legall@kine.mssante.fr",
            "Yann",
            "Le Gall",
            KINE,
            None,
            "29200",
            "Brest",
        ),
        person(
            &format!("aminata.ndiaye@{ms}"),
            "Aminata",
            "N'Diaye",
            MEDECIN,
            Some(("SM40", "Pédiatrie")),
            "94240",
            "L'Haÿ-les-Roses",
        ),
        person(
            &format!("gaspard.rolland@{ms}"),
            "Gaspard",
            "Rolland",
            MEDECIN,
            None,
            "35000",
            "Rennes",
        ),
        person(
            &format!("gaspard.rollandin@{ms}"),
            "Gaspard",
            "Rollandin",
            MEDECIN,
            None,
            "35000",
            "Rennes",
        ),
        person(
            &format!("gaspard.roland@{ms}"),
            "Gaspard",
            "Roland",
            MEDECIN,
            None,
            "35000",
            "Rennes",
        ),
        person(
            "oceane.loeuillet@infirmier.mssante.fr",
            "Océane",
            "Lœuillet",
            INFIRMIER,
            None,
            "59000",
            "Lille",
        ),
        structure(
            "cardio.chu@chu-st-etienne.mssante.fr",
            BalType::Org,
            "CHU de Saint-Étienne",
            Some("Cardiologie"),
            "42055",
            "Saint-Étienne",
        ),
        structure(
            "urgences@hegp.mssante.fr",
            BalType::Org,
            "Hôpital Européen Georges Pompidou",
            Some("Urgences"),
            "75015",
            "Paris",
        ),
        structure(
            "pharmacie@ch-lhay.mssante.fr",
            BalType::Org,
            "Centre Hospitalier de L'Haÿ-les-Roses",
            Some("Pharmacie"),
            "94240",
            "L'Haÿ-les-Roses",
        ),
        structure(
            "resultats@biomnis.mssante.fr",
            BalType::App,
            "Laboratoire Biomnis",
            None,
            "69007",
            "Lyon",
        ),
        structure(
            "secretariat@cabinet-lilas.mssante.fr",
            BalType::Cab,
            "Cabinet médical des Lilas",
            None,
            "93260",
            "Les Lilas",
        ),
    ];
    let mut secret = person(
        &format!("zorglub.mystere@{ms}"),
        "Zorglub",
        "Mystère",
        MEDECIN,
        None,
        "75001",
        "Paris",
    );
    secret.red_listed = true;
    v.push(secret);
    v
}

/// Ordinary entries around the named ones: names chosen not to collide with the relevance table.
pub fn filler() -> Vec<Entry> {
    let last = [
        "Petit", "Moreau", "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David",
        "Morel", "Fournier", "Girard", "Bonnet", "Mercier", "Blanc", "Guerin",
    ];
    let first = [
        "Luc", "Marie", "Pierre", "Julie", "Nicolas", "Camille", "Thomas", "Léa", "Hugo", "Emma",
        "Louis", "Chloé", "Sarah", "Victor",
    ];
    let places = [
        ("75011", "Paris"),
        ("69008", "Lyon"),
        ("13008", "Marseille"),
        ("31000", "Toulouse"),
        ("44000", "Nantes"),
        ("67000", "Strasbourg"),
    ];
    let jobs = [MEDECIN, INFIRMIER, PHARMACIEN, INFIRMIER, MEDECIN];
    let mut v = Vec::new();
    for (i, l) in last.iter().enumerate() {
        for (j, f) in first.iter().enumerate() {
            let n = i * first.len() + j;
            let (pc, city) = places[n % places.len()];
            let a = format!("{}.{}@filler.mssante.fr", fold_ascii(f), fold_ascii(l));
            v.push(person(&a, f, l, jobs[n % jobs.len()], None, pc, city));
        }
    }
    v
}

fn fold_ascii(s: &str) -> String {
    s.to_lowercase().replace(['é', 'è'], "e")
}

/// Every fixture entry.
pub fn fixture() -> Vec<Entry> {
    let mut v = named();
    v.extend(filler());
    v
}

/// Builds an index of `entries` in `data_dir` and opens it.
pub fn build(data_dir: &Path, entries: Vec<Entry>) -> DirectoryIndex {
    let mut b = Builder::create(data_dir).expect("builder");
    for e in entries {
        b.add(e).expect("add");
    }
    b.commit().expect("commit");
    DirectoryIndex::open(data_dir).expect("open")
}

/// Display names of the hits of `q`.
pub fn labels(index: &DirectoryIndex, q: &str, limit: usize) -> Vec<String> {
    let req = SearchRequest {
        q: q.into(),
        limit,
        ..Default::default()
    };
    index
        .search(&req)
        .expect("search")
        .hits
        .into_iter()
        .map(|h| h.entry.display_name())
        .collect()
}
