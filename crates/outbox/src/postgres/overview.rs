//! The store seen whole, in the shared backend ([`crate::overview`]).

use super::{PostgresStore, u64_of};
use crate::error::Result;
use crate::exchanges::ExchangeState;
use crate::model::{MessageKey, State};
use crate::overview::{
    BUSINESS_ACK_LOADS, BatchSummary, BusinessAckLoad, InboxLoad, Overview, RateBucket,
    RecipientLine, SenderLoad, add_inbox_load, add_load, lowered, state_condition,
};

/// The overview's indexes, as in the embedded backend (`sqlite/overview.rs`).
pub(crate) const POSTGRES_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS recipients_updated ON recipients(updated_ms);
CREATE INDEX IF NOT EXISTS recipients_trouble ON recipients(updated_ms)
  WHERE state IN ('failed', 'deferred');
";

#[async_trait::async_trait]
impl Overview for PostgresStore {
    async fn sender_loads(&self) -> Result<Vec<SenderLoad>> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT m.sender, r.state, COUNT(*), MIN(m.created_ms) FROM recipients r \
                 JOIN messages m ON m.id = r.message GROUP BY m.sender, r.state ORDER BY m.sender",
                &[],
            )
            .await?;
        let mut loads = Vec::new();
        for r in &rows {
            let state: String = r.try_get(1)?;
            add_load(
                &mut loads,
                r.try_get(0)?,
                State::parse(&state)?,
                u64_of(r.try_get(2)?),
                r.try_get(3)?,
            );
        }
        Ok(loads)
    }

    async fn rates(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<RateBucket>> {
        let bucket_ms = bucket_ms.max(1);
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT m.sender, (r.updated_ms / $2) * $2 AS start, \
                   COUNT(*) FILTER (WHERE r.state IN ('sent', 'delivered', 'read')), \
                   COUNT(*) FILTER (WHERE r.state = 'failed') \
                 FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE r.updated_ms >= $1 AND r.state IN ('sent', 'delivered', 'read', 'failed') \
                 GROUP BY m.sender, start ORDER BY start, m.sender",
                &[&since_ms, &bucket_ms],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RateBucket {
                    sender: r.try_get(0)?,
                    start_ms: r.try_get(1)?,
                    accepted: u64_of(r.try_get(2)?),
                    failed: u64_of(r.try_get(3)?),
                })
            })
            .collect()
    }

    async fn recent_batches(&self, limit: u64) -> Result<Vec<BatchSummary>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut c = self.pool.get().await?;
        let tx = c.build_transaction().read_only(true).start().await?;
        let rows = tx
            .query(
                "SELECT b.id, b.created_ms, b.owner, \
                   (SELECT MIN(sender) FROM messages WHERE batch = b.id), \
                   (SELECT COUNT(*) FROM messages WHERE batch = b.id) \
                 FROM batches b ORDER BY b.created_ms DESC, b.id LIMIT $1",
                &[&limit],
            )
            .await?;
        let mut batches = Vec::with_capacity(rows.len());
        for r in &rows {
            batches.push(BatchSummary {
                id: r.try_get(0)?,
                created_ms: r.try_get(1)?,
                owner: r.try_get(2)?,
                sender: r.try_get(3)?,
                messages: u64_of(r.try_get(4)?),
                counts: Default::default(),
            });
        }
        let ids: Vec<&str> = batches.iter().map(|b| b.id.as_str()).collect();
        let counted = tx
            .query(
                "SELECT m.batch, r.state, COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE m.batch = ANY($1) GROUP BY m.batch, r.state",
                &[&ids],
            )
            .await?;
        for r in &counted {
            let (batch, state): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            if let Some(b) = batches.iter_mut().find(|b| b.id == batch) {
                b.counts.add(State::parse(&state)?, u64_of(r.try_get(2)?));
            }
        }
        tx.commit().await?;
        Ok(batches)
    }

    async fn recipients_in(&self, states: &[State], limit: u64) -> Result<Vec<RecipientLine>> {
        let condition = state_condition(states);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let c = self.pool.get().await?;
        let rows = c
            .query(
                &format!(
                "SELECT m.id, m.batch, m.label, m.sender, r.address, r.state, r.attempts, r.reason, \
                   r.due_ms, r.updated_ms \
                 FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE {condition} ORDER BY r.updated_ms DESC, r.id DESC LIMIT $1"
                ),
                &[&limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let state = State::parse(r.try_get(5)?)?;
                let attempts: i32 = r.try_get(6)?;
                let due: i64 = r.try_get(8)?;
                Ok(RecipientLine {
                    message: r.try_get(0)?,
                    batch: r.try_get(1)?,
                    label: r.try_get(2)?,
                    sender: r.try_get(3)?,
                    address: r.try_get(4)?,
                    state,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    reason: r.try_get(7)?,
                    retry_at_ms: (state == State::Deferred).then_some(due),
                    updated_ms: r.try_get(9)?,
                })
            })
            .collect()
    }

    async fn retry_now(&self, message: MessageKey, recipients: &[String]) -> Result<u64> {
        let only = lowered(recipients);
        let now = self.clock.now_ms();
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE recipients SET state = 'queued', due_ms = $2, lease_owner = NULL, \
                 reason = NULL, reply = NULL, updated_ms = $2 \
                 WHERE message = $1 AND state IN ('failed', 'deferred') \
                   AND (cardinality($3::text[]) = 0 OR lower(address) = ANY($3))",
                &[&message, &now, &only],
            )
            .await?;
        Ok(n)
    }

    async fn cancel_queued(&self, batch: &str, reason: &str) -> Result<Option<u64>> {
        let now = self.clock.now_ms();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        if tx
            .query_opt("SELECT 1 FROM batches WHERE id = $1", &[&batch])
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let n = tx
            .execute(
                "UPDATE recipients SET state = 'cancelled', reason = $2, lease_owner = NULL, updated_ms = $3 \
                 WHERE state IN ('queued', 'deferred') \
                   AND message IN (SELECT id FROM messages WHERE batch = $1)",
                &[&batch, &reason, &now],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn inbox_loads(&self) -> Result<Vec<InboxLoad>> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT mailbox, status, COUNT(*), MIN(received_ms) FROM inbox \
                 GROUP BY mailbox, status ORDER BY mailbox",
                &[],
            )
            .await?;
        let mut loads = Vec::new();
        for r in &rows {
            let status: String = r.try_get(1)?;
            add_inbox_load(
                &mut loads,
                r.try_get(0)?,
                &status,
                u64_of(r.try_get(2)?),
                r.try_get(3)?,
            );
        }
        Ok(loads)
    }

    async fn business_ack_loads(&self) -> Result<Vec<BusinessAckLoad>> {
        let c = self.pool.get().await?;
        let rows = c.query(BUSINESS_ACK_LOADS, &[]).await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get(2)?;
                Ok(BusinessAckLoad {
                    sender: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    state: ExchangeState::parse(&state),
                    count: u64_of(r.try_get(3)?),
                    oldest_ms: r.try_get(4)?,
                    latest_error: r.try_get(5)?,
                })
            })
            .collect()
    }
}
