//! Composition: request -> validated parts -> IHE_XDM archive -> MIME message.
//!
//! All checks run before the archive is built, and nothing is returned unless the whole message is
//! built, so a refused request never leaves half a message anywhere.

mod archive;
mod checks;

pub(crate) use checks::parse_address;

use crate::cda::CdaHeader;
use crate::env::Env;
use crate::request::*;
use crate::xdm;
use crate::{Error, Result};
use archive::build_xdm;
use checks::{
    check_config, check_end_of_exchange, check_patient, check_patient_recipients,
    check_size_lower_bound, check_text, read_attachment, read_document, recipients, sender_label,
    thread_ids,
};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mss_types::text::fold_latin;
use mss_types::{DsnRequest, Envelope, MailAddress};
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
    cfg.trust.check("sender.address", sender.as_str())?;
    for (field, addr) in &recipients {
        cfg.trust.check(field.as_str(), addr.as_str())?;
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
        (Some(patient), false) => Some(build_xdm(
            req,
            cfg,
            env,
            &docs,
            patient,
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
// Subject and names

/// ASCII folding for file names (`CR d’imagerie médicale` -> `CR_d_imagerie_medicale`): accented letters
/// by the shared table, every other run of characters as one `_`.
pub(crate) fn fold_for_file(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if let Some(folded) = fold_latin(c) {
            out.push_str(folded);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_folded() {
        assert_eq!(
            fold_for_file("CR d’imagerie médicale"),
            "CR_d_imagerie_medicale"
        );
        assert_eq!(fold_for_file("Lefèvre-Œuvre"), "Lefevre_OEuvre");
        assert_eq!(fold_for_file("  a  "), "a");
        assert_eq!(fold_for_file("Łukasz Ørsted"), "Lukasz_Orsted");
    }
}
