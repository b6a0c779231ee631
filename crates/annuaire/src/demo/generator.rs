//! The generator of entries: people, their boxes, and the boxes of structures.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{BalType, Coded, Entry, MailAddress, Source};
use crate::prehashed::PreHashed;

use super::ids::{adeli, rpps};
use super::random::{address_key, chance, pick, pick_index};
use super::sites::{Site, Sites};
use super::tables::{
    APP_KINDS, BAL_TYPES, CATEGORIES, DATA, Kind, ORG_KINDS, Profession, REUSE_KINDS, last_name,
    services_of, shared_domain, tables,
};
use super::text::{clip, push_local_word};

/// Iterator over deterministic synthetic entries; see [`entries`](super::entries).
pub struct Generator {
    rng: ChaCha8Rng,
    seed: u64,
    index: usize,
    remaining: usize,
    /// Next position in [`FEATURED`].
    featured: usize,
    used: HashSet<u64, PreHashed>,
    sites: Sites,
    /// People created so far: numbers their RPPS/ADELI identifiers.
    people: u64,
    /// A few recent people, reused for a second box (hospital + ordinal operator), as in the real file.
    recent: Vec<Person>,
}

impl Iterator for Generator {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let feature = match FEATURED.get(self.featured) {
            Some(&(at, f)) if at == self.index => {
                self.featured += 1;
                Some(f)
            }
            _ => None,
        };
        self.index += 1;
        Some(self.entry(feature))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Generator {}

impl Generator {
    pub(super) fn new(count: usize, seed: u64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            index: 0,
            remaining: count,
            featured: 0,
            used: HashSet::default(),
            sites: Sites::new(seed),
            people: 0,
            recent: Vec::with_capacity(RECENT_PEOPLE),
        }
    }

    fn entry(&mut self, feature: Option<Featured>) -> Entry {
        let t = tables();
        let (bal, name, dept) = match feature {
            Some(Featured::Person(first, last, female)) => {
                (BalType::Per, Some((first, last, female)), None)
            }
            Some(Featured::Bal(bal)) => (bal, None, None),
            Some(Featured::Dept(code)) => {
                let bal = if chance(&mut self.rng, 500) {
                    BalType::Per
                } else {
                    BalType::Org
                };
                (bal, None, DATA.department_index(code))
            }
            None => (BAL_TYPES[t.bal.pick(&mut self.rng)].0, None, None),
        };
        match bal {
            BalType::Per => self.per(name, dept, feature.is_none()),
            BalType::Org => self.org(dept),
            BalType::App => self.app(),
            BalType::Cab => self.cab(),
        }
    }

    /// A personal box: a new person (or a recent one getting a second box), maybe attached to a structure.
    fn per(
        &mut self,
        name: Option<(&'static str, &'static str, bool)>,
        forced_dept: Option<usize>,
        may_reuse: bool,
    ) -> Entry {
        let t = tables();
        let rng = &mut self.rng;
        let reuse = may_reuse && !self.recent.is_empty() && chance(rng, 50);
        let person = if reuse {
            self.recent[pick_index(rng, self.recent.len())].clone()
        } else {
            let dept = forced_dept.unwrap_or_else(|| t.depts.pick(rng));
            self.people += 1;
            let p = new_person(rng, self.seed, self.people, name, dept);
            if self.recent.len() < RECENT_PEOPLE {
                self.recent.push(p.clone());
            } else {
                self.recent[(self.people as usize) % RECENT_PEOPLE] = p.clone();
            }
            p
        };
        let rng = &mut self.rng;
        let prof = &DATA.professions[person.profession];
        let place = if reuse {
            // the second box of a person is most often their hospital's
            Some(REUSE_KINDS[t.reuse_kinds.pick(rng)].0)
        } else {
            match prof.places[t.places[person.profession].pick(rng)].0 {
                None if forced_dept.is_some() => Some(Kind::Cabinet),
                place => place,
            }
        };
        let site = place.map(|k| self.sites.pick(rng, person.dept, k, person.profession));
        let own = match &site {
            Some(s) => s.own_domain && (reuse || chance(rng, 750)),
            None => false,
        };
        let domain = match &site {
            Some(s) if own => s.domain.clone(),
            _ => person_domain(rng, prof, person.dept),
        };
        // operators write `prenom.nom`; hospitals sometimes `p.nom` or `nom.prenom`
        let style = if own { rng.random_range(0..100) } else { 99 };
        let (before, after) = match style {
            10..15 => (&*person.last, person.first),
            _ => (person.first, &*person.last),
        };
        let mut local = String::with_capacity(48);
        push_local_word(&mut local, before);
        if style < 10 {
            local.truncate(1);
        }
        local.push('.');
        push_local_word(&mut local, after);
        let service = site.as_ref().and_then(|s| {
            if s.kind.is_hospital() && chance(rng, 400) {
                let from_speciality = person
                    .speciality
                    .and_then(|i| prof.specialities.get(i))
                    .map(|s| s.service);
                Some(from_speciality.unwrap_or_else(|| pick(rng, services_of(Kind::Hopital)).0))
            } else if matches!(s.kind, Kind::CentreSante | Kind::Ehpad) && chance(rng, 200) {
                Some(pick(rng, services_of(s.kind)).0)
            } else {
                None
            }
        });
        let demat = chance(rng, 930);
        let (address, _) = self.unique(&[local.as_str()], &domain);

        let mut e = Entry::new(address, BalType::Per, Source::Extraction);
        e.person_id_type = Some(person.id_type.to_string());
        e.person_national_id = Some(format!("{}{}", person.id_type, person.id));
        e.person_id = Some(person.id);
        e.civility = Some(person.civility.to_string());
        e.last_name = Some(person.last.into_owned());
        e.first_name = Some(person.first.to_string());
        let (code, label) = CATEGORIES[person.category];
        e.profession_category = Some(coded(code, label));
        e.profession = Some(coded(prof.code, prof.label));
        e.speciality = person
            .speciality
            .and_then(|i| prof.specialities.get(i))
            .map(|s| coded(s.code, s.label));
        e.dematerialisation = Some(demat);
        if let Some(s) = &site {
            s.fill(&mut e);
        }
        e.service = service.map(str::to_string);
        e
    }

    /// An organisational box: a service of a structure.
    fn org(&mut self, forced_dept: Option<usize>) -> Entry {
        let t = tables();
        let rng = &mut self.rng;
        let kind = ORG_KINDS[t.org_kinds.pick(rng)].0;
        let dept = forced_dept.unwrap_or_else(|| t.depts.pick(rng));
        let prof = t.cab_professions[t.cab_profs.pick(rng)];
        let site = self.sites.pick(rng, dept, kind, prof);
        let services = services_of(site.kind);
        let start = pick_index(rng, services.len());
        let (label, local) = services[start];
        let candidates: Vec<(&str, String)> = if site.kind.is_hospital() {
            // hospitals have many boxes per service: its secretariat, consultations, nurses' manager...
            let mut variants: Vec<(&str, String)> = SERVICE_VARIANTS
                .iter()
                .filter(|v| !(local.starts_with("secretariat") && v.starts_with("secretariat")))
                .map(|v| (label, v.replace('*', local)))
                .collect();
            if chance(rng, 250) {
                variants.swap(0, 1);
            }
            variants
        } else {
            // smaller structures have one box per service: another service rather than a second one
            (0..services.len())
                .map(|i| services[(start + i) % services.len()])
                .map(|(label, local)| (label, local.to_string()))
                .collect()
        };
        let demat = chance(rng, 950);
        self.structure_box(BalType::Org, &site, &candidates, demat)
    }

    /// An applicative box: a hospital or lab information system sending documents.
    fn app(&mut self) -> Entry {
        let t = tables();
        let rng = &mut self.rng;
        let kind = APP_KINDS[t.app_kinds.pick(rng)].0;
        let dept = t.depts.pick(rng);
        let site = self.sites.pick(rng, dept, kind, 0);
        let (label, local) = pick(rng, &DATA.applications);
        let demat = chance(rng, 950);
        self.structure_box(BalType::App, &site, &[(label, local.to_string())], demat)
    }

    /// A cabinet box: a group practice's shared box, at its profession's operator.
    fn cab(&mut self) -> Entry {
        let t = tables();
        let rng = &mut self.rng;
        let prof = t.cab_professions[t.cab_profs.pick(rng)];
        let dept = t.depts.pick(rng);
        let site = self.sites.pick(rng, dept, Kind::Cabinet, prof);
        let domain = match DATA.professions[prof].domain {
            Some(d) if chance(rng, 800) => d.to_string(),
            _ => shared_domain(rng, dept),
        };
        let demat = chance(rng, 950);
        let (address, _) = self.unique(&[site.short.as_str()], &domain);
        let mut e = Entry::new(address, BalType::Cab, Source::Extraction);
        site.fill(&mut e);
        e.dematerialisation = Some(demat);
        e
    }

    /// A box of the structure itself, at the first free `(service, local part)` of `candidates`.
    fn structure_box(
        &mut self,
        bal: BalType,
        site: &Site,
        candidates: &[(&str, String)],
        demat: bool,
    ) -> Entry {
        // on a domain shared by many structures, the local part names the structure too
        let locals: Vec<String> = candidates
            .iter()
            .map(|(_, l)| {
                if site.own_domain {
                    l.clone()
                } else {
                    format!("{l}.{}", site.short)
                }
            })
            .collect();
        let refs: Vec<&str> = locals.iter().map(String::as_str).collect();
        let (address, chosen) = self.unique(&refs, &site.domain);
        let mut e = Entry::new(address, bal, Source::Extraction);
        site.fill(&mut e);
        e.service = candidates.get(chosen).map(|(label, _)| label.to_string());
        e.dematerialisation = Some(demat);
        e
    }

    /// The first free address among `locals` at `domain`, else the first one with a number (`jean.dupont2`),
    /// and the index of the local part used.
    fn unique(&mut self, locals: &[&str], domain: &str) -> (MailAddress, usize) {
        let mut candidate = String::with_capacity(80);
        for (i, local) in locals.iter().enumerate() {
            candidate.clear();
            candidate.push_str(clip(local, MAX_BASE_LOCAL));
            candidate.push('@');
            candidate.push_str(domain);
            if self.used.insert(address_key(&candidate)) {
                return (valid(&candidate), i);
            }
        }
        let base = clip(locals.first().copied().unwrap_or("bal"), MAX_BASE_LOCAL);
        for n in 2u32.. {
            candidate.clear();
            // writing to a String cannot fail
            let _ = write!(candidate, "{base}{n}@{domain}");
            if self.used.insert(address_key(&candidate)) {
                break;
            }
        }
        (valid(&candidate), 0)
    }
}

/// An address built from our own tables through [`push_local_word`] and [`slug`](super::text::slug): only
/// `[a-z0-9.-]`, no edge or double dots, so it always parses.
fn valid(address: &str) -> MailAddress {
    MailAddress::parse(address).expect("generated addresses are valid")
}

/// Longest local part before a disambiguation number (the limit is 64).
const MAX_BASE_LOCAL: usize = 58;

/// People kept for a second box.
const RECENT_PEOPLE: usize = 64;

#[derive(Clone)]
struct Person {
    id_type: &'static str,
    id: String,
    first: &'static str,
    last: Cow<'static, str>,
    civility: &'static str,
    category: usize,
    profession: usize,
    speciality: Option<usize>,
    dept: usize,
}

fn new_person(
    rng: &mut ChaCha8Rng,
    seed: u64,
    number: u64,
    name: Option<(&'static str, &'static str, bool)>,
    dept: usize,
) -> Person {
    let t = tables();
    let profession = t.professions.pick(rng);
    let p = &DATA.professions[profession];
    let (first, last, female) = match name {
        Some((first, last, female)) => (first, Cow::Borrowed(last), female),
        None => {
            let female = chance(rng, p.female);
            let first = if female {
                DATA.female_names[t.female.pick(rng)].0
            } else {
                DATA.male_names[t.male.pick(rng)].0
            };
            (first, last_name(rng), female)
        }
    };
    let roll = rng.random_range(0..1000);
    let category = if roll < p.student {
        2
    } else if roll < p.student + p.military {
        1
    } else {
        0
    };
    let civility = if category != 2 && chance(rng, p.doctor) {
        if p.code == "10" && chance(rng, 40) {
            "PR"
        } else {
            "DR"
        }
    } else if female {
        "MME"
    } else {
        "M"
    };
    let speciality = (!p.specialities.is_empty() && chance(rng, p.speciality_share))
        .then(|| t.specialities[profession].pick(rng));
    let (id_type, id) = if chance(rng, p.adeli) {
        (
            "0",
            adeli(seed, number, DATA.departments[dept].code, p.code),
        )
    } else {
        ("8", rpps(seed, number))
    };
    Person {
        id_type,
        id,
        first,
        last,
        civility,
        category,
        profession,
        speciality,
        dept,
    }
}

/// The operator domain of a person box not hosted by its structure.
fn person_domain(rng: &mut ChaCha8Rng, prof: &Profession, dept: usize) -> String {
    match prof.domain {
        Some(d) if chance(rng, 920) => d.to_string(),
        _ => shared_domain(rng, dept),
    }
}

fn coded(code: &str, label: &str) -> Coded {
    Coded {
        code: code.to_string(),
        label: label.to_string(),
    }
}

/// Entries forced at fixed early positions, so that every file of 1 000 lines or more holds the names tests
/// search for, every overseas department, Corsica, and an APP and a CAB box.
#[derive(Debug, Clone, Copy)]
enum Featured {
    /// First name, last name, female.
    Person(&'static str, &'static str, bool),
    Dept(&'static str),
    Bal(BalType),
}

const FEATURED: &[(usize, Featured)] = &[
    (3, Featured::Person("François", "Dupont", false)),
    (17, Featured::Bal(BalType::App)),
    (29, Featured::Dept("2A")),
    (41, Featured::Person("Anne-Sophie", "Le Gall", true)),
    (58, Featured::Bal(BalType::Cab)),
    (73, Featured::Dept("2B")),
    (97, Featured::Person("Jean-Éric", "N'Diaye", false)),
    (131, Featured::Dept("971")),
    (167, Featured::Person("Hélène", "Lefèvre", true)),
    (199, Featured::Dept("972")),
    (241, Featured::Person("Zoé", "Bernard", true)),
    (293, Featured::Dept("973")),
    (347, Featured::Person("François", "Dupuis", false)),
    (401, Featured::Dept("974")),
    (463, Featured::Person("Hélène", "L'Hermite", true)),
    (521, Featured::Dept("975")),
    (
        587,
        Featured::Person("Anne-Sophie", "de La Tour d'Auvergne", true),
    ),
    (653, Featured::Dept("976")),
    (727, Featured::Person("Zoé", "Dupont", true)),
    (811, Featured::Person("Jean-Éric", "Lefèvre", false)),
    (907, Featured::Person("François", "Le Gall", false)),
    (977, Featured::Person("Hélène", "Dupuis", true)),
];

/// Local parts tried in turn for an ORG box (`*` is the service); numbers come after.
const SERVICE_VARIANTS: &[&str] = &[
    "*",
    "secretariat.*",
    "*.consultations",
    "cadre.*",
    "*.medecins",
    "*.hdj",
];
