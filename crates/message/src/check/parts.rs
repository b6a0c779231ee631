//! The rules of the body: MIME faults, text parts, IHE_XDM archives, PDFs, size towards a
//! patient, the MDN's structure.

use super::headers::{KO_SUBJECT, to_patient};
use super::mime::Mime;
use super::{CheckConfig, Findings, Kind};
use crate::patient::PatientIdentity;
use crate::{InsAuthority, ReceivedMessage, Report, xdm};

/// The reader's problems, each under its rule: the message's own first, then each archive's.
pub(super) fn read_problems(msg: &ReceivedMessage, out: &mut Findings) {
    let in_archives: usize = msg.xdm.iter().map(|x| x.problems.len()).sum();
    let own = msg.problems.len().saturating_sub(in_archives);
    for p in &msg.problems[..own] {
        // A missing From is the header rules' finding.
        if p.starts_with("no sender address") {
            continue;
        }
        out.push("mss.mime", "message", p.as_str());
    }
    for x in &msg.xdm {
        let place = attachment_place(msg, x.attachment);
        for p in &x.problems {
            out.push(archive_rule(p), place.as_str(), p.as_str());
        }
    }
}

/// The rule of an archive problem of the reader ([`xdm::inspect_archive`]).
pub(crate) fn archive_rule(problem: &str) -> &'static str {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| problem.starts_with(p));
    if starts(&["not a zip archive", "no METADATA.XML"]) {
        "ECO.2.1.1"
    } else if starts(&["hash mismatch"]) {
        "mss.xdm.hash"
    } else if starts(&["size mismatch"]) {
        "mss.xdm.size"
    } else if starts(&["patient differs"]) {
        "mss.xdm.patient"
    } else if starts(&["patient id is not a valid INS"]) {
        "ECO.2.1.2"
    } else if starts(&[
        "too many entries",
        "archive over the size limit",
        "compression ratio over the limit",
        "METADATA.XML over the size limit",
    ]) {
        "mss.xdm.limits"
    } else {
        "mss.xdm.layout"
    }
}

fn attachment_place(msg: &ReceivedMessage, index: usize) -> String {
    let kind = msg
        .attachments
        .get(index)
        .map_or("", |a| a.content_type.as_str());
    let xdm = msg.xdm.iter().any(|x| x.attachment == index);
    if xdm {
        format!("attachment {} (IHE_XDM.zip)", index + 1)
    } else {
        format!("attachment {} ({kind})", index + 1)
    }
}

pub(super) fn check(
    msg: &ReceivedMessage,
    mime: &Mime,
    cfg: &CheckConfig,
    kind: Kind,
    out: &mut Findings,
) {
    if kind == Kind::Dsn {
        return;
    }
    if mime.parsed {
        texts(mime, out);
    }
    body_type(mime, kind, out);
    archives(msg, mime, out);
    attachments(msg, out);
    if to_patient(msg) && msg.raw.len() > cfg.patient_max_bytes {
        out.push(
            "mss.mes.size",
            "message",
            format!(
                "{} bytes: a message to Mon espace santé is limited to {} bytes",
                msg.raw.len(),
                cfg.patient_max_bytes
            ),
        );
    }
    if kind == Kind::Mdn {
        mdn(msg, mime, out);
    }
}

fn texts(mime: &Mime, out: &mut Findings) {
    const R: &str = "ECO.2.2.3";
    for t in &mime.texts {
        let place = format!("part {} ({})", t.part, t.content_type);
        match t.charset.as_deref() {
            Some("utf-8" | "utf8") if t.invalid_utf8 => out.push(
                R,
                place,
                "declared UTF-8, but its bytes are not valid UTF-8",
            ),
            Some("utf-8" | "utf8") => {}
            Some("us-ascii" | "ascii") | None if t.non_ascii => out.push(
                R,
                place,
                "8-bit text without charset=utf-8 (declare UTF-8 and encode in it)",
            ),
            Some("us-ascii" | "ascii") | None => {}
            Some(other) => out.push(
                R,
                place,
                format!("charset {other}: text parts are in UTF-8"),
            ),
        }
    }
}

fn body_type(mime: &Mime, kind: Kind, out: &mut Findings) {
    if !mime.parsed || kind != Kind::Message {
        return;
    }
    let body = match mime.root_type.as_str() {
        "multipart/mixed" => mime.children.first().map_or("", String::as_str),
        root => root,
    };
    if !matches!(body, "text/plain" | "multipart/alternative") {
        out.push(
            "ECO.2.2.4",
            "message",
            format!("the body is {body}, not text/plain or multipart/alternative"),
        );
    }
}

fn archives(msg: &ReceivedMessage, mime: &Mime, out: &mut Findings) {
    if msg.xdm.len() > 1 {
        out.push(
            "mss.xdm.part",
            "message",
            format!(
                "{} IHE_XDM.zip attachments: one archive carries every document",
                msg.xdm.len()
            ),
        );
    }
    for x in &msg.xdm {
        let place = attachment_place(msg, x.attachment);
        if let Some(a) = msg.attachments.get(x.attachment)
            && a.content_type != "application/zip"
        {
            out.push(
                "mss.xdm.part",
                place.as_str(),
                format!("{}, not application/zip", a.content_type),
            );
        }
        if let Some(Some(enc)) = mime.attachment_encodings.get(x.attachment)
            && enc != "base64"
        {
            out.push(
                "mss.xdm.part",
                place.as_str(),
                format!("transfer encoding {enc}, not base64"),
            );
        }
        let Some(archive) = &x.archive else {
            continue;
        };
        if !archive.has_readme {
            out.push("mss.xdm.files", place.as_str(), "no README.TXT at the root");
        }
        if !archive.has_index {
            out.push("mss.xdm.files", place.as_str(), "no INDEX.HTM at the root");
        }
        patient_id(archive, &place, out);
        for d in archive.documents() {
            let entry = format!("IHE_XDM.zip/{}", d.path);
            let file = d.path.rsplit('/').next().unwrap_or("");
            if !is_8_3_upper(file) {
                out.push(
                    "mss.xdm.files",
                    entry.as_str(),
                    "document name not 8.3 upper case (e.g. DOC00001.XML)",
                );
            }
            match &d.cda {
                None if d.entry.mime_type.trim().eq_ignore_ascii_case("text/xml") => out.push(
                    "mss.xdm.cda",
                    entry.as_str(),
                    "text/xml document without a readable CDA R2 header",
                ),
                Some(cda)
                    if !d.entry.type_code.code.is_empty()
                        && d.entry.type_code.code != cda.code.code =>
                {
                    out.push(
                        "mss.xdm.cda",
                        entry.as_str(),
                        format!(
                            "METADATA.XML typeCode {} differs from the CDA code {}",
                            d.entry.type_code.code, cda.code.code
                        ),
                    )
                }
                _ => {}
            }
        }
    }
}

/// `NAME.EXT`: 1–8 and 1–3 upper-case letters, digits or `_`.
fn is_8_3_upper(name: &str) -> bool {
    let ok = |s: &str, max: usize| {
        (1..=max).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    match name.split_once('.') {
        Some((stem, ext)) => ok(stem, 8) && ok(ext, 3),
        None => ok(name, 8),
    }
}

fn patient_id(archive: &xdm::XdmArchive, place: &str, out: &mut Findings) {
    const R: &str = "ECO.2.1.2";
    for s in &archive.subsets {
        let cx = s.metadata.submission_set.patient_id.trim();
        let where_ = format!("{place}: {}/METADATA.XML", s.dir);
        if cx.is_empty() {
            out.push(R, where_, "the submission set has no patientId");
            continue;
        }
        match crate::metadata::parse_cx(cx) {
            None => out.push(R, where_, "patientId is not INS^^^&OID&ISO^NH"),
            Some((_, oid)) if InsAuthority::from_oid(&oid).is_none() => out.push(
                R,
                where_,
                format!(
                    "patientId's authority {oid} is not an INS OID ({}, {} or {})",
                    InsAuthority::Prod.oid(),
                    InsAuthority::Test.oid(),
                    InsAuthority::Demo.oid()
                ),
            ),
            Some(_) => {}
        }
    }
}

fn looks_like_cda(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    memchr::memmem::find(head, b"<ClinicalDocument").is_some()
        || memchr::memmem::find(head, b":ClinicalDocument").is_some()
}

fn is_pdf(a: &crate::ReceivedAttachment) -> bool {
    a.content_type == "application/pdf" || a.filename.to_ascii_lowercase().ends_with(".pdf")
}

fn attachments(msg: &ReceivedMessage, out: &mut Findings) {
    let cdas = msg.documents().filter(|d| d.cda.is_some()).count();
    let patient = msg.patient();
    let mut pdfs = 0;
    for (i, a) in msg.attachments.iter().enumerate() {
        if msg.xdm.iter().any(|x| x.attachment == i) {
            continue;
        }
        let place = attachment_place(msg, i);
        if looks_like_cda(&a.content) {
            out.push(
                "ECO.2.1.1",
                place.as_str(),
                "a CDA document outside an IHE_XDM.zip archive",
            );
            continue;
        }
        if !is_pdf(a) {
            continue;
        }
        pdfs += 1;
        // ECO.2.1.5 and 2.1.6 are about the renderings of a health document's CDA: a PDF in a
        // message without one is an ordinary attachment (a letter), only worth a word.
        if cdas == 0 {
            out.push(
                "mss.pdf",
                place.as_str(),
                "a PDF without a CDA document: a health document travels as CDA in IHE_XDM.zip, the PDF beside it (ECO.2.1.1, ECO.2.1.5)",
            );
        } else {
            pdf_name(&a.filename, patient.as_ref(), &place, out);
        }
        if !a.content.starts_with(b"%PDF-") {
            out.push("mss.pdf", place.as_str(), "not a PDF (no %PDF- header)");
        } else if memchr::memmem::find(&a.content, b"pdfaid:part").is_none() {
            out.push(
                "mss.pdf",
                place.as_str(),
                "no PDF/A identification (pdfaid:part in its XMP metadata)",
            );
        }
    }
    if cdas > 0 && pdfs > cdas {
        out.push(
            "ECO.2.1.5",
            "message",
            format!("{pdfs} PDF for {cdas} CDA documents: each PDF renders one CDA of the archive"),
        );
    }
}

/// ECO.2.1.6: `<date de l'acte>_<type document>_<NOM>_<prénom>[_<numéro de dossier>].pdf`.
fn pdf_name(name: &str, patient: Option<&PatientIdentity>, place: &str, out: &mut Findings) {
    const R: &str = "ECO.2.1.6";
    let stem = name
        .len()
        .checked_sub(4)
        .filter(|&n| name.is_char_boundary(n) && name[n..].eq_ignore_ascii_case(".pdf"))
        .map(|n| &name[..n]);
    let Some(stem) = stem else {
        out.push(R, place, "the name does not end in .pdf");
        return;
    };
    let parts: Vec<&str> = stem.split('_').collect();
    let date_ok = parts.first().is_some_and(|d| {
        d.len() == 8
            && d.bytes().all(|b| b.is_ascii_digit())
            && matches!(d[4..6].parse::<u8>(), Ok(1..=12))
            && matches!(d[6..8].parse::<u8>(), Ok(1..=31))
    });
    if !date_ok || parts.len() < 4 || parts.iter().any(|p| p.is_empty()) {
        out.push(
            R,
            place,
            "the name is not <date YYYYMMDD>_<type>_<NOM>_<prénom>[_<dossier>].pdf",
        );
        return;
    }
    if let Some(birth) = patient
        .and_then(|p| p.birth_name.as_deref())
        .map(|n| crate::compose::fold_for_file(n).to_uppercase())
        .filter(|n| !n.is_empty())
        && !stem.contains(&format!("_{birth}_"))
    {
        out.push(
            R,
            place,
            "the NOM part is not the patient's birth name (METADATA.XML) in upper case",
        );
    }
}

const MDN_CODES: &[&str] = &[
    "0", "100", "101", "102", "103", "198", "199", "200", "201", "202", "203", "207", "900", "901",
    "902", "903", "904", "905", "906",
];

fn mdn(msg: &ReceivedMessage, mime: &Mime, out: &mut Findings) {
    const R: &str = "mss.mdn";
    if mime.parsed {
        if mime.children.first().map(String::as_str) != Some("text/plain") {
            out.push(
                R,
                "part 2",
                "the first part of the report is the human text (text/plain)",
            );
        }
        if !mime
            .children
            .iter()
            .any(|c| c == "message/rfc822" || c == "text/rfc822-headers" || c == "message/global")
        {
            out.push(
                R,
                "message",
                "the original message (message/rfc822) is not returned in the report",
            );
        }
    }
    let Some(Report::Mdn(d)) = &msg.report else {
        out.push(
            R,
            "message",
            "no message/disposition-notification part with its fields",
        );
        return;
    };
    const F: &str = "part message/disposition-notification";
    if d.disposition.is_empty() {
        out.push(R, F, "no Disposition field");
    } else {
        if !matches!(d.action_mode.as_str(), "automatic-action" | "manual-action")
            || !["MDN-sent-automatically", "MDN-sent-manually"]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&d.sending_mode))
        {
            out.push(
                R,
                F,
                "Disposition is <action-mode>/<sending-mode>; <type> (automatic-action/MDN-sent-automatically; processed)",
            );
        }
        if !matches!(
            d.disposition.as_str(),
            "processed" | "displayed" | "deleted" | "dispatched"
        ) {
            out.push(R, F, "the disposition type is not one of RFC 8098's");
        }
    }
    for (missing, field) in [
        (d.final_recipient.is_none(), "Final-Recipient"),
        (d.original_message_id.is_none(), "Original-Message-ID"),
        (d.original_recipient.is_none(), "Original-Recipient"),
    ] {
        if missing {
            out.push(R, F, format!("no {field} field"));
        }
    }
    let ko = msg.subject.starts_with(KO_SUBJECT);
    match &d.error {
        Some((code, _)) => {
            if !MDN_CODES.contains(&code.as_str()) {
                out.push(
                    "mss.mdn.code",
                    F,
                    format!("error code {code} is not one of the receiving guide's (HL7 ERR-3 or 900–906)"),
                );
            }
            if !msg.subject.starts_with(&format!("{KO_SUBJECT}{code}] ")) {
                out.push(
                    R,
                    "header Subject",
                    format!("an error receipt's subject is {KO_SUBJECT}{code}] <original subject>"),
                );
            }
        }
        None if ko => out.push(
            R,
            "header Subject",
            "a KO subject, but the Disposition reports no error",
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_archive_problem_has_its_rule() {
        for (p, r) in [
            ("not a zip archive", "ECO.2.1.1"),
            ("no METADATA.XML", "ECO.2.1.1"),
            ("hash mismatch: DOC00001.XML", "mss.xdm.hash"),
            ("size mismatch: DOC00001.XML", "mss.xdm.size"),
            (
                "patient differs from the CDA: DOC00001.XML",
                "mss.xdm.patient",
            ),
            (
                "patient differs from the submission set: X",
                "mss.xdm.patient",
            ),
            ("patient id is not a valid INS: X", "ECO.2.1.2"),
            ("too many entries: 20000", "mss.xdm.limits"),
            ("compression ratio over the limit: X", "mss.xdm.limits"),
            ("archive over the size limit", "mss.xdm.limits"),
            ("METADATA.XML over the size limit: X", "mss.xdm.limits"),
            ("unsafe entry name ../x", "mss.xdm.layout"),
            ("duplicate entry name X", "mss.xdm.layout"),
            ("missing document: X", "mss.xdm.layout"),
            ("unreadable METADATA.XML: x", "mss.xdm.layout"),
        ] {
            assert_eq!(archive_rule(p), r, "{p}");
        }
    }

    #[test]
    fn document_names_8_3() {
        assert!(is_8_3_upper("DOC00001.XML"));
        assert!(!is_8_3_upper("doc00001.xml"));
        assert!(!is_8_3_upper("DOCUMENT001.XML"));
        assert!(!is_8_3_upper("DOC.XMLX"));
    }
}
