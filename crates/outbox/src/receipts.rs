//! Receipts: delivery status notifications (DSN, RFC 3464) and read receipts (MDN, RFC 8098) that come back
//! to the sending mailbox move its recipients on to `delivered`, `read` or `failed` (docs/mssante.md M6).
//!
//! The mailbox's reader ([`crate::reader`]) finds them over IMAP; here each report, parsed by
//! [`mss_message::read_message`], is matched to the outbox by the Message-ID it reports on (or the DSN's
//! envelope id, which the worker sets to the Message-ID) and its final recipient, then recorded with
//! [`Store::receipt`]. Recording a report again changes nothing (a receipt sets a state and never moves it
//! back, so it is never counted twice): a reader killed before moving its mark may read it again.

use mss_message::Report;
use mss_message::receipt::{DeliveryReport, DispositionReport, DsnRecipient};

use crate::inbox::Arrival;
use crate::model::State;
use crate::{Result, Store};

/// What reading reports did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptsReport {
    /// Reports (DSN or MDN) read.
    pub reports: u64,
    /// Recipients moved to delivered.
    pub delivered: u64,
    /// Recipients moved to read.
    pub read: u64,
    /// Recipients moved to failed.
    pub failed: u64,
    /// Report entries that changed nothing: already recorded, about a message this outbox did not send,
    /// or saying nothing final (a DSN `delayed`, an MDN `deleted`).
    pub unchanged: u64,
}

impl ReceiptsReport {
    pub(crate) fn add(&mut self, o: ReceiptsReport) {
        self.reports += o.reports;
        self.delivered += o.delivered;
        self.read += o.read;
        self.failed += o.failed;
        self.unchanged += o.unchanged;
    }

    fn count(&mut self, state: State, n: u64) {
        match (state, n) {
            (_, 0) => self.unchanged += 1,
            (State::Delivered, n) => self.delivered += n,
            (State::Read, n) => self.read += n,
            (_, n) => self.failed += n,
        }
    }
}

/// Records one message if it is a report.
pub async fn record(store: &dyn Store, raw: &[u8]) -> Result<ReceiptsReport> {
    match Arrival::read(0, raw.to_vec()) {
        Arrival::Report(r) => record_report(store, &r).await,
        Arrival::Message(_) => Ok(ReceiptsReport::default()),
    }
}

/// Records a report read from a message.
pub async fn record_report(store: &dyn Store, report: &Report) -> Result<ReceiptsReport> {
    let mut out = ReceiptsReport {
        reports: 1,
        ..ReceiptsReport::default()
    };
    match report {
        Report::Dsn(d) => {
            let ids = candidates(d.envelope_id.as_deref(), d.original_message_id.as_deref());
            for r in &d.recipients {
                let Some((state, detail)) = dsn_outcome(d, r) else {
                    out.unchanged += 1;
                    continue;
                };
                let who = r
                    .original_recipient
                    .as_deref()
                    .unwrap_or(&r.final_recipient);
                let n = apply(store, &ids, Some(who), state, &detail).await?;
                out.count(state, n);
            }
        }
        Report::Mdn(m) => {
            let ids = candidates(None, m.original_message_id.as_deref());
            let Some((state, detail)) = mdn_outcome(m) else {
                out.unchanged += 1;
                return Ok(out);
            };
            let who = m
                .original_recipient
                .as_deref()
                .or(m.final_recipient.as_deref());
            let n = apply(store, &ids, who, state, &detail).await?;
            out.count(state, n);
        }
    }
    Ok(out)
}

/// The forms the outbox may hold the reported message's id in: the envelope id as given and decoded from
/// xtext, the Message-ID with and without angle brackets.
fn candidates(envid: Option<&str>, message_id: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    if let Some(e) = envid {
        push(e.trim().to_owned());
        push(mss_types::xtext::decode(e.trim()));
    }
    if let Some(id) = message_id {
        let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
        push(format!("<{bare}>"));
        push(bare.to_owned());
    }
    out
}

async fn apply(
    store: &dyn Store,
    ids: &[String],
    recipient: Option<&str>,
    state: State,
    detail: &str,
) -> Result<u64> {
    for id in ids {
        let n = store.receipt(id, recipient, state, detail).await?;
        if n > 0 {
            return Ok(n);
        }
    }
    Ok(0)
}

/// `delivered` (also `relayed`/`expanded`: handed on, no further notice will come) or `failed`; `delayed`
/// says nothing final.
fn dsn_outcome(d: &DeliveryReport, r: &DsnRecipient) -> Option<(State, String)> {
    let state = match r.action.as_str() {
        "delivered" | "relayed" | "expanded" => State::Delivered,
        "failed" => State::Failed,
        _ => return None,
    };
    let mut detail = format!("DSN {} {}", r.action, r.status);
    if let Some(mta) = &d.reporting_mta {
        detail.push_str(&format!(" by {mta}"));
    }
    if let Some(diag) = &r.diagnostic {
        detail.push_str(&format!(": {diag}"));
    }
    Some((state, detail))
}

/// `displayed` and `processed` are read; `processed/Error` (the recipient's system could not integrate the
/// document, ANS) is failed with its code and label; `deleted`/`dispatched` say nothing final.
fn mdn_outcome(m: &DispositionReport) -> Option<(State, String)> {
    let by = m.final_recipient.as_deref().unwrap_or("the recipient");
    match (&m.error, m.disposition.as_str()) {
        (Some((code, label)), _) => Some((
            State::Failed,
            format!("{MDN_ERROR} {} error {code}: {label} ({by})", m.disposition),
        )),
        (None, "displayed" | "processed") => Some((
            State::Read,
            format!("MDN {} by {by} ({})", m.disposition, m.action_mode),
        )),
        _ => None,
    }
}

/// How the detail of a recipient failed by an MDN begins.
const MDN_ERROR: &str = "MDN";

/// The reader's code and label of a failure recorded from an MDN `processed/Error` (the detail
/// [`mdn_outcome`] wrote), `None` for any other failure (a DSN, a refusal at submission).
pub(crate) fn mdn_error(detail: &str) -> Option<(String, String)> {
    let rest = detail.strip_prefix(MDN_ERROR)?.trim_start();
    let (_, rest) = rest.split_once(" error ")?;
    let (code, rest) = rest.split_once(": ")?;
    let label = rest.rsplit_once(" (").map_or(rest, |(l, _)| l);
    Some((code.to_owned(), label.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_tried_in_every_form_the_outbox_may_hold() {
        assert_eq!(
            candidates(Some("<a+2Bb@x>"), Some("a+b@x")),
            ["<a+2Bb@x>", "<a+b@x>", "a+b@x"]
        );
        assert_eq!(candidates(None, Some("<k@x>")), ["<k@x>", "k@x"]);
        assert!(candidates(None, None).is_empty());
    }

    #[test]
    fn mdn_errors_are_read_back_from_their_detail() {
        assert_eq!(
            mdn_error("MDN processed error 902: Identifiant patient inconnu (b@x.fr)"),
            Some(("902".into(), "Identifiant patient inconnu".into()))
        );
        assert_eq!(
            mdn_error("DSN failed 5.1.1 by mx: smtp; 550 error 1: x"),
            None
        );
        assert_eq!(mdn_error("550 5.1.1 unknown"), None);
    }
}
