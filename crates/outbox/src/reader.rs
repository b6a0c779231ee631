//! The mailbox reader: one per mailbox, one IMAP pass for everything that arrives in it
//! (docs/mssante.md R1, M6). Reports (DSN, MDN) move the outbox's recipients on ([`crate::receipts`]); when
//! the mailbox receives ([`ReaderConfig::receive`]), every other message is kept in the [`crate::inbox`];
//! when it does not, the reader asks the server for reports only and leaves the rest alone.
//!
//! Nothing is flagged in the mailbox. What was read is a UID high-water mark per (mailbox, folder) in the
//! store, moved only once what lies below it is durable: receiving, the mark moves in the very transaction
//! that commits the messages it covers. A reader killed at any moment reads again what the mark does not
//! cover; a report recorded twice changes nothing, and a message kept twice is found by its Message-ID (or
//! its bytes' hash) and stored once. A new UIDVALIDITY (the server renumbered the folder) starts the
//! reading over, with the same guarantee.

use std::sync::Arc;
use std::time::Duration;

use mss_lps::LpsClient;
use mss_lps::imap::NewMessages;
use tokio::sync::watch;

use crate::inbox::{Arrival, Incoming, Kept};
use crate::receipts::{self, ReceiptsReport};
use crate::{Error, Result, Store};

/// How a mailbox is read.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// The folder read.
    pub folder: String,
    /// Keep every message that is not a report in the inbox (`[[senders]] receive = true`).
    pub receive: bool,
    /// Record reports (DSN, MDN) into the outbox (`[[senders]] receipts`); never inbox messages either way.
    pub receipts: bool,
    /// Messages fetched per IMAP round trip (bounds memory: whole messages are fetched).
    pub fetch_size: usize,
    /// [`watch`]: longest IMAP IDLE before looking again.
    pub idle: Duration,
    /// [`watch`]: pause after a transient failure, or between looks when the server has no IDLE.
    pub poll: Duration,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            folder: "INBOX".into(),
            receive: false,
            receipts: true,
            fetch_size: 50,
            idle: Duration::from_secs(60),
            poll: Duration::from_secs(10),
        }
    }
}

/// What a reading did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Messages stored in the inbox.
    pub new: u64,
    /// Messages read again that the inbox already held (nothing stored).
    pub known: u64,
    /// Of the new ones, those the message reader found problems in (kept all the same).
    pub faulty: u64,
    /// The reports read and what they changed.
    pub receipts: ReceiptsReport,
}

impl SyncReport {
    fn add(&mut self, o: SyncReport) {
        self.new += o.new;
        self.known += o.known;
        self.faulty += o.faulty;
        self.receipts.add(o.receipts);
    }
}

/// Reads everything that arrived since the last reading of `cfg.folder`; returns what it did.
pub async fn sync(store: &dyn Store, client: &LpsClient, cfg: &ReaderConfig) -> Result<SyncReport> {
    if cfg.receive {
        receive(store, client, cfg).await
    } else if cfg.receipts {
        reports_only(store, client, cfg).await
    } else {
        Ok(SyncReport::default())
    }
}

/// Bytes written but never committed are swept once this old (a commit follows its write within seconds).
const ORPHAN_AGE: Duration = Duration::from_secs(600);

/// The mailbox receives: every message is fetched once; reports are recorded, the others kept.
async fn receive(store: &dyn Store, client: &LpsClient, cfg: &ReaderConfig) -> Result<SyncReport> {
    let mailbox = client.address().to_string();
    let mut report = SyncReport::default();
    // what a reader killed between writing bytes and committing their rows left behind
    match store.inbox_sweep(ORPHAN_AGE).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "inbox: bytes of uncommitted messages removed"),
        Err(e) => tracing::warn!(error = %e, "inbox: cannot sweep uncommitted bytes"),
    }
    loop {
        let cursor = store.inbox_cursor(&mailbox, &cfg.folder).await?;
        let since = cursor.map_or(0, |(_, uid)| uid);
        let got = client
            .fetch_new_bounded(&cfg.folder, since, cfg.fetch_size)
            .await
            .map_err(Error::from)?;
        let validity = got.status.uid_validity.unwrap_or(0);
        if let Some((v, _)) = cursor
            && v != validity
        {
            tracing::info!(%mailbox, folder = %cfg.folder, "UIDVALIDITY changed: reading the folder again");
            store
                .keep(&mailbox, &cfg.folder, validity, 0, Vec::new())
                .await?;
            continue;
        }
        // more below UIDNEXT than one round trip took (a message expunged meanwhile makes a chunk short)
        let more = match got.status.uid_next {
            Some(next) => got.scanned_to < next.saturating_sub(1),
            None => got.messages.len() >= cfg.fetch_size.max(1),
        };
        let NewMessages {
            messages,
            scanned_to,
            ..
        } = got;
        let mut incoming = Vec::new();
        for m in messages {
            let (Some(uid), Some(raw)) = (m.uid, m.body) else {
                continue;
            };
            match Arrival::read(uid, raw) {
                Arrival::Report(r) => {
                    if cfg.receipts {
                        report
                            .receipts
                            .add(receipts::record_report(store, &r).await?);
                    }
                }
                Arrival::Message(mut m) => {
                    let thread = m.thread_ids();
                    if !thread.is_empty()
                        && let Some(sent) = store.inbox_replied(&thread).await?
                    {
                        m.set_replies_to(sent);
                    }
                    incoming.push(m)
                }
            }
        }
        let faulty: Vec<bool> = incoming.iter().map(Incoming::is_faulty).collect();
        if cursor.is_none() || scanned_to != since || !incoming.is_empty() {
            let kept = store
                .keep(&mailbox, &cfg.folder, validity, scanned_to, incoming)
                .await?;
            for (k, faulty) in kept.iter().zip(faulty) {
                match k {
                    Kept::New(_) => {
                        report.new += 1;
                        report.faulty += u64::from(faulty);
                    }
                    Kept::Known(_) => report.known += 1,
                }
            }
        }
        if !more {
            return Ok(report);
        }
    }
}

/// The store key of a mailbox's receipts mark.
fn cursor_key(client: &LpsClient, folder: &str) -> String {
    format!("{}/{folder}", client.address())
}

/// The mailbox does not receive: the server is asked for reports only (letters and results are never
/// downloaded) and the rest is left on it.
async fn reports_only(
    store: &dyn Store,
    client: &LpsClient,
    cfg: &ReaderConfig,
) -> Result<SyncReport> {
    let key = cursor_key(client, &cfg.folder);
    let mut report = SyncReport::default();
    loop {
        let cursor = store.receipt_cursor(&key).await?;
        let since = cursor.map_or(0, |(_, uid)| uid);
        let got = client
            .fetch_new_with_header(
                &cfg.folder,
                since,
                ("Content-Type", "multipart/report"),
                cfg.fetch_size,
            )
            .await
            .map_err(Error::from)?;
        let validity = got.status.uid_validity.unwrap_or(0);
        if let Some((v, _)) = cursor
            && v != validity
        {
            tracing::info!(mailbox = %key, "UIDVALIDITY changed: reading the receipts again");
            store.set_receipt_cursor(&key, validity, 0).await?;
            continue;
        }
        let more = got.messages.len() >= cfg.fetch_size.max(1);
        for m in &got.messages {
            if let Some(body) = &m.body {
                report.receipts.add(receipts::record(store, body).await?);
            }
        }
        if cursor.is_none() || got.scanned_to != since {
            store
                .set_receipt_cursor(&key, validity, got.scanned_to)
                .await?;
        }
        if !more {
            return Ok(report);
        }
    }
}

/// Reads the mailbox until `stop` turns true: one reading, then IMAP IDLE until something arrives (or
/// [`ReaderConfig::idle`]), and again; polling every [`ReaderConfig::poll`] when the server has no IDLE.
/// Transient failures (server away, store busy) are retried after [`ReaderConfig::poll`]; refused
/// credentials and other permanent failures end it.
pub async fn watch(
    store: Arc<dyn Store>,
    client: Arc<LpsClient>,
    cfg: ReaderConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<SyncReport> {
    let mut total = SyncReport::default();
    while !*stop.borrow() {
        match sync(store.as_ref(), &client, &cfg).await {
            Ok(r) => {
                if r != SyncReport::default() {
                    tracing::info!(?r, "mailbox read");
                }
                total.add(r);
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "reading the mailbox failed; retrying");
                pause(cfg.poll, &mut stop).await;
                continue;
            }
            Err(e) => {
                client.close().await;
                return Err(e);
            }
        }
        tokio::select! {
            r = client.wait_for_mail(&cfg.folder, cfg.idle) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "no IDLE; polling");
                    pause(cfg.poll, &mut stop).await;
                }
            }
            _ = stop.changed() => {}
        }
    }
    client.close().await;
    Ok(total)
}

async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}
