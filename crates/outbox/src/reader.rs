//! The mailbox reader: one per mailbox, one IMAP pass for everything that arrives in it
//! (docs/mssante.md R1, M6). Reports (DSN, MDN) move the outbox's recipients on ([`crate::receipts`]); when
//! the mailbox receives ([`ReaderConfig::receive`]), every other message is kept in the [`crate::inbox`];
//! when it does not, the reader asks the server for reports only and leaves the rest alone.
//!
//! Reading flags nothing in the mailbox. What was read is a UID high-water mark per (mailbox, folder) in the
//! store, moved only once what lies below it is durable: receiving, the mark moves in the very transaction
//! that commits the messages it covers. A reader killed at any moment reads again what the mark does not
//! cover; a report recorded twice changes nothing, and a message kept twice is found by its Message-ID (or
//! its bytes' hash) and stored once. A new UIDVALIDITY (the server renumbered the folder) starts the
//! reading over, with the same guarantee.
//!
//! Retention (docs/mssante.md R5), at the end of each pass of a receiving reader: a message whose outcome
//! is recorded leaves the operator as [`Retention`] says (never before: the local copy is durable from the
//! moment it is kept, the outcome is the consumer's), and local copies are purged [`ReaderConfig::keep`]
//! after their outcome. Each deletion is logged with ids only.

use std::sync::Arc;
use std::time::Duration;

use mss_lps::LpsClient;
use mss_lps::imap::{Disposal, Disposed, NewMessages};
use tokio::sync::watch;

use crate::inbox::{Arrival, Incoming, Kept, Leaving};
use crate::receipts::{self, ReceiptsReport};
use crate::{Error, Result, Store};

/// What becomes of a message at the operator once its outcome is recorded (`[[senders]] retention`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Retention {
    /// Flagged `\Deleted` and expunged by UID (UIDPLUS); without UIDPLUS only flagged, and said so.
    #[default]
    Delete,
    /// Moved to this folder (`move:FOLDER`).
    Move(String),
    /// Left as it is (`keep`).
    Keep,
}

impl Retention {
    /// Reads `delete`, `keep` or `move:FOLDER`.
    pub fn parse(s: &str) -> Result<Retention> {
        match s {
            "delete" => Ok(Retention::Delete),
            "keep" => Ok(Retention::Keep),
            _ => match s.strip_prefix("move:") {
                Some(folder)
                    if !folder.is_empty()
                        && folder.is_ascii()
                        && !folder.contains(|c: char| c.is_ascii_control()) =>
                {
                    Ok(Retention::Move(folder.to_owned()))
                }
                _ => Err(Error::invalid(
                    "retention",
                    format!("expected delete, keep or move:FOLDER (ASCII), got {s:?}"),
                )),
            },
        }
    }

    fn disposal(&self) -> Option<Disposal> {
        match self {
            Retention::Delete => Some(Disposal::Delete),
            Retention::Move(f) => Some(Disposal::Move(f.clone())),
            Retention::Keep => None,
        }
    }
}

/// Local copies are kept this long after their outcome by default (`keep_days`).
pub const DEFAULT_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

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
    /// What becomes of a message at the operator once its outcome is recorded (receiving only).
    pub retention: Retention,
    /// How long a local copy is kept after its outcome (receiving only).
    pub keep: Duration,
    /// Where each message kept is pushed (receiving only; [`crate::inbox::push`]).
    pub webhook: Option<Arc<crate::inbox::push::Webhook>>,
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
            retention: Retention::Delete,
            keep: DEFAULT_KEEP,
            webhook: None,
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
    /// Messages with an outcome taken out of the folder at the operator (deleted or moved).
    pub left: u64,
    /// Of those, the ones only flagged `\Deleted` (the server has no UIDPLUS).
    pub flagged_only: u64,
    /// Local copies purged (`keep` after their outcome).
    pub purged: u64,
    /// What the webhook push did.
    pub pushed: crate::inbox::push::PushReport,
}

impl SyncReport {
    fn add(&mut self, o: SyncReport) {
        self.new += o.new;
        self.known += o.known;
        self.faulty += o.faulty;
        self.receipts.add(o.receipts);
        self.left += o.left;
        self.flagged_only += o.flagged_only;
        self.purged += o.purged;
        self.pushed.pushed += o.pushed.pushed;
        self.pushed.failed += o.pushed.failed;
        self.pushed.given_up += o.pushed.given_up;
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
            break;
        }
    }
    // pushed before retention may purge them (a purge only takes messages with an outcome, long after)
    if let Some(hook) = &cfg.webhook {
        report.pushed = crate::inbox::push::push_pending(store, &mailbox, hook).await?;
    }
    retain(store, client, cfg, &mailbox, &mut report).await?;
    Ok(report)
}

/// Messages taken out of the folder per IMAP command.
const DISPOSE_CHUNK: u64 = 200;

/// Takes the messages with an outcome out of the folder at the operator, then purges the local copies
/// whose time is up (docs/mssante.md R5).
async fn retain(
    store: &dyn Store,
    client: &LpsClient,
    cfg: &ReaderConfig,
    mailbox: &str,
    report: &mut SyncReport,
) -> Result<()> {
    if let Some(how) = cfg.retention.disposal() {
        let mut skipped = std::collections::HashSet::new();
        loop {
            let leaving: Vec<_> = store
                .inbox_leaving(mailbox, &cfg.folder, DISPOSE_CHUNK + skipped.len() as u64)
                .await?
                .into_iter()
                .filter(|l| !skipped.contains(&l.id))
                .collect();
            let Some(first) = leaving.first() else { break };
            // one UIDVALIDITY per command: the rows of another wait their turn in this loop
            let validity = first.uid_validity;
            let (now, _): (Vec<&Leaving>, Vec<&Leaving>) =
                leaving.iter().partition(|l| l.uid_validity == validity);
            let uids: Vec<u32> = now.iter().map(|l| l.uid).collect();
            let ids: Vec<i64> = now.iter().map(|l| l.id).collect();
            match client
                .dispose(&cfg.folder, validity, &uids, &how)
                .await
                .map_err(Error::from)?
            {
                Disposed::ValidityChanged(current) => {
                    // renumbered since they were read: the next pass reads the folder again and finds
                    // them by Message-ID (or bytes) at their new place; left until then
                    tracing::warn!(
                        %mailbox, folder = %cfg.folder, ?current, ids = ?ids,
                        "retention: the folder's UIDVALIDITY changed; left for the next pass"
                    );
                    skipped.extend(ids);
                    continue;
                }
                Disposed::Removed => {
                    let done = match &how {
                        Disposal::Delete => "deleted".to_owned(),
                        Disposal::Move(f) => format!("moved:{f}"),
                    };
                    store.inbox_left(&ids, &done).await?;
                    for l in &now {
                        tracing::info!(%mailbox, folder = %cfg.folder, id = l.id, uid = l.uid, how = %done,
                            "retention: message removed from the operator");
                    }
                    report.left += ids.len() as u64;
                }
                Disposed::FlaggedOnly => {
                    store.inbox_left(&ids, "flagged").await?;
                    for l in &now {
                        tracing::warn!(%mailbox, folder = %cfg.folder, id = l.id, uid = l.uid,
                            "retention: message flagged \\Deleted but not expunged (the server offers no \
                             UIDPLUS; a plain EXPUNGE would remove other clients' deleted messages)");
                    }
                    report.left += ids.len() as u64;
                    report.flagged_only += ids.len() as u64;
                }
            }
        }
    }
    // with a retention at the operator, only what left it is purged: the local copy outlives the remote one
    let only_left = cfg.retention != Retention::Keep;
    let purged = store.inbox_purge(mailbox, cfg.keep, only_left).await?;
    for id in &purged {
        tracing::info!(%mailbox, id, "retention: local copy purged");
    }
    report.purged += purged.len() as u64;
    Ok(())
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
