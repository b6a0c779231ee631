//! Receipts: DSN parameters asked at SMTP time (RFC 3461), MDN read receipts built for a received
//! message (RFC 8098, ANS volet structure), and incoming DSN/MDN reports parsed and correlated to
//! the Message-ID (or DSN envelope id) of the message they report on.

use crate::compose::{ComposedMessage, Envelope};
use crate::read::{ReceivedMessage, normalize_id};
use crate::{ComposeConfig, Env, Error, Result};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use std::borrow::Cow;

/// `NOTIFY=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnNotify {
    /// Delivered.
    Success,
    /// Failed.
    Failure,
    /// Delayed.
    Delay,
}

/// `RET=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnReturn {
    /// The whole message comes back in the DSN.
    Full,
    /// Only its headers (enough to correlate; health content does not travel back).
    Hdrs,
}

/// DSN parameters of one message (RFC 3461), kept with it for correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRequest {
    /// `NOTIFY` on each `RCPT TO`.
    pub notify: Vec<DsnNotify>,
    /// `RET` on `MAIL FROM`.
    pub ret: DsnReturn,
    /// `ENVID` on `MAIL FROM`, echoed as `Original-Envelope-Id` in the DSN.
    pub envid: String,
}

impl DsnRequest {
    /// Success, failure and delay notices, headers only.
    pub fn full(envid: String) -> Self {
        DsnRequest {
            notify: vec![DsnNotify::Success, DsnNotify::Failure, DsnNotify::Delay],
            ret: DsnReturn::Hdrs,
            envid,
        }
    }

    /// The `MAIL FROM` parameters: `RET=HDRS ENVID=<xtext>`.
    pub fn mail_params(&self) -> String {
        let ret = match self.ret {
            DsnReturn::Full => "FULL",
            DsnReturn::Hdrs => "HDRS",
        };
        format!("RET={ret} ENVID={}", xtext(&self.envid))
    }

    /// The `RCPT TO` parameters: `NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;<xtext>`.
    pub fn rcpt_params(&self, recipient: &str) -> String {
        let notify: Vec<&str> = self
            .notify
            .iter()
            .map(|n| match n {
                DsnNotify::Success => "SUCCESS",
                DsnNotify::Failure => "FAILURE",
                DsnNotify::Delay => "DELAY",
            })
            .collect();
        format!(
            "NOTIFY={} ORCPT=rfc822;{}",
            notify.join(","),
            xtext(recipient)
        )
    }
}

/// RFC 3461 xtext: printable ASCII but `+` and `=` as is, anything else `+HH`.
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// A delivery status notification (RFC 3464).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// `Original-Envelope-Id` (the ENVID given at sending).
    pub envelope_id: Option<String>,
    /// `Reporting-MTA`.
    pub reporting_mta: Option<String>,
    /// Message-ID of the reported message, from the returned headers or message.
    pub original_message_id: Option<String>,
    /// One entry per recipient.
    pub recipients: Vec<RecipientStatus>,
}

/// The status of one recipient in a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient`, address only.
    pub final_recipient: String,
    /// `Original-Recipient`, address only.
    pub original_recipient: Option<String>,
    /// `Action`: failed, delayed, delivered, relayed, expanded.
    pub action: String,
    /// `Status`, e.g. `5.1.1`.
    pub status: String,
    /// `Diagnostic-Code`.
    pub diagnostic: Option<String>,
}

/// A message disposition notification (RFC 8098).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispositionReport {
    /// `Original-Message-ID`, without brackets.
    pub original_message_id: Option<String>,
    /// `Final-Recipient`, address only.
    pub final_recipient: Option<String>,
    /// `Original-Recipient`, address only.
    pub original_recipient: Option<String>,
    /// `automatic-action` or `manual-action`.
    pub action_mode: String,
    /// `MDN-sent-automatically` or `MDN-sent-manually`.
    pub sending_mode: String,
    /// `displayed`, `dispatched`, `processed`, `deleted`.
    pub disposition: String,
    /// The ANS `processed/Error: code^label` modifier, as (code, label).
    pub error: Option<(String, String)>,
}

/// An incoming report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Delivery status.
    Dsn(DeliveryReport),
    /// Read / processing receipt.
    Mdn(DispositionReport),
}

impl Report {
    /// Message-ID of the message reported on (no brackets), when the report carries it.
    pub fn original_message_id(&self) -> Option<&str> {
        match self {
            Report::Dsn(d) => d.original_message_id.as_deref(),
            Report::Mdn(m) => m.original_message_id.as_deref(),
        }
    }

    /// True when the report is about the message sent with this Message-ID (brackets optional) or,
    /// for a DSN, this envelope id.
    pub fn refers_to(&self, message_id: &str, envid: Option<&str>) -> bool {
        let wanted = normalize_id(message_id);
        if self.original_message_id().is_some_and(|id| id == wanted) {
            return true;
        }
        match (self, envid) {
            (Report::Dsn(d), Some(e)) => d.envelope_id.as_deref() == Some(e),
            _ => false,
        }
    }
}

/// Splits report fields (RFC 822-style, with continuation lines) into blocks separated by empty
/// lines; names lower-cased.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = vec![Vec::new()];
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if blocks
                .last()
                .is_some_and(|b: &Vec<(String, String)>| !b.is_empty())
            {
                blocks.push(Vec::new());
            }
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = block.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            block.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    blocks.retain(|b| !b.is_empty());
    blocks
}

fn get<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `rfc822;addr` -> `addr`.
pub(crate) fn address_value(v: &str) -> String {
    v.split_once(';').map_or(v, |(_, a)| a).trim().to_string()
}

pub(crate) fn parse_dsn(fields: &str, original_message_id: Option<String>) -> DeliveryReport {
    let blocks = field_blocks(fields);
    let mut report = DeliveryReport {
        envelope_id: None,
        reporting_mta: None,
        original_message_id,
        recipients: Vec::new(),
    };
    for (i, b) in blocks.iter().enumerate() {
        if i == 0 && get(b, "final-recipient").is_none() {
            report.envelope_id = get(b, "original-envelope-id").map(str::to_string);
            report.reporting_mta = get(b, "reporting-mta").map(address_value);
            continue;
        }
        if let Some(fr) = get(b, "final-recipient") {
            report.recipients.push(RecipientStatus {
                final_recipient: address_value(fr),
                original_recipient: get(b, "original-recipient").map(address_value),
                action: get(b, "action").unwrap_or("").to_ascii_lowercase(),
                status: get(b, "status").unwrap_or("").to_string(),
                diagnostic: get(b, "diagnostic-code").map(str::to_string),
            });
        }
    }
    report
}

pub(crate) fn parse_mdn(fields: &str) -> DispositionReport {
    let all: Vec<(String, String)> = field_blocks(fields).into_iter().flatten().collect();
    let disposition = get(&all, "disposition").unwrap_or("");
    let (modes, kind) = disposition.split_once(';').unwrap_or(("", disposition));
    let (action_mode, sending_mode) = modes.split_once('/').unwrap_or((modes, ""));
    let kind = kind.trim();
    // `processed/Error: code^label` (ANS) — also `processed/error` without details.
    let (base, modifier) = kind.split_once('/').unwrap_or((kind, ""));
    let error = modifier
        .trim()
        .get(..5)
        .filter(|m| m.eq_ignore_ascii_case("error"))
        .map(|_| {
            let detail = modifier.trim()[5..].trim_start_matches(':').trim();
            let (code, label) = detail.split_once('^').unwrap_or((detail, ""));
            // The ANS example carries more HL7 components after the label.
            let label = label.split('^').next().unwrap_or("");
            (code.trim().to_string(), label.trim().to_string())
        });
    DispositionReport {
        original_message_id: get(&all, "original-message-id").map(normalize_id),
        final_recipient: get(&all, "final-recipient").map(address_value),
        original_recipient: get(&all, "original-recipient").map(address_value),
        action_mode: action_mode.trim().to_ascii_lowercase(),
        sending_mode: sending_mode.trim().to_string(),
        disposition: base.trim().to_ascii_lowercase(),
        error,
    }
}

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
    /// Its display name (the sender label of M4).
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
    crate::compose::check_address("final_recipient", &req.final_recipient)?;
    if let MdnDisposition::Error { code, label } = &req.disposition {
        for (f, v) in [("disposition.code", code), ("disposition.label", label)] {
            if v.contains(['\r', '\n', '^']) || v.trim().is_empty() {
                return Err(Error::invalid(f, "required, on one line, without '^'"));
            }
        }
    }
    let domain = req
        .final_recipient
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d);
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
        .unwrap_or_else(|| req.final_recipient.clone());
    let fields = format!(
        "Reporting-UA: {domain}; mss {}\r\nOriginal-Recipient: rfc822;{original_recipient}\r\nFinal-Recipient: rfc822;{}\r\nOriginal-Message-ID: <{original_id}>\r\nDisposition: {disposition}\r\n",
        env!("CARGO_PKG_VERSION"),
        req.final_recipient
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
        .from(Address::new_address(
            req.label.as_deref(),
            req.final_recipient.as_str(),
        ))
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
            mail_from: req.final_recipient.clone(),
            rcpt_to: vec![to],
        },
        dsn: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_parameters_are_xtext() {
        let d = DsnRequest::full("a+b=c d".into());
        assert_eq!(d.mail_params(), "RET=HDRS ENVID=a+2Bb+3Dc+20d");
        assert_eq!(
            d.rcpt_params("jean.dupont@chu-exemple.mssante.fr"),
            "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;jean.dupont@chu-exemple.mssante.fr"
        );
    }

    #[test]
    fn mdn_error_disposition_of_the_ans_example_is_read() {
        let m = parse_mdn(
            "Original-Recipient: rfc822;serviceY_auto@chb.mssante.fr\r\nFinal-Recipient: rfc822;serviceY_auto@chb.mssante.fr\r\nOriginal-Message-ID: <20240219230100.23456@chb.mssante.fr>\r\nDisposition:automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant de patient inconnu^messageErrorCondition| E^Error^errorSeverity\r\n",
        );
        assert_eq!(
            m.original_message_id.as_deref(),
            Some("20240219230100.23456@chb.mssante.fr")
        );
        assert_eq!(
            m.final_recipient.as_deref(),
            Some("serviceY_auto@chb.mssante.fr")
        );
        assert_eq!(m.action_mode, "automatic-action");
        assert_eq!(m.sending_mode, "MDN-sent-automatically");
        assert_eq!(m.disposition, "processed");
        assert_eq!(
            m.error,
            Some(("902".into(), "Identifiant de patient inconnu".into()))
        );
    }

    #[test]
    fn dsn_fields_are_read_per_recipient() {
        let d = parse_dsn(
            "Reporting-MTA: dns; mx.chu-exemple.mssante.fr\r\nOriginal-Envelope-Id: 1234\r\nArrival-Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nFinal-Recipient: rfc822; jean.dupont@chu-exemple.mssante.fr\r\nOriginal-Recipient: rfc822;jean.dupont@chu-exemple.mssante.fr\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 unknown\r\n  mailbox\r\n",
            Some("x@y".into()),
        );
        assert_eq!(d.envelope_id.as_deref(), Some("1234"));
        assert_eq!(
            d.reporting_mta.as_deref(),
            Some("mx.chu-exemple.mssante.fr")
        );
        assert_eq!(d.recipients.len(), 1);
        let r = &d.recipients[0];
        assert_eq!(r.final_recipient, "jean.dupont@chu-exemple.mssante.fr");
        assert_eq!((r.action.as_str(), r.status.as_str()), ("failed", "5.1.1"));
        assert_eq!(
            r.diagnostic.as_deref(),
            Some("smtp; 550 5.1.1 unknown mailbox")
        );
        let rep = Report::Dsn(d);
        assert!(rep.refers_to("<x@y>", None));
        assert!(rep.refers_to("other@z", Some("1234")));
        assert!(!rep.refers_to("other@z", Some("999")));
    }
}
