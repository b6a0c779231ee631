//! The HL7 exchanges of the PFI with the DPI (docs/mssante.md H1, H2), kept in the store beside the
//! messages they concern: one table that is both the log of every exchange (what was received or sent,
//! when, and what the other side answered — never the content) and the durable queue of the business
//! acks (`ZAM^Z02` delivery, `ZAM^Z03` reading) that go back to the DPI.
//!
//! - H1: the DPI's MDM/ORU accepted for an outbox message is logged with mss's answer and with the
//!   business acks the DPI asked for ([`Requester`]). When receipts move that message's recipients on
//!   (`delivered`, `read`, `failed`), [`Exchanges::plan_business_acks`] queues one ZAM per recipient and
//!   event ([`business_acks`] decides which), once only; the PFI sends them ([`Exchanges::due_business_acks`])
//!   and records the DPI's answer ([`Exchanges::business_ack_answered`]): `AA` done, `AE` refused (not
//!   retried), `AR` or no answer retried later.
//! - H2: each MDM sent to the DPI for an inbox message is logged with the DPI's answer.

use crate::Result;
use crate::model::{MessageKey, State};

/// What an exchange concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// An outbox message (H1).
    Message(MessageKey),
    /// An inbox message (H2).
    Inbox(i64),
}

/// Seen from mss.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The DPI sent it to mss (which answered).
    Received,
    /// mss sent it to the DPI (which answered).
    Sent,
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Received => "received",
            Direction::Sent => "sent",
        }
    }

    pub(crate) fn parse(s: &str) -> Direction {
        if s == "sent" {
            Direction::Sent
        } else {
            Direction::Received
        }
    }
}

/// Where an exchange is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeState {
    /// Answered (`AA`, or mss's own answer to the DPI).
    Done,
    /// To send, or to send again (`AR`, or the DPI could not be reached) at `due_ms`.
    Pending,
    /// The DPI answered `AE`: not sent again.
    Refused,
}

impl ExchangeState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeState::Done => "done",
            ExchangeState::Pending => "pending",
            ExchangeState::Refused => "refused",
        }
    }

    pub(crate) fn parse(s: &str) -> ExchangeState {
        match s {
            "pending" => ExchangeState::Pending,
            "refused" => ExchangeState::Refused,
            _ => ExchangeState::Done,
        }
    }
}

/// One HL7 exchange as shown (`mss inbox show`, `GET /v1/messages/{id}`, `GET /v1/inbox/{id}`): never the
/// content.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exchange {
    /// Its id.
    pub id: i64,
    /// Who sent the message.
    pub direction: Direction,
    /// The message's type, MSH-9 (`MDM^T02`, `ZAM^Z02`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its MSH-10.
    pub control_id: String,
    /// When it was received, or queued to be sent (ms since the epoch).
    pub at_ms: i64,
    /// Done, pending or refused.
    pub state: ExchangeState,
    /// Sends tried (a message mss sends).
    pub attempts: u32,
    /// When it goes again (pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<i64>,
    /// Why the last send got no answer (the DPI unreachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// A business ack: the recipient it reports on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// A business ack: what it reports (OBX-5 `Y` true, `N` false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<bool>,
    /// A business ack reporting a failure: the code of its ERR-5 (SMTP code, or the reader's 900–906).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_code: Option<String>,
    /// The answer's MSA-1 (`AA`, `AE`, `AR`): mss's to a received message, the DPI's to a sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
    /// The answer's ERR code (ERR-5's application code, else ERR-3's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_label: Option<String>,
    /// When the answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_ms: Option<i64>,
}

/// One line: when, who sent what (`received MDM^T02 015`), what it reports, the answer and its error,
/// the state when not done.
impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            crate::inbox::format_ms(self.at_ms),
            self.direction.as_str(),
            self.kind,
            self.control_id
        )?;
        if let Some(r) = &self.recipient {
            let said = if self.reported == Some(false) {
                "N"
            } else {
                "Y"
            };
            write!(f, " ({r}: {said}")?;
            if let Some(c) = &self.reported_code {
                write!(f, " {c}")?;
            }
            f.write_str(")")?;
        }
        if let Some(ack) = &self.ack {
            write!(f, " -> {ack}")?;
            if let Some(c) = &self.error_code {
                write!(f, " {c} {}", self.error_label.as_deref().unwrap_or(""))?;
            }
        }
        if self.state != ExchangeState::Done {
            write!(f, " [{}", self.state.as_str())?;
            if self.attempts > 0 {
                write!(f, ", {} attempt(s)", self.attempts)?;
            }
            if let Some(e) = &self.last_error {
                write!(f, ": {e}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// The answer to an exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// MSA-1.
    pub ack: String,
    /// ERR code (application code when given).
    pub error_code: Option<String>,
    /// Its label.
    pub error_label: Option<String>,
}

/// Who sent a received message and which business acks it asked for: what its ZAMs are written from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// Its MSH-3 (the ZAM's MSH-5).
    pub application: String,
    /// Its MSH-4 (the ZAM's MSH-6).
    pub facility: String,
    /// Its MSH-11 (`P`, `T`, `D`).
    pub processing: String,
    /// Its MSH-18 (`UNICODE UTF-8`, `8859/15`): the ZAMs are written in it.
    pub charset: String,
    /// `ACK_RECEPTION` = Y: a `ZAM^Z02` per recipient once delivered or failed.
    pub delivery: bool,
    /// `ACK_LECTURE_MSS` = Y: a `ZAM^Z03` per recipient once read or in error.
    pub reading: bool,
}

/// An exchange to log (it is answered already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExchange {
    /// What it concerns.
    pub link: Link,
    /// Who sent it.
    pub direction: Direction,
    /// MSH-9 (`MDM^T02`).
    pub kind: String,
    /// MSH-10.
    pub control_id: String,
    /// The answer.
    pub answer: Answer,
    /// A received message asking business acks.
    pub origin: Option<Requester>,
}

/// The two business acks of the sending guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessAckKind {
    /// `ZAM^Z02`: delivered to the recipient's server (from the DSN, or a refusal at submission).
    Delivery,
    /// `ZAM^Z03`: read, or processed in error (from the MDN).
    Reading,
}

impl BusinessAckKind {
    /// MSH-9 (two components).
    pub fn message_type(self) -> &'static str {
        match self {
            BusinessAckKind::Delivery => "ZAM^Z02",
            BusinessAckKind::Reading => "ZAM^Z03",
        }
    }

    pub(crate) fn parse(s: &str) -> BusinessAckKind {
        if s == "ZAM^Z03" {
            BusinessAckKind::Reading
        } else {
            BusinessAckKind::Delivery
        }
    }
}

/// What one business ack reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Z02 or Z03.
    pub kind: BusinessAckKind,
    /// `Y` (delivered, read) or `N`.
    pub ok: bool,
    /// On `N`: ERR-5's code (table SMTPERRORCODE for Z02, 900–906 for Z03) and label.
    pub error: Option<(String, String)>,
}

/// A business ack to send (or send again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessAck {
    /// Its row.
    pub id: i64,
    /// The outbox message it reports on.
    pub message: MessageKey,
    /// Its own MSH-10 (the same on every send).
    pub control_id: String,
    /// The recipient.
    pub recipient: String,
    /// What it reports.
    pub report: Report,
    /// The DPI's message it answers: its MSH-10 (OBX-4).
    pub refers_to: String,
    /// Who sent that message.
    pub origin: Requester,
    /// When the receipt was recorded (EVN-2), ms since the epoch.
    pub event_ms: i64,
    /// Sends tried so far.
    pub attempts: u32,
}

/// How long the receipts of a message the DPI sent are watched for business acks: 30 days (a receipt
/// later than that is recorded, and no ZAM follows). It bounds what each planning pass reads.
pub const WATCH_MS: i64 = 30 * 24 * 3600 * 1000;

/// The HL7 exchanges in the store. Every method is one transaction.
#[async_trait::async_trait]
pub trait Exchanges: Send + Sync {
    /// Logs answered exchanges, in one transaction.
    async fn log_exchanges(&self, exchanges: &[NewExchange]) -> Result<()>;

    /// The exchanges of a message, oldest first.
    async fn exchanges(&self, link: Link) -> Result<Vec<Exchange>>;

    /// Queues the business acks the receipts recorded so far call for (a recipient of a message whose
    /// DPI asked for them within [`WATCH_MS`], moved on to delivered, read or failed), each once per
    /// recipient and kind; returns how many were queued now.
    async fn plan_business_acks(&self) -> Result<u64>;

    /// Up to `limit` business acks to send: pending and due at `now_ms` (every pending one when `None`),
    /// oldest first.
    async fn due_business_acks(
        &self,
        now_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BusinessAck>>;

    /// Records the DPI's answer to a business ack: `AA` done, `AE` refused, `AR` pending again at
    /// `retry_ms`.
    async fn business_ack_answered(&self, id: i64, answer: &Answer, retry_ms: i64) -> Result<()>;

    /// Records a send that got no answer (the DPI unreachable): pending again at `retry_ms`.
    async fn business_ack_unanswered(&self, id: i64, error: &str, retry_ms: i64) -> Result<()>;
}

/// The business acks a recipient's state calls for, as the receipts recorded it (`reason` is the detail
/// [`crate::receipts`] or the worker kept): `delivered` → Z02 Y; `read` → Z02 Y and Z03 Y; `failed` by an
/// MDN `processed/Error` → Z02 Y and Z03 N with the reader's code; `failed` otherwise (a DSN `failed`, a
/// refusal at submission) → Z02 N with the SMTP code. Filtered by what the DPI asked.
pub fn business_acks(state: State, reason: Option<&str>, origin: &Requester) -> Vec<Report> {
    let reason = reason.unwrap_or("");
    let delivered = |ok: bool, error: Option<(String, String)>| Report {
        kind: BusinessAckKind::Delivery,
        ok,
        error,
    };
    let mut out = match state {
        State::Delivered => vec![delivered(true, None)],
        State::Read => vec![
            delivered(true, None),
            Report {
                kind: BusinessAckKind::Reading,
                ok: true,
                error: None,
            },
        ],
        State::Failed => match crate::receipts::mdn_error(reason) {
            Some((code, label)) => vec![
                delivered(true, None),
                Report {
                    kind: BusinessAckKind::Reading,
                    ok: false,
                    error: Some((code, label)),
                },
            ],
            None => vec![delivered(false, Some(smtp_error(reason)))],
        },
        _ => Vec::new(),
    };
    out.retain(|r| match r.kind {
        BusinessAckKind::Delivery => origin.delivery,
        BusinessAckKind::Reading => origin.reading,
    });
    out
}

/// The SMTP code of table SMTPERRORCODE for a failure's detail: the reply code in it (`550 5.1.1 …`, a
/// DSN's `smtp; 550 …` diagnostic), else from the DSN's status class (`5.x.x` → 554, `4.x.x` → 451).
fn smtp_error(reason: &str) -> (String, String) {
    let code = reason
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 3 && matches!(w.as_bytes()[0], b'4' | b'5'))
        .map(str::to_owned)
        .or_else(|| {
            reason
                .split_whitespace()
                .find(|w| w.starts_with("4.") || w.starts_with("5."))
                .map(|w| if w.starts_with('4') { "451" } else { "554" }.to_owned())
        })
        .unwrap_or_else(|| "554".to_owned());
    let label = smtp_label(&code);
    (code, label.to_owned())
}

/// Labels of table SMTPERRORCODE (the sending guide's `error-codes`), for the codes a failure carries.
fn smtp_label(code: &str) -> &'static str {
    match code {
        "101" => "Le serveur n'arrive pas à se connecter.",
        "111" => "Connexion refusée ou impossibilité d'ouvrir un flux SMTP.",
        "421" => "Le service est indisponible en raison d'un problème de connexion.",
        "422" => "La boîte aux lettres du destinataire a dépassé sa limite de stockage.",
        "450" => "Action non effectuée : boîte-aux-lettres non disponible",
        "451" => "Action arrêtée : erreur de traitement",
        "452" => "Action non effectuée : manque de ressources système.",
        "510" => "Mauvaise adresse courriel",
        "512" => "Le serveur hôte du nom de domaine du destinataire est introuvable.",
        "513" => "Le type d'adresse est incorrect.",
        "523" => "La taille totale de votre mailing dépasse les limites du serveur destinataire.",
        "530" => "L'authentification est requise.",
        "541" => "L'adresse du destinataire a rejeté votre message.",
        "550" => "Action non effectuée : boîte aux lettres non disponible",
        "551" => "Utilisateur non local",
        "552" => "Action abandonnée - Allocation de stockage dépassée.",
        "553" => {
            "La commande a été abandonnée car le nom de la boîte aux lettres n'est pas valide."
        }
        _ => "L'envoi a échoué.",
    }
}

/// `log[i]` linked to the message of `accepted[i]` ([`crate::Store::enqueue_logged`]).
pub(crate) fn linked(log: Vec<NewExchange>, accepted: &[crate::Accepted]) -> Vec<NewExchange> {
    log.into_iter()
        .zip(accepted)
        .map(|(mut e, a)| {
            e.link = Link::Message(a.key());
            e
        })
        .collect()
}

/// The state a business ack's answer leaves it in.
pub(crate) fn answered_state(ack: &str) -> ExchangeState {
    match ack {
        "AA" => ExchangeState::Done,
        "AE" => ExchangeState::Refused,
        _ => ExchangeState::Pending,
    }
}

/// A recipient that may call for business acks, with the message's origin.
pub(crate) struct Candidate {
    pub message: i64,
    pub recipient: String,
    pub state: String,
    pub reason: Option<String>,
    pub event_ms: i64,
    pub refers_to: String,
    pub origin: Requester,
}

impl Candidate {
    pub(crate) fn reports(&self) -> Result<Vec<Report>> {
        Ok(business_acks(
            State::parse(&self.state)?,
            self.reason.as_deref(),
            &self.origin,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(delivery: bool, reading: bool) -> Requester {
        Requester {
            application: "DPI".into(),
            facility: "CH".into(),
            processing: "P".into(),
            charset: "UNICODE UTF-8".into(),
            delivery,
            reading,
        }
    }

    #[test]
    fn each_state_calls_for_the_acks_the_dpi_asked() {
        let both = origin(true, true);
        let kinds = |v: Vec<Report>| {
            v.into_iter()
                .map(|r| (r.kind.message_type(), r.ok, r.error.map(|e| e.0)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(business_acks(
                State::Delivered,
                Some("DSN delivered 2.0.0"),
                &both
            )),
            [("ZAM^Z02", true, None)]
        );
        assert_eq!(
            kinds(business_acks(State::Read, None, &both)),
            [("ZAM^Z02", true, None), ("ZAM^Z03", true, None)]
        );
        assert_eq!(
            kinds(business_acks(
                State::Failed,
                Some("DSN failed 5.1.1 by mx.x.fr: smtp; 550 5.1.1 <a@x.fr>: unknown user"),
                &both
            )),
            [("ZAM^Z02", false, Some("550".into()))]
        );
        assert_eq!(
            kinds(business_acks(
                State::Failed,
                Some("DSN failed 5.2.2 by mx.x.fr"),
                &both
            )),
            [("ZAM^Z02", false, Some("554".into()))]
        );
        assert_eq!(
            kinds(business_acks(
                State::Failed,
                Some("MDN processed error 902: Identifiant patient inconnu (b@x.fr)"),
                &both
            )),
            [
                ("ZAM^Z02", true, None),
                ("ZAM^Z03", false, Some("902".into()))
            ]
        );
        // only what was asked
        assert_eq!(
            kinds(business_acks(State::Read, None, &origin(false, true))),
            [("ZAM^Z03", true, None)]
        );
        assert!(business_acks(State::Delivered, None, &origin(false, true)).is_empty());
        assert!(business_acks(State::Sent, None, &both).is_empty());
    }

    #[test]
    fn smtp_codes_come_from_the_reply_then_the_status() {
        assert_eq!(smtp_error("552 5.2.2 mailbox full").0, "552");
        assert_eq!(smtp_error("DSN failed 4.4.7 by mx").0, "451");
        assert_eq!(smtp_error("connection lost").0, "554");
        assert_eq!(
            smtp_error("550 5.1.1 unknown").1,
            "Action non effectuée : boîte aux lettres non disponible"
        );
    }
}
