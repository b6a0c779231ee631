//! Receipts that come back: incoming DSN (RFC 3464) and MDN (RFC 8098) reports, parsed and correlated to
//! the Message-ID (or DSN envelope id) of the message they report on. The DSN parameters asked at SMTP
//! time are [`mss_types::DsnRequest`]; the MDN mss sends for a received message is built by
//! [`crate::mdn`].

/// `<id>` -> `id`.
pub(crate) fn normalize_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
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
    pub recipients: Vec<DsnRecipient>,
}

/// The status of one recipient in a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
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
            report.recipients.push(DsnRecipient {
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

#[cfg(test)]
mod tests {
    use super::*;

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
