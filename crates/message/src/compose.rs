//! Composition: request -> validated parts -> IHE_XDM archive -> MIME message.
//!
//! All checks run before the archive is built, and nothing is returned unless the whole message is
//! built, so a refused request never leaves half a message anywhere.

use crate::cda::{self, CdaHeader, CdaOrganization, Person};
use crate::env::Env;
use crate::ins::Ins;
use crate::metadata::{self, Author, Code, DocumentEntry, Metadata, SubmissionSet, hl7_escape};
use crate::patient::is_patient_address;
use crate::request::*;
use crate::xdm::{self, ArchiveFile};
use crate::{Error, InsAuthority, PATIENT_DOMAIN, Result};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mss_types::{DsnRequest, Envelope, MailAddress};
use sha1::{Digest, Sha1};
use std::borrow::Cow;

/// A composed message, ready to be queued and sent. `Debug` shows the size of `raw`, not its
/// bytes.
#[derive(Clone)]
pub struct ComposedMessage {
    /// The RFC 5322 bytes (CRLF line ends).
    pub raw: Vec<u8>,
    /// The Message-ID without angle brackets (`<uuid>@<sender domain>`).
    pub message_id: String,
    /// The subject as written (decoded).
    pub subject: String,
    /// The SMTP envelope: the sender's BAL; To, Cc and Bcc without duplicates (case-insensitive), in
    /// that order; the DSN parameters when a delivery receipt was asked, kept with the message so
    /// that the sender can correlate the DSN ([`crate::Report::refers_to`]).
    pub envelope: Envelope,
}

impl std::fmt::Debug for ComposedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComposedMessage")
            .field("raw", &format_args!("<{} bytes>", self.raw.len()))
            .field("message_id", &self.message_id)
            .field("subject", &self.subject)
            .field("envelope", &self.envelope)
            .finish()
    }
}

/// Composes a message with the system clock and randomness.
pub fn compose(req: &ComposeRequest, cfg: &ComposeConfig) -> Result<ComposedMessage> {
    compose_with(req, cfg, &mut Env::system())
}

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

struct Doc<'r> {
    header: CdaHeader,
    bytes: Cow<'r, [u8]>,
    file: String,
    rendering: Option<(String, Cow<'r, [u8]>)>,
}

/// Composes a message with the given clock and randomness (tests and benches pin them).
pub fn compose_with(
    req: &ComposeRequest,
    cfg: &ComposeConfig,
    env: &mut Env,
) -> Result<ComposedMessage> {
    check_config(cfg)?;
    let label = sender_label(&req.sender)?;
    let sender = parse_address("sender.address", &req.sender.address)?;
    let reply_to = req
        .reply_to
        .as_deref()
        .map(|r| parse_address("reply_to", r))
        .transpose()?;
    let recipients = recipients(&req.recipients)?;
    let patient = req.patient.as_ref().map(check_patient).transpose()?;
    let to_patient = check_patient_recipients(&recipients, req.patient.as_ref(), patient.as_ref())?;
    if let Some(wl) = &cfg.whitelist {
        for (field, addr) in &recipients {
            if !wl.allows(addr.as_str()) {
                return Err(Error::refused(
                    field.as_str(),
                    format!(
                        "{addr}: domain {} is not in the MSSanté whitelist",
                        addr.domain()
                    ),
                ));
            }
        }
    }
    check_end_of_exchange(req, cfg, to_patient)?;
    if to_patient {
        check_size_lower_bound(req, cfg.patient_max_bytes)?;
    }
    let thread = thread_ids(req)?;

    // Documents: decode, read headers, check against the patient.
    if !req.documents.is_empty() && patient.is_none() {
        return Err(Error::invalid(
            "patient",
            "required when documents are attached (patientId of the XDM metadata)",
        ));
    }
    let mut docs = Vec::with_capacity(req.documents.len());
    for (i, d) in req.documents.iter().enumerate() {
        docs.push(read_document(i, d, patient.as_ref(), req.patient.as_ref())?);
    }
    for (i, d) in docs.iter().enumerate() {
        if let Some(id) = &d.header.id
            && docs[..i].iter().any(|o| o.header.id.as_ref() == Some(id))
        {
            return Err(Error::invalid(
                format!("documents[{i}].cda.content"),
                "same ClinicalDocument/id as an earlier document",
            ));
        }
    }
    let attachments = req
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| read_attachment(i, a))
        .collect::<Result<Vec<_>>>()?;

    let subject = subject(req, cfg, &docs)?;
    let message_id = format!("{}@{}", env.uuid(), sender.domain());

    let xdm = match (&patient, docs.is_empty()) {
        (Some((ins, authority)), false) => Some(build_xdm(
            req,
            cfg,
            env,
            &docs,
            ins,
            *authority,
            &sender,
            &recipients,
        )?),
        _ => None,
    };

    // MIME
    let mut builder =
        MessageBuilder::new().from(Address::new_address(Some(label), sender.as_str()));
    if !req.recipients.to.is_empty() {
        builder = builder.to(address_list(&recipients, "to"));
    }
    if !req.recipients.cc.is_empty() {
        builder = builder.cc(address_list(&recipients, "cc"));
    }
    if let Some(r) = &reply_to {
        builder = builder.reply_to(Address::new_address(None::<&str>, r.as_str()));
    }
    builder = builder
        .subject(Text::new(subject.as_str()))
        .date(Date::new(env.now().unix_timestamp()))
        .message_id(MessageId::new(message_id.as_str()));
    if let Some(irt) = &thread.0 {
        builder = builder.in_reply_to(MessageId::new(irt.as_str()));
    }
    if !thread.1.is_empty() {
        builder = builder.references(MessageId::new_list(thread.1.iter().map(String::as_str)));
    }
    builder = builder.header("X-MSS-NIL", Raw::new(cfg.product_reference.as_str()));
    if !docs.is_empty() {
        let mut codes: Vec<&str> = Vec::with_capacity(docs.len());
        for d in &docs {
            if !codes.contains(&d.header.code.code.as_str()) {
                codes.push(&d.header.code.code);
            }
        }
        let qualified = req.patient.as_ref().is_some_and(|p| p.qualified);
        builder = builder
            .header(
                "X-MSS-CODECDA",
                Raw::new(codes.join(&cfg.codecda_separator)),
            )
            .header("X-MSS-INS", Raw::new(if qualified { "O" } else { "N" }));
    }
    if req.end_of_exchange && cfg.end_of_exchange == EndOfExchangeStyle::Header {
        builder = builder.header("X-MSS-MES", Raw::new("FIN"));
    }
    if req.receipts.mdn {
        builder = builder.header(
            "Disposition-Notification-To",
            Address::new_address(None::<&str>, sender.as_str()),
        );
    }

    let text = MimePart::new("text/plain", req.body.text.as_str());
    let body_part = match &req.body.html {
        Some(html) => MimePart::new(
            boundary_type("multipart/alternative", env),
            vec![text, MimePart::new("text/html", html.as_str())],
        ),
        None => text,
    };
    let has_files = xdm.is_some() || !attachments.is_empty();
    let body = if has_files {
        let mut parts = Vec::with_capacity(2 + docs.len() + attachments.len());
        parts.push(body_part);
        if let Some(zip) = xdm {
            parts.push(
                MimePart::new(
                    ContentType::new("application/zip").attribute("name", xdm::ATTACHMENT_NAME),
                    BodyPart::Binary(zip.into()),
                )
                .attachment(xdm::ATTACHMENT_NAME),
            );
        }
        for d in &docs {
            if let Some((name, pdf)) = &d.rendering {
                parts.push(
                    MimePart::new(
                        ContentType::new("application/pdf").attribute("name", name.as_str()),
                        BodyPart::Binary(Cow::Borrowed(pdf.as_ref())),
                    )
                    .attachment(name.as_str()),
                );
            }
        }
        for (a, bytes) in &attachments {
            parts.push(
                MimePart::new(
                    ContentType::new(a.content_type.as_str())
                        .attribute("name", a.filename.as_str()),
                    BodyPart::Binary(Cow::Borrowed(bytes.as_ref())),
                )
                .attachment(a.filename.as_str()),
            );
        }
        MimePart::new(boundary_type("multipart/mixed", env), parts)
    } else {
        body_part
    };
    let mut raw = Vec::new();
    builder.body(body).serialize(&mut raw);

    if to_patient && raw.len() > cfg.patient_max_bytes {
        return Err(Error::refused(
            "message",
            format!(
                "{} bytes: a message to Mon espace santé is limited to {} bytes",
                raw.len(),
                cfg.patient_max_bytes
            ),
        ));
    }

    let mut rcpt_to: Vec<MailAddress> = Vec::with_capacity(recipients.len());
    for (_, a) in recipients {
        if !rcpt_to
            .iter()
            .any(|r| r.as_str().eq_ignore_ascii_case(a.as_str()))
        {
            rcpt_to.push(a);
        }
    }
    let dsn = req
        .receipts
        .dsn
        .then(|| DsnRequest::all_notices(env.uuid()));
    Ok(ComposedMessage {
        raw,
        message_id,
        subject,
        envelope: Envelope {
            from: sender,
            recipients: rcpt_to,
            dsn,
        },
    })
}

fn boundary_type(kind: &'static str, env: &mut Env) -> ContentType<'static> {
    ContentType::new(kind).attribute("boundary", format!("mss_{}", env.token()))
}

/// The `To:` or `Cc:` list (`header` is `to` or `cc`) of the checked recipients.
fn address_list<'a>(recipients: &'a [(String, MailAddress)], header: &str) -> Address<'a> {
    let prefix = format!("recipients.{header}[");
    Address::new_list(
        recipients
            .iter()
            .filter(|(field, _)| field.starts_with(&prefix))
            .map(|(_, a)| Address::new_address(None::<&str>, a.as_str()))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Checks

fn check_config(cfg: &ComposeConfig) -> Result<()> {
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
fn check_text(field: &str, value: &str) -> Result<()> {
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
fn sender_label(s: &Sender) -> Result<String> {
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

fn recipients(r: &Recipients) -> Result<Vec<(String, MailAddress)>> {
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

fn check_patient(p: &PatientRequest) -> Result<(Ins, InsAuthority)> {
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
fn check_patient_recipients(
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

fn check_end_of_exchange(
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
fn check_size_lower_bound(req: &ComposeRequest, limit: usize) -> Result<()> {
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

fn thread_ids(req: &ComposeRequest) -> Result<(Option<String>, Vec<String>)> {
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

fn read_document<'r>(
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

fn read_attachment(i: usize, a: &Attachment) -> Result<(&Attachment, Cow<'_, [u8]>)> {
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

// ---------------------------------------------------------------------------------------------
// Subject and names

/// ASCII folding for file names (`CR d’imagerie médicale` -> `CR_d_imagerie_medicale`).
fn fold_for_file(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let mapped: &str = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => "a",
            'À' | 'Â' | 'Ä' | 'Á' | 'Ã' | 'Å' => "A",
            'ç' => "c",
            'Ç' => "C",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'É' | 'È' | 'Ê' | 'Ë' => "E",
            'î' | 'ï' | 'í' | 'ì' => "i",
            'Î' | 'Ï' | 'Í' | 'Ì' => "I",
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => "o",
            'Ô' | 'Ö' | 'Ó' | 'Ò' | 'Õ' => "O",
            'ù' | 'û' | 'ü' | 'ú' => "u",
            'Ù' | 'Û' | 'Ü' | 'Ú' => "U",
            'ÿ' => "y",
            'Ÿ' => "Y",
            'ñ' => "n",
            'Ñ' => "N",
            'œ' => "oe",
            'Œ' => "OE",
            'æ' => "ae",
            'Æ' => "AE",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "_",
        };
        if mapped == "_" {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.push_str(mapped);
        }
    }
    out.trim_end_matches('_').to_string()
}

/// ECO.2.1.6: `<date de l'acte>_<type document>_<NOM>_<prénom>[_<numéro de dossier>].pdf`.
fn pdf_name(h: &CdaHeader, p: Option<&PatientRequest>, file_number: Option<&str>) -> String {
    let date: String = h
        .service_start
        .as_deref()
        .or(h.effective_time.as_deref())
        .unwrap_or("")
        .chars()
        .take(8)
        .collect();
    let kind = if h.code.display_name.is_empty() {
        &h.title
    } else {
        &h.code.display_name
    };
    let mut parts = vec![date, fold_for_file(kind)];
    if let Some(p) = p {
        parts.push(fold_for_file(&p.birth_name).to_uppercase());
        parts.push(fold_for_file(&p.first_given_name));
    }
    if let Some(n) = file_number {
        parts.push(fold_for_file(n));
    }
    parts.retain(|p| !p.is_empty());
    format!("{}.pdf", parts.join("_"))
}

/// The document label of the XDM subject: the CDA code's display name, else the title, else the code.
fn libelle(h: &CdaHeader) -> &str {
    if !h.code.display_name.trim().is_empty() {
        h.code.display_name.trim()
    } else if !h.title.is_empty() {
        &h.title
    } else {
        &h.code.code
    }
}

/// The subject: `[FIN]` (end of exchange, subject style), the XDM subject with documents
/// (ECO.2.1.3; birth date written DD/MM/YYYY as in the ANS IG examples), else the request's.
fn subject(req: &ComposeRequest, cfg: &ComposeConfig, docs: &[Doc<'_>]) -> Result<String> {
    if req.end_of_exchange && cfg.end_of_exchange == EndOfExchangeStyle::Subject {
        return Ok("[FIN]".into());
    }
    if let Some(s) = &req.subject {
        check_text("subject", s)?;
    }
    match (docs.first(), &req.patient, &req.subject) {
        (Some(_), _, Some(s)) if !s.starts_with("XDM/1.0/DDM+") => Err(Error::invalid(
            "subject",
            "a message carrying a patient document has the subject XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>: omit subject to have it derived",
        )),
        (Some(d), Some(p), None) => {
            let b = &p.birth_date;
            Ok(format!(
                "XDM/1.0/DDM+{} {} {} {}/{}/{}",
                libelle(&d.header),
                p.birth_name.trim().to_uppercase(),
                p.first_given_name.trim(),
                &b[6..8],
                &b[4..6],
                &b[..4]
            ))
        }
        (_, _, s) => Ok(s.clone().unwrap_or_default()),
    }
}

// ---------------------------------------------------------------------------------------------
// XDM

/// HL7 TS (`YYYYMMDD[HHMM[SS[.f]]][+/-ZZZZ]`) to the XDS DTM in UTC. Without an offset the
/// digits are kept as they are (the time zone is unknown).
pub(crate) fn ts_to_utc(ts: &str) -> Option<String> {
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

fn build_xdm(
    req: &ComposeRequest,
    cfg: &ComposeConfig,
    env: &mut Env,
    docs: &[Doc<'_>],
    ins: &Ins,
    authority: InsAuthority,
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
    for (i, d) in docs.iter().enumerate() {
        let h = &d.header;
        let src = &req.documents[i];
        let unique_id = match &h.id {
            Some(id) => match &id.extension {
                Some(x) => format!("{}^{}", id.root, x),
                None => id.root.clone(),
            },
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
        entries.push(DocumentEntry {
            entry_uuid: urn_uuid(env),
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
            confidentiality: vec![confidentiality],
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
    fn file_names_are_folded() {
        assert_eq!(
            fold_for_file("CR d’imagerie médicale"),
            "CR_d_imagerie_medicale"
        );
        assert_eq!(fold_for_file("Lefèvre-Œuvre"), "Lefevre_OEuvre");
        assert_eq!(fold_for_file("  a  "), "a");
    }

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

    #[test]
    fn source_id_is_stable_per_product() {
        assert_eq!(source_id_for("DEV935997"), source_id_for("DEV935997"));
        assert_ne!(source_id_for("DEV935997"), source_id_for("DEV935998"));
        assert!(source_id_for("X").starts_with("2.25."));
    }
}
