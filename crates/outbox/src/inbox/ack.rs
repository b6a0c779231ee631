//! The consumer's outcome of a received message and the MDN that answers it (docs/mssante.md R4).
//!
//! The outcome is recorded first and is final ([`Inbox::inbox_outcome`]); then, if the message asked for a
//! read receipt, the MDN of the *recorded* outcome goes into the durable outbox, sent by the mailbox that
//! received, under an idempotency key of its own (`mdn:<mailbox>:<inbox id>`). A process that dies between
//! the two leaves the outcome without its MDN: the next ack of the message (answered with the recorded
//! outcome) queues it, once. Without `Disposition-Notification-To`, an error may go to an error mailbox as
//! a plain message with the same subject.

use mss_message::mdn::{MdnDisposition, MdnRequest, build_error_notice, build_mdn};
use mss_message::{ComposeConfig, ComposedMessage, Env, MailAddress};

use super::{InboxEntry, InboxStatus};
use crate::Store;
use crate::error::{Error, Result};
use crate::model::{MessageKey, NewMessage};

/// The HL7 ERR-3 codes (table 0357) and the application codes (ERR-5) an error may carry.
pub const ERROR_CODES: &[u16] = &[
    0, 100, 101, 102, 103, 198, 199, 200, 201, 202, 203, 207, 900, 901, 902, 903, 904, 905, 906,
];

/// What the consumer says of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Integrated.
    Integrated,
    /// Not integrated, with a code of [`ERROR_CODES`] and a label.
    Error {
        /// The code.
        code: u16,
        /// Its label, on one line.
        label: String,
    },
}

impl Ack {
    /// An error outcome, checked: the code one of [`ERROR_CODES`], the label on one line without `^` (the
    /// MDN's `code^label` separator). Errors name the field (`code`, `label`).
    pub fn error(code: u16, label: &str) -> Result<Ack> {
        if !ERROR_CODES.contains(&code) {
            return Err(Error::invalid(
                "code",
                format!(
                    "{code} is not an HL7 ERR-3 code (0, 100-103, 198, 199, 200-203, 207) nor an \
                     application code (900-906)"
                ),
            ));
        }
        let label = label.trim();
        if label.is_empty() || label.len() > 200 || label.contains(['\r', '\n', '^']) {
            return Err(Error::invalid(
                "label",
                "required, one line of at most 200 bytes, without '^'",
            ));
        }
        Ok(Ack::Error {
            code,
            label: label.to_owned(),
        })
    }
}

/// How the mailbox that received answers: its credentials' reference and the product reference.
#[derive(Debug, Clone)]
pub struct Answering {
    /// How the mailbox authenticates (`token:<BAL>`, `cert:<name>`), as the outbox keeps it.
    pub auth_ref: String,
    /// The product reference (NIL) written in `X-MSS-NIL`.
    pub product_reference: String,
    /// Where errors go when the message asked for no MDN (`[[senders]] error_mailbox`).
    pub error_mailbox: Option<MailAddress>,
    /// The mailbox's label, the `From:` display name of its answers (`[[senders]] label`; Ref#2 ECO.2.2.7).
    pub label: Option<String>,
}

/// What became of an ack.
#[derive(Debug, Clone)]
pub struct AckReport {
    /// The message with its outcome (the one recorded first, if there was one).
    pub entry: InboxEntry,
    /// Whether this ack recorded it (false: it was recorded before, and this ack changed nothing).
    pub recorded: bool,
    /// The answer queued in the outbox (MDN or error notice), if any.
    pub answer: Option<Answer>,
}

/// An answer in the outbox.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    /// What it is: `mdn` or `error_notice`.
    pub kind: &'static str,
    /// Its outbox message.
    pub message: MessageKey,
}

/// Records `ack` for inbox message `id` (unless an outcome is recorded already: that one stays) and queues
/// the answer of the recorded outcome: the MDN when asked, else the error notice when configured. `None`
/// when there is no such message. An MDN that cannot be built (no Message-ID to refer to, a bad
/// `Disposition-Notification-To`) is logged and not queued: the outcome stays recorded.
pub async fn acknowledge(
    store: &dyn Store,
    id: i64,
    ack: &Ack,
    answering: &Answering,
) -> Result<Option<AckReport>> {
    let (status, code, label) = match ack {
        Ack::Integrated => (InboxStatus::Integrated, None, None),
        Ack::Error { code, label } => (InboxStatus::Error, Some(*code), Some(label.as_str())),
    };
    let Some((entry, recorded)) = store.inbox_outcome(id, status, code, label).await? else {
        return Ok(None);
    };
    let answer = queue_answer(store, &entry, answering).await?;
    Ok(Some(AckReport {
        entry,
        recorded,
        answer,
    }))
}

/// The recorded outcome as the MDN says it.
fn disposition(entry: &InboxEntry) -> Option<MdnDisposition> {
    let outcome = entry.outcome.as_ref()?;
    match entry.status {
        InboxStatus::New => None,
        InboxStatus::Integrated => Some(MdnDisposition::Processed),
        InboxStatus::Error => Some(MdnDisposition::Error {
            code: outcome.code.unwrap_or(0).to_string(),
            label: outcome.label.clone().unwrap_or_default(),
        }),
    }
}

async fn queue_answer(
    store: &dyn Store,
    entry: &InboxEntry,
    answering: &Answering,
) -> Result<Option<Answer>> {
    let Some(disposition) = disposition(entry) else {
        return Ok(None);
    };
    let Some(raw) = store.inbox_raw(entry.id).await? else {
        return Ok(None);
    };
    let original = match mss_message::read_message(&raw) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(id = entry.id, error = %e, "inbox: no answer to an unreadable message");
            return Ok(None);
        }
    };
    let cfg = ComposeConfig::new(answering.product_reference.as_str());
    let mut env = Env::system();
    let req = MdnRequest {
        final_recipient: entry.mailbox.clone(),
        label: answering.label.clone(),
        disposition,
    };
    let (kind, built) = if original.disposition_notification_to.is_some() {
        ("mdn", build_mdn(&original, &req, &cfg, &mut env))
    } else {
        match (&req.disposition, &answering.error_mailbox) {
            (MdnDisposition::Error { .. }, Some(to)) => (
                "error_notice",
                build_error_notice(&original, &req, to.as_str(), &cfg, &mut env),
            ),
            _ => return Ok(None),
        }
    };
    let composed: ComposedMessage = match built {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(id = entry.id, kind, error = %e, "inbox: answer not sent");
            return Ok(None);
        }
    };
    let item = NewMessage {
        idempotency_key: format!("{kind}:{}:{}", entry.mailbox, entry.id),
        label: format!("{kind} of inbox message {}", entry.id),
        sender: composed.envelope.from.clone(),
        auth_ref: answering.auth_ref.clone(),
        message_id: format!("<{}>", composed.message_id),
        content: composed.raw,
        recipients: composed.envelope.recipients,
        dsn: false,
    };
    let accepted = store.enqueue(None, None, vec![item]).await?;
    Ok(accepted.first().map(|a| Answer {
        kind,
        message: a.key(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_national_codes_and_a_one_line_label_are_taken() {
        for code in ERROR_CODES {
            assert!(Ack::error(*code, "x").is_ok(), "{code}");
        }
        for code in [1, 99, 104, 197, 204, 206, 208, 899, 907] {
            let e = Ack::error(code, "x").expect_err("refused");
            assert!(e.to_string().starts_with("invalid code: "), "{e}");
        }
        for label in ["", "  ", "a\nb", "a^b"] {
            let e = Ack::error(902, label).expect_err("refused");
            assert!(e.to_string().starts_with("invalid label: "), "{e}");
        }
        assert_eq!(
            Ack::error(902, " Identifiant de patient inconnu ").expect("ok"),
            Ack::Error {
                code: 902,
                label: "Identifiant de patient inconnu".into()
            }
        );
    }
}
