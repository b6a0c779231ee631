//! What the outbox stores and answers, shared by both backends.

use std::time::{SystemTime, UNIX_EPOCH};

use mss_types::{DsnRequest, Envelope, MailAddress};

use crate::error::{Error, Result};

/// A message's key in the store (also its id in the REST API).
pub type MessageKey = i64;

/// Milliseconds since the Unix epoch: the store's clock (the same column type in both backends).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A message to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The caller's key: accepting the same key again stores nothing (resumable batches, client retries).
    pub idempotency_key: String,
    /// What the caller calls this item (file name, its own reference), shown in statuses.
    pub label: String,
    /// The sending BAL.
    pub sender: MailAddress,
    /// How the sender authenticates, as a reference the worker resolves (`token:<BAL>`, `cert:<name>`):
    /// never a token or a password.
    pub auth_ref: String,
    /// The Message-ID of `content`, stable across retries.
    pub message_id: String,
    /// The composed message (RFC 5322).
    pub content: Vec<u8>,
    /// The envelope recipients.
    pub recipients: Vec<MailAddress>,
    /// Ask the operator for delivery status notifications (DSN: success, failure, delay; headers only):
    /// the sender's choice, as for a single send. The receipts then move recipients to delivered.
    pub dsn: bool,
}

impl NewMessage {
    /// Checks what the store relies on; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let text = |field: &str, v: &str, max: usize| -> Result<()> {
            if v.is_empty() {
                return Err(Error::invalid(field, "empty"));
            }
            if v.len() > max {
                return Err(Error::invalid(field, format!("longer than {max} bytes")));
            }
            if v.chars().any(char::is_control) {
                return Err(Error::invalid(field, "contains control characters"));
            }
            Ok(())
        };
        text("idempotency_key", &self.idempotency_key, 1024)?;
        text("auth_ref", &self.auth_ref, 512)?;
        text("message_id", &self.message_id, 998)?;
        if !self.label.is_empty() {
            text("label", &self.label, 1024)?;
        }
        if self.content.is_empty() {
            return Err(Error::invalid("content", "empty"));
        }
        // the addresses are checked by their type
        if self.recipients.is_empty() {
            return Err(Error::invalid("recipients", "none"));
        }
        Ok(())
    }
}

/// The answer for one accepted item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now.
    New(MessageKey),
    /// Its idempotency key was already stored, under this key: nothing was added.
    Existing(MessageKey),
}

impl Accepted {
    /// The message's key, new or not.
    pub fn key(self) -> MessageKey {
        match self {
            Accepted::New(k) | Accepted::Existing(k) => k,
        }
    }
}

/// Where one recipient of one message is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for a worker.
    Queued,
    /// Leased by a worker, being sent.
    Sending,
    /// Accepted by the submission server (the reply is kept).
    Sent,
    /// To retry at `retry_at` (the reason is kept).
    Deferred,
    /// Will not be retried (the reason, often the server's reply, is kept).
    Failed,
    /// A delivery status notification said delivered.
    Delivered,
    /// A disposition notification said read.
    Read,
}

impl State {
    /// All states, in display order.
    pub const ALL: [State; 7] = [
        State::Queued,
        State::Sending,
        State::Sent,
        State::Deferred,
        State::Failed,
        State::Delivered,
        State::Read,
    ];

    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Deferred => "deferred",
            State::Failed => "failed",
            State::Delivered => "delivered",
            State::Read => "read",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<State> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Store {
                reason: format!("unknown recipient state {s:?}"),
            })
    }

    /// No worker will touch it again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Sent | State::Failed | State::Delivered | State::Read
        )
    }

    /// Rank for receipts, which only move forward (sent < delivered < read; failed from a DSN is final).
    pub(crate) fn receipt_rank(self) -> u8 {
        match self {
            State::Delivered => 1,
            State::Read | State::Failed => 2,
            _ => 0,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker records for a leased recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted it; `reply` is its final answer (queue id).
    Sent {
        /// The SMTP reply text.
        reply: String,
    },
    /// Try again at `retry_at` (ms since the epoch).
    Deferred {
        /// When.
        retry_at: i64,
        /// Why (the SMTP reply, the network error).
        reason: String,
    },
    /// Give up.
    Failed {
        /// Why (the SMTP reply text for a 5xx).
        reason: String,
    },
}

impl Outcome {
    pub(crate) fn columns(&self) -> (State, i64, Option<&str>, Option<&str>) {
        match self {
            Outcome::Sent { reply } => (State::Sent, 0, None, Some(reply)),
            Outcome::Deferred { retry_at, reason } => {
                (State::Deferred, *retry_at, Some(reason), None)
            }
            Outcome::Failed { reason } => (State::Failed, 0, Some(reason), None),
        }
    }
}

/// A recipient a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedRecipient {
    /// The recipient's row, to record its outcome.
    pub id: i64,
    /// Its address.
    pub address: MailAddress,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// A message with the recipients a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedMessage {
    /// The message's key.
    pub key: MessageKey,
    /// The sending BAL.
    pub sender: MailAddress,
    /// How it authenticates (a reference, no secret).
    pub auth_ref: String,
    /// Its stable Message-ID.
    pub message_id: String,
    /// The bytes to send.
    pub content: Vec<u8>,
    /// Ask for delivery status notifications.
    pub dsn: bool,
    /// The recipients to send it to now.
    pub recipients: Vec<LeasedRecipient>,
}

impl LeasedMessage {
    /// The SMTP envelope of this send: its sender, the recipients leased now and, when asked, the DSN
    /// request (all notices, headers only), whose ENVID is the Message-ID the receipts are matched on.
    pub fn envelope(&self) -> Envelope {
        Envelope {
            from: self.sender.clone(),
            recipients: self.recipients.iter().map(|r| r.address.clone()).collect(),
            dsn: self
                .dsn
                .then(|| DsnRequest::all_notices(self.message_id.clone())),
        }
    }
}

/// Reads an address column: rows are outside input (an older version, another program), so a value that is
/// not an address is a store error naming its column, never a panic.
pub(crate) fn stored_address(column: &str, value: &str) -> Result<MailAddress> {
    MailAddress::parse(value).map_err(|e| Error::Store {
        reason: format!("column {column} holds something that is not a mail address ({e})"),
    })
}

/// A paused sender.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    /// The BAL.
    pub sender: String,
    /// Why (credentials refused, ...).
    pub reason: String,
    /// Since when (ms since the epoch).
    pub since_ms: i64,
}

/// Recipients by state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Waiting.
    pub queued: u64,
    /// Being sent.
    pub sending: u64,
    /// Accepted by the server.
    pub sent: u64,
    /// Waiting for a retry.
    pub deferred: u64,
    /// Given up.
    pub failed: u64,
    /// Delivered (DSN).
    pub delivered: u64,
    /// Read (MDN).
    pub read: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, state: State, n: u64) {
        let slot = match state {
            State::Queued => &mut self.queued,
            State::Sending => &mut self.sending,
            State::Sent => &mut self.sent,
            State::Deferred => &mut self.deferred,
            State::Failed => &mut self.failed,
            State::Delivered => &mut self.delivered,
            State::Read => &mut self.read,
        };
        *slot += n;
    }

    /// Recipients that still need a worker.
    pub fn pending(&self) -> u64 {
        self.queued + self.sending + self.deferred
    }

    /// All recipients.
    pub fn total(&self) -> u64 {
        self.pending() + self.sent + self.failed + self.delivered + self.read
    }

    /// Recipients the server accepted (sent, then maybe delivered or read).
    pub fn accepted(&self) -> u64 {
        self.sent + self.delivered + self.read
    }
}

/// One recipient's status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecipientStatus {
    /// Address.
    pub address: MailAddress,
    /// State.
    pub state: State,
    /// Attempts so far.
    pub attempts: u32,
    /// When a deferred recipient is retried (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<i64>,
    /// Why deferred or failed, or the receipt's detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The server's reply when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Last change (ms since the epoch).
    pub updated_ms: i64,
}

/// One message's status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageStatus {
    /// Key (REST id).
    pub id: MessageKey,
    /// Its batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// The caller's name for it.
    pub label: String,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// Sending BAL.
    pub sender: MailAddress,
    /// Message-ID.
    pub message_id: String,
    /// Accepted at (ms since the epoch).
    pub created_ms: i64,
    /// Why its sender is paused, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// The client its batch belongs to (none: the command line's, or no batch); never shown in answers.
    #[serde(skip)]
    pub owner: Option<String>,
    /// Recipients.
    pub recipients: Vec<RecipientStatus>,
}

/// A batch's status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchStatus {
    /// Its id.
    pub id: String,
    /// Created at (ms since the epoch).
    pub created_ms: i64,
    /// The client that created it (none: the command line's); never shown in answers.
    #[serde(skip)]
    pub owner: Option<String>,
    /// Number of messages.
    pub messages: u64,
    /// Recipients by state.
    pub counts: Counts,
    /// The requested page of messages.
    pub items: Vec<MessageStatus>,
}

/// One row of a status query: its message (recipients left empty) and one of its recipients (shared by
/// both backends).
pub(crate) struct StatusRow {
    pub message: MessageStatus,
    pub recipient: RecipientStatus,
}

/// Assembles message statuses from rows ordered by message key.
pub(crate) fn group_statuses(rows: Vec<StatusRow>) -> Vec<MessageStatus> {
    let mut out: Vec<MessageStatus> = Vec::new();
    for StatusRow { message, recipient } in rows {
        match out.last_mut() {
            Some(m) if m.id == message.id => m.recipients.push(recipient),
            _ => out.push(MessageStatus {
                recipients: vec![recipient],
                ..message
            }),
        }
    }
    out
}

/// A recipient's status from its columns (`retry_at_ms` only for a deferred one).
pub(crate) fn recipient_status(
    address: MailAddress,
    state: State,
    attempts: i64,
    due_ms: i64,
    reason: Option<String>,
    reply: Option<String>,
    updated_ms: i64,
) -> RecipientStatus {
    RecipientStatus {
        address,
        state,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        retry_at_ms: (state == State::Deferred).then_some(due_ms),
        reason,
        reply,
        updated_ms,
    }
}

/// Assembles leased messages: recipient rows ordered by message key, and the messages (without recipients).
pub(crate) fn group_leased(
    recipients: Vec<(MessageKey, LeasedRecipient)>,
    mut messages: std::collections::HashMap<MessageKey, LeasedMessage>,
) -> Vec<LeasedMessage> {
    let mut out: Vec<LeasedMessage> = Vec::new();
    for (key, r) in recipients {
        match out.last_mut() {
            Some(last) if last.key == key => last.recipients.push(r),
            _ => {
                if let Some(mut m) = messages.remove(&key) {
                    m.recipients.push(r);
                    out.push(m);
                }
            }
        }
    }
    out
}
