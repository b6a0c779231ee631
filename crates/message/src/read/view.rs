//! The serde view of a received message, for `mss inbox show --json` and the REST inbox: ids and
//! codes as strings, as METADATA.XML writes them; document bytes left out (they are served apart).

use super::{ReceivedMessage, XdmAttachment};
use crate::xdm::ReadDocument;
use serde::Serialize;
use std::collections::HashMap;

/// A received message as JSON shows it. The store adds its own fields (id, mailbox, status…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// Message-ID without brackets.
    pub message_id: Option<String>,
    /// `From:` address.
    pub from: Option<String>,
    /// `From:` display name.
    pub from_name: Option<String>,
    /// The patient who wrote from Mon espace santé, else `null`.
    pub patient: Option<PatientView>,
    /// The subject as users see it (without `XDM/1.0/DDM+`).
    pub subject: String,
    /// `Date:` in RFC 3339, when present and valid.
    pub date: Option<String>,
    /// `To:` addresses.
    pub to: Vec<String>,
    /// `Cc:` addresses.
    pub cc: Vec<String>,
    /// `In-Reply-To` ids.
    pub in_reply_to: Vec<String>,
    /// `References` ids.
    pub references: Vec<String>,
    /// `X-MSS-MES: FIN` or subject `[FIN]`.
    pub end_of_exchange: bool,
    /// `X-MSS-NIL`.
    pub mss_nil: Option<String>,
    /// `X-MSS-CODECDA` values.
    pub mss_codecda: Vec<String>,
    /// `X-MSS-INS` (`true` for `O`).
    pub mss_ins_qualified: Option<bool>,
    /// `X-MSS-MES` as written.
    pub mss_mes: Option<String>,
    /// `Disposition-Notification-To` (an MDN is asked).
    pub disposition_notification_to: Option<String>,
    /// The text body.
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// Attachments, without their bytes.
    pub attachments: Vec<AttachmentView>,
    /// Number of documents found in the XDM archives.
    pub documents: usize,
    /// The XDM archives, merged (`null` when the message has none).
    pub xdm: Option<XdmView>,
    /// Every fault found, in plain words.
    pub problems: Vec<String>,
}

/// A patient sender: the INS of the address and the name of the display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientView {
    /// The INS (15 characters).
    pub ins: String,
    /// The name Mon espace santé shows.
    pub name: String,
}

/// An attachment without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentView {
    /// File name, empty when none.
    pub filename: String,
    /// `type/subtype`.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// The `xdm` object: `{"patient_id": …, "documents": […], "problems": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct XdmView {
    /// The submission set's `patientId` as written, e.g.
    /// `279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH`.
    pub patient_id: Option<String>,
    /// The INS kind of that `patientId`'s OID: `prod` (`.8`), `test` (`.10`), `demo` (`.11`);
    /// `null` for another assigning authority.
    pub patient_authority: Option<crate::InsAuthority>,
    /// The documents found, in METADATA.XML order.
    pub documents: Vec<XdmDocumentView>,
    /// The archives' faults.
    pub problems: Vec<String>,
}

/// One document of the `xdm` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XdmDocumentView {
    /// Its `URI` in METADATA.XML (e.g. `DOC00001.XML`).
    pub name: String,
    /// Its actual size in bytes.
    pub size: u64,
    /// SHA-1 of its bytes, lower-case hex.
    pub sha1: String,
    /// The SHA-1 is the METADATA.XML `hash`.
    pub hash_ok: bool,
    /// The size is the METADATA.XML `size`.
    pub size_ok: bool,
    /// `mimeType`.
    pub mime_type: String,
    /// `typeCode` (e.g. LOINC `11488-4`).
    pub type_code: String,
    /// `formatCode`.
    pub format_code: String,
    /// `Name`.
    pub title: String,
    /// `uniqueId`.
    pub unique_id: String,
    /// entryUUID (`urn:uuid:…`).
    pub entry_uuid: String,
    /// `patientId` as written (CX).
    pub patient_id: String,
    /// `creationTime`.
    pub creation_time: String,
    /// `authorPerson` (XCN), when given.
    pub author: Option<String>,
    /// `authorInstitution` values (XON).
    pub author_institutions: Vec<String>,
    /// entryUUID of the earlier document this one replaces (`RPLC`), if any.
    pub replaces: Option<String>,
    /// The sender withdraws this document and asks its deletion (availabilityStatus Deleted).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

impl XdmAttachment {
    /// This archive's `xdm` view.
    pub fn view(&self) -> XdmView {
        let mut v = XdmView::default();
        self.extend_view(&mut v);
        v
    }

    fn extend_view(&self, v: &mut XdmView) {
        if let Some(a) = &self.archive {
            if v.patient_id.is_none() {
                v.patient_id = a.patient_id().map(str::to_string);
                v.patient_authority = a
                    .patient_id()
                    .and_then(crate::metadata::parse_cx)
                    .and_then(|(_, oid)| crate::InsAuthority::from_oid(&oid));
            }
            // A map, not a search per document: a hostile METADATA.XML may hold thousands of each.
            let mut replaced: HashMap<&str, &str> = HashMap::new();
            for r in a.replacements() {
                replaced.entry(r.document.as_str()).or_insert(&r.replaced);
            }
            for d in a.documents() {
                let replaces = replaced
                    .get(d.entry.entry_uuid.as_str())
                    .map(|r| r.to_string());
                v.documents.push(document_view(d, replaces));
            }
        }
        v.problems.extend(self.problems.iter().cloned());
    }
}

fn document_view(d: &ReadDocument, replaces: Option<String>) -> XdmDocumentView {
    let e = &d.entry;
    XdmDocumentView {
        name: d.name().to_string(),
        size: d.content.len() as u64,
        sha1: d.sha1.clone(),
        hash_ok: d.hash_ok,
        size_ok: d.size_ok,
        mime_type: e.mime_type.clone(),
        type_code: e.type_code.code.clone(),
        format_code: e.format_code.code.clone(),
        title: e.title.clone(),
        unique_id: e.unique_id.clone(),
        entry_uuid: e.entry_uuid.clone(),
        patient_id: e.patient_id.clone(),
        creation_time: e.creation_time.clone(),
        author: e.author.person.clone(),
        author_institutions: e.author.institutions.clone(),
        replaces,
        withdrawn: e.is_deleted(),
    }
}

impl ReceivedMessage {
    /// The `xdm` view of all IHE_XDM archives merged, `None` when there is none.
    pub fn xdm_view(&self) -> Option<XdmView> {
        if self.xdm.is_empty() {
            return None;
        }
        let mut v = XdmView::default();
        for x in &self.xdm {
            x.extend_view(&mut v);
        }
        Some(v)
    }

    /// The JSON view of the message (`mss inbox show --json`), bodies included.
    pub fn view(&self) -> MessageView {
        MessageView {
            message_id: self.message_id.clone(),
            from: self.from.clone(),
            from_name: self.from_name.clone(),
            patient: self.patient_sender().map(|p| PatientView {
                ins: p.ins.to_string(),
                name: p.display_name.clone(),
            }),
            subject: self.display_subject().to_string(),
            date: self.date.and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            to: self.to.clone(),
            cc: self.cc.clone(),
            in_reply_to: self.in_reply_to.clone(),
            references: self.references.clone(),
            end_of_exchange: self.end_of_exchange,
            mss_nil: self.mss.nil.clone(),
            mss_codecda: self.mss.codecda.clone(),
            mss_ins_qualified: self.mss.ins_qualified,
            mss_mes: self.mss.mes.clone(),
            disposition_notification_to: self.disposition_notification_to.clone(),
            text: self.text.as_ref().map(|t| t.0.clone()),
            html: self.html.as_ref().map(|t| t.0.clone()),
            attachments: self
                .attachments
                .iter()
                .map(|a| AttachmentView {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.content.len(),
                })
                .collect(),
            documents: self.documents().count(),
            xdm: self.xdm_view(),
            problems: self.problems.clone(),
        }
    }
}

/// The header fields of `raw` in order, unfolded (RFC 5322 §2.2.3), values trimmed and not decoded; a line
/// without a colon is skipped. Bytes that are not UTF-8 are shown replaced.
pub fn header_fields(raw: &[u8]) -> Vec<[String; 2]> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut out: Vec<[String; 2]> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            out.push([n, v.trim().to_string()]);
        }
        if let Some((n, v)) = line.split_once(':')
            && !n.is_empty()
            && !n.contains([' ', '\t'])
        {
            current = Some((n.to_string(), v.to_string()));
        }
    }
    if let Some((n, v)) = current {
        out.push([n, v.trim().to_string()]);
    }
    out
}

#[cfg(test)]
mod header_tests {
    use super::header_fields;
    use proptest::prelude::*;

    #[test]
    fn fields_are_unfolded_in_order_and_the_body_is_not_read() {
        let raw = b"From: a@x.fr\r\nSubject: =?utf-8?q?R=C3=A9?=\r\n  suite\r\nbad line\r\nX-A:\r\n\r\nB: body\r\n";
        assert_eq!(
            header_fields(raw),
            [
                ["From".to_string(), "a@x.fr".to_string()],
                [
                    "Subject".to_string(),
                    "=?utf-8?q?R=C3=A9?= suite".to_string()
                ],
                ["X-A".to_string(), String::new()],
            ]
        );
        assert_eq!(
            header_fields(b"A: 1\n\nB: 2\n"),
            [["A".to_string(), "1".to_string()]]
        );
    }

    proptest! {
        #[test]
        fn any_bytes_give_names_without_blanks(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            for [n, _] in header_fields(&raw) {
                prop_assert!(!n.is_empty() && !n.contains([' ', '\t', '\n']));
            }
        }
    }
}
