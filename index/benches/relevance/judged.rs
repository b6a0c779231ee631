//! The judged query set: queries written as people type them, each with the mailbox (or mailboxes) it
//! means, drawn from the synthetic national population with a fixed seed.
//!
//! A query is kept only when its meaning is unambiguous in the population: the entries its words
//! describe, read as the person meant them (this first name and this last name, this service in this
//! city, this structure...), are exactly the meant ones. Where one structure has several boxes for the
//! meant thing (`cardiologie@` and `secretariat.cardiologie@` of one hospital; every box of a CHU for
//! `chu limoges`; a hospital's biology laboratory for `labo bio auch`), all are listed and any of them
//! counts. A query whose words also describe others is not kept: a last name that is someone's first
//! name, a typo that makes another real name, a service whose typed beginning begins another service of
//! the city.
//!
//! File format (TSV, `#` comments): class, query, filters (`key=value` joined by `;`, or `-`), the meant
//! addresses separated by spaces.

use std::collections::{HashMap, HashSet};

use mss_annuaire::{BalType, Entry};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Filters of a query: `(name, value)` pairs.
type Filters = Vec<(String, String)>;

/// One judged query.
pub struct Judged {
    pub class: String,
    pub q: String,
    pub filters: Vec<(String, String)>,
    pub meant: Vec<String>,
}

/// Classes, in the order printed, with how many queries of each the set holds.
pub const CLASSES: &[(&str, usize)] = &[
    ("full-name", 30),
    ("name-city", 30),
    ("first-letters", 30),
    ("typo", 25),
    ("initials", 25),
    ("address", 20),
    ("address-start", 20),
    ("service-city", 30),
    ("service-org", 25),
    ("org-short", 25),
    ("ehpad", 20),
    ("lab-city", 20),
    ("filtered", 30),
    ("filtered-org", 25),
];

/// Lower-case ASCII words of a text, the way people type without accents.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        let folded: Option<String> = if c.is_ascii_alphanumeric() {
            Some(c.to_ascii_lowercase().to_string())
        } else {
            mss_types::text::fold_latin(c).map(|f| f.to_ascii_lowercase())
        };
        match folded {
            Some(f) => cur.push_str(&f),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn joined(text: &str) -> String {
    words(text).join(" ")
}

const STOP: &[&str] = &[
    "de", "du", "des", "la", "le", "les", "l", "d", "a", "au", "et",
];

/// The words of a service that people type: its first meaningful word, cut to a usual short form.
fn service_typed(service: &str) -> Option<String> {
    let w = words(service)
        .into_iter()
        .find(|w| !STOP.contains(&w.as_str()))?;
    Some(if w.chars().count() > 8 {
        w.chars().take(6).collect()
    } else {
        w
    })
}

/// How people name a structure when it has a usual short form.
fn short_forms(org: &str, city: &str) -> Vec<String> {
    let o = joined(org);
    let c = joined(city);
    let mut out = Vec::new();
    if o.starts_with("chu ") {
        out.push(format!("chu {c}"));
    } else if o.starts_with("chru ") {
        out.push(format!("chru {c}"));
        out.push(format!("chu {c}"));
    } else if o.starts_with("centre hospitalier ") && !o.contains("universitaire") {
        out.push(format!("ch {c}"));
    } else if o == "assistance publique hopitaux de paris" {
        out.push("aphp".into());
        out.push("ap-hp".into());
    } else if o == "assistance publique hopitaux de marseille" {
        out.push("ap-hm".into());
    }
    out
}

struct Person<'a> {
    e: &'a Entry,
    first: String,
    last: String,
    city: String,
}

/// The set for the population `entries`, drawn with `seed`.
pub fn generate(entries: &[Entry], seed: u64) -> Vec<Judged> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let persons: Vec<Person<'_>> = entries
        .iter()
        .filter(|e| e.bal_type == BalType::Per)
        .filter_map(|e| {
            Some(Person {
                e,
                first: joined(e.first_name.as_deref()?),
                last: joined(e.last_name.as_deref()?),
                city: joined(e.city().unwrap_or("")),
            })
        })
        .collect();
    let mut count: HashMap<String, u32> = HashMap::new();
    let mut bump = |k: String| *count.entry(k).or_default() += 1;
    for p in &persons {
        bump(format!("n|{}|{}", p.first, p.last));
        bump(format!("l|{}", p.last));
        bump(format!("lc|{}|{}", p.last, p.city));
        bump(format!("i|{}|{}", &p.first[..1.min(p.first.len())], p.last));
        bump(format!(
            "p|{}|{}",
            p.first,
            p.last.chars().take(4).collect::<String>()
        ));
        if let Some(d) = &p.e.department {
            bump(format!("ld|{}|{}", p.last, d.as_str()));
        }
    }
    let n = |k: String| count.get(&k).copied().unwrap_or(0);
    // a last name that is also someone's first name (`François`, `Marie`) does not name one person
    let first_names: HashSet<&str> = persons.iter().map(|p| p.first.as_str()).collect();
    let plain_last = |p: &Person<'_>| !first_names.contains(p.last.as_str());
    let mut locals: HashMap<&str, u32> = HashMap::new();
    for e in entries {
        *locals.entry(e.address.local_part()).or_default() += 1;
    }
    let mut order: Vec<usize> = (0..persons.len()).collect();
    order.shuffle(&mut rng);
    let mut out = Vec::new();
    let quota = |class: &str| CLASSES.iter().find(|c| c.0 == class).map_or(0, |c| c.1);
    let push = |out: &mut Vec<Judged>,
                class: &str,
                q: String,
                f: Vec<(String, String)>,
                m: Vec<String>| {
        out.push(Judged {
            class: class.into(),
            q,
            filters: f,
            meant: m,
        })
    };
    let mut taken: HashSet<String> = HashSet::new();
    let mut have: HashMap<&str, usize> = HashMap::new();
    for &i in &order {
        let p = &persons[i];
        let addr = p.e.address.to_string();
        if p.first.is_empty() || p.last.len() < 3 || taken.contains(&addr) {
            continue;
        }
        let meant = vec![addr.clone()];
        let as_written = || {
            format!(
                "{} {}",
                p.e.first_name.as_deref().unwrap_or(""),
                p.e.last_name.as_deref().unwrap_or("")
            )
        };
        let unique_name = n(format!("n|{}|{}", p.first, p.last)) == 1;
        let mut class_q: Option<(&str, String, Filters)> = None;
        let wants =
            |c: &str, have: &HashMap<&str, usize>| have.get(c).copied().unwrap_or(0) < quota(c);
        let pick = rng.random_range(0..8u32);
        if pick == 0 && unique_name && wants("full-name", &have) {
            let q = if rng.random_bool(0.3) {
                as_written()
            } else {
                format!("{} {}", p.first, p.last)
            };
            class_q = Some(("full-name", q, vec![]));
        } else if pick == 1
            && plain_last(p)
            && !p.city.is_empty()
            && n(format!("l|{}", p.last)) > 1
            && n(format!("lc|{}|{}", p.last, p.city)) == 1
            && wants("name-city", &have)
        {
            class_q = Some(("name-city", format!("{} {}", p.last, p.city), vec![]));
        } else if pick == 2
            && p.last.len() > 5
            && n(format!(
                "p|{}|{}",
                p.first,
                p.last.chars().take(4).collect::<String>()
            )) == 1
            && wants("first-letters", &have)
        {
            let pfx: String = p.last.chars().take(4).collect();
            class_q = Some(("first-letters", format!("{} {pfx}", p.first), vec![]));
        } else if pick == 3 && unique_name && p.last.len() >= 6 && wants("typo", &have) {
            let mut chars: Vec<char> = p.last.chars().collect();
            let at = rng.random_range(2..chars.len() - 1);
            if rng.random_bool(0.5) {
                chars.swap(at, at + 1);
            } else {
                chars[at] = if chars[at] == 'e' { 'a' } else { 'e' };
            }
            let typo: String = chars.into_iter().collect();
            // a typo that makes another real name is that name, not a typo
            if typo != p.last && n(format!("l|{typo}")) == 0 {
                class_q = Some(("typo", format!("{} {typo}", p.first), vec![]));
            }
        } else if pick == 4
            && plain_last(p)
            && n(format!("i|{}|{}", &p.first[..1], p.last)) == 1
            && n(format!("l|{}", p.last)) > 1
            && wants("initials", &have)
        {
            class_q = Some(("initials", format!("{} {}", &p.first[..1], p.last), vec![]));
        } else if pick == 5 && wants("address", &have) {
            class_q = Some(("address", addr.clone(), vec![]));
        } else if pick == 6 && wants("address-start", &have) {
            let local = p.e.address.local_part();
            let domain = p.e.address.domain();
            // the shortest beginning of the domain that names this box alone
            let same: Vec<&Entry> = if locals.get(local).copied().unwrap_or(0) > 1 {
                entries
                    .iter()
                    .filter(|e| e.address.local_part() == local)
                    .collect()
            } else {
                Vec::new()
            };
            let mut cut = 0;
            while cut < domain.len()
                && same
                    .iter()
                    .filter(|e| e.address.domain().starts_with(&domain[..cut]))
                    .count()
                    > 1
            {
                cut += 1;
            }
            class_q = Some((
                "address-start",
                format!("{local}@{}", &domain[..cut]),
                vec![],
            ));
        } else if pick == 7
            && wants("filtered", &have)
            && let Some(d) = &p.e.department
            && plain_last(p)
            && n(format!("l|{}", p.last)) > 1
            && n(format!("ld|{}|{}", p.last, d.as_str())) == 1
        {
            class_q = Some((
                "filtered",
                p.last.clone(),
                vec![("department".into(), d.as_str().to_string())],
            ));
        }
        if let Some((class, q, f)) = class_q {
            taken.insert(addr);
            *have.entry(class).or_default() += 1;
            push(&mut out, class, q, f, meant);
        }
    }
    structures(entries, &mut rng, &mut out);
    out.sort_by_key(|j| CLASSES.iter().position(|c| c.0 == j.class));
    out
}

/// A structure's boxes: by (organisation, city).
struct Structure<'a> {
    org: &'a str,
    city: String,
    boxes: Vec<&'a Entry>,
}

fn structures(entries: &[Entry], rng: &mut ChaCha8Rng, out: &mut Vec<Judged>) {
    let mut by_key: HashMap<(String, String), Structure<'_>> = HashMap::new();
    for e in entries.iter().filter(|e| e.bal_type == BalType::Org) {
        let (Some(org), Some(city)) = (e.organisation_name.as_deref(), e.city()) else {
            continue;
        };
        by_key
            .entry((org.to_string(), joined(city)))
            .or_insert_with(|| Structure {
                org,
                city: city.to_string(),
                boxes: Vec::new(),
            })
            .boxes
            .push(e);
    }
    let mut all: Vec<&Structure<'_>> = by_key.values().collect();
    all.sort_by(|a, b| (a.org, &a.city).cmp(&(b.org, &b.city)));
    all.shuffle(rng);
    // service words typed + city -> structures having such a service there
    let mut service_city: HashMap<(String, String), HashSet<&str>> = HashMap::new();
    let mut kind_city: HashMap<(String, String), u32> = HashMap::new();
    for s in &all {
        for b in &s.boxes {
            // a typed service stands for every service of the city it begins (`medecin`: médecine too)
            for w in b.service.as_deref().map(words).unwrap_or_default() {
                for end in 3..=w.len() {
                    service_city
                        .entry((w[..end].to_string(), joined(&s.city)))
                        .or_default()
                        .insert(s.org);
                }
            }
        }
        let kind = words(s.org).first().cloned().unwrap_or_default();
        *kind_city.entry((kind, joined(&s.city))).or_default() += 1;
    }
    let mut have: HashMap<&str, usize> = HashMap::new();
    let quota = |c: &str| CLASSES.iter().find(|x| x.0 == c).map_or(0, |x| x.1);
    let mut add = |class: &'static str,
                   q: String,
                   f: Vec<(String, String)>,
                   meant: Vec<String>,
                   have: &mut HashMap<&str, usize>| {
        if have.get(class).copied().unwrap_or(0) < quota(class) && !meant.is_empty() {
            *have.entry(class).or_default() += 1;
            out.push(Judged {
                class: class.into(),
                q,
                filters: f,
                meant,
            });
        }
    };
    for s in &all {
        let city = joined(&s.city);
        let mut services: Vec<&str> = s
            .boxes
            .iter()
            .filter_map(|b| b.service.as_deref())
            .collect();
        services.sort_unstable();
        services.dedup();
        let service = (!services.is_empty()).then(|| services[rng.random_range(0..services.len())]);
        let boxes_of = |svc: &str| -> Vec<String> {
            s.boxes
                .iter()
                .filter(|b| b.service.as_deref().and_then(service_typed) == service_typed(svc))
                .map(|b| b.address.to_string())
                .collect()
        };
        let every_box: Vec<String> = s.boxes.iter().map(|b| b.address.to_string()).collect();
        let shorts = short_forms(s.org, &s.city);
        let org_words = joined(s.org);
        if let Some(svc) = service
            && let Some(t) = service_typed(svc)
            && service_city
                .get(&(t.clone(), city.clone()))
                .is_some_and(|o| o.len() == 1)
        {
            match rng.random_range(0..3u32) {
                0 => add(
                    "service-city",
                    format!("{city} {t}"),
                    vec![],
                    boxes_of(svc),
                    &mut have,
                ),
                1 => add(
                    "filtered-org",
                    format!("{t} {city}"),
                    vec![("bal_type".into(), "ORG".into())],
                    boxes_of(svc),
                    &mut have,
                ),
                _ => add(
                    "service-city",
                    format!("{t} {city}"),
                    vec![],
                    boxes_of(svc),
                    &mut have,
                ),
            }
        }
        // `ch <city>` forms are most structures with a short name: at most half of a class
        let ch_full = |class: &str, have: &HashMap<&str, usize>| {
            shorts.first().is_some_and(|s| s.starts_with("ch "))
                && have.get(class).copied().unwrap_or(0) >= quota(class) / 2
        };
        if let Some(short) = shorts.first()
            && !ch_full("org-short", &have)
        {
            if let Some(svc) = service
                && let Some(t) = service_typed(svc)
            {
                let q = if rng.random_bool(0.5) {
                    format!("{t} {short}")
                } else {
                    format!("{short} {t}")
                };
                add("service-org", q, vec![], boxes_of(svc), &mut have);
            }
            let short = &shorts[rng.random_range(0..shorts.len())];
            add(
                "org-short",
                short.clone(),
                vec![],
                every_box.clone(),
                &mut have,
            );
        }
        if org_words.starts_with("ehpad ") {
            let name = org_words
                .split(' ')
                .next_back()
                .unwrap_or_default()
                .to_string();
            let same = all
                .iter()
                .filter(|o| joined(o.org).starts_with("ehpad ") && joined(&o.city) == city)
                .filter(|o| joined(o.org).split(' ').any(|w| w == name))
                .count();
            if same == 1 {
                add(
                    "ehpad",
                    format!("ehpad {name} {city}"),
                    vec![],
                    every_box.clone(),
                    &mut have,
                );
            }
        }
        if org_words.starts_with("laboratoire ")
            && kind_city.get(&("laboratoire".into(), city.clone())) == Some(&1)
        {
            // a hospital's biology laboratory in the city is one too
            let mut labs = every_box.clone();
            for o in all
                .iter()
                .filter(|o| joined(&o.city) == city && o.org != s.org)
            {
                let lab = |b: &&&Entry| {
                    b.service
                        .as_deref()
                        .is_some_and(|v| joined(v).starts_with("laboratoire de biologie"))
                };
                labs.extend(o.boxes.iter().filter(lab).map(|b| b.address.to_string()));
            }
            add(
                "lab-city",
                format!("labo bio {city}"),
                vec![],
                labs,
                &mut have,
            );
        }
    }
}

/// The set as the committed file.
pub fn to_tsv(set: &[Judged], header: &str) -> String {
    let mut s = String::from(header);
    for j in set {
        let f = if j.filters.is_empty() {
            "-".to_string()
        } else {
            j.filters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";")
        };
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            j.class,
            j.q,
            f,
            j.meant.join(" ")
        ));
    }
    s
}

/// Reads the committed file.
pub fn from_tsv(text: &str) -> Vec<Judged> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "a judged query has 4 columns: {l}");
            let filters = if cols[2] == "-" {
                Vec::new()
            } else {
                cols[2]
                    .split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            Judged {
                class: cols[0].to_string(),
                q: cols[1].to_string(),
                filters,
                meant: cols[3].split(' ').map(str::to_string).collect(),
            }
        })
        .collect()
}
