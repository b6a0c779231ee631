//! The HL7 exchanges in the shared backend ([`crate::exchanges`]); the same queries as the embedded one.

use super::PostgresStore;
use crate::error::Result;
use crate::exchanges::WATCH_MS;
use crate::exchanges::{
    Answer, BusinessAck, BusinessAckKind, Candidate, Direction, Exchange, ExchangeState, Exchanges,
    Link, NewExchange, Report, Requester, answered_state,
};
use crate::sqlite::exchanges::{BUSINESS_ACK_COLUMNS, CANDIDATES, EXCHANGE_COLUMNS};

pub(crate) const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hl7_exchanges (
  id BIGSERIAL PRIMARY KEY,
  message BIGINT,
  inbox BIGINT,
  direction TEXT NOT NULL,
  kind TEXT NOT NULL,
  control_id TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_ms BIGINT,
  last_error TEXT,
  ack TEXT,
  error_code TEXT,
  error_label TEXT,
  answered_ms BIGINT,
  application TEXT,
  facility TEXT,
  processing TEXT,
  charset TEXT,
  asks_delivery INTEGER NOT NULL DEFAULT 0,
  asks_reading INTEGER NOT NULL DEFAULT 0,
  recipient TEXT,
  refers_to TEXT,
  reported INTEGER,
  reported_code TEXT,
  reported_label TEXT,
  event_ms BIGINT
);
CREATE INDEX IF NOT EXISTS hl7_exchanges_message ON hl7_exchanges(message);
CREATE INDEX IF NOT EXISTS hl7_exchanges_inbox ON hl7_exchanges(inbox);
CREATE INDEX IF NOT EXISTS hl7_exchanges_received ON hl7_exchanges(created_ms)
  WHERE direction = 'received';
CREATE INDEX IF NOT EXISTS hl7_exchanges_due ON hl7_exchanges(due_ms) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS hl7_exchanges_open ON hl7_exchanges(kind) WHERE state <> 'done';
CREATE UNIQUE INDEX IF NOT EXISTS hl7_business_acks ON hl7_exchanges(message, recipient, kind)
  WHERE recipient IS NOT NULL;
";

/// `?1`… as `$1`… (the embedded backend's queries, shared).
fn numbered(sql: &str) -> String {
    sql.replace('?', "$")
}

fn exchange_row(r: &tokio_postgres::Row) -> Result<Exchange> {
    let direction: String = r.try_get(1)?;
    let state: String = r.try_get(5)?;
    Ok(Exchange {
        id: r.try_get(0)?,
        direction: Direction::parse(&direction),
        kind: r.try_get(2)?,
        control_id: r.try_get(3)?,
        at_ms: r.try_get(4)?,
        state: ExchangeState::parse(&state),
        attempts: u32::try_from(r.try_get::<_, i32>(6)?).unwrap_or(0),
        due_ms: r.try_get(7)?,
        last_error: r.try_get(8)?,
        recipient: r.try_get(9)?,
        reported: r.try_get::<_, Option<i32>>(10)?.map(|v| v != 0),
        reported_code: r.try_get(11)?,
        ack: r.try_get(12)?,
        error_code: r.try_get(13)?,
        error_label: r.try_get(14)?,
        answered_ms: r.try_get(15)?,
    })
}

fn business_ack_row(r: &tokio_postgres::Row) -> Result<BusinessAck> {
    let kind: String = r.try_get(4)?;
    let code: Option<String> = r.try_get(6)?;
    let label: Option<String> = r.try_get(7)?;
    Ok(BusinessAck {
        id: r.try_get(0)?,
        message: r.try_get(1)?,
        control_id: r.try_get(2)?,
        recipient: r.try_get(3)?,
        report: Report {
            kind: BusinessAckKind::parse(&kind),
            ok: r.try_get::<_, i32>(5)? != 0,
            error: code.map(|c| (c, label.unwrap_or_default())),
        },
        refers_to: r.try_get(8)?,
        origin: Requester {
            application: r.try_get(9)?,
            facility: r.try_get(10)?,
            processing: r.try_get(11)?,
            charset: r.try_get::<_, Option<String>>(14)?.unwrap_or_default(),
            delivery: false,
            reading: false,
        },
        event_ms: r.try_get(12)?,
        attempts: u32::try_from(r.try_get::<_, i32>(13)?).unwrap_or(0),
    })
}

/// Logs answered exchanges in `tx`.
pub(crate) async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    exchanges: &[NewExchange],
    now: i64,
) -> Result<()> {
    if exchanges.is_empty() {
        return Ok(());
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO hl7_exchanges (message, inbox, direction, kind, control_id, created_ms, \
             state, ack, error_code, error_label, answered_ms, application, facility, processing, \
             asks_delivery, asks_reading, charset) \
             VALUES ($1, $2, $3, $4, $5, $6, 'done', $7, $8, $9, $6, $10, $11, $12, $13, $14, $15)",
        )
        .await?;
    for e in exchanges {
        let (message, inbox) = match e.link {
            Link::Message(k) => (Some(k), None),
            Link::Inbox(k) => (None, Some(k)),
        };
        let o = e.origin.as_ref();
        tx.execute(
            &insert,
            &[
                &message,
                &inbox,
                &e.direction.as_str(),
                &e.kind,
                &e.control_id,
                &now,
                &e.answer.ack,
                &e.answer.error_code,
                &e.answer.error_label,
                &o.map(|o| o.application.as_str()),
                &o.map(|o| o.facility.as_str()),
                &o.map(|o| o.processing.as_str()),
                &i32::from(o.is_some_and(|o| o.delivery)),
                &i32::from(o.is_some_and(|o| o.reading)),
                &o.map(|o| o.charset.as_str()),
            ],
        )
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Exchanges for PostgresStore {
    async fn log_exchanges(&self, exchanges: &[NewExchange]) -> Result<()> {
        let now = self.clock.now_ms();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        insert(&tx, exchanges, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn exchanges(&self, link: Link) -> Result<Vec<Exchange>> {
        let (column, key) = match link {
            Link::Message(k) => ("message", k),
            Link::Inbox(k) => ("inbox", k),
        };
        let c = self.pool.get().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {EXCHANGE_COLUMNS} FROM hl7_exchanges WHERE {column} = $1 ORDER BY id"
                ),
                &[&key],
            )
            .await?;
        rows.iter().map(exchange_row).collect()
    }

    async fn plan_business_acks(&self) -> Result<u64> {
        let now = self.clock.now_ms();
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // one planner at a time: two would both see a recipient without its ack (the unique index keeps
        // the second insert out anyway)
        tx.execute("LOCK TABLE hl7_exchanges IN SHARE ROW EXCLUSIVE MODE", &[])
            .await?;
        let rows = tx
            .query(&numbered(CANDIDATES), &[&(now - WATCH_MS)])
            .await?;
        let insert = tx
            .prepare(
                "INSERT INTO hl7_exchanges (message, direction, kind, control_id, created_ms, state, \
                 due_ms, application, facility, processing, recipient, refers_to, reported, \
                 reported_code, reported_label, event_ms, charset) \
                 VALUES ($1, 'sent', $2, '', $3, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 $13) ON CONFLICT DO NOTHING",
            )
            .await?;
        let mut queued = 0;
        for r in &rows {
            let c = Candidate {
                message: r.try_get(0)?,
                recipient: r.try_get(1)?,
                state: r.try_get(2)?,
                reason: r.try_get(3)?,
                event_ms: r.try_get(4)?,
                refers_to: r.try_get(5)?,
                origin: Requester {
                    application: r.try_get::<_, Option<String>>(6)?.unwrap_or_default(),
                    facility: r.try_get::<_, Option<String>>(7)?.unwrap_or_default(),
                    processing: r.try_get::<_, Option<String>>(8)?.unwrap_or_default(),
                    charset: r.try_get::<_, Option<String>>(11)?.unwrap_or_default(),
                    delivery: r.try_get::<_, i32>(9)? != 0,
                    reading: r.try_get::<_, i32>(10)? != 0,
                },
            };
            for report in c.reports()? {
                let (code, label) = report.error.clone().unzip();
                queued += tx
                    .execute(
                        &insert,
                        &[
                            &c.message,
                            &report.kind.message_type(),
                            &now,
                            &c.origin.application,
                            &c.origin.facility,
                            &c.origin.processing,
                            &c.recipient,
                            &c.refers_to,
                            &i32::from(report.ok),
                            &code,
                            &label,
                            &c.event_ms,
                            &c.origin.charset,
                        ],
                    )
                    .await?;
            }
        }
        tx.execute(
            "UPDATE hl7_exchanges SET control_id = 'MSSZ' || id \
             WHERE control_id = '' AND state = 'pending'",
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn due_business_acks(
        &self,
        now_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BusinessAck>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let c = self.pool.get().await?;
        let rows = c
            .query(
                &numbered(&format!(
                    "SELECT {BUSINESS_ACK_COLUMNS} FROM hl7_exchanges \
                     WHERE state = 'pending' AND (?1::BIGINT IS NULL OR due_ms <= ?1) \
                     ORDER BY id LIMIT ?2"
                )),
                &[&now_ms, &limit],
            )
            .await?;
        rows.iter().map(business_ack_row).collect()
    }

    async fn business_ack_answered(&self, id: i64, answer: &Answer, retry_ms: i64) -> Result<()> {
        let state = answered_state(&answer.ack);
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE hl7_exchanges SET state = $2, attempts = attempts + 1, ack = $3, \
             error_code = $4, error_label = $5, answered_ms = $6, last_error = NULL, \
             due_ms = CASE WHEN $2 = 'pending' THEN $7::BIGINT ELSE NULL END \
             WHERE id = $1 AND state = 'pending'",
            &[
                &id,
                &state.as_str(),
                &answer.ack,
                &answer.error_code,
                &answer.error_label,
                &self.clock.now_ms(),
                &retry_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn business_ack_unanswered(&self, id: i64, error: &str, retry_ms: i64) -> Result<()> {
        let c = self.pool.get().await?;
        c.execute(
            "UPDATE hl7_exchanges SET attempts = attempts + 1, last_error = $2, due_ms = $3 \
             WHERE id = $1 AND state = 'pending'",
            &[&id, &error, &retry_ms],
        )
        .await?;
        Ok(())
    }
}
