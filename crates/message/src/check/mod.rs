//! The conformance checker (docs/mssante.md K1): any message, from any software, checked against
//! the MSSanté rules (M1–M8, R3, R4), each finding with its rule, where, and why.
//!
//! It reads the message with the receiving side's reader ([`crate::read_message`]: one reader, not
//! two) and looks, in the same parse, at what that reader does not keep (raw header fields, each
//! part's charset). Findings never quote the message's health content (names, INS, text): they
//! name the header, the attachment by its number or the archive entry by its path, so that they
//! can be shown, logged or returned by a service without leaking what the message says.
//!
//! ```
//! let findings = mss_message::check::check_message(b"Subject: hi\r\n\r\nbody", &Default::default());
//! assert!(mss_message::check::has_errors(&findings));
//! assert!(findings.iter().any(|f| f.rule == "ECO.2.4.3")); // no X-MSS-NIL
//! ```

mod headers;
mod mime;
mod parts;

use crate::read::read_inspecting;
use crate::{ReceivedMessage, Trust};
use serde::{Deserialize, Serialize};

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A requirement is broken: the message is not conformant.
    Error,
    /// A recommendation or a likely fault: worth fixing, the message may still be accepted.
    Warning,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding: which rule, how serious, where in the message, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The Référentiel #2 number (`ECO.2.4.3`) where one is known, else an mss rule id
    /// (`mss.xdm.hash`); see [`RULES`].
    pub rule: String,
    /// The rule's severity.
    pub severity: Severity,
    /// Where: a header (`header X-MSS-NIL`), an attachment (`attachment 2 (application/pdf)`), an
    /// archive entry (`IHE_XDM.zip/IHE_XDM/SUBSET01/DOC00001.XML`), a MIME part (`part 3`).
    #[serde(rename = "where")]
    pub place: String,
    /// Why, in plain words, without the message's health content.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} [{}]: {}",
            self.severity, self.place, self.rule, self.message
        )
    }
}

/// A rule the checker applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `ECO.x.y.z` (Référentiel #2) or `mss.…`.
    pub id: &'static str,
    /// Severity of its findings.
    pub severity: Severity,
    /// What it checks.
    pub summary: &'static str,
}

const fn rule(id: &'static str, severity: Severity, summary: &'static str) -> Rule {
    Rule {
        id,
        severity,
        summary,
    }
}

use Severity::{Error as E, Warning as W};

/// Every rule, in the order of the README's table.
pub const RULES: &[Rule] = &[
    rule(
        "ECO.2.4.3",
        E,
        "X-MSS-NIL: the product reference, on every message",
    ),
    rule(
        "ECO.2.4.1",
        E,
        "X-MSS-CODECDA: the code of each CDA of the IHE_XDM archive, only then",
    ),
    rule(
        "ECO.2.4.2",
        E,
        "X-MSS-INS: O (qualified INS) or N, only with a CDA; O needs the INS and its 4 traits",
    ),
    rule(
        "ECO.2.1.1",
        E,
        "health documents travel in an IHE_XDM.zip archive (zip with METADATA.XML)",
    ),
    rule(
        "ECO.2.1.2",
        E,
        "METADATA.XML patientId is an INS (matricule + INS OID) with a valid key",
    ),
    rule(
        "ECO.2.1.3",
        E,
        "subject XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance> with a document",
    ),
    rule(
        "ECO.2.1.5",
        E,
        "beside an IHE_XDM archive, each PDF renders one of its CDA documents (no more PDF than CDA)",
    ),
    rule(
        "ECO.2.1.6",
        E,
        "beside an IHE_XDM archive, PDF name <date>_<type>_<NOM>_<prénom>[_<dossier>].pdf",
    ),
    rule(
        "ECO.2.2.1",
        E,
        "one Message-ID, RFC 5322 syntax <left@right>",
    ),
    rule(
        "ECO.2.2.2",
        E,
        "In-Reply-To and References: RFC 5322 message ids",
    ),
    rule("ECO.2.2.3", E, "text parts in UTF-8 (declared and valid)"),
    rule(
        "ECO.2.2.6",
        E,
        "patient addresses <INS>@patient.mssante.fr from a qualified INS, the message's patient",
    ),
    rule(
        "ECO.2.2.7",
        E,
        "a meaningful sender label (From display name)",
    ),
    rule(
        "ECO.2.2.8",
        E,
        "end of exchange: X-MSS-MES: FIN or subject exactly [FIN], towards a patient only",
    ),
    rule(
        "ECO.2.2.4",
        W,
        "message body text/plain or multipart/alternative",
    ),
    rule(
        "mss.mime",
        E,
        "MIME structure: boundaries, closing delimiter, parsable",
    ),
    rule(
        "mss.rfc5322",
        E,
        "one From (one mailbox), one valid Date, addresses that parse",
    ),
    rule(
        "mss.xdm.layout",
        E,
        "archive entries: safe unique names, readable METADATA.XML, every listed document present",
    ),
    rule(
        "mss.xdm.limits",
        E,
        "archive within the reading limits (entries, size, compression ratio)",
    ),
    rule(
        "mss.xdm.hash",
        E,
        "each document's SHA-1 is METADATA.XML's hash",
    ),
    rule(
        "mss.xdm.size",
        E,
        "each document's size is METADATA.XML's size",
    ),
    rule(
        "mss.xdm.patient",
        E,
        "the patient of each document entry, of the submission set and of the CDA agree",
    ),
    rule(
        "mss.xdm.files",
        W,
        "README.TXT and INDEX.HTM present, document names 8.3 upper case",
    ),
    rule(
        "mss.xdm.cda",
        W,
        "each document is a readable CDA R2 whose code is METADATA.XML's typeCode",
    ),
    rule(
        "mss.xdm.part",
        W,
        "IHE_XDM.zip is one application/zip part in base64",
    ),
    rule(
        "mss.mes.size",
        E,
        "a message to Mon espace santé weighs at most 25 MB",
    ),
    rule(
        "mss.mdn",
        E,
        "MDN structure of the receiving guide: report parts, Disposition, Final-Recipient, Original-Message-ID, Original-Recipient, subject",
    ),
    rule(
        "mss.mdn.code",
        W,
        "an MDN error code is one of the receiving guide's",
    ),
    rule(
        "mss.pdf",
        W,
        "a PDF attachment is a PDF/A (PDF header, pdfaid identification) and renders a CDA",
    ),
    rule(
        "mss.thread",
        W,
        "a reply's References end with its In-Reply-To",
    ),
    rule(
        "mss.subject",
        W,
        "no XDM subject without a document; [FIN] only towards a patient",
    ),
    rule(
        "mss.trust",
        W,
        "sender and recipients in the espace de confiance (whitelist or *.mssante.fr)",
    ),
];

/// The rule of this id.
pub fn rule_of(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// What the checker needs to know besides the message.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The espace de confiance the addresses are checked against (rule `mss.trust`).
    pub trust: Trust,
    /// Largest message towards Mon espace santé, in bytes (rule `mss.mes.size`).
    pub patient_max_bytes: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            trust: Trust::mssante_only(),
            patient_max_bytes: crate::ComposeConfig::new("-").patient_max_bytes,
        }
    }
}

/// True when a finding is an error (the message is not conformant).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Checks a message's bytes: every finding, in the order of the message (headers, then body and
/// attachments). Never fails and never panics: what cannot be read is itself a finding.
pub fn check_message(raw: &[u8], cfg: &CheckConfig) -> Vec<Finding> {
    let mut out = Findings::default();
    let (msg, mime) = match read_inspecting(raw, mime::Mime::of) {
        Ok(read) => read,
        Err(_) => {
            out.push("mss.mime", "message", "not a mail message: no header field");
            return out.0;
        }
    };
    let mut mime = mime.unwrap_or_default();
    if msg.problems.first().map(String::as_str) == Some(crate::PARSER_FAILURE) {
        // The parser failed on the body: only the header could be read.
        mime.parsed = false;
    }
    check_read(&msg, &mime, cfg, &mut out);
    out.0
}

fn check_read(msg: &ReceivedMessage, mime: &mime::Mime, cfg: &CheckConfig, out: &mut Findings) {
    parts::read_problems(msg, out);
    let kind = Kind::of(msg, mime);
    headers::check(msg, mime, cfg, kind, out);
    parts::check(msg, mime, cfg, kind, out);
}

/// What kind of message, for the rules that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Anything a person or an application sends.
    Message,
    /// A read receipt (MDN): the Ségur document headers are not asked of it, its subject may
    /// carry the `[KO Intégration système !][code]` prefix.
    Mdn,
    /// A delivery report, written by a mail server: only its MIME and Message-ID are checked.
    Dsn,
}

impl Kind {
    /// By the report the reader found, else by the root's `report-type` (a broken MDN is still
    /// one, and checked as one).
    fn of(msg: &ReceivedMessage, mime: &mime::Mime) -> Self {
        match (&msg.report, mime.report_type.as_deref()) {
            (Some(crate::Report::Dsn(_)), _) | (None, Some("delivery-status")) => Kind::Dsn,
            (Some(crate::Report::Mdn(_)), _) | (None, Some("disposition-notification")) => {
                Kind::Mdn
            }
            _ => Kind::Message,
        }
    }
}

/// The findings being collected; the rule's severity comes from [`RULES`].
#[derive(Default)]
pub(crate) struct Findings(Vec<Finding>);

impl Findings {
    pub(crate) fn push(
        &mut self,
        rule: &str,
        place: impl Into<String>,
        message: impl Into<String>,
    ) {
        let severity = rule_of(rule).map_or(Severity::Error, |r| r.severity);
        self.0.push(Finding {
            rule: rule.to_string(),
            severity,
            place: place.into(),
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_the_listed_ref2_rules_are_errors() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(!RULES[..i].iter().any(|o| o.id == r.id), "{} twice", r.id);
        }
        for id in [
            "ECO.2.4.1",
            "ECO.2.4.2",
            "ECO.2.4.3",
            "ECO.2.1.3",
            "ECO.2.2.7",
            "ECO.2.2.6",
            "ECO.2.2.8",
            "ECO.2.1.1",
            "ECO.2.1.5",
            "ECO.2.1.6",
            "ECO.2.1.2",
            "ECO.2.2.3",
            "ECO.2.2.1",
            "ECO.2.2.2",
        ] {
            assert_eq!(
                rule_of(id).map(|r| r.severity),
                Some(Severity::Error),
                "{id}"
            );
        }
    }

    #[test]
    fn a_finding_serializes_with_where() {
        let f = Finding {
            rule: "ECO.2.4.3".into(),
            severity: Severity::Error,
            place: "header X-MSS-NIL".into(),
            message: "missing".into(),
        };
        assert_eq!(
            serde_json::to_string(&f).expect("json"),
            r#"{"rule":"ECO.2.4.3","severity":"error","where":"header X-MSS-NIL","message":"missing"}"#
        );
        assert_eq!(f.to_string(), "error header X-MSS-NIL [ECO.2.4.3]: missing");
    }
}
