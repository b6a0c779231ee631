//! What an ops team watches and does across the whole store (the service's console and its metrics): each
//! sending mailbox's recipients by state, the rate of the last hour, the recent batches and their progress,
//! the recipients in trouble (failed, deferred) with the server's reply, each receiving mailbox's inbox; and
//! the two hands-on actions, retrying recipients now and cancelling what is still queued of a batch.
//!
//! Both backends answer these with a few grouped queries; nothing here is kept apart from the rows the
//! workers and readers write, so what the console shows is what the store holds.

use crate::error::Result;
use crate::model::{Counts, MessageKey, State};

mod connections;

pub use connections::{ConnectionLog, Endpoint, LastConnection};

/// One sending mailbox's recipients.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SenderLoad {
    /// The sending mailbox (BAL).
    pub sender: String,
    /// Its recipients by state.
    pub counts: Counts,
    /// When the oldest message still waiting for a worker (queued, sending or deferred) was accepted (ms
    /// since the epoch); none when nothing waits.
    pub oldest_pending_ms: Option<i64>,
}

/// Recipients that reached a final state in one interval, for one sender.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RateBucket {
    /// The sending mailbox.
    pub sender: String,
    /// Start of the interval (ms since the epoch, a multiple of its length).
    pub start_ms: i64,
    /// Recipients accepted by the server (sent, since delivered or read) whose last change fell in it.
    pub accepted: u64,
    /// Recipients that failed in it.
    pub failed: u64,
}

/// A batch and its progress.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchSummary {
    /// Its id.
    pub id: String,
    /// Created at (ms since the epoch).
    pub created_ms: i64,
    /// The client that created it (none: the command line's).
    pub owner: Option<String>,
    /// Its sending mailbox (the first one, should requests have filled it from several).
    pub sender: Option<String>,
    /// Number of messages.
    pub messages: u64,
    /// Recipients by state.
    pub counts: Counts,
}

/// A recipient, as the console lists those that need a look (failed, deferred to a later retry) and the
/// latest changes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecipientLine {
    /// Its message (`GET /v1/messages/{id}`).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub message: MessageKey,
    /// The message's batch.
    pub batch: Option<String>,
    /// The caller's name for the message.
    pub label: String,
    /// The sending mailbox.
    pub sender: String,
    /// The recipient.
    pub address: String,
    /// Its state.
    pub state: State,
    /// Attempts so far.
    pub attempts: u32,
    /// Why: the server's reply, the network error, or the report's detail.
    pub reason: Option<String>,
    /// When a deferred recipient is tried again (ms since the epoch).
    pub retry_at_ms: Option<i64>,
    /// Last change (ms since the epoch).
    pub updated_ms: i64,
}

/// One receiving mailbox's inbox.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InboxLoad {
    /// The mailbox (BAL).
    pub mailbox: String,
    /// Waiting for the consumer's outcome.
    pub new: u64,
    /// Integrated.
    pub integrated: u64,
    /// In error.
    pub error: u64,
    /// When the oldest message still waiting arrived (ms since the epoch).
    pub oldest_new_ms: Option<i64>,
}

/// The business acks (`ZAM^Z02`, `ZAM^Z03`) of one sending mailbox that are not done, by type and state:
/// those still to go to the DPI (it was down, or answered `AR`) and those it refused (`AE`, never resent).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BusinessAckLoad {
    /// The sending mailbox of the messages they report on (the `[hl7] sender`).
    pub sender: String,
    /// MSH-9: `ZAM^Z02` (delivery) or `ZAM^Z03` (reading).
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending` or `refused`.
    pub state: crate::exchanges::ExchangeState,
    /// How many.
    pub count: u64,
    /// When the oldest of them was queued (ms since the epoch).
    pub oldest_ms: i64,
    /// The latest one's trouble: why its last send got no answer (the DPI unreachable), or the DPI's ERR
    /// code and label.
    pub latest_error: Option<String>,
}

/// The grouped query behind [`Overview::business_ack_loads`], the same in both backends: the rows not
/// done are few whatever the history, and a partial index (`hl7_exchanges_open`, whose condition is
/// `state <> 'done'` as written here) keeps it from reading the others.
pub(crate) const BUSINESS_ACK_LOADS: &str = "SELECT m.sender, e.kind, e.state, COUNT(*), MIN(e.created_ms), \
     (SELECT COALESCE(x.last_error, x.error_code || ' ' || COALESCE(x.error_label, '')) \
        FROM hl7_exchanges x JOIN messages y ON y.id = x.message \
        WHERE x.state <> 'done' AND x.state = e.state AND x.kind = e.kind AND y.sender = m.sender \
          AND x.recipient IS NOT NULL \
        ORDER BY x.id DESC LIMIT 1) \
     FROM hl7_exchanges e JOIN messages m ON m.id = e.message \
     WHERE e.state <> 'done' AND e.recipient IS NOT NULL \
     GROUP BY m.sender, e.kind, e.state ORDER BY m.sender, e.kind, e.state";

/// The reason a cancelled recipient keeps (its state is `cancelled`: no worker takes it again).
pub fn cancel_reason(by: &str) -> String {
    format!("cancelled by {by} before it was sent")
}

/// The store seen whole, and the ops team's actions on it (every [`crate::Store`] is one). Every method is
/// one transaction.
#[async_trait::async_trait]
pub trait Overview: Send + Sync {
    /// Recipients by state of every sending mailbox that has any, by mailbox.
    async fn sender_loads(&self) -> Result<Vec<SenderLoad>>;

    /// Recipients that reached a final state since `since_ms`, by sender and interval of `bucket_ms`, in
    /// time order.
    async fn rates(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<RateBucket>>;

    /// The `limit` most recent batches, newest first.
    async fn recent_batches(&self, limit: u64) -> Result<Vec<BatchSummary>>;

    /// Up to `limit` recipients in one of `states` (any state when empty), most recently changed first.
    async fn recipients_in(&self, states: &[State], limit: u64) -> Result<Vec<RecipientLine>>;

    /// Puts the failed and deferred recipients of `message` (those at `recipients` only, when not empty;
    /// addresses compared without case) back in the queue, due now: the workers send them again with
    /// the same Message-ID. Answers how many were requeued.
    async fn retry_now(&self, message: MessageKey, recipients: &[String]) -> Result<u64>;

    /// Cancels what is still waiting of `batch` (queued or deferred: a recipient being sent goes on): they
    /// become `cancelled`, with `reason`. Answers how many were cancelled; `None` when there is no such
    /// batch.
    async fn cancel_queued(&self, batch: &str, reason: &str) -> Result<Option<u64>>;

    /// Messages by status of every receiving mailbox that has any, by mailbox.
    async fn inbox_loads(&self) -> Result<Vec<InboxLoad>>;

    /// The business acks to the DPI not done (pending, refused), by sender, type and state.
    async fn business_ack_loads(&self) -> Result<Vec<BusinessAckLoad>>;
}

/// `states` as a SQL condition on `r.state` (their names are ours: nothing from outside is spliced).
pub(crate) fn state_condition(states: &[State]) -> String {
    if states.is_empty() {
        return "TRUE".to_owned();
    }
    let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("r.state IN ({})", names.join(", "))
}

/// Lowercased addresses, for comparison with stored ones.
pub(crate) fn lowered(recipients: &[String]) -> Vec<String> {
    recipients
        .iter()
        .map(|r| r.trim().to_ascii_lowercase())
        .collect()
}

/// Adds a grouped row (sender, state, count, oldest pending) to the loads, kept in sender order.
pub(crate) fn add_load(
    loads: &mut Vec<SenderLoad>,
    sender: String,
    state: State,
    n: u64,
    oldest_ms: Option<i64>,
) {
    if loads.last().is_none_or(|l| l.sender != sender) {
        loads.push(SenderLoad {
            sender,
            ..SenderLoad::default()
        });
    }
    if let Some(l) = loads.last_mut() {
        l.counts.add(state, n);
        if !state.is_final() {
            l.oldest_pending_ms = match (l.oldest_pending_ms, oldest_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
}

/// Adds a grouped inbox row (mailbox, status, count, oldest) to the loads, kept in mailbox order.
pub(crate) fn add_inbox_load(
    loads: &mut Vec<InboxLoad>,
    mailbox: String,
    status: &str,
    n: u64,
    oldest_ms: Option<i64>,
) {
    if loads.last().is_none_or(|l| l.mailbox != mailbox) {
        loads.push(InboxLoad {
            mailbox,
            ..InboxLoad::default()
        });
    }
    if let Some(l) = loads.last_mut() {
        match status {
            "new" => {
                l.new += n;
                l.oldest_new_ms = oldest_ms;
            }
            "integrated" => l.integrated += n,
            _ => l.error += n,
        }
    }
}
