//! ANS-shaped FHIR resources written from entries, for the test servers (the national API has no
//! sandbox): the same synthetic population as `mss demo-data`, as the API would serve it.
//!
//! - a personal box with a structure: on a PractitionerRole (practitioner + organization references);
//! - a personal or cabinet box without a structure: on the Practitioner;
//! - ORG and APP boxes: on the Organization, which also gets a plain contact e-mail (not a mailbox).
//!
//! One Practitioner per distinct person (identifiers, name, profession, speciality), one Organization per
//! distinct structure (identifier, names, address); ids are numbered in order of first appearance, so
//! the same entries always give the same resources. Telecoms follow docs/mssante.md D3 exactly.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{
    ADXP, BAL_TYPE_SYSTEM, EMAIL_TYPE_MSSANTE, EMAIL_TYPE_SYSTEM, EMAIL_TYPE_URL, FINESS_SYSTEM,
    IDNPS_SYSTEM, MAILBOX_METADATA_URL, PROFESSION_SYSTEM, RPPS_SYSTEMS, SIRET_SYSTEM,
    SPECIALITY_SYSTEM, STRUCTURE_ID_TYPE_SYSTEM,
};
use crate::model::{BalType, Entry};

/// The resources of a population, as JSON, each with `meta.lastUpdated`.
#[derive(Debug, Default, Clone)]
pub struct Population {
    /// Practitioners.
    pub practitioners: Vec<Value>,
    /// PractitionerRoles.
    pub roles: Vec<Value>,
    /// Organizations.
    pub organizations: Vec<Value>,
}

impl Population {
    /// Every resource, Practitioners first.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.practitioners
            .iter()
            .chain(&self.roles)
            .chain(&self.organizations)
    }
}

/// The telecom of a mailbox, with the e-mail type and metadata extensions.
pub fn mailbox_telecom(e: &Entry) -> Value {
    let mut meta = vec![json!({
        "url": "type",
        "valueCodeableConcept": {"coding": [{"system": BAL_TYPE_SYSTEM, "code": e.bal_type.code()}]}
    })];
    if let Some(s) = &e.service {
        meta.push(json!({"url": "service", "valueString": s}));
    }
    meta.push(json!({"url": "listeRouge", "valueBoolean": e.red_listed}));
    // removed from the IG in 2026-06 but still in the API's answers: clients must tolerate it
    if let Some(d) = e.dematerialisation {
        meta.push(json!({"url": "digitization", "valueBoolean": d}));
    }
    json!({
        "system": "email",
        "value": e.address.as_str(),
        "extension": [
            {"url": EMAIL_TYPE_URL, "valueCoding": {"system": EMAIL_TYPE_SYSTEM, "code": EMAIL_TYPE_MSSANTE}},
            {"url": MAILBOX_METADATA_URL, "extension": meta}
        ]
    })
}

fn person_key(e: &Entry) -> String {
    let c = |o: &Option<crate::Coded>| o.as_ref().map(|c| c.code.clone());
    format!(
        "{:?}",
        (
            &e.person_id_type,
            &e.person_id,
            &e.person_national_id,
            &e.civility,
            &e.last_name,
            &e.first_name,
            c(&e.profession),
            c(&e.speciality)
        )
    )
}

fn structure_key(e: &Entry) -> String {
    let fields = [
        &e.organisation_id_type,
        &e.organisation_id,
        &e.organisation_name,
        &e.organisation_trade_name,
        &e.address_complement,
        &e.address_distribution,
        &e.street_number,
        &e.street_number_complement,
        &e.street_type,
        &e.street_name,
        &e.locality,
        &e.delivery_line,
        &e.postal_code,
        &e.country,
    ];
    format!("{fields:?}")
}

fn has_structure(e: &Entry) -> bool {
    e.organisation_id.is_some() || e.organisation_name.is_some()
}

fn coding(system: &str, c: &crate::Coded) -> Value {
    json!({"coding": [{"system": system, "code": c.code, "display": c.label}]})
}

fn practitioner(id: &str, e: &Entry, last_updated: &str) -> Value {
    let mut identifier = Vec::new();
    if let Some(pid) = &e.person_id
        && e.person_id_type.as_deref() == Some("8")
    {
        identifier.push(json!({"system": RPPS_SYSTEMS[0], "value": pid}));
    }
    if let Some(n) = &e.person_national_id {
        identifier.push(json!({
            "type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "IDNPS"}]},
            "system": IDNPS_SYSTEM, "value": n
        }));
    }
    let mut name = serde_json::Map::new();
    if let Some(f) = &e.last_name {
        name.insert("family".into(), json!(f));
    }
    if let Some(g) = &e.first_name {
        name.insert("given".into(), json!([g]));
    }
    if let Some(c) = &e.civility {
        name.insert("prefix".into(), json!([c]));
    }
    let mut qualification = Vec::new();
    if let Some(p) = &e.profession {
        qualification.push(json!({"code": coding(PROFESSION_SYSTEM, p)}));
    }
    if let Some(s) = &e.speciality {
        qualification.push(json!({"code": coding(SPECIALITY_SYSTEM, s)}));
    }
    json!({
        "resourceType": "Practitioner",
        "id": id,
        "meta": {"lastUpdated": last_updated},
        "active": true,
        "identifier": identifier,
        "name": [name],
        "qualification": qualification,
        "telecom": []
    })
}

fn adxp(kind: &str, value: &str) -> Value {
    json!({"url": format!("{ADXP}{kind}"), "valueString": value})
}

fn organization(id: &str, e: &Entry, last_updated: &str) -> Value {
    let mut identifier = Vec::new();
    if let (Some(ty), Some(v)) = (&e.organisation_id_type, &e.organisation_id) {
        let system = match ty.as_str() {
            "1" => FINESS_SYSTEM,
            "2" | "3" => SIRET_SYSTEM,
            _ => "https://rpps.esante.gouv.fr",
        };
        identifier.push(json!({
            "type": {"coding": [{"system": STRUCTURE_ID_TYPE_SYSTEM, "code": ty}]},
            "system": system, "value": v
        }));
    }
    let mut lines = Vec::new();
    let mut line_ext = Vec::new();
    let mut line = |text: String, parts: Vec<Value>| {
        lines.push(json!(text));
        line_ext.push(json!({"extension": parts}));
    };
    if let Some(v) = &e.address_complement {
        line(v.clone(), vec![adxp("additionalLocator", v)]);
    }
    if let Some(v) = &e.address_distribution {
        line(v.clone(), vec![adxp("postBox", v)]);
    }
    let street = [
        ("houseNumber", &e.street_number),
        ("buildingNumberSuffix", &e.street_number_complement),
        ("streetNameType", &e.street_type),
        ("streetNameBase", &e.street_name),
    ];
    if street.iter().any(|(_, v)| v.is_some()) {
        let text: Vec<&str> = street.iter().filter_map(|(_, v)| v.as_deref()).collect();
        let parts = street
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| adxp(k, v)))
            .collect();
        line(text.join(" "), parts);
    }
    if let Some(v) = &e.locality {
        line(v.clone(), vec![adxp("precinct", v)]);
    }
    let mut address = serde_json::Map::new();
    address.insert("use".into(), json!("work"));
    if !lines.is_empty() {
        address.insert("line".into(), json!(lines));
        address.insert("_line".into(), json!(line_ext));
    }
    let city = e.delivery_line.as_deref().map(|d| match &e.postal_code {
        Some(pc) => d.strip_prefix(pc.as_str()).unwrap_or(d).trim().to_string(),
        None => d.to_string(),
    });
    if let Some(c) = city.filter(|c| !c.is_empty()) {
        address.insert("city".into(), json!(c));
    }
    if let Some(pc) = &e.postal_code {
        address.insert("postalCode".into(), json!(pc));
    }
    if let Some(c) = &e.country {
        address.insert("country".into(), json!(c));
    }
    let mut org = json!({
        "resourceType": "Organization",
        "id": id,
        "meta": {"lastUpdated": last_updated},
        "active": true,
        "identifier": identifier,
        "address": [address],
        // a plain contact e-mail: not an MSSanté box, never indexed
        "telecom": [{"system": "email", "value": format!("contact@{id}.example.fr")}]
    });
    if let Some(n) = &e.organisation_name {
        org["name"] = json!(n);
    }
    if let Some(t) = &e.organisation_trade_name {
        org["alias"] = json!([t]);
    }
    org
}

fn push_telecom(resource: &mut Value, telecom: Value) {
    if let Some(list) = resource["telecom"].as_array_mut() {
        list.push(telecom);
    }
}

/// The resources serving `entries`, all last updated at `last_updated` (a FHIR instant).
pub fn population(entries: impl IntoIterator<Item = Entry>, last_updated: &str) -> Population {
    let mut out = Population::default();
    let mut people: HashMap<String, usize> = HashMap::new();
    let mut structures: HashMap<String, usize> = HashMap::new();
    for e in entries {
        let org_index = |out: &mut Population, structures: &mut HashMap<String, usize>| {
            *structures.entry(structure_key(&e)).or_insert_with(|| {
                let id = format!("org-{}", out.organizations.len() + 1);
                out.organizations.push(organization(&id, &e, last_updated));
                out.organizations.len() - 1
            })
        };
        match e.bal_type {
            BalType::Org | BalType::App => {
                let i = org_index(&mut out, &mut structures);
                push_telecom(&mut out.organizations[i], mailbox_telecom(&e));
            }
            BalType::Per | BalType::Cab => {
                let p = *people.entry(person_key(&e)).or_insert_with(|| {
                    let id = format!("pra-{}", out.practitioners.len() + 1);
                    out.practitioners.push(practitioner(&id, &e, last_updated));
                    out.practitioners.len() - 1
                });
                if !has_structure(&e) {
                    push_telecom(&mut out.practitioners[p], mailbox_telecom(&e));
                    continue;
                }
                let o = org_index(&mut out, &mut structures);
                let pid = out.practitioners[p]["id"].clone();
                let oid = out.organizations[o]["id"].clone();
                let id = format!("rol-{}", out.roles.len() + 1);
                let mut role = json!({
                    "resourceType": "PractitionerRole",
                    "id": id,
                    "meta": {"lastUpdated": last_updated},
                    "active": true,
                    "practitioner": {"reference": format!("Practitioner/{}", pid.as_str().unwrap_or(""))},
                    "organization": {"reference": format!("Organization/{}", oid.as_str().unwrap_or(""))},
                    "telecom": [mailbox_telecom(&e)]
                });
                if let Some(p) = &e.profession {
                    role["code"] = json!([coding(PROFESSION_SYSTEM, p)]);
                }
                if let Some(s) = &e.speciality {
                    role["specialty"] = json!([coding(SPECIALITY_SYSTEM, s)]);
                }
                out.roles.push(role);
            }
        }
    }
    out
}
