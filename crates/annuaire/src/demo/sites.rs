//! Structures (hospitals, clinics, EHPAD, health centres, labs, pharmacies, cabinets): a structure is a pure
//! function of `(seed, department, kind, rank)`, so it keeps the same name, identifier and address on every
//! line of its boxes.

use std::collections::HashMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{Department, Entry};
use crate::prehashed::PreHashed;

use super::ids::{cabinet_id, finess, siret};
use super::random::{chance, mix, pick, pick_index};
use super::tables::{DATA, Dept, Kind, last_name, shared_domain, tables};
use super::text::{fold, slug};

/// A structure as printed on the lines of its boxes.
pub(super) struct Site {
    pub(super) kind: Kind,
    id_type: &'static str,
    id: String,
    name: String,
    trade_name: Option<String>,
    /// Mail domain of its boxes: its own, or a shared operator's.
    pub(super) domain: String,
    pub(super) own_domain: bool,
    /// Short slug naming it in local parts on shared domains.
    pub(super) short: String,
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
    pub(super) fn fill(&self, e: &mut Entry) {
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
pub(super) struct Sites {
    seed: u64,
    built: HashMap<u64, Arc<Site>, PreHashed>,
}

impl Sites {
    pub(super) fn new(seed: u64) -> Self {
        Sites {
            seed,
            built: HashMap::default(),
        }
    }

    /// Draws a structure of `kind` in department `dept` (falling back to a kind the department has).
    pub(super) fn pick(
        &mut self,
        rng: &mut ChaCha8Rng,
        dept: usize,
        kind: Kind,
        prof: usize,
    ) -> Arc<Site> {
        let d = &DATA.departments[dept];
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
        Kind::Hopital => (1 + w / 40).min(names(DATA.hospital_names.len())),
        Kind::Clinique => (1 + w / 20).min(names(DATA.clinic_names.len())),
        Kind::Ehpad => (3 + w / 2).min(names(DATA.ehpad_prefixes.len() * DATA.ehpad_names.len())),
        // the first one is the municipal centre
        Kind::CentreSante => (1 + w / 10).min(names(1 + DATA.health_centre_names.len())),
        Kind::Laboratoire => (1 + w / 6).min(names(DATA.lab_names.len())),
        Kind::Pharmacie => 3 + w / 2,
        Kind::Cabinet => 4 + w / 2,
    }
    .max(1)
}

/// Structure `k` of a kind in a department: always the same for the same seed.
fn build_site(seed: u64, dept_idx: usize, kind: Kind, prof: usize, k: u32) -> Site {
    let t = tables();
    let d = &DATA.departments[dept_idx];
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
        Kind::Hopital => (nth(&DATA.hospital_names).to_string(), None),
        Kind::Clinique => {
            let n = nth(&DATA.clinic_names);
            if chance(r, 400) {
                (format!("SAS {n}"), Some(n.to_string()))
            } else {
                (n.to_string(), None)
            }
        }
        Kind::Ehpad => {
            let i = rank % (DATA.ehpad_prefixes.len() * DATA.ehpad_names.len());
            let prefix = DATA.ehpad_prefixes[i % DATA.ehpad_prefixes.len()];
            (
                format!(
                    "EHPAD {prefix} {}",
                    DATA.ehpad_names[i / DATA.ehpad_prefixes.len()]
                ),
                None,
            )
        }
        Kind::CentreSante if k == 0 => {
            (format!("Centre de santé municipal {}", de(city.name)), None)
        }
        Kind::CentreSante => (
            format!(
                "Centre de santé {}",
                DATA.health_centre_names
                    [(k as usize - 1 + dept_idx * 7) % DATA.health_centre_names.len()]
            ),
            None,
        ),
        Kind::Laboratoire => {
            let n = format!("Laboratoire Bio{}", nth(&DATA.lab_names));
            let trade = chance(r, 300).then(|| format!("{n} {}", city.name));
            (n, trade)
        }
        Kind::Pharmacie => {
            let n = match pick_index(r, DATA.pharmacy_names.len() + 1) {
                0 => format!("Grande Pharmacie {}", de(city.name)),
                i => DATA.pharmacy_names[i - 1].to_string(),
            };
            if chance(r, 400) {
                (format!("SELARL {n}"), Some(n))
            } else {
                (n, None)
            }
        }
        Kind::Cabinet => {
            let prefix = DATA.professions[prof].cabinet;
            // named after a place or after its practitioners, as real cabinets are
            let part = match r.random_range(0..100) {
                0..45 => pick(r, &DATA.cabinet_suffixes).to_string(),
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
    let street_type = DATA.street_types[t.street_types.pick(r)].0;
    let street_name = pick(r, &DATA.street_names);
    let complement = chance(r, 80).then(|| pick(r, &DATA.complements));
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
    let locality = chance(r, 30).then(|| pick(r, &DATA.localities));
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
pub(super) fn de(city: &str) -> String {
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
