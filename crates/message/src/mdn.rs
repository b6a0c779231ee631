//! The MDN (RFC 8098 read receipt) of a received message, as the ANS volet `struct-msg-mdn` describes it.

use crate::compose::{ComposedMessage, parse_address};
use crate::read::ReceivedMessage;
use crate::{ComposeConfig, Env, Error, Result};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mss_types::{Envelope, MailAddress};
use std::borrow::Cow;

/// What the MDN reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdnDisposition {
    /// Integrated automatically: `automatic-action/MDN-sent-automatically; processed`.
    Processed,
    /// Shown to the user, who agreed to send the receipt:
    /// `manual-action/MDN-sent-manually; displayed`.
    Displayed,
    /// Not integrated: `automatic-action/MDN-sent-automatically; processed/Error: code^label`.
    Error {
        /// Error code (e.g. `902`).
        code: String,
        /// Error label (e.g. `Identifiant de patient inconnu`).
        label: String,
    },
}

/// Who sends the MDN and what it says.
#[derive(Debug, Clone)]
pub struct MdnRequest {
    /// The mailbox that received the original (the MDN's `From:` and `Final-Recipient`).
    pub final_recipient: String,
    /// Its display name (the sender label of docs/mssante.md M4).
    pub label: Option<String>,
    /// The disposition.
    pub disposition: MdnDisposition,
}

/// Builds the MDN of a received message (ANS volet `struct-msg-mdn`): `multipart/report;
/// report-type=disposition-notification` with a human-readable part, the
/// `message/disposition-notification` fields, the original message, and the original's
/// `IHE_XDM.zip` and PDF attachments re-attached. Refused when the original asked for no MDN.
pub fn build_mdn(
    original: &ReceivedMessage,
    req: &MdnRequest,
    cfg: &ComposeConfig,
    env: &mut Env,
) -> Result<ComposedMessage> {
    let Some(to) = original.disposition_notification_to.clone() else {
        return Err(Error::invalid(
            "original",
            "the message asks for no read receipt (no Disposition-Notification-To)",
        ));
    };
    let Some(original_id) = original.message_id.clone() else {
        return Err(Error::invalid(
            "original",
            "the message has no Message-ID to refer to",
        ));
    };
    let from = parse_address("final_recipient", &req.final_recipient)?;
    check_label(req)?;
    let to = MailAddress::check(&to).map_err(|fault| {
        Error::invalid(
            "original",
            format!("Disposition-Notification-To: {}", fault.describe(&to)),
        )
    })?;
    if let MdnDisposition::Error { code, label } = &req.disposition {
        for (f, v) in [("disposition.code", code), ("disposition.label", label)] {
            if v.contains(['\r', '\n', '^']) || v.trim().is_empty() {
                return Err(Error::invalid(f, "required, on one line, without '^'"));
            }
        }
    }
    let domain = from.domain();
    let message_id = format!("{}@{domain}", env.uuid());
    let subject = match &req.disposition {
        MdnDisposition::Error { code, .. } => {
            format!("[KO Intégration système !][{code}] {}", original.subject)
        }
        _ => original.subject.clone(),
    };
    let (human, disposition) = match &req.disposition {
        MdnDisposition::Processed => (
            format!("Le message {} a été traité.\r\n", original_id),
            "automatic-action/MDN-sent-automatically; processed".to_string(),
        ),
        MdnDisposition::Displayed => (
            format!(
                "Le message {} a été affiché à son destinataire.\r\n",
                original_id
            ),
            "manual-action/MDN-sent-manually; displayed".to_string(),
        ),
        MdnDisposition::Error { code, label } => (
            format!(
                "Le message ci-dessous n'a pas pu être intégré automatiquement pour la raison suivante : {label}\r\nCode d'erreur : {code}\r\n"
            ),
            format!("automatic-action/MDN-sent-automatically; processed/Error: {code}^{label}"),
        ),
    };
    let original_recipient = original
        .original_recipient
        .clone()
        .unwrap_or_else(|| from.to_string());
    let fields = format!(
        "Reporting-UA: {domain}; mss {}\r\nOriginal-Recipient: rfc822;{original_recipient}\r\nFinal-Recipient: rfc822;{}\r\nOriginal-Message-ID: <{original_id}>\r\nDisposition: {disposition}\r\n",
        env!("CARGO_PKG_VERSION"),
        from
    );
    let enc = |b: &[u8]| if b.is_ascii() { "7bit" } else { "8bit" };
    let mut parts = vec![
        MimePart::new("text/plain", human),
        MimePart::new(
            ContentType::new("message/disposition-notification"),
            BodyPart::Binary(Cow::Owned(fields.clone().into_bytes())),
        )
        .transfer_encoding(enc(fields.as_bytes())),
        MimePart::new(
            ContentType::new("message/rfc822"),
            BodyPart::Binary(Cow::Borrowed(original.raw.as_slice())),
        )
        .transfer_encoding(enc(&original.raw)),
    ];
    for a in &original.attachments {
        let is_xdm = a.filename.eq_ignore_ascii_case(crate::xdm::ATTACHMENT_NAME);
        let is_pdf = a.content_type.eq_ignore_ascii_case("application/pdf");
        if is_xdm || is_pdf {
            parts.push(
                MimePart::new(
                    ContentType::new(a.content_type.as_str())
                        .attribute("name", a.filename.as_str()),
                    BodyPart::Binary(Cow::Borrowed(a.content.as_slice())),
                )
                .attachment(a.filename.as_str()),
            );
        }
    }
    let report = MimePart::new(
        ContentType::new("multipart/report")
            .attribute("report-type", "disposition-notification")
            .attribute("boundary", format!("mss_{}", env.token())),
        parts,
    );
    let mut raw = Vec::new();
    MessageBuilder::new()
        .from(Address::new_address(req.label.as_deref(), from.as_str()))
        .to(Address::new_address(None::<&str>, to.as_str()))
        .subject(Text::new(subject.as_str()))
        .date(Date::new(env.now().unix_timestamp()))
        .message_id(MessageId::new(message_id.as_str()))
        .in_reply_to(MessageId::new(original_id.as_str()))
        .references(MessageId::new(original_id.as_str()))
        .header("X-MSS-NIL", Raw::new(cfg.product_reference.as_str()))
        .body(report)
        .serialize(&mut raw);
    Ok(ComposedMessage {
        raw,
        message_id,
        subject,
        envelope: Envelope {
            from,
            recipients: vec![to],
            dsn: None,
        },
    })
}

/// The sender label goes into `From:`: one line, no control character.
fn check_label(req: &MdnRequest) -> Result<()> {
    match &req.label {
        Some(l) if l.trim().is_empty() || l.chars().any(char::is_control) => Err(Error::invalid(
            "label",
            "one line of text, without control characters",
        )),
        _ => Ok(()),
    }
}

/// The plain message an error mailbox gets when the consumer could not integrate a message that asked for
/// no MDN (docs/mssante.md R4, IG v1.1.2): the MDN's subject (`[KO Intégration système !][code] …`), a text
/// naming the code, the label and the original's sender and Message-ID, sent by the mailbox that received.
/// `req` is the MDN the message did not ask for: its mailbox and label, and an error disposition.
pub fn build_error_notice(
    original: &ReceivedMessage,
    req: &MdnRequest,
    to: &str,
    cfg: &ComposeConfig,
    env: &mut Env,
) -> Result<ComposedMessage> {
    let MdnDisposition::Error { code, label } = &req.disposition else {
        return Err(Error::invalid(
            "disposition",
            "an error notice answers an error",
        ));
    };
    let from = parse_address("final_recipient", &req.final_recipient)?;
    check_label(req)?;
    let to = parse_address("error_mailbox", to)?;
    for (f, v) in [("disposition.code", code), ("disposition.label", label)] {
        if v.contains(['\r', '\n']) || v.trim().is_empty() {
            return Err(Error::invalid(f, "required, on one line"));
        }
    }
    let message_id = format!("{}@{}", env.uuid(), from.domain());
    let subject = format!("[KO Intégration système !][{code}] {}", original.subject);
    let text = format!(
        "Le message {} de {} n'a pas pu être intégré automatiquement pour la raison suivante : {label}\r\nCode d'erreur : {code}\r\n",
        original
            .message_id
            .as_deref()
            .unwrap_or("(sans Message-ID)"),
        original.from.as_deref().unwrap_or("(expéditeur inconnu)"),
    );
    let mut raw = Vec::new();
    let mut builder = MessageBuilder::new()
        .from(Address::new_address(req.label.as_deref(), from.as_str()))
        .to(Address::new_address(None::<&str>, to.as_str()))
        .subject(Text::new(subject.as_str()))
        .date(Date::new(env.now().unix_timestamp()))
        .message_id(MessageId::new(message_id.as_str()))
        .header("X-MSS-NIL", Raw::new(cfg.product_reference.as_str()));
    if let Some(id) = &original.message_id {
        builder = builder.references(MessageId::new(id.as_str()));
    }
    builder.text_body(text).serialize(&mut raw);
    Ok(ComposedMessage {
        raw,
        message_id,
        subject,
        envelope: Envelope {
            from,
            recipients: vec![to],
            dsn: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_notice_has_the_mdn_subject_and_names_the_code() {
        let original = crate::read_message(
            b"From: a@sante.test\r\nTo: b@sante.test\r\nSubject: XDM/1.0/DDM+CR DURAND\r\n\
Message-ID: <o@sante.test>\r\n\r\nhi\r\n",
        )
        .expect("read");
        let cfg = ComposeConfig::new("NIL-1");
        let mut env = Env::fixed(time::OffsetDateTime::UNIX_EPOCH, 1);
        let label = "Identifiant de patient inconnu";
        let mut req = MdnRequest {
            final_recipient: "b@sante.test".into(),
            label: Some("Hopital B - Biologie".into()),
            disposition: MdnDisposition::Error {
                code: "902".into(),
                label: label.into(),
            },
        };
        let notice =
            build_error_notice(&original, &req, "err@sante.test", &cfg, &mut env).expect("notice");
        assert_eq!(
            notice.subject,
            "[KO Intégration système !][902] XDM/1.0/DDM+CR DURAND"
        );
        assert_eq!(notice.envelope.from.as_str(), "b@sante.test");
        assert_eq!(
            notice
                .envelope
                .recipients
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>(),
            ["err@sante.test"]
        );
        let back = crate::read_message(&notice.raw).expect("read back");
        assert_eq!(back.from_name.as_deref(), Some("Hopital B - Biologie"));
        assert_eq!(back.subject, notice.subject);
        assert_eq!(back.references, ["o@sante.test"]);
        assert_eq!(back.mss.nil.as_deref(), Some("NIL-1"));
        assert_eq!(
            back.text.as_ref().map(|t| t.0.as_str()),
            Some(
                "Le message o@sante.test de a@sante.test n'a pas pu être intégré automatiquement pour \
                 la raison suivante : Identifiant de patient inconnu\r\nCode d'erreur : 902\r\n"
            )
        );
        req.disposition = MdnDisposition::Error {
            code: "902".into(),
            label: "a\nb".into(),
        };
        let e = build_error_notice(&original, &req, "err@sante.test", &cfg, &mut env)
            .expect_err("two lines");
        assert!(e.to_string().contains("disposition.label"), "{e}");
        req.label = Some("Hopital B\r\nBcc: x@y.test".into());
        let e = build_error_notice(&original, &req, "err@sante.test", &cfg, &mut env)
            .expect_err("a label on two lines");
        assert!(e.to_string().contains("label"), "{e}");
        req.label = None;
        req.disposition = MdnDisposition::Processed;
        let e = build_error_notice(&original, &req, "err@sante.test", &cfg, &mut env)
            .expect_err("not an error");
        assert!(e.to_string().contains("disposition"), "{e}");
    }
}
