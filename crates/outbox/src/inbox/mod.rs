//! The inbox: messages received in a mailbox, kept locally and durably before anything else is done with
//! them (docs/mssante.md R1), in the same database as the outbox.
//!
//! Each message is keyed twice: by where the server holds it (mailbox, folder, UIDVALIDITY, UID) and by what
//! it is (mailbox, Message-ID, or the SHA-256 of its bytes when it has none). The second key is unique, so a
//! reader that reads a message again (killed before moving its mark, or after the server renumbered the
//! folder: a new UIDVALIDITY) finds it known and stores nothing twice; the server's place is then updated.
//! The reader's mark per (mailbox, folder) moves in the transaction that commits the rows below it.
//!
//! SQLite keeps the bytes in a spool of segment files beside the database (`outbox.inbox/`: 0600 files in a
//! 0700 directory, synced before the rows that point at them commit, the outbox's `crate::spool`; what a
//! reader killed in between leaves is swept later, [`Inbox::inbox_sweep`]);
//! PostgreSQL keeps them in the row, committed with it (the database is what several machines share).
//!
//! A message is `new` until the consumer records an outcome (`integrated` or `error`, with a code and a
//! label: columns kept for it, final once recorded, [`ack`]). A few fields are columns (Message-ID, sender,
//! subject as shown); what the message reader finds is a JSON `summary` (sender's name, patient, end of
//! exchange, documents, problems, the ids it answers and the outbox message it replies to), shown flat in
//! [`InboxEntry`].

use sha2::Digest as _;

pub mod ack;
pub mod export;
pub mod push;

use crate::error::{Error, Result};

/// A received message on its way into the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Its UID in the folder read.
    pub uid: u32,
    /// The message as the server gave it.
    pub raw: Vec<u8>,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// `From:` address.
    pub from: Option<String>,
    /// The subject as shown (without `XDM/1.0/DDM+`, docs/mssante.md R2).
    pub subject: Option<String>,
    /// What the reader found, as JSON (`{"problems": [...]}` at least; [`Details`] for the rest).
    pub summary: serde_json::Value,
}

/// A message as it arrived: a report for the outbox, or a message for the inbox.
#[derive(Debug)]
pub enum Arrival {
    /// A DSN or an MDN.
    Report(Box<mss_message::Report>),
    /// Anything else.
    Message(Incoming),
}

impl Arrival {
    /// Reads `raw` far enough to tell a report from a message and fill the inbox's columns. A message the
    /// reader cannot read (or that makes it panic: outside input never stops a reader) is a message, kept
    /// with the reason in `problems`.
    pub fn read(uid: u32, raw: Vec<u8>) -> Arrival {
        // read_message contains the MIME parser's panics itself; this net also holds for a bug of ours
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            mss_message::read_message(&raw)
        }));
        let (message_id, from, subject, summary) = match read {
            Ok(Ok(mut m)) => {
                if let Some(r) = m.report.take() {
                    return Arrival::Report(Box::new(r));
                }
                let summary = summary_of(&m);
                let subject = m.display_subject().to_owned();
                (m.message_id, m.from, Some(subject), summary)
            }
            Ok(Err(e)) => (
                None,
                None,
                None,
                serde_json::json!({ "problems": [format!("unreadable message: {e}")] }),
            ),
            Err(_) => (
                None,
                None,
                None,
                serde_json::json!({
                    "problems": ["unreadable message: the MIME parser failed on it"]
                }),
            ),
        };
        Arrival::Message(Incoming {
            uid,
            raw,
            message_id: message_id.filter(|id| !id.trim().is_empty()),
            from,
            subject,
            summary,
        })
    }
}

/// What the inbox keeps of the reader's view (the fields of a listing; bodies and documents stay in the
/// bytes, read again when shown), taken without copying the bodies.
fn summary_of(m: &mss_message::ReceivedMessage) -> serde_json::Value {
    let patient = m
        .patient_sender()
        .map(|p| serde_json::json!({ "ins": p.ins.to_string(), "name": p.display_name }));
    let date = m.date.and_then(|d| {
        d.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    serde_json::json!({
        "from_name": m.from_name,
        "patient": patient,
        "date": date,
        "end_of_exchange": m.end_of_exchange,
        "documents": m.documents().count(),
        "attachments": m.attachments.len(),
        "disposition_notification_to": m.disposition_notification_to,
        "thread_ids": m.thread_ids(),
        "problems": m.problems,
    })
}

impl Incoming {
    /// The ids this message answers, nearest first (`In-Reply-To`, then `References`).
    pub fn thread_ids(&self) -> Vec<String> {
        self.summary["thread_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Notes the outbox message this one replies to (found by [`Inbox::inbox_replied`]).
    pub fn set_replies_to(&mut self, message: crate::MessageKey) {
        if let Some(o) = self.summary.as_object_mut() {
            o.insert("replies_to".into(), message.into());
        }
    }

    /// The SHA-256 of its bytes, in hex.
    pub fn sha256(&self) -> String {
        mss_types::hex(&sha2::Sha256::digest(&self.raw))
    }

    /// What makes it unique in its mailbox: `id:<Message-ID>`, else `sha256:<hex of the bytes>`.
    pub fn dedupe_key(&self) -> String {
        match &self.message_id {
            Some(id) => format!("id:{}", id.trim()),
            None => format!("sha256:{}", self.sha256()),
        }
    }

    /// Whether the reader found problems in it.
    pub fn is_faulty(&self) -> bool {
        self.summary["problems"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    }
}

/// What [`Inbox::keep`] did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Stored now, under this inbox id.
    New(i64),
    /// Already in the inbox under this id (read again): nothing stored.
    Known(i64),
    /// Kept once, then purged after its outcome (still at the operator with `retention = "keep"`, or
    /// met again in a renumbered folder): only its tombstone remains, nothing is stored again.
    Gone,
}

/// A purged message's tombstone: the SHA-256 of its dedupe key (Message-ID, else its bytes' hash), so
/// the store keeps no trace of the message itself, only enough to never take it in again.
pub fn tombstone(dedupe_key: &str) -> String {
    use sha2::Digest;
    mss_types::hex(&sha2::Sha256::digest(dedupe_key.as_bytes()))
}

/// Where a message is in its life in the inbox.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxStatus {
    /// Received, waiting for the consumer's outcome.
    New,
    /// The consumer integrated it.
    Integrated,
    /// The consumer could not (code and label recorded).
    Error,
}

impl InboxStatus {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::New => "new",
            InboxStatus::Integrated => "integrated",
            InboxStatus::Error => "error",
        }
    }

    /// The status a word names.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "new" => Ok(InboxStatus::New),
            "integrated" => Ok(InboxStatus::Integrated),
            "error" => Ok(InboxStatus::Error),
            other => Err(Error::invalid(
                "status",
                format!("expected new, integrated or error, got {other:?}"),
            )),
        }
    }
}

/// One message of the inbox, as listed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InboxEntry {
    /// Inbox id.
    pub id: i64,
    /// The mailbox (BAL) it arrived in.
    pub mailbox: String,
    /// The folder it was read from.
    pub folder: String,
    /// The folder's UIDVALIDITY when it was last read there.
    pub uid_validity: u32,
    /// Its UID there.
    pub uid: u32,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// `From:` address.
    pub from: Option<String>,
    /// The subject as shown (without `XDM/1.0/DDM+`).
    pub subject: Option<String>,
    /// When it was stored locally, RFC 3339.
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: i64,
    /// Its status.
    pub status: InboxStatus,
    /// Size in bytes.
    pub size: u64,
    /// The consumer's outcome, once recorded.
    pub outcome: Option<InboxOutcome>,
    /// When retention took it out of the folder at the operator (RFC 3339); `null` while it is there.
    #[serde(serialize_with = "rfc3339_or_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub left_operator_at: Option<i64>,
    /// How it left: `deleted`, `moved:FOLDER`, or `flagged` (flagged `\Deleted`, left for an EXPUNGE
    /// of the operator's: the server has no UIDPLUS); `null` while it is there.
    pub disposition: Option<String>,
    /// When the webhook took it (RFC 3339); `null` before, or without a webhook.
    #[serde(serialize_with = "rfc3339_or_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub pushed_at: Option<i64>,
    /// What the reader found, flat.
    #[serde(flatten)]
    pub details: Details,
    /// What the reader found (JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub summary: serde_json::Value,
}

/// The consumer's outcome of a message (docs/mssante.md R4), final once recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InboxOutcome {
    /// The error code (HL7 ERR-3 or 900–906); `None` when integrated.
    pub code: Option<u16>,
    /// The error's label; `None` when integrated.
    pub label: Option<String>,
    /// When it was recorded, RFC 3339.
    #[serde(serialize_with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: i64,
}

/// The fields of the reader's summary an inbox listing shows (docs/mssante.md R2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Details {
    /// `From:` display name.
    pub from_name: Option<String>,
    /// The patient who wrote from Mon espace santé (`{"ins", "name"}`), else `null`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub patient: Option<serde_json::Value>,
    /// `X-MSS-MES: FIN` or subject `[FIN]`.
    pub end_of_exchange: bool,
    /// Documents found in its IHE_XDM archives.
    pub documents: u64,
    /// Every fault found, in plain words.
    pub problems: Vec<String>,
    /// The outbox message it replies to (In-Reply-To / References), when mss sent it.
    pub replies_to: Option<i64>,
}

impl Details {
    /// Reads them from a stored summary (what is missing is absent: older rows).
    pub fn from_summary(s: &serde_json::Value) -> Details {
        Details {
            from_name: s["from_name"].as_str().map(str::to_owned),
            patient: Some(s["patient"].clone()).filter(|p| p.is_object()),
            end_of_exchange: s["end_of_exchange"].as_bool().unwrap_or(false),
            documents: s["documents"].as_u64().unwrap_or(0),
            problems: s["problems"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            replies_to: s["replies_to"].as_i64(),
        }
    }
}

impl InboxOutcome {
    /// The outcome of stored columns: status, code, label, time.
    pub(crate) fn from_columns(
        status: InboxStatus,
        code: Option<i64>,
        label: Option<String>,
        at: Option<i64>,
    ) -> Option<InboxOutcome> {
        match (status, at) {
            (InboxStatus::New, _) | (_, None) => None,
            (_, Some(at)) => Some(InboxOutcome {
                code: code.and_then(|c| u16::try_from(c).ok()),
                label,
                at,
            }),
        }
    }
}

fn rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_ms(*ms))
}

fn rfc3339_or_null<S: serde::Serializer>(
    ms: &Option<i64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_ms(*ms)),
        None => s.serialize_none(),
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC, to the second).
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Which messages [`Inbox::inbox_list`] answers.
#[derive(Debug, Clone, Default)]
pub struct InboxQuery {
    /// Of this status only (all when `None`).
    pub status: Option<InboxStatus>,
    /// Of this mailbox only.
    pub mailbox: Option<String>,
    /// With an id above this one (paging).
    pub after: i64,
    /// At most this many (0: no limit).
    pub limit: u64,
}

/// A message whose outcome is recorded and that the operator still holds: what retention takes out of the
/// folder it was read from (docs/mssante.md R5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaving {
    /// Inbox id.
    pub id: i64,
    /// The folder's UIDVALIDITY when it was last read there.
    pub uid_validity: u32,
    /// Its UID there.
    pub uid: u32,
}

/// Where a mailbox's webhook push stands ([`push`]): the last message delivered, and how the next one fares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushMark {
    /// The last inbox id delivered (or given up); the next is the mailbox's first message above it.
    pub last_id: i64,
    /// Failed attempts at the next one.
    pub attempts: u32,
    /// When its first failed attempt was (ms since the epoch), while it fails.
    pub failing_since_ms: Option<i64>,
    /// Not to be tried before this time (ms since the epoch).
    pub due_ms: i64,
    /// The store's time when the mark was read.
    pub now_ms: i64,
}

/// The inbox side of the store (every [`crate::Store`] is one). Every method is one transaction.
#[async_trait::async_trait]
pub trait Inbox: Send + Sync {
    /// Where the reader of `folder` of `mailbox` stopped: its UIDVALIDITY and the last UID kept.
    async fn inbox_cursor(&self, mailbox: &str, folder: &str) -> Result<Option<(u32, u32)>>;

    /// Keeps `messages` read from `folder` of `mailbox` (UIDVALIDITY `uid_validity`) and moves the reader's
    /// mark to `up_to`, in one transaction, once their bytes are durable. A message already in the inbox
    /// (same Message-ID, or same bytes when it has none) is not stored again: its place on the server is
    /// updated. Answers, per message in order, what became of it.
    async fn keep(
        &self,
        mailbox: &str,
        folder: &str,
        uid_validity: u32,
        up_to: u32,
        messages: Vec<Incoming>,
    ) -> Result<Vec<Kept>>;

    /// Messages of the inbox, oldest first.
    async fn inbox_list(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>>;

    /// One message of the inbox.
    async fn inbox_get(&self, id: i64) -> Result<Option<InboxEntry>> {
        let page = self
            .inbox_list(&InboxQuery {
                after: id.saturating_sub(1),
                limit: 1,
                ..InboxQuery::default()
            })
            .await?;
        Ok(page.into_iter().find(|e| e.id == id))
    }

    /// Records the consumer's outcome of message `id` (`integrated`, or `error` with its code and label)
    /// unless one is recorded already: an outcome is final. Answers the message with the outcome it has
    /// now and whether this call recorded it; `None` when there is no such message.
    async fn inbox_outcome(
        &self,
        id: i64,
        status: InboxStatus,
        code: Option<u16>,
        label: Option<&str>,
    ) -> Result<Option<(InboxEntry, bool)>>;

    /// The outbox message among `message_ids` (nearest first, with or without angle brackets) that this
    /// store sent: what a received message replies to.
    async fn inbox_replied(&self, message_ids: &[String]) -> Result<Option<crate::MessageKey>>;

    /// The bytes of a message as received.
    async fn inbox_raw(&self, id: i64) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` messages of `folder` of `mailbox`, oldest first, whose outcome is recorded and that are
    /// not yet noted as gone from the operator ([`Inbox::inbox_left`]).
    async fn inbox_leaving(&self, mailbox: &str, folder: &str, limit: u64) -> Result<Vec<Leaving>>;

    /// Notes that the messages `ids` left the operator (`how`: `deleted`, `moved:FOLDER`, `flagged`).
    async fn inbox_left(&self, ids: &[i64], how: &str) -> Result<()>;

    /// Purges the local copies (row and bytes) of `mailbox` whose outcome was recorded more than `keep`
    /// ago; with `only_left`, only those noted as gone from the operator. A message still `new` is never
    /// purged. Answers the ids purged.
    async fn inbox_purge(
        &self,
        mailbox: &str,
        keep: std::time::Duration,
        only_left: bool,
    ) -> Result<Vec<i64>>;

    /// Where the webhook push of `mailbox` stands (a mark at 0 when it never pushed).
    async fn inbox_push_mark(&self, mailbox: &str) -> Result<PushMark>;

    /// Notes message `id` of `mailbox` delivered to the webhook (`delivered`: its `pushed_at` is now) or
    /// given up: the next one is above it.
    async fn inbox_pushed(&self, mailbox: &str, id: i64, delivered: bool) -> Result<()>;

    /// Notes a failed attempt at the next message of `mailbox`: tried again in `retry_in`.
    async fn inbox_push_failed(
        &self,
        mailbox: &str,
        retry_in: std::time::Duration,
        reason: &str,
    ) -> Result<()>;

    /// Removes received bytes no message points at, written more than `age` ago: what a reader killed
    /// between writing them and committing their rows left (health data does not linger). Answers how
    /// many pieces were removed (always 0 where the bytes are in the rows).
    async fn inbox_sweep(&self, age: std::time::Duration) -> Result<u64>;
}

/// A message of the inbox with what the message reader makes of its bytes again (`None` when they are
/// unreadable: the entry's `problems` say why); `None` when there is no such message.
pub async fn open(
    store: &dyn Inbox,
    id: i64,
) -> Result<Option<(InboxEntry, Option<mss_message::ReceivedMessage>)>> {
    let Some(entry) = store.inbox_get(id).await? else {
        return Ok(None);
    };
    let message = store
        .inbox_raw(id)
        .await?
        .and_then(|raw| mss_message::read_message(&raw).ok());
    Ok(Some((entry, message)))
}

/// A message as `mss inbox show --json` and `GET /v1/inbox/{id}` show it: the inbox's fields, then the
/// reader's view over them (bodies, attachments, `xdm`) and every header field (`[name, value]`, unfolded,
/// not decoded); the stored `summary` left out; `hl7`, its HL7 exchanges with the DPI
/// (`crate::exchanges::Exchange`), when there are some.
pub fn shown<X: serde::Serialize>(
    entry: &InboxEntry,
    message: Option<&mss_message::ReceivedMessage>,
    hl7: &[X],
) -> serde_json::Value {
    let mut out = serde_json::to_value(entry).unwrap_or(serde_json::Value::Null);
    if let Some(o) = out.as_object_mut() {
        o.remove("summary");
        if !hl7.is_empty() {
            o.insert("hl7".into(), serde_json::json!(hl7));
        }
        if let Some(m) = message
            && let Ok(serde_json::Value::Object(view)) = serde_json::to_value(m.view())
        {
            o.extend(view);
            o.insert(
                "headers".into(),
                serde_json::json!(mss_message::header_fields(&m.raw)),
            );
        }
    }
    out
}

/// A summary stored as text, read back (a damaged one reads as `null` rather than failing the listing).
pub(crate) fn summary_from(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(raw: &[u8]) -> Incoming {
        match Arrival::read(7, raw.to_vec()) {
            Arrival::Message(m) => m,
            Arrival::Report(r) => panic!("a report: {r:?}"),
        }
    }

    #[test]
    fn a_message_is_known_by_its_id_else_by_its_bytes() {
        let m = message(
            b"From: a@x.fr\r\nMessage-ID: <k@x>\r\nSubject: =?utf-8?q?R=C3=A9sultat?=\r\n\r\nhi\r\n",
        );
        assert_eq!(m.dedupe_key(), "id:k@x");
        assert_eq!(m.from.as_deref(), Some("a@x.fr"));
        assert_eq!(m.subject.as_deref(), Some("Résultat"));
        assert!(!m.is_faulty());
        let anonymous = message(b"From: a@x.fr\r\n\r\nhi\r\n");
        assert_eq!(
            anonymous.dedupe_key(),
            format!("sha256:{}", anonymous.sha256())
        );
        assert_eq!(anonymous.sha256().len(), 64);
    }

    #[test]
    fn an_unreadable_message_is_kept_with_its_problem() {
        let m = message(b"");
        assert!(m.is_faulty(), "{}", m.summary);
        assert!(m.dedupe_key().starts_with("sha256:"));
    }

    #[test]
    fn statuses_read_back_and_times_print_in_utc() {
        for s in [
            InboxStatus::New,
            InboxStatus::Integrated,
            InboxStatus::Error,
        ] {
            assert_eq!(InboxStatus::parse(s.as_str()).expect("parse"), s);
        }
        assert!(InboxStatus::parse("all").is_err());
        assert_eq!(format_ms(1_780_000_000_123), "2026-05-28T20:26:40Z");
    }
}
