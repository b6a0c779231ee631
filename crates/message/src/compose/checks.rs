//! The checks of a compose request: every field is checked, and its error named, before anything is built.

use super::{Doc, pdf_name};
use crate::cda;
use crate::ins::Ins;
use crate::patient::is_patient_address;
use crate::request::*;
use crate::xdm;
use crate::{Error, InsAuthority, PATIENT_DOMAIN, Result};
use mss_types::MailAddress;
use std::borrow::Cow;

pub(super) fn check_config(cfg: &ComposeConfig) -> Result<()> {
    let nil = &cfg.product_reference;
    if nil.is_empty()
        || nil.len() > 64
        || !nil
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(Error::Config {
            field: "product_reference",
            reason:
                "the NIL product reference is required: 1 to 64 letters, digits, '.', '_' or '-'"
                    .into(),
        });
    }
    let sep = &cfg.codecda_separator;
    if sep.is_empty() || sep.len() > 3 || sep.chars().any(|c| c.is_control() || c.is_alphanumeric())
    {
        return Err(Error::Config {
            field: "codecda_separator",
            reason: "1 to 3 printable non-alphanumeric characters".into(),
        });
    }
    Ok(())
}

/// Refuses control characters (header injection, invalid XML) in a free-text field.
pub(super) fn check_text(field: &str, value: &str) -> Result<()> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::invalid(
            field,
            "control characters (line breaks...) are not allowed",
        ));
    }
    Ok(())
}

fn non_empty<'a>(field: &str, value: Option<&'a String>) -> Result<&'a str> {
    match value.map(|v| v.trim()) {
        Some(v) if !v.is_empty() => {
            check_text(field, v)?;
            Ok(v)
        }
        _ => Err(Error::invalid(field, "required")),
    }
}

/// The `From:` display name (Ref#2 ECO.2.2.7): PER `Titre_Prénom_NOM_Entité` (title and entity
/// optional, NOM upper case); ORG/APP/CAB the functional entity.
pub(super) fn sender_label(s: &Sender) -> Result<String> {
    match s.kind {
        SenderKind::Per => {
            let first = non_empty("sender.first_name", s.first_name.as_ref())?;
            let last = non_empty("sender.last_name", s.last_name.as_ref())?;
            let mut parts = Vec::with_capacity(4);
            if let Some(t) = s.title.as_ref().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                check_text("sender.title", t)?;
                parts.push(("sender.title", t.to_string()));
            }
            parts.push(("sender.first_name", first.to_string()));
            parts.push(("sender.last_name", last.to_uppercase()));
            for (field, p) in &parts {
                if p.contains('_') {
                    return Err(Error::invalid(
                        *field,
                        "must not contain '_' (the separator of the sender label)",
                    ));
                }
            }
            let mut label: Vec<String> = parts.into_iter().map(|(_, p)| p).collect();
            if let Some(e) = s
                .entity
                .as_ref()
                .map(|e| e.trim())
                .filter(|e| !e.is_empty())
            {
                check_text("sender.entity", e)?;
                label.push(e.to_string());
            }
            Ok(label.join("_"))
        }
        SenderKind::Org | SenderKind::App | SenderKind::Cab => {
            Ok(non_empty("sender.entity", s.entity.as_ref())?.to_string())
        }
    }
}

/// A checked address ([`MailAddress::check`]), its error named after the request field.
pub(crate) fn parse_address(field: &str, raw: &str) -> Result<MailAddress> {
    MailAddress::check(raw).map_err(|fault| Error::invalid(field, fault.describe(raw)))
}

pub(super) fn recipients(r: &Recipients) -> Result<Vec<(String, MailAddress)>> {
    let mut out = Vec::with_capacity(r.to.len() + r.cc.len() + r.bcc.len());
    for (name, list) in [("to", &r.to), ("cc", &r.cc), ("bcc", &r.bcc)] {
        for (i, a) in list.iter().enumerate() {
            let field = format!("recipients.{name}[{i}]");
            let address = parse_address(&field, a)?;
            out.push((field, address));
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "recipients",
            "at least one recipient (to, cc or bcc) is required",
        ));
    }
    Ok(out)
}

fn check_date(field: &str, d: &str) -> Result<time::Date> {
    let bad = || Error::invalid(field, "expected a date YYYYMMDD");
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let y: i32 = d[..4].parse().map_err(|_| bad())?;
    let m: u8 = d[4..6].parse().map_err(|_| bad())?;
    let day: u8 = d[6..].parse().map_err(|_| bad())?;
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    time::Date::from_calendar_date(y, month, day).map_err(|_| bad())
}

pub(super) fn check_patient(p: &PatientRequest) -> Result<(Ins, InsAuthority)> {
    let ins = Ins::parse(p.ins.trim()).map_err(|e| Error::invalid("patient.ins", e.to_string()))?;
    for (field, v) in [
        ("patient.birth_name", &p.birth_name),
        ("patient.first_given_name", &p.first_given_name),
    ] {
        if v.trim().is_empty() {
            return Err(Error::invalid(field, "required"));
        }
        check_text(field, v)?;
    }
    check_date("patient.birth_date", &p.birth_date)?;
    Ok((ins, p.ins_authority))
}

/// Patient addresses: a valid INS, the message's own qualified patient, nobody else's.
pub(super) fn check_patient_recipients(
    recipients: &[(String, MailAddress)],
    req: Option<&PatientRequest>,
    patient: Option<&(Ins, InsAuthority)>,
) -> Result<bool> {
    let mut any = false;
    for (field, a) in recipients {
        if !is_patient_address(a.as_str()) {
            continue;
        }
        any = true;
        let ins = Ins::parse(a.local_part()).map_err(|e| {
            Error::refused(
                field.as_str(),
                format!("{a}: a Mon espace santé address is <INS>@{PATIENT_DOMAIN}; {e}"),
            )
        })?;
        let (Some(p), Some((pins, _))) = (req, patient) else {
            return Err(Error::refused(
                field.as_str(),
                format!("{a}: writing to a patient needs the patient's identity (patient)"),
            ));
        };
        if !p.qualified {
            return Err(Error::refused(
                field.as_str(),
                format!(
                    "{a}: a patient address must come from a qualified INS (patient.qualified is false)"
                ),
            ));
        }
        if &ins != pins {
            return Err(Error::refused(
                field.as_str(),
                format!("{a}: not the address of the patient of this message (patient.ins)"),
            ));
        }
    }
    Ok(any)
}

pub(super) fn check_end_of_exchange(
    req: &ComposeRequest,
    cfg: &ComposeConfig,
    to_patient: bool,
) -> Result<()> {
    if !req.end_of_exchange {
        return Ok(());
    }
    if !to_patient {
        return Err(Error::invalid(
            "end_of_exchange",
            format!("only for a message to a patient's @{PATIENT_DOMAIN} address"),
        ));
    }
    if cfg.end_of_exchange == EndOfExchangeStyle::Subject {
        if req.subject.as_deref().is_some_and(|s| s != "[FIN]") {
            return Err(Error::invalid(
                "subject",
                "end of exchange in the subject style needs the subject to be exactly [FIN] (or omitted)",
            ));
        }
        if !req.documents.is_empty() {
            return Err(Error::invalid(
                "end_of_exchange",
                "in the subject style the subject must be exactly [FIN]: send the documents in an earlier message",
            ));
        }
    }
    Ok(())
}

/// What the message will at least weigh, known before decoding or building anything: texts and
/// base64 contents (which are sent as base64 whatever happens).
pub(super) fn check_size_lower_bound(req: &ComposeRequest, limit: usize) -> Result<()> {
    let b64 = |c: &Content| match c {
        Content::Base64(b) => b.len(),
        Content::Text(t) => t.len().div_ceil(3) * 4,
    };
    let mut total = req.body.text.len() + req.body.html.as_ref().map_or(0, String::len);
    for d in &req.documents {
        total += d.rendering.as_ref().map_or(0, |r| b64(&r.content));
    }
    for a in &req.attachments {
        total += b64(&a.content);
    }
    if total > limit {
        return Err(Error::refused(
            "message",
            format!(
                "at least {total} bytes: a message to Mon espace santé is limited to {limit} bytes"
            ),
        ));
    }
    Ok(())
}

fn message_id_value(field: &str, v: &str) -> Result<String> {
    let inner = v.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = inner
        .split_once('@')
        .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
        && inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"".contains(&b));
    if !ok {
        return Err(Error::invalid(field, "expected a Message-ID <left@right>"));
    }
    Ok(inner.to_string())
}

pub(super) fn thread_ids(req: &ComposeRequest) -> Result<(Option<String>, Vec<String>)> {
    let irt = req
        .in_reply_to
        .as_deref()
        .map(|v| message_id_value("in_reply_to", v))
        .transpose()?;
    let refs = req
        .references
        .iter()
        .enumerate()
        .map(|(i, v)| message_id_value(&format!("references[{i}]"), v))
        .collect::<Result<Vec<_>>>()?;
    Ok((irt, refs))
}

fn check_code(field: &str, c: &ClassifiedCode) -> Result<()> {
    if c.code.trim().is_empty() {
        return Err(Error::invalid(format!("{field}.code"), "required"));
    }
    if c.coding_scheme.trim().is_empty() {
        return Err(Error::invalid(format!("{field}.coding_scheme"), "required"));
    }
    for (f, v) in [
        ("code", &c.code),
        ("coding_scheme", &c.coding_scheme),
        ("display_name", &c.display_name),
    ] {
        check_text(&format!("{field}.{f}"), v)?;
    }
    Ok(())
}

pub(super) fn read_document<'r>(
    i: usize,
    d: &'r Document,
    patient: Option<&(Ins, InsAuthority)>,
    preq: Option<&PatientRequest>,
) -> Result<Doc<'r>> {
    let field = format!("documents[{i}].cda");
    let bytes = d.cda.bytes(&field)?;
    let parsed = match &d.cda {
        Content::Text(t) => cda::parse_header_str(t),
        Content::Base64(_) => cda::parse_header(&bytes),
    };
    let header = parsed.map_err(|r| Error::invalid(format!("{field}.content"), r))?;
    if let (Some((cda_ins, cda_authority)), Some((ins, authority))) =
        (header.patient_ins(), patient)
        && (cda_ins != ins.as_str() || cda_authority != *authority)
    {
        return Err(Error::invalid(
            format!("{field}.content"),
            "the recordTarget INS differs from patient.ins / patient.ins_authority",
        ));
    }
    check_code(&format!("documents[{i}].class_code"), &d.class_code)?;
    for (name, c) in [
        ("format_code", &d.format_code),
        (
            "healthcare_facility_type_code",
            &d.healthcare_facility_type_code,
        ),
        ("practice_setting_code", &d.practice_setting_code),
    ] {
        if let Some(c) = c {
            check_code(&format!("documents[{i}].{name}"), c)?;
        }
    }
    let rendering = match &d.rendering {
        None => None,
        Some(r) => {
            let f = format!("documents[{i}].rendering.content");
            let pdf = r.content.bytes(&f)?;
            if !pdf.starts_with(b"%PDF-") {
                return Err(Error::invalid(f, "not a PDF (no %PDF- header)"));
            }
            let name = match &r.filename {
                Some(n) => {
                    check_filename(&format!("documents[{i}].rendering.filename"), n)?;
                    n.clone()
                }
                None => {
                    if let Some(num) = &r.file_number {
                        check_text(&format!("documents[{i}].rendering.file_number"), num)?;
                    }
                    pdf_name(&header, preq, r.file_number.as_deref())
                }
            };
            Some((name, pdf))
        }
    };
    Ok(Doc {
        header,
        bytes,
        file: xdm::document_name(i + 1),
        rendering,
    })
}

fn check_filename(field: &str, n: &str) -> Result<()> {
    if n.trim().is_empty() || n.len() > 255 || n.contains(['/', '\\']) {
        return Err(Error::invalid(
            field,
            "a file name without path, 1 to 255 bytes",
        ));
    }
    check_text(field, n)
}

pub(super) fn read_attachment(i: usize, a: &Attachment) -> Result<(&Attachment, Cow<'_, [u8]>)> {
    check_filename(&format!("attachments[{i}].filename"), &a.filename)?;
    if xdm::ATTACHMENT_NAME.eq_ignore_ascii_case(a.filename.trim()) {
        return Err(Error::invalid(
            format!("attachments[{i}].filename"),
            "IHE_XDM.zip is built by mss from documents[]",
        ));
    }
    let ct = a.content_type.trim();
    let ok = ct.split_once('/').is_some_and(|(t, s)| {
        let tok = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        tok(t) && tok(s)
    });
    if !ok {
        return Err(Error::invalid(
            format!("attachments[{i}].content_type"),
            "expected a MIME type type/subtype",
        ));
    }
    let bytes = a.content.bytes(&format!("attachments[{i}].content"))?;
    Ok((a, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(parse_address("f", "marie.martin@medecin.mssante.fr").is_ok());
        for bad in [
            "",
            "a",
            "a@b",
            "a@b..fr",
            ".a@b.fr",
            "a b@c.fr",
            "a@-b.fr",
            "é@b.fr",
            "a@b.fr\r\nBcc: x@y.fr",
        ] {
            assert!(parse_address("f", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_address("recipients.to[0]", "a@b\r\n.fr")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("recipients.to[0]: invalid domain: a@b.fr")
        );
    }
}
