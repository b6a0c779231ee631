//! The rules of the header: Ségur headers, Message-ID and threading, sender label, recipients and
//! Mon espace santé, subject.

use super::mime::Mime;
use super::{CheckConfig, Findings, Kind};
use crate::patient::{PatientIdentity, is_patient_address, split_address};
use crate::{Ins, ReceivedMessage};
use mss_types::MailAddress;

/// The subject prefix of a message carrying a patient's document (ECO.2.1.3).
pub(crate) const XDM_SUBJECT: &str = "XDM/1.0/DDM+";
/// The subject prefix of an integration error receipt (docs/mssante.md R4).
pub(crate) const KO_SUBJECT: &str = "[KO Intégration système !][";

pub(super) fn check(
    msg: &ReceivedMessage,
    mime: &Mime,
    cfg: &CheckConfig,
    kind: Kind,
    out: &mut Findings,
) {
    message_ids(msg, mime, out);
    if kind == Kind::Dsn {
        return;
    }
    rfc5322(msg, mime, out);
    sender_label(msg, out);
    addresses(msg, cfg, out);
    segur(msg, mime, kind, out);
    end_of_exchange(msg, mime, out);
    subject(msg, kind, out);
}

/// `<id-left@id-right>` (RFC 5322 §3.6.4, without the obsolete forms): dot-atoms, or a
/// no-fold literal on the right.
pub(crate) fn valid_msg_id(v: &str) -> bool {
    let Some(inner) = v.strip_prefix('<').and_then(|v| v.strip_suffix('>')) else {
        return false;
    };
    let Some((left, right)) = inner.rsplit_once('@') else {
        return false;
    };
    let dot_atom = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|a| {
                !a.is_empty()
                    && a.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
            })
    };
    let literal = |s: &str| {
        s.strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .is_some_and(|d| {
                d.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"[]\\".contains(&b))
            })
    };
    dot_atom(left) && (dot_atom(right) || literal(right))
}

/// The msg-ids of an `In-Reply-To` / `References` value; `Err` when something else is there.
fn msg_id_list(v: &str) -> Result<Vec<&str>, ()> {
    let mut ids = Vec::new();
    let mut rest = v.trim();
    while !rest.is_empty() {
        if !rest.starts_with('<') {
            return Err(());
        }
        let end = rest.find('>').ok_or(())?;
        let id = &rest[..=end];
        if !valid_msg_id(id) {
            return Err(());
        }
        ids.push(id);
        rest = rest[end + 1..].trim_start();
    }
    if ids.is_empty() { Err(()) } else { Ok(ids) }
}

fn message_ids(msg: &ReceivedMessage, mime: &Mime, out: &mut Findings) {
    const R: &str = "ECO.2.2.1";
    let values: Vec<&str> = mime.header("message-id").collect();
    match values.as_slice() {
        [] if msg.message_id.is_none() => {
            out.push(R, "header Message-ID", "missing");
        }
        [] => {}
        [one] => {
            if !valid_msg_id(&unfold(one)) {
                out.push(
                    R,
                    "header Message-ID",
                    "not an RFC 5322 message id <left@right>",
                );
            }
        }
        _ => out.push(R, "header Message-ID", "more than one Message-ID field"),
    }
    for (name, field) in [("in-reply-to", "In-Reply-To"), ("references", "References")] {
        let values: Vec<&str> = mime.header(name).collect();
        if values.len() > 1 {
            out.push(
                "ECO.2.2.2",
                format!("header {field}"),
                format!("more than one {field} field"),
            );
        }
        for v in values {
            if msg_id_list(&unfold(v)).is_err() {
                out.push(
                    "ECO.2.2.2",
                    format!("header {field}"),
                    "not a list of RFC 5322 message ids <left@right>",
                );
            }
        }
    }
    if let Some(parent) = msg.in_reply_to.last()
        && !msg.references.is_empty()
        && msg.references.last() != Some(parent)
    {
        out.push(
            "mss.thread",
            "header References",
            "does not end with the In-Reply-To id (RFC 5322 §3.6.4)",
        );
    }
    if msg.in_reply_to.len() > 1 {
        out.push(
            "mss.thread",
            "header In-Reply-To",
            "several ids: a reply names the one message it answers",
        );
    }
}

/// A header value on one line.
fn unfold(v: &str) -> String {
    v.split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rfc5322(msg: &ReceivedMessage, mime: &Mime, out: &mut Findings) {
    const R: &str = "mss.rfc5322";
    let froms: Vec<&str> = mime.header("from").collect();
    if froms.len() > 1 {
        out.push(R, "header From", "more than one From field");
    }
    if msg.from.is_none() {
        out.push(R, "header From", "no sender address");
    } else if froms.first().is_some_and(|f| f.matches('@').count() > 1)
        && mime.header("sender").next().is_none()
    {
        out.push(R, "header From", "several mailboxes without a Sender field");
    }
    let dates: Vec<&str> = mime.header("date").collect();
    match dates.as_slice() {
        [] => out.push(R, "header Date", "missing"),
        [_] if msg.date.is_none() => out.push(R, "header Date", "not an RFC 5322 date"),
        [_] => {}
        _ => out.push(R, "header Date", "more than one Date field"),
    }
}

fn sender_label(msg: &ReceivedMessage, out: &mut Findings) {
    const R: &str = "ECO.2.2.7";
    let Some(address) = &msg.from else {
        return;
    };
    let label = msg.from_name.as_deref().map(str::trim).unwrap_or("");
    let local = split_address(address).map_or(address.as_str(), |(l, _)| l);
    if label.is_empty() {
        out.push(
            R,
            "header From",
            "no sender label: write From: Intitule_BAL <address>",
        );
    } else if label.eq_ignore_ascii_case(address)
        || label.eq_ignore_ascii_case(local)
        || label.contains('@')
        || !label.chars().any(char::is_alphabetic)
    {
        out.push(
            R,
            "header From",
            "the sender label is not meaningful (an address, or no letters)",
        );
    }
}

/// Each visible recipient with its header and position.
fn recipients(msg: &ReceivedMessage) -> impl Iterator<Item = (String, &str)> {
    let to = msg
        .to
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("header To, address {}", i + 1), a.as_str()));
    let cc = msg
        .cc
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("header Cc, address {}", i + 1), a.as_str()));
    to.chain(cc)
}

pub(crate) fn to_patient(msg: &ReceivedMessage) -> bool {
    recipients(msg).any(|(_, a)| is_patient_address(a))
}

/// The INS and its traits as the first XDM archive states them.
pub(crate) fn qualified(p: &PatientIdentity) -> bool {
    p.authority.is_some()
        && Ins::parse(&p.id).is_ok()
        && p.birth_name
            .as_deref()
            .is_some_and(|n| !n.trim().is_empty())
        && p.first_given_name
            .as_deref()
            .is_some_and(|n| !n.trim().is_empty())
        && p.birth_date
            .as_deref()
            .is_some_and(|d| !d.trim().is_empty())
        && p.sex.is_some()
}

fn addresses(msg: &ReceivedMessage, cfg: &CheckConfig, out: &mut Findings) {
    let patient = msg.patient();
    let from = msg.from.as_deref().map(|a| ("header From".to_string(), a));
    for (place, address) in from.into_iter().chain(recipients(msg)) {
        if let Err(fault) = MailAddress::check(address) {
            out.push("mss.rfc5322", place, fault.to_string());
            continue;
        }
        if !cfg.trust.allows(address) {
            out.push(
                "mss.trust",
                place.clone(),
                "outside the espace de confiance (national whitelist, else *.mssante.fr)",
            );
        }
        if place == "header From" || !is_patient_address(address) {
            continue;
        }
        const R: &str = "ECO.2.2.6";
        let local = split_address(address).map_or("", |(l, _)| l);
        let Ok(ins) = Ins::parse(local) else {
            out.push(
                R,
                place,
                "a Mon espace santé address is <INS>@patient.mssante.fr: the local part is not a valid INS (15 characters, key)",
            );
            continue;
        };
        if msg.mss.ins_qualified == Some(false) {
            out.push(
                R,
                place.clone(),
                "written to a patient while X-MSS-INS says the INS is not qualified",
            );
        }
        if let Some(p) = &patient
            && p.authority.is_some()
            && !p.id.trim().eq_ignore_ascii_case(ins.as_str())
        {
            out.push(
                R,
                place,
                "not the address of the patient of the IHE_XDM archive (patientId)",
            );
        }
    }
}

/// The CDA codes of the message's archives, in order, without repeats.
fn cda_codes(msg: &ReceivedMessage) -> Vec<&str> {
    let mut codes: Vec<&str> = Vec::new();
    for d in msg.documents() {
        if let Some(c) = &d.cda
            && !codes.contains(&c.code.code.as_str())
        {
            codes.push(&c.code.code);
        }
    }
    codes
}

fn segur(msg: &ReceivedMessage, mime: &Mime, kind: Kind, out: &mut Findings) {
    let nil: Vec<&str> = mime.header("x-mss-nil").collect();
    match nil.as_slice() {
        [] if msg.mss.nil.is_none() => out.push(
            "ECO.2.4.3",
            "header X-MSS-NIL",
            "missing: every message carries the product reference (NIL) given at the product's declaration",
        ),
        [] => {}
        [v] => {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()) {
                out.push(
                    "ECO.2.4.3",
                    "header X-MSS-NIL",
                    "empty, or not one printable ASCII word",
                );
            }
        }
        _ => out.push("ECO.2.4.3", "header X-MSS-NIL", "more than one X-MSS-NIL field"),
    }

    let codes = cda_codes(msg);
    let codecda: Vec<&str> = mime.header("x-mss-codecda").collect();
    let ins: Vec<&str> = mime.header("x-mss-ins").collect();
    if codes.is_empty() {
        if !codecda.is_empty() {
            out.push(
                "ECO.2.4.1",
                "header X-MSS-CODECDA",
                "set, but the message carries no CDA document in an IHE_XDM archive",
            );
        }
        if !ins.is_empty() {
            out.push(
                "ECO.2.4.2",
                "header X-MSS-INS",
                "set, but the message carries no CDA document in an IHE_XDM archive",
            );
        }
        return;
    }
    // A receipt re-attaches the archive it answers: it is not sending the document.
    let required = kind == Kind::Message;
    if codecda.is_empty() {
        if required {
            out.push(
                "ECO.2.4.1",
                "header X-MSS-CODECDA",
                "missing: the message carries a CDA document in IHE_XDM.zip",
            );
        }
    } else {
        for c in &codes {
            if !msg.mss.codecda.iter().any(|h| h == c) {
                out.push(
                    "ECO.2.4.1",
                    "header X-MSS-CODECDA",
                    format!("lacks the code {c} of a CDA document of the archive"),
                );
            }
        }
        for h in &msg.mss.codecda {
            if !codes.contains(&h.as_str()) {
                out.push(
                    "ECO.2.4.1",
                    "header X-MSS-CODECDA",
                    format!("{h} is the code of no CDA document of the archive"),
                );
            }
        }
    }
    match ins.as_slice() {
        [] if required => out.push(
            "ECO.2.4.2",
            "header X-MSS-INS",
            "missing: the message carries a CDA document in IHE_XDM.zip (O or N)",
        ),
        [] => {}
        [v] => match v.to_ascii_uppercase().as_str() {
            "O" => {
                if !msg.patient().is_some_and(|p| qualified(&p)) {
                    out.push(
                        "ECO.2.4.2",
                        "header X-MSS-INS",
                        "O, but METADATA.XML lacks a qualified INS: an INS under an INS OID with birth name, first given name, birth date and sex",
                    );
                }
            }
            "N" => {}
            _ => out.push("ECO.2.4.2", "header X-MSS-INS", "neither O nor N"),
        },
        _ => out.push(
            "ECO.2.4.2",
            "header X-MSS-INS",
            "more than one X-MSS-INS field",
        ),
    }
}

fn end_of_exchange(msg: &ReceivedMessage, mime: &Mime, out: &mut Findings) {
    const R: &str = "ECO.2.2.8";
    let mes: Vec<&str> = mime.header("x-mss-mes").collect();
    let patient = to_patient(msg);
    if let Some(v) = mes.first() {
        if mes.len() > 1 {
            out.push(R, "header X-MSS-MES", "more than one X-MSS-MES field");
        }
        if *v != "FIN" {
            out.push(R, "header X-MSS-MES", "the only value is FIN");
        }
        if !patient {
            out.push(
                R,
                "header X-MSS-MES",
                "ends an exchange with a patient, but no recipient is a patient (<INS>@patient.mssante.fr)",
            );
        }
    }
    let s = msg.subject.as_str();
    if s == "[FIN]" {
        if !patient {
            out.push(
                "mss.subject",
                "header Subject",
                "[FIN] ends an exchange with a patient, but no recipient is a patient",
            );
        }
    } else if s.trim().eq_ignore_ascii_case("[FIN]") {
        out.push(
            R,
            "header Subject",
            "to end the exchange the subject is exactly the 5 characters [FIN]",
        );
    }
}

/// `DD/MM/YYYY`, `YYYYMMDD` or `YYYY-MM-DD` as `YYYYMMDD`.
fn date_token(t: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = t.split(['/', '-']).collect();
    let ymd = match parts.as_slice() {
        [d] if d.len() == 8 && digits(d) => d.to_string(),
        [d, m, y] if t.contains('/') && d.len() == 2 && m.len() == 2 && y.len() == 4 => {
            format!("{y}{m}{d}")
        }
        [y, m, d] if t.contains('-') && d.len() == 2 && m.len() == 2 && y.len() == 4 => {
            format!("{y}{m}{d}")
        }
        _ => return None,
    };
    digits(&ymd).then_some(ymd)
}

fn subject(msg: &ReceivedMessage, kind: Kind, out: &mut Findings) {
    const R: &str = "ECO.2.1.3";
    let mut s = msg.subject.as_str();
    if kind == Kind::Mdn
        && let Some(rest) = s.strip_prefix(KO_SUBJECT)
    {
        s = rest.split_once("] ").map_or(rest, |(_, r)| r);
    }
    let has_documents = msg.documents().next().is_some();
    if !has_documents {
        if s.starts_with(XDM_SUBJECT) && kind == Kind::Message {
            out.push(
                "mss.subject",
                "header Subject",
                "an XDM/1.0/DDM+ subject, but the message carries no document in IHE_XDM.zip",
            );
        }
        return;
    }
    let Some(rest) = s.strip_prefix(XDM_SUBJECT) else {
        out.push(
            R,
            "header Subject",
            "a message carrying a patient's document has the subject XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>",
        );
        return;
    };
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let date = tokens.last().and_then(|t| date_token(t));
    if tokens.len() < 4 || date.is_none() {
        out.push(
            R,
            "header Subject",
            "after XDM/1.0/DDM+ come the document label, the NOM, the first name and the birth date (DD/MM/YYYY)",
        );
        return;
    }
    let Some(p) = msg.patient() else {
        return;
    };
    let names = &tokens[..tokens.len() - 1];
    if let Some(name) = p
        .birth_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        && !rest.contains(&name.to_uppercase())
    {
        out.push(
            R,
            "header Subject",
            "the NOM is not the patient's birth name of METADATA.XML in upper case",
        );
    }
    if let Some(first) = p
        .first_given_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        && !names
            .join(" ")
            .to_lowercase()
            .contains(&first.to_lowercase())
    {
        out.push(
            R,
            "header Subject",
            "the first name is not the patient's first given name of METADATA.XML",
        );
    }
    if let (Some(birth), Some(date)) = (p.birth_date.as_deref(), date)
        && birth.get(..8).is_some_and(|b| b != date)
    {
        out.push(
            R,
            "header Subject",
            "the date is not the patient's birth date of METADATA.XML",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_follow_rfc_5322() {
        for ok in ["<a@b>", "<a.b.c@d.e>", "<x@[127.0.0.1]>", "<a+b=c@d-e>"] {
            assert!(valid_msg_id(ok), "{ok}");
        }
        for bad in [
            "a@b", "<a>", "<@b>", "<a@>", "<a b@c>", "<a..b@c>", "<a@b", "<a@b>>",
        ] {
            assert!(!valid_msg_id(bad), "{bad}");
        }
        assert_eq!(msg_id_list("<a@b> <c@d>"), Ok(vec!["<a@b>", "<c@d>"]));
        assert_eq!(msg_id_list("<a@b><c@d>"), Ok(vec!["<a@b>", "<c@d>"]));
        assert!(msg_id_list("a@b").is_err());
        assert!(msg_id_list("").is_err());
    }

    #[test]
    fn subject_dates_in_three_forms() {
        assert_eq!(date_token("01/02/1980").as_deref(), Some("19800201"));
        assert_eq!(date_token("19800201").as_deref(), Some("19800201"));
        assert_eq!(date_token("1980-02-01").as_deref(), Some("19800201"));
        assert_eq!(date_token("1/2/1980"), None);
        assert_eq!(date_token("Durand"), None);
    }
}
