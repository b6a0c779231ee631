//! The store seen whole, in the embedded backend ([`crate::overview`]).

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::error::Result;
use crate::exchanges::ExchangeState;
use crate::model::{MessageKey, State};
use crate::overview::{
    BUSINESS_ACK_LOADS, BatchSummary, BusinessAckLoad, InboxLoad, Overview, RateBucket,
    RecipientLine, SenderLoad, add_inbox_load, add_load, lowered, state_condition,
};

/// What keeps the overview's queries from reading the whole history: the latest changes and the last hour's
/// rate walk `updated_ms` backwards; the recipients in trouble (few, whatever the history) have their own
/// partial index, whose condition is the one `state_condition` writes for them.
pub(crate) const SQLITE_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS recipients_updated ON recipients(updated_ms);
CREATE INDEX IF NOT EXISTS recipients_trouble ON recipients(updated_ms)
  WHERE state IN ('failed', 'deferred');
";

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait::async_trait]
impl Overview for SqliteStore {
    async fn sender_loads(&self) -> Result<Vec<SenderLoad>> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT m.sender, r.state, COUNT(*), MIN(m.created_ms) FROM recipients r \
                 JOIN messages m ON m.id = r.message GROUP BY m.sender, r.state ORDER BY m.sender",
            )?;
            let rows: Vec<(String, String, i64, Option<i64>)> = q
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut loads = Vec::new();
            for (sender, state, n, oldest) in rows {
                add_load(&mut loads, sender, State::parse(&state)?, u64_of(n), oldest);
            }
            Ok(loads)
        })
        .await
    }

    async fn rates(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<RateBucket>> {
        let bucket_ms = bucket_ms.max(1);
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT m.sender, (r.updated_ms / ?2) * ?2 AS start, \
                   SUM(r.state IN ('sent', 'delivered', 'read')), SUM(r.state = 'failed') \
                 FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE r.updated_ms >= ?1 AND r.state IN ('sent', 'delivered', 'read', 'failed') \
                 GROUP BY m.sender, start ORDER BY start, m.sender",
            )?;
            let rows = q
                .query_map(params![since_ms, bucket_ms], |r| {
                    Ok(RateBucket {
                        sender: r.get(0)?,
                        start_ms: r.get(1)?,
                        accepted: u64_of(r.get(2)?),
                        failed: u64_of(r.get(3)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn recent_batches(&self, limit: u64) -> Result<Vec<BatchSummary>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let mut batches: Vec<BatchSummary> = {
                let mut q = tx.prepare_cached(
                    "SELECT b.id, b.created_ms, b.owner, \
                       (SELECT MIN(sender) FROM messages WHERE batch = b.id), \
                       (SELECT COUNT(*) FROM messages WHERE batch = b.id) \
                     FROM batches b ORDER BY b.created_ms DESC, b.id LIMIT ?1",
                )?;
                q.query_map([limit], |r| {
                    Ok(BatchSummary {
                        id: r.get(0)?,
                        created_ms: r.get(1)?,
                        owner: r.get(2)?,
                        sender: r.get(3)?,
                        messages: u64_of(r.get(4)?),
                        counts: Default::default(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            {
                let mut q = tx.prepare_cached(
                    "SELECT r.state, COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message \
                     WHERE m.batch = ?1 GROUP BY r.state",
                )?;
                for b in &mut batches {
                    let rows: Vec<(String, i64)> = q
                        .query_map([&b.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?;
                    for (state, n) in rows {
                        b.counts.add(State::parse(&state)?, u64_of(n));
                    }
                }
            }
            Ok(batches)
        })
        .await
    }

    async fn recipients_in(&self, states: &[State], limit: u64) -> Result<Vec<RecipientLine>> {
        let condition = state_condition(states);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let mut q = conn.prepare_cached(&format!(
                "SELECT m.id, m.batch, m.label, m.sender, r.address, r.state, r.attempts, r.reason, \
                   r.due_ms, r.updated_ms \
                 FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE {condition} ORDER BY r.updated_ms DESC, r.id DESC LIMIT ?1"
            ))?;
            let rows: Vec<(RecipientLine, String)> = q
                .query_map([limit], |r| {
                    let due: i64 = r.get(8)?;
                    Ok((
                        RecipientLine {
                            message: r.get(0)?,
                            batch: r.get(1)?,
                            label: r.get(2)?,
                            sender: r.get(3)?,
                            address: r.get(4)?,
                            state: State::Failed,
                            attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                            reason: r.get(7)?,
                            retry_at_ms: Some(due),
                            updated_ms: r.get(9)?,
                        },
                        r.get(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter()
                .map(|(mut t, state)| {
                    t.state = State::parse(&state)?;
                    t.retry_at_ms = t.retry_at_ms.filter(|_| t.state == State::Deferred);
                    Ok(t)
                })
                .collect()
        })
        .await
    }

    async fn retry_now(&self, message: MessageKey, recipients: &[String]) -> Result<u64> {
        let only = lowered(recipients);
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let now = clock.now_ms();
            let tx = conn.transaction()?;
            let mut n = 0;
            {
                let mut up = tx.prepare_cached(
                    "UPDATE recipients SET state = 'queued', due_ms = ?2, lease_owner = NULL, \
                     reason = NULL, reply = NULL, updated_ms = ?2 \
                     WHERE message = ?1 AND state IN ('failed', 'deferred') \
                       AND (?3 IS NULL OR lower(address) = ?3)",
                )?;
                if only.is_empty() {
                    n += up.execute(params![message, now, None::<String>])?;
                }
                for address in &only {
                    n += up.execute(params![message, now, address])?;
                }
            }
            tx.commit()?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn cancel_queued(&self, batch: &str, reason: &str) -> Result<Option<u64>> {
        let (batch, reason) = (batch.to_owned(), reason.to_owned());
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let known = tx
                .query_row("SELECT 1 FROM batches WHERE id = ?1", [&batch], |_| Ok(()))
                .optional()?
                .is_some();
            if !known {
                return Ok(None);
            }
            let n = tx.execute(
                "UPDATE recipients SET state = 'cancelled', reason = ?2, lease_owner = NULL, updated_ms = ?3 \
                 WHERE state IN ('queued', 'deferred') \
                   AND message IN (SELECT id FROM messages WHERE batch = ?1)",
                params![batch, reason, clock.now_ms()],
            )?;
            tx.commit()?;
            Ok(Some(u64::try_from(n).unwrap_or(u64::MAX)))
        })
        .await
    }

    async fn inbox_loads(&self) -> Result<Vec<InboxLoad>> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT mailbox, status, COUNT(*), MIN(received_ms) FROM inbox \
                 GROUP BY mailbox, status ORDER BY mailbox",
            )?;
            let rows: Vec<(String, String, i64, Option<i64>)> = q
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut loads = Vec::new();
            for (mailbox, status, n, oldest) in rows {
                add_inbox_load(&mut loads, mailbox, &status, u64_of(n), oldest);
            }
            Ok(loads)
        })
        .await
    }

    async fn business_ack_loads(&self) -> Result<Vec<BusinessAckLoad>> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(BUSINESS_ACK_LOADS)?;
            let rows = q
                .query_map([], |r| {
                    let state: String = r.get(2)?;
                    Ok(BusinessAckLoad {
                        sender: r.get(0)?,
                        kind: r.get(1)?,
                        state: ExchangeState::parse(&state),
                        count: u64_of(r.get(3)?),
                        oldest_ms: r.get(4)?,
                        latest_error: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }
}
