//! The CDA R2 header fields that feed the XDS metadata, the subject and the Ségur headers.
//!
//! The whole document is walked (so that a malformed body is refused before anything is sent),
//! but only header elements are kept. Mapping to XDS follows the ANS sample conventions
//! (docs/mssante.md M1): `typeCode` = `code`, `confidentialityCode`, `creationTime` = `effectiveTime`,
//! author and institution from the first `author`, `practiceSettingCode` from an organisation's
//! `standardIndustryClassCode`, `healthcareFacilityTypeCode` from the encounter location.

use crate::xml::{Element, Step, walk_until};

/// `root` + optional `extension` of an `II`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceId {
    /// The OID.
    pub root: String,
    /// The identifier within it.
    pub extension: Option<String>,
}

impl InstanceId {
    /// The XDS `uniqueId` of a document with this id: `root^extension`, or the root alone.
    pub fn xds_unique_id(&self) -> String {
        match &self.extension {
            Some(x) => format!("{}^{}", self.root, x),
            None => self.root.clone(),
        }
    }
}

/// A `CD`/`CE` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodedValue {
    /// `@code`.
    pub code: String,
    /// `@codeSystem` (OID).
    pub code_system: String,
    /// `@displayName`, empty when absent.
    pub display_name: String,
}

/// A person of the header (author, legal authenticator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// `id` (RPPS-based IDNPS `8…` under `1.2.250.1.71.4.2.1` for professionals).
    pub id: Option<InstanceId>,
    /// `code`: profession / speciality.
    pub specialty: Option<CodedValue>,
    /// `name/prefix`.
    pub prefix: String,
    /// First `name/given`.
    pub given: String,
    /// `name/family`.
    pub family: String,
    /// `representedOrganization`.
    pub organization: Option<CdaOrganization>,
}

/// An organisation of the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdaOrganization {
    /// `id` (FINESS/SIRET-based IDNST under `1.2.250.1.71.4.2.2`).
    pub id: Option<InstanceId>,
    /// `name`.
    pub name: String,
    /// `standardIndustryClassCode` (practice setting).
    pub industry: Option<CodedValue>,
}

/// The header fields mss uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdaHeader {
    /// `ClinicalDocument/id`.
    pub id: Option<InstanceId>,
    /// `ClinicalDocument/code`: document type (LOINC), `X-MSS-CODECDA`, XDS `typeCode`.
    pub code: CodedValue,
    /// `title`.
    pub title: String,
    /// `effectiveTime/@value` (HL7 TS).
    pub effective_time: Option<String>,
    /// `confidentialityCode`.
    pub confidentiality: Option<CodedValue>,
    /// `languageCode/@code`.
    pub language: Option<String>,
    /// `recordTarget/patientRole/id`, all of them.
    pub patient_ids: Vec<InstanceId>,
    /// The first `author/assignedAuthor`.
    pub author: Option<Person>,
    /// `custodian/.../representedCustodianOrganization`.
    pub custodian: Option<CdaOrganization>,
    /// `legalAuthenticator/assignedEntity`.
    pub legal_authenticator: Option<Person>,
    /// `documentationOf/serviceEvent/effectiveTime/low/@value` (first one).
    pub service_start: Option<String>,
    /// `documentationOf/serviceEvent/effectiveTime/high/@value` (first one).
    pub service_stop: Option<String>,
    /// `documentationOf/serviceEvent/performer/.../representedOrganization/standardIndustryClassCode`.
    pub performer_industry: Option<CodedValue>,
    /// `componentOf/encompassingEncounter/location/healthCareFacility/code`.
    pub facility_type: Option<CodedValue>,
    /// `relatedDocument[@typeCode='RPLC']/parentDocument/id`: the document this version replaces.
    pub replaces: Option<InstanceId>,
}

impl CdaHeader {
    /// The practice setting: the performer's organisation, else the author's.
    pub fn practice_setting(&self) -> Option<&CodedValue> {
        self.performer_industry.as_ref().or_else(|| {
            self.author
                .as_ref()
                .and_then(|a| a.organization.as_ref())
                .and_then(|o| o.industry.as_ref())
        })
    }

    /// The INS of `recordTarget` (the `id` whose root is an INS-NIR OID), if any.
    pub fn patient_ins(&self) -> Option<(&str, crate::InsAuthority)> {
        self.patient_ids.iter().find_map(|id| {
            let authority = crate::InsAuthority::from_oid(&id.root)?;
            Some((id.extension.as_deref()?, authority))
        })
    }
}

const ROOT: &str = "ClinicalDocument";
const HL7_NS: &str = "urn:hl7-org:v3";

/// Reads the header of a CDA R2 document. The reason of an error never quotes document content
/// beyond element names.
pub fn parse_header(bytes: &[u8]) -> Result<CdaHeader, String> {
    let xml =
        std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 (byte {})", e.valid_up_to()))?;
    parse_header_str(xml)
}

/// [`parse_header`] of text already known to be UTF-8 (a JSON string), saving the validation.
pub fn parse_header_str(xml: &str) -> Result<CdaHeader, String> {
    let mut h = CdaHeader::default();
    let mut code: Option<CodedValue> = None;
    let mut authors = 0u32;
    let mut documentation_of = 0u32;
    let mut replacing = false;
    // The body (`component`) is checked for well-formedness but not reported: it is most of the
    // document and holds no header field.
    walk_until(xml, Some("ClinicalDocument/component"), |path, step| {
        let rel = if path == ROOT {
            ""
        } else if let Some(rest) = path.strip_prefix(ROOT).and_then(|r| r.strip_prefix('/')) {
            rest
        } else {
            return Err(format!("the root element is <{path}>, not <{ROOT}>"));
        };
        match step {
            Step::Open(e) => {
                if rel.is_empty() {
                    if e.own_namespace()?.as_deref() != Some(HL7_NS) {
                        return Err(format!("<{ROOT}> is not in the {HL7_NS} namespace"));
                    }
                    return Ok(());
                }
                if rel == "author" {
                    authors += 1;
                }
                if rel == "documentationOf" {
                    documentation_of += 1;
                }
                if rel == "relatedDocument" {
                    replacing = e.attr("typeCode")?.as_deref() == Some("RPLC");
                }
                if rel == "relatedDocument/parentDocument/id" && replacing && h.replaces.is_none() {
                    h.replaces = instance_id(e)?;
                }
                open(&mut h, &mut code, rel, e, authors, documentation_of)
            }
            Step::Text(t) => {
                text(&mut h, rel, t, authors);
                Ok(())
            }
            Step::Close => Ok(()),
        }
    })?;
    h.code = code.ok_or("the CDA header has no <code> (document type)")?;
    if h.code.code.is_empty() || h.code.code_system.is_empty() {
        return Err("the CDA <code> needs @code and @codeSystem".into());
    }
    h.title = h.title.trim().to_string();
    Ok(h)
}

fn open(
    h: &mut CdaHeader,
    code: &mut Option<CodedValue>,
    rel: &str,
    e: &Element<'_>,
    authors: u32,
    documentation_of: u32,
) -> Result<(), String> {
    const AUTHOR: &str = "author/assignedAuthor/";
    const LEGAL: &str = "legalAuthenticator/assignedEntity/";
    const CUSTODIAN: &str = "custodian/assignedCustodian/representedCustodianOrganization/";
    match rel {
        "id" => h.id = instance_id(e)?,
        "code" => *code = coded(e)?,
        "effectiveTime" => h.effective_time = e.attr("value")?,
        "confidentialityCode" => h.confidentiality = coded(e)?,
        "languageCode" => h.language = e.attr("code")?,
        "recordTarget/patientRole/id" => h.patient_ids.extend(instance_id(e)?),
        "componentOf/encompassingEncounter/location/healthCareFacility/code" => {
            h.facility_type = coded(e)?
        }
        "documentationOf/serviceEvent/effectiveTime/low" if documentation_of == 1 => {
            h.service_start = e.attr("value")?
        }
        "documentationOf/serviceEvent/effectiveTime/high" if documentation_of == 1 => {
            h.service_stop = e.attr("value")?
        }
        "documentationOf/serviceEvent/performer/assignedEntity/representedOrganization/standardIndustryClassCode"
            if h.performer_industry.is_none() =>
        {
            h.performer_industry = coded(e)?
        }
        _ => {
            if let Some(rest) = rel.strip_prefix(AUTHOR).filter(|_| authors == 1) {
                let p = h.author.get_or_insert_with(Person::default);
                person_attr(p, rest, e)?;
            } else if let Some(rest) = rel.strip_prefix(LEGAL) {
                let p = h.legal_authenticator.get_or_insert_with(Person::default);
                person_attr(p, rest, e)?;
            } else if let Some(rest) = rel.strip_prefix(CUSTODIAN) {
                let o = h.custodian.get_or_insert_with(CdaOrganization::default);
                if rest == "id" && o.id.is_none() {
                    o.id = instance_id(e)?;
                }
            }
        }
    }
    Ok(())
}

fn person_attr(p: &mut Person, rest: &str, e: &Element<'_>) -> Result<(), String> {
    match rest {
        "id" if p.id.is_none() => p.id = instance_id(e)?,
        "code" => p.specialty = coded(e)?,
        "representedOrganization/id" => {
            let o = p.organization.get_or_insert_with(CdaOrganization::default);
            if o.id.is_none() {
                o.id = instance_id(e)?;
            }
        }
        "representedOrganization/standardIndustryClassCode" => {
            p.organization
                .get_or_insert_with(CdaOrganization::default)
                .industry = coded(e)?
        }
        _ => {}
    }
    Ok(())
}

fn text(h: &mut CdaHeader, rel: &str, t: &str, authors: u32) {
    const AUTHOR: &str = "author/assignedAuthor/";
    const LEGAL: &str = "legalAuthenticator/assignedEntity/";
    const CUSTODIAN_NAME: &str =
        "custodian/assignedCustodian/representedCustodianOrganization/name";
    if rel == "title" {
        h.title.push_str(t);
    } else if let Some(rest) = rel.strip_prefix(AUTHOR).filter(|_| authors == 1) {
        if let Some(p) = h.author.as_mut() {
            person_text(p, rest, t);
        }
    } else if let Some(rest) = rel.strip_prefix(LEGAL) {
        if let Some(p) = h.legal_authenticator.as_mut() {
            person_text(p, rest, t);
        }
    } else if rel == CUSTODIAN_NAME
        && let Some(o) = h.custodian.as_mut()
    {
        o.name.push_str(t.trim());
    }
}

fn person_text(p: &mut Person, rest: &str, t: &str) {
    let t = t.trim();
    if t.is_empty() {
        return;
    }
    match rest {
        "assignedPerson/name/prefix" if p.prefix.is_empty() => p.prefix = t.into(),
        "assignedPerson/name/given" if p.given.is_empty() => p.given = t.into(),
        "assignedPerson/name/family" if p.family.is_empty() => p.family = t.into(),
        "representedOrganization/name" => {
            p.organization
                .get_or_insert_with(CdaOrganization::default)
                .name = t.into()
        }
        _ => {}
    }
}

fn instance_id(e: &Element<'_>) -> Result<Option<InstanceId>, String> {
    Ok(e.attr("root")?
        .filter(|r| !r.is_empty())
        .map(|root| InstanceId {
            root,
            extension: e.attr("extension").ok().flatten().filter(|x| !x.is_empty()),
        }))
}

fn coded(e: &Element<'_>) -> Result<Option<CodedValue>, String> {
    let Some(code) = e.attr("code")? else {
        return Ok(None);
    };
    Ok(Some(CodedValue {
        code,
        code_system: e.attr("codeSystem")?.unwrap_or_default(),
        display_name: e.attr("displayName")?.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <id root="1.2.250.1.999.1.1" extension="CR-42"/>
  <code code="11488-4" codeSystem="2.16.840.1.113883.6.1" displayName="CR de consultation"/>
  <title>CR de consultation &amp; suivi</title>
  <effectiveTime value="20261120143000+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25" displayName="Normal"/>
  <languageCode code="fr-FR"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.213.1.4.10" extension="279035121518989"/>
    <id root="1.2.3.4" extension="IPP1"/>
  </patientRole></recordTarget>
  <author><time value="20261120143000+0100"/><assignedAuthor>
    <id root="1.2.250.1.71.4.2.1" extension="810101234567"/>
    <code code="G15_10/SM54" codeSystem="1.2.250.1.213.1.1.4.5" displayName="Médecine générale"/>
    <assignedPerson><name><prefix>Dr</prefix><given>Marie</given><family>MARTIN</family></name></assignedPerson>
    <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1690000002"/><name>Cabinet du Parc</name>
      <standardIndustryClassCode code="AMBULATOIRE" codeSystem="1.2.250.1.213.1.1.4.9" displayName="Ambulatoire"/>
    </representedOrganization></assignedAuthor></author>
  <author><assignedAuthor><id root="9.9" extension="other"/></assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.250.1.71.4.2.2" extension="1690000002"/><name>Cabinet du Parc</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <documentationOf><serviceEvent><effectiveTime><low value="20261120140000+0100"/><high value="20261120143000+0100"/></effectiveTime></serviceEvent></documentationOf>
  <componentOf><encompassingEncounter><effectiveTime value="20261120"/><location><healthCareFacility>
    <code code="SA07" codeSystem="1.2.250.1.71.4.2.4" displayName="Cabinet individuel"/></healthCareFacility></location></encompassingEncounter></componentOf>
  <component><nonXMLBody><text mediaType="text/plain">Examen normal.</text></nonXMLBody></component>
</ClinicalDocument>"#;

    #[test]
    fn reads_the_header_fields() {
        let h = parse_header(CDA.as_bytes()).expect("valid CDA");
        assert_eq!(h.code.code, "11488-4");
        assert_eq!(h.code.code_system, "2.16.840.1.113883.6.1");
        assert_eq!(h.code.display_name, "CR de consultation");
        assert_eq!(h.title, "CR de consultation & suivi");
        assert_eq!(h.effective_time.as_deref(), Some("20261120143000+0100"));
        assert_eq!(
            h.confidentiality.as_ref().map(|c| c.code.as_str()),
            Some("N")
        );
        assert_eq!(h.language.as_deref(), Some("fr-FR"));
        assert_eq!(
            h.patient_ins(),
            Some(("279035121518989", crate::InsAuthority::Test))
        );
        let a = h.author.as_ref().expect("author");
        assert_eq!(
            a.id.as_ref().and_then(|i| i.extension.as_deref()),
            Some("810101234567")
        );
        assert_eq!(
            (a.prefix.as_str(), a.given.as_str(), a.family.as_str()),
            ("Dr", "Marie", "MARTIN")
        );
        let o = a.organization.as_ref().expect("organization");
        assert_eq!(o.name, "Cabinet du Parc");
        assert_eq!(
            o.id.as_ref().and_then(|i| i.extension.as_deref()),
            Some("1690000002")
        );
        assert_eq!(
            h.practice_setting().map(|c| c.code.as_str()),
            Some("AMBULATOIRE")
        );
        assert_eq!(
            h.facility_type.as_ref().map(|c| c.code.as_str()),
            Some("SA07")
        );
        assert_eq!(h.service_start.as_deref(), Some("20261120140000+0100"));
        assert_eq!(h.service_stop.as_deref(), Some("20261120143000+0100"));
        assert_eq!(
            h.custodian.as_ref().map(|c| c.name.as_str()),
            Some("Cabinet du Parc")
        );
        assert_eq!(
            h.id.as_ref().map(|i| i.root.as_str()),
            Some("1.2.250.1.999.1.1")
        );
    }

    #[test]
    fn refuses_malformed_documents_with_a_reason() {
        let cases: [(&[u8], &str); 6] = [
            (b"%PDF-1.4", "text outside the root element"),
            (b"\xff\xfe<a/>", "not UTF-8 (byte 0)"),
            (
                b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>x</title></ClinicalDocument>",
                "the CDA header has no <code> (document type)",
            ),
            (
                b"<ClinicalDocument><code code=\"1\" codeSystem=\"2\"/></ClinicalDocument>",
                "<ClinicalDocument> is not in the urn:hl7-org:v3 namespace",
            ),
            (
                b"<Document xmlns=\"urn:hl7-org:v3\"/>",
                "the root element is <Document>, not <ClinicalDocument>",
            ),
            (
                b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><code code=\"1\"/></ClinicalDocument>",
                "the CDA <code> needs @code and @codeSystem",
            ),
        ];
        for (bytes, reason) in cases {
            assert_eq!(parse_header(bytes).err().as_deref(), Some(reason));
        }
    }

    #[test]
    fn prefixed_root_is_accepted() {
        let xml = r#"<v3:ClinicalDocument xmlns:v3="urn:hl7-org:v3"><v3:code code="1" codeSystem="2"/></v3:ClinicalDocument>"#;
        assert_eq!(
            parse_header(xml.as_bytes()).map(|h| h.code.code),
            Ok("1".into())
        );
    }
}
