//! Durable outbox for batch sending (XDM letters and results handed over by hospital systems by the thousand),
//! and the inbox beside it for what the same mailboxes receive.
//!
//! A message is first persisted — composed bytes, recipients, sender BAL, a reference to how the sender
//! authenticates (never a token), the caller's idempotency key and the stable Message-ID — and only then
//! acknowledged. Workers then lease recipients, deliver over the API LPS ([`mss_lps`]) and record, per
//! recipient, `queued -> sending -> sent | deferred(retry_at, reason) | failed(reason)` with the SMTP reply.
//! Delivery is at least once: a worker killed between the server's acceptance and the commit of `sent`
//! leaves a lease that expires, and the message goes again with the same Message-ID, so the rare duplicate is
//! recognisable downstream. Receipts received later (DSN/MDN) move a recipient on to `delivered`, `read` or
//! `failed`.
//!
//! One [`Store`] trait, two backends with the same behaviour (one test suite runs against both):
//! - [`SqliteStore`]: embedded, the default, one file under the data directory (WAL, synchronous=FULL);
//!   leases are taken in an immediate transaction, so several processes on one machine can share it.
//! - [`PostgresStore`]: several `mss` workers on several machines share one queue; leases are taken with
//!   `FOR UPDATE SKIP LOCKED`.
//!
//! [`worker`] delivers: one authenticated connection reused for many messages, exponential backoff with
//! jitter for transient failures, 5xx final per recipient, a mailbox whose credentials are refused paused
//! (reason kept) until new ones are given, per-operator connection and rate limits.
//!
//! [`reader`] is a mailbox's one reader over IMAP: the DSNs and MDNs that come back move recipients on
//! ([`receipts`]), and, when the mailbox receives, every other message is kept in the [`inbox`], in the
//! same database, before anything else is done with it (docs/mssante.md R1).
//!
//! [`exchanges`] logs the PFI's HL7 exchanges with the DPI about outbox and inbox messages, and queues the
//! business acks (ZAM) the receipts call for (docs/mssante.md H1, H2).
//!
//! [`prepare`] turns a batch item (a ready message or a compose request) into a [`NewMessage`], with its
//! idempotency key; [`open_store`] opens the store a URL or path names; [`supervisor`] runs a mailbox's
//! worker loops under a worker name held by one live process at a time
//! ([`Store::hold_worker_name`]), and, for a service, restarts them when the credentials change;
//! [`config`] checks a service's `[[senders]]`; [`overview`] answers the ops console and the metrics. The stores read time from a [`Clock`] (a [`ManualClock`] in
//! tests).

mod clock;
pub mod config;
mod error;
pub mod exchanges;
pub mod inbox;
mod model;
mod open;
pub mod overview;
mod postgres;
pub mod prepare;
pub mod reader;
pub mod receipts;
mod spool;
mod sqlite;
pub mod supervisor;
pub mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use exchanges::Exchanges;
pub use inbox::Inbox;
pub use model::{
    Accepted, BatchStatus, Counts, LeasedMessage, LeasedRecipient, MessageKey, MessageStatus,
    NewMessage, Outcome, Pause, RecipientStatus, State, now_ms,
};
pub use open::{default_worker_name, open_store};
pub use overview::Overview;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Maximum number of items in one batch.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// A worker name held by this process on one outbox ([`Store::hold_worker_name`]); dropping it, or the
/// process ending in any way, frees the name.
pub struct WorkerNameHold {
    _guard: Box<dyn Send + Sync>,
    /// Cleared when the hold ended by itself (a PostgreSQL session cut by a server restart).
    held: Option<Arc<AtomicBool>>,
}

impl WorkerNameHold {
    pub(crate) fn new(guard: impl Send + Sync + 'static, held: Option<Arc<AtomicBool>>) -> Self {
        WorkerNameHold {
            _guard: Box::new(guard),
            held,
        }
    }

    /// Whether the name is still held (a hold on a server ends with the session that holds it).
    pub fn is_held(&self) -> bool {
        self.held.as_ref().is_none_or(|h| h.load(Ordering::SeqCst))
    }
}

impl std::fmt::Debug for WorkerNameHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerNameHold")
            .field("held", &self.is_held())
            .finish_non_exhaustive()
    }
}

/// The outbox, the [`Inbox`] beside it in the same database, the HL7 [`Exchanges`] with a DPI about
/// either, and their [`Overview`]. Every method is one transaction: when it
/// returns `Ok`, what it wrote is on disk.
#[async_trait::async_trait]
pub trait Store: Inbox + Overview + Exchanges + Send + Sync {
    /// The store's clock, in milliseconds since the Unix epoch (due times, retry times).
    fn now_ms(&self) -> i64;

    /// Takes the worker name `name` for this process, unless another live process holds it: `None` then.
    /// A worker takes back at start the leases its name left ([`Store::release`]): two live processes
    /// under one name would take each other's leases and send the same messages twice. The name is free
    /// again when the hold is dropped or its process ends, however it ends.
    async fn hold_worker_name(&self, name: &str) -> Result<Option<WorkerNameHold>>;

    /// Persists messages, in one transaction, under `batch` when given (the batch is created if new,
    /// belonging to `owner`: the REST client that sends it; none for the command line). An existing batch
    /// of another owner takes nothing: [`Error::BatchOwner`], nothing stored. An owner needs a batch.
    /// An item whose idempotency key is already known is not stored again: its answer is
    /// [`Accepted::Existing`] with the key of the first one.
    async fn enqueue(
        &self,
        batch: Option<&str>,
        owner: Option<&str>,
        items: Vec<NewMessage>,
    ) -> Result<Vec<Accepted>> {
        self.enqueue_logged(batch, owner, items, Vec::new()).await
    }

    /// [`Store::enqueue`], and in the same transaction logs `log[i]` as an exchange of item `i`'s
    /// message, new or found again (its link set to that message): the HL7 listener's one commit per
    /// message (docs/mssante.md H1).
    async fn enqueue_logged(
        &self,
        batch: Option<&str>,
        owner: Option<&str>,
        items: Vec<NewMessage>,
        log: Vec<exchanges::NewExchange>,
    ) -> Result<Vec<Accepted>>;

    /// Leases up to `max` recipients ready to go (queued, deferred and due, or sending with an expired
    /// lease), of `sender` only when given, skipping paused senders; they become `sending`, owned by
    /// `worker` until `lease` from now. Grouped by message.
    async fn lease(
        &self,
        worker: &str,
        sender: Option<&str>,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<LeasedMessage>>;

    /// Records what happened to leased recipients (by [`LeasedRecipient::id`]). A recipient no longer
    /// leased by `worker` (its lease expired and another worker took it) is left alone. Returns how many
    /// were updated.
    async fn record(&self, worker: &str, outcomes: &[(i64, Outcome)]) -> Result<u64>;

    /// Extends by `lease` from now what `worker` still holds (a worker slower than its lease keeps it instead of
    /// seeing another worker send the same messages). Returns how many recipients it still holds.
    async fn renew(&self, worker: &str, lease: Duration) -> Result<u64>;

    /// Gives back everything `worker` holds (clean shutdown): `sending` becomes `queued` again.
    async fn release(&self, worker: &str) -> Result<u64>;

    /// Stops leasing `sender`'s messages, with the reason shown in statuses.
    async fn pause(&self, sender: &str, reason: &str) -> Result<()>;

    /// Leases `sender`'s messages again (new token or certificate). Returns whether it was paused.
    async fn resume(&self, sender: &str) -> Result<bool>;

    /// Paused senders.
    async fn paused(&self) -> Result<Vec<Pause>>;

    /// Recipients by state, of `sender` or of everything.
    async fn counts(&self, sender: Option<&str>) -> Result<Counts>;

    /// A batch: counts over all its recipients and `limit` of its messages from the `offset`-th, in the
    /// order they were accepted.
    async fn batch(&self, id: &str, offset: u64, limit: u64) -> Result<Option<BatchStatus>>;

    /// One message and its recipients.
    async fn message(&self, key: MessageKey) -> Result<Option<MessageStatus>>;

    /// A receipt arrived: moves the recipients of the message with this Message-ID (one of them when
    /// `recipient` is given) to `state` (delivered, read or failed), keeping `detail`. Does not go back
    /// (a `read` recipient stays read when a late DSN arrives). Returns how many were updated.
    async fn receipt(
        &self,
        message_id: &str,
        recipient: Option<&str>,
        state: State,
        detail: &str,
    ) -> Result<u64>;

    /// Where the receipts reader of `mailbox` (a key such as `alice@x.fr/INBOX`) stopped: the mailbox's
    /// UIDVALIDITY and the last UID read.
    async fn receipt_cursor(&self, mailbox: &str) -> Result<Option<(u32, u32)>>;

    /// Moves that mark, once the receipts up to `uid` are recorded.
    async fn set_receipt_cursor(&self, mailbox: &str, uid_validity: u32, uid: u32) -> Result<()>;
}
