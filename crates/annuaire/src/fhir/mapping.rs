//! FHIR resources → [`Entry`]: one entry per MSSanté mailbox (docs/mssante.md D3).
//!
//! A `telecom` is a mailbox when its `system` is `email` and it carries the fr-core e-mail type extension
//! coded `TRE_R256-TypeMessagerie#MSSANTE`; other e-mails (an Organization's contact address) are not.
//! The `as-ext-mailbox-mss-metadata` extension gives the type (PER/ORG/APP/CAB), the service and
//! `listeRouge`; unknown or removed sub-extensions (`digitization`, `phone`) are tolerated, and
//! `digitization` still fills [`Entry::dematerialisation`] when present.
//!
//! Person fields come from the Practitioner (identifiers, name, qualifications), structure fields from the
//! Organization (identifier, names, address with fr-core's ISO 21090 ADXP parts). A PractitionerRole's
//! mailbox takes both, from the resources its search included. Each entry names the resource it came from
//! ([`Entry::published_by`]); a deactivated resource withdraws its boxes, a red-listed box is removed.

use std::collections::HashMap;

use super::resources::{
    Address, Coding, ContactPoint, Organization, Practitioner, PractitionerRole, extension,
};
use super::{
    ADXP, BAL_TYPE_TABLE, EMAIL_TYPE_MSSANTE, EMAIL_TYPE_TABLE, EMAIL_TYPE_URL, IDNPS_SYSTEM,
    MAILBOX_METADATA_URL, PROFESSION_TABLE, RPPS_SYSTEMS, SAVOIR_FAIRE_TABLES,
    STRUCTURE_ID_TYPE_TABLE,
};
use crate::model::{BalType, Coded, Department, Entry, MailAddress, Source};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What one mailbox of a resource asks of the index.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // nearly every change is an upsert: boxing would not save memory
pub enum Change {
    /// Add or replace this entry.
    Upsert(Entry),
    /// Remove this address: it is red-listed (whatever resource publishes it).
    Remove(MailAddress),
    /// This resource no longer publishes the address: it is deactivated (`active=false`), or, for a
    /// role, its practitioner or organization is. Another resource may still publish it.
    Withdraw {
        /// The box.
        address: MailAddress,
        /// `PractitionerRole/123`.
        resource: String,
    },
    /// A mailbox that cannot be read (bad address); the rest of the resource still counts.
    Rejected {
        /// `Practitioner/123`.
        resource: String,
        /// Why.
        reason: String,
    },
}

/// Resources a PractitionerRole search included (`_include`), by `Type/id`.
#[derive(Debug, Default, Clone)]
pub struct Included {
    /// Practitioners.
    pub practitioners: HashMap<String, Practitioner>,
    /// Organizations.
    pub organizations: HashMap<String, Organization>,
}

/// The metadata of one mailbox.
#[derive(Debug, Default)]
struct Metadata {
    bal_type: Option<BalType>,
    service: Option<String>,
    red_listed: bool,
    digitization: Option<bool>,
}

/// Whether `telecom` is an MSSanté mailbox (and not a plain e-mail).
pub fn is_mailbox(telecom: &ContactPoint) -> bool {
    telecom.system.as_deref() == Some("email")
        && extension(&telecom.extension, EMAIL_TYPE_URL).is_some_and(|e| {
            e.value_coding.as_ref().is_some_and(|c| {
                c.code.as_deref() == Some(EMAIL_TYPE_MSSANTE)
                    && c.system
                        .as_deref()
                        .is_none_or(|s| s.contains(EMAIL_TYPE_TABLE))
            })
        })
}

fn metadata(telecom: &ContactPoint) -> Metadata {
    let mut m = Metadata::default();
    let Some(ext) = extension(&telecom.extension, MAILBOX_METADATA_URL) else {
        return m;
    };
    for sub in &ext.extension {
        match sub.url.as_str() {
            "type" => {
                // coded in TRE_R257-TypeBAL; some examples use TRE_R256 with the same codes
                let codings = sub
                    .value_codeable_concept
                    .iter()
                    .flat_map(|c| c.coding.iter())
                    .chain(sub.value_coding.iter());
                m.bal_type = codings
                    .filter(|c| {
                        c.system
                            .as_deref()
                            .is_none_or(|s| s.contains(BAL_TYPE_TABLE) || s.contains("TRE_R256"))
                    })
                    .find_map(|c| c.code.as_deref()?.parse().ok());
            }
            "service" => m.service = text(sub.value_string.as_deref()),
            "listeRouge" => m.red_listed = sub.value_boolean.unwrap_or(false),
            "digitization" => m.digitization = sub.value_boolean,
            // description, responsible, phone, and whatever comes next: not index fields
            _ => {}
        }
    }
    m
}

fn text(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn coded(c: &Coding) -> Option<Coded> {
    let code = text(c.code.as_deref())?;
    Some(Coded {
        code,
        label: c.display.clone().unwrap_or_default(),
    })
}

/// Person fields of a Practitioner.
fn fill_person(e: &mut Entry, p: &Practitioner) {
    for id in &p.identifier {
        let (Some(system), Some(value)) = (id.system.as_deref(), text(id.value.as_deref())) else {
            continue;
        };
        if RPPS_SYSTEMS.contains(&system) {
            e.person_id_type = Some("8".into());
            e.person_id = Some(value);
        } else if system == IDNPS_SYSTEM {
            e.person_national_id = Some(value);
        }
    }
    // no RPPS (an ADELI professional): the IDNPS is the type digit followed by the identifier
    if e.person_id.is_none()
        && let Some(idnps) = e.person_national_id.as_deref()
        && idnps.len() > 1
        && idnps.is_char_boundary(1)
    {
        e.person_id_type = Some(idnps[..1].to_string());
        e.person_id = Some(idnps[1..].to_string());
    }
    if let Some(name) = p.name.first() {
        e.last_name = text(name.family.as_deref());
        e.first_name = text(name.given.first().map(String::as_str));
        e.civility = text(name.prefix.first().map(String::as_str));
    }
    let codes = || p.qualification.iter().filter_map(|q| q.code.as_ref());
    e.profession = codes()
        .find_map(|c| c.coding_in(PROFESSION_TABLE))
        .and_then(coded);
    e.speciality = SAVOIR_FAIRE_TABLES
        .iter()
        .find_map(|t| codes().find_map(|c| c.coding_in(t)))
        .and_then(coded);
}

/// Structure fields of an Organization.
fn fill_structure(e: &mut Entry, o: &Organization) {
    let typed = o.identifier.iter().find_map(|id| {
        let ty = id.type_.as_ref()?.coding_in(STRUCTURE_ID_TYPE_TABLE)?;
        Some((text(ty.code.as_deref())?, text(id.value.as_deref())?))
    });
    let by_system = || {
        o.identifier.iter().find_map(|id| {
            let ty = match id.system.as_deref()? {
                super::FINESS_SYSTEM => "1",
                super::SIRET_SYSTEM => "3",
                _ => return None,
            };
            Some((ty.to_string(), text(id.value.as_deref())?))
        })
    };
    if let Some((ty, id)) = typed.or_else(by_system) {
        e.organisation_id_type = Some(ty);
        e.organisation_id = Some(id);
    }
    e.organisation_name = text(o.name.as_deref());
    e.organisation_trade_name = text(o.alias.first().map(String::as_str));
    if let Some(a) = o.address.first() {
        fill_address(e, a);
    }
}

fn fill_address(e: &mut Entry, a: &Address) {
    let mut plain = Vec::new();
    for (i, line) in a.line.iter().enumerate() {
        let parts = a
            .line_ext
            .get(i)
            .and_then(Option::as_ref)
            .map(|el| el.extension.as_slice())
            .unwrap_or_default();
        let mut known = false;
        for part in parts {
            let Some(kind) = part.url.strip_prefix(ADXP) else {
                continue;
            };
            let value = text(part.value_string.as_deref());
            let field = match kind {
                "additionalLocator" => &mut e.address_complement,
                "postBox" => &mut e.address_distribution,
                "houseNumber" => &mut e.street_number,
                "buildingNumberSuffix" => &mut e.street_number_complement,
                "streetNameType" => &mut e.street_type,
                "streetNameBase" => &mut e.street_name,
                "precinct" => &mut e.locality,
                _ => continue,
            };
            known = true;
            *field = value;
        }
        if !known {
            plain.push(line.as_str());
        }
    }
    // lines without ADXP parts: the street as written
    if e.street_name.is_none()
        && let Some(line) = plain.first()
    {
        e.street_name = text(Some(line));
    }
    e.postal_code = text(a.postal_code.as_deref());
    let city = text(a.city.as_deref());
    e.delivery_line = match (&e.postal_code, city) {
        (Some(pc), Some(c)) => Some(format!("{pc} {c}")),
        (None, Some(c)) => Some(c),
        (Some(pc), None) => Some(pc.clone()),
        (None, None) => None,
    };
    e.department = e
        .postal_code
        .as_deref()
        .and_then(Department::from_postal_code);
    e.country = text(a.country.as_deref());
}

/// The latest of FHIR instants (`meta.lastUpdated`); one that does not read is taken as is when alone.
fn latest<'a>(times: impl IntoIterator<Item = Option<&'a String>>) -> Option<String> {
    let mut best: Option<(&String, Option<OffsetDateTime>)> = None;
    for t in times.into_iter().flatten() {
        let parsed = OffsetDateTime::parse(t, &Rfc3339).ok();
        best = match best {
            None => Some((t, parsed)),
            Some((_, Some(b))) if parsed.is_some_and(|p| p > b) => Some((t, parsed)),
            Some((_, None)) if parsed.is_some() => Some((t, parsed)),
            keep => keep,
        };
    }
    best.map(|(t, _)| t.clone())
}

/// The mailboxes of `telecom`, each built by `fill` from its address and metadata.
fn mailboxes(
    resource: &str,
    active: bool,
    telecom: &[ContactPoint],
    default_type: BalType,
    updated_at: Option<String>,
    fill: impl Fn(&mut Entry),
) -> Vec<Change> {
    let mut out = Vec::new();
    for t in telecom.iter().filter(|t| is_mailbox(t)) {
        let raw = t.value.as_deref().unwrap_or("");
        let address = match MailAddress::parse(raw) {
            Ok(a) => a,
            Err(e) => {
                out.push(Change::Rejected {
                    resource: resource.to_string(),
                    reason: format!("telecom `{raw}`: {e}"),
                });
                continue;
            }
        };
        let meta = metadata(t);
        if meta.red_listed {
            out.push(Change::Remove(address));
            continue;
        }
        if !active {
            out.push(Change::Withdraw {
                address,
                resource: resource.to_string(),
            });
            continue;
        }
        let mut e = Entry::new(address, meta.bal_type.unwrap_or(default_type), Source::Fhir);
        fill(&mut e);
        if meta.service.is_some() {
            e.service = meta.service;
        }
        e.dematerialisation = meta.digitization;
        e.updated_at = updated_at.clone();
        // a resource without an id cannot be re-read by a delta: nothing to record
        if resource.contains('/') {
            e.published_by = vec![resource.to_string()];
        }
        out.push(Change::Upsert(e));
    }
    out
}

fn name(ty: &str, id: Option<&String>) -> String {
    id.map_or_else(|| ty.to_string(), |id| format!("{ty}/{id}"))
}

/// The mailboxes of a Practitioner (personal and cabinet boxes without a structure).
pub fn practitioner(p: &Practitioner) -> Vec<Change> {
    let last = latest([p.meta.as_ref().and_then(|m| m.last_updated.as_ref())]);
    mailboxes(
        &name("Practitioner", p.id.as_ref()),
        p.active != Some(false),
        &p.telecom,
        BalType::Per,
        last,
        |e| fill_person(e, p),
    )
}

/// The mailboxes of a PractitionerRole, with the person and structure of the resources included with it.
///
/// A role whose practitioner or organization is deactivated publishes nothing: the person left, or the
/// structure closed, and its boxes are no longer reachable through it (docs/mssante.md D5). Its boxes' time stamp
/// is the latest of the three resources they are built from.
pub fn practitioner_role(r: &PractitionerRole, included: &Included) -> Vec<Change> {
    let person = r
        .practitioner
        .as_ref()
        .and_then(|p| p.key())
        .and_then(|k| included.practitioners.get(&k));
    let structure = r
        .organization
        .as_ref()
        .and_then(|o| o.key())
        .and_then(|k| included.organizations.get(&k));
    let active = r.active != Some(false)
        && person.is_none_or(|p| p.active != Some(false))
        && structure.is_none_or(|o| o.active != Some(false));
    let last = latest([
        r.meta.as_ref().and_then(|m| m.last_updated.as_ref()),
        person.and_then(|p| p.meta.as_ref()?.last_updated.as_ref()),
        structure.and_then(|o| o.meta.as_ref()?.last_updated.as_ref()),
    ]);
    mailboxes(
        &name("PractitionerRole", r.id.as_ref()),
        active,
        &r.telecom,
        BalType::Per,
        last,
        |e| {
            if let Some(p) = person {
                fill_person(e, p);
            }
            if let Some(o) = structure {
                fill_structure(e, o);
            }
            // the role's own codes win over the person's qualifications
            if let Some(c) = r
                .code
                .iter()
                .find_map(|c| c.coding_in(PROFESSION_TABLE))
                .and_then(coded)
            {
                e.profession = Some(c);
            }
            if let Some(c) = SAVOIR_FAIRE_TABLES
                .iter()
                .find_map(|t| r.specialty.iter().find_map(|c| c.coding_in(t)))
                .and_then(coded)
            {
                e.speciality = Some(c);
            }
        },
    )
}

/// The mailboxes of an Organization (ORG and APP boxes; plain contact e-mails are skipped).
pub fn organization(o: &Organization) -> Vec<Change> {
    let last = latest([o.meta.as_ref().and_then(|m| m.last_updated.as_ref())]);
    mailboxes(
        &name("Organization", o.id.as_ref()),
        o.active != Some(false),
        &o.telecom,
        BalType::Org,
        last,
        |e| fill_structure(e, o),
    )
}
