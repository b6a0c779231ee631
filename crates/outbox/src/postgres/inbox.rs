//! The inbox in the shared store: rows and bytes in PostgreSQL, committed together.

use super::PostgresStore;
use crate::error::{Error, Result};
use crate::inbox::{
    Details, Inbox, InboxEntry, InboxOutcome, InboxQuery, InboxStatus, Incoming, Kept, Leaving,
    PushMark, summary_from, tombstone,
};
use crate::sqlite::cursor_from;

/// The inbox's tables (created with the outbox's).
pub(crate) const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox_cursors (
  mailbox TEXT NOT NULL,
  folder TEXT NOT NULL,
  uid_validity BIGINT NOT NULL,
  last_uid BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL,
  PRIMARY KEY (mailbox, folder)
);
CREATE TABLE IF NOT EXISTS inbox (
  id BIGSERIAL PRIMARY KEY,
  mailbox TEXT NOT NULL,
  folder TEXT NOT NULL,
  uid_validity BIGINT NOT NULL,
  uid BIGINT NOT NULL,
  dedupe_key TEXT NOT NULL,
  message_id TEXT,
  sha256 TEXT NOT NULL,
  from_address TEXT,
  subject TEXT,
  received_ms BIGINT NOT NULL,
  size BIGINT NOT NULL,
  status TEXT NOT NULL DEFAULT 'new',
  outcome_code INTEGER,
  outcome_label TEXT,
  outcome_ms BIGINT,
  summary TEXT NOT NULL,
  raw BYTEA NOT NULL,
  left_ms BIGINT,
  left_how TEXT,
  pushed_ms BIGINT,
  UNIQUE (mailbox, folder, uid_validity, uid),
  UNIQUE (mailbox, dedupe_key)
);
-- inboxes made before retention: nothing of theirs has left the operator (looked up first: ALTER TABLE
-- locks the table even when the column is there)
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                 AND table_name = 'inbox' AND column_name = 'left_ms') THEN
    ALTER TABLE inbox ADD COLUMN left_ms BIGINT;
    ALTER TABLE inbox ADD COLUMN left_how TEXT;
  END IF;
END $$;
-- and before the webhook's time was kept per message
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                 AND table_name = 'inbox' AND column_name = 'pushed_ms') THEN
    ALTER TABLE inbox ADD COLUMN pushed_ms BIGINT;
  END IF;
END $$;
-- messages purged after their outcome: never taken in again (docs/mssante.md R5)
CREATE TABLE IF NOT EXISTS inbox_gone (
  mailbox TEXT NOT NULL,
  tombstone TEXT NOT NULL,
  gone_ms BIGINT NOT NULL,
  PRIMARY KEY (mailbox, tombstone)
);
CREATE TABLE IF NOT EXISTS inbox_push (
  mailbox TEXT PRIMARY KEY,
  last_id BIGINT NOT NULL,
  attempts INTEGER NOT NULL,
  failing_since_ms BIGINT,
  due_ms BIGINT NOT NULL,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS inbox_status ON inbox(status, id);
CREATE INDEX IF NOT EXISTS inbox_message_id ON inbox(message_id);
";

#[async_trait::async_trait]
impl Inbox for PostgresStore {
    async fn inbox_cursor(&self, mailbox: &str, folder: &str) -> Result<Option<(u32, u32)>> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "SELECT uid_validity, last_uid FROM inbox_cursors WHERE mailbox = $1 AND folder = $2",
                &[&mailbox, &folder],
            )
            .await?;
        match row {
            Some(r) => Ok(Some(cursor_from((r.try_get(0)?, r.try_get(1)?)))),
            None => Ok(None),
        }
    }

    async fn keep(
        &self,
        mailbox: &str,
        folder: &str,
        uid_validity: u32,
        up_to: u32,
        messages: Vec<Incoming>,
    ) -> Result<Vec<Kept>> {
        let now = self.clock.now_ms();
        let validity = i64::from(uid_validity);
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let mut out = Vec::with_capacity(messages.len());
        for m in &messages {
            let key = m.dedupe_key();
            let uid = i64::from(m.uid);
            // known messages are not sent again (a re-read after a crash or a new UIDVALIDITY)
            let moved = tx
                .query_opt(
                    "UPDATE inbox SET folder = $3, uid_validity = $4, uid = $5 \
                     WHERE mailbox = $1 AND dedupe_key = $2 RETURNING id",
                    &[&mailbox, &key, &folder, &validity, &uid],
                )
                .await?;
            if let Some(r) = moved {
                out.push(Kept::Known(r.try_get(0)?));
                continue;
            }
            let gone = tx
                .query_opt(
                    "SELECT 1 FROM inbox_gone WHERE mailbox = $1 AND tombstone = $2",
                    &[&mailbox, &tombstone(&key)],
                )
                .await?;
            if gone.is_some() {
                out.push(Kept::Gone);
                continue;
            }
            let size = i64::try_from(m.raw.len()).unwrap_or(i64::MAX);
            let inserted = tx
                .query_opt(
                    "INSERT INTO inbox (mailbox, folder, uid_validity, uid, dedupe_key, message_id, \
                     sha256, from_address, subject, received_ms, size, status, summary, raw) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'new', $12, $13) \
                     ON CONFLICT (mailbox, dedupe_key) DO NOTHING RETURNING id",
                    &[
                        &mailbox,
                        &folder,
                        &validity,
                        &uid,
                        &key,
                        &m.message_id,
                        &m.sha256(),
                        &m.from,
                        &m.subject,
                        &now,
                        &size,
                        &m.summary.to_string(),
                        &m.raw,
                    ],
                )
                .await?;
            match inserted {
                Some(r) => out.push(Kept::New(r.try_get(0)?)),
                // another reader of the same mailbox kept it meanwhile
                None => {
                    let r = tx
                        .query_one(
                            "SELECT id FROM inbox WHERE mailbox = $1 AND dedupe_key = $2",
                            &[&mailbox, &key],
                        )
                        .await?;
                    out.push(Kept::Known(r.try_get(0)?));
                }
            }
        }
        tx.execute(
            "INSERT INTO inbox_cursors (mailbox, folder, uid_validity, last_uid, updated_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (mailbox, folder) DO UPDATE SET \
             uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
             updated_ms = excluded.updated_ms",
            &[&mailbox, &folder, &validity, &i64::from(up_to), &now],
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn inbox_list(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>> {
        let c = self.pool.get().await?;
        let limit = if query.limit == 0 {
            i64::MAX
        } else {
            i64::try_from(query.limit).unwrap_or(i64::MAX)
        };
        let status = query.status.map(InboxStatus::as_str);
        let rows = c
            .query(
                "SELECT id, mailbox, folder, message_id, from_address, subject, received_ms, \
                 status, size, summary, uid_validity, uid, outcome_code, outcome_label, outcome_ms, \
                 left_ms, left_how, pushed_ms \
                 FROM inbox WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR mailbox = $2) \
                 AND id > $3 ORDER BY id LIMIT $4",
                &[&status, &query.mailbox, &query.after, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get(0)?;
                let status: String = r.try_get(7)?;
                let (uid_validity, uid) = cursor_from((r.try_get(10)?, r.try_get(11)?));
                let status = InboxStatus::parse(&status).map_err(|_| Error::Store {
                    reason: format!("inbox message {id}: unknown status {status:?}"),
                })?;
                let summary = summary_from(&r.try_get::<_, String>(9)?);
                let code: Option<i32> = r.try_get(12)?;
                Ok(InboxEntry {
                    id,
                    mailbox: r.try_get(1)?,
                    folder: r.try_get(2)?,
                    uid_validity,
                    uid,
                    message_id: r.try_get(3)?,
                    from: r.try_get(4)?,
                    subject: r.try_get(5)?,
                    received_at: r.try_get(6)?,
                    status,
                    size: u64::try_from(r.try_get::<_, i64>(8)?).unwrap_or(0),
                    outcome: InboxOutcome::from_columns(
                        status,
                        code.map(i64::from),
                        r.try_get(13)?,
                        r.try_get(14)?,
                    ),
                    left_operator_at: r.try_get(15)?,
                    disposition: r.try_get(16)?,
                    pushed_at: r.try_get(17)?,
                    details: Details::from_summary(&summary),
                    summary,
                })
            })
            .collect()
    }

    async fn inbox_outcome(
        &self,
        id: i64,
        status: InboxStatus,
        code: Option<u16>,
        label: Option<&str>,
    ) -> Result<Option<(InboxEntry, bool)>> {
        let now = self.clock.now_ms();
        let code = code.map(i32::from);
        // only a new message takes an outcome: the first one recorded stays
        let recorded = {
            let c = self.pool.get().await?;
            c.execute(
                "UPDATE inbox SET status = $2, outcome_code = $3, outcome_label = $4, \
                 outcome_ms = $5 WHERE id = $1 AND status = 'new'",
                &[&id, &status.as_str(), &code, &label, &now],
            )
            .await?
                == 1
        };
        Ok(self.inbox_get(id).await?.map(|e| (e, recorded)))
    }

    async fn inbox_replied(&self, message_ids: &[String]) -> Result<Option<crate::MessageKey>> {
        let c = self.pool.get().await?;
        for id in message_ids {
            let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
            let row = c
                .query_opt(
                    "SELECT id FROM messages WHERE message_id IN ($1, $2) ORDER BY id LIMIT 1",
                    &[&format!("<{bare}>"), &bare],
                )
                .await?;
            if let Some(r) = row {
                return Ok(Some(r.try_get(0)?));
            }
        }
        Ok(None)
    }

    async fn inbox_raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt("SELECT raw FROM inbox WHERE id = $1", &[&id])
            .await?;
        match row {
            Some(r) => Ok(Some(r.try_get(0)?)),
            None => Ok(None),
        }
    }

    async fn inbox_leaving(&self, mailbox: &str, folder: &str, limit: u64) -> Result<Vec<Leaving>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT id, uid_validity, uid FROM inbox WHERE mailbox = $1 AND folder = $2 \
                 AND status <> 'new' AND left_ms IS NULL ORDER BY id LIMIT $3",
                &[&mailbox, &folder, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let (uid_validity, uid) = cursor_from((r.try_get(1)?, r.try_get(2)?));
                Ok(Leaving {
                    id: r.try_get(0)?,
                    uid_validity,
                    uid,
                })
            })
            .collect()
    }

    async fn inbox_left(&self, ids: &[i64], how: &str) -> Result<()> {
        let now = self.clock.now_ms();
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE inbox SET left_ms = $2, left_how = $3 WHERE id = ANY($1) AND left_ms IS NULL",
            &[&ids, &now, &how],
        )
        .await?;
        Ok(())
    }

    async fn inbox_purge(
        &self,
        mailbox: &str,
        keep: std::time::Duration,
        only_left: bool,
    ) -> Result<Vec<i64>> {
        let before = self
            .clock
            .now_ms()
            .saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        let now = self.clock.now_ms();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // the bytes go with the row (PostgreSQL reclaims the space at its next VACUUM)
        let rows = tx
            .query(
                "DELETE FROM inbox WHERE mailbox = $1 AND status <> 'new' AND outcome_ms <= $2 \
                 AND (NOT $3 OR left_ms IS NOT NULL) RETURNING id, dedupe_key",
                &[&mailbox, &before, &only_left],
            )
            .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(r.try_get::<_, i64>(0)?);
            // its tombstone: the message is still at the operator with `keep`, and may be met again
            // in a renumbered folder
            tx.execute(
                "INSERT INTO inbox_gone (mailbox, tombstone, gone_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&mailbox, &tombstone(&r.try_get::<_, String>(1)?), &now],
            )
            .await?;
        }
        tx.commit().await?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn inbox_push_mark(&self, mailbox: &str) -> Result<PushMark> {
        let now_ms = self.clock.now_ms();
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "SELECT last_id, attempts, failing_since_ms, due_ms FROM inbox_push WHERE mailbox = $1",
                &[&mailbox],
            )
            .await?;
        Ok(match row {
            Some(r) => PushMark {
                last_id: r.try_get(0)?,
                attempts: u32::try_from(r.try_get::<_, i32>(1)?).unwrap_or(u32::MAX),
                failing_since_ms: r.try_get(2)?,
                due_ms: r.try_get(3)?,
                now_ms,
            },
            None => PushMark {
                now_ms,
                ..PushMark::default()
            },
        })
    }

    async fn inbox_pushed(&self, mailbox: &str, id: i64, delivered: bool) -> Result<()> {
        let now = self.clock.now_ms();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO inbox_push (mailbox, last_id, attempts, failing_since_ms, due_ms, reason) \
             VALUES ($1, $2, 0, NULL, 0, NULL) ON CONFLICT (mailbox) DO UPDATE SET \
             last_id = excluded.last_id, attempts = 0, failing_since_ms = NULL, due_ms = 0, reason = NULL",
            &[&mailbox, &id],
        )
        .await?;
        if delivered {
            tx.execute(
                "UPDATE inbox SET pushed_ms = $2 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn inbox_push_failed(
        &self,
        mailbox: &str,
        retry_in: std::time::Duration,
        reason: &str,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let due = now.saturating_add(i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX));
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO inbox_push (mailbox, last_id, attempts, failing_since_ms, due_ms, reason) \
             VALUES ($1, 0, 1, $2, $3, $4) ON CONFLICT (mailbox) DO UPDATE SET \
             attempts = inbox_push.attempts + 1, \
             failing_since_ms = COALESCE(inbox_push.failing_since_ms, $2), due_ms = $3, reason = $4",
            &[&mailbox, &now, &due, &reason],
        )
        .await?;
        Ok(())
    }

    async fn inbox_sweep(&self, _age: std::time::Duration) -> Result<u64> {
        // the bytes are in the rows, committed with them: nothing can be left over
        Ok(0)
    }
}
