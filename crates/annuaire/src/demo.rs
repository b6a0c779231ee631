//! Deterministic generator of realistic synthetic extraction files.
//!
//! The national `Extraction_Correspondance_MSSante` cannot be downloaded in tests, so tests, benchmarks and
//! the embedded default dataset use files made here, in exactly the national format (31 `|`-separated
//! columns, see [`crate::extraction`]).
//!
//! - Deterministic: the only randomness is a `ChaCha8Rng` seeded from the seed and drawn through `u32`
//!   ranges, so a `(count, seed)` pair gives the same bytes on every platform. Entry `i` does not depend on
//!   `count`: a smaller file is a prefix of a bigger one with the same seed.
//! - Streaming: entries come one at a time. What is kept is bounded by the tables, not by the file: 8 bytes
//!   per address (a hash, for uniqueness), a few dozen recent people, and the structures drawn so far.
//! - Realistic: French names of many origins with a frequency skew, the TRE_G15 professions with their
//!   real weights, RPPS/ADELI/FINESS/SIRET identifiers with check digits, every department with real cities
//!   and consistent postal codes, structures (hospitals, clinics, cabinets, pharmacies, labs, EHPAD, centres
//!   de santé) shared by many boxes, and operator-like domains.
//! - A structure is a pure function of `(seed, department, kind, rank)`, so the same hospital keeps the
//!   same name, identifier and address on every line.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufWriter, Write};
use std::sync::{Arc, OnceLock};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::extraction::{SEPARATOR, format_line, write_header};
use crate::model::{BalType, Coded, Department, Entry, MailAddress, Source};
use crate::{Error, Result};

/// What [`write()`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemoOptions {
    /// Number of distinct mailboxes (valid lines, without the fault lines).
    pub count: usize,
    /// Seed: the same seed always gives the same file.
    pub seed: u64,
    /// Also write a few duplicated addresses and malformed lines, as the real file has.
    pub faults: bool,
}

/// What [`write()`] wrote, counted exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemoSummary {
    /// Data lines written (the header line is not counted): `entries + malformed`.
    pub lines: usize,
    /// Lines that read as an entry, duplicates included: `count + duplicates`.
    pub entries: usize,
    /// Extra lines repeating the address of an earlier line, with another structure.
    pub duplicates: usize,
    /// Lines a reader must reject (too few columns, bad address, unknown BAL type, invalid UTF-8).
    pub malformed: usize,
}

/// The `count` first entries for `seed`: valid, with unique addresses, no faults.
pub fn entries(count: usize, seed: u64) -> Generator {
    Generator::new(count, seed)
}

/// Writes a whole extraction (header and lines) to `out`, buffered, and says what it wrote.
///
/// Without faults the lines are exactly [`entries`]`(count, seed)`. With faults, the same lines come in the
/// same order, with duplicate and malformed lines inserted between them: about 0.03 % duplicates (at least 2,
/// at most `count`) and 0.05 % malformed lines (at least 4, one of each kind), when `count > 0`.
pub fn write(out: &mut impl Write, opts: &DemoOptions) -> Result<DemoSummary> {
    let io_err = |e| Error::io("writing the demo extraction", e);
    let mut out = BufWriter::with_capacity(1 << 16, out);
    write_header(&mut out).map_err(io_err)?;
    let mut plan = FaultPlan::new(opts);
    let mut summary = DemoSummary::default();
    let mut last_line = String::new();
    let mut index = 0;
    for entry in entries(opts.count, opts.seed) {
        plan.before(index, &last_line, &mut out, &mut summary)
            .map_err(io_err)?;
        let line = format_line(&entry)?;
        write_line(&mut out, line.as_bytes()).map_err(io_err)?;
        summary.entries += 1;
        summary.lines += 1;
        plan.after(index, &entry);
        last_line = line;
        index += 1;
    }
    plan.finish(index, &last_line, &mut out, &mut summary)?;
    out.flush().map_err(io_err)?;
    Ok(summary)
}

fn write_line(out: &mut impl Write, line: &[u8]) -> std::io::Result<()> {
    out.write_all(line)?;
    out.write_all(b"\n")
}

/// Iterator over deterministic synthetic entries; see [`entries`].
pub struct Generator {
    rng: ChaCha8Rng,
    seed: u64,
    index: usize,
    remaining: usize,
    /// Next position in [`FEATURED`].
    featured: usize,
    used: HashSet<u64, BuildHasherDefault<PassThrough>>,
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
    fn new(count: usize, seed: u64) -> Self {
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
                (bal, None, DEPARTMENTS.iter().position(|d| d.code == code))
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
        let prof = &PROFESSIONS[person.profession];
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
                Some(from_speciality.unwrap_or_else(|| pick(rng, HOSPITAL_SERVICES).0))
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
        let prof = CAB_PROFESSIONS[t.cab_profs.pick(rng)].0;
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
        let (label, local) = pick(rng, APPLICATIONS);
        let demat = chance(rng, 950);
        self.structure_box(BalType::App, &site, &[(label, local.to_string())], demat)
    }

    /// A cabinet box: a group practice's shared box, at its profession's operator.
    fn cab(&mut self) -> Entry {
        let t = tables();
        let rng = &mut self.rng;
        let prof = CAB_PROFESSIONS[t.cab_profs.pick(rng)].0;
        let dept = t.depts.pick(rng);
        let site = self.sites.pick(rng, dept, Kind::Cabinet, prof);
        let domain = match PROFESSIONS[prof].domain {
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

/// An address built from our own tables through [`push_local_word`] and [`slug`]: only `[a-z0-9.-]`, no
/// edge or double dots, so it always parses.
fn valid(address: &str) -> MailAddress {
    MailAddress::parse(address).expect("generated addresses are valid")
}

/// Longest local part before a disambiguation number (the limit is 64).
const MAX_BASE_LOCAL: usize = 58;

/// People kept for a second box.
const RECENT_PEOPLE: usize = 64;

/// `s` cut to `max` bytes (ASCII), without a trailing `.` or `-`.
fn clip(s: &str, max: usize) -> &str {
    let s = if s.len() > max { &s[..max] } else { s };
    s.trim_end_matches(['.', '-'])
}

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
    let p = &PROFESSIONS[profession];
    let (first, last, female) = match name {
        Some((first, last, female)) => (first, Cow::Borrowed(last), female),
        None => {
            let female = chance(rng, p.female);
            let first = if female {
                FEMALE_NAMES[t.female.pick(rng)].0
            } else {
                MALE_NAMES[t.male.pick(rng)].0
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
        ("0", adeli(seed, number, DEPARTMENTS[dept].code, p.code))
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

/// A family name: a quarter from the named table (with its frequency skew: Martin is about 0.6 %), a few
/// double-barrelled, the rest from the long tail. The named table alone would make most people homonyms at
/// the ordinal operators' domains, where real files rarely need a number.
fn last_name(rng: &mut ChaCha8Rng) -> Cow<'static, str> {
    let t = tables();
    let roll = rng.random_range(0..1000);
    if roll < 250 {
        Cow::Borrowed(LAST_NAMES[t.last.pick(rng)].0)
    } else if roll < 280 {
        let a = LAST_NAMES[t.last.pick(rng)].0;
        let b = LAST_NAMES[t.last.pick(rng)].0;
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

/// The long tail of family names: French stems with their usual endings (`Chab` + `ert`) and toponymic
/// compounds (`Beau` + `champ`), without the names already in [`LAST_NAMES`]. Sorted, so the same everywhere.
fn tail_names() -> Vec<String> {
    let named: HashSet<&str> = LAST_NAMES.iter().map(|n| n.0).collect();
    let mut tail = BTreeSet::new();
    for stem in TAIL_STEMS {
        for ending in TAIL_ENDINGS {
            tail.insert(format!("{stem}{ending}"));
        }
    }
    for first in TOPONYM_FIRSTS {
        for second in TOPONYM_SECONDS {
            tail.insert(format!("{first}{second}"));
        }
    }
    tail.into_iter()
        .filter(|n| !named.contains(n.as_str()))
        .collect()
}

/// The operator domain of a person box not hosted by its structure.
fn person_domain(rng: &mut ChaCha8Rng, prof: &Profession, dept: usize) -> String {
    match prof.domain {
        Some(d) if chance(rng, 920) => d.to_string(),
        _ => shared_domain(rng, dept),
    }
}

/// A regional (GRADeS-like) or commercial operator domain.
fn shared_domain(rng: &mut ChaCha8Rng, dept: usize) -> String {
    if chance(rng, 500) {
        format!("{}.mssante.fr", DEPARTMENTS[dept].region)
    } else {
        pick(rng, COMMERCIAL_DOMAINS).to_string()
    }
}

fn coded(code: &str, label: &str) -> Coded {
    Coded {
        code: code.to_string(),
        label: label.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Structures

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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

impl Kind {
    fn is_hospital(self) -> bool {
        matches!(self, Kind::Chu | Kind::Ch | Kind::Hopital | Kind::Clinique)
    }

    /// Per mille of structures of this kind with their own mail domain (the others use a shared operator).
    fn own_domain(self) -> u32 {
        match self {
            Kind::Chu | Kind::Ch => 1000,
            Kind::Hopital => 850,
            Kind::Clinique => 700,
            Kind::Laboratoire => 600,
            Kind::CentreSante => 500,
            Kind::Ehpad => 350,
            Kind::Pharmacie | Kind::Cabinet => 0,
        }
    }
}

/// A structure as printed on the lines of its boxes.
struct Site {
    kind: Kind,
    id_type: &'static str,
    id: String,
    name: String,
    trade_name: Option<String>,
    /// Mail domain of its boxes: its own, or a shared operator's.
    domain: String,
    own_domain: bool,
    /// Short slug naming it in local parts on shared domains.
    short: String,
    complement: Option<&'static str>,
    distribution: Option<String>,
    number: Option<String>,
    number_complement: Option<&'static str>,
    street_type: Option<&'static str>,
    street_name: Option<&'static str>,
    locality: Option<&'static str>,
    delivery_line: String,
    postal_code: &'static str,
    department: Option<Department>,
}

impl Site {
    fn fill(&self, e: &mut Entry) {
        e.organisation_id_type = Some(self.id_type.to_string());
        e.organisation_id = Some(self.id.clone());
        e.organisation_name = Some(self.name.clone());
        e.organisation_trade_name = self.trade_name.clone();
        e.address_complement = self.complement.map(str::to_string);
        e.address_distribution = self.distribution.clone();
        e.street_number = self.number.clone();
        e.street_number_complement = self.number_complement.map(str::to_string);
        e.street_type = self.street_type.map(str::to_string);
        e.street_name = self.street_name.map(str::to_string);
        e.locality = self.locality.map(str::to_string);
        e.delivery_line = Some(self.delivery_line.clone());
        e.postal_code = Some(self.postal_code.to_string());
        e.department = self.department.clone();
        e.country = Some("France".to_string());
    }
}

/// The structures drawn so far. A structure is a pure function of its key, so keeping the built ones only
/// saves time; there are a few tens of thousands at most, whatever the number of lines.
struct Sites {
    seed: u64,
    built: HashMap<u64, Arc<Site>, BuildHasherDefault<PassThrough>>,
}

impl Sites {
    fn new(seed: u64) -> Self {
        Sites {
            seed,
            built: HashMap::default(),
        }
    }

    /// Draws a structure of `kind` in department `dept` (falling back to a kind the department has).
    fn pick(&mut self, rng: &mut ChaCha8Rng, dept: usize, kind: Kind, prof: usize) -> Arc<Site> {
        let d = &DEPARTMENTS[dept];
        let kind = match kind {
            Kind::Chu if !d.cities.iter().any(|c| c.chu.is_some()) => Kind::Ch,
            k => k,
        };
        let kind = match kind {
            Kind::Ch if d.cities.iter().all(|c| c.chu.is_some()) => Kind::Hopital,
            k => k,
        };
        // only cabinets differ by profession; labs, pharmacies and hospitals are shared by all
        let prof = if kind == Kind::Cabinet { prof } else { 0 };
        let k = rng.random_range(0..site_count(d, kind));
        let key =
            ((dept as u64) << 40) | ((kind as u64) << 32) | ((prof as u64) << 24) | u64::from(k);
        let seed = self.seed;
        self.built
            .entry(mix(key))
            .or_insert_with(|| Arc::new(build_site(seed, dept, kind, prof, k)))
            .clone()
    }
}

/// Number of structures of a kind in a department, growing with its population; named kinds are capped by
/// their number of names, so that two structures of a department never share a name (and a mail domain).
fn site_count(d: &Dept, kind: Kind) -> u32 {
    let w = d.weight;
    let names = |n: usize| n as u32;
    match kind {
        Kind::Chu => 1,
        Kind::Ch => d.cities.iter().filter(|c| c.chu.is_none()).count() as u32,
        Kind::Hopital => (1 + w / 40).min(names(HOSPITAL_NAMES.len())),
        Kind::Clinique => (1 + w / 20).min(names(CLINIC_NAMES.len())),
        Kind::Ehpad => (3 + w / 2).min(names(EHPAD_PREFIXES.len() * EHPAD_NAMES.len())),
        // the first one is the municipal centre
        Kind::CentreSante => (1 + w / 10).min(names(1 + HEALTH_CENTRE_NAMES.len())),
        Kind::Laboratoire => (1 + w / 6).min(names(LAB_NAMES.len())),
        Kind::Pharmacie => 3 + w / 2,
        Kind::Cabinet => 4 + w / 2,
    }
    .max(1)
}

/// Structure `k` of a kind in a department: always the same for the same seed.
fn build_site(seed: u64, dept_idx: usize, kind: Kind, prof: usize, k: u32) -> Site {
    let t = tables();
    let d = &DEPARTMENTS[dept_idx];
    let key = ((dept_idx as u64) << 32) | ((kind as u64) << 24) | ((prof as u64) << 16);
    let r = &mut ChaCha8Rng::seed_from_u64(mix(mix(seed ^ mix(key)) ^ u64::from(k)));
    let city_idx = match kind {
        Kind::Chu => d.cities.iter().position(|c| c.chu.is_some()),
        Kind::Ch => d
            .cities
            .iter()
            .enumerate()
            .filter(|(_, c)| c.chu.is_none())
            .nth(k as usize)
            .map(|(i, _)| i),
        _ => None,
    }
    .unwrap_or_else(|| t.cities[dept_idx].pick(r));
    let city = &d.cities[city_idx];
    let postal_code = city.postal[pick_index(r, city.postal.len())];
    // names are distinct below the kind's count (see `site_count`) and vary across departments
    let rank = k as usize + dept_idx * 7;
    let nth = |list: &[&'static str]| list[rank % list.len()];
    // what tells a cabinet from the others of its city (its generic prefix does not)
    let mut cabinet_part = None;
    let (name, trade_name): (String, Option<String>) = match kind {
        Kind::Chu => (city.chu.map_or("", |c| c.0).to_string(), None),
        Kind::Ch => (format!("Centre Hospitalier {}", de(city.name)), None),
        Kind::Hopital => (nth(HOSPITAL_NAMES).to_string(), None),
        Kind::Clinique => {
            let n = nth(CLINIC_NAMES);
            if chance(r, 400) {
                (format!("SAS {n}"), Some(n.to_string()))
            } else {
                (n.to_string(), None)
            }
        }
        Kind::Ehpad => {
            let i = rank % (EHPAD_PREFIXES.len() * EHPAD_NAMES.len());
            let prefix = EHPAD_PREFIXES[i % EHPAD_PREFIXES.len()];
            (
                format!("EHPAD {prefix} {}", EHPAD_NAMES[i / EHPAD_PREFIXES.len()]),
                None,
            )
        }
        Kind::CentreSante if k == 0 => {
            (format!("Centre de santé municipal {}", de(city.name)), None)
        }
        Kind::CentreSante => (
            format!(
                "Centre de santé {}",
                HEALTH_CENTRE_NAMES[(k as usize - 1 + dept_idx * 7) % HEALTH_CENTRE_NAMES.len()]
            ),
            None,
        ),
        Kind::Laboratoire => {
            let n = format!("Laboratoire Bio{}", nth(LAB_NAMES));
            let trade = chance(r, 300).then(|| format!("{n} {}", city.name));
            (n, trade)
        }
        Kind::Pharmacie => {
            let n = match pick_index(r, PHARMACY_NAMES.len() + 1) {
                0 => format!("Grande Pharmacie {}", de(city.name)),
                i => PHARMACY_NAMES[i - 1].to_string(),
            };
            if chance(r, 400) {
                (format!("SELARL {n}"), Some(n))
            } else {
                (n, None)
            }
        }
        Kind::Cabinet => {
            let prefix = PROFESSIONS[prof].cabinet;
            // named after a place or after its practitioners, as real cabinets are
            let part = match r.random_range(0..100) {
                0..45 => pick(r, CABINET_SUFFIXES).to_string(),
                45..80 => last_name(r).into_owned(),
                _ => format!("{} et {}", last_name(r), last_name(r)),
            };
            cabinet_part = Some(slug(&part, 28));
            (format!("{prefix} {part}"), None)
        }
    };
    let shown = trade_name.as_deref().unwrap_or(&name);
    // the name and its city, once (`Laboratoire BioAzur Nice` already has it)
    let located = if shown.ends_with(city.name) {
        shown.to_string()
    } else {
        format!("{shown} {}", city.name)
    };
    let (domain, own_domain) = match kind {
        Kind::Chu => (
            format!("{}.mssante.fr", city.chu.map_or("chu", |c| c.1)),
            true,
        ),
        Kind::Ch => (format!("ch-{}.mssante.fr", slug(city.name, 50)), true),
        _ if chance(r, kind.own_domain()) => (format!("{}.mssante.fr", slug(&located, 50)), true),
        _ => (shared_domain(r, dept_idx), false),
    };
    let short = match &cabinet_part {
        Some(part) => format!("cabinet-{part}-{}", slug(city.name, 20)),
        None => slug(&located, 32),
    };
    let (id_type, id) = match kind {
        Kind::Laboratoire if chance(r, 500) => ("3", siret(r)),
        Kind::Cabinet if chance(r, 600) => ("3", siret(r)),
        Kind::Cabinet => ("4", cabinet_id(r)),
        _ => ("1", finess(r, d.code)),
    };

    let number = chance(r, 920).then(|| {
        let n = if chance(r, 700) {
            r.random_range(1..=40)
        } else {
            r.random_range(1..=250)
        };
        n.to_string()
    });
    let number_complement = match (number.is_some(), r.random_range(0..100)) {
        (true, 0..6) => Some("B"),
        (true, 6..8) => Some("T"),
        _ => None,
    };
    let street_type = STREET_TYPES[t.street_types.pick(r)].0;
    let street_name = pick(r, STREET_NAMES);
    let complement = chance(r, 80).then(|| pick(r, COMPLEMENTS));
    let (distribution, cedex) = if kind.is_hospital() && chance(r, 250) {
        (Some(format!("CS {}", r.random_range(10_000..99_999))), true)
    } else if chance(r, 40) {
        (
            Some(format!("BP {}", r.random_range(1..999))),
            chance(r, 500),
        )
    } else {
        (None, false)
    };
    let locality = chance(r, 30).then(|| pick(r, LOCALITIES));
    let mut delivery_line = format!("{postal_code} {}", fold(city.name).to_ascii_uppercase());
    if cedex {
        if city.postal.len() > 1 {
            delivery_line.push_str(&format!(" CEDEX {:02}", r.random_range(1..=20)));
        } else {
            delivery_line.push_str(" CEDEX");
        }
    }
    Site {
        kind,
        id_type,
        id,
        name,
        trade_name,
        domain,
        own_domain,
        short,
        complement,
        distribution,
        number,
        number_complement,
        street_type: Some(street_type),
        street_name: Some(street_name),
        locality,
        delivery_line,
        postal_code,
        department: Department::parse(d.code).ok(),
    }
}

/// `de Rennes`, `d'Angers`, `du Mans`, `des Sables-d'Olonne`: French elision and contraction before a city.
fn de(city: &str) -> String {
    if let Some(rest) = city.strip_prefix("Le ") {
        format!("du {rest}")
    } else if let Some(rest) = city.strip_prefix("Les ") {
        format!("des {rest}")
    } else if city.starts_with(['A', 'E', 'I', 'O', 'U', 'Y', 'É', 'È', 'Î']) {
        format!("d'{city}")
    } else {
        format!("de {city}")
    }
}

// ---------------------------------------------------------------------------------------------------------
// Identifiers

/// Luhn check digit to append to `digits` (RPPS, SIREN and SIRET use it).
fn luhn_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// `n ↦ (a·n + c) mod m`, a bijection of `0..m` when `a` is coprime with `m` (here `m` is a power of 10 and
/// `a` ends in 1), so that people numbered apart get different identifiers.
fn scramble(n: u64, salt: u64, m: u64) -> u64 {
    ((n % m) * (2_654_435_761 % m) + salt % m) % m
}

/// RPPS: `10` + 8 digits + Luhn key, never repeated for the first 10⁸ people.
fn rpps(seed: u64, n: u64) -> String {
    let body = scramble(n, mix(seed), 100_000_000);
    let mut id = String::with_capacity(11);
    // writing to a String cannot fail
    let _ = write!(id, "10{body:08}");
    let key = luhn_digit(&id);
    id.push(char::from(b'0' + key as u8));
    id
}

/// ADELI: the department number, a profession digit (2-digit departments), then a serial; 9 digits.
fn adeli(seed: u64, n: u64, dept: &str, profession: &str) -> String {
    let dept = match dept {
        "2A" | "2B" => "20", // ADELI numbers are digits; Corsica keeps its former number
        d => d,
    };
    let serial_len = 9 - dept.len() - usize::from(dept.len() == 2);
    let modulus = 10u64.pow(serial_len as u32);
    let serial = scramble(n, mix(seed ^ 1), modulus);
    let prof_digit = if dept.len() == 2 {
        &profession[..1]
    } else {
        ""
    };
    format!("{dept}{prof_digit}{serial:0serial_len$}")
}

/// FINESS: 9 characters starting with the department (`2A`/`2B` for Corsica, 3 digits overseas).
fn finess(r: &mut ChaCha8Rng, dept: &str) -> String {
    if dept.len() == 2 {
        format!("{dept}0{:06}", r.random_range(0..1_000_000))
    } else {
        format!("{dept}{:06}", r.random_range(0..1_000_000))
    }
}

/// SIRET: SIREN (8 digits + Luhn key) + NIC chosen so the 14 digits pass Luhn too.
fn siret(r: &mut ChaCha8Rng) -> String {
    let head = format!("{:08}", r.random_range(10_000_000..100_000_000));
    let siren = format!("{head}{}", luhn_digit(&head));
    let nic = format!("{siren}000{}", r.random_range(1..10));
    let key = luhn_digit(&nic);
    format!("{nic}{key}")
}

/// Cabinet identifier (structure type 4): the founder's RPPS and a 2-digit rank. The spec does not give the
/// national format, so this only needs to be stable and plausible.
fn cabinet_id(r: &mut ChaCha8Rng) -> String {
    let head = format!("10{:08}", r.random_range(0..100_000_000));
    format!("{head}{}{:02}", luhn_digit(&head), r.random_range(1..6))
}

// ---------------------------------------------------------------------------------------------------------
// Text helpers

/// ASCII replacement of the accented letters our tables use.
fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => "a",
        'À' | 'Â' | 'Ä' | 'Á' | 'Ã' => "A",
        'ç' => "c",
        'Ç' => "C",
        'é' | 'è' | 'ê' | 'ë' => "e",
        'É' | 'È' | 'Ê' | 'Ë' => "E",
        'í' | 'ì' | 'î' | 'ï' | 'ı' => "i",
        'Í' | 'Î' | 'Ï' => "I",
        'ñ' => "n",
        'Ñ' => "N",
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => "o",
        'Ó' | 'Ô' | 'Ö' | 'Õ' => "O",
        'ú' | 'ù' | 'û' | 'ü' => "u",
        'Ú' | 'Ù' | 'Û' | 'Ü' => "U",
        'ý' | 'ÿ' => "y",
        'Ÿ' => "Y",
        'œ' => "oe",
        'Œ' => "OE",
        'æ' => "ae",
        'Æ' => "AE",
        'ş' => "s",
        'Ş' => "S",
        'ğ' => "g",
        '’' => "'",
        _ => return None,
    })
}

/// `Hélène` -> `Helene`; characters with no ASCII form are dropped.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for_folded(s, |c| out.push(c));
    out
}

/// Calls `f` with each ASCII character of `s` folded.
fn for_folded(s: &str, mut f: impl FnMut(char)) {
    for c in s.chars() {
        if c.is_ascii() {
            f(c);
        } else if let Some(folded) = fold_char(c) {
            folded.chars().for_each(&mut f);
        }
    }
}

/// [`push_local_word`] into a new string.
#[cfg(test)]
fn local_word(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    push_local_word(&mut out, name);
    out
}

/// Appends a name as operators write it in local parts: `N'Diaye` -> `ndiaye`, `Le Gall` -> `le-gall`,
/// `Jean-Éric` -> `jean-eric`.
fn push_local_word(out: &mut String, name: &str) {
    let start = out.len();
    for_folded(name, |c| {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == ' ' || c == '-') && out.len() > start && !out.ends_with('-') {
            out.push('-');
        }
    });
    let trimmed = start + out[start..].trim_end_matches('-').len();
    out.truncate(trimmed);
    if out.len() == start {
        out.push('x');
    }
}

/// A host-name-safe slug of at most `max` characters, cut at a word boundary when possible.
fn slug(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for_folded(s, |c| {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    });
    if out.len() > max {
        let cut = out[..=max]
            .rfind('-')
            .filter(|&i| i > max / 2)
            .unwrap_or(max);
        out.truncate(cut);
    }
    let trimmed = out.trim_end_matches('-').len();
    out.truncate(trimmed);
    if out.is_empty() {
        out.push('x');
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Randomness helpers

/// True `per_mille` times out of 1000.
fn chance(r: &mut impl Rng, per_mille: u32) -> bool {
    r.random_range(0..1000) < per_mille
}

/// A uniform index below `len` (drawn as `u32` so that it is the same on 32- and 64-bit targets).
fn pick_index(r: &mut impl Rng, len: usize) -> usize {
    r.random_range(0..len.max(1) as u32) as usize
}

fn pick<T: Copy>(r: &mut impl Rng, list: &[T]) -> T {
    list[pick_index(r, list.len())]
}

/// Weighted choice over a table, by cumulative weights.
struct Picker {
    cumulative: Vec<u32>,
}

impl Picker {
    fn new(weights: impl IntoIterator<Item = u32>) -> Self {
        let mut total = 0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Picker { cumulative }
    }

    fn of<T>(table: &[(T, u32)]) -> Self {
        Picker::new(table.iter().map(|x| x.1))
    }

    fn pick(&self, r: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let x = r.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// SplitMix64 finaliser: spreads seeds and keys over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a then mixed: a fixed hash (unlike `RandomState`), so uniqueness decisions never vary between runs.
fn address_key(address: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in address.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    mix(h)
}

/// The set keys are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Tables {
    bal: Picker,
    professions: Picker,
    places: Vec<Picker>,
    specialities: Vec<Picker>,
    female: Picker,
    male: Picker,
    last: Picker,
    tail: Vec<String>,
    depts: Picker,
    cities: Vec<Picker>,
    org_kinds: Picker,
    app_kinds: Picker,
    reuse_kinds: Picker,
    cab_profs: Picker,
    street_types: Picker,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| Tables {
        bal: Picker::of(BAL_TYPES),
        professions: Picker::new(PROFESSIONS.iter().map(|p| p.weight)),
        places: PROFESSIONS.iter().map(|p| Picker::of(p.places)).collect(),
        specialities: PROFESSIONS
            .iter()
            .map(|p| Picker::new(p.specialities.iter().map(|s| s.weight)))
            .collect(),
        female: Picker::of(FEMALE_NAMES),
        male: Picker::of(MALE_NAMES),
        last: Picker::of(LAST_NAMES),
        tail: tail_names(),
        depts: Picker::new(DEPARTMENTS.iter().map(|d| d.weight)),
        cities: DEPARTMENTS
            .iter()
            .map(|d| Picker::new(d.cities.iter().map(|c| c.weight)))
            .collect(),
        org_kinds: Picker::of(ORG_KINDS),
        app_kinds: Picker::of(APP_KINDS),
        reuse_kinds: Picker::of(REUSE_KINDS),
        cab_profs: Picker::of(CAB_PROFESSIONS),
        street_types: Picker::of(STREET_TYPES),
    })
}

// ---------------------------------------------------------------------------------------------------------
// Faults

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Truncated,
    BadAddress,
    UnknownType,
    BadUtf8,
}

const FAULTS: [Fault; 4] = [
    Fault::Truncated,
    Fault::BadAddress,
    Fault::UnknownType,
    Fault::BadUtf8,
];

/// Where fault lines go. Drawn from its own RNG so that the valid lines are the same with or without faults.
struct FaultPlan {
    rng: ChaCha8Rng,
    /// The file's structures, for the second structure of duplicated addresses.
    sites: Sites,
    /// Base entries whose address gets a second line (moved to the next PER box).
    duplicate_at: BTreeSet<usize>,
    /// Duplicates still wanted: set at a chosen index, taken by the next personal box.
    wanted: usize,
    /// Duplicate lines waiting for their position (a few lines after their original).
    pending: Vec<(usize, String)>,
    /// `(before base entry i, kind)`, sorted; `i == count` means at the end.
    malformed: Vec<(usize, Fault)>,
    next_malformed: usize,
}

impl FaultPlan {
    fn new(opts: &DemoOptions) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(opts.seed ^ 0x6661_756C_7473));
        let mut duplicate_at = BTreeSet::new();
        let mut malformed = Vec::new();
        let count = opts.count;
        if opts.faults && count > 0 {
            let duplicates = (count * 3).div_ceil(10_000).max(2).min(count);
            while duplicate_at.len() < duplicates {
                duplicate_at.insert(rng.random_range(0..count as u64) as usize);
            }
            let bad = (count * 5).div_ceil(10_000).max(FAULTS.len());
            let mut at: Vec<usize> = (0..bad)
                .map(|_| rng.random_range(1..=count as u64) as usize)
                .collect();
            at.sort_unstable();
            malformed = at
                .into_iter()
                .enumerate()
                .map(|(i, pos)| (pos, FAULTS[i % FAULTS.len()]))
                .collect();
        }
        FaultPlan {
            rng,
            sites: Sites::new(opts.seed),
            duplicate_at,
            wanted: 0,
            pending: Vec::new(),
            malformed,
            next_malformed: 0,
        }
    }

    /// Writes the fault lines due before base entry `index`.
    fn before(
        &mut self,
        index: usize,
        last_line: &str,
        out: &mut impl Write,
        summary: &mut DemoSummary,
    ) -> std::io::Result<()> {
        while let Some(&(at, fault)) = self.malformed.get(self.next_malformed) {
            if at > index {
                break;
            }
            self.next_malformed += 1;
            write_line(out, &malformed_line(last_line, fault, &mut self.rng))?;
            summary.malformed += 1;
            summary.lines += 1;
        }
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].0 <= index {
                let (_, line) = self.pending.remove(i);
                write_line(out, line.as_bytes())?;
                summary.duplicates += 1;
                summary.entries += 1;
                summary.lines += 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// Notes base entry `index` (just written) and schedules its duplicate if one is wanted.
    fn after(&mut self, index: usize, entry: &Entry) {
        if self.duplicate_at.remove(&index) {
            self.wanted += 1;
        }
        // duplicated addresses in the real file are people working in two structures
        if self.wanted > 0
            && entry.bal_type == BalType::Per
            && let Some(line) = duplicate_line(entry, &mut self.sites, &mut self.rng)
        {
            self.wanted -= 1;
            let at = index + 1 + pick_index(&mut self.rng, 30);
            self.pending.push((at, line));
        }
    }

    /// Writes what is left at the end: pending duplicates, wanted ones (of the last entry), malformed lines.
    fn finish(
        &mut self,
        count: usize,
        last_line: &str,
        out: &mut impl Write,
        summary: &mut DemoSummary,
    ) -> Result<()> {
        let io_err = |e| Error::io("writing the demo extraction", e);
        if self.wanted > 0 && !last_line.is_empty() {
            let last = crate::extraction::parse_line(last_line, None)?;
            for _ in 0..self.wanted {
                if let Some(line) = duplicate_line(&last, &mut self.sites, &mut self.rng) {
                    self.pending.push((count, line));
                }
            }
            self.wanted = 0;
        }
        for (_, line) in std::mem::take(&mut self.pending) {
            write_line(out, line.as_bytes()).map_err(io_err)?;
            summary.duplicates += 1;
            summary.entries += 1;
            summary.lines += 1;
        }
        self.before(usize::MAX, last_line, out, summary)
            .map_err(io_err)
    }
}

/// The same box attached to another structure (another site, and a service at hospitals).
fn duplicate_line(original: &Entry, sites: &mut Sites, rng: &mut ChaCha8Rng) -> Option<String> {
    let t = tables();
    let prof = original
        .profession
        .as_ref()
        .and_then(|p| PROFESSIONS.iter().position(|x| x.code == p.code))
        .unwrap_or(0);
    let dept = original
        .department
        .as_ref()
        .and_then(|d| DEPARTMENTS.iter().position(|x| x.code == d.as_str()))
        .unwrap_or_else(|| t.depts.pick(rng));
    let mut dup = original.clone();
    for _ in 0..16 {
        let kind = match PROFESSIONS[prof].places[t.places[prof].pick(rng)].0 {
            Some(k) => k,
            None => Kind::Cabinet,
        };
        let site = sites.pick(rng, dept, kind, prof);
        site.fill(&mut dup);
        dup.service = (site.kind.is_hospital() && chance(rng, 500))
            .then(|| pick(rng, HOSPITAL_SERVICES).0.to_string());
        if dup.structure() != original.structure() {
            return format_line(&dup).ok();
        }
    }
    None
}

/// A line a reader must reject, made from a real line so that it looks like the file's own mistakes.
fn malformed_line(line: &str, fault: Fault, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut cols: Vec<String> = line.split(SEPARATOR).map(str::to_string).collect();
    if cols.len() < 3 {
        cols = vec![
            "PER".into(),
            "a@b.fr".into(),
            "8".into(),
            String::new(),
            String::new(),
        ];
    }
    match fault {
        Fault::Truncated => {
            let keep = (rng.random_range(3..=20) as usize).min(cols.len() - 1);
            cols[..keep].join("|").into_bytes()
        }
        Fault::BadAddress => {
            let (local, domain) = cols[1].rsplit_once('@').unwrap_or(("x", "mssante.fr"));
            let tld_less = domain.split('.').next().unwrap_or("mssante");
            cols[1] = match rng.random_range(0..5) {
                0 => format!("{local}.{domain}"),
                1 => format!("{local} @{domain}"),
                2 => format!("{local}@{domain}."),
                3 => format!("{local}@@{domain}"),
                _ => format!("{local}@{tld_less}"),
            };
            cols.join("|").into_bytes()
        }
        Fault::UnknownType => {
            cols[0] = pick(rng, &["PERS", "BAL", "ORGA", "PRO", "MSS"]).to_string();
            cols.join("|").into_bytes()
        }
        Fault::BadUtf8 => {
            // as if one field had been saved in Latin-1
            let text = cols.join("|");
            let mut bytes = Vec::with_capacity(text.len() + 2);
            match text.char_indices().find(|(_, c)| !c.is_ascii()) {
                Some((i, c)) => {
                    bytes.extend_from_slice(&text.as_bytes()[..i]);
                    bytes.push(u8::try_from(u32::from(c)).unwrap_or(0xFF));
                    bytes.extend_from_slice(&text.as_bytes()[i + c.len_utf8()..]);
                }
                None => {
                    let i = text.find('|').map_or(0, |i| i + 1);
                    bytes.extend_from_slice(&text.as_bytes()[..i]);
                    bytes.extend_from_slice(&[0xFF, 0xFE]);
                    bytes.extend_from_slice(&text.as_bytes()[i..]);
                }
            }
            bytes
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tables

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

/// BAL types per 10 000 boxes: the real file shows PER and ORG; a few APP and CAB let filters be tested.
const BAL_TYPES: &[(BalType, u32)] = &[
    (BalType::Per, 8_400),
    (BalType::Org, 1_500),
    (BalType::App, 70),
    (BalType::Cab, 30),
];

/// `Catégorie profession` and its label.
const CATEGORIES: [(&str, &str); 3] = [("C", "Civil"), ("M", "Militaire"), ("E", "Etudiant")];

struct Profession {
    /// TRE_G15 code and label.
    code: &'static str,
    label: &'static str,
    /// Share of personal boxes, per 10 000.
    weight: u32,
    /// Per mille women.
    female: u32,
    /// Per mille identified by ADELI (professions not yet in RPPS), the others by RPPS.
    adeli: u32,
    /// Per mille with civility `DR`/`PR` (the others `M`/`MME`).
    doctor: u32,
    /// Per mille students and military.
    student: u32,
    military: u32,
    /// Domain of the ordinal operator, for professions that have one.
    domain: Option<&'static str>,
    /// How their cabinets are named.
    cabinet: &'static str,
    /// Where they work; `None` is a box attached to no structure.
    places: &'static [(Option<Kind>, u32)],
    specialities: &'static [Speciality],
    /// Per mille with a speciality.
    speciality_share: u32,
}

struct Speciality {
    code: &'static str,
    label: &'static str,
    weight: u32,
    /// The hospital service such a doctor works in.
    service: &'static str,
}

const fn sp(
    code: &'static str,
    label: &'static str,
    weight: u32,
    service: &'static str,
) -> Speciality {
    Speciality {
        code,
        label,
        weight,
        service,
    }
}

const DOCTOR_SPECIALITIES: &[Speciality] = &[
    sp("SM54", "Médecine générale", 340, "Urgences"),
    sp(
        "SM26",
        "Qualifié en Médecine Générale",
        100,
        "Médecine polyvalente",
    ),
    sp(
        "SM53",
        "Spécialiste en Médecine Générale",
        80,
        "Médecine polyvalente",
    ),
    sp(
        "SM04",
        "Cardiologie et maladies vasculaires",
        50,
        "Cardiologie",
    ),
    sp(
        "SM02",
        "Anesthésie-réanimation",
        55,
        "Anesthésie-réanimation",
    ),
    sp("SM15", "Dermatologie et vénéréologie", 30, "Dermatologie"),
    sp(
        "SM24",
        "Gastro-entérologie et hépatologie",
        30,
        "Gastro-entérologie",
    ),
    sp("SM32", "Neurologie", 25, "Neurologie"),
    sp("SM40", "Ophtalmologie", 40, "Ophtalmologie"),
    sp("SM42", "Oto-rhino-laryngologie", 25, "ORL"),
    sp("SM43", "Pédiatrie", 45, "Pédiatrie"),
    sp("SM44", "Pneumologie", 25, "Pneumologie"),
    sp("SM45", "Psychiatrie", 70, "Psychiatrie adulte"),
    sp(
        "SM48",
        "Radio-diagnostic et imagerie médicale",
        55,
        "Imagerie médicale",
    ),
    sp("SM50", "Rhumatologie", 20, "Rhumatologie"),
    sp("SM20", "Gynécologie-obstétrique", 40, "Pôle femme-enfant"),
];

const DENTIST_SPECIALITIES: &[Speciality] = &[
    sp(
        "SCD01",
        "Orthopédie dento-faciale",
        60,
        "Consultations externes",
    ),
    sp("SCD02", "Chirurgie orale", 25, "Chirurgie maxillo-faciale"),
    sp(
        "SCD03",
        "Médecine bucco-dentaire",
        15,
        "Consultations externes",
    ),
];

/// Defaults for [`PROFESSIONS`] rows.
const NO_PROFESSION: Profession = Profession {
    code: "",
    label: "",
    weight: 0,
    female: 500,
    adeli: 0,
    doctor: 0,
    student: 0,
    military: 0,
    domain: None,
    cabinet: "Cabinet",
    places: &[(None, 1)],
    specialities: &[],
    speciality_share: 0,
};

use Kind::{Cabinet, CentreSante, Ch, Chu, Clinique, Ehpad, Hopital, Laboratoire, Pharmacie};

/// TRE_G15, weighted as in the national directory (médecins about 45 % of personal boxes). Professions
/// outside RPPS are mostly identified by ADELI and have no ordinal operator domain.
const PROFESSIONS: &[Profession] = &[
    Profession {
        code: "10",
        label: "Médecin",
        weight: 4_500,
        female: 500,
        doctor: 900,
        student: 30,
        military: 10,
        domain: Some("medecin.mssante.fr"),
        cabinet: "Cabinet médical",
        places: &[
            (None, 20),
            (Some(Chu), 10),
            (Some(Ch), 22),
            (Some(Hopital), 5),
            (Some(Clinique), 8),
            (Some(Cabinet), 28),
            (Some(CentreSante), 5),
            (Some(Laboratoire), 1),
            (Some(Ehpad), 1),
        ],
        specialities: DOCTOR_SPECIALITIES,
        speciality_share: 960,
        ..NO_PROFESSION
    },
    Profession {
        code: "21",
        label: "Pharmacien",
        weight: 1_200,
        female: 680,
        doctor: 550,
        student: 20,
        military: 5,
        domain: Some("pharmacien.mssante.fr"),
        cabinet: "Pharmacie",
        places: &[
            (None, 15),
            (Some(Pharmacie), 65),
            (Some(Ch), 8),
            (Some(Chu), 3),
            (Some(Laboratoire), 7),
            (Some(Clinique), 2),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "60",
        label: "Infirmier",
        weight: 1_400,
        female: 870,
        adeli: 150,
        military: 8,
        domain: Some("infirmier.mssante.fr"),
        cabinet: "Cabinet infirmier",
        places: &[
            (None, 25),
            (Some(Chu), 10),
            (Some(Ch), 25),
            (Some(Clinique), 8),
            (Some(Cabinet), 20),
            (Some(Ehpad), 8),
            (Some(CentreSante), 4),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "70",
        label: "Masseur-Kinésithérapeute",
        weight: 900,
        female: 500,
        domain: Some("masseur-kinesitherapeute.mssante.fr"),
        cabinet: "Cabinet de kinésithérapie",
        places: &[
            (None, 22),
            (Some(Cabinet), 65),
            (Some(Ch), 6),
            (Some(Clinique), 4),
            (Some(Ehpad), 3),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "40",
        label: "Chirurgien-Dentiste",
        weight: 600,
        female: 500,
        doctor: 900,
        student: 15,
        domain: Some("chirurgien-dentiste.mssante.fr"),
        cabinet: "Cabinet dentaire",
        places: &[
            (None, 15),
            (Some(Cabinet), 73),
            (Some(CentreSante), 10),
            (Some(Chu), 2),
        ],
        specialities: DENTIST_SPECIALITIES,
        speciality_share: 120,
        ..NO_PROFESSION
    },
    Profession {
        code: "50",
        label: "Sage-Femme",
        weight: 400,
        female: 975,
        student: 20,
        domain: Some("sagefemme.mssante.fr"),
        cabinet: "Cabinet de sage-femme",
        places: &[
            (None, 20),
            (Some(Chu), 15),
            (Some(Ch), 30),
            (Some(Clinique), 10),
            (Some(Cabinet), 22),
            (Some(CentreSante), 3),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "80",
        label: "Pédicure-Podologue",
        weight: 200,
        female: 700,
        domain: Some("pedicure-podologue.mssante.fr"),
        cabinet: "Cabinet de podologie",
        places: &[(None, 30), (Some(Cabinet), 65), (Some(CentreSante), 5)],
        ..NO_PROFESSION
    },
    Profession {
        code: "91",
        label: "Orthophoniste",
        weight: 200,
        female: 970,
        adeli: 850,
        cabinet: "Cabinet d'orthophonie",
        places: &[
            (None, 35),
            (Some(Cabinet), 50),
            (Some(Ch), 8),
            (Some(CentreSante), 7),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "26",
        label: "Audioprothésiste",
        weight: 70,
        female: 450,
        adeli: 850,
        cabinet: "Centre auditif",
        places: &[(None, 40), (Some(Cabinet), 60)],
        ..NO_PROFESSION
    },
    Profession {
        code: "28",
        label: "Opticien-Lunetier",
        weight: 80,
        female: 550,
        adeli: 850,
        cabinet: "Optique",
        places: &[(None, 50), (Some(Cabinet), 50)],
        ..NO_PROFESSION
    },
    Profession {
        code: "81",
        label: "Orthoprothésiste",
        weight: 20,
        female: 300,
        adeli: 850,
        cabinet: "Atelier d'orthopédie",
        places: &[(None, 40), (Some(Cabinet), 50), (Some(Chu), 10)],
        ..NO_PROFESSION
    },
    Profession {
        code: "86",
        label: "Technicien de laboratoire médical",
        weight: 80,
        female: 800,
        adeli: 850,
        cabinet: "Laboratoire",
        places: &[
            (None, 20),
            (Some(Laboratoire), 50),
            (Some(Chu), 10),
            (Some(Ch), 20),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "92",
        label: "Orthoptiste",
        weight: 60,
        female: 900,
        adeli: 850,
        cabinet: "Cabinet d'orthoptie",
        places: &[
            (None, 30),
            (Some(Cabinet), 50),
            (Some(Ch), 10),
            (Some(Chu), 10),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "94",
        label: "Ergothérapeute",
        weight: 80,
        female: 870,
        adeli: 850,
        cabinet: "Cabinet d'ergothérapie",
        places: &[
            (None, 30),
            (Some(Cabinet), 20),
            (Some(Ch), 25),
            (Some(Ehpad), 15),
            (Some(Clinique), 10),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "95",
        label: "Diététicien",
        weight: 70,
        female: 930,
        adeli: 850,
        cabinet: "Cabinet de diététique",
        places: &[
            (None, 35),
            (Some(Cabinet), 30),
            (Some(Ch), 20),
            (Some(Clinique), 15),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "96",
        label: "Psychomotricien",
        weight: 60,
        female: 880,
        adeli: 850,
        cabinet: "Cabinet de psychomotricité",
        places: &[
            (None, 35),
            (Some(Cabinet), 35),
            (Some(Ch), 20),
            (Some(CentreSante), 10),
        ],
        ..NO_PROFESSION
    },
    Profession {
        code: "98",
        label: "Manipulateur ERM",
        weight: 120,
        female: 700,
        adeli: 850,
        cabinet: "Cabinet de radiologie",
        places: &[
            (None, 15),
            (Some(Chu), 25),
            (Some(Ch), 35),
            (Some(Clinique), 15),
            (Some(Cabinet), 10),
        ],
        ..NO_PROFESSION
    },
];

/// Professions with CAB boxes and cabinet ORG boxes (indexes in [`PROFESSIONS`]).
const CAB_PROFESSIONS: &[(usize, u32)] = &[(0, 40), (4, 25), (3, 20), (2, 10), (5, 5)];

/// ORG boxes are mostly hospital services.
const ORG_KINDS: &[(Kind, u32)] = &[
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
const APP_KINDS: &[(Kind, u32)] = &[
    (Chu, 1),
    (Ch, 5),
    (Hopital, 3),
    (Clinique, 3),
    (Laboratoire, 4),
];

const REUSE_KINDS: &[(Kind, u32)] = &[(Chu, 3), (Ch, 5), (Hopital, 2), (Clinique, 2)];

/// Operators other than the ordinal one and the structures' own (kept valid host names).
const COMMERCIAL_DOMAINS: &[&str] = &[
    "mssante.santelink.fr",
    "mssante.medisecure.fr",
    "mssante.carelia.fr",
    "mssante.hopinet.fr",
    "pro.mssante.docmail.fr",
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

/// Hospital services: label and local part.
const HOSPITAL_SERVICES: &[(&str, &str)] = &[
    ("Cardiologie", "cardiologie"),
    ("Urgences", "urgences"),
    ("Secrétariat médical", "secretariat.medical"),
    ("Laboratoire de biologie médicale", "labo"),
    ("Imagerie médicale", "imagerie"),
    ("Pharmacie à usage intérieur", "pui"),
    ("Bureau des admissions", "admissions"),
    ("Pôle femme-enfant", "pole.femme-enfant"),
    ("Pédiatrie", "pediatrie"),
    ("Maternité", "maternite"),
    ("Chirurgie orthopédique", "chirurgie.orthopedique"),
    ("Chirurgie viscérale", "chirurgie.viscerale"),
    ("Médecine interne", "medecine.interne"),
    ("Gériatrie", "geriatrie"),
    ("Oncologie", "oncologie"),
    ("Pneumologie", "pneumologie"),
    ("Neurologie", "neurologie"),
    ("Psychiatrie adulte", "psychiatrie"),
    ("Soins de suite et de réadaptation", "ssr"),
    ("Anesthésie-réanimation", "reanimation"),
    ("Gastro-entérologie", "gastro"),
    ("Néphrologie - Dialyse", "nephrologie"),
    ("Dermatologie", "dermatologie"),
    ("Ophtalmologie", "ophtalmologie"),
    ("ORL", "orl"),
    ("Rhumatologie", "rhumatologie"),
    ("Département d'information médicale", "dim"),
    ("Direction des soins", "direction.soins"),
    ("Consultations externes", "consultations"),
    ("Unité de soins palliatifs", "soins.palliatifs"),
    ("Hôpital de jour", "hdj"),
    ("Médecine polyvalente", "medecine.polyvalente"),
    ("Court séjour gériatrique", "csg"),
    ("Service social", "service.social"),
    ("Chirurgie maxillo-faciale", "chirurgie.maxillo"),
];

const CLINIC_SERVICES: &[(&str, &str)] = &[
    ("Secrétariat médical", "secretariat.medical"),
    ("Bloc opératoire", "bloc"),
    ("Chirurgie ambulatoire", "ambulatoire"),
    ("Accueil", "accueil"),
    ("Imagerie médicale", "imagerie"),
    ("Maternité", "maternite"),
    ("Chirurgie orthopédique", "chirurgie.orthopedique"),
    ("Cardiologie", "cardiologie"),
    ("Urgences", "urgences"),
    ("Soins de suite et de réadaptation", "ssr"),
];

const EHPAD_SERVICES: &[(&str, &str)] = &[
    ("Infirmerie", "infirmerie"),
    ("Direction", "direction"),
    ("Médecin coordonnateur", "medecin.coordonnateur"),
    ("Secrétariat médical", "secretariat.medical"),
    ("Cadre de santé", "cadre.sante"),
    ("Accueil", "accueil"),
];

const HEALTH_CENTRE_SERVICES: &[(&str, &str)] = &[
    ("Secrétariat médical", "secretariat.medical"),
    ("Accueil", "accueil"),
    ("Médecine générale", "medecine.generale"),
    ("Soins dentaires", "dentaire"),
    ("Soins infirmiers", "soins.infirmiers"),
];

const LAB_SERVICES: &[(&str, &str)] = &[
    ("Laboratoire de biologie médicale", "labo"),
    ("Secrétariat", "secretariat"),
    ("Résultats", "resultats"),
    ("Microbiologie", "microbiologie"),
    ("Biochimie", "biochimie"),
    ("Hématologie", "hematologie"),
    ("Prélèvements", "prelevements"),
    ("Accueil", "accueil"),
    ("Biologie moléculaire", "biologie.moleculaire"),
    ("Direction", "direction"),
];

const CABINET_SERVICES: &[(&str, &str)] = &[
    ("Secrétariat", "secretariat"),
    ("Accueil", "accueil"),
    ("Cabinet", "cabinet"),
    ("Rendez-vous", "rdv"),
];

const PHARMACY_SERVICES: &[(&str, &str)] = &[
    ("Officine", "officine"),
    ("Commandes", "commandes"),
    ("Préparations", "preparatoire"),
];

fn services_of(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Chu | Kind::Ch | Kind::Hopital => HOSPITAL_SERVICES,
        Kind::Clinique => CLINIC_SERVICES,
        Kind::Ehpad => EHPAD_SERVICES,
        Kind::CentreSante => HEALTH_CENTRE_SERVICES,
        Kind::Laboratoire => LAB_SERVICES,
        Kind::Cabinet => CABINET_SERVICES,
        Kind::Pharmacie => PHARMACY_SERVICES,
    }
}

/// APP boxes: what the application sends, and its local part.
const APPLICATIONS: &[(&str, &str)] = &[
    ("Résultats de biologie", "resultats-biologie"),
    ("DPI - lettres de sortie", "dpi-sortie"),
    ("Plateforme d'échanges", "pfi"),
    ("Comptes rendus d'hospitalisation", "crh"),
    ("Résultats d'imagerie", "resultats-imagerie"),
    ("Courriers de consultation", "courriers"),
    ("Dossier patient informatisé", "dpi"),
    ("Comptes rendus opératoires", "cro"),
    ("Messagerie applicative", "noreply-mssante"),
    ("Lettres de liaison", "lettres-liaison"),
    ("Résultats d'anatomopathologie", "resultats-anapath"),
    ("Passages aux urgences", "urgences-rpu"),
    ("Serveur de résultats", "serveur-resultats"),
    ("Échanges HPRIM", "hprim"),
];

const HOSPITAL_NAMES: &[&str] = &[
    "Hôpital Saint-Joseph",
    "Hôpital Saint-Louis",
    "Hôpital Sainte-Anne",
    "Hôpital Saint-Jacques",
    "Hôpital Sainte-Marie",
    "Hôpital Saint-Vincent-de-Paul",
    "Hôpital Saint-Pierre",
    "Hôpital Saint-Camille",
    "Hôpital Sainte-Marguerite",
    "Hôpital Saint-Antoine",
    "Hôpital Saint-Jean",
    "Hôpital Saint-Luc",
    "Hôpital privé du Parc",
    "Hôpital Notre-Dame de Bon Secours",
    "Hôpital Sainte-Catherine",
    "Hôpital Saint-Martin",
];

const CLINIC_NAMES: &[&str] = &[
    "Clinique Saint-Jean",
    "Clinique du Parc",
    "Clinique de l'Espérance",
    "Polyclinique du Val",
    "Clinique des Cèdres",
    "Clinique Pasteur",
    "Clinique Sainte-Marie",
    "Clinique des Lilas",
    "Clinique du Millénaire",
    "Clinique Saint-Augustin",
    "Polyclinique Saint-Roch",
    "Clinique de la Sauvegarde",
    "Clinique du Mail",
    "Clinique Bon Secours",
    "Clinique des Fleurs",
    "Clinique Jeanne d'Arc",
    "Polyclinique du Parc",
    "Clinique Sainte-Odile",
];

/// EHPAD names: a prefix and a name (`EHPAD Résidence des Tilleuls`).
const EHPAD_PREFIXES: &[&str] = &[
    "Résidence",
    "Les Jardins",
    "Le Clos",
    "La Maison",
    "Les Terrasses",
    "Le Domaine",
];

const EHPAD_NAMES: &[&str] = &[
    "des Tilleuls",
    "du Parc",
    "de la Roseraie",
    "des Glycines",
    "Fleuri",
    "des Hortensias",
    "d'Automne",
    "du Lac",
    "Saint-Joseph",
    "des Magnolias",
    "du Val",
    "des Charmilles",
    "de la Source",
    "Beau Soleil",
    "des Cèdres",
    "des Mimosas",
    "des Pins",
    "des Camélias",
    "du Grand Chêne",
    "Sainte-Anne",
    "du Moulin",
    "des Vignes",
    "de l'Étang",
    "des Peupliers",
    "Bellevue",
];

const HEALTH_CENTRE_NAMES: &[&str] = &[
    "des Lilas",
    "Pasteur",
    "Simone Veil",
    "Louise Michel",
    "Marie Curie",
    "Henri Dunant",
    "de la Croix-Rouge",
    "du Centre",
    "Jean Moulin",
    "Europe",
    "Saint-Michel",
    "Albert Schweitzer",
    "Ambroise Paré",
    "Olympe de Gouges",
    "Frantz Fanon",
    "des Trois Rivières",
    "de la Gare",
    "Victor Hugo",
    "Jean Jaurès",
    "Émile Zola",
    "Saint-Paul",
    "des Quartiers Nord",
    "Colette",
    "Lucie Aubrac",
    "Germaine Tillion",
    "Joséphine Baker",
    "Elsa Triolet",
    "Pierre Brossolette",
    "Aimé Césaire",
    "Jacques Prévert",
    "Paul Éluard",
    "Rosa Parks",
    "Nelson Mandela",
    "Danielle Casanova",
];

const LAB_NAMES: &[&str] = &[
    "Azur", "Ouest", "Alliance", "Santé", "Med", "Pôle", "Océan", "Vallée", "Avenir", "Lab",
    "Nord", "Sud", "Centre", "Est", "Plus", "Analyses", "Logic", "Path", "Cité", "Horizon",
    "Concept", "Sphère", "Nova", "Access", "Vie", "Medica",
];

const PHARMACY_NAMES: &[&str] = &[
    "Pharmacie de la Gare",
    "Pharmacie du Centre",
    "Pharmacie du Marché",
    "Pharmacie de la Mairie",
    "Pharmacie des Halles",
    "Pharmacie Pasteur",
    "Pharmacie du Port",
    "Pharmacie de l'Église",
    "Pharmacie Centrale",
    "Pharmacie des Arcades",
    "Pharmacie du Parc",
    "Pharmacie de la Place",
    "Pharmacie Saint-Michel",
    "Pharmacie des Écoles",
    "Pharmacie du Rond-Point",
    "Pharmacie de la Poste",
    "Pharmacie Victor Hugo",
    "Pharmacie des Tilleuls",
];

const CABINET_SUFFIXES: &[&str] = &[
    "du Parc",
    "des Tilleuls",
    "Pasteur",
    "de la Mairie",
    "du Centre",
    "de la Gare",
    "des Lilas",
    "Saint-Michel",
    "du Marché",
    "des Acacias",
    "Victor Hugo",
    "de l'Hôtel de Ville",
    "des Remparts",
    "du Château",
    "de la Place",
    "Jean Jaurès",
    "des Écoles",
    "du Port",
    "de la Fontaine",
    "République",
];

/// `NL4TYPEVOIE` codes, weighted.
const STREET_TYPES: &[(&str, u32)] = &[
    ("R", 45),
    ("AV", 18),
    ("BD", 9),
    ("PL", 5),
    ("CHE", 6),
    ("ALL", 5),
    ("IMP", 4),
    ("RTE", 5),
    ("QUAI", 3),
];

const STREET_NAMES: &[&str] = &[
    "de la République",
    "Victor Hugo",
    "du Général de Gaulle",
    "Pasteur",
    "Jean Jaurès",
    "de la Gare",
    "Gambetta",
    "du Maréchal Foch",
    "du Maréchal Leclerc",
    "de Verdun",
    "des Écoles",
    "de l'Église",
    "du Moulin",
    "de la Paix",
    "Carnot",
    "Émile Zola",
    "Voltaire",
    "de la Liberté",
    "Saint-Michel",
    "des Lilas",
    "du 8 Mai 1945",
    "du 11 Novembre 1918",
    "Anatole France",
    "Jules Ferry",
    "Aristide Briand",
    "Georges Clemenceau",
    "de Paris",
    "de la Mairie",
    "des Tilleuls",
    "du Stade",
    "Louis Pasteur",
    "d'Alsace-Lorraine",
    "de Strasbourg",
    "des Acacias",
    "du Château",
    "de la Fontaine",
    "Marcel Pagnol",
    "Jean Moulin",
    "du Docteur Schweitzer",
    "de l'Hôpital",
    "Saint-Jacques",
    "Paul Bert",
    "Lamartine",
    "Montaigne",
    "des Mimosas",
    "du Port",
    "de la Libération",
    "Pierre et Marie Curie",
    "du Docteur Roux",
    "des Peupliers",
    "de Bretagne",
    "du Commandant Charcot",
    "Albert Camus",
    "Simone Veil",
    "de la Croix Rouge",
    "des Anciens Combattants",
    "du Président Wilson",
    "Thiers",
    "Henri Dunant",
    "de la Poste",
    "des Jardins",
];

/// `L2COMPLEMENTLOCALISATION` values.
const COMPLEMENTS: &[&str] = &[
    "Bâtiment A",
    "Bâtiment B",
    "Bâtiment B, 3e étage",
    "3e étage",
    "2e étage",
    "Rez-de-chaussée",
    "Résidence les Pins",
    "Hall 2",
    "Porte 4",
    "Pavillon Pasteur",
    "Aile Nord",
    "Bâtiment C, 1er étage",
];

/// `L5LIEUDITMENTION` values.
const LOCALITIES: &[&str] = &[
    "Le Bourg",
    "Lieu-dit Kerlann",
    "ZA des Landes",
    "ZI Nord",
    "Parc d'activités du Moulin",
    "Quartier Saint-Roch",
    "Lieu-dit La Croix Blanche",
    "Hameau de la Forêt",
    "Technopôle Santé",
];

/// Stems of the long tail of family names (see [`tail_names`]).
const TAIL_STEMS: &[&str] = &[
    "Arn", "Aub", "Bach", "Band", "Barb", "Bard", "Bart", "Bass", "Baud", "Bell", "Berg", "Bern",
    "Berth", "Bess", "Biz", "Blanch", "Boiss", "Bonn", "Bosc", "Bouch", "Boud", "Boul", "Bourd",
    "Bout", "Brach", "Bret", "Bris", "Brouss", "Cab", "Cail", "Carr", "Cast", "Caz", "Chab",
    "Chal", "Champ", "Chap", "Charb", "Chass", "Chaud", "Chauv", "Chev", "Clav", "Coll", "Corn",
    "Coud", "Court", "Cros", "Daub", "Dauph", "Delm", "Desch", "Dom", "Dorm", "Drouill", "Dub",
    "Duch", "Esc", "Fab", "Fauch", "Fav", "Ferr", "Fleur", "Foug", "Fourn", "Fras", "Gab", "Gaill",
    "Garn", "Gasp", "Gauth", "Gerv", "Gill", "Gir", "Godd", "Goub", "Grang", "Grav", "Gren",
    "Grill", "Gros", "Guib", "Guill", "Jacqu", "Jard", "Jol", "Joub", "Jourd", "Lab", "Lach",
    "Lagr", "Lam", "Lanc", "Lap", "Lav", "Lecl", "Lem", "Mall", "Marc", "Mart", "Mass", "Maur",
    "Merc", "Mich", "Mill", "Mor", "Moul", "Pag", "Pasc", "Pell", "Perr", "Pich", "Pouj", "Prov",
    "Rab", "Rag", "Ran", "Rich", "Rig", "Riv", "Rob", "Roch", "Roll", "Roug", "Rouss", "Sab",
    "Sauv", "Serr", "Tall", "Tess", "Thib", "Thom", "Tourn", "Trich", "Vach", "Vaill", "Vall",
    "Vauch", "Verd", "Vign", "Vill", "Viv",
];

/// Endings of the long tail of family names.
const TAIL_ENDINGS: &[&str] = &[
    "ard", "aud", "eau", "el", "et", "ier", "in", "on", "ot", "oux", "ac", "as", "at", "and",
    "ert", "y", "ault", "ois", "ey", "aux", "elin", "eron", "illon", "onnet", "es", "erot", "inet",
    "ereau", "ouin", "ès",
];

/// Toponymic family names: first and second halves (`Beaumont`, `Montfort`, `Villeneuve`).
const TOPONYM_FIRSTS: &[&str] = &[
    "Beau", "Bon", "Belle", "Mont", "Val", "Ville", "Roche", "Font", "Champ", "Haut", "Grand",
    "Clair", "Mal", "Bel",
];
const TOPONYM_SECONDS: &[&str] = &[
    "mont", "champ", "fort", "lieu", "ville", "val", "court", "pré", "fond", "bois", "roche",
    "vert", "pierre", "fontaine", "marais", "chêne",
];

/// Family names with a rough frequency weight: common French names first, then names of Breton, Basque,
/// Alsatian, Portuguese, Spanish, Italian, North and West African, Vietnamese and other origins.
#[rustfmt::skip]
const LAST_NAMES: &[(&str, u32)] = &[
    ("Martin", 100), ("Bernard", 60), ("Thomas", 55), ("Petit", 50), ("Robert", 50), ("Richard", 48),
    ("Durand", 47), ("Dubois", 47), ("Moreau", 45), ("Laurent", 44), ("Simon", 43), ("Michel", 42),
    ("Lefebvre", 41), ("Leroy", 40), ("Roux", 38), ("David", 37), ("Bertrand", 36), ("Morel", 35),
    ("Fournier", 35), ("Girard", 34), ("Bonnet", 33), ("Dupont", 33), ("Lambert", 32), ("Fontaine", 31),
    ("Rousseau", 31), ("Vincent", 30), ("Muller", 30), ("Lefèvre", 29), ("Faure", 29), ("André", 28),
    ("Mercier", 28), ("Blanc", 27), ("Guérin", 27), ("Boyer", 26), ("Garnier", 26), ("Chevalier", 25),
    ("François", 25), ("Legrand", 25), ("Gauthier", 24), ("Garcia", 24), ("Perrin", 24), ("Robin", 23),
    ("Clément", 23), ("Morin", 23), ("Nicolas", 22), ("Henry", 22), ("Roussel", 22), ("Mathieu", 21),
    ("Gautier", 21), ("Masson", 21), ("Marchand", 20), ("Duval", 20), ("Denis", 20), ("Dumont", 20),
    ("Marie", 19), ("Lemaire", 19), ("Noël", 19), ("Meyer", 19), ("Dufour", 18), ("Meunier", 18),
    ("Brun", 18), ("Blanchard", 18), ("Giraud", 17), ("Joly", 17), ("Rivière", 17), ("Lucas", 17),
    ("Brunet", 17), ("Gaillard", 16), ("Barbier", 16), ("Arnaud", 16), ("Martinez", 16), ("Gérard", 16),
    ("Roche", 15), ("Renard", 15), ("Schmitt", 15), ("Roy", 15), ("Leroux", 15), ("Colin", 15),
    ("Vidal", 14), ("Caron", 14), ("Picard", 14), ("Roger", 14), ("Fabre", 14), ("Aubert", 14),
    ("Lemoine", 13), ("Renaud", 13), ("Dumas", 13), ("Lacroix", 13), ("Olivier", 13), ("Philippe", 13),
    ("Bourgeois", 12), ("Pierre", 12), ("Benoît", 12), ("Rey", 12), ("Leclerc", 12), ("Payet", 12),
    ("Rolland", 12), ("Leclercq", 11), ("Guillaume", 11), ("Lecomte", 11), ("Lopez", 11), ("Jean", 11),
    ("Dupuy", 11), ("Guillot", 11), ("Hubert", 11), ("Berger", 11), ("Carpentier", 10), ("Sanchez", 10),
    ("Dupuis", 10), ("Moulin", 10), ("Louis", 10), ("Deschamps", 10), ("Huet", 10), ("Vasseur", 10),
    ("Perez", 10), ("Boucher", 9), ("Fleury", 9), ("Royer", 9), ("Klein", 9), ("Jacquet", 9),
    ("Adam", 9), ("Paris", 9), ("Poirier", 9), ("Marty", 9), ("Aubry", 9), ("Guyot", 9), ("Carré", 9),
    ("Charles", 9), ("Renault", 8), ("Charpentier", 8), ("Ménard", 8), ("Maillard", 8), ("Baron", 8),
    ("Bertin", 8), ("Bailly", 8), ("Hervé", 8), ("Schneider", 8), ("Fernandez", 8), ("Collet", 8),
    ("Léger", 8), ("Bouvier", 8), ("Julien", 8), ("Prévost", 8), ("Millet", 8), ("Perrot", 7),
    ("Daniel", 7), ("Cousin", 7), ("Germain", 7), ("Breton", 7), ("Besson", 7), ("Langlois", 7),
    ("Rémy", 7), ("Pelletier", 7), ("Lévêque", 7), ("Perrier", 7), ("Leblanc", 7), ("Barré", 7),
    ("Lebrun", 7), ("Marchal", 7), ("Weber", 7), ("Mallet", 7), ("Hamon", 7), ("Boulanger", 7),
    ("Jacob", 7), ("Monnier", 7), ("Michaud", 7), ("Rodriguez", 7), ("Guichard", 6), ("Gillet", 6),
    ("Étienne", 6), ("Grondin", 6), ("Poulain", 6), ("Tessier", 6), ("Chevallier", 6), ("Collin", 6),
    ("Chauvin", 6), ("Bouchet", 6), ("Gay", 6), ("Lemaître", 6), ("Bénard", 6), ("Maréchal", 6),
    ("Humbert", 6), ("Reynaud", 6), ("Antoine", 6), ("Hoarau", 6), ("Perret", 6), ("Barthélemy", 6),
    ("Cordier", 6), ("Pichon", 6), ("Lejeune", 6), ("Gilbert", 6), ("Lamy", 6), ("Delaunay", 6),
    ("Pasquier", 6), ("Carlier", 6), ("Laporte", 6), ("Lacombe", 5), ("Bousquet", 5), ("Delmas", 5),
    ("Cazenave", 5), ("Hébert", 5), ("Dubreuil", 4), ("Vial", 4), ("Chabert", 4), ("Tardieu", 4),
    ("Favre", 4), ("Bonnin", 4), ("Brunel", 4), ("Pons", 4), ("Carrière", 4), ("Duhamel", 4),
    ("Delattre", 4), ("Lecoq", 4), ("Leconte", 4), ("Levasseur", 4), ("Lefort", 4), ("Delorme", 4),
    ("Sauvage", 4), ("Texier", 4), ("Besnard", 4), ("Ollivier", 4), ("Bouvet", 4), ("Jourdan", 4),
    ("Charrier", 4), ("Descamps", 4), ("Pruvost", 4), ("Desmoulins", 3), ("Rault", 3),
    // Breton
    ("Le Gall", 8), ("Le Goff", 7), ("Le Roux", 7), ("Le Bihan", 4), ("Le Floch", 4), ("Le Guen", 4),
    ("Tanguy", 4), ("Morvan", 4), ("Kerbrat", 3), ("Le Corre", 3), ("Guivarch", 3), ("Le Borgne", 3),
    ("Le Bris", 3), ("Quéméner", 3), ("Le Meur", 3), ("Le Cam", 3), ("Riou", 3), ("Le Bras", 3),
    ("Le Berre", 3), ("Cornec", 2), ("Le Du", 2), ("Kervella", 2), ("Le Hir", 2), ("Jaouen", 2),
    ("Le Moal", 2), ("Le Gac", 2),
    // Basque
    ("Etcheverry", 3), ("Etchegaray", 2), ("Iriarte", 2), ("Larralde", 2), ("Elissalde", 2),
    ("Bidegain", 2), ("Irigoyen", 2), ("Harispe", 1), ("Ospital", 1), ("Haramboure", 1),
    ("Mendiboure", 1), ("Goyhenetche", 1), ("Etchebarne", 1), ("Arrieta", 1), ("Urrutia", 1),
    ("Etxeberria", 1),
    // Alsatian and German
    ("Fischer", 5), ("Wagner", 5), ("Hoffmann", 4), ("Roth", 4), ("Schwartz", 4), ("Walter", 4),
    ("Wolff", 4), ("Kieffer", 3), ("Baumann", 3), ("Zimmermann", 3), ("Haas", 3), ("Koenig", 3),
    ("Herrmann", 3), ("Huber", 3), ("Bauer", 3), ("Lang", 3), ("Kuntz", 2), ("Ernst", 2), ("Wurtz", 2),
    ("Schaeffer", 2), ("Riegert", 1), ("Burckel", 1), ("Stoeckel", 1), ("Hertzog", 1), ("Ehrhart", 1),
    ("Schwoerer", 1),
    // Portuguese
    ("Da Silva", 9), ("Dos Santos", 7), ("Pereira", 6), ("Ferreira", 6), ("Rodrigues", 6),
    ("Fernandes", 6), ("Gonçalves", 5), ("Lopes", 5), ("Martins", 5), ("Oliveira", 5), ("Gomes", 5),
    ("Teixeira", 4), ("De Sousa", 4), ("Ribeiro", 4), ("Carvalho", 4), ("Pinto", 4), ("Marques", 4),
    ("Da Costa", 4), ("Alves", 4), ("Mendes", 4), ("Monteiro", 3), ("Cardoso", 3), ("Nunes", 3),
    ("Correia", 3), ("Dias", 3), ("Magalhães", 2), ("Araújo", 2), ("Conceição", 1), ("D'Almeida", 2),
    ("De Oliveira", 2),
    // Spanish and Italian
    ("Gonzalez", 5), ("Gomez", 4), ("Ruiz", 3), ("Hernandez", 3), ("Diaz", 3), ("Romero", 3),
    ("Moreno", 3), ("Navarro", 2), ("Jimenez", 2), ("Alvarez", 2), ("Torres", 2), ("Ramirez", 1),
    ("Castillo", 1), ("Ortega", 1), ("Russo", 3), ("Rossi", 3), ("Bruno", 3), ("Costa", 3),
    ("Ferrari", 2), ("Esposito", 2), ("Bianchi", 2), ("Romano", 2), ("Colombo", 2), ("Ricci", 2),
    ("Marino", 2), ("Greco", 2), ("Gallo", 2), ("Fontana", 2), ("Conti", 2), ("D'Angelo", 2),
    // North African
    ("Benali", 4), ("Haddad", 4), ("Belkacem", 3), ("Bouzid", 3), ("Saidi", 3), ("Mansouri", 3),
    ("Cherif", 3), ("Hamdi", 3), ("Brahimi", 3), ("Meziane", 3), ("Amrani", 3), ("Trabelsi", 3),
    ("Benaïssa", 2), ("Aït Ahmed", 2), ("Boudjemaa", 2), ("Khelifi", 2), ("Bensaïd", 2),
    ("El Amrani", 2), ("Benmoussa", 2), ("Ziani", 2), ("Hadjadj", 2), ("Boukhari", 2), ("Lahlou", 2),
    ("Bennani", 2), ("Tazi", 2), ("Ben Salah", 2), ("Ben Ammar", 2), ("Gharbi", 2), ("Kaci", 2),
    ("Ouali", 2), ("Hamidi", 2), ("Rahmani", 2), ("Bouaziz", 2), ("Messaoudi", 2), ("Taleb", 2),
    ("Kaddour", 2), ("El Idrissi", 2), ("Chaouch", 1), ("Jebali", 1), ("Zerrouki", 1), ("Djebbar", 1),
    ("Benjelloun", 1), ("Aït Ali", 1),
    // West African
    ("Diallo", 6), ("Traoré", 5), ("Camara", 5), ("N'Diaye", 4), ("Koné", 4), ("Coulibaly", 4),
    ("Diop", 4), ("Sow", 3), ("Ba", 3), ("Fall", 3), ("Keita", 3), ("Cissé", 3), ("Touré", 3),
    ("Barry", 3), ("Sy", 2), ("Sylla", 2), ("Bamba", 2), ("Kouassi", 2), ("Konaté", 2), ("Ouattara", 2),
    ("Diarra", 2), ("Sissoko", 2), ("Doumbia", 2), ("Mbaye", 2), ("Gueye", 2), ("Faye", 2), ("Seck", 2),
    ("Niang", 2), ("Kane", 2), ("N'Guessan", 2), ("Koffi", 2), ("Mendy", 2), ("Sarr", 2), ("Thiam", 2),
    ("Dembélé", 2), ("Fofana", 2), ("Sangaré", 2), ("Kanté", 2), ("Bah", 2), ("Baldé", 2), ("Yao", 1),
    ("Soumaré", 1), ("N'Doye", 1), ("M'Baye", 1),
    // Vietnamese and Chinese
    ("Nguyen", 8), ("Tran", 5), ("Le", 3), ("Pham", 3), ("Hoang", 2), ("Huynh", 2), ("Vu", 2),
    ("Vo", 2), ("Dang", 2), ("Ngo", 2), ("Ly", 2), ("Truong", 2), ("Lam", 2), ("Phan", 2), ("Bui", 1),
    ("Do", 1), ("Duong", 1), ("Dinh", 1), ("Chen", 2), ("Wang", 1), ("Zhang", 1), ("Lin", 1),
    ("Liu", 1),
    // Particles and apostrophes
    ("L'Hermite", 2), ("L'Huillier", 2), ("Lhomme", 2), ("Saint-Martin", 2),
    ("de La Tour d'Auvergne", 1), ("de Saint-Exupéry", 1), ("de La Fontaine", 1), ("du Bois", 1),
    ("de Villiers", 1), ("d'Aubigné", 1), ("de Lattre", 1), ("de Montalembert", 1), ("d'Harcourt", 1),
    ("de Beaumont", 1), ("de Laval", 1), ("Saint-Jean", 1), ("L'Hôte", 1),
    // Antilles and Réunion
    ("Técher", 3), ("Lebon", 3), ("Turpin", 3), ("Maillot", 2), ("Clain", 2), ("Nativel", 2),
    ("Dijoux", 2), ("Jean-Baptiste", 2), ("Jean-Louis", 2), ("Marie-Sainte", 1), ("Bellance", 1),
    ("Ursulet", 1),
    // Central European, Armenian, Turkish
    ("Kowalski", 2), ("Nowak", 2), ("Lewandowski", 1), ("Wojcik", 1), ("Kaminski", 1),
    ("Petrossian", 1), ("Manoukian", 1), ("Yilmaz", 3), ("Kaya", 2), ("Demir", 2), ("Şahin", 1),
    ("Çelik", 1), ("Öztürk", 1),
];

#[rustfmt::skip]
const FEMALE_NAMES: &[(&str, u32)] = &[
    ("Marie", 40), ("Nathalie", 30), ("Isabelle", 30), ("Sylvie", 25), ("Catherine", 25),
    ("Sophie", 25), ("Christine", 20), ("Valérie", 22), ("Sandrine", 22), ("Stéphanie", 22),
    ("Céline", 22), ("Julie", 22), ("Véronique", 18), ("Aurélie", 20), ("Émilie", 20), ("Camille", 20),
    ("Claire", 18), ("Anne", 18), ("Laura", 15), ("Sarah", 16), ("Pauline", 16), ("Caroline", 16),
    ("Virginie", 16), ("Audrey", 16), ("Élodie", 15), ("Mélanie", 15), ("Hélène", 14), ("Florence", 14),
    ("Karine", 14), ("Delphine", 14), ("Cécile", 14), ("Laetitia", 13), ("Patricia", 12),
    ("Martine", 12), ("Françoise", 12), ("Laurence", 12), ("Chloé", 12), ("Léa", 12), ("Manon", 12),
    ("Lucie", 12), ("Mathilde", 12), ("Charlotte", 12), ("Marion", 12), ("Brigitte", 10), ("Agnès", 10),
    ("Corinne", 10), ("Margaux", 10), ("Juliette", 10), ("Alice", 10), ("Clémence", 10), ("Amélie", 10),
    ("Justine", 10), ("Anaïs", 10), ("Séverine", 10), ("Carole", 10), ("Béatrice", 9),
    ("Anne-Sophie", 9), ("Chantal", 8), ("Dominique", 8), ("Clara", 8), ("Inès", 8), ("Zoé", 8),
    ("Morgane", 8), ("Gaëlle", 8), ("Emma", 8), ("Noémie", 8), ("Coralie", 8), ("Jessica", 8),
    ("Emmanuelle", 8), ("Pascale", 8), ("Laure", 8), ("Estelle", 8), ("Vanessa", 8), ("Fanny", 8),
    ("Magali", 8), ("Sabine", 8), ("Sandra", 8), ("Anne-Laure", 7), ("Élise", 7), ("Muriel", 7),
    ("Monique", 6), ("Nicole", 6), ("Marie-Hélène", 6), ("Marie-Christine", 6), ("Anne-Marie", 6),
    ("Océane", 6), ("Fatima", 6), ("Nadia", 6), ("Sabrina", 6), ("Myriam", 6), ("Maria", 6),
    ("Sonia", 6), ("Louise", 6), ("Eva", 6), ("Solène", 6), ("Elsa", 6), ("Frédérique", 6),
    ("Bénédicte", 6), ("Leïla", 5), ("Yasmine", 5), ("Jade", 5), ("Lina", 5), ("Romane", 5),
    ("Déborah", 5), ("Marianne", 5), ("Nadège", 5), ("Marie-Claire", 4), ("Maëlle", 4), ("Nolwenn", 4),
    ("Samia", 4), ("Yasmina", 4), ("Malika", 4), ("Karima", 4), ("Ana", 4), ("Carla", 4), ("Nina", 4),
    ("Mireille", 4), ("Danielle", 4), ("Annick", 4), ("Armelle", 4), ("Héloïse", 4),
    ("Marie-Noëlle", 3), ("Gwendoline", 3), ("Naïma", 3), ("Souad", 3), ("Amel", 3), ("Farida", 3),
    ("Meriem", 3), ("Aminata", 3), ("Fatoumata", 3), ("Aïssatou", 3), ("Awa", 3), ("Mai", 3),
    ("Éléonore", 3), ("Odile", 3), ("Geneviève", 3), ("Jacqueline", 3), ("Ségolène", 3),
    ("Blandine", 3), ("Capucine", 3), ("Constance", 3), ("Bérénice", 3), ("Gwenaëlle", 3),
    ("Soizic", 2), ("Katell", 2), ("Maïwenn", 2), ("Anne-Gaëlle", 2), ("Maïté", 2), ("Salma", 2),
    ("Kadiatou", 2), ("Mariama", 2), ("Fernanda", 2), ("Linh", 2), ("Lan", 2), ("Bernadette", 2),
    ("Ghislaine", 2), ("Josiane", 2), ("Victoire", 2), ("Apolline", 2), ("Ainhoa", 1), ("Amaia", 1),
    ("Conceição", 1), ("Thu", 1), ("Hoa", 1), ("Ngoc", 1),
];

#[rustfmt::skip]
const MALE_NAMES: &[(&str, u32)] = &[
    ("Nicolas", 30), ("Jean", 25), ("Pierre", 25), ("Philippe", 25), ("Christophe", 25), ("Thomas", 25),
    ("Stéphane", 22), ("Laurent", 22), ("Frédéric", 22), ("Olivier", 22), ("Sébastien", 22),
    ("Julien", 22), ("Alexandre", 22), ("Antoine", 22), ("Éric", 20), ("David", 20), ("Guillaume", 20),
    ("François", 18), ("Maxime", 18), ("Vincent", 18), ("Romain", 16), ("Jérôme", 16), ("Michel", 15),
    ("Alain", 15), ("Patrick", 15), ("Thierry", 15), ("Mathieu", 14), ("Benoît", 14), ("Marc", 14),
    ("Paul", 14), ("Lucas", 14), ("Clément", 14), ("Benjamin", 14), ("Arnaud", 12), ("Cédric", 12),
    ("Fabrice", 12), ("Bruno", 12), ("Pascal", 12), ("Louis", 12), ("Hugo", 12), ("Adrien", 12),
    ("Quentin", 12), ("Florian", 12), ("Damien", 12), ("Emmanuel", 12), ("Franck", 10), ("Didier", 10),
    ("Gilles", 10), ("Xavier", 10), ("Hervé", 10), ("Christian", 10), ("Théo", 10), ("Kévin", 10),
    ("Jonathan", 10), ("Anthony", 10), ("Jérémy", 10), ("Cyril", 10), ("Grégory", 10), ("Samuel", 10),
    ("Raphaël", 10), ("Baptiste", 10), ("Valentin", 10), ("Jean-Pierre", 10), ("Jean-François", 10),
    ("Loïc", 10), ("Mohamed", 10), ("Aurélien", 10), ("Sylvain", 10), ("Fabien", 10), ("Bernard", 8),
    ("Daniel", 8), ("Jacques", 8), ("Yves", 8), ("Ludovic", 8), ("Gabriel", 8), ("Arthur", 8),
    ("Victor", 8), ("Simon", 8), ("Étienne", 8), ("Jean-Michel", 8), ("Jean-Luc", 8), ("Jean-Marc", 8),
    ("Jean-Baptiste", 8), ("Yann", 8), ("Karim", 8), ("Mehdi", 8), ("Nathan", 8), ("Léo", 8),
    ("Matthieu", 8), ("Rémi", 8), ("Charles", 8), ("Dominique", 6), ("Martin", 6), ("Jean-Philippe", 6),
    ("Jean-Christophe", 6), ("Jean-Claude", 6), ("Erwan", 6), ("Yannick", 6), ("Gaël", 6), ("Samir", 6),
    ("Rachid", 6), ("Sofiane", 6), ("Amine", 6), ("José", 6), ("Enzo", 6), ("Lionel", 6),
    ("Pierre-Yves", 5), ("Jean-Paul", 5), ("Nabil", 5), ("Farid", 5), ("Yacine", 5), ("Youssef", 5),
    ("Mamadou", 5), ("Manuel", 5), ("Bertrand", 5), ("Henri", 5), ("Marc-Antoine", 4),
    ("Pierre-Louis", 4), ("Gwenaël", 4), ("Ronan", 4), ("Maël", 4), ("Nassim", 4), ("Hicham", 4),
    ("Moussa", 4), ("Abdoulaye", 4), ("Antonio", 4), ("Carlos", 4), ("Dylan", 4), ("Joël", 4),
    ("Jean-Jacques", 4), ("Timothée", 4), ("Augustin", 4), ("Grégoire", 4), ("François-Xavier", 4),
    ("Gérard", 4), ("Serge", 4), ("André", 4), ("Jean-Éric", 3), ("Tanguy", 3), ("Djamel", 3),
    ("Khalid", 3), ("Saïd", 3), ("Bilal", 3), ("Ousmane", 3), ("Ibrahima", 3), ("Amadou", 3),
    ("Paulo", 3), ("Fernando", 3), ("Noé", 3), ("Hadrien", 3), ("Hugues", 3), ("Gautier", 3),
    ("René", 3), ("Brieuc", 2), ("Seydou", 2), ("Cheikh", 2), ("Boubacar", 2), ("Issa", 2), ("João", 2),
    ("Joaquim", 2), ("Minh", 2), ("Tuan", 2), ("Thanh", 2), ("Duc", 2), ("Noël", 2), ("Armand", 2),
    ("Roger", 2), ("Goulven", 1), ("Iñaki", 1), ("Peio", 1), ("Xabi", 1), ("Beñat", 1), ("Iker", 1),
    ("Mikel", 1), ("Quang", 1), ("Hung", 1),
];

struct City {
    /// Name as written in prose (`Saint-Étienne`); the delivery line uses it folded and upper-cased.
    name: &'static str,
    /// Relative weight inside its department (about the population in 10 000s).
    weight: u32,
    /// Its postal codes (one per arrondissement or district for big cities).
    postal: &'static [&'static str],
    /// University hospital of the city: name and domain label.
    chu: Option<(&'static str, &'static str)>,
}

struct Dept {
    code: &'static str,
    /// Population in 10 000s (Paris raised for its density of health professionals).
    weight: u32,
    /// Region slug for regional operator domains.
    region: &'static str,
    /// Prefecture first, then the main cities.
    cities: &'static [City],
}

macro_rules! city {
    ($name:expr, $w:expr, [$($pc:expr),+ $(,)?]) => {
        City { name: $name, weight: $w, postal: &[$($pc),+], chu: None }
    };
    ($name:expr, $w:expr, [$($pc:expr),+ $(,)?], $chu:expr, $label:expr) => {
        City { name: $name, weight: $w, postal: &[$($pc),+], chu: Some(($chu, $label)) }
    };
}

macro_rules! dept {
    ($code:expr, $w:expr, $region:expr, [$($city:expr),+ $(,)?]) => {
        Dept { code: $code, weight: $w, region: $region, cities: &[$($city),+] }
    };
}

#[rustfmt::skip]
const DEPARTMENTS: &[Dept] = &[
    dept!("01", 66, "ara", [
        city!("Bourg-en-Bresse", 5, ["01000"]),
        city!("Oyonnax", 2, ["01100"]),
        city!("Ambérieu-en-Bugey", 1, ["01500"]),
    ]),
    dept!("02", 53, "hauts-de-france", [
        city!("Laon", 2, ["02000"]),
        city!("Saint-Quentin", 5, ["02100"]),
        city!("Soissons", 3, ["02200"]),
        city!("Château-Thierry", 1, ["02400"]),
    ]),
    dept!("03", 33, "ara", [
        city!("Moulins", 2, ["03000"]),
        city!("Montluçon", 4, ["03100"]),
        city!("Vichy", 3, ["03200"]),
    ]),
    dept!("04", 17, "paca", [
        city!("Digne-les-Bains", 2, ["04000"]),
        city!("Manosque", 2, ["04100"]),
        city!("Sisteron", 1, ["04200"]),
    ]),
    dept!("05", 14, "paca", [
        city!("Gap", 4, ["05000"]),
        city!("Briançon", 1, ["05100"]),
        city!("Embrun", 1, ["05200"]),
    ]),
    dept!("06", 109, "paca", [
        city!("Nice", 34, ["06000", "06100", "06200", "06300"], "CHU de Nice", "chu-nice"),
        city!("Cannes", 7, ["06400"]),
        city!("Antibes", 7, ["06600"]),
        city!("Grasse", 5, ["06130"]),
        city!("Menton", 3, ["06500"]),
        city!("Cagnes-sur-Mer", 5, ["06800"]),
    ]),
    dept!("07", 33, "ara", [
        city!("Privas", 1, ["07000"]),
        city!("Aubenas", 2, ["07200"]),
        city!("Annonay", 2, ["07100"]),
        city!("Tournon-sur-Rhône", 1, ["07300"]),
    ]),
    dept!("08", 27, "grand-est", [
        city!("Charleville-Mézières", 5, ["08000"]),
        city!("Sedan", 2, ["08200"]),
        city!("Rethel", 1, ["08300"]),
    ]),
    dept!("09", 15, "occitanie", [
        city!("Foix", 1, ["09000"]),
        city!("Pamiers", 2, ["09100"]),
        city!("Saint-Girons", 1, ["09200"]),
    ]),
    dept!("10", 31, "grand-est", [
        city!("Troyes", 6, ["10000"]),
        city!("Romilly-sur-Seine", 1, ["10100"]),
        city!("Bar-sur-Aube", 1, ["10200"]),
    ]),
    dept!("11", 37, "occitanie", [
        city!("Carcassonne", 4, ["11000"]),
        city!("Narbonne", 5, ["11100"]),
        city!("Castelnaudary", 1, ["11400"]),
        city!("Limoux", 1, ["11300"]),
    ]),
    dept!("12", 28, "occitanie", [
        city!("Rodez", 2, ["12000"]),
        city!("Millau", 2, ["12100"]),
        city!("Villefranche-de-Rouergue", 1, ["12200"]),
        city!("Decazeville", 1, ["12300"]),
    ]),
    dept!("13", 205, "paca", [
        city!("Marseille", 87, [
            "13001", "13002", "13003", "13004", "13005", "13006", "13007", "13008", "13009", "13010",
            "13011", "13012", "13013", "13014", "13015", "13016",
        ], "Assistance Publique - Hôpitaux de Marseille", "ap-hm"),
        city!("Aix-en-Provence", 15, ["13090", "13100"]),
        city!("Arles", 5, ["13200"]),
        city!("Martigues", 5, ["13500"]),
        city!("Aubagne", 5, ["13400"]),
        city!("Salon-de-Provence", 4, ["13300"]),
        city!("Istres", 4, ["13800"]),
        city!("La Ciotat", 3, ["13600"]),
        city!("Vitrolles", 3, ["13127"]),
    ]),
    dept!("14", 70, "normandie", [
        city!("Caen", 11, ["14000"], "CHU de Caen Normandie", "chu-caen"),
        city!("Lisieux", 2, ["14100"]),
        city!("Bayeux", 1, ["14400"]),
        city!("Hérouville-Saint-Clair", 2, ["14200"]),
        city!("Vire Normandie", 1, ["14500"]),
        city!("Honfleur", 1, ["14600"]),
    ]),
    dept!("15", 14, "ara", [
        city!("Aurillac", 3, ["15000"]),
        city!("Saint-Flour", 1, ["15100"]),
        city!("Mauriac", 1, ["15200"]),
    ]),
    dept!("16", 35, "nouvelle-aquitaine", [
        city!("Angoulême", 4, ["16000"]),
        city!("Cognac", 2, ["16100"]),
        city!("Soyaux", 1, ["16800"]),
    ]),
    dept!("17", 66, "nouvelle-aquitaine", [
        city!("La Rochelle", 8, ["17000"]),
        city!("Saintes", 3, ["17100"]),
        city!("Rochefort", 2, ["17300"]),
        city!("Royan", 2, ["17200"]),
        city!("Jonzac", 1, ["17500"]),
    ]),
    dept!("18", 30, "centre-val-de-loire", [
        city!("Bourges", 6, ["18000"]),
        city!("Vierzon", 3, ["18100"]),
        city!("Saint-Amand-Montrond", 1, ["18200"]),
    ]),
    dept!("19", 24, "nouvelle-aquitaine", [
        city!("Tulle", 2, ["19000"]),
        city!("Brive-la-Gaillarde", 5, ["19100"]),
        city!("Ussel", 1, ["19200"]),
    ]),
    dept!("2A", 16, "corse", [
        city!("Ajaccio", 7, ["20000", "20090"]),
        city!("Porto-Vecchio", 1, ["20137"]),
        city!("Sartène", 1, ["20100"]),
        city!("Propriano", 1, ["20110"]),
    ]),
    dept!("2B", 18, "corse", [
        city!("Bastia", 5, ["20200", "20600"]),
        city!("Corte", 1, ["20250"]),
        city!("Calvi", 1, ["20260"]),
        city!("L'Île-Rousse", 1, ["20220"]),
    ]),
    dept!("21", 53, "bfc", [
        city!("Dijon", 16, ["21000"], "CHU Dijon Bourgogne", "chu-dijon"),
        city!("Beaune", 2, ["21200"]),
        city!("Montbard", 1, ["21500"]),
        city!("Chenôve", 1, ["21300"]),
    ]),
    dept!("22", 60, "bretagne", [
        city!("Saint-Brieuc", 4, ["22000"]),
        city!("Lannion", 2, ["22300"]),
        city!("Dinan", 2, ["22100"]),
        city!("Guingamp", 1, ["22200"]),
        city!("Loudéac", 1, ["22600"]),
    ]),
    dept!("23", 12, "nouvelle-aquitaine", [
        city!("Guéret", 1, ["23000"]),
        city!("Aubusson", 1, ["23200"]),
        city!("La Souterraine", 1, ["23300"]),
    ]),
    dept!("24", 41, "nouvelle-aquitaine", [
        city!("Périgueux", 3, ["24000"]),
        city!("Bergerac", 3, ["24100"]),
        city!("Sarlat-la-Canéda", 1, ["24200"]),
    ]),
    dept!("25", 54, "bfc", [
        city!("Besançon", 12, ["25000"], "CHU de Besançon", "chu-besancon"),
        city!("Montbéliard", 3, ["25200"]),
        city!("Pontarlier", 2, ["25300"]),
        city!("Audincourt", 1, ["25400"]),
    ]),
    dept!("26", 52, "ara", [
        city!("Valence", 6, ["26000"]),
        city!("Montélimar", 4, ["26200"]),
        city!("Romans-sur-Isère", 3, ["26100"]),
        city!("Pierrelatte", 1, ["26700"]),
    ]),
    dept!("27", 60, "normandie", [
        city!("Évreux", 5, ["27000"]),
        city!("Vernon", 2, ["27200"]),
        city!("Louviers", 2, ["27400"]),
        city!("Bernay", 1, ["27300"]),
    ]),
    dept!("28", 43, "centre-val-de-loire", [
        city!("Chartres", 4, ["28000"]),
        city!("Dreux", 3, ["28100"]),
        city!("Châteaudun", 1, ["28200"]),
    ]),
    dept!("29", 92, "bretagne", [
        city!("Quimper", 6, ["29000"]),
        city!("Brest", 14, ["29200"], "CHU de Brest", "chu-brest"),
        city!("Morlaix", 1, ["29600"]),
        city!("Concarneau", 1, ["29900"]),
        city!("Quimperlé", 1, ["29300"]),
        city!("Landerneau", 1, ["29800"]),
    ]),
    dept!("30", 75, "occitanie", [
        city!("Nîmes", 15, ["30000", "30900"], "CHU de Nîmes", "chu-nimes"),
        city!("Alès", 4, ["30100"]),
        city!("Bagnols-sur-Cèze", 2, ["30200"]),
        city!("Beaucaire", 1, ["30300"]),
    ]),
    dept!("31", 142, "occitanie", [
        city!("Toulouse", 50, ["31000", "31100", "31200", "31300", "31400", "31500"],
            "CHU de Toulouse", "chu-toulouse"),
        city!("Colomiers", 4, ["31770"]),
        city!("Muret", 2, ["31600"]),
        city!("Saint-Gaudens", 1, ["31800"]),
        city!("Blagnac", 2, ["31700"]),
        city!("Tournefeuille", 3, ["31170"]),
    ]),
    dept!("32", 19, "occitanie", [
        city!("Auch", 2, ["32000"]),
        city!("Condom", 1, ["32100"]),
        city!("L'Isle-Jourdain", 1, ["32600"]),
    ]),
    dept!("33", 164, "nouvelle-aquitaine", [
        city!("Bordeaux", 26, ["33000", "33100", "33200", "33300", "33800"],
            "CHU de Bordeaux", "chu-bordeaux"),
        city!("Mérignac", 7, ["33700"]),
        city!("Pessac", 6, ["33600"]),
        city!("Talence", 4, ["33400"]),
        city!("Libourne", 2, ["33500"]),
        city!("Arcachon", 1, ["33120"]),
        city!("Bègles", 3, ["33130"]),
    ]),
    dept!("34", 118, "occitanie", [
        city!("Montpellier", 30, ["34000", "34070", "34080", "34090"],
            "CHU de Montpellier", "chu-montpellier"),
        city!("Béziers", 8, ["34500"]),
        city!("Sète", 4, ["34200"]),
        city!("Lunel", 3, ["34400"]),
        city!("Agde", 3, ["34300"]),
    ]),
    dept!("35", 109, "bretagne", [
        city!("Rennes", 22, ["35000", "35200", "35700"], "CHU de Rennes", "chu-rennes"),
        city!("Saint-Malo", 5, ["35400"]),
        city!("Fougères", 2, ["35300"]),
        city!("Vitré", 2, ["35500"]),
        city!("Redon", 1, ["35600"]),
    ]),
    dept!("36", 22, "centre-val-de-loire", [
        city!("Châteauroux", 4, ["36000"]),
        city!("Issoudun", 1, ["36100"]),
        city!("Le Blanc", 1, ["36300"]),
    ]),
    dept!("37", 61, "centre-val-de-loire", [
        city!("Tours", 14, ["37000", "37100", "37200"], "CHRU de Tours", "chu-tours"),
        city!("Joué-lès-Tours", 4, ["37300"]),
        city!("Amboise", 1, ["37400"]),
        city!("Chinon", 1, ["37500"]),
        city!("Loches", 1, ["37600"]),
    ]),
    dept!("38", 127, "ara", [
        city!("Grenoble", 16, ["38000", "38100"], "CHU Grenoble Alpes", "chu-grenoble"),
        city!("Échirolles", 4, ["38130"]),
        city!("Vienne", 3, ["38200"]),
        city!("Bourgoin-Jallieu", 3, ["38300"]),
        city!("Voiron", 2, ["38500"]),
        city!("Saint-Martin-d'Hères", 4, ["38400"]),
    ]),
    dept!("39", 26, "bfc", [
        city!("Lons-le-Saunier", 2, ["39000"]),
        city!("Dole", 2, ["39100"]),
        city!("Saint-Claude", 1, ["39200"]),
    ]),
    dept!("40", 42, "nouvelle-aquitaine", [
        city!("Mont-de-Marsan", 3, ["40000"]),
        city!("Dax", 2, ["40100"]),
        city!("Biscarrosse", 1, ["40600"]),
    ]),
    dept!("41", 33, "centre-val-de-loire", [
        city!("Blois", 5, ["41000"]),
        city!("Vendôme", 2, ["41100"]),
        city!("Romorantin-Lanthenay", 2, ["41200"]),
    ]),
    dept!("42", 77, "ara", [
        city!("Saint-Étienne", 17, ["42000", "42100"], "CHU de Saint-Étienne", "chu-saint-etienne"),
        city!("Roanne", 3, ["42300"]),
        city!("Montbrison", 2, ["42600"]),
        city!("Firminy", 2, ["42700"]),
    ]),
    dept!("43", 23, "ara", [
        city!("Le Puy-en-Velay", 2, ["43000"]),
        city!("Yssingeaux", 1, ["43200"]),
        city!("Brioude", 1, ["43100"]),
    ]),
    dept!("44", 144, "pays-de-la-loire", [
        city!("Nantes", 32, ["44000", "44100", "44200", "44300"], "CHU de Nantes", "chu-nantes"),
        city!("Saint-Nazaire", 7, ["44600"]),
        city!("Rezé", 4, ["44400"]),
        city!("Saint-Herblain", 5, ["44800"]),
        city!("Châteaubriant", 1, ["44110"]),
    ]),
    dept!("45", 68, "centre-val-de-loire", [
        city!("Orléans", 12, ["45000", "45100"], "CHU d'Orléans", "chu-orleans"),
        city!("Montargis", 2, ["45200"]),
        city!("Gien", 1, ["45500"]),
        city!("Pithiviers", 1, ["45300"]),
    ]),
    dept!("46", 17, "occitanie", [
        city!("Cahors", 2, ["46000"]),
        city!("Figeac", 1, ["46100"]),
        city!("Gourdon", 1, ["46300"]),
    ]),
    dept!("47", 33, "nouvelle-aquitaine", [
        city!("Agen", 3, ["47000"]),
        city!("Villeneuve-sur-Lot", 2, ["47300"]),
        city!("Marmande", 2, ["47200"]),
    ]),
    dept!("48", 8, "occitanie", [
        city!("Mende", 1, ["48000"]),
        city!("Marvejols", 1, ["48100"]),
    ]),
    dept!("49", 82, "pays-de-la-loire", [
        city!("Angers", 15, ["49000", "49100"], "CHU d'Angers", "chu-angers"),
        city!("Cholet", 5, ["49300"]),
        city!("Saumur", 3, ["49400"]),
    ]),
    dept!("50", 50, "normandie", [
        city!("Saint-Lô", 2, ["50000"]),
        city!("Cherbourg-en-Cotentin", 8, ["50100"]),
        city!("Granville", 1, ["50400"]),
        city!("Avranches", 1, ["50300"]),
        city!("Coutances", 1, ["50200"]),
    ]),
    dept!("51", 57, "grand-est", [
        city!("Châlons-en-Champagne", 4, ["51000"]),
        city!("Reims", 18, ["51100"], "CHU de Reims", "chu-reims"),
        city!("Épernay", 2, ["51200"]),
        city!("Vitry-le-François", 1, ["51300"]),
    ]),
    dept!("52", 17, "grand-est", [
        city!("Chaumont", 2, ["52000"]),
        city!("Saint-Dizier", 2, ["52100"]),
        city!("Langres", 1, ["52200"]),
    ]),
    dept!("53", 31, "pays-de-la-loire", [
        city!("Laval", 5, ["53000"]),
        city!("Mayenne", 1, ["53100"]),
        city!("Château-Gontier-sur-Mayenne", 1, ["53200"]),
    ]),
    dept!("54", 73, "grand-est", [
        city!("Nancy", 10, ["54000", "54100"], "CHRU de Nancy", "chu-nancy"),
        city!("Vandœuvre-lès-Nancy", 3, ["54500"]),
        city!("Lunéville", 2, ["54300"]),
        city!("Toul", 1, ["54200"]),
        city!("Longwy", 1, ["54400"]),
    ]),
    dept!("55", 18, "grand-est", [
        city!("Bar-le-Duc", 1, ["55000"]),
        city!("Verdun", 2, ["55100"]),
        city!("Commercy", 1, ["55200"]),
    ]),
    dept!("56", 76, "bretagne", [
        city!("Vannes", 5, ["56000"]),
        city!("Lorient", 6, ["56100"]),
        city!("Pontivy", 1, ["56300"]),
        city!("Auray", 1, ["56400"]),
        city!("Lanester", 2, ["56600"]),
    ]),
    dept!("57", 104, "grand-est", [
        city!("Metz", 12, ["57000", "57050", "57070"]),
        city!("Thionville", 4, ["57100"]),
        city!("Forbach", 2, ["57600"]),
        city!("Sarreguemines", 2, ["57200"]),
        city!("Sarrebourg", 1, ["57400"]),
    ]),
    dept!("58", 20, "bfc", [
        city!("Nevers", 3, ["58000"]),
        city!("Cosne-Cours-sur-Loire", 1, ["58200"]),
        city!("Decize", 1, ["58300"]),
    ]),
    dept!("59", 261, "hauts-de-france", [
        city!("Lille", 23, ["59000", "59160", "59260", "59800"], "CHU de Lille", "chu-lille"),
        city!("Roubaix", 10, ["59100"]),
        city!("Tourcoing", 10, ["59200"]),
        city!("Dunkerque", 9, ["59140", "59240", "59640"]),
        city!("Valenciennes", 4, ["59300"]),
        city!("Douai", 4, ["59500"]),
        city!("Villeneuve-d'Ascq", 6, ["59650"]),
        city!("Cambrai", 3, ["59400"]),
        city!("Maubeuge", 3, ["59600"]),
        city!("Armentières", 2, ["59280"]),
    ]),
    dept!("60", 83, "hauts-de-france", [
        city!("Beauvais", 6, ["60000"]),
        city!("Compiègne", 4, ["60200"]),
        city!("Creil", 4, ["60100"]),
        city!("Senlis", 1, ["60300"]),
        city!("Noyon", 1, ["60400"]),
    ]),
    dept!("61", 28, "normandie", [
        city!("Alençon", 3, ["61000"]),
        city!("Flers", 2, ["61100"]),
        city!("Argentan", 1, ["61200"]),
        city!("L'Aigle", 1, ["61300"]),
    ]),
    dept!("62", 146, "hauts-de-france", [
        city!("Arras", 4, ["62000"]),
        city!("Calais", 7, ["62100"]),
        city!("Boulogne-sur-Mer", 4, ["62200"]),
        city!("Lens", 3, ["62300"]),
        city!("Béthune", 3, ["62400"]),
        city!("Saint-Omer", 1, ["62500"]),
        city!("Liévin", 3, ["62800"]),
        city!("Hénin-Beaumont", 3, ["62110"]),
    ]),
    dept!("63", 66, "ara", [
        city!("Clermont-Ferrand", 15, ["63000", "63100"],
            "CHU de Clermont-Ferrand", "chu-clermont-ferrand"),
        city!("Riom", 2, ["63200"]),
        city!("Thiers", 1, ["63300"]),
        city!("Issoire", 1, ["63500"]),
        city!("Cournon-d'Auvergne", 2, ["63800"]),
    ]),
    dept!("64", 68, "nouvelle-aquitaine", [
        city!("Pau", 8, ["64000"]),
        city!("Bayonne", 5, ["64100"]),
        city!("Biarritz", 3, ["64200"]),
        city!("Anglet", 4, ["64600"]),
        city!("Saint-Jean-de-Luz", 1, ["64500"]),
        city!("Oloron-Sainte-Marie", 1, ["64400"]),
    ]),
    dept!("65", 23, "occitanie", [
        city!("Tarbes", 4, ["65000"]),
        city!("Lourdes", 1, ["65100"]),
        city!("Bagnères-de-Bigorre", 1, ["65200"]),
    ]),
    dept!("66", 48, "occitanie", [
        city!("Perpignan", 12, ["66000", "66100"]),
        city!("Céret", 1, ["66400"]),
        city!("Canet-en-Roussillon", 1, ["66140"]),
        city!("Prades", 1, ["66500"]),
    ]),
    dept!("67", 114, "grand-est", [
        city!("Strasbourg", 29, ["67000", "67100", "67200"],
            "Hôpitaux Universitaires de Strasbourg", "chru-strasbourg"),
        city!("Haguenau", 3, ["67500"]),
        city!("Sélestat", 2, ["67600"]),
        city!("Saverne", 1, ["67700"]),
        city!("Schiltigheim", 3, ["67300"]),
        city!("Illkirch-Graffenstaden", 3, ["67400"]),
    ]),
    dept!("68", 77, "grand-est", [
        city!("Colmar", 7, ["68000"]),
        city!("Mulhouse", 11, ["68100", "68200"]),
        city!("Saint-Louis", 2, ["68300"]),
        city!("Guebwiller", 1, ["68500"]),
        city!("Altkirch", 1, ["68130"]),
    ]),
    dept!("69", 187, "ara", [
        city!("Lyon", 52, [
            "69001", "69002", "69003", "69004", "69005", "69006", "69007", "69008", "69009",
        ], "Hospices Civils de Lyon", "chu-lyon"),
        city!("Villeurbanne", 15, ["69100"]),
        city!("Vénissieux", 7, ["69200"]),
        city!("Villefranche-sur-Saône", 4, ["69400"]),
        city!("Bron", 4, ["69500"]),
        city!("Caluire-et-Cuire", 4, ["69300"]),
        city!("Saint-Priest", 4, ["69800"]),
    ]),
    dept!("70", 23, "bfc", [
        city!("Vesoul", 2, ["70000"]),
        city!("Lure", 1, ["70200"]),
        city!("Gray", 1, ["70100"]),
    ]),
    dept!("71", 55, "bfc", [
        city!("Mâcon", 3, ["71000"]),
        city!("Chalon-sur-Saône", 4, ["71100"]),
        city!("Le Creusot", 2, ["71200"]),
        city!("Montceau-les-Mines", 2, ["71300"]),
        city!("Autun", 1, ["71400"]),
        city!("Paray-le-Monial", 1, ["71600"]),
    ]),
    dept!("72", 57, "pays-de-la-loire", [
        city!("Le Mans", 14, ["72000", "72100"]),
        city!("La Flèche", 1, ["72200"]),
        city!("Sablé-sur-Sarthe", 1, ["72300"]),
    ]),
    dept!("73", 44, "ara", [
        city!("Chambéry", 6, ["73000"]),
        city!("Aix-les-Bains", 3, ["73100"]),
        city!("Albertville", 2, ["73200"]),
        city!("Saint-Jean-de-Maurienne", 1, ["73300"]),
    ]),
    dept!("74", 83, "ara", [
        city!("Annecy", 13, ["74000"]),
        city!("Annemasse", 4, ["74100"]),
        city!("Thonon-les-Bains", 4, ["74200"]),
        city!("Cluses", 2, ["74300"]),
        city!("Sallanches", 2, ["74700"]),
    ]),
    dept!("75", 320, "idf", [
        city!("Paris", 1, [
            "75001", "75002", "75003", "75004", "75005", "75006", "75007", "75008", "75009", "75010",
            "75011", "75012", "75013", "75014", "75015", "75016", "75017", "75018", "75019", "75020",
            "75116",
        ], "Assistance Publique - Hôpitaux de Paris", "aphp"),
    ]),
    dept!("76", 125, "normandie", [
        city!("Rouen", 11, ["76000", "76100"], "CHU de Rouen", "chu-rouen"),
        city!("Le Havre", 17, ["76600", "76610", "76620"]),
        city!("Dieppe", 3, ["76200"]),
        city!("Elbeuf", 2, ["76500"]),
        city!("Fécamp", 2, ["76400"]),
        city!("Saint-Étienne-du-Rouvray", 3, ["76800"]),
    ]),
    dept!("77", 142, "idf", [
        city!("Melun", 4, ["77000"]),
        city!("Meaux", 6, ["77100"]),
        city!("Chelles", 5, ["77500"]),
        city!("Fontainebleau", 2, ["77300"]),
        city!("Pontault-Combault", 4, ["77340"]),
        city!("Coulommiers", 1, ["77120"]),
        city!("Provins", 1, ["77160"]),
        city!("Lagny-sur-Marne", 2, ["77400"]),
    ]),
    dept!("78", 144, "idf", [
        city!("Versailles", 9, ["78000"]),
        city!("Saint-Germain-en-Laye", 4, ["78100"]),
        city!("Mantes-la-Jolie", 4, ["78200"]),
        city!("Poissy", 4, ["78300"]),
        city!("Rambouillet", 3, ["78120"]),
        city!("Le Chesnay-Rocquencourt", 3, ["78150"]),
        city!("Sartrouville", 5, ["78500"]),
        city!("Trappes", 3, ["78190"]),
    ]),
    dept!("79", 37, "nouvelle-aquitaine", [
        city!("Niort", 6, ["79000"]),
        city!("Bressuire", 2, ["79300"]),
        city!("Parthenay", 1, ["79200"]),
        city!("Thouars", 1, ["79100"]),
    ]),
    dept!("80", 57, "hauts-de-france", [
        city!("Amiens", 13, ["80000", "80080", "80090"], "CHU Amiens-Picardie", "chu-amiens"),
        city!("Abbeville", 2, ["80100"]),
        city!("Péronne", 1, ["80200"]),
        city!("Doullens", 1, ["80600"]),
    ]),
    dept!("81", 39, "occitanie", [
        city!("Albi", 5, ["81000"]),
        city!("Castres", 4, ["81100"]),
        city!("Lavaur", 1, ["81500"]),
    ]),
    dept!("82", 26, "occitanie", [
        city!("Montauban", 6, ["82000"]),
        city!("Castelsarrasin", 1, ["82100"]),
        city!("Moissac", 1, ["82200"]),
    ]),
    dept!("83", 108, "paca", [
        city!("Toulon", 17, ["83000", "83100", "83200"]),
        city!("Fréjus", 5, ["83600"]),
        city!("Hyères", 5, ["83400"]),
        city!("Draguignan", 4, ["83300"]),
        city!("La Seyne-sur-Mer", 6, ["83500"]),
        city!("Saint-Raphaël", 3, ["83700"]),
        city!("Brignoles", 2, ["83170"]),
    ]),
    dept!("84", 56, "paca", [
        city!("Avignon", 9, ["84000"]),
        city!("Carpentras", 3, ["84200"]),
        city!("Orange", 3, ["84100"]),
        city!("Cavaillon", 3, ["84300"]),
        city!("Pertuis", 2, ["84120"]),
    ]),
    dept!("85", 69, "pays-de-la-loire", [
        city!("La Roche-sur-Yon", 5, ["85000"]),
        city!("Les Sables-d'Olonne", 4, ["85100"]),
        city!("Challans", 2, ["85300"]),
        city!("Fontenay-le-Comte", 1, ["85200"]),
        city!("Luçon", 1, ["85400"]),
    ]),
    dept!("86", 44, "nouvelle-aquitaine", [
        city!("Poitiers", 9, ["86000"], "CHU de Poitiers", "chu-poitiers"),
        city!("Châtellerault", 3, ["86100"]),
        city!("Loudun", 1, ["86200"]),
    ]),
    dept!("87", 37, "nouvelle-aquitaine", [
        city!("Limoges", 13, ["87000", "87100", "87280"], "CHU de Limoges", "chu-limoges"),
        city!("Saint-Junien", 1, ["87200"]),
        city!("Saint-Yrieix-la-Perche", 1, ["87500"]),
    ]),
    dept!("88", 36, "grand-est", [
        city!("Épinal", 3, ["88000"]),
        city!("Saint-Dié-des-Vosges", 2, ["88100"]),
        city!("Remiremont", 1, ["88200"]),
        city!("Vittel", 1, ["88800"]),
    ]),
    dept!("89", 33, "bfc", [
        city!("Auxerre", 3, ["89000"]),
        city!("Sens", 3, ["89100"]),
        city!("Avallon", 1, ["89200"]),
        city!("Joigny", 1, ["89300"]),
    ]),
    dept!("90", 14, "bfc", [
        city!("Belfort", 5, ["90000"]),
        city!("Delle", 1, ["90100"]),
    ]),
    dept!("91", 130, "idf", [
        city!("Évry-Courcouronnes", 7, ["91000", "91080"]),
        city!("Corbeil-Essonnes", 5, ["91100"]),
        city!("Massy", 5, ["91300"]),
        city!("Palaiseau", 3, ["91120"]),
        city!("Longjumeau", 2, ["91160"]),
        city!("Étampes", 2, ["91150"]),
        city!("Orsay", 2, ["91400"]),
        city!("Savigny-sur-Orge", 4, ["91600"]),
    ]),
    dept!("92", 162, "idf", [
        city!("Nanterre", 9, ["92000"]),
        city!("Boulogne-Billancourt", 12, ["92100"]),
        city!("Neuilly-sur-Seine", 6, ["92200"]),
        city!("Clichy", 6, ["92110"]),
        city!("Colombes", 8, ["92700"]),
        city!("Issy-les-Moulineaux", 7, ["92130"]),
        city!("Suresnes", 5, ["92150"]),
        city!("Clamart", 5, ["92140"]),
        city!("Courbevoie", 8, ["92400"]),
        city!("Rueil-Malmaison", 8, ["92500"]),
        city!("Antony", 6, ["92160"]),
    ]),
    dept!("93", 166, "idf", [
        city!("Bobigny", 5, ["93000"]),
        city!("Saint-Denis", 11, ["93200"]),
        city!("Montreuil", 11, ["93100"]),
        city!("Aubervilliers", 9, ["93300"]),
        city!("Aulnay-sous-Bois", 9, ["93600"]),
        city!("Drancy", 7, ["93700"]),
        city!("Bondy", 5, ["93140"]),
        city!("Montfermeil", 3, ["93370"]),
        city!("Le Raincy", 2, ["93340"]),
    ]),
    dept!("94", 141, "idf", [
        city!("Créteil", 9, ["94000"]),
        city!("Vitry-sur-Seine", 9, ["94400"]),
        city!("Saint-Maur-des-Fossés", 8, ["94100"]),
        city!("Champigny-sur-Marne", 8, ["94500"]),
        city!("Ivry-sur-Seine", 6, ["94200"]),
        city!("Villejuif", 6, ["94800"]),
        city!("Le Kremlin-Bicêtre", 3, ["94270"]),
        city!("Vincennes", 5, ["94300"]),
    ]),
    dept!("95", 125, "idf", [
        city!("Cergy", 7, ["95000"]),
        city!("Pontoise", 3, ["95300"]),
        city!("Argenteuil", 11, ["95100"]),
        city!("Sarcelles", 6, ["95200"]),
        city!("Gonesse", 3, ["95500"]),
        city!("Eaubonne", 3, ["95600"]),
        city!("Montmorency", 2, ["95160"]),
    ]),
    dept!("971", 38, "guadeloupe", [
        city!("Basse-Terre", 1, ["97100"]),
        city!("Pointe-à-Pitre", 2, ["97110"], "CHU de la Guadeloupe", "chu-guadeloupe"),
        city!("Les Abymes", 5, ["97139"]),
        city!("Baie-Mahault", 3, ["97122"]),
        city!("Le Gosier", 3, ["97190"]),
    ]),
    dept!("972", 36, "martinique", [
        city!("Fort-de-France", 8, ["97200"], "CHU de Martinique", "chu-martinique"),
        city!("Le Lamentin", 4, ["97232"]),
        city!("Schœlcher", 2, ["97233"]),
        city!("Le Robert", 2, ["97231"]),
        city!("Le François", 2, ["97240"]),
    ]),
    dept!("973", 29, "guyane", [
        city!("Cayenne", 6, ["97300"], "CHU de Guyane", "chu-guyane"),
        city!("Kourou", 2, ["97310"]),
        city!("Saint-Laurent-du-Maroni", 4, ["97320"]),
        city!("Matoury", 3, ["97351"]),
        city!("Rémire-Montjoly", 2, ["97354"]),
    ]),
    dept!("974", 87, "reunion", [
        city!("Saint-Denis", 15, ["97400"], "CHU de La Réunion", "chu-reunion"),
        city!("Saint-Pierre", 8, ["97410"]),
        city!("Saint-Paul", 10, ["97460"]),
        city!("Le Tampon", 8, ["97430"]),
        city!("Saint-Benoît", 4, ["97470"]),
        city!("Saint-André", 6, ["97440"]),
    ]),
    dept!("975", 1, "spm", [
        city!("Saint-Pierre", 1, ["97500"]),
        city!("Miquelon-Langlade", 1, ["97500"]),
    ]),
    dept!("976", 31, "mayotte", [
        city!("Mamoudzou", 7, ["97600"]),
        city!("Dzaoudzi", 2, ["97615"]),
        city!("Koungou", 3, ["97690"]),
    ]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extraction::read_bytes;
    use std::collections::{BTreeMap, HashMap};

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
        assert_eq!(professions.len(), PROFESSIONS.len());
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
                local.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'-'),
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
        assert!(LAST_NAMES.len() >= 300, "{}", LAST_NAMES.len());
        assert!(FEMALE_NAMES.len() + MALE_NAMES.len() >= 200);
        let mut unique = HashSet::new();
        for (n, _) in LAST_NAMES {
            assert!(unique.insert(*n), "duplicate last name {n}");
            assert!(local_word(n).len() > 1, "{n}");
        }
        let mut unique = HashSet::new();
        for (n, _) in FEMALE_NAMES.iter().chain(MALE_NAMES) {
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
        for d in DEPARTMENTS {
            assert!(codes.insert(d.code));
            let parsed = Department::parse(d.code).unwrap();
            assert_eq!(parsed.as_str(), d.code);
            for c in d.cities {
                assert!(fold(c.name).is_ascii(), "{}", c.name);
                for pc in c.postal {
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
        for p in PROFESSIONS {
            let places: u32 = p.places.iter().map(|x| x.1).sum();
            assert!(places > 0, "{}", p.code);
        }
    }
}
