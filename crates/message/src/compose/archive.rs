//! The `IHE_XDM.zip` of a composed message: the CDA headers and the request mapped to the XDS metadata
//! (`METADATA.XML`, [`crate::metadata`]), then the archive ([`crate::xdm`]).

use super::{Doc, libelle};
use crate::cda::{CdaHeader, CdaOrganization, Person};
use crate::env::Env;
use crate::ins::Ins;
use crate::metadata::{
    self, Author, Code, DocumentEntry, Metadata, Replacement, SubmissionSet, hl7_escape,
};
use crate::request::*;
use crate::xdm::{self, ArchiveFile};
use crate::{Error, InsAuthority, Result};
use mss_types::MailAddress;
use sha1::{Digest, Sha1};

/// The XDS code of a CDA confidentiality left out: `N` (normal).
const CONFIDENTIALITY_NORMAL: (&str, &str, &str) = ("N", "2.16.840.1.113883.5.25", "Normal");
/// Default XDS formatCode (TRE_A11-IheFormatCode).
const FORMAT_DEFAULT: (&str, &str, &str) = (
    "urn:ihe:iti:xds:2017:mimeTypeSufficient",
    "1.3.6.1.4.1.19376.1.2.3",
    "Format from mimeType",
);
const IDNPS_OID: &str = "1.2.250.1.71.4.2.1";
const IDNST_OID: &str = "1.2.250.1.71.4.2.2";

/// HL7 TS (`YYYYMMDD[HHMM[SS[.f]]][+/-ZZZZ]`) to the XDS DTM in UTC. Without an offset the
/// digits are kept as they are (the time zone is unknown).
fn ts_to_utc(ts: &str) -> Option<String> {
    let ts = ts.trim();
    let split = ts.find(['+', '-']).unwrap_or(ts.len());
    let (main, offset) = ts.split_at(split);
    let digits = main.split('.').next().unwrap_or("");
    if digits.len() < 4 || digits.len() > 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if offset.is_empty() || digits.len() < 12 {
        return Some(digits.to_string());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u8>().ok());
    let year: i32 = digits[..4].parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(num(4..6)?).ok()?, num(6..8)?)
            .ok()?;
    let t = time::Time::from_hms(num(8..10)?, num(10..12)?, num(12..14).unwrap_or(0)).ok()?;
    let sign: i32 = if offset.starts_with('-') { -1 } else { 1 };
    let off = offset.get(1..5)?;
    if !off.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = sign * (off[..2].parse::<i32>().ok()? * 3600 + off[2..].parse::<i32>().ok()? * 60);
    let utc = time::PrimitiveDateTime::new(date, t)
        .assume_offset(time::UtcOffset::from_whole_seconds(secs).ok()?)
        .to_offset(time::UtcOffset::UTC);
    Some(dtm(utc))
}

fn dtm(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn xcn(p: &Person) -> Option<String> {
    let name = format!(
        "^{}^{}^^^{}",
        hl7_escape(&p.family),
        hl7_escape(&p.given),
        hl7_escape(&p.prefix)
    );
    match &p.id {
        Some(id) => {
            let (value, authority) = match &id.extension {
                Some(x) => (x.as_str(), id.root.as_str()),
                None => (id.root.as_str(), ""),
            };
            let kind = if authority == IDNPS_OID {
                "^D^^^IDNPS"
            } else {
                "^D"
            };
            let authority = if authority.is_empty() {
                String::new()
            } else {
                format!("&{authority}&ISO")
            };
            Some(format!("{}{name}^^^{authority}{kind}", hl7_escape(value)))
        }
        None if !p.family.is_empty() => Some(name),
        None => None,
    }
}

fn xon(o: &CdaOrganization) -> Option<String> {
    let name = hl7_escape(&o.name);
    match &o.id {
        Some(id) => {
            let ext = id.extension.as_deref().unwrap_or("");
            let kind = if id.root == IDNST_OID { "IDNST" } else { "" };
            Some(format!(
                "{name}^^^^^&{}&ISO^{kind}^^^{}",
                id.root,
                hl7_escape(ext)
            ))
        }
        None if !name.is_empty() => Some(name),
        None => None,
    }
}

fn cda_author(h: &CdaHeader) -> Option<Author> {
    let p = h.author.as_ref()?;
    let a = Author {
        person: xcn(p),
        institutions: p.organization.as_ref().and_then(xon).into_iter().collect(),
        specialty: p.specialty.as_ref().map(|s| {
            format!(
                "{}^{}^{}",
                hl7_escape(&s.code),
                hl7_escape(&s.display_name),
                s.code_system
            )
        }),
    };
    (a.person.is_some() || !a.institutions.is_empty()).then_some(a)
}

fn sender_author(s: &Sender) -> Author {
    match s.kind {
        SenderKind::Per => Author {
            person: Some(format!(
                "^{}^{}^^^{}",
                hl7_escape(s.last_name.as_deref().unwrap_or("").trim()).to_uppercase(),
                hl7_escape(s.first_name.as_deref().unwrap_or("").trim()),
                hl7_escape(s.title.as_deref().unwrap_or("").trim())
            )),
            institutions: s.entity.iter().map(|e| hl7_escape(e.trim())).collect(),
            specialty: None,
        },
        _ => Author {
            person: None,
            institutions: s.entity.iter().map(|e| hl7_escape(e.trim())).collect(),
            specialty: None,
        },
    }
}

/// A stable `2.25` OID for one product reference (name-based, like a UUID v5 over SHA-1).
fn source_id_for(nil: &str) -> String {
    let digest = Sha1::digest(format!("mss:xds-source:{nil}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(b))
}

fn urn_uuid(env: &mut Env) -> String {
    format!("urn:uuid:{}", env.uuid())
}

pub(super) fn build_xdm(
    req: &ComposeRequest,
    cfg: &ComposeConfig,
    env: &mut Env,
    docs: &[Doc<'_>],
    (ins, authority): &(Ins, InsAuthority),
    sender: &MailAddress,
    recipients: &[(String, MailAddress)],
) -> Result<Vec<u8>> {
    let patient = req
        .patient
        .as_ref()
        .ok_or_else(|| Error::invalid("patient", "required"))?;
    let now = env.now();
    let submission_time = dtm(now);
    let patient_id = metadata::patient_cx(ins.as_str(), authority.oid());
    let info = vec![
        format!(
            "PID-5|{}^{}^^^^^L",
            hl7_escape(patient.birth_name.trim()).to_uppercase(),
            hl7_escape(patient.first_given_name.trim())
        ),
        format!("PID-7|{}", patient.birth_date),
        format!("PID-8|{}", patient.sex.code()),
    ];
    let mut entries = Vec::with_capacity(docs.len());
    let mut replacements = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let h = &d.header;
        let src = &req.documents[i];
        let unique_id = match &h.id {
            Some(id) => id.xds_unique_id(),
            None => env.oid(),
        };
        if unique_id.len() > 128 {
            return Err(Error::invalid(
                format!("documents[{i}].cda.content"),
                "ClinicalDocument/id is longer than the 128 characters of an XDS uniqueId",
            ));
        }
        let creation_time = h
            .effective_time
            .as_deref()
            .and_then(ts_to_utc)
            .unwrap_or_else(|| submission_time.clone());
        let confidentiality = match &h.confidentiality {
            Some(c) => Code::from(c),
            None => Code {
                code: CONFIDENTIALITY_NORMAL.0.into(),
                scheme: CONFIDENTIALITY_NORMAL.1.into(),
                display: CONFIDENTIALITY_NORMAL.2.into(),
            },
        };
        let format_code = src
            .format_code
            .as_ref()
            .map(Code::from)
            .unwrap_or_else(|| Code {
                code: FORMAT_DEFAULT.0.into(),
                scheme: FORMAT_DEFAULT.1.into(),
                display: FORMAT_DEFAULT.2.into(),
            });
        let title = if h.title.is_empty() {
            libelle(h).to_string()
        } else {
            h.title.clone()
        };
        let entry_uuid = metadata::document_entry_uuid(&unique_id);
        // a withdrawal names the version withdrawn, not the one it once replaced
        let replaced = match (&src.replaces, src.withdraw) {
            (Some(r), _) => Some(r.trim().to_owned()),
            (None, false) => h.replaces.as_ref().map(|r| r.xds_unique_id()),
            (None, true) => None,
        };
        if let Some(r) = replaced {
            if r.is_empty() || r == unique_id {
                return Err(Error::invalid(
                    format!("documents[{i}].replaces"),
                    "the replaced document's uniqueId is empty or the document's own",
                ));
            }
            replacements.push(Replacement {
                document: entry_uuid.clone(),
                replaced: metadata::document_entry_uuid(&r),
            });
        }
        entries.push(DocumentEntry {
            entry_uuid,
            availability_status: src.withdraw.then(|| metadata::STATUS_DELETED.to_owned()),
            unique_id,
            uri: d.file.clone(),
            mime_type: "text/xml".into(),
            hash: mss_types::hex(&Sha1::digest(&d.bytes)),
            size: d.bytes.len() as u64,
            creation_time,
            language: h.language.clone().unwrap_or_else(|| "fr-FR".into()),
            patient_id: patient_id.clone(),
            source_patient_id: patient_id.clone(),
            source_patient_info: info.clone(),
            legal_authenticator: h.legal_authenticator.as_ref().and_then(xcn),
            service_start: h.service_start.as_deref().and_then(ts_to_utc),
            service_stop: h.service_stop.as_deref().and_then(ts_to_utc),
            title,
            author: cda_author(h).unwrap_or_else(|| sender_author(&req.sender)),
            class_code: Code::from(&src.class_code),
            type_code: Code::from(&h.code),
            format_code,
            confidentiality: std::iter::once(confidentiality)
                .chain(src.confidentiality_codes.iter().map(Code::from))
                .collect(),
            facility_type: src
                .healthcare_facility_type_code
                .as_ref()
                .map(Code::from)
                .or_else(|| h.facility_type.as_ref().map(Code::from)),
            practice_setting: src
                .practice_setting_code
                .as_ref()
                .map(Code::from)
                .or_else(|| h.practice_setting().map(Code::from)),
        });
    }
    let ss_author = entries
        .first()
        .map(|e| e.author.clone())
        .unwrap_or_default();
    let metadata = Metadata {
        submission_set: SubmissionSet {
            entry_uuid: urn_uuid(env),
            unique_id: env.oid(),
            source_id: cfg
                .source_id
                .clone()
                .unwrap_or_else(|| source_id_for(&cfg.product_reference)),
            submission_time: submission_time.clone(),
            patient_id,
            title: docs
                .first()
                .map(|d| libelle(&d.header).to_string())
                .unwrap_or_default(),
            author: ss_author,
            // Bcc stays out of the archive: the other recipients would see it.
            intended_recipients: recipients
                .iter()
                .filter(|(f, _)| !f.starts_with("recipients.bcc"))
                .map(|(_, a)| format!("||^^Internet^{}", hl7_escape(a.as_str())))
                .collect(),
            content_type: None,
        },
        documents: entries,
        replacements,
    };
    let xml = metadata::write(&metadata, || urn_uuid(env));
    let readme = xdm::readme(
        &cfg.product_reference,
        sender.as_str(),
        &format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        ),
        docs.len(),
    );
    let index = xdm::index(
        &docs
            .iter()
            .zip(&metadata.documents)
            .map(|(d, e)| (d.file.clone(), e.title.clone()))
            .collect::<Vec<_>>(),
    );
    let meta_path = format!("{}/METADATA.XML", xdm::SUBSET);
    let doc_paths: Vec<String> = docs
        .iter()
        .map(|d| format!("{}/{}", xdm::SUBSET, d.file))
        .collect();
    let mut files = Vec::with_capacity(3 + docs.len());
    files.push(ArchiveFile {
        path: "README.TXT",
        content: readme.as_bytes(),
        deflate: None,
    });
    files.push(ArchiveFile {
        path: "INDEX.HTM",
        content: index.as_bytes(),
        deflate: None,
    });
    files.push(ArchiveFile {
        path: &meta_path,
        content: xml.as_bytes(),
        deflate: Some(xdm::METADATA_DEFLATE_LEVEL),
    });
    for (d, p) in docs.iter().zip(&doc_paths) {
        files.push(ArchiveFile {
            path: p,
            content: &d.bytes,
            deflate: Some(xdm::DEFLATE_LEVEL),
        });
    }
    xdm::write_archive(&files, now)
        .map_err(|e| Error::refused("documents", format!("cannot build IHE_XDM.zip: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_times_become_utc() {
        assert_eq!(
            ts_to_utc("20261120143000+0100").as_deref(),
            Some("20261120133000")
        );
        assert_eq!(
            ts_to_utc("20260101003000+0200").as_deref(),
            Some("20251231223000")
        );
        assert_eq!(
            ts_to_utc("202611201430-0330").as_deref(),
            Some("20261120180000")
        );
        assert_eq!(ts_to_utc("20261120").as_deref(), Some("20261120"));
        assert_eq!(
            ts_to_utc("20261120143000.123").as_deref(),
            Some("20261120143000")
        );
        assert_eq!(ts_to_utc("2026x").as_deref(), None);
        assert_eq!(ts_to_utc("20261340143000+0100").as_deref(), None);
    }

    #[test]
    fn source_id_is_stable_per_product() {
        assert_eq!(source_id_for("DEV935997"), source_id_for("DEV935997"));
        assert_ne!(source_id_for("DEV935997"), source_id_for("DEV935998"));
        assert!(source_id_for("X").starts_with("2.25."));
    }
}
