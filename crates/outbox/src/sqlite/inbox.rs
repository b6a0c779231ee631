//! The inbox in the embedded store: rows in the SQLite file, bytes in segment files beside it.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use super::{blocking, cursor_from};
use crate::error::{Error, Result};
use crate::inbox::{
    Details, Inbox, InboxEntry, InboxOutcome, InboxQuery, InboxStatus, Incoming, Kept, Leaving,
    PushMark, summary_from, tombstone,
};
use crate::spool::{Place, Spool};

/// The inbox's tables (created with the outbox's).
pub(crate) const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox_cursors (
  mailbox TEXT NOT NULL,
  folder TEXT NOT NULL,
  uid_validity INTEGER NOT NULL,
  last_uid INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (mailbox, folder)
);
CREATE TABLE IF NOT EXISTS inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox TEXT NOT NULL,
  folder TEXT NOT NULL,
  uid_validity INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  dedupe_key TEXT NOT NULL,
  message_id TEXT,
  sha256 TEXT NOT NULL,
  from_address TEXT,
  subject TEXT,
  received_ms INTEGER NOT NULL,
  size INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'new',
  outcome_code INTEGER,
  outcome_label TEXT,
  outcome_ms INTEGER,
  summary TEXT NOT NULL,
  spool TEXT NOT NULL,
  spool_offset INTEGER NOT NULL,
  spool_len INTEGER NOT NULL,
  left_ms INTEGER,
  left_how TEXT,
  pushed_ms INTEGER,
  UNIQUE (mailbox, folder, uid_validity, uid),
  UNIQUE (mailbox, dedupe_key)
);
-- messages purged after their outcome: never taken in again (docs/mssante.md R5)
CREATE TABLE IF NOT EXISTS inbox_gone (
  mailbox TEXT NOT NULL,
  tombstone TEXT NOT NULL,
  gone_ms INTEGER NOT NULL,
  PRIMARY KEY (mailbox, tombstone)
);
CREATE TABLE IF NOT EXISTS inbox_push (
  mailbox TEXT PRIMARY KEY,
  last_id INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  failing_since_ms INTEGER,
  due_ms INTEGER NOT NULL,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS inbox_status ON inbox(status, id);
CREATE INDEX IF NOT EXISTS inbox_message_id ON inbox(message_id);
CREATE INDEX IF NOT EXISTS inbox_spool ON inbox(spool);
";

impl SqliteStore {
    /// Where the inbox's bytes are: `outbox.inbox/` beside `outbox.sqlite`.
    fn inbox_spool(&self) -> Spool {
        Spool::beside_named(self.path(), "inbox")
    }
}

#[async_trait::async_trait]
impl Inbox for SqliteStore {
    async fn inbox_cursor(&self, mailbox: &str, folder: &str) -> Result<Option<(u32, u32)>> {
        let (mailbox, folder) = (mailbox.to_owned(), folder.to_owned());
        self.run(move |conn| {
            let row: Option<(i64, i64)> = conn
                .query_row(
                    "SELECT uid_validity, last_uid FROM inbox_cursors \
                     WHERE mailbox = ?1 AND folder = ?2",
                    [mailbox, folder],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(row.map(cursor_from))
        })
        .await
    }

    async fn keep(
        &self,
        mailbox: &str,
        folder: &str,
        uid_validity: u32,
        up_to: u32,
        messages: Vec<Incoming>,
    ) -> Result<Vec<Kept>> {
        let (mailbox, folder) = (mailbox.to_owned(), folder.to_owned());
        let keys: Vec<String> = messages.iter().map(Incoming::dedupe_key).collect();
        // what is known already is not written again (a re-read after a crash or a new UIDVALIDITY)
        let lookup = (mailbox.clone(), keys.clone());
        let known: Vec<bool> = self
            .run(move |conn| {
                let mut q = conn
                    .prepare_cached("SELECT 1 FROM inbox WHERE mailbox = ?1 AND dedupe_key = ?2")?;
                let mut gone = conn.prepare_cached(
                    "SELECT 1 FROM inbox_gone WHERE mailbox = ?1 AND tombstone = ?2",
                )?;
                Ok(lookup
                    .1
                    .iter()
                    .map(|k| {
                        Ok(q.exists(params![lookup.0, k])?
                            || gone.exists(params![lookup.0, tombstone(k)])?)
                    })
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await?;
        // the bytes first, synced, without holding the connection; then the rows that point at them
        let spool = self.inbox_spool();
        let (messages, known, places) = blocking(move || {
            let fresh = messages
                .iter()
                .zip(&known)
                .filter(|(_, k)| !**k)
                .map(|(m, _)| m.raw.as_slice());
            let places = if known.iter().all(|k| *k) {
                Vec::new()
            } else {
                spool.write(fresh)?
            };
            Ok((messages, known, places))
        })
        .await?;
        let now = self.clock.now_ms();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(messages.len());
            {
                let mut find =
                    tx.prepare_cached("SELECT id FROM inbox WHERE mailbox = ?1 AND dedupe_key = ?2")?;
                let mut moved = tx.prepare_cached(
                    "UPDATE inbox SET folder = ?2, uid_validity = ?3, uid = ?4 WHERE id = ?1",
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO inbox (mailbox, folder, uid_validity, uid, dedupe_key, message_id, \
                     sha256, from_address, subject, received_ms, size, status, summary, spool, \
                     spool_offset, spool_len) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'new', ?12, ?13, ?14, ?15)",
                )?;
                let mut gone = tx.prepare_cached(
                    "SELECT 1 FROM inbox_gone WHERE mailbox = ?1 AND tombstone = ?2",
                )?;
                let mut places = places.into_iter();
                for ((m, key), was_known) in messages.iter().zip(&keys).zip(known) {
                    let place = if was_known { None } else { places.next() };
                    let existing: Option<i64> =
                        find.query_row(params![mailbox, key], |r| r.get(0)).optional()?;
                    match (existing, place) {
                        (None, _) if gone.exists(params![mailbox, tombstone(key)])? => {
                            out.push(Kept::Gone);
                        }
                        (Some(id), _) => {
                            moved.execute(params![id, folder, uid_validity, m.uid])?;
                            out.push(Kept::Known(id));
                        }
                        (None, Some(Place { segment, offset, len })) => {
                            insert.execute(params![
                                mailbox,
                                folder,
                                uid_validity,
                                m.uid,
                                key,
                                m.message_id,
                                m.sha256(),
                                m.from,
                                m.subject,
                                now,
                                m.raw.len() as i64,
                                m.summary.to_string(),
                                segment,
                                offset as i64,
                                len as i64,
                            ])?;
                            out.push(Kept::New(tx.last_insert_rowid()));
                        }
                        // known when looked up, gone since: never deleted while a reader runs
                        (None, None) => {
                            return Err(Error::Store {
                                reason: format!("inbox message {key} vanished while being kept"),
                            });
                        }
                    }
                }
            }
            tx.execute(
                "INSERT INTO inbox_cursors (mailbox, folder, uid_validity, last_uid, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (mailbox, folder) DO UPDATE SET \
                 uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
                 updated_ms = excluded.updated_ms",
                params![mailbox, folder, uid_validity, up_to, now],
            )?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn inbox_list(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>> {
        let query = query.clone();
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT id, mailbox, folder, message_id, from_address, subject, received_ms, \
                 status, size, summary, uid_validity, uid, outcome_code, outcome_label, outcome_ms, \
                 left_ms, left_how, pushed_ms \
                 FROM inbox WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR mailbox = ?2) AND id > ?3 \
                 ORDER BY id LIMIT ?4",
            )?;
            let limit = if query.limit == 0 {
                i64::MAX
            } else {
                i64::try_from(query.limit).unwrap_or(i64::MAX)
            };
            let rows = q.query_map(
                params![
                    query.status.map(InboxStatus::as_str),
                    query.mailbox,
                    query.after,
                    limit
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, i64>(8)?,
                        r.get::<_, String>(9)?,
                        cursor_from((r.get(10)?, r.get(11)?)),
                        (
                            r.get::<_, Option<i64>>(12)?,
                            r.get::<_, Option<String>>(13)?,
                            r.get::<_, Option<i64>>(14)?,
                        ),
                        (
                            r.get::<_, Option<i64>>(15)?,
                            r.get::<_, Option<String>>(16)?,
                            r.get::<_, Option<i64>>(17)?,
                        ),
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (
                    id,
                    mailbox,
                    folder,
                    message_id,
                    from,
                    subject,
                    received,
                    status,
                    size,
                    summary,
                    (uid_validity, uid),
                    (code, label, at),
                    (left_ms, left_how, pushed_ms),
                ) = row?;
                let status = InboxStatus::parse(&status).map_err(|_| Error::Store {
                    reason: format!("inbox message {id}: unknown status {status:?}"),
                })?;
                let summary = summary_from(&summary);
                out.push(InboxEntry {
                    id,
                    mailbox,
                    folder,
                    uid_validity,
                    uid,
                    message_id,
                    from,
                    subject,
                    received_at: received,
                    status,
                    size: u64::try_from(size).unwrap_or(0),
                    outcome: InboxOutcome::from_columns(status, code, label, at),
                    left_operator_at: left_ms,
                    disposition: left_how,
                    pushed_at: pushed_ms,
                    details: Details::from_summary(&summary),
                    summary,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn inbox_outcome(
        &self,
        id: i64,
        status: InboxStatus,
        code: Option<u16>,
        label: Option<&str>,
    ) -> Result<Option<(InboxEntry, bool)>> {
        let label = label.map(str::to_owned);
        let now = self.clock.now_ms();
        // only a new message takes an outcome: the first one recorded stays
        let recorded = self
            .run(move |conn| {
                Ok(conn.execute(
                    "UPDATE inbox SET status = ?2, outcome_code = ?3, outcome_label = ?4, \
                     outcome_ms = ?5 WHERE id = ?1 AND status = 'new'",
                    params![id, status.as_str(), code, label, now],
                )? == 1)
            })
            .await?;
        Ok(self.inbox_get(id).await?.map(|e| (e, recorded)))
    }

    async fn inbox_replied(&self, message_ids: &[String]) -> Result<Option<crate::MessageKey>> {
        let ids = message_ids.to_vec();
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT id FROM messages WHERE message_id IN (?1, ?2) ORDER BY id LIMIT 1",
            )?;
            for id in ids {
                let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
                let found: Option<i64> = q
                    .query_row(params![format!("<{bare}>"), bare], |r| r.get(0))
                    .optional()?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            Ok(None)
        })
        .await
    }

    async fn inbox_raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let place: Option<Place> = self
            .run(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT spool, spool_offset, spool_len FROM inbox WHERE id = ?1",
                        [id],
                        |r| {
                            Ok(Place {
                                segment: r.get(0)?,
                                offset: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                                len: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                            })
                        },
                    )
                    .optional()?)
            })
            .await?;
        let Some(place) = place else { return Ok(None) };
        let spool = self.inbox_spool();
        blocking(move || spool.read(&place).map(Some)).await
    }

    async fn inbox_leaving(&self, mailbox: &str, folder: &str, limit: u64) -> Result<Vec<Leaving>> {
        let (mailbox, folder) = (mailbox.to_owned(), folder.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT id, uid_validity, uid FROM inbox WHERE mailbox = ?1 AND folder = ?2 \
                 AND status <> 'new' AND left_ms IS NULL ORDER BY id LIMIT ?3",
            )?;
            let rows = q.query_map(params![mailbox, folder, limit], |r| {
                let (uid_validity, uid) = cursor_from((r.get(1)?, r.get(2)?));
                Ok(Leaving {
                    id: r.get(0)?,
                    uid_validity,
                    uid,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn inbox_left(&self, ids: &[i64], how: &str) -> Result<()> {
        let (ids, how) = (ids.to_vec(), how.to_owned());
        let now = self.clock.now_ms();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut q = tx.prepare_cached(
                    "UPDATE inbox SET left_ms = ?2, left_how = ?3 WHERE id = ?1 AND left_ms IS NULL",
                )?;
                for id in ids {
                    q.execute(params![id, now, how])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn inbox_purge(
        &self,
        mailbox: &str,
        keep: std::time::Duration,
        only_left: bool,
    ) -> Result<Vec<i64>> {
        let mailbox = mailbox.to_owned();
        let before = self
            .clock
            .now_ms()
            .saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        let lookup = mailbox.clone();
        let due: Vec<(i64, Place, String)> = self
            .run(move |conn| {
                let mut q = conn.prepare_cached(
                    "SELECT id, spool, spool_offset, spool_len, dedupe_key FROM inbox WHERE mailbox = ?1 \
                     AND status <> 'new' AND outcome_ms <= ?2 AND (?3 = 0 OR left_ms IS NOT NULL) \
                     ORDER BY id",
                )?;
                let rows = q.query_map(params![lookup, before, only_left], |r| {
                    Ok((
                        r.get(0)?,
                        Place {
                            segment: r.get(1)?,
                            offset: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                            len: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                        },
                        tombstone(&r.get::<_, String>(4)?),
                    ))
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let mut ids = Vec::with_capacity(due.len());
        let mut places = Vec::with_capacity(due.len());
        let mut tombstones = Vec::with_capacity(due.len());
        for (id, place, t) in due {
            ids.push(id);
            places.push(place);
            tombstones.push(t);
        }
        // the bytes first: zeroed where they lie (a segment may hold messages still kept), then the rows; a
        // purge killed in between leaves rows over zeros, purged again next time
        let spool = self.inbox_spool();
        let places = {
            let spool = spool.clone();
            blocking(move || spool.erase(&places).map(|()| places)).await?
        };
        let purged = ids.clone();
        let unused: Vec<String> = self
            .run(move |conn| {
                // the rows' text (subject, sender, summary) is zeroed in the file's pages, not just unlinked
                conn.execute_batch("PRAGMA secure_delete = ON")?;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                {
                    let mut delete = tx.prepare_cached("DELETE FROM inbox WHERE id = ?1")?;
                    for id in &purged {
                        delete.execute([id])?;
                    }
                    // its tombstone: the message is still at the operator with `keep`, and may be met
                    // again in a renumbered folder
                    let mut bury = tx.prepare_cached(
                        "INSERT OR IGNORE INTO inbox_gone (mailbox, tombstone, gone_ms) \
                         VALUES (?1, ?2, ?3)",
                    )?;
                    for t in &tombstones {
                        bury.execute(params![mailbox, t, now])?;
                    }
                }
                let mut segments: Vec<String> = places.into_iter().map(|p| p.segment).collect();
                segments.sort();
                segments.dedup();
                let mut unused = Vec::new();
                {
                    let mut used =
                        tx.prepare_cached("SELECT 1 FROM inbox WHERE spool = ?1 LIMIT 1")?;
                    for s in segments {
                        if !used.exists([&s])? {
                            unused.push(s);
                        }
                    }
                }
                tx.commit()?;
                conn.execute_batch("PRAGMA secure_delete = OFF")?;
                // and the write-ahead log, which still holds the pages as they were, is emptied (best
                // effort: a reader in the middle of a transaction keeps it until the next purge)
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                Ok(unused)
            })
            .await?;
        // segments no row points at any more go whole
        blocking(move || spool.remove(&unused)).await?;
        Ok(ids)
    }

    async fn inbox_push_mark(&self, mailbox: &str) -> Result<PushMark> {
        let mailbox = mailbox.to_owned();
        let now_ms = self.clock.now_ms();
        self.run(move |conn| {
            let row = conn
                .query_row(
                    "SELECT last_id, attempts, failing_since_ms, due_ms FROM inbox_push \
                     WHERE mailbox = ?1",
                    [mailbox],
                    |r| {
                        Ok(PushMark {
                            last_id: r.get(0)?,
                            attempts: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(u32::MAX),
                            failing_since_ms: r.get(2)?,
                            due_ms: r.get(3)?,
                            now_ms,
                        })
                    },
                )
                .optional()?;
            Ok(row.unwrap_or(PushMark {
                now_ms,
                ..PushMark::default()
            }))
        })
        .await
    }

    async fn inbox_pushed(&self, mailbox: &str, id: i64, delivered: bool) -> Result<()> {
        let mailbox = mailbox.to_owned();
        let now = self.clock.now_ms();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO inbox_push (mailbox, last_id, attempts, failing_since_ms, due_ms, reason) \
                 VALUES (?1, ?2, 0, NULL, 0, NULL) ON CONFLICT (mailbox) DO UPDATE SET \
                 last_id = excluded.last_id, attempts = 0, failing_since_ms = NULL, due_ms = 0, \
                 reason = NULL",
                params![mailbox, id],
            )?;
            if delivered {
                tx.execute(
                    "UPDATE inbox SET pushed_ms = ?2 WHERE id = ?1",
                    params![id, now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn inbox_push_failed(
        &self,
        mailbox: &str,
        retry_in: std::time::Duration,
        reason: &str,
    ) -> Result<()> {
        let (mailbox, reason) = (mailbox.to_owned(), reason.to_owned());
        let now = self.clock.now_ms();
        let due = now.saturating_add(i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX));
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO inbox_push (mailbox, last_id, attempts, failing_since_ms, due_ms, reason) \
                 VALUES (?1, 0, 1, ?2, ?3, ?4) ON CONFLICT (mailbox) DO UPDATE SET \
                 attempts = inbox_push.attempts + 1, \
                 failing_since_ms = COALESCE(inbox_push.failing_since_ms, ?2), due_ms = ?3, reason = ?4",
                params![mailbox, now, due, reason],
            )?;
            Ok(())
        })
        .await
    }

    async fn inbox_sweep(&self, age: std::time::Duration) -> Result<u64> {
        let spool = self.inbox_spool();
        let old = {
            let spool = spool.clone();
            blocking(move || spool.older_than(age)).await?
        };
        if old.is_empty() {
            return Ok(0);
        }
        let orphans: Vec<String> = self
            .run(move |conn| {
                let mut used =
                    conn.prepare_cached("SELECT 1 FROM inbox WHERE spool = ?1 LIMIT 1")?;
                let mut out = Vec::new();
                for name in old {
                    if !used.exists([&name])? {
                        out.push(name);
                    }
                }
                Ok(out)
            })
            .await?;
        blocking(move || spool.remove(&orphans)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::inbox::Arrival;

    #[tokio::test]
    async fn only_old_bytes_no_row_points_at_are_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("outbox.sqlite")).expect("store");
        let Arrival::Message(m) = Arrival::read(1, b"Message-ID: <a@x>\r\n\r\nhi\r\n".to_vec())
        else {
            panic!("a message")
        };
        store
            .keep("b@x.fr", "INBOX", 1, 1, vec![m])
            .await
            .expect("keep");
        let spool_dir = dir.path().join("outbox.inbox");
        let kept: Vec<_> = std::fs::read_dir(&spool_dir)
            .expect("spool")
            .map(|e| e.expect("entry").file_name())
            .collect();
        // a segment a killed reader left long ago, and one an acceptance is writing now
        std::fs::write(spool_dir.join("0000000000001-1-0.seg"), b"orphan").expect("orphan");
        let fresh = store
            .inbox_spool()
            .write([b"in flight".as_slice()])
            .expect("fresh");
        assert_eq!(
            store
                .inbox_sweep(Duration::from_secs(600))
                .await
                .expect("sweep"),
            1
        );
        let mut left: Vec<_> = std::fs::read_dir(&spool_dir)
            .expect("spool")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want: Vec<String> = kept
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .chain([fresh[0].segment.clone()])
            .collect();
        want.sort();
        assert_eq!(
            left, want,
            "the kept message's bytes and the fresh segment stay"
        );
        // with no age, the fresh unreferenced one goes too (once its millisecond is past), never the kept
        // message's
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.inbox_sweep(Duration::ZERO).await.expect("sweep"), 1);
        assert_eq!(
            store.inbox_raw(1).await.expect("raw").as_deref(),
            Some(&b"Message-ID: <a@x>\r\n\r\nhi\r\n"[..])
        );
    }
}
