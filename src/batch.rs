//! `mss batch`: many messages from one mailbox, through the durable outbox. Every item is first persisted
//! (so a run that is interrupted, or killed, loses nothing), then delivered; running the same command again
//! skips what was already accepted and sends what is left.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
use mss_lps::LpsClient;
use mss_message::ComposeConfig;
use mss_outbox::prepare::{self, Acceptance, Origin};
use mss_outbox::reader::{self, ReaderConfig};
use mss_outbox::supervisor::{self, NameBusy, WorkerSet};
use mss_outbox::worker::RunReport;
use mss_outbox::{Counts, State, Store, WorkerNameHold};

use crate::lps::ConnectArgs;

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// A directory of items (`*.eml` ready messages, `*.json` compose requests, taken in name order), or a
    /// JSON Lines manifest: one compose request per line, or `{"eml": "path"}` (relative to the manifest).
    #[arg(required_unless_present = "drain")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub trust: crate::whitelist::TrustArgs,
    /// Product reference (NIL), written in X-MSS-NIL of composed items (needed for compose requests).
    #[arg(long, env = "MSS_NIL", value_name = "REF")]
    pub nil: Option<String>,
    /// The outbox: a `postgresql://` URL (a queue shared by several workers) or a SQLite file, else
    /// <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// SMTP sessions opened in parallel towards the operator.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub connections: u16,
    /// At most this many messages per second (default: no limit).
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Ask for delivery status notifications (DSN: success, failure, delay; headers only) for every item;
    /// a compose request also asks in its own `receipts.dsn`. `mss receipts` then moves the recipients
    /// to delivered.
    #[arg(long)]
    pub dsn: bool,
    /// This worker's name, unique among the workers sharing the outbox; a restarted worker of the same name
    /// takes its unfinished leases back at once, and a run under a name a live run holds accepts its items,
    /// then waits for it. Default: the host name.
    #[arg(long, value_name = "NAME")]
    pub worker: Option<String>,
    /// How long a worker holds what it is sending: after a crash, another worker takes over after this.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub lease_secs: u64,
    /// Only put the items in the outbox (another worker, or `mss serve`, delivers them).
    #[arg(long, conflicts_with = "drain")]
    pub no_send: bool,
    /// No input: deliver what the outbox holds for --from (a worker of a queue shared with others), then exit.
    #[arg(long, conflicts_with = "input")]
    pub drain: bool,
    /// One pass: send what is due now, then exit, reporting what waits for a retry (exit code 1 if any)
    /// instead of waiting for it.
    #[arg(long)]
    pub once: bool,
}

/// `mss receipts`: read the delivery and read receipts that came back to the mailbox.
#[derive(Debug, Args)]
pub struct ReceiptsArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The outbox: a `postgresql://` URL, else <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL")]
    pub outbox: Option<String>,
    /// The mailbox the receipts arrive in.
    #[arg(long, default_value = "INBOX", value_name = "NAME")]
    pub mailbox: String,
    /// Keep reading as receipts arrive (IMAP IDLE) until interrupted.
    #[arg(long)]
    pub watch: bool,
}

pub fn batch(data_dir: &Path, args: BatchArgs) -> Result<()> {
    let items = match &args.input {
        Some(input) => {
            let items = prepare::read_items(input, args.dsn)?;
            if items.is_empty() {
                bail!("{}: no items (*.eml, *.json)", input.display());
            }
            items
        }
        None => Vec::new(),
    };
    let mailbox = crate::lps::mailbox(&args.connect)?;
    let from = args.connect.from.clone();
    // a reference to the credentials, never the credentials
    let auth_ref = match &args.connect.cert {
        Some(p12) => format!(
            "cert:{}",
            p12.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        None => format!("token:{from}"),
    };
    let trust = args.trust.trust(data_dir)?;
    let compose = args.nil.as_deref().map(|nil| {
        let mut c = ComposeConfig::new(nil);
        c.trust = trust.clone();
        c
    });
    let batch_id = args
        .input
        .as_ref()
        .map(|input| prepare::input_batch_id(&from, input));
    let scope = match &batch_id {
        Some(id) => Scope::Batch(id.clone()),
        None => Scope::Sender(from.to_string()),
    };

    let rt = crate::runtime::multi_thread(Some(2))?;
    rt.block_on(async move {
        let store = mss_outbox::open_store(data_dir, args.outbox.as_deref()).await?;
        let worker_name = args
            .worker
            .clone()
            .unwrap_or_else(mss_outbox::default_worker_name);
        let mut set = WorkerSet::new(
            format!("batch:{worker_name}:{from}"),
            from.to_string(),
            args.connections,
            args.rate,
        );
        set.worker.stop_when_idle = true;
        set.worker.one_pass = args.once;
        set.worker.lease = Duration::from_secs(args.lease_secs.max(1));
        set.worker.lease_size = 16;
        let sending = Sending {
            store: Arc::clone(&store),
            mailbox,
            set,
            scope: scope.clone(),
        };
        let bar = progress_bar();
        // Sending starts with the first accepted chunk, while the rest is being accepted.
        let (accepting_tx, accepting_rx) = tokio::sync::watch::channel(batch_id.is_some());
        let mut running = None;
        if batch_id.is_none() && !args.no_send {
            let hold = sending.wait_for_name().await?;
            running = Some(sending.start(hold, &bar, accepting_rx.clone()).await?);
        }
        let mut bad = 0usize;
        let mut accepted = Ok(());
        if let Some(batch_id) = &batch_id {
            let origin = Origin {
                sender: &from,
                auth_ref: &auth_ref,
                compose: compose.as_ref(),
                trust: &trust,
                owner: None,
            };
            let mut acceptance = Acceptance::new(store.as_ref(), batch_id, &items, origin);
            let refused = |item: &prepare::Item, e: &mss_outbox::Error| {
                let reason = match e {
                    mss_outbox::Error::Unconfigured { .. } => {
                        "compose requests need --nil (or MSS_NIL)".to_owned()
                    }
                    mss_outbox::Error::Invalid { field, reason }
                    | mss_outbox::Error::Refused { field, reason } => format!("{field}: {reason}"),
                    other => other.to_string(),
                };
                bar.suspend(|| eprintln!("mss: {}: refused: {reason}", item.label));
            };
            while let Some(chunk) = acceptance.next_chunk(refused).await {
                if let Err(e) = chunk {
                    accepted = Err(e);
                    break;
                }
                if running.is_none() && !args.no_send {
                    // the name held by another run: accept everything first, then wait for it
                    let started = match store.hold_worker_name(&sending.set.name).await {
                        Ok(Some(hold)) => sending
                            .start(hold, &bar, accepting_rx.clone())
                            .await
                            .map(Some),
                        Ok(None) => Ok(None),
                        Err(e) => Err(e),
                    };
                    match started {
                        Ok(r) => running = r,
                        Err(e) => {
                            accepted = Err(e);
                            break;
                        }
                    }
                }
            }
            let counts = acceptance.counts();
            bad = counts.refused;
            bar.suspend(|| {
                eprintln!(
                    "mss: batch {batch_id}: {} new item(s) in the outbox, {} already there{}",
                    counts.new,
                    counts.known,
                    if bad > 0 {
                        format!(", {bad} refused")
                    } else {
                        String::new()
                    }
                )
            });
        }
        let _ = accepting_tx.send(false);
        if running.is_none() && !args.no_send && batch_id.is_some() && accepted.is_ok() {
            let hold = sending.wait_for_name().await?;
            running = Some(sending.start(hold, &bar, accepting_rx.clone()).await?);
        }
        let Some(running) = running else {
            accepted?;
            return finish(store.as_ref(), &scope, bad, None, false).await;
        };
        if accepted.is_err() {
            // what is in flight is finished or given back before the error is told
            running.stop.send_replace(true);
        }
        let paused = running.wait(bar).await;
        accepted?;
        finish(store.as_ref(), &scope, bad, paused?, args.once).await
    })
}

/// What sending a batch needs: the outbox, the mailbox, the worker loops.
struct Sending {
    store: Arc<dyn Store>,
    mailbox: mss_lps::MailboxConfig,
    set: WorkerSet,
    scope: Scope,
}

/// The workers of a run, their worker name, and its progress bar.
struct Running {
    _hold: WorkerNameHold,
    runs: tokio::task::JoinSet<mss_outbox::Result<RunReport>>,
    progress: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Sending {
    /// The worker name, held by one live process at a time: a run overlapping an earlier one under the same
    /// name (a cron job) waits for it rather than take the leases it is sending.
    async fn wait_for_name(&self) -> mss_outbox::Result<WorkerNameHold> {
        supervisor::hold(self.store.as_ref(), &self.set.name, NameBusy::Wait, || {
            eprintln!(
                "mss: another process is sending as worker {:?} on this outbox; waiting for it to \
                 finish (or give --worker a name of its own)",
                self.set.name
            )
        })
        .await
    }

    /// Starts one worker per connection, the progress bar and the Ctrl-C handler.
    async fn start(
        &self,
        hold: WorkerNameHold,
        bar: &ProgressBar,
        accepting: tokio::sync::watch::Receiver<bool>,
    ) -> mss_outbox::Result<Running> {
        let from = &self.set.sender;
        // new credentials were given: a mailbox paused for refused credentials goes again
        if self.store.resume(from).await? {
            bar.suspend(|| {
                eprintln!("mss: {from} was paused; resuming with the credentials given")
            });
        }
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let interrupt = stop.clone();
        let ctrl_c_bar = bar.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                ctrl_c_bar.suspend(|| {
                    eprintln!(
                        "mss: interrupted: giving back what is in flight (run again to go on)"
                    )
                });
                let _ = interrupt.send(true);
            }
        });
        let mut set = self.set.clone();
        set.worker.accepting = Some(accepting);
        // a worker of this name that died left leases: they are ours (this process holds the name)
        set.take_back(self.store.as_ref(), &hold).await?;
        let mut runs = tokio::task::JoinSet::new();
        set.spawn(&self.store, &hold, &self.mailbox, &stop_rx, &mut runs)?;
        let progress = tokio::spawn(show_progress(
            Arc::clone(&self.store),
            self.scope.clone(),
            bar.clone(),
        ));
        Ok(Running {
            _hold: hold,
            runs,
            progress,
            stop,
        })
    }
}

impl Running {
    /// Waits for every worker; the reason the mailbox was paused, if it was.
    async fn wait(self, bar: ProgressBar) -> Result<Option<String>> {
        let mut paused = None;
        let mut failure = None;
        let mut runs = self.runs;
        while let Some(r) = runs.join_next().await {
            match r.context("worker task").and_then(|r| Ok(r?)) {
                Ok(report) => paused = paused.or(report.paused),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        self.progress.abort();
        let _ = self.progress.await;
        bar.finish_and_clear();
        match failure {
            Some(e) => Err(e),
            None => Ok(paused),
        }
    }
}

/// `mss batch --drain --once` for `connect.from`: what the outbox holds for that mailbox is sent now (an MDN
/// `mss inbox ack` queued, say), then the sender's counts are printed.
pub fn drain(data_dir: &Path, connect: ConnectArgs, outbox: Option<String>) -> Result<()> {
    batch(
        data_dir,
        BatchArgs {
            input: None,
            connect,
            trust: crate::whitelist::TrustArgs::default(),
            nil: None,
            outbox,
            connections: 1,
            rate: None,
            dsn: false,
            worker: None,
            lease_secs: 120,
            no_send: false,
            drain: true,
            once: true,
        },
    )
}

/// What a run reports on: the batch it was given, or everything of its sender (`--drain`).
#[derive(Debug, Clone)]
enum Scope {
    Batch(String),
    Sender(String),
}

impl Scope {
    async fn counts(&self, store: &dyn Store) -> Result<(Counts, Option<u64>)> {
        Ok(match self {
            Scope::Batch(id) => {
                let Some(b) = store.batch(id, 0, 0).await? else {
                    bail!("batch {id} not found in the outbox");
                };
                (b.counts, Some(b.messages))
            }
            Scope::Sender(s) => (store.counts(Some(s)).await?, None),
        })
    }
}

fn progress_bar() -> ProgressBar {
    crate::progress::bar(false, Some(0), "{bar:30} {pos}/{len} sent  {msg}")
}

async fn show_progress(store: Arc<dyn Store>, scope: Scope, bar: ProgressBar) {
    let start = Instant::now();
    let mut first: Option<u64> = None;
    loop {
        if let Ok((c, _)) = scope.counts(store.as_ref()).await {
            let done = c.accepted();
            let base = *first.get_or_insert(done);
            let rate = (done - base.min(done)) as f64 / start.elapsed().as_secs_f64().max(0.001);
            let left = c.pending();
            let eta = if rate > 0.0 {
                format!("{:.0}s", left as f64 / rate)
            } else {
                "-".into()
            };
            bar.set_length(c.total());
            bar.set_position(done);
            bar.set_message(format!(
                "deferred {}  failed {}  {rate:.1}/s  ETA {eta}",
                c.deferred, c.failed
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn finish(
    store: &dyn Store,
    scope: &Scope,
    bad: usize,
    paused: Option<String>,
    once: bool,
) -> Result<()> {
    let (c, messages) = scope.counts(store).await?;
    let head = match (scope, messages) {
        (Scope::Batch(id), Some(n)) => format!("batch {id}: {n} message(s)"),
        (Scope::Sender(s), _) | (Scope::Batch(s), None) => format!("outbox of {s}"),
    };
    print_counts(&head, &c);
    if let Scope::Batch(batch_id) = scope {
        for (state, n) in [(State::Failed, c.failed), (State::Deferred, c.deferred)] {
            if n > 0 {
                list(store, batch_id, state).await?;
            }
        }
    }
    if let Some(reason) = paused {
        bail!(
            "the mailbox is paused: {reason}; run again with a new token or certificate to send the rest"
        );
    }
    if c.failed > 0 || bad > 0 {
        bail!("{} recipient(s) failed, {bad} item(s) refused", c.failed);
    }
    if c.cancelled > 0 {
        bail!("{} recipient(s) cancelled by hand", c.cancelled);
    }
    if once && c.pending() > 0 {
        bail!(
            "{} recipient(s) wait for a retry; run again to send them",
            c.pending()
        );
    }
    Ok(())
}

/// Prints the first 20 recipients of the batch in `state`, with why.
async fn list(store: &dyn Store, batch_id: &str, state: State) -> Result<()> {
    let mut shown = 0;
    let mut offset = 0;
    loop {
        let page = store
            .batch(batch_id, offset, 500)
            .await?
            .map(|b| b.items)
            .unwrap_or_default();
        if page.is_empty() {
            return Ok(());
        }
        offset += page.len() as u64;
        for m in page {
            for r in m.recipients.iter().filter(|r| r.state == state) {
                let when = match r.retry_at_ms {
                    Some(t) => format!(" (retry in {}s)", (t - store.now_ms()).max(0) / 1000),
                    None => String::new(),
                };
                println!(
                    "{state} {} -> {}{when}: {}",
                    m.label,
                    r.address,
                    r.reason.as_deref().unwrap_or("")
                );
                shown += 1;
                if shown == 20 {
                    return Ok(());
                }
            }
        }
    }
}

/// `mss receipts`: one reading of the mailbox (or, with --watch, until interrupted), then the sender's
/// counts.
pub fn receipts(data_dir: &Path, args: ReceiptsArgs) -> Result<()> {
    let mailbox = crate::lps::mailbox(&args.connect)?;
    let from = args.connect.from.to_string();
    let rt = crate::runtime::current_thread()?;
    rt.block_on(async move {
        let store = mss_outbox::open_store(data_dir, args.outbox.as_deref()).await?;
        let client = Arc::new(LpsClient::new(mailbox)?);
        // the mailbox's one reader, for reports only: the rest is left on the server
        let cfg = ReaderConfig {
            folder: args.mailbox.clone(),
            receive: false,
            receipts: true,
            ..ReaderConfig::default()
        };
        let r = if args.watch {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    let _ = stop_tx.send(true);
                }
            });
            reader::watch(Arc::clone(&store), client, cfg, stop_rx)
                .await?
                .receipts
        } else {
            let r = reader::sync(store.as_ref(), &client, &cfg).await;
            client.close().await;
            r?.receipts
        };
        println!(
            "receipts: {} report(s) read: {} delivered, {} read, {} failed, {} unchanged",
            r.reports, r.delivered, r.read, r.failed, r.unchanged
        );
        let c = store.counts(Some(&from)).await?;
        print_counts(&format!("outbox of {from}"), &c);
        Ok(())
    })
}

/// One line of recipient counts, as `mss batch` and `mss receipts` print them.
fn print_counts(head: &str, c: &Counts) {
    // cancelled ones (by hand, from the ops console) only when there are: the usual line stays as it was
    let cancelled = if c.cancelled > 0 {
        format!(", {} cancelled", c.cancelled)
    } else {
        String::new()
    };
    println!(
        "{head}, recipients: {} sent, {} delivered, {} read, {} deferred, {} queued, {} failed{cancelled}",
        c.sent,
        c.delivered,
        c.read,
        c.deferred,
        c.queued + c.sending,
        c.failed
    );
}
