//! `METADATA.XML`: the ebRIM 3.0 `SubmitObjectsRequest` of an XDM subset (IHE ITI TF-3 §4.2,
//! French conventions of docs/mssante.md M1), written and read back.
//!
//! Layout written (element order follows the ebRIM schema: slots, name, classifications, external
//! identifiers): one `RegistryPackage` (the submission set) with its classification node, one
//! `ExtrinsicObject` per document, one `HasMember` association per document. Every registry object
//! id is a `urn:uuid:` entryUUID.

use crate::xml::{Step, esc, walk};
use std::fmt::Write as _;

/// XDS classification and identification schemes (ITI TF-3 Table 4.2.5-1).
pub mod scheme {
    /// DocumentEntry.author
    pub const DOC_AUTHOR: &str = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d";
    /// DocumentEntry.classCode
    pub const CLASS_CODE: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
    /// DocumentEntry.confidentialityCode
    pub const CONFIDENTIALITY_CODE: &str = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f";
    /// DocumentEntry.formatCode
    pub const FORMAT_CODE: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
    /// DocumentEntry.healthcareFacilityTypeCode
    pub const FACILITY_TYPE_CODE: &str = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1";
    /// DocumentEntry.practiceSettingCode
    pub const PRACTICE_SETTING_CODE: &str = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead";
    /// DocumentEntry.typeCode
    pub const TYPE_CODE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
    /// DocumentEntry.patientId
    pub const DOC_PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
    /// DocumentEntry.uniqueId
    pub const DOC_UNIQUE_ID: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";
    /// ObjectType of a stable DocumentEntry
    pub const STABLE_DOCUMENT: &str = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1";
    /// SubmissionSet.author
    pub const SS_AUTHOR: &str = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d";
    /// SubmissionSet.contentTypeCode
    pub const CONTENT_TYPE_CODE: &str = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500";
    /// SubmissionSet.patientId
    pub const SS_PATIENT_ID: &str = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446";
    /// SubmissionSet.sourceId
    pub const SS_SOURCE_ID: &str = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832";
    /// SubmissionSet.uniqueId
    pub const SS_UNIQUE_ID: &str = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8";
    /// Classification node that marks a RegistryPackage as a submission set
    pub const SUBMISSION_SET_NODE: &str = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd";
}

const LCM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0";
const RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
const HAS_MEMBER: &str = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember";
const RPLC: &str = "urn:ihe:iti:2007:AssociationType:RPLC";
/// availabilityStatus of a document its author withdrew (CI-SIS, TRE_R270-AvailabilityStatus
/// "Supprimé"): the recipients are asked to delete the copy they keep (docs/mssante.md H1).
pub const STATUS_DELETED: &str = "urn:asip:ci-sis:2010:StatusType:Deleted";
/// Scheme of the document restrictions of the national table TRE_A07-StatutVisibiliteDocument, carried
/// as `confidentialityCode` values: `MASQUE_PS`, `INVISIBLE_PATIENT`, `INVISIBLE_REPRESENTANTS_LEGAUX`.
pub const VISIBILITY_SCHEME: &str = "1.2.250.1.213.1.1.4.13";
/// Association types of a replacement (ITI TF-3 §4.2.2): replace, and transform-and-replace.
const REPLACE_TYPES: [&str; 2] = [RPLC, "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"];

/// A coded classification value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Code {
    /// `nodeRepresentation`.
    pub code: String,
    /// `codingScheme` slot.
    pub scheme: String,
    /// `Name`.
    pub display: String,
}

impl From<&crate::cda::CodedValue> for Code {
    fn from(c: &crate::cda::CodedValue) -> Self {
        Code {
            code: c.code.clone(),
            scheme: c.code_system.clone(),
            display: c.display_name.clone(),
        }
    }
}

impl From<&crate::ClassifiedCode> for Code {
    fn from(c: &crate::ClassifiedCode) -> Self {
        Code {
            code: c.code.clone(),
            scheme: c.coding_scheme.clone(),
            display: c.display_name.clone(),
        }
    }
}

/// An author classification (HL7 v2 encoded values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Author {
    /// `authorPerson` (XCN).
    pub person: Option<String>,
    /// `authorInstitution` (XON).
    pub institutions: Vec<String>,
    /// `authorSpecialty` (CE).
    pub specialty: Option<String>,
}

impl Author {
    fn is_empty(&self) -> bool {
        self.person.is_none() && self.institutions.is_empty() && self.specialty.is_none()
    }
}

/// The submission set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmissionSet {
    /// entryUUID (`urn:uuid:…`), also the registry object id.
    pub entry_uuid: String,
    /// `uniqueId` (OID).
    pub unique_id: String,
    /// `sourceId` (OID of the sending system).
    pub source_id: String,
    /// `submissionTime` (`YYYYMMDDhhmmss`, UTC).
    pub submission_time: String,
    /// `patientId` (CX).
    pub patient_id: String,
    /// `Name`.
    pub title: String,
    /// Author.
    pub author: Author,
    /// `intendedRecipient` values (`XON|XCN|XTN`).
    pub intended_recipients: Vec<String>,
    /// `contentTypeCode`, optional since ITI TF 2016 for XDM.
    pub content_type: Option<Code>,
}

/// One document entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentEntry {
    /// entryUUID (`urn:uuid:…`), also the registry object id.
    pub entry_uuid: String,
    /// `uniqueId` (`root^extension` of the CDA id, or an OID).
    pub unique_id: String,
    /// `URI` slot: file name relative to the subset directory.
    pub uri: String,
    /// `mimeType`.
    pub mime_type: String,
    /// SHA-1 of the file, lower-case hex.
    pub hash: String,
    /// File size in bytes.
    pub size: u64,
    /// `creationTime` (UTC DTM).
    pub creation_time: String,
    /// `languageCode`.
    pub language: String,
    /// `patientId` (CX).
    pub patient_id: String,
    /// `sourcePatientId` (CX).
    pub source_patient_id: String,
    /// `sourcePatientInfo` values (`PID-5|…`, `PID-7|…`, `PID-8|…`).
    pub source_patient_info: Vec<String>,
    /// `legalAuthenticator` (XCN).
    pub legal_authenticator: Option<String>,
    /// `serviceStartTime`.
    pub service_start: Option<String>,
    /// `serviceStopTime`.
    pub service_stop: Option<String>,
    /// `Name`.
    pub title: String,
    /// Author.
    pub author: Author,
    /// `classCode`.
    pub class_code: Code,
    /// `typeCode`.
    pub type_code: Code,
    /// `formatCode`.
    pub format_code: Code,
    /// `confidentialityCode` (one or more).
    pub confidentiality: Vec<Code>,
    /// `healthcareFacilityTypeCode`.
    pub facility_type: Option<Code>,
    /// `practiceSettingCode`.
    pub practice_setting: Option<Code>,
    /// `availabilityStatus` (the `status` attribute), when it is not the default `Approved`:
    /// [`STATUS_DELETED`] for a withdrawn document.
    pub availability_status: Option<String>,
}

impl DocumentEntry {
    /// Whether the sender asks the recipients to delete this document ([`STATUS_DELETED`]).
    pub fn is_deleted(&self) -> bool {
        self.availability_status.as_deref().map(str::trim) == Some(STATUS_DELETED)
    }
}

/// The entryUUID mss gives a document: name-based on its XDS uniqueId (like a UUID v5 over SHA-1),
/// so a later replacement or withdrawal can name the entry it replaces from the uniqueId alone.
pub fn document_entry_uuid(unique_id: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("mss:xds-document:{unique_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = mss_types::hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A replace request: an `RPLC` (or `XFRM_RPLC`) association from a document of this submission
/// to the document it replaces, which an earlier submission carried (ITI TF-3 §4.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replacement {
    /// entryUUID of the new document (`sourceObject`).
    pub document: String,
    /// entryUUID of the replaced document (`targetObject`).
    pub replaced: String,
}

/// The content of one METADATA.XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The submission set.
    pub submission_set: SubmissionSet,
    /// The document entries, in file order.
    pub documents: Vec<DocumentEntry>,
    /// Replace requests: one `RPLC` association per replacing document.
    pub replacements: Vec<Replacement>,
}

/// Writes METADATA.XML. `ids` gives a fresh `urn:uuid:` per call, for classification,
/// external identifier and association ids.
pub fn write(m: &Metadata, mut ids: impl FnMut() -> String) -> String {
    let mut out = String::with_capacity(4096 + 4096 * m.documents.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<lcm:SubmitObjectsRequest xmlns:lcm=\"{LCM}\" xmlns:rim=\"{RIM}\">"
    );
    out.push_str(" <rim:RegistryObjectList>\n");
    let ss = &m.submission_set;
    let _ = writeln!(
        out,
        "  <rim:RegistryPackage id=\"{}\">",
        esc(&ss.entry_uuid)
    );
    slot(&mut out, 3, "submissionTime", [ss.submission_time.as_str()]);
    if !ss.intended_recipients.is_empty() {
        slot(
            &mut out,
            3,
            "intendedRecipient",
            ss.intended_recipients.iter().map(String::as_str),
        );
    }
    name(&mut out, 3, &ss.title);
    author(
        &mut out,
        scheme::SS_AUTHOR,
        &ss.entry_uuid,
        &ss.author,
        &mut ids,
    );
    if let Some(c) = &ss.content_type {
        classification(
            &mut out,
            scheme::CONTENT_TYPE_CODE,
            &ss.entry_uuid,
            c,
            ids(),
        );
    }
    external(
        &mut out,
        scheme::SS_PATIENT_ID,
        &ss.entry_uuid,
        &ss.patient_id,
        "XDSSubmissionSet.patientId",
        ids(),
    );
    external(
        &mut out,
        scheme::SS_SOURCE_ID,
        &ss.entry_uuid,
        &ss.source_id,
        "XDSSubmissionSet.sourceId",
        ids(),
    );
    external(
        &mut out,
        scheme::SS_UNIQUE_ID,
        &ss.entry_uuid,
        &ss.unique_id,
        "XDSSubmissionSet.uniqueId",
        ids(),
    );
    out.push_str("  </rim:RegistryPackage>\n");
    let _ = writeln!(
        out,
        "  <rim:Classification id=\"{}\" classificationNode=\"{}\" classifiedObject=\"{}\"/>",
        ids(),
        scheme::SUBMISSION_SET_NODE,
        esc(&ss.entry_uuid)
    );
    for d in &m.documents {
        document(&mut out, d, &mut ids);
    }
    for d in &m.documents {
        let _ = writeln!(
            out,
            "  <rim:Association id=\"{}\" associationType=\"{HAS_MEMBER}\" sourceObject=\"{}\" targetObject=\"{}\">",
            ids(),
            esc(&ss.entry_uuid),
            esc(&d.entry_uuid)
        );
        slot(&mut out, 3, "SubmissionSetStatus", ["Original"]);
        out.push_str("  </rim:Association>\n");
    }
    for r in &m.replacements {
        let _ = writeln!(
            out,
            "  <rim:Association id=\"{}\" associationType=\"{RPLC}\" sourceObject=\"{}\" targetObject=\"{}\"/>",
            ids(),
            esc(&r.document),
            esc(&r.replaced)
        );
    }
    out.push_str(" </rim:RegistryObjectList>\n</lcm:SubmitObjectsRequest>\n");
    out
}

fn document(out: &mut String, d: &DocumentEntry, ids: &mut impl FnMut() -> String) {
    let id = &d.entry_uuid;
    let status = d
        .availability_status
        .as_deref()
        .map(|s| format!(" status=\"{}\"", esc(s)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  <rim:ExtrinsicObject id=\"{}\" mimeType=\"{}\" objectType=\"{}\"{status}>",
        esc(id),
        esc(&d.mime_type),
        scheme::STABLE_DOCUMENT
    );
    slot(out, 3, "creationTime", [d.creation_time.as_str()]);
    slot(out, 3, "hash", [d.hash.as_str()]);
    slot(out, 3, "languageCode", [d.language.as_str()]);
    if let Some(v) = &d.legal_authenticator {
        slot(out, 3, "legalAuthenticator", [v.as_str()]);
    }
    if let Some(v) = &d.service_start {
        slot(out, 3, "serviceStartTime", [v.as_str()]);
    }
    if let Some(v) = &d.service_stop {
        slot(out, 3, "serviceStopTime", [v.as_str()]);
    }
    slot(out, 3, "size", [d.size.to_string().as_str()]);
    slot(out, 3, "sourcePatientId", [d.source_patient_id.as_str()]);
    slot(
        out,
        3,
        "sourcePatientInfo",
        d.source_patient_info.iter().map(String::as_str),
    );
    slot(out, 3, "URI", [d.uri.as_str()]);
    name(out, 3, &d.title);
    author(out, scheme::DOC_AUTHOR, id, &d.author, ids);
    classification(out, scheme::CLASS_CODE, id, &d.class_code, ids());
    for c in &d.confidentiality {
        classification(out, scheme::CONFIDENTIALITY_CODE, id, c, ids());
    }
    classification(out, scheme::FORMAT_CODE, id, &d.format_code, ids());
    if let Some(c) = &d.facility_type {
        classification(out, scheme::FACILITY_TYPE_CODE, id, c, ids());
    }
    if let Some(c) = &d.practice_setting {
        classification(out, scheme::PRACTICE_SETTING_CODE, id, c, ids());
    }
    classification(out, scheme::TYPE_CODE, id, &d.type_code, ids());
    external(
        out,
        scheme::DOC_PATIENT_ID,
        id,
        &d.patient_id,
        "XDSDocumentEntry.patientId",
        ids(),
    );
    external(
        out,
        scheme::DOC_UNIQUE_ID,
        id,
        &d.unique_id,
        "XDSDocumentEntry.uniqueId",
        ids(),
    );
    out.push_str("  </rim:ExtrinsicObject>\n");
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn slot<'v>(out: &mut String, depth: usize, name: &str, values: impl IntoIterator<Item = &'v str>) {
    indent(out, depth);
    let _ = writeln!(out, "<rim:Slot name=\"{name}\">");
    indent(out, depth + 1);
    out.push_str("<rim:ValueList>\n");
    for v in values {
        indent(out, depth + 2);
        let _ = writeln!(out, "<rim:Value>{}</rim:Value>", esc(v));
    }
    indent(out, depth + 1);
    out.push_str("</rim:ValueList>\n");
    indent(out, depth);
    out.push_str("</rim:Slot>\n");
}

fn name(out: &mut String, depth: usize, value: &str) {
    indent(out, depth);
    out.push_str("<rim:Name>\n");
    indent(out, depth + 1);
    let _ = writeln!(
        out,
        "<rim:LocalizedString xml:lang=\"fr-FR\" charset=\"UTF-8\" value=\"{}\"/>",
        esc(value)
    );
    indent(out, depth);
    out.push_str("</rim:Name>\n");
}

fn classification(out: &mut String, scheme: &str, object: &str, c: &Code, id: String) {
    let _ = writeln!(
        out,
        "   <rim:Classification id=\"{id}\" classificationScheme=\"{scheme}\" classifiedObject=\"{}\" nodeRepresentation=\"{}\">",
        esc(object),
        esc(&c.code)
    );
    slot(out, 4, "codingScheme", [c.scheme.as_str()]);
    name(out, 4, &c.display);
    out.push_str("   </rim:Classification>\n");
}

fn author(
    out: &mut String,
    scheme: &str,
    object: &str,
    a: &Author,
    ids: &mut impl FnMut() -> String,
) {
    if a.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "   <rim:Classification id=\"{}\" classificationScheme=\"{scheme}\" classifiedObject=\"{}\" nodeRepresentation=\"\">",
        ids(),
        esc(object)
    );
    if let Some(p) = &a.person {
        slot(out, 4, "authorPerson", [p.as_str()]);
    }
    if !a.institutions.is_empty() {
        slot(
            out,
            4,
            "authorInstitution",
            a.institutions.iter().map(String::as_str),
        );
    }
    if let Some(s) = &a.specialty {
        slot(out, 4, "authorSpecialty", [s.as_str()]);
    }
    out.push_str("   </rim:Classification>\n");
}

fn external(out: &mut String, scheme: &str, object: &str, value: &str, label: &str, id: String) {
    let _ = writeln!(
        out,
        "   <rim:ExternalIdentifier id=\"{id}\" identificationScheme=\"{scheme}\" registryObject=\"{}\" value=\"{}\">",
        esc(object),
        esc(value)
    );
    name(out, 4, label);
    out.push_str("   </rim:ExternalIdentifier>\n");
}

/// Escapes HL7 v2 delimiters inside one component (`|^~\&`).
pub fn hl7_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            '&' => out.push_str("\\T\\"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`hl7_escape`], reading escapes left to right (`\R\F\` is `~` then `F\`, not
/// `\R` then `|`). Unknown escapes are kept as they are.
pub fn hl7_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mapped = match after.get(..2) {
            Some("F\\") => Some('|'),
            Some("S\\") => Some('^'),
            Some("R\\") => Some('~'),
            Some("T\\") => Some('&'),
            Some("E\\") => Some('\\'),
            _ => None,
        };
        match mapped {
            Some(c) => {
                out.push(c);
                rest = &after[2..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The CX of a patient identifier: `<id>^^^&<oid>&ISO^NH`.
pub fn patient_cx(id: &str, oid: &str) -> String {
    format!("{}^^^&{}&ISO^NH", hl7_escape(id), oid)
}

/// Splits a CX back into (id, assigning authority OID).
pub fn parse_cx(cx: &str) -> Option<(String, String)> {
    let mut comps = cx.split('^');
    let id = comps.next()?;
    let authority = comps.nth(2)?;
    let oid = authority.split('&').nth(1)?;
    if id.is_empty() || oid.is_empty() {
        return None;
    }
    Some((hl7_unescape(id), oid.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A classification being read: scheme, code, and its other slots.
type ClassificationRead = (String, Code, Vec<(String, Vec<String>)>);

#[derive(Default)]
struct Object {
    id: String,
    mime_type: String,
    status: Option<String>,
    slots: Vec<(String, Vec<String>)>,
    name: String,
    classifications: Vec<ClassificationRead>,
    externals: Vec<(String, String)>,
}

impl Object {
    fn slot(&self, name: &str) -> Option<&str> {
        self.slots
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    fn slot_all(&self, name: &str) -> Vec<String> {
        self.slots
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn code(&self, scheme: &str) -> Option<Code> {
        self.classifications
            .iter()
            .find(|(s, _, _)| s == scheme)
            .map(|(_, c, _)| c.clone())
    }

    fn external(&self, scheme: &str) -> String {
        self.externals
            .iter()
            .find(|(s, _)| s == scheme)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn author(&self, scheme: &str) -> Author {
        let Some((_, _, slots)) = self.classifications.iter().find(|(s, _, _)| s == scheme) else {
            return Author::default();
        };
        let get = |n: &str| slots.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        Author {
            person: get("authorPerson").and_then(|v| v.into_iter().next()),
            institutions: get("authorInstitution").unwrap_or_default(),
            specialty: get("authorSpecialty").and_then(|v| v.into_iter().next()),
        }
    }
}

enum Kind {
    Package,
    Extrinsic,
}

/// Reads METADATA.XML (any namespace prefixes; element names matched by local name). The
/// submission set is the `RegistryPackage` classified by the submission-set node, else the first
/// one.
pub fn read(xml: &str) -> Result<Metadata, String> {
    let mut objects: Vec<(Kind, Object)> = Vec::new();
    let mut ss_marked: Option<String> = None;
    let mut replacements = Vec::new();
    let mut cur: Option<(Kind, Object)> = None;
    // The slot being read and its values; the classification being read.
    let mut slot_name: Option<String> = None;
    let mut values: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut class: Option<ClassificationRead> = None;
    walk(xml, |path, step| {
        let local = path.rsplit('/').next().unwrap_or(path);
        match step {
            Step::Open(e) => match local {
                "RegistryPackage" | "ExtrinsicObject" if cur.is_none() => {
                    let kind = if local == "RegistryPackage" {
                        Kind::Package
                    } else {
                        Kind::Extrinsic
                    };
                    cur = Some((
                        kind,
                        Object {
                            id: e.attr("id")?.unwrap_or_default(),
                            mime_type: e.attr("mimeType")?.unwrap_or_default(),
                            status: e.attr("status")?,
                            ..Object::default()
                        },
                    ));
                }
                "Classification" => {
                    let scheme = e.attr("classificationScheme")?.unwrap_or_default();
                    if cur.is_none() {
                        if e.attr("classificationNode")?.as_deref()
                            == Some(scheme::SUBMISSION_SET_NODE)
                        {
                            ss_marked = e.attr("classifiedObject")?;
                        }
                    } else {
                        let code = Code {
                            code: e.attr("nodeRepresentation")?.unwrap_or_default(),
                            ..Code::default()
                        };
                        class = Some((scheme, code, Vec::new()));
                    }
                }
                "Association" if cur.is_none() => {
                    let kind = e.attr("associationType")?.unwrap_or_default();
                    if REPLACE_TYPES.contains(&kind.trim()) {
                        replacements.push(Replacement {
                            document: e.attr("sourceObject")?.unwrap_or_default(),
                            replaced: e.attr("targetObject")?.unwrap_or_default(),
                        });
                    }
                }
                "ExternalIdentifier" => {
                    if let Some((_, o)) = cur.as_mut() {
                        o.externals.push((
                            e.attr("identificationScheme")?.unwrap_or_default(),
                            e.attr("value")?.unwrap_or_default(),
                        ));
                    }
                }
                "Slot" => {
                    slot_name = e.attr("name")?;
                    values.clear();
                }
                "Value" => value.clear(),
                "LocalizedString" => {
                    let v = e.attr("value")?.unwrap_or_default();
                    let parent = path.rsplit('/').nth(2).unwrap_or("");
                    let in_name = path.rsplit('/').nth(1) == Some("Name");
                    if in_name && parent == "Classification" {
                        if let Some((_, c, _)) = class.as_mut() {
                            c.display = v;
                        }
                    } else if in_name
                        && matches!(parent, "RegistryPackage" | "ExtrinsicObject")
                        && let Some((_, o)) = cur.as_mut()
                    {
                        o.name = v;
                    }
                }
                _ => {}
            },
            Step::Text(t) => {
                if local == "Value" {
                    value.push_str(t);
                }
            }
            Step::Close => match local {
                "Value" => values.push(std::mem::take(&mut value)),
                "Slot" => {
                    let n = slot_name.take().unwrap_or_default();
                    let vs = std::mem::take(&mut values);
                    if let Some((_, c, slots)) = class.as_mut() {
                        if n == "codingScheme" {
                            c.scheme = vs.first().cloned().unwrap_or_default();
                        } else {
                            slots.push((n, vs));
                        }
                    } else if let Some((_, o)) = cur.as_mut() {
                        o.slots.push((n, vs));
                    }
                }
                "Classification" => {
                    if let (Some(c), Some((_, o))) = (class.take(), cur.as_mut()) {
                        o.classifications.push(c);
                    }
                }
                "RegistryPackage" | "ExtrinsicObject" => {
                    if let Some(o) = cur.take() {
                        objects.push(o);
                    }
                }
                _ => {}
            },
        }
        Ok(())
    })?;

    let mut m = Metadata {
        replacements,
        ..Metadata::default()
    };
    let mut packages = Vec::new();
    for (kind, o) in objects {
        match kind {
            Kind::Package => packages.push(o),
            Kind::Extrinsic => m.documents.push(DocumentEntry {
                unique_id: o.external(scheme::DOC_UNIQUE_ID),
                patient_id: o.external(scheme::DOC_PATIENT_ID),
                uri: o.slot("URI").unwrap_or_default().to_string(),
                hash: o.slot("hash").unwrap_or_default().to_string(),
                size: match o.slot("size") {
                    Some(s) => s
                        .trim()
                        .parse()
                        .map_err(|_| format!("document {}: size is not a number", o.id))?,
                    None => return Err(format!("document {}: no size slot", o.id)),
                },
                creation_time: o.slot("creationTime").unwrap_or_default().to_string(),
                language: o.slot("languageCode").unwrap_or_default().to_string(),
                source_patient_id: o.slot("sourcePatientId").unwrap_or_default().to_string(),
                source_patient_info: o.slot_all("sourcePatientInfo"),
                legal_authenticator: o.slot("legalAuthenticator").map(str::to_string),
                service_start: o.slot("serviceStartTime").map(str::to_string),
                service_stop: o.slot("serviceStopTime").map(str::to_string),
                author: o.author(scheme::DOC_AUTHOR),
                class_code: o.code(scheme::CLASS_CODE).unwrap_or_default(),
                type_code: o.code(scheme::TYPE_CODE).unwrap_or_default(),
                format_code: o.code(scheme::FORMAT_CODE).unwrap_or_default(),
                confidentiality: o
                    .classifications
                    .iter()
                    .filter(|(s, _, _)| s == scheme::CONFIDENTIALITY_CODE)
                    .map(|(_, c, _)| c.clone())
                    .collect(),
                facility_type: o.code(scheme::FACILITY_TYPE_CODE),
                practice_setting: o.code(scheme::PRACTICE_SETTING_CODE),
                title: o.name,
                mime_type: o.mime_type,
                availability_status: o.status,
                entry_uuid: o.id,
            }),
        }
    }
    let pos = ss_marked
        .as_ref()
        .and_then(|id| packages.iter().position(|p| &p.id == id))
        .unwrap_or(0);
    if pos < packages.len() {
        let o = packages.swap_remove(pos);
        m.submission_set = SubmissionSet {
            unique_id: o.external(scheme::SS_UNIQUE_ID),
            source_id: o.external(scheme::SS_SOURCE_ID),
            patient_id: o.external(scheme::SS_PATIENT_ID),
            submission_time: o.slot("submissionTime").unwrap_or_default().to_string(),
            intended_recipients: o.slot_all("intendedRecipient"),
            author: o.author(scheme::SS_AUTHOR),
            content_type: o.code(scheme::CONTENT_TYPE_CODE),
            title: o.name,
            entry_uuid: o.id,
        };
    } else {
        return Err("no submission set (RegistryPackage)".into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_escaping_round_trips() {
        let s = "a|b^c~d\\e&f";
        assert_eq!(hl7_escape(s), "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f");
        assert_eq!(hl7_unescape(&hl7_escape(s)), s);
        // Found by the property test: an escape's closing backslash must not open another one.
        assert_eq!(hl7_escape("a~F|é"), "a\\R\\F\\F\\é");
        assert_eq!(hl7_unescape("a\\R\\F\\F\\é"), "a~F|é");
        assert_eq!(hl7_unescape("x\\Q\\y\\"), "x\\Q\\y\\");
    }

    #[test]
    fn patient_cx_follows_the_ans_sample() {
        let cx = patient_cx("162018885045327", "1.2.250.1.213.1.4.10");
        assert_eq!(cx, "162018885045327^^^&1.2.250.1.213.1.4.10&ISO^NH");
        assert_eq!(
            parse_cx(&cx),
            Some(("162018885045327".into(), "1.2.250.1.213.1.4.10".into()))
        );
        assert_eq!(parse_cx("nothing"), None);
    }
}
