//! The HL7 exchanges in the embedded backend ([`crate::exchanges`]).

use std::sync::Arc;

use rusqlite::{TransactionBehavior, params};

use super::SqliteStore;
use crate::error::Result;
use crate::exchanges::{
    Answer, BusinessAck, BusinessAckKind, Candidate, Direction, Exchange, ExchangeState, Exchanges,
    Link, NewExchange, Report, Requester, WATCH_MS, answered_state,
};

pub(crate) const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hl7_exchanges (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message INTEGER,
  inbox INTEGER,
  direction TEXT NOT NULL,
  kind TEXT NOT NULL,
  control_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_ms INTEGER,
  last_error TEXT,
  ack TEXT,
  error_code TEXT,
  error_label TEXT,
  answered_ms INTEGER,
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
  event_ms INTEGER
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

/// The columns [`exchange_row`] reads.
pub(crate) const EXCHANGE_COLUMNS: &str = "id, direction, kind, control_id, created_ms, state, \
     attempts, due_ms, last_error, recipient, reported, reported_code, ack, error_code, error_label, \
     answered_ms";

/// Recipients moved on by receipts, of messages whose DPI asked business acks not queued yet, received
/// since `?1` (the first received message of each outbox message is its origin; a `failed` recipient has
/// a reading ack only when an MDN failed it).
pub(crate) const CANDIDATES: &str = "SELECT o.message, r.address, r.state, r.reason, r.updated_ms, \
       o.control_id, o.application, o.facility, o.processing, o.asks_delivery, o.asks_reading, \
       o.charset \
     FROM hl7_exchanges o JOIN recipients r ON r.message = o.message \
     WHERE o.direction = 'received' AND o.created_ms >= ?1 AND o.message IS NOT NULL \
       AND (o.asks_delivery = 1 OR o.asks_reading = 1) \
       AND o.id = (SELECT MIN(f.id) FROM hl7_exchanges f \
                   WHERE f.message = o.message AND f.direction = 'received') \
       AND r.state IN ('delivered', 'read', 'failed') \
       AND ((o.asks_delivery = 1 AND NOT EXISTS (SELECT 1 FROM hl7_exchanges z \
               WHERE z.message = o.message AND z.recipient = r.address AND z.kind = 'ZAM^Z02')) \
         OR (o.asks_reading = 1 AND (r.state = 'read' OR r.reason LIKE 'MDN %') \
             AND NOT EXISTS (SELECT 1 FROM hl7_exchanges z \
               WHERE z.message = o.message AND z.recipient = r.address AND z.kind = 'ZAM^Z03'))) \
     ORDER BY o.message, r.id";

/// The columns [`business_ack_row`] reads.
pub(crate) const BUSINESS_ACK_COLUMNS: &str = "id, message, control_id, recipient, kind, reported, \
     reported_code, reported_label, refers_to, application, facility, processing, event_ms, attempts, \
     charset";

fn exchange_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Exchange> {
    let direction: String = r.get(1)?;
    let state: String = r.get(5)?;
    Ok(Exchange {
        id: r.get(0)?,
        direction: Direction::parse(&direction),
        kind: r.get(2)?,
        control_id: r.get(3)?,
        at_ms: r.get(4)?,
        state: ExchangeState::parse(&state),
        attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        due_ms: r.get(7)?,
        last_error: r.get(8)?,
        recipient: r.get(9)?,
        reported: r.get::<_, Option<i64>>(10)?.map(|v| v != 0),
        reported_code: r.get(11)?,
        ack: r.get(12)?,
        error_code: r.get(13)?,
        error_label: r.get(14)?,
        answered_ms: r.get(15)?,
    })
}

fn business_ack_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BusinessAck> {
    let kind: String = r.get(4)?;
    let code: Option<String> = r.get(6)?;
    let label: Option<String> = r.get(7)?;
    Ok(BusinessAck {
        id: r.get(0)?,
        message: r.get(1)?,
        control_id: r.get(2)?,
        recipient: r.get(3)?,
        report: Report {
            kind: BusinessAckKind::parse(&kind),
            ok: r.get::<_, i64>(5)? != 0,
            error: code.map(|c| (c, label.unwrap_or_default())),
        },
        refers_to: r.get(8)?,
        origin: Requester {
            application: r.get(9)?,
            facility: r.get(10)?,
            processing: r.get(11)?,
            charset: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
            delivery: false,
            reading: false,
        },
        event_ms: r.get(12)?,
        attempts: u32::try_from(r.get::<_, i64>(13)?).unwrap_or(0),
    })
}

/// Logs answered exchanges in `tx`.
pub(crate) fn insert(
    tx: &rusqlite::Transaction<'_>,
    exchanges: &[NewExchange],
    now: i64,
) -> Result<()> {
    if exchanges.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO hl7_exchanges (message, inbox, direction, kind, control_id, created_ms, state, \
         ack, error_code, error_label, answered_ms, application, facility, processing, asks_delivery, \
         asks_reading, charset) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'done', ?7, ?8, ?9, ?6, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for e in exchanges {
        let (message, inbox) = match e.link {
            Link::Message(k) => (Some(k), None),
            Link::Inbox(k) => (None, Some(k)),
        };
        let o = e.origin.as_ref();
        insert.execute(params![
            message,
            inbox,
            e.direction.as_str(),
            e.kind,
            e.control_id,
            now,
            e.answer.ack,
            e.answer.error_code,
            e.answer.error_label,
            o.map(|o| &o.application),
            o.map(|o| &o.facility),
            o.map(|o| &o.processing),
            o.is_some_and(|o| o.delivery),
            o.is_some_and(|o| o.reading),
            o.map(|o| &o.charset),
        ])?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Exchanges for SqliteStore {
    async fn log_exchanges(&self, exchanges: &[NewExchange]) -> Result<()> {
        let exchanges = exchanges.to_vec();
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert(&tx, &exchanges, clock.now_ms())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn exchanges(&self, link: Link) -> Result<Vec<Exchange>> {
        self.run(move |conn| {
            let (column, key) = match link {
                Link::Message(k) => ("message", k),
                Link::Inbox(k) => ("inbox", k),
            };
            let mut q = conn.prepare_cached(&format!(
                "SELECT {EXCHANGE_COLUMNS} FROM hl7_exchanges WHERE {column} = ?1 ORDER BY id"
            ))?;
            let rows = q
                .query_map([key], exchange_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn plan_business_acks(&self) -> Result<u64> {
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let now = clock.now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut queued = 0;
            {
                let mut q = tx.prepare_cached(CANDIDATES)?;
                let candidates: Vec<Candidate> = q
                    .query_map([now - WATCH_MS], |r| {
                        Ok(Candidate {
                            message: r.get(0)?,
                            recipient: r.get(1)?,
                            state: r.get(2)?,
                            reason: r.get(3)?,
                            event_ms: r.get(4)?,
                            refers_to: r.get(5)?,
                            origin: Requester {
                                application: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                                facility: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                                processing: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                                charset: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                                delivery: r.get::<_, i64>(9)? != 0,
                                reading: r.get::<_, i64>(10)? != 0,
                            },
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO hl7_exchanges (message, direction, kind, control_id, created_ms, \
                     state, due_ms, application, facility, processing, recipient, refers_to, \
                     reported, reported_code, reported_label, event_ms, charset) \
                     VALUES (?1, 'sent', ?2, '', ?3, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                     ?11, ?12, ?13) ON CONFLICT DO NOTHING",
                )?;
                for c in &candidates {
                    for report in c.reports()? {
                        let (code, label) = report.error.clone().unzip();
                        queued += super::count(insert.execute(params![
                            c.message,
                            report.kind.message_type(),
                            now,
                            c.origin.application,
                            c.origin.facility,
                            c.origin.processing,
                            c.recipient,
                            c.refers_to,
                            report.ok,
                            code,
                            label,
                            c.event_ms,
                            c.origin.charset,
                        ])?);
                    }
                }
                // its own MSH-10, the same on every send
                tx.execute(
                    "UPDATE hl7_exchanges SET control_id = 'MSSZ' || id \
                     WHERE control_id = '' AND state = 'pending'",
                    [],
                )?;
            }
            tx.commit()?;
            Ok(queued)
        })
        .await
    }

    async fn due_business_acks(
        &self,
        now_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BusinessAck>> {
        let limit = super::to_i64(limit);
        self.run(move |conn| {
            let mut q = conn.prepare_cached(&format!(
                "SELECT {BUSINESS_ACK_COLUMNS} FROM hl7_exchanges \
                 WHERE state = 'pending' AND (?1 IS NULL OR due_ms <= ?1) ORDER BY id LIMIT ?2"
            ))?;
            let rows = q
                .query_map(params![now_ms, limit], business_ack_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn business_ack_answered(&self, id: i64, answer: &Answer, retry_ms: i64) -> Result<()> {
        let answer = answer.clone();
        let clock = Arc::clone(&self.clock);
        self.run(move |conn| {
            let state = answered_state(&answer.ack);
            conn.execute(
                "UPDATE hl7_exchanges SET state = ?2, attempts = attempts + 1, ack = ?3, \
                 error_code = ?4, error_label = ?5, answered_ms = ?6, last_error = NULL, \
                 due_ms = CASE WHEN ?2 = 'pending' THEN ?7 ELSE NULL END \
                 WHERE id = ?1 AND state = 'pending'",
                params![
                    id,
                    state.as_str(),
                    answer.ack,
                    answer.error_code,
                    answer.error_label,
                    clock.now_ms(),
                    retry_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn business_ack_unanswered(&self, id: i64, error: &str, retry_ms: i64) -> Result<()> {
        let error = error.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE hl7_exchanges SET attempts = attempts + 1, last_error = ?2, due_ms = ?3 \
                 WHERE id = ?1 AND state = 'pending'",
                params![id, error, retry_ms],
            )?;
            Ok(())
        })
        .await
    }
}
