//! The embedded store: one SQLite file (WAL, synchronous=FULL so that an accepted message survives a power
//! cut; outcomes are committed with synchronous=NORMAL, see `record`), used from a blocking thread, and the
//! messages' bytes in a spool of segment files beside it (`crate::spool`), but for small acceptances,
//! kept in their rows. Leases are taken in an immediate
//! transaction, which serialises them between the processes sharing the file: the same semantics as
//! PostgreSQL's `FOR UPDATE SKIP LOCKED`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::Digest as _;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::model::{
    Accepted, BatchStatus, Counts, LeasedMessage, LeasedRecipient, MessageKey, MessageStatus,
    NewMessage, Outcome, Pause, State, StatusRow, group_leased, group_statuses, recipient_status,
    stored_address,
};
use crate::spool::{Place, Spool};

pub(crate) mod exchanges;
mod inbox;
mod overview;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  owner TEXT
);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  batch TEXT REFERENCES batches(id),
  label TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  sender TEXT NOT NULL,
  auth_ref TEXT NOT NULL,
  message_id TEXT NOT NULL,
  content BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  dsn INTEGER NOT NULL DEFAULT 1,
  spool TEXT,
  spool_offset INTEGER,
  spool_len INTEGER
);
CREATE INDEX IF NOT EXISTS messages_batch ON messages(batch, id);
CREATE INDEX IF NOT EXISTS messages_message_id ON messages(message_id);
CREATE INDEX IF NOT EXISTS messages_sender ON messages(sender);
CREATE TABLE IF NOT EXISTS recipients (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message INTEGER NOT NULL REFERENCES messages(id),
  address TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_ms INTEGER NOT NULL,
  lease_owner TEXT,
  reason TEXT,
  reply TEXT,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients(due_ms)
  WHERE state IN ('queued', 'deferred', 'sending');
CREATE INDEX IF NOT EXISTS recipients_message ON recipients(message);
CREATE TABLE IF NOT EXISTS receipt_cursors (
  mailbox TEXT PRIMARY KEY,
  uid_validity INTEGER NOT NULL,
  last_uid INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS paused (
  sender TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  since_ms INTEGER NOT NULL
);
";

/// The embedded outbox.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    spool: Spool,
    /// Outcomes waiting for the next commit (see [`crate::Store::record`] below).
    pending: Arc<Mutex<Vec<PendingRecord>>>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Outcomes of one `record` call, and where to answer once they are committed.
struct PendingRecord {
    worker: String,
    outcomes: Vec<(i64, Outcome)>,
    done: tokio::sync::oneshot::Sender<Result<u64>>,
}

/// The same error again, for every caller of a shared commit.
fn duplicate(e: &Error) -> Error {
    match e {
        Error::Unavailable { reason } => Error::Unavailable {
            reason: reason.clone(),
        },
        other => Error::Store {
            reason: other.to_string(),
        },
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The file's name under the data directory.
    pub const FILE_NAME: &'static str = "outbox.sqlite";

    /// Opens (creating it if needed) the outbox file. Several processes may open it at once (`mss serve`
    /// and `mss batch` on one data directory): SQLite answers "database is locked" to the switch to WAL
    /// and to the schema while another connection does the same, without waiting for its busy timeout,
    /// so the setup is retried for a while.
    pub fn open(path: &Path) -> Result<Self> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut pause = Duration::from_millis(20);
        let conn = loop {
            match Self::set_up(path) {
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(Error::Unavailable {
                        reason: format!("{}: {e}", path.display()),
                    });
                }
                Ok((_, mode)) if !mode.eq_ignore_ascii_case("wal") => {
                    return Err(Error::Unavailable {
                        reason: format!("{}: WAL journal refused ({mode})", path.display()),
                    });
                }
                Ok((conn, _)) => break conn,
            }
        };
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            spool: Spool::beside(path),
            pending: Arc::new(Mutex::new(Vec::new())),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same store, reading time from `clock` (tests: a lease expires without waiting for it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Opens the file, switches it to WAL (answering the journal mode it got) and creates the schema.
    fn set_up(path: &Path) -> rusqlite::Result<(Connection, String)> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // journal_mode answers a row: read it rather than execute
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok((conn, mode));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(inbox::SQLITE_SCHEMA)?;
        conn.execute_batch(overview::SQLITE_INDEXES)?;
        conn.execute_batch(exchanges::SQLITE_SCHEMA)?;
        // outboxes made before messages chose their DSN: what they hold was to be sent asking for it
        add_column(&conn, "messages", "dsn", "INTEGER NOT NULL DEFAULT 1")?;
        // and before the spool: their messages keep their bytes in `content`
        add_column(&conn, "messages", "spool", "TEXT")?;
        add_column(&conn, "messages", "spool_offset", "INTEGER")?;
        add_column(&conn, "messages", "spool_len", "INTEGER")?;
        // and before batches had owners: theirs are the command line's
        add_column(&conn, "batches", "owner", "TEXT")?;
        // and inboxes made before retention: nothing of theirs has left the operator
        add_column(&conn, "inbox", "left_ms", "INTEGER")?;
        add_column(&conn, "inbox", "left_how", "TEXT")?;
        add_column(&conn, "inbox", "pushed_ms", "INTEGER")?;
        Ok((conn, mode))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        blocking(move || {
            let mut guard = conn.lock().map_err(|_| Error::Store {
                reason: "connection lock poisoned".into(),
            })?;
            f(&mut guard)
        })
        .await
    }
}

/// An owner is a batch's: a message outside any batch has none.
pub(crate) fn check_owner_has_batch(batch: Option<&str>, owner: Option<&str>) -> Result<()> {
    if batch.is_none() && owner.is_some() {
        return Err(Error::invalid("owner", "an owned message needs a batch"));
    }
    Ok(())
}

/// Refuses items for `batch` when it exists and belongs to someone other than `owner`.
fn check_batch_owner(conn: &Connection, batch: &str, owner: Option<&str>) -> Result<()> {
    let stored: Option<Option<String>> = conn
        .query_row("SELECT owner FROM batches WHERE id = ?1", [batch], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(stored) if stored.as_deref() != owner => Err(Error::BatchOwner {
            batch: batch.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Runs `f` on a blocking thread: the connection's work and the spool's file I/O.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store {
            reason: format!("store thread: {e}"),
        })?
}

/// Adds `column` to `table` when an outbox made before it lacks it.
fn add_column(
    conn: &Connection,
    table: &str,
    column: &str,
    definition: &str,
) -> rusqlite::Result<()> {
    let has = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            [table, column],
            |r| r.get(0),
        )
    };
    if !has(conn)?
        && let Err(e) =
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))
        // another process opening the same file may have added it first
        && !has(conn)?
    {
        return Err(e);
    }
    Ok(())
}

fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn counts_from(rows: Vec<(String, i64)>) -> Result<Counts> {
    let mut c = Counts::default();
    for (state, n) in rows {
        c.add(State::parse(&state)?, u64::try_from(n).unwrap_or(0));
    }
    Ok(c)
}

const STATUS_COLUMNS: &str = "m.id, m.batch, m.label, m.idempotency_key, m.sender, m.message_id, \
     m.created_ms, p.reason, r.address, r.state, r.attempts, r.due_ms, r.reason, r.reply, r.updated_ms, \
     b.owner";

fn status_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StatusRow> {
    Ok(StatusRow {
        message: MessageStatus {
            id: row.get(0)?,
            batch: row.get(1)?,
            label: row.get(2)?,
            idempotency_key: row.get(3)?,
            sender: parsed(row, 4, |s| stored_address("messages.sender", s))?,
            message_id: row.get(5)?,
            created_ms: row.get(6)?,
            paused: row.get(7)?,
            owner: row.get(15)?,
            recipients: Vec::new(),
        },
        recipient: recipient_status(
            parsed(row, 8, |s| stored_address("recipients.address", s))?,
            parsed(row, 9, State::parse)?,
            row.get(10)?,
            row.get(11)?,
            row.get(12)?,
            row.get(13)?,
            row.get(14)?,
        ),
    })
}

/// A text column read through `parse`: a value it refuses fails the query with its error (rows are
/// outside input).
fn parsed<T>(
    row: &rusqlite::Row<'_>,
    column: usize,
    parse: impl FnOnce(&str) -> Result<T>,
) -> rusqlite::Result<T> {
    let raw: String = row.get(column)?;
    parse(&raw).map_err(|e| {
        let reason = match e {
            Error::Store { reason } => reason,
            other => other.to_string(),
        };
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            reason.into(),
        )
    })
}

/// Acceptances of at most this many bytes keep them in their rows rather than in the spool (see
/// `enqueue`).
const INLINE_BYTES: usize = 256 << 10;

impl SqliteStore {
    /// Writes the bytes of the `items` not accepted before to the spool, without holding the connection
    /// the workers need; answers the items and where each one's bytes are (none: its key is known, the
    /// transaction that follows finds it). One short transaction then points the rows at them.
    async fn spool_fresh(
        &self,
        items: Vec<NewMessage>,
        batch: Option<String>,
        owner: Option<String>,
    ) -> Result<(Vec<NewMessage>, Vec<Option<Place>>)> {
        let keys: Vec<String> = items.iter().map(|i| i.idempotency_key.clone()).collect();
        let known: Vec<bool> = self
            .run(move |conn| {
                // another owner's batch: refused before any byte is spooled (checked again below)
                if let Some(b) = &batch {
                    check_batch_owner(conn, b, owner.as_deref())?;
                }
                let mut existing =
                    conn.prepare_cached("SELECT 1 FROM messages WHERE idempotency_key = ?1")?;
                let known = keys
                    .iter()
                    .map(|k| existing.exists([k]))
                    .collect::<rusqlite::Result<_>>()?;
                Ok(known)
            })
            .await?;
        let spool = self.spool.clone();
        let (items, known, places) = blocking(move || {
            let fresh = items
                .iter()
                .zip(&known)
                .filter(|(_, known)| !**known)
                .map(|(item, _)| item.content.as_slice());
            let places = if known.iter().all(|k| *k) {
                Vec::new()
            } else {
                spool.write(fresh)?
            };
            Ok((items, known, places))
        })
        .await?;
        let mut places = places.into_iter();
        let placed = known
            .iter()
            .map(|known| if *known { None } else { places.next() })
            .collect();
        Ok((items, placed))
    }
}

#[async_trait::async_trait]
impl crate::Store for SqliteStore {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn hold_worker_name(&self, name: &str) -> Result<Option<crate::WorkerNameHold>> {
        // An OS file lock (flock) on a file per name beside the database: the kernel frees it when its
        // process ends, SIGKILL included, so a dead holder never blocks the name, and no clock or
        // heartbeat is involved. The files stay (removing one would race with a process locking it).
        let dir = self.path.with_extension("workers");
        let file = dir.join(format!(
            "{}.lock",
            &mss_types::hex(&sha2::Sha256::digest(name.as_bytes()))[..32]
        ));
        blocking(move || {
            let unavailable = |e: std::io::Error| Error::Unavailable {
                reason: format!("{}: {e}", file.display()),
            };
            std::fs::create_dir_all(&dir).map_err(unavailable)?;
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&file)
                .map_err(unavailable)?;
            match lock.try_lock() {
                Ok(()) => Ok(Some(crate::WorkerNameHold::new(lock, None))),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(unavailable(e)),
            }
        })
        .await
    }

    async fn enqueue_logged(
        &self,
        batch: Option<&str>,
        owner: Option<&str>,
        items: Vec<NewMessage>,
        log: Vec<crate::exchanges::NewExchange>,
    ) -> Result<Vec<Accepted>> {
        check_owner_has_batch(batch, owner)?;
        for item in &items {
            item.validate()?;
        }
        let (batch, owner) = (batch.map(str::to_owned), owner.map(str::to_owned));
        // a small acceptance (one DPI message over MLLP, a request of a few letters) keeps its bytes in
        // its rows: one sync (the WAL's) and one trip to the connection, where the spool costs three
        // (segment, directory, WAL) and three trips; at this size the checkpoint's second write costs
        // less than the two syncs it saves
        let (items, placed) =
            if items.iter().map(|i| i.content.len()).sum::<usize>() <= INLINE_BYTES {
                let inline = vec![None; items.len()];
                (items, inline)
            } else {
                self.spool_fresh(items, batch.clone(), owner.clone())
                    .await?
            };
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let now = clock.now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(b) = &batch {
                tx.execute(
                    "INSERT INTO batches (id, created_ms, owner) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                    params![b, now, owner],
                )?;
                // the immediate transaction makes this check and the inserts below one step
                check_batch_owner(&tx, b, owner.as_deref())?;
            }
            let mut out = Vec::with_capacity(items.len());
            {
                let mut existing =
                    tx.prepare_cached("SELECT id FROM messages WHERE idempotency_key = ?1")?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO messages (batch, label, idempotency_key, sender, auth_ref, message_id, \
                     content, created_ms, dsn, spool, spool_offset, spool_len) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?;
                let mut rcpt = tx.prepare_cached(
                    "INSERT INTO recipients (message, address, state, due_ms, updated_ms) \
                     VALUES (?1, ?2, 'queued', ?3, ?3)",
                )?;
                for (item, place) in items.iter().zip(&placed) {
                    // accepted meanwhile by another caller (its bytes in our segment stay unreferenced)
                    if let Some(k) = existing
                        .query_row([&item.idempotency_key], |r| r.get::<_, i64>(0))
                        .optional()?
                    {
                        out.push(Accepted::Existing(k));
                        continue;
                    }
                    // a message not in the spool (its key was known a moment ago) keeps its bytes in the row
                    let (content, spool, offset, len) = match place {
                        Some(p) => (
                            &[][..],
                            Some(p.segment.as_str()),
                            Some(to_i64(p.offset)),
                            Some(to_i64(p.len)),
                        ),
                        None => (item.content.as_slice(), None, None, None),
                    };
                    insert.execute(params![
                        batch,
                        item.label,
                        item.idempotency_key,
                        item.sender.as_str(),
                        item.auth_ref,
                        item.message_id,
                        content,
                        now,
                        item.dsn,
                        spool,
                        offset,
                        len
                    ])?;
                    let key = tx.last_insert_rowid();
                    for r in &item.recipients {
                        rcpt.execute(params![key, r.as_str(), now])?;
                    }
                    out.push(Accepted::New(key));
                }
            }
            exchanges::insert(&tx, &crate::exchanges::linked(log, &out), now)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn lease(
        &self,
        worker: &str,
        sender: Option<&str>,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<LeasedMessage>> {
        let worker = worker.to_owned();
        let sender = sender.map(str::to_owned);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let clock = Arc::clone(&self.clock);
        let (mut leased, places) = self.run(move |conn| {
            let now = clock.now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let picked: Vec<(i64, MessageKey, String, i64)> = {
                let mut q = tx.prepare_cached(
                    "SELECT r.id, r.message, r.address, r.attempts FROM recipients r \
                     JOIN messages m ON m.id = r.message \
                     WHERE r.state IN ('queued', 'deferred', 'sending') AND r.due_ms <= ?1 \
                       AND (?2 IS NULL OR m.sender = ?2) \
                       AND m.sender NOT IN (SELECT sender FROM paused) \
                     ORDER BY r.due_ms, r.id LIMIT ?3",
                )?;
                q.query_map(params![now, sender, to_i64(max)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            let mut recipients = Vec::with_capacity(picked.len());
            let mut messages = HashMap::new();
            let mut places = Vec::new();
            {
                let mut take = tx.prepare_cached(
                    "UPDATE recipients SET state = 'sending', lease_owner = ?2, due_ms = ?3, \
                     attempts = attempts + 1, updated_ms = ?4 WHERE id = ?1",
                )?;
                let mut msg = tx.prepare_cached(
                    "SELECT sender, auth_ref, message_id, content, dsn, spool, spool_offset, spool_len \
                     FROM messages WHERE id = ?1",
                )?;
                for (id, key, address, attempts) in picked {
                    take.execute(params![id, worker, now.saturating_add(lease_ms), now])?;
                    if let std::collections::hash_map::Entry::Vacant(e) = messages.entry(key) {
                        let (m, spooled) = msg.query_row([key], |r| {
                            let spooled: Option<(String, i64, i64)> = match r.get(5)? {
                                Some(segment) => Some((segment, r.get(6)?, r.get(7)?)),
                                None => None,
                            };
                            Ok((
                                LeasedMessage {
                                    key,
                                    sender: parsed(r, 0, |s| stored_address("messages.sender", s))?,
                                    auth_ref: r.get(1)?,
                                    message_id: r.get(2)?,
                                    content: r.get(3)?,
                                    dsn: r.get(4)?,
                                    recipients: Vec::new(),
                                },
                                spooled,
                            ))
                        })?;
                        if let Some((segment, offset, len)) = spooled {
                            let (Ok(offset), Ok(len)) = (u64::try_from(offset), u64::try_from(len))
                            else {
                                return Err(Error::Store {
                                    reason: format!(
                                        "message {key}: spool place {offset}+{len} is negative"
                                    ),
                                });
                            };
                            places.push((
                                key,
                                Place {
                                    segment,
                                    offset,
                                    len,
                                },
                            ));
                        }
                        e.insert(m);
                    }
                    recipients.push((
                        key,
                        LeasedRecipient {
                            id,
                            address: stored_address("recipients.address", &address)?,
                            attempts: u32::try_from(attempts.saturating_add(1)).unwrap_or(u32::MAX),
                        },
                    ));
                }
            }
            tx.commit()?;
            recipients.sort_by_key(|(k, r)| (*k, r.id));
            Ok((group_leased(recipients, messages), places))
        })
        .await?;
        if places.is_empty() {
            return Ok(leased);
        }
        // the bytes are read without holding the connection
        let spool = self.spool.clone();
        blocking(move || {
            let mut bytes = HashMap::with_capacity(places.len());
            for (key, place) in places {
                bytes.insert(key, spool.read(&place)?);
            }
            for m in &mut leased {
                if let Some(b) = bytes.remove(&m.key) {
                    m.content = b;
                }
            }
            Ok(leased)
        })
        .await
    }

    // Group commit: the outcomes that workers record while a commit is under way are committed together by
    // the next one. Written here because it is a few lines over the connection this store already
    // serialises on.
    async fn record(&self, worker: &str, outcomes: &[(i64, Outcome)]) -> Result<u64> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| Error::Store {
                reason: "pending records lock poisoned".into(),
            })?
            .push(PendingRecord {
                worker: worker.to_owned(),
                outcomes: outcomes.to_vec(),
                done,
            });
        let pending = Arc::clone(&self.pending);
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let group: Vec<PendingRecord> = match pending.lock() {
                Ok(mut p) => std::mem::take(&mut *p),
                Err(_) => {
                    return Err(Error::Store {
                        reason: "pending records lock poisoned".into(),
                    });
                }
            };
            if group.is_empty() {
                // an earlier commit took ours
                return Ok(());
            }
            // an outcome need not wait for the disk, unlike an acceptance: a killed process loses no commit
            // either way (it is in the system's cache), and one lost to a power cut only sends its message
            // again, with the same Message-ID (at least once). The next durable commit syncs it with its own.
            let result = conn
                .execute_batch("PRAGMA synchronous=NORMAL")
                .map_err(Error::from)
                .and_then(|()| commit_records(conn, &group, clock.now_ms()));
            // back to FULL before anything else uses the connection (this closure holds it)
            let restored = conn.execute_batch("PRAGMA synchronous=FULL");
            for (i, p) in group.into_iter().enumerate() {
                let _ = p.done.send(match &result {
                    Ok(counts) => Ok(counts.get(i).copied().unwrap_or(0)),
                    Err(e) => Err(duplicate(e)),
                });
            }
            restored?;
            Ok(())
        })
        .await?;
        answer.await.map_err(|_| Error::Store {
            reason: "the commit of these outcomes was abandoned".into(),
        })?
    }

    async fn renew(&self, worker: &str, lease: Duration) -> Result<u64> {
        let worker = worker.to_owned();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let now = clock.now_ms();
            Ok(count(conn.execute(
                "UPDATE recipients SET due_ms = ?2 WHERE state = 'sending' AND lease_owner = ?1",
                params![worker, now.saturating_add(lease_ms)],
            )?))
        })
        .await
    }

    async fn release(&self, worker: &str) -> Result<u64> {
        let worker = worker.to_owned();
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let now = clock.now_ms();
            Ok(count(conn.execute(
                "UPDATE recipients SET state = 'queued', lease_owner = NULL, due_ms = ?2, \
                 attempts = MAX(attempts - 1, 0), updated_ms = ?2 \
                 WHERE state = 'sending' AND lease_owner = ?1",
                params![worker, now],
            )?))
        })
        .await
    }

    async fn pause(&self, sender: &str, reason: &str) -> Result<()> {
        let (sender, reason) = (sender.to_owned(), reason.to_owned());
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO paused (sender, reason, since_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sender) DO UPDATE SET reason = excluded.reason",
                params![sender, reason, clock.now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn resume(&self, sender: &str) -> Result<bool> {
        let sender = sender.to_owned();
        self.run(move |conn| {
            Ok(conn.execute("DELETE FROM paused WHERE sender = ?1", [sender])? > 0)
        })
        .await
    }

    async fn paused(&self) -> Result<Vec<Pause>> {
        self.run(|conn| {
            let mut q =
                conn.prepare_cached("SELECT sender, reason, since_ms FROM paused ORDER BY sender")?;
            let rows = q
                .query_map([], |r| {
                    Ok(Pause {
                        sender: r.get(0)?,
                        reason: r.get(1)?,
                        since_ms: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn counts(&self, sender: Option<&str>) -> Result<Counts> {
        let sender = sender.map(str::to_owned);
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT r.state, COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE ?1 IS NULL OR m.sender = ?1 GROUP BY r.state",
            )?;
            let rows = q
                .query_map([sender], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            counts_from(rows)
        })
        .await
    }

    async fn batch(&self, id: &str, offset: u64, limit: u64) -> Result<Option<BatchStatus>> {
        let id = id.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let Some((created_ms, owner)) = tx
                .query_row(
                    "SELECT created_ms, owner FROM batches WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let messages: i64 =
                tx.query_row("SELECT COUNT(*) FROM messages WHERE batch = ?1", [&id], |r| {
                    r.get(0)
                })?;
            let rows = {
                let mut q = tx.prepare_cached(
                    "SELECT r.state, COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message \
                     WHERE m.batch = ?1 GROUP BY r.state",
                )?;
                q.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let counts = counts_from(rows)?;
            let items = {
                let mut q = tx.prepare_cached(&format!(
                    "SELECT {STATUS_COLUMNS} FROM \
                     (SELECT * FROM messages WHERE batch = ?1 ORDER BY id LIMIT ?2 OFFSET ?3) m \
                     JOIN recipients r ON r.message = m.id \
                     LEFT JOIN paused p ON p.sender = m.sender \
                     LEFT JOIN batches b ON b.id = m.batch ORDER BY m.id, r.id"
                ))?;
                let rows = q
                    .query_map(
                        params![
                            &id,
                            i64::try_from(limit).unwrap_or(i64::MAX),
                            i64::try_from(offset).unwrap_or(i64::MAX)
                        ],
                        status_row,
                    )?
                    .collect::<rusqlite::Result<_>>()?;
                group_statuses(rows)
            };
            Ok(Some(BatchStatus {
                id,
                created_ms,
                owner,
                messages: u64::try_from(messages).unwrap_or(0),
                counts,
                items,
            }))
        })
        .await
    }

    async fn message(&self, key: MessageKey) -> Result<Option<MessageStatus>> {
        self.run(move |conn| {
            let mut q = conn.prepare_cached(&format!(
                "SELECT {STATUS_COLUMNS} FROM messages m JOIN recipients r ON r.message = m.id \
                 LEFT JOIN paused p ON p.sender = m.sender LEFT JOIN batches b ON b.id = m.batch \
                 WHERE m.id = ?1 ORDER BY r.id"
            ))?;
            let rows = q
                .query_map([key], status_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(group_statuses(rows).into_iter().next())
        })
        .await
    }

    async fn receipt(
        &self,
        message_id: &str,
        recipient: Option<&str>,
        state: State,
        detail: &str,
    ) -> Result<u64> {
        let from = receipt_sources(state)?;
        let (message_id, recipient, detail) = (
            message_id.to_owned(),
            recipient.map(str::to_ascii_lowercase),
            detail.to_owned(),
        );
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let sql = format!(
                "UPDATE recipients SET state = ?1, reason = ?2, lease_owner = NULL, updated_ms = ?3 \
                 WHERE message IN (SELECT id FROM messages WHERE message_id = ?4) \
                   AND (?5 IS NULL OR lower(address) = ?5) AND state IN ({from})"
            );
            Ok(count(conn.execute(
                &sql,
                params![state.as_str(), detail, clock.now_ms(), message_id, recipient],
            )?))
        })
        .await
    }

    async fn receipt_cursor(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        let mailbox = mailbox.to_owned();
        self.run(move |conn| {
            let row: Option<(i64, i64)> = conn
                .query_row(
                    "SELECT uid_validity, last_uid FROM receipt_cursors WHERE mailbox = ?1",
                    [mailbox],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(row.map(cursor_from))
        })
        .await
    }

    async fn set_receipt_cursor(&self, mailbox: &str, uid_validity: u32, uid: u32) -> Result<()> {
        let mailbox = mailbox.to_owned();
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO receipt_cursors (mailbox, uid_validity, last_uid, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (mailbox) DO UPDATE SET \
                 uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
                 updated_ms = excluded.updated_ms",
                params![mailbox, uid_validity, uid, clock.now_ms()],
            )?;
            Ok(())
        })
        .await
    }
}

/// Records several workers' outcomes in one transaction; returns how many rows each call updated.
fn commit_records(conn: &mut Connection, group: &[PendingRecord], now: i64) -> Result<Vec<u64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut counts = Vec::with_capacity(group.len());
    {
        let mut up = tx.prepare_cached(
            "UPDATE recipients SET state = ?3, due_ms = ?4, reason = ?5, reply = ?6, \
             lease_owner = NULL, updated_ms = ?7 \
             WHERE id = ?1 AND state = 'sending' AND lease_owner = ?2",
        )?;
        for p in group {
            let mut n = 0;
            for (id, outcome) in &p.outcomes {
                let (state, due, reason, reply) = outcome.columns();
                n += count(up.execute(params![
                    id,
                    p.worker,
                    state.as_str(),
                    due,
                    reason,
                    reply,
                    now
                ])?);
            }
            counts.push(n);
        }
    }
    tx.commit()?;
    Ok(counts)
}

/// A stored cursor (UIDs are 32-bit unsigned; the columns are wider).
pub(crate) fn cursor_from((validity, uid): (i64, i64)) -> (u32, u32) {
    (
        u32::try_from(validity).unwrap_or(0),
        u32::try_from(uid).unwrap_or(0),
    )
}

/// The states a receipt may move a recipient out of, as a SQL list (receipts only move forward).
pub(crate) fn receipt_sources(to: State) -> Result<String> {
    if to.receipt_rank() == 0 {
        return Err(Error::invalid(
            "state",
            format!("a receipt sets delivered, read or failed, not {to}"),
        ));
    }
    Ok(State::ALL
        .into_iter()
        .filter(|s| s.receipt_rank() < to.receipt_rank())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", "))
}
