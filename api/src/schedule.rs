//! The service's own schedule of the directory sources (`fhir_sync_every`, `ldap_sync_every` of
//! `mss serve`): each scheduled source runs at its interval, one run at a time (the sources take turns
//! at the index's single writer), on a thread of its own
//! (a sync writes the index and reads it whole, which must not hold up the requests). Every run is
//! recorded here, with the next one planned, for `GET /v1/sources`, the console and `/metrics`; a run
//! that fails is logged and tried again at the next one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::AppState;

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Complete: the index holds what the source publishes, and the run is recorded with it.
    Ok,
    /// Stopped before the end (the service stopping, parts the server would not give): progress is saved
    /// and the next run continues; nothing was removed.
    Incomplete,
    /// An error ended it (see `error_kind`, `error`).
    Failed,
}

/// One run of a scheduled source.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    /// When it started (RFC 3339).
    pub started: String,
    /// When it ended (RFC 3339).
    pub finished: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Entries written or removed (none when it failed).
    pub changed: Option<u64>,
    /// What it did, in words (`delta since …: 12 written, 1 removed`).
    pub summary: Option<String>,
    /// Of a failure: `transient` (the network, a timeout, the server busy: the next run may well
    /// succeed), `permanent` (refused, misconfigured: someone must act), `busy` (another writer held the
    /// index) or `index` (the index could not be written).
    pub error_kind: Option<String>,
    /// Of a failure: the error, without secrets.
    pub error: Option<String>,
    /// `finished`, seconds since the epoch (for `/metrics`).
    #[serde(skip)]
    pub(crate) finished_at: f64,
}

/// A scheduled source now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Schedule {
    /// Its interval, seconds.
    pub every_seconds: u64,
    /// A run is under way.
    pub running: bool,
    /// When the next run starts (RFC 3339); none while one runs.
    pub next_run: Option<String>,
    /// The last run since the service started, whatever its outcome.
    pub last_attempt: Option<Attempt>,
    /// The last run that failed since the service started (kept after later successes).
    pub last_error: Option<Attempt>,
    /// Runs since the service started.
    pub runs: u64,
    /// How many of them failed.
    pub failed_runs: u64,
    /// `next_run`, seconds since the epoch (for `/metrics`).
    #[serde(skip)]
    pub(crate) next_at: Option<f64>,
}

/// The schedules of the service's sources, by source name.
#[derive(Debug, Default)]
pub struct SourceRuns {
    by_source: Mutex<BTreeMap<String, Schedule>>,
    /// The index has one writer: the sources' runs take turns (a run that finds a CLI run writing
    /// fails `busy` and is tried again at its next run).
    writing: tokio::sync::Mutex<()>,
}

impl SourceRuns {
    /// The schedule of `source`, if the service runs it.
    pub fn of(&self, source: &str) -> Option<Schedule> {
        self.lock().get(source).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Schedule>> {
        self.by_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, source: &str, every: Duration, f: impl FnOnce(&mut Schedule)) {
        let mut all = self.lock();
        let s = all.entry(source.to_owned()).or_insert_with(|| Schedule {
            every_seconds: every.as_secs(),
            running: false,
            next_run: None,
            last_attempt: None,
            last_error: None,
            runs: 0,
            failed_runs: 0,
            next_at: None,
        });
        f(s);
    }
}

/// What a complete or stopped run did.
#[derive(Debug, Clone)]
pub struct RunDone {
    /// It reached the end.
    pub complete: bool,
    /// Entries written or removed.
    pub changed: u64,
    /// What it did, in words.
    pub summary: String,
}

/// One run of a source: called on a blocking thread with the service's stop signal (a run stops at it,
/// its progress saved).
pub type SourceRun =
    Arc<dyn Fn(watch::Receiver<bool>) -> Result<RunDone, mss_index::Error> + Send + Sync>;

/// Runs `run` every `every` until `stop`: the first run once the index is loaded, at the source's last
/// complete run recorded with the index plus `every` (at once when that is past or there is none), so a
/// restart does not harvest again what was just harvested. A run starting late (the previous one took
/// longer than `every`) starts as soon as the previous one ends: runs never overlap.
pub async fn sync_periodically(
    state: Arc<AppState>,
    source: &'static str,
    every: Duration,
    run: SourceRun,
    mut stop: watch::Receiver<bool>,
) {
    let index = loop {
        if let Some(index) = state.index.get() {
            break index;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    };
    let runs = &state.runs;
    let now = OffsetDateTime::now_utc();
    let mut next = index
        .source_state(source)
        .ok()
        .flatten()
        .as_ref()
        .and_then(source_time)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t as i64).ok())
        .map(|last| last + every)
        .filter(|n| *n > now)
        .unwrap_or(now);
    loop {
        runs.update(source, every, |s| {
            s.running = false;
            s.next_run = Some(rfc3339(next));
            s.next_at = Some(next.unix_timestamp() as f64);
        });
        let wait = (next - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait.unsigned_abs()) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        runs.update(source, every, |s| {
            s.running = true;
            s.next_run = None;
            s.next_at = None;
        });
        let one = Arc::clone(&run);
        let signal = stop.clone();
        let (started, result) = {
            let _turn = tokio::select! {
                turn = runs.writing.lock() => turn,
                _ = stop.wait_for(|s| *s) => return,
            };
            let started = OffsetDateTime::now_utc();
            (
                started,
                tokio::task::spawn_blocking(move || one(signal)).await,
            )
        };
        let finished = OffsetDateTime::now_utc();
        let mut attempt = Attempt {
            started: rfc3339(started),
            finished: rfc3339(finished),
            outcome: Outcome::Failed,
            changed: None,
            summary: None,
            error_kind: None,
            error: None,
            finished_at: finished.unix_timestamp() as f64,
        };
        match result {
            Ok(Ok(done)) => {
                attempt.outcome = if done.complete {
                    Outcome::Ok
                } else {
                    Outcome::Incomplete
                };
                attempt.changed = Some(done.changed);
                if done.complete {
                    tracing::info!(source, summary = %done.summary, "directory source run complete");
                } else {
                    tracing::warn!(source, summary = %done.summary, "directory source run incomplete; the next run continues it");
                }
                attempt.summary = Some(done.summary);
            }
            Ok(Err(e)) => {
                attempt.error_kind = Some(error_kind(&e).to_owned());
                attempt.error = Some(e.to_string());
            }
            Err(e) => {
                attempt.error_kind = Some("index".to_owned());
                attempt.error = Some(format!("the run ended abruptly: {e}"));
            }
        }
        // what the run committed is served now, not at the next periodic reload
        if attempt.changed.is_some_and(|n| n > 0)
            && let Err(e) = index.reload()
        {
            tracing::warn!(source, error = %e, "reloading the index after a run failed; the next reload tries again");
        }
        next = (started + every).max(finished);
        if attempt.outcome == Outcome::Failed {
            tracing::warn!(
                source,
                kind = attempt.error_kind.as_deref().unwrap_or_default(),
                error = attempt.error.as_deref().unwrap_or_default(),
                next_run = %rfc3339(next),
                "directory source run failed; it is tried again at the next run"
            );
        }
        runs.update(source, every, |s| {
            s.runs += 1;
            if attempt.outcome == Outcome::Failed {
                s.failed_runs += 1;
                s.last_error = Some(attempt.clone());
            }
            s.last_attempt = Some(attempt);
        });
    }
}

/// The kind of a run's error, for the ops team: may the next run succeed by itself?
fn error_kind(e: &mss_index::Error) -> &'static str {
    match e {
        mss_index::Error::Annuaire(a) if a.is_transient() => "transient",
        mss_index::Error::Annuaire(_) => "permanent",
        mss_index::Error::Busy { .. } => "busy",
        _ => "index",
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// When a source's recorded run completed (`last_sync`, RFC 3339), in seconds since the epoch.
pub(crate) fn source_time(recorded: &serde_json::Value) -> Option<f64> {
    let text = recorded["last_sync"].as_str()?;
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_take_turns_a_failure_is_recorded_and_retried_and_stop_ends_them() {
        let dir = tempfile::tempdir().unwrap();
        let index = mss_index::DirectoryIndex::open_or_create(dir.path()).unwrap();
        let state = AppState::with_index(index);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let mut tasks = Vec::new();
        for source in ["fhir", "ldap"] {
            let calls = Arc::new(AtomicUsize::new(0));
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            let data_dir = dir.path().to_path_buf();
            let run: SourceRun = Arc::new(move |_stop| {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(30));
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(mss_index::Error::Busy {
                        data_dir: data_dir.clone(),
                    });
                }
                Ok(RunDone {
                    complete: true,
                    changed: 0,
                    summary: "nothing new".into(),
                })
            });
            tasks.push(tokio::spawn(sync_periodically(
                Arc::clone(&state),
                source,
                Duration::from_millis(50),
                run,
                stop.clone(),
            )));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while ["fhir", "ldap"]
            .iter()
            .any(|s| state.runs.of(s).is_none_or(|r| r.runs < 3))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                state.runs.of("fhir")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two runs at once");
        for source in ["fhir", "ldap"] {
            let s = state.runs.of(source).unwrap();
            assert_eq!(s.failed_runs, 1, "{s:?}");
            let failed = s.last_error.as_ref().unwrap();
            assert_eq!(
                (failed.outcome, failed.error_kind.as_deref()),
                (Outcome::Failed, Some("busy"))
            );
            assert!(failed.error.as_deref().unwrap().contains("being written"));
            // the next runs succeeded
            let last = s.last_attempt.as_ref().unwrap();
            assert_eq!(last.outcome, Outcome::Ok, "{s:?}");
            assert_eq!(last.summary.as_deref(), Some("nothing new"));
            assert!(last.error.is_none());
        }
        assert!(state.runs.of("extraction").is_none());
        stop_tx.send(true).unwrap();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("the schedule ends at stop")
                .unwrap();
        }
    }
}
