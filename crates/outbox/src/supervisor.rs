//! The delivery workers of one sending mailbox, as `mss batch` and `mss serve` run them: a set of worker
//! loops (one per connection) under one worker name, held by this process alone ([`hold`]); and, for a
//! service, a supervisor that reads the mailbox's credentials, runs its worker loops and its reader
//! ([`crate::reader`]: receipts, and the inbox when it receives), and restarts them when a credential file
//! changes (a mailbox paused for refused credentials resumes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mss_lps::{LpsClient, MailboxConfig};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::reader::{self, ReaderConfig};
use crate::worker::{self, OperatorLimits, RunReport, WorkerConfig};
use crate::{Error, Result, Store, WorkerNameHold};

/// How often credential files are checked for a change.
const CREDENTIALS_POLL: Duration = Duration::from_secs(1);

/// How often a busy worker name is tried again while waiting for it.
const NAME_POLL: Duration = Duration::from_millis(500);

/// How long a supervisor waits before starting again loops that all ended on a store failure.
const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// What to do when another live process holds the worker name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameBusy {
    /// Wait until it is free (a batch run that overlaps an earlier one delivers after it).
    Wait,
    /// Refuse: [`Error::WorkerNameInUse`] (a service started twice).
    Refuse,
}

/// Takes the worker name `name` for this process, waiting while another process holds it when asked
/// (`on_wait` is called once, before waiting).
pub async fn hold(
    store: &dyn Store,
    name: &str,
    busy: NameBusy,
    on_wait: impl FnOnce(),
) -> Result<WorkerNameHold> {
    if let Some(hold) = store.hold_worker_name(name).await? {
        return Ok(hold);
    }
    if busy == NameBusy::Refuse {
        return Err(Error::WorkerNameInUse { name: name.into() });
    }
    on_wait();
    loop {
        tokio::time::sleep(NAME_POLL).await;
        if let Some(hold) = store.hold_worker_name(name).await? {
            return Ok(hold);
        }
    }
}

/// The worker loops of one sender under one name: loop `i` is the worker `<name>:<i>`.
#[derive(Debug, Clone)]
pub struct WorkerSet {
    /// The name held for the set (unique among the processes sharing the outbox).
    pub name: String,
    /// The sending mailbox.
    pub sender: String,
    /// SMTP sessions in parallel.
    pub connections: u16,
    /// Limits shared by the loops (connections, rate).
    pub limits: Arc<OperatorLimits>,
    /// How each loop runs (its `id` and `sender` are set per loop).
    pub worker: WorkerConfig,
}

impl WorkerSet {
    /// `connections` loops for `sender`, at most `rate` messages per second.
    pub fn new(name: String, sender: String, connections: u16, rate: Option<f64>) -> Self {
        let connections = connections.max(1);
        let mut worker = WorkerConfig::new(name.clone());
        worker.sender = Some(sender.clone());
        WorkerSet {
            name,
            sender,
            connections,
            limits: OperatorLimits::new(usize::from(connections), rate),
            worker,
        }
    }

    /// The worker id of loop `i`.
    pub fn worker_id(&self, i: u16) -> String {
        format!("{}:{i}", self.name)
    }

    /// Gives back to the queue the leases a previous process of this name left (it died): only the holder
    /// of the name (`_hold`) may, since a live holder would be sending them.
    pub async fn take_back(&self, store: &dyn Store, _hold: &WorkerNameHold) -> Result<()> {
        for i in 0..self.connections {
            store.release(&self.worker_id(i)).await?;
        }
        Ok(())
    }

    /// Starts the loops into `tasks`, until `stop` turns true.
    pub fn spawn(
        &self,
        store: &Arc<dyn Store>,
        _hold: &WorkerNameHold,
        mailbox: &MailboxConfig,
        stop: &watch::Receiver<bool>,
        tasks: &mut JoinSet<Result<RunReport>>,
    ) -> Result<()> {
        for i in 0..self.connections {
            let mut cfg = self.worker.clone();
            cfg.id = self.worker_id(i);
            cfg.sender = Some(self.sender.clone());
            let client = Arc::new(LpsClient::new(mailbox.clone())?);
            tasks.spawn(worker::run(
                Arc::clone(store),
                client,
                cfg,
                Arc::clone(&self.limits),
                stop.clone(),
            ));
        }
        Ok(())
    }
}

/// Reads a sender's credentials: the mailbox to connect with, or why they cannot be used (naming the
/// file, never its content).
pub type ReadCredentials =
    Arc<dyn Fn() -> std::result::Result<MailboxConfig, String> + Send + Sync>;

/// A mailbox a service delivers for.
#[derive(Clone)]
pub struct ServedSender {
    /// What the service calls it (`[[senders]] name`).
    pub name: String,
    /// Its worker loops.
    pub set: WorkerSet,
    /// Files its credentials are read from, watched for changes.
    pub credential_files: Vec<PathBuf>,
    /// Reads them.
    pub credentials: ReadCredentials,
    /// Also read the receipts (DSN, MDN) that come back to it.
    pub receipts: bool,
    /// Also keep what it receives in the inbox (read in the same IMAP pass as the receipts).
    pub receive: bool,
    /// What becomes of a received message at the operator once its outcome is recorded.
    pub retention: crate::reader::Retention,
    /// How long a received message is kept locally after its outcome.
    pub keep: std::time::Duration,
    /// Where each received message is pushed.
    pub webhook: Option<Arc<crate::inbox::push::Webhook>>,
}

/// What a supervisor reports, for the service's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The loops run for the first time.
    Delivering,
    /// The credentials cannot be used: the mailbox is paused until they change.
    CredentialsUnusable(String),
    /// The credentials were read after a pause: the mailbox goes again.
    Resumed,
    /// A credential file changed: the loops start again with what it holds.
    CredentialsChanged,
    /// A loop stopped on an error.
    Stopped(String),
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Delivering => f.write_str("delivering"),
            Event::CredentialsUnusable(r) => write!(f, "{r}; waiting for new ones"),
            Event::Resumed => f.write_str("credentials read; resuming"),
            Event::CredentialsChanged => f.write_str("credentials changed; reading them again"),
            Event::Stopped(e) => write!(f, "stopped: {e}"),
        }
    }
}

/// Receives a supervisor's events with the sender they are about.
pub type OnEvent = Arc<dyn Fn(&ServedSender, Event) + Send + Sync>;

/// The supervisors of a service's senders.
pub struct Supervisor {
    tasks: JoinSet<()>,
}

impl Supervisor {
    /// Holds every sender's worker name (refusing one that another live process holds), then supervises
    /// each sender until `stop` turns true.
    pub async fn start(
        store: Arc<dyn Store>,
        senders: Vec<ServedSender>,
        on_event: OnEvent,
        stop: watch::Receiver<bool>,
    ) -> Result<Self> {
        let mut held = Vec::with_capacity(senders.len());
        for s in senders {
            let hold = hold(store.as_ref(), &s.set.name, NameBusy::Refuse, || {}).await?;
            held.push((s, hold));
        }
        let mut tasks = JoinSet::new();
        for (s, hold) in held {
            tasks.spawn(supervise(
                Arc::clone(&store),
                s,
                hold,
                Arc::clone(&on_event),
                stop.clone(),
            ));
        }
        Ok(Supervisor { tasks })
    }

    /// Waits until the supervisors stopped (after `stop` turned true), at most `deadline`; a loop still
    /// sending then is abandoned (its leases expire, or are taken back by the next start of its name).
    /// Whether they all stopped in time.
    pub async fn join(mut self, deadline: Duration) -> bool {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(deadline, all).await.is_err() {
            self.tasks.abort_all();
            return false;
        }
        true
    }
}

type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// One sender: reads its credentials, runs its worker loops and its receipts reader, and restarts them
/// with the new credentials when a credential file changes.
async fn supervise(
    store: Arc<dyn Store>,
    sender: ServedSender,
    mut hold: WorkerNameHold,
    on_event: OnEvent,
    mut stop: watch::Receiver<bool>,
) {
    let address = sender.set.sender.clone();
    let mut first = true;
    loop {
        if *stop.borrow() {
            return;
        }
        let seen = stamp(&sender.credential_files);
        let mut loops: JoinSet<Result<RunReport>> = JoinSet::new();
        let (loop_stop_tx, loop_stop) = watch::channel(false);
        match (sender.credentials)() {
            Err(reason) => {
                on_event(&sender, Event::CredentialsUnusable(reason.clone()));
                if let Err(e) = store.pause(&address, &reason).await {
                    tracing::warn!(error = %e, "cannot record the pause");
                }
            }
            Ok(mailbox) => {
                match store.resume(&address).await {
                    Ok(true) => on_event(&sender, Event::Resumed),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot resume {address}"),
                }
                // leases a previous process of this name left are taken back at the first start only:
                // later, this process's own loops gave theirs back as they stopped
                if first && let Err(e) = sender.set.take_back(store.as_ref(), &hold).await {
                    tracing::warn!(error = %e, worker = %sender.set.name, "cannot take back old leases");
                }
                if let Err(e) = sender
                    .set
                    .spawn(&store, &hold, &mailbox, &loop_stop, &mut loops)
                {
                    on_event(&sender, Event::Stopped(e.to_string()));
                }
                if sender.receipts || sender.receive {
                    // one reader for the mailbox, on its own IMAP session next to the SMTP ones
                    match LpsClient::new(mailbox) {
                        Ok(c) => {
                            let cfg = ReaderConfig {
                                receive: sender.receive,
                                receipts: sender.receipts,
                                retention: sender.retention.clone(),
                                keep: sender.keep,
                                webhook: sender.webhook.clone(),
                                connections: sender.set.worker.connections.clone(),
                                ..ReaderConfig::default()
                            };
                            let watch = reader::watch(
                                Arc::clone(&store),
                                Arc::new(c),
                                cfg,
                                loop_stop.clone(),
                            );
                            loops.spawn(async move { watch.await.map(|_| RunReport::default()) });
                        }
                        Err(e) => on_event(&sender, Event::Stopped(format!("mailbox reader: {e}"))),
                    }
                }
                if first {
                    on_event(&sender, Event::Delivering);
                }
            }
        }
        first = false;
        // until stopped, the credentials change, or every loop ended (a store failure: start again)
        let mut tick = tokio::time::interval(CREDENTIALS_POLL);
        let stopping = loop {
            tokio::select! {
                _ = stop.changed() => {
                    if *stop.borrow() { break true; }
                }
                _ = tick.tick() => {
                    if !hold.is_held() {
                        // the session holding the name ended (a database restart): hold it again, or
                        // stop if another process took it meanwhile
                        match store.hold_worker_name(&sender.set.name).await {
                            Ok(Some(again)) => hold = again,
                            Ok(None) => {
                                on_event(&sender, Event::Stopped(
                                    Error::WorkerNameInUse { name: sender.set.name.clone() }.to_string(),
                                ));
                                break true;
                            }
                            // the database still away: nothing can be leased meanwhile
                            Err(e) => tracing::debug!(error = %e, "cannot hold the worker name yet"),
                        }
                    }
                    if stamp(&sender.credential_files) != seen {
                        on_event(&sender, Event::CredentialsChanged);
                        break false;
                    }
                }
                ended = loops.join_next(), if !loops.is_empty() => {
                    match ended {
                        Some(Ok(Ok(_))) | None => {}
                        Some(Ok(Err(e))) => on_event(&sender, Event::Stopped(e.to_string())),
                        Some(Err(e)) => on_event(&sender, Event::Stopped(format!("task failed: {e}"))),
                    }
                    if loops.is_empty() {
                        tokio::time::sleep(RESTART_PAUSE).await;
                        break false;
                    }
                }
            }
        };
        // the loops give their leases back as they stop
        let _ = loop_stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        if stopping {
            return;
        }
    }
}
