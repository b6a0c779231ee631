//! The shared store: PostgreSQL, for several workers on several machines. Leases are taken with
//! `FOR UPDATE SKIP LOCKED`, so two workers never take the same recipient while its lease runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use mss_types::MailAddress;
use tokio_postgres::NoTls;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::model::{
    Accepted, BatchStatus, Counts, LeasedMessage, LeasedRecipient, MessageKey, MessageStatus,
    NewMessage, Outcome, Pause, State, StatusRow, group_leased, group_statuses, recipient_status,
    stored_address,
};
use crate::sqlite::{check_owner_has_batch, cursor_from, receipt_sources};

mod exchanges;
mod inbox;
mod overview;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  created_ms BIGINT NOT NULL,
  owner TEXT
);
CREATE TABLE IF NOT EXISTS messages (
  id BIGSERIAL PRIMARY KEY,
  batch TEXT REFERENCES batches(id),
  label TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  sender TEXT NOT NULL,
  auth_ref TEXT NOT NULL,
  message_id TEXT NOT NULL,
  content BYTEA NOT NULL,
  created_ms BIGINT NOT NULL,
  dsn BOOLEAN NOT NULL DEFAULT TRUE
);
-- outboxes made before messages chose their DSN: what they hold was to be sent asking for it (looked up
-- first: ALTER TABLE locks the table against every worker even when the column is there)
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                 AND table_name = 'messages' AND column_name = 'dsn') THEN
    ALTER TABLE messages ADD COLUMN dsn BOOLEAN NOT NULL DEFAULT TRUE;
  END IF;
END $$;
-- and before batches had owners: theirs are the command line's
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                 AND table_name = 'batches' AND column_name = 'owner') THEN
    ALTER TABLE batches ADD COLUMN owner TEXT;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS messages_batch ON messages(batch, id);
CREATE INDEX IF NOT EXISTS messages_message_id ON messages(message_id);
CREATE INDEX IF NOT EXISTS messages_sender ON messages(sender);
CREATE TABLE IF NOT EXISTS recipients (
  id BIGSERIAL PRIMARY KEY,
  message BIGINT NOT NULL REFERENCES messages(id),
  address TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_ms BIGINT NOT NULL,
  lease_owner TEXT,
  reason TEXT,
  reply TEXT,
  updated_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients(due_ms)
  WHERE state IN ('queued', 'deferred', 'sending');
CREATE INDEX IF NOT EXISTS recipients_message ON recipients(message);
CREATE TABLE IF NOT EXISTS receipt_cursors (
  mailbox TEXT PRIMARY KEY,
  uid_validity BIGINT NOT NULL,
  last_uid BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS paused (
  sender TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  since_ms BIGINT NOT NULL
);
";

/// The shared outbox.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Pool,
    /// For the dedicated sessions that hold worker names.
    config: tokio_postgres::Config,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PostgresStore {
    // the connection string may hold a password: never printed
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects (`postgresql://user@host:port/db` or `host=... port=...`; without TLS: loopback or a
    /// trusted network) and creates the tables if needed. `connections` bounds the pool.
    pub async fn connect(url: &str, connections: usize) -> Result<Self> {
        let cfg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            // the parser's message names the bad part, never the password's value
            Error::invalid("postgres url", e.to_string())
        })?;
        let config = cfg.clone();
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Store {
                reason: format!("connection pool: {e}"),
            })?;
        let store = PostgresStore {
            pool,
            config,
            clock: Arc::new(SystemClock),
        };
        let mut c = store.pool.get().await?;
        let tx = c.transaction().await?;
        // two workers starting together must not race on CREATE TABLE IF NOT EXISTS
        tx.execute("SELECT pg_advisory_xact_lock(7316525)", &[])
            .await?;
        tx.batch_execute(SCHEMA).await?;
        tx.batch_execute(inbox::POSTGRES_SCHEMA).await?;
        tx.batch_execute(overview::POSTGRES_INDEXES).await?;
        tx.batch_execute(exchanges::POSTGRES_SCHEMA).await?;
        tx.commit().await?;
        drop(c);
        Ok(store)
    }
}

impl PostgresStore {
    /// The same store, reading time from `clock` (tests: a lease expires without waiting for it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// A worker name's session: the advisory lock lives as long as this connection. A session lock, rather
/// than a lease row with a heartbeat, because the server drops it by itself when the session ends: a
/// holder killed with SIGKILL closes its socket (the kernel does), so the name is free at once, with no
/// expiry to wait for nor clock to trust. Names are hashed to the lock's 32-bit key: two names sharing
/// a hash would wait for each other, never send twice.
struct NameSession {
    _client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for NameSession {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The advisory lock class of worker names (the two-key form: apart from the schema lock's one key).
const WORKER_NAME_LOCKS: i32 = 7_316_526;

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn counts_from(rows: &[tokio_postgres::Row]) -> Result<Counts> {
    let mut c = Counts::default();
    for r in rows {
        let state: String = r.try_get(0)?;
        c.add(State::parse(&state)?, u64_of(r.try_get(1)?));
    }
    Ok(c)
}

const STATUS_COLUMNS: &str = "m.id, m.batch, m.label, m.idempotency_key, m.sender, m.message_id, \
     m.created_ms, p.reason, r.address, r.state, r.attempts, r.due_ms, r.reason, r.reply, r.updated_ms, \
     b.owner";

fn statuses(rows: &[tokio_postgres::Row]) -> Result<Vec<MessageStatus>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(StatusRow {
            message: MessageStatus {
                id: row.try_get(0)?,
                batch: row.try_get(1)?,
                label: row.try_get(2)?,
                idempotency_key: row.try_get(3)?,
                sender: stored_address("messages.sender", row.try_get(4)?)?,
                message_id: row.try_get(5)?,
                created_ms: row.try_get(6)?,
                paused: row.try_get(7)?,
                owner: row.try_get(15)?,
                recipients: Vec::new(),
            },
            recipient: recipient_status(
                stored_address("recipients.address", row.try_get(8)?)?,
                State::parse(row.try_get(9)?)?,
                i64::from(row.try_get::<_, i32>(10)?),
                row.try_get(11)?,
                row.try_get(12)?,
                row.try_get(13)?,
                row.try_get(14)?,
            ),
        });
    }
    Ok(group_statuses(out))
}

#[async_trait::async_trait]
impl crate::Store for PostgresStore {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn hold_worker_name(&self, name: &str) -> Result<Option<crate::WorkerNameHold>> {
        let (client, connection) = self.config.connect(NoTls).await?;
        let held = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let alive = Arc::clone(&held);
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "worker name session ended");
            }
            alive.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        let session = NameSession {
            _client: client,
            connection,
        };
        let locked: bool = session
            ._client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&WORKER_NAME_LOCKS, &name],
            )
            .await?
            .get(0);
        Ok(locked.then(|| crate::WorkerNameHold::new(session, Some(held))))
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
        let now = self.clock.now_ms();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        if let Some(b) = batch {
            tx.execute(
                "INSERT INTO batches (id, created_ms, owner) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&b, &now, &owner],
            )
            .await?;
            // a batch created meanwhile by another transaction is committed by now (the insert waited
            // for it), and an owner never changes: this read is the batch's owner; leaving with the
            // error rolls everything back
            let stored: Option<String> = tx
                .query_one("SELECT owner FROM batches WHERE id = $1", &[&b])
                .await?
                .try_get(0)?;
            if stored.as_deref() != owner {
                return Err(Error::BatchOwner {
                    batch: b.to_owned(),
                });
            }
        }
        let insert = tx
            .prepare(
                "INSERT INTO messages (batch, label, idempotency_key, sender, auth_ref, message_id, \
                 content, created_ms, dsn) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            )
            .await?;
        let existing = tx
            .prepare("SELECT id FROM messages WHERE idempotency_key = $1")
            .await?;
        let rcpt = tx
            .prepare(
                "INSERT INTO recipients (message, address, state, due_ms, updated_ms) \
                 SELECT $1, a, 'queued', $3, $3 FROM unnest($2::text[]) WITH ORDINALITY AS t(a, n) \
                 ORDER BY n",
            )
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let inserted = tx
                .query_opt(
                    &insert,
                    &[
                        &batch,
                        &item.label,
                        &item.idempotency_key,
                        &item.sender.as_str(),
                        &item.auth_ref,
                        &item.message_id,
                        &item.content,
                        &now,
                        &item.dsn,
                    ],
                )
                .await?;
            match inserted {
                Some(row) => {
                    let key: i64 = row.try_get(0)?;
                    let addresses: Vec<&str> =
                        item.recipients.iter().map(MailAddress::as_str).collect();
                    tx.execute(&rcpt, &[&key, &addresses, &now]).await?;
                    out.push(Accepted::New(key));
                }
                None => {
                    let row = tx.query_one(&existing, &[&item.idempotency_key]).await?;
                    out.push(Accepted::Existing(row.try_get(0)?));
                }
            }
        }
        exchanges::insert(&tx, &crate::exchanges::linked(log, &out), now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn lease(
        &self,
        worker: &str,
        sender: Option<&str>,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<LeasedMessage>> {
        let now = self.clock.now_ms();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2));
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let rows = tx
            .query(
                "WITH picked AS ( \
                   SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message \
                   WHERE r.state IN ('queued', 'deferred', 'sending') AND r.due_ms <= $1 \
                     AND ($2::text IS NULL OR m.sender = $2) \
                     AND m.sender NOT IN (SELECT sender FROM paused) \
                   ORDER BY r.due_ms, r.id LIMIT $3 \
                   FOR UPDATE OF r SKIP LOCKED) \
                 UPDATE recipients r SET state = 'sending', lease_owner = $4, due_ms = $5, \
                   attempts = r.attempts + 1, updated_ms = $1 \
                 FROM picked WHERE r.id = picked.id \
                 RETURNING r.id, r.message, r.address, r.attempts",
                &[&now, &sender, &max, &worker, &until],
            )
            .await?;
        let mut recipients = Vec::with_capacity(rows.len());
        let mut keys = Vec::new();
        for r in &rows {
            let key: i64 = r.try_get(1)?;
            keys.push(key);
            recipients.push((
                key,
                LeasedRecipient {
                    id: r.try_get(0)?,
                    address: stored_address("recipients.address", r.try_get(2)?)?,
                    attempts: u32::try_from(r.try_get::<_, i32>(3)?).unwrap_or(0),
                },
            ));
        }
        keys.sort_unstable();
        keys.dedup();
        let mut messages = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            for r in tx
                .query(
                    "SELECT id, sender, auth_ref, message_id, content, dsn FROM messages \
                     WHERE id = ANY($1)",
                    &[&keys],
                )
                .await?
            {
                let key: i64 = r.try_get(0)?;
                messages.insert(
                    key,
                    LeasedMessage {
                        key,
                        sender: stored_address("messages.sender", r.try_get(1)?)?,
                        auth_ref: r.try_get(2)?,
                        message_id: r.try_get(3)?,
                        content: r.try_get(4)?,
                        dsn: r.try_get(5)?,
                        recipients: Vec::new(),
                    },
                );
            }
        }
        tx.commit().await?;
        recipients.sort_by_key(|(k, r)| (*k, r.id));
        Ok(group_leased(recipients, messages))
    }

    async fn record(&self, worker: &str, outcomes: &[(i64, Outcome)]) -> Result<u64> {
        let now = self.clock.now_ms();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // an outcome need not wait for the disk, unlike an acceptance: one lost to a server crash only sends
        // its message again, with the same Message-ID (at least once); a killed worker loses none
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await?;
        let up = tx
            .prepare(
                "UPDATE recipients SET state = $3, due_ms = $4, reason = $5, reply = $6, \
                 lease_owner = NULL, updated_ms = $7 \
                 WHERE id = $1 AND state = 'sending' AND lease_owner = $2",
            )
            .await?;
        let mut n = 0;
        for (id, outcome) in outcomes {
            let (state, due, reason, reply) = outcome.columns();
            n += tx
                .execute(
                    &up,
                    &[id, &worker, &state.as_str(), &due, &reason, &reply, &now],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn renew(&self, worker: &str, lease: Duration) -> Result<u64> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let c = self.pool.get().await?;
        Ok(c.execute(
            "UPDATE recipients SET due_ms = $2 WHERE state = 'sending' AND lease_owner = $1",
            &[&worker, &self.clock.now_ms().saturating_add(lease_ms)],
        )
        .await?)
    }

    async fn release(&self, worker: &str) -> Result<u64> {
        let c = self.pool.get().await?;
        Ok(c.execute(
            "UPDATE recipients SET state = 'queued', lease_owner = NULL, due_ms = $2, \
             attempts = GREATEST(attempts - 1, 0), updated_ms = $2 \
             WHERE state = 'sending' AND lease_owner = $1",
            &[&worker, &self.clock.now_ms()],
        )
        .await?)
    }

    async fn pause(&self, sender: &str, reason: &str) -> Result<()> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO paused (sender, reason, since_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (sender) DO UPDATE SET reason = excluded.reason",
            &[&sender, &reason, &self.clock.now_ms()],
        )
        .await?;
        Ok(())
    }

    async fn resume(&self, sender: &str) -> Result<bool> {
        let c = self.pool.get().await?;
        Ok(
            c.execute("DELETE FROM paused WHERE sender = $1", &[&sender])
                .await?
                > 0,
        )
    }

    async fn paused(&self) -> Result<Vec<Pause>> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT sender, reason, since_ms FROM paused ORDER BY sender",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Pause {
                    sender: r.try_get(0)?,
                    reason: r.try_get(1)?,
                    since_ms: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn counts(&self, sender: Option<&str>) -> Result<Counts> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT r.state, COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE $1::text IS NULL OR m.sender = $1 GROUP BY r.state",
                &[&sender],
            )
            .await?;
        counts_from(&rows)
    }

    async fn batch(&self, id: &str, offset: u64, limit: u64) -> Result<Option<BatchStatus>> {
        let mut c = self.pool.get().await?;
        // one snapshot for the counts and the page
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let Some(row) = tx
            .query_opt(
                "SELECT created_ms, owner FROM batches WHERE id = $1",
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let created_ms: i64 = row.try_get(0)?;
        let owner: Option<String> = row.try_get(1)?;
        let messages: i64 = tx
            .query_one("SELECT COUNT(*) FROM messages WHERE batch = $1", &[&id])
            .await?
            .try_get(0)?;
        let counts = counts_from(
            &tx.query(
                "SELECT r.state, COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE m.batch = $1 GROUP BY r.state",
                &[&id],
            )
            .await?,
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = tx
            .query(
                &format!(
                    "SELECT {STATUS_COLUMNS} FROM \
                     (SELECT * FROM messages WHERE batch = $1 ORDER BY id LIMIT $2 OFFSET $3) m \
                     JOIN recipients r ON r.message = m.id \
                     LEFT JOIN paused p ON p.sender = m.sender \
                     LEFT JOIN batches b ON b.id = m.batch ORDER BY m.id, r.id"
                ),
                &[&id, &limit, &offset],
            )
            .await?;
        let items = statuses(&rows)?;
        tx.commit().await?;
        Ok(Some(BatchStatus {
            id: id.to_owned(),
            created_ms,
            owner,
            messages: u64_of(messages),
            counts,
            items,
        }))
    }

    async fn message(&self, key: MessageKey) -> Result<Option<MessageStatus>> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {STATUS_COLUMNS} FROM messages m JOIN recipients r ON r.message = m.id \
                     LEFT JOIN paused p ON p.sender = m.sender \
                     LEFT JOIN batches b ON b.id = m.batch WHERE m.id = $1 ORDER BY r.id"
                ),
                &[&key],
            )
            .await?;
        Ok(statuses(&rows)?.into_iter().next())
    }

    async fn receipt(
        &self,
        message_id: &str,
        recipient: Option<&str>,
        state: State,
        detail: &str,
    ) -> Result<u64> {
        let from = receipt_sources(state)?;
        let recipient = recipient.map(str::to_ascii_lowercase);
        let c = self.pool.get().await?;
        Ok(c.execute(
            &format!(
                "UPDATE recipients SET state = $1, reason = $2, lease_owner = NULL, updated_ms = $3 \
                 WHERE message IN (SELECT id FROM messages WHERE message_id = $4) \
                   AND ($5::text IS NULL OR lower(address) = $5) AND state IN ({from})"
            ),
            &[&state.as_str(), &detail, &self.clock.now_ms(), &message_id, &recipient],
        )
        .await?)
    }

    async fn receipt_cursor(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "SELECT uid_validity, last_uid FROM receipt_cursors WHERE mailbox = $1",
                &[&mailbox],
            )
            .await?;
        match row {
            Some(r) => Ok(Some(cursor_from((r.try_get(0)?, r.try_get(1)?)))),
            None => Ok(None),
        }
    }

    async fn set_receipt_cursor(&self, mailbox: &str, uid_validity: u32, uid: u32) -> Result<()> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO receipt_cursors (mailbox, uid_validity, last_uid, updated_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (mailbox) DO UPDATE SET \
             uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
             updated_ms = excluded.updated_ms",
            &[
                &mailbox,
                &i64::from(uid_validity),
                &i64::from(uid),
                &self.clock.now_ms(),
            ],
        )
        .await?;
        Ok(())
    }
}
