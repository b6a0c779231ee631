//! Delivery: a worker leases recipients from the [`Store`], sends each message over one reused authenticated
//! connection ([`LpsClient`]) and records the outcome per recipient.
//!
//! - accepted (2xx) -> `sent`, with the server's final reply (queue id);
//! - refused with 5xx -> `failed`, with the reply text;
//! - 4xx, connection lost, timeout, server down -> `deferred` with exponential backoff and jitter, `failed`
//!   after [`Backoff::max_attempts`];
//! - credentials refused (expired token, certificate rejected, PSC session ended) -> the sender is paused
//!   with the reason and its recipients go back to the queue; they stay there until [`Store::resume`].

use std::sync::Arc;
use std::time::Duration;

use mss_lps::LpsClient;
use mss_lps::smtp::{RecipientResult, SmtpReply};
use mss_types::MailAddress;
use rand::Rng;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::time::Instant;

use crate::model::{LeasedMessage, LeasedRecipient, Outcome};
use crate::overview::{ConnectionLog, Endpoint};
use crate::{Error, Result, Store};

/// Retry schedule of transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Attempts after which a recipient fails for good.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 30 s, doubling up to one hour, 25 attempts (about a day, like an MTA's queue lifetime).
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            max_attempts: 25,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1`: `base * 2^(attempt-1)`, capped, then drawn uniformly in its
    /// upper half ("equal jitter": spread out, never much shorter than the schedule).
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exp = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        let full = self.base.saturating_mul(exp).min(self.max);
        let half = full / 2;
        half + half.mul_f64(rng.random::<f64>())
    }
}

/// Limits towards one operator, shared by every worker loop of this process that talks to it.
#[derive(Debug)]
pub struct OperatorLimits {
    connections: Arc<Semaphore>,
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl OperatorLimits {
    /// At most `connections` sessions at once and, when given, `per_second` messages per second.
    pub fn new(connections: usize, per_second: Option<f64>) -> Arc<Self> {
        Arc::new(OperatorLimits {
            connections: Arc::new(Semaphore::new(connections.max(1))),
            interval: per_second
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Mutex::new(Instant::now()),
        })
    }

    /// No limit.
    pub fn unlimited() -> Arc<Self> {
        OperatorLimits::new(Semaphore::MAX_PERMITS, None)
    }

    // A fixed spacing between messages is all the rate limit needs (one slot per message, no bursts), so it
    // is a few lines here rather than a token-bucket crate.
    async fn pace(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// How a worker loop runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique among the workers sharing the store (host and process id, say).
    pub id: String,
    /// Only this sender's messages (a worker holding one mailbox's credentials).
    pub sender: Option<String>,
    /// How long a lease lasts: a worker that dies gives its recipients back after this.
    pub lease: Duration,
    /// Recipients taken per lease.
    pub lease_size: usize,
    /// Pause between polls of an empty queue.
    pub poll: Duration,
    /// Retry schedule.
    pub backoff: Backoff,
    /// Return once nothing is left to send (a batch run), instead of waiting for more (a service).
    pub stop_when_idle: bool,
    /// With `stop_when_idle`: return as soon as nothing is due now, leaving deferred recipients to a later
    /// run instead of waiting for their retry time.
    pub one_pass: bool,
    /// With `stop_when_idle`: while this reads `true`, messages are still being accepted for this run, so
    /// an empty queue is not its end (a batch sends while it accepts).
    pub accepting: Option<watch::Receiver<bool>>,
    /// Where each send's connection outcome is recorded for the ops console (a service's log).
    pub connections: Option<Arc<ConnectionLog>>,
}

impl WorkerConfig {
    /// Defaults for a worker named `id`.
    pub fn new(id: impl Into<String>) -> Self {
        WorkerConfig {
            id: id.into(),
            sender: None,
            lease: Duration::from_secs(120),
            lease_size: 32,
            poll: Duration::from_millis(500),
            backoff: Backoff::default(),
            stop_when_idle: false,
            one_pass: false,
            accepting: None,
            connections: None,
        }
    }
}

/// What one worker loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Recipients sent.
    pub sent: u64,
    /// Recipients deferred (each deferral counted).
    pub deferred: u64,
    /// Recipients failed.
    pub failed: u64,
    /// Why the sender was paused, when it was.
    pub paused: Option<String>,
}

/// Runs one worker loop: one connection (the client's session, reused) to one operator. Ends when
/// `stop` turns true (the leases it holds are given back), or, with [`WorkerConfig::stop_when_idle`], when
/// nothing is left to send for its sender or the sender is paused.
pub async fn run(
    store: Arc<dyn Store>,
    client: Arc<LpsClient>,
    cfg: WorkerConfig,
    limits: Arc<OperatorLimits>,
    mut stop: watch::Receiver<bool>,
) -> Result<RunReport> {
    let _connection = limits
        .connections
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::Store {
            reason: "operator limits closed".into(),
        })?;
    let mut report = RunReport::default();
    let sender = cfg.sender.as_deref();
    let mut store_failures = 0u32;
    // outcomes being committed while the next message is sent
    let mut recording = Recording::default();
    // the next lease, taken while this one is sent: on one SQLite connection shared with acceptance and
    // commits, waiting for it between leases took a tenth of a worker's time
    let mut next: Option<Lease> = None;
    // credentials refused during the previous lease: the lease taken ahead of the pause may hold more of
    // that sender's messages (later leases leave a paused sender out)
    let mut refused_before: Option<(MailAddress, String)> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let leased = match next.take() {
            Some(lease) => lease.wait().await,
            None => {
                store
                    .lease(&cfg.id, sender, cfg.lease_size, cfg.lease)
                    .await
            }
        };
        let leased = match leased {
            Ok(l) => {
                store_failures = 0;
                l
            }
            Err(e) if e.is_transient() && store_failures < 120 => {
                store_failures += 1;
                tracing::warn!(error = %e, "outbox store unavailable; retrying");
                sleep_or_stop(cfg.poll, &mut stop).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if leased.is_empty() {
            // what this worker sent is recorded before it looks whether anything is left
            recording.finish().await?;
            let accepting = cfg.accepting.as_ref().is_some_and(|a| *a.borrow());
            if cfg.stop_when_idle && !accepting {
                if let Some(reason) = paused_reason(store.as_ref(), sender).await? {
                    report.paused = Some(reason);
                    break;
                }
                let c = store.counts(sender).await?;
                if c.queued + c.sending == 0 && (c.deferred == 0 || cfg.one_pass) {
                    break;
                }
            }
            sleep_or_stop(cfg.poll, &mut stop).await;
            continue;
        }
        // a sender whose credentials were refused during this lease: its other messages are not tried (each
        // attempt would be one more refused login, which servers answer by slowing the address down)
        let mut refused: Option<(MailAddress, String)> = None;
        let refused_ahead = refused_before.take();
        let mut renewed = Instant::now();
        // recipients of this lease not recorded yet: exactly the rows this worker should still hold
        let mut held: u64 = leased.iter().map(|m| m.recipients.len() as u64).sum();
        next = Some(Lease::take(&store, &cfg, sender));
        for m in leased {
            if *stop.borrow() {
                // what is left of the lease goes back to the queue with release() below
                break;
            }
            let delivery = match refused.as_ref().or(refused_ahead.as_ref()) {
                Some((sender, reason)) if *sender == m.sender => Delivery {
                    outcomes: m
                        .recipients
                        .iter()
                        .map(|r| {
                            (
                                r.id,
                                Outcome::Deferred {
                                    retry_at: store.now_ms(),
                                    reason: format!("not tried, mailbox paused: {reason}"),
                                },
                            )
                        })
                        .collect(),
                    pause: None,
                },
                _ => {
                    limits.pace().await;
                    // a third of the lease gone (a slow server, a loaded machine): extend what is left, so that
                    // another worker does not take it and send it too. Checked just before sending: a worker that
                    // overslept its lease (a stopped process, a blocked disk or pipe) may find part of it taken by
                    // another worker; it sends none of the rest, which goes back to the queue, rather than send
                    // twice what the other is sending
                    if renewed.elapsed() >= cfg.lease / 3 {
                        // every row this worker holds is counted: the outcomes under way are committed
                        // first, and the lease taken ahead is added (a failed one took nothing)
                        recording.finish().await?;
                        let ahead = match next.take() {
                            Some(lease) => lease.wait().await.unwrap_or_default(),
                            None => Vec::new(),
                        };
                        let held_ahead: u64 = ahead.iter().map(|m| m.recipients.len() as u64).sum();
                        let still = store.renew(&cfg.id, cfg.lease).await?;
                        renewed = Instant::now();
                        if still < held + held_ahead {
                            tracing::warn!(
                                worker = %cfg.id,
                                lost = held + held_ahead - still,
                                "lease expired while this worker was stalled and taken by another worker; \
                                 giving back the rest and leasing again"
                            );
                            // the lease taken ahead goes back with the rest
                            store.release(&cfg.id).await?;
                            break;
                        }
                        next = Some(Lease::ready(ahead));
                    }
                    deliver(
                        &client,
                        &m,
                        &cfg.backoff,
                        store.as_ref(),
                        cfg.connections.as_deref(),
                    )
                    .await
                }
            };
            held = held.saturating_sub(m.recipients.len() as u64);
            if let Some(reason) = &delivery.pause {
                tracing::warn!(sender = %m.sender, reason = %reason, "credentials refused: pausing the mailbox");
                store.pause(m.sender.as_str(), reason).await?;
                report.paused = Some(reason.clone());
                refused = Some((m.sender.clone(), reason.clone()));
            }
            for (_, o) in &delivery.outcomes {
                match o {
                    Outcome::Sent { .. } => report.sent += 1,
                    Outcome::Deferred { .. } => report.deferred += 1,
                    Outcome::Failed { .. } => report.failed += 1,
                }
            }
            recording
                .start(Arc::clone(&store), &cfg.id, delivery.outcomes)
                .await?;
        }
        refused_before = refused;
    }
    recording.finish().await?;
    // a lease taken ahead goes back with the rest
    if let Some(lease) = next.take() {
        let _ = lease.wait().await;
    }
    client.close().await;
    store.release(&cfg.id).await?;
    Ok(report)
}

async fn paused_reason(store: &dyn Store, sender: Option<&str>) -> Result<Option<String>> {
    let Some(sender) = sender else {
        return Ok(None);
    };
    Ok(store
        .paused()
        .await?
        .into_iter()
        .find(|p| p.sender == sender)
        .map(|p| p.reason))
}

/// A lease being taken in the background.
struct Lease(tokio::task::JoinHandle<Result<Vec<LeasedMessage>>>);

impl Lease {
    fn take(store: &Arc<dyn Store>, cfg: &WorkerConfig, sender: Option<&str>) -> Self {
        let (store, worker) = (Arc::clone(store), cfg.id.clone());
        let sender = sender.map(str::to_owned);
        let (max, lease) = (cfg.lease_size, cfg.lease);
        Lease(tokio::spawn(async move {
            store.lease(&worker, sender.as_deref(), max, lease).await
        }))
    }

    /// A lease already taken.
    fn ready(leased: Vec<LeasedMessage>) -> Self {
        Lease(tokio::spawn(async move { Ok(leased) }))
    }

    async fn wait(self) -> Result<Vec<LeasedMessage>> {
        self.0.await.map_err(|e| Error::Store {
            reason: format!("leasing: {e}"),
        })?
    }
}

/// Outcomes being committed in the background: a worker sends its next message while the store commits the
/// last one's outcome, which would otherwise take a quarter of its time (SQLite, 58 KB messages). A lease
/// is not given back, nor the worker's run ended, before its outcomes are committed; on an early return the
/// commits still finish (the tasks are detached, not aborted).
#[derive(Default)]
struct Recording(tokio::task::JoinSet<Result<()>>);

/// Outcome commits a worker lets run while it sends the next message.
const MAX_COMMITS_BEHIND: usize = 1;

impl Recording {
    /// Commits `outcomes` in the background, once the commit before the last one is done; reports the
    /// error of an earlier commit, if one failed. At most one commit runs behind the message being sent:
    /// a worker killed at any moment sends again at most the message it was sending and the one whose
    /// outcome was being committed (with no bound, a slow disk let sent messages pile up uncommitted, each
    /// one sent again after a crash).
    async fn start(
        &mut self,
        store: Arc<dyn Store>,
        worker: &str,
        outcomes: Vec<(i64, Outcome)>,
    ) -> Result<()> {
        while self.0.len() >= MAX_COMMITS_BEHIND {
            if let Some(done) = self.0.join_next().await {
                Self::check(done)?;
            }
        }
        let worker = worker.to_owned();
        self.0
            .spawn(async move { record(store.as_ref(), &worker, &outcomes).await });
        while let Some(done) = self.0.try_join_next() {
            Self::check(done)?;
        }
        Ok(())
    }

    /// Waits for every commit under way.
    async fn finish(&mut self) -> Result<()> {
        while let Some(done) = self.0.join_next().await {
            Self::check(done)?;
        }
        Ok(())
    }

    fn check(done: std::result::Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
        done.map_err(|e| Error::Store {
            reason: format!("recording outcomes: {e}"),
        })?
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.0.detach_all();
    }
}

/// Records, retrying while the store is briefly unavailable (the message is sent: losing its outcome would
/// send it again after the lease expires).
async fn record(store: &dyn Store, worker: &str, outcomes: &[(i64, Outcome)]) -> Result<()> {
    let mut tries = 0;
    loop {
        match store.record(worker, outcomes).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && tries < 60 => {
                tries += 1;
                tracing::warn!(error = %e, "cannot record outcomes yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

/// Outcomes of one message, and the reason to pause its sender if its credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Per leased recipient.
    pub outcomes: Vec<(i64, Outcome)>,
    /// Credentials refused: why.
    pub pause: Option<String>,
}

/// Sends one leased message and decides each recipient's outcome (retry times by the store's clock);
/// how the connection went is recorded in `connections`.
pub async fn deliver(
    client: &LpsClient,
    m: &LeasedMessage,
    backoff: &Backoff,
    store: &dyn Store,
    connections: Option<&ConnectionLog>,
) -> Delivery {
    // the addresses were checked when the store read them: every leased recipient goes
    let result = client.send(&m.envelope(), &m.content).await;
    if let Some(log) = connections {
        log.record(
            m.sender.as_str(),
            Endpoint::Submission,
            store.now_ms(),
            result.as_ref().map(|_| ()),
        );
    }
    // the thread-local generator is not Send: drawn after the await
    let mut rng = rand::rng();
    let mut retry = |attempts: u32, reason: String| -> Outcome {
        if attempts >= backoff.max_attempts {
            Outcome::Failed {
                reason: format!("gave up after {attempts} attempts: {reason}"),
            }
        } else {
            let delay = backoff.delay(attempts, &mut rng);
            Outcome::Deferred {
                retry_at: store
                    .now_ms()
                    .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2)),
                reason,
            }
        }
    };
    // the same decision for every recipient (the message as a whole failed)
    let every = |decide: &mut dyn FnMut(&LeasedRecipient) -> Outcome| -> Vec<(i64, Outcome)> {
        m.recipients.iter().map(|r| (r.id, decide(r))).collect()
    };
    let mut by_reply = |results: &[RecipientResult], data_reply: Option<&SmtpReply>| {
        let mut out = Vec::with_capacity(m.recipients.len());
        for (i, r) in m.recipients.iter().enumerate() {
            let Some(res) = results.get(i) else {
                out.push((
                    r.id,
                    retry(r.attempts, "no answer for this recipient".into()),
                ));
                continue;
            };
            let o = if res.reply.is_positive() {
                Outcome::Sent {
                    reply: data_reply.unwrap_or(&res.reply).to_string(),
                }
            } else if res.reply.is_permanent() {
                Outcome::Failed {
                    reason: res.reply.to_string(),
                }
            } else {
                retry(r.attempts, res.reply.to_string())
            };
            out.push((r.id, o));
        }
        out
    };
    let (outcomes, pause) = match result {
        Ok(report) => (by_reply(&report.recipients, Some(&report.reply)), None),
        Err(mss_lps::Error::RecipientsRefused { results, .. }) => (by_reply(&results, None), None),
        Err(e) if e.needs_credentials() => {
            // not the message's fault: back to the queue, without counting the attempt
            let reason = e.to_string();
            let outcomes = every(&mut |_| Outcome::Deferred {
                retry_at: store.now_ms(),
                reason: format!("mailbox paused: {reason}"),
            });
            (outcomes, Some(reason))
        }
        Err(e) if e.is_permanent() => {
            let reason = e.to_string();
            let outcomes = every(&mut |_| Outcome::Failed {
                reason: reason.clone(),
            });
            (outcomes, None)
        }
        Err(e) => {
            // transient, or unknown: retrying is the safe side
            let reason = e.to_string();
            (every(&mut |r| retry(r.attempts, reason.clone())), None)
        }
    };
    Delivery { outcomes, pause }
}

#[cfg(test)]
mod tests {
    use super::*;

    // tokio's paused clock: the sleeps of the pacing take no time and the elapsed time is exact
    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_messages_evenly_without_bursts() {
        let limits = OperatorLimits::new(2, Some(10.0));
        let start = Instant::now();
        limits.pace().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "the first goes at once");
        for _ in 0..4 {
            limits.pace().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
        // an idle while does not bank slots for a burst afterwards
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle = Instant::now();
        limits.pace().await;
        limits.pace().await;
        assert_eq!(idle.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rate_nothing_waits() {
        let limits = OperatorLimits::unlimited();
        let start = Instant::now();
        for _ in 0..100 {
            limits.pace().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
