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
use mss_lps::imap::{Disposal, Disposed, FetchedMessage};
use tokio::sync::watch;

use crate::inbox::{Arrival, Incoming, Kept, Leaving};
use crate::overview::{ConnectionLog, Endpoint};
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

/// Messages per fetch by default (`--fetch-size`).
pub const DEFAULT_FETCH_SIZE: usize = 500;

/// Bytes per fetch by default (`--fetch-mb`).
pub const DEFAULT_FETCH_BYTES: u64 = 16 << 20;

/// How a mailbox is read.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// The folder read.
    pub folder: String,
    /// Keep every message that is not a report in the inbox (`[[senders]] receive = true`).
    pub receive: bool,
    /// Record reports (DSN, MDN) into the outbox (`[[senders]] receipts`); never inbox messages either way.
    pub receipts: bool,
    /// Most messages fetched per IMAP round trip and committed per transaction.
    pub fetch_size: usize,
    /// Most bytes fetched per round trip (one message at least): with the pipeline's three chunks in
    /// flight, what bounds memory whatever the messages' sizes.
    pub fetch_bytes: u64,
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
    /// Where each reading's connection outcome is recorded for the ops console (a service's log).
    pub connections: Option<Arc<ConnectionLog>>,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            folder: "INBOX".into(),
            receive: false,
            receipts: true,
            fetch_size: DEFAULT_FETCH_SIZE,
            fetch_bytes: DEFAULT_FETCH_BYTES,
            idle: Duration::from_secs(60),
            poll: Duration::from_secs(10),
            retention: Retention::Delete,
            keep: DEFAULT_KEEP,
            webhook: None,
            connections: None,
        }
    }
}

/// What a reading did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Messages stored in the inbox.
    pub new: u64,
    /// Messages read again that the inbox already held, or held and purged (nothing stored).
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
///
/// One listing per pass (UIDs and sizes above the mark), then chunks of at most [`ReaderConfig::fetch_size`]
/// messages and [`ReaderConfig::fetch_bytes`] bytes, in a pipeline of three: while chunk k is committed
/// (bytes synced, rows and mark in one transaction), chunk k+1 is read and checked and chunk k+2 is on the
/// wire. Commits stay in UID order, one at a time: the mark never passes a message not yet durable.
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
        let listing = client
            .list_new(&cfg.folder, since)
            .await
            .map_err(Error::from)?;
        let validity = listing.status.uid_validity.unwrap_or(0);
        if let Some((v, _)) = cursor
            && v != validity
        {
            tracing::info!(%mailbox, folder = %cfg.folder, "UIDVALIDITY changed: reading the folder again");
            store
                .keep(&mailbox, &cfg.folder, validity, 0, Vec::new())
                .await?;
            continue;
        }
        let chunks = plan(&listing.messages, listing.upper, cfg);
        if chunks.is_empty() {
            if cursor.is_none() || listing.upper != since {
                store
                    .keep(&mailbox, &cfg.folder, validity, listing.upper, Vec::new())
                    .await?;
            }
            break;
        }
        let pass = Pass {
            store,
            client,
            cfg,
            mailbox: &mailbox,
            validity,
        };
        if pass.run(chunks, &mut report).await? {
            break;
        }
        tracing::info!(%mailbox, folder = %cfg.folder, "UIDVALIDITY changed during the pass: listing again");
    }
    // pushed before retention may purge them (a purge only takes messages with an outcome, long after)
    if let Some(hook) = &cfg.webhook {
        report.pushed = crate::inbox::push::push_pending(store, &mailbox, hook).await?;
    }
    retain(store, client, cfg, &mailbox, &mut report).await?;
    Ok(report)
}

/// One fetch: the UIDs, and the mark once they are kept (the last UID, the listing's end for the last).
struct Chunk {
    uids: Vec<u32>,
    up_to: u32,
}

/// Cuts a listing into chunks of at most `fetch_size` messages and `fetch_bytes` bytes (one message at
/// least): memory stays bounded whatever the messages' sizes.
fn plan(listed: &[(u32, u64)], upper: u32, cfg: &ReaderConfig) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let (mut uids, mut bytes) = (Vec::new(), 0u64);
    for &(uid, size) in listed {
        if !uids.is_empty()
            && (uids.len() >= cfg.fetch_size.max(1) || bytes.saturating_add(size) > cfg.fetch_bytes)
        {
            let up_to = uids.last().copied().unwrap_or(uid);
            chunks.push(Chunk {
                uids: std::mem::take(&mut uids),
                up_to,
            });
            bytes = 0;
        }
        uids.push(uid);
        bytes = bytes.saturating_add(size);
    }
    if !uids.is_empty() {
        chunks.push(Chunk { uids, up_to: upper });
    } else if let Some(last) = chunks.last_mut() {
        last.up_to = upper;
    }
    chunks
}

/// A chunk read and checked, waiting for its commit.
struct Prepared {
    incoming: Vec<Incoming>,
    up_to: u32,
}

/// One pass over a listing of a folder whose UIDVALIDITY is `validity`.
struct Pass<'a> {
    store: &'a dyn Store,
    client: &'a LpsClient,
    cfg: &'a ReaderConfig,
    mailbox: &'a str,
    validity: u32,
}

impl Pass<'_> {
    /// Runs the chunks through the pipeline; `false` when the folder was renumbered meanwhile (what was
    /// committed stays; the rest is for a new listing).
    async fn run(&self, chunks: Vec<Chunk>, report: &mut SyncReport) -> Result<bool> {
        let mut chunks = chunks.into_iter();
        let mut fetched: Option<(Vec<FetchedMessage>, u32)> = None;
        let mut prepared: Option<Prepared> = None;
        let mut renumbered = false;
        loop {
            let next = if renumbered { None } else { chunks.next() };
            if next.is_none() && fetched.is_none() && prepared.is_none() {
                return Ok(!renumbered);
            }
            let (got, read, committed) = tokio::join!(
                async {
                    match next {
                        Some(c) => self.fetch(c).await,
                        None => Ok(None),
                    }
                },
                async {
                    match fetched.take() {
                        Some((messages, up_to)) => self.read(messages, up_to).await.map(Some),
                        None => Ok(None),
                    }
                },
                async {
                    match prepared.take() {
                        Some(p) => self.commit(p).await.map(Some),
                        None => Ok(None),
                    }
                },
            );
            if let Some(done) = committed? {
                report.add(done);
            }
            if let Some((p, receipts)) = read? {
                report.receipts.add(receipts);
                prepared = Some(p);
            }
            match got? {
                Some(Some(f)) => fetched = Some(f),
                Some(None) => renumbered = true,
                None => {}
            }
        }
    }

    /// The chunk's messages, whole; `Some(None)` when the folder's UIDVALIDITY is no longer the listing's.
    async fn fetch(&self, chunk: Chunk) -> Result<Option<Option<(Vec<FetchedMessage>, u32)>>> {
        let got = self
            .client
            .fetch_listed(&self.cfg.folder, self.validity, &chunk.uids)
            .await
            .map_err(Error::from)?;
        Ok(Some(got.map(|m| (m, chunk.up_to))))
    }

    /// Reads and checks the messages (on a blocking thread: archives are inflated and hashed), records the
    /// reports, and finds what the others reply to.
    async fn read(
        &self,
        messages: Vec<FetchedMessage>,
        up_to: u32,
    ) -> Result<(Prepared, ReceiptsReport)> {
        let arrivals = tokio::task::spawn_blocking(move || {
            messages
                .into_iter()
                .filter_map(|m| match (m.uid, m.body) {
                    (Some(uid), Some(raw)) => Some(Arrival::read(uid, raw)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Error::Store {
            reason: format!("message reader thread: {e}"),
        })?;
        let mut receipts = ReceiptsReport::default();
        let mut incoming = Vec::with_capacity(arrivals.len());
        for a in arrivals {
            match a {
                Arrival::Report(r) => {
                    if self.cfg.receipts {
                        receipts.add(receipts::record_report(self.store, &r).await?);
                    }
                }
                Arrival::Message(mut m) => {
                    let thread = m.thread_ids();
                    if !thread.is_empty()
                        && let Some(sent) = self.store.inbox_replied(&thread).await?
                    {
                        m.set_replies_to(sent);
                    }
                    incoming.push(m)
                }
            }
        }
        Ok((Prepared { incoming, up_to }, receipts))
    }

    /// Keeps the messages and moves the mark past them, in one transaction once their bytes are durable.
    async fn commit(&self, p: Prepared) -> Result<SyncReport> {
        let faulty: Vec<bool> = p.incoming.iter().map(Incoming::is_faulty).collect();
        let kept = self
            .store
            .keep(
                self.mailbox,
                &self.cfg.folder,
                self.validity,
                p.up_to,
                p.incoming,
            )
            .await?;
        let mut report = SyncReport::default();
        for (k, faulty) in kept.iter().zip(faulty) {
            match k {
                Kept::New(_) => {
                    report.new += 1;
                    report.faulty += u64::from(faulty);
                }
                Kept::Known(_) | Kept::Gone => report.known += 1,
            }
        }
        Ok(report)
    }
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
        let read = sync(store.as_ref(), &client, &cfg).await;
        if let Some(log) = &cfg.connections {
            let at = store.now_ms();
            let address = client.address().to_string();
            match &read {
                Ok(_) => log.record(&address, Endpoint::Imap, at, Ok(())),
                Err(Error::Mailbox(e)) => log.record(&address, Endpoint::Imap, at, Err(e)),
                // the store's failure says nothing of the connection
                Err(_) => {}
            }
        }
        match read {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(listed: &[(u32, u64)], upper: u32, size: usize, bytes: u64) -> Vec<(Vec<u32>, u32)> {
        let cfg = ReaderConfig {
            fetch_size: size,
            fetch_bytes: bytes,
            ..ReaderConfig::default()
        };
        plan(listed, upper, &cfg)
            .into_iter()
            .map(|c| (c.uids, c.up_to))
            .collect()
    }

    #[test]
    fn chunks_are_bounded_by_count_and_bytes_and_the_last_mark_is_the_listings_end() {
        let listed = [(3, 10), (4, 10), (7, 10), (8, 10), (9, 10)];
        assert_eq!(
            cut(&listed, 12, 2, 1000),
            vec![(vec![3, 4], 4), (vec![7, 8], 8), (vec![9], 12)]
        );
        assert_eq!(
            cut(&listed, 9, 10, 25),
            vec![(vec![3, 4], 4), (vec![7, 8], 8), (vec![9], 9)]
        );
        // a message larger than the budget goes alone, never skipped
        assert_eq!(
            cut(&[(1, 5), (2, 500), (3, 5)], 3, 10, 100),
            vec![(vec![1], 1), (vec![2], 2), (vec![3], 3)]
        );
        assert!(cut(&[], 40, 10, 100).is_empty());
    }
}
