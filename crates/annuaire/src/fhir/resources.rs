//! Typed FHIR R4 (4.0.1) resources: only the elements mss reads, every other element kept in `extra`.
//!
//! Hand-written rather than `fhir-sdk`: that crate models STU3/R4B/R5 but not R4, and its build takes
//! about 4.4 GB of memory (README, dependency table). Every element is optional and lists default to
//! empty, so that a server leaving one out is not an error; what does not fit its type is an error that
//! names the resource and the path of the element ([`parse_resource`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Elements mss does not read, kept as they came.
pub type Extra = Map<String, Value>;

/// `Meta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// `meta.lastUpdated` (FHIR instant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Other elements (profile, tag, versionId...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Coding`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coding {
    /// Code system URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `CodeableConcept`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeableConcept {
    /// Codings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CodeableConcept {
    /// The first coding whose system contains `table` (e.g. `TRE_G15`).
    pub fn coding_in(&self, table: &str) -> Option<&Coding> {
        self.coding
            .iter()
            .find(|c| c.system.as_deref().is_some_and(|s| s.contains(table)))
    }
}

/// `Extension` (with the value types ANS uses; other `value[x]` stay in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// What the extension is: a URL, or the name of a sub-extension.
    #[serde(default)]
    pub url: String,
    /// `valueString`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    /// `valueBoolean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_boolean: Option<bool>,
    /// `valueCoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_coding: Option<Coding>,
    /// `valueCodeableConcept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
    /// Sub-extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Other elements (other `value[x]`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// The extension of `list` with this URL.
pub fn extension<'a>(list: &'a [Extension], url: &str) -> Option<&'a Extension> {
    list.iter().find(|e| e.url == url)
}

/// `ContactPoint`: a `telecom` entry (an MSSanté mailbox when it carries the MSSANTE e-mail type).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactPoint {
    /// `phone | fax | email | pager | url | sms | other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The address or number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `home | work | temp | old | mobile`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Preference order (1 = preferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    /// Extensions: e-mail type, mailbox metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Other elements (period...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Identifier`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identifier {
    /// `usual | official | temp | secondary | old`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Type of identifier.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    /// Namespace URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `HumanName`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HumanName {
    /// `usual | official | ...`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Family name (`nom d'exercice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Given names (`prénom d'exercice` first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    /// Prefixes (`civilité d'exercice`: DR, PR, M, MME).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The extensions of one primitive element (FHIR JSON `_element`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Element {
    /// Extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Address`, with fr-core's ISO 21090 ADXP extensions on each `line` (`_line`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Address lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<String>,
    /// Extensions of each line (same order; `null` where a line has none).
    #[serde(default, rename = "_line", skip_serializing_if = "Vec::is_empty")]
    pub line_ext: Vec<Option<Element>>,
    /// City (may carry `CEDEX nn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Reference`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// `Type/id` or an absolute URL ending so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Reference {
    /// `Type/id` of the reference (the last two segments of a URL), without a `_history` suffix.
    pub fn key(&self) -> Option<String> {
        let r = self.reference.as_deref()?;
        let r = r.split("/_history/").next().unwrap_or(r);
        let mut parts = r.rsplit('/');
        let id = parts.next().filter(|s| !s.is_empty())?;
        let ty = parts.next().filter(|s| !s.is_empty())?;
        Some(format!("{ty}/{id}"))
    }
}

/// `Practitioner.qualification`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Qualification {
    /// Profession (TRE_G15) or savoir-faire (TRE_R38...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Practitioner`: a health professional (RPPS).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Practitioner {
    /// Technical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Meta (lastUpdated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// `false`: deactivated (its mailboxes leave the index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// RPPS, IDNPS...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    /// Contacts, MSSanté mailboxes among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// Profession and savoir-faire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qualification: Vec<Qualification>,
    /// Other elements (extension, resourceType...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `PractitionerRole`: a professional's practice in a structure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PractitionerRole {
    /// Technical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Meta (lastUpdated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// `false`: deactivated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// The professional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioner: Option<Reference>,
    /// The structure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Reference>,
    /// Profession (TRE_G15), role...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code: Vec<CodeableConcept>,
    /// Savoir-faire (TRE_R38...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specialty: Vec<CodeableConcept>,
    /// Contacts, MSSanté mailboxes among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Organization`: a structure (FINESS, SIRET...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// Technical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Meta (lastUpdated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// `false`: deactivated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// FINESS, SIRET, SIREN...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Raison sociale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Other names; the first is the trade name (enseigne commerciale).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alias: Vec<String>,
    /// Contacts: MSSanté mailboxes and plain contact e-mails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// Addresses; the first is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `OperationOutcome.issue`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// `fatal | error | warning | information`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Issue type code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Coded details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<CodeableConcept>,
    /// The server's explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `OperationOutcome`: how the API reports errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationOutcome {
    /// Issues.
    #[serde(default)]
    pub issue: Vec<Issue>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

impl OperationOutcome {
    /// One line: each issue's severity, code and diagnostics (or details text).
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .issue
            .iter()
            .map(|i| {
                let text = i
                    .diagnostics
                    .clone()
                    .or_else(|| i.details.as_ref().and_then(|d| d.text.clone()))
                    .unwrap_or_default();
                format!(
                    "{} {}: {text}",
                    i.severity.as_deref().unwrap_or("error"),
                    i.code.as_deref().unwrap_or("unknown")
                )
            })
            .collect();
        if parts.is_empty() {
            "OperationOutcome without issue".into()
        } else {
            parts.join("; ")
        }
    }
}

/// `Bundle.link`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BundleLink {
    /// `self`, `next`...
    #[serde(default)]
    pub relation: String,
    /// The URL.
    #[serde(default)]
    pub url: String,
}

/// `Bundle.entry.search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BundleSearch {
    /// `match` (a result) or `include` (brought by `_include`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Bundle.entry`; the resource stays JSON until its type is known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    /// Absolute URL of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    /// The resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    /// Search mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<BundleSearch>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Bundle` (a `searchset` page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Always `Bundle`.
    #[serde(default)]
    pub resource_type: String,
    /// `searchset`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Total matches, when the server counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// `self`, `next`... links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<BundleLink>,
    /// The resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
    /// Other elements.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Bundle {
    /// The `next` page's URL.
    pub fn next(&self) -> Option<&str> {
        self.link
            .iter()
            .find(|l| l.relation == "next" && !l.url.is_empty())
            .map(|l| l.url.as_str())
    }
}

/// A resource of a search answer, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    /// A Practitioner.
    Practitioner(Practitioner),
    /// A PractitionerRole.
    PractitionerRole(PractitionerRole),
    /// An Organization.
    Organization(Organization),
    /// An OperationOutcome (a warning within a searchset).
    OperationOutcome(OperationOutcome),
}

/// Reads `value` as a `T`, naming `what` and the element's path when it does not fit.
pub fn parse_as<T: DeserializeOwned>(what: &str, value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::FhirResponse {
            resource: what.to_string(),
            field: if path == "." { String::new() } else { path },
            reason: e.into_inner().to_string(),
        }
    })
}

/// Reads a resource of a type mss knows; any other `resourceType` is an error naming the field.
pub fn parse_resource(value: Value) -> Result<Resource> {
    let ty = match value.get("resourceType") {
        Some(Value::String(t)) => t.clone(),
        Some(other) => {
            return Err(Error::FhirResponse {
                resource: "resource".into(),
                field: "resourceType".into(),
                reason: format!("expected a string, got {other}"),
            });
        }
        None => {
            return Err(Error::FhirResponse {
                resource: "resource".into(),
                field: "resourceType".into(),
                reason: "missing".into(),
            });
        }
    };
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| ty.clone(), |id| format!("{ty}/{id}"));
    Ok(match ty.as_str() {
        "Practitioner" => Resource::Practitioner(parse_as(&id, value)?),
        "PractitionerRole" => Resource::PractitionerRole(parse_as(&id, value)?),
        "Organization" => Resource::Organization(parse_as(&id, value)?),
        "OperationOutcome" => Resource::OperationOutcome(parse_as(&id, value)?),
        other => {
            return Err(Error::FhirResponse {
                resource: id,
                field: "resourceType".into(),
                reason: format!(
                    "unexpected resource type `{other}` (expected Practitioner, PractitionerRole or Organization)"
                ),
            });
        }
    })
}

/// Reads a search answer: a JSON `Bundle` (an `OperationOutcome` body is the server's error).
pub fn parse_bundle(what: &str, body: &[u8]) -> Result<Bundle> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::FhirResponse {
        resource: what.to_string(),
        field: String::new(),
        reason: format!("not JSON: {e}"),
    })?;
    match value.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => parse_as(what, value),
        Some("OperationOutcome") => {
            let outcome: OperationOutcome = parse_as(what, value)?;
            Err(Error::FhirOutcome {
                what: what.to_string(),
                status: 200,
                diagnostics: outcome.summary(),
            })
        }
        Some(other) => Err(Error::FhirResponse {
            resource: what.to_string(),
            field: "resourceType".into(),
            reason: format!("expected a Bundle, got `{other}`"),
        }),
        None => Err(Error::FhirResponse {
            resource: what.to_string(),
            field: "resourceType".into(),
            reason: "missing (expected a Bundle)".into(),
        }),
    }
}
