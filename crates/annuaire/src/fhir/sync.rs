//! Full and delta synchronisation of the FHIR API into a [`HarvestSink`] (the index).
//!
//! A **full** sync reads every resource carrying a mailbox (`mailbox-mss:contains=@`): Practitioners,
//! then Organizations, then PractitionerRoles with their practitioner and organization included, so that
//! the most complete form of a box (the role's) is written last. The caller then removes the FHIR entries
//! it did not see ([`SyncReport::seen`]).
//!
//! A **delta** reads what changed since a time (`_lastUpdated=ge…`, at most 30 days back): changed
//! Practitioners, Organizations and roles (with or without boxes: a changed one may have lost them all),
//! then the roles of the changed Practitioners and Organizations (their boxes carry the person's name and
//! the structure's address), 20 references per query. Red-listed boxes are removed; a deactivated
//! resource (`active=false`; for a role, also its practitioner or organization) withdraws its boxes.
//!
//! Every FHIR entry records the resources that publish it ([`Entry::published_by`]). A resource a delta
//! re-reads is read whole, so the boxes it publishes now are known ([`SyncReport::carried`]); once the
//! delta is complete, [`reconcile`] takes it off the entries it no longer carries, and an entry that no
//! resource publishes any more leaves the index. A full sync rebuilds `published_by` from what it reads.
//!
//! The work is a queue of searches; each page is applied, and every few seconds the sink commits and a
//! state file records the queue and the `next` link reached (with, beside it, the addresses seen), so that
//! an interrupted sync resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::client::{FhirClient, Page, Search};
use super::mapping::Change;
use super::resources::Resource;
use crate::model::{Entry, MailAddress, Source, Structure};
use crate::sink::HarvestSink;
use crate::{Error, Result};

/// References per follow-up query of a delta.
const REFS_PER_QUERY: usize = 20;

/// The boxes each resource a delta re-read publishes now (none for a deactivated one), by `Type/id`.
pub type Carried = BTreeMap<String, BTreeSet<MailAddress>>;

/// What to synchronise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every resource carrying a mailbox.
    Full,
    /// What changed since this FHIR instant (`_lastUpdated=ge…`).
    Delta {
        /// e.g. `2026-11-20T08:00:00Z`.
        since: String,
    },
}

/// How to synchronise.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Full or delta.
    pub mode: Mode,
    /// When this sync started (FHIR instant): the next delta's `since`. A resumed sync keeps the first.
    pub started_at: String,
    /// Progress file for resuming (addresses seen in `<file>.seen`); none: no resuming.
    pub state_file: Option<PathBuf>,
    /// Stop (resumably) after this many pages in this run.
    pub max_pages: Option<u64>,
    /// How often the sink commits and the state file is written.
    pub checkpoint_every: Duration,
}

impl SyncOptions {
    /// Options for `mode`, starting now.
    pub fn new(mode: Mode, started_at: String) -> Self {
        SyncOptions {
            mode,
            started_at,
            state_file: None,
            max_pages: None,
            checkpoint_every: Duration::from_secs(2),
        }
    }
}

/// Where a sync stands (given to the progress callback after every page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// The search under way (`Practitioner?...`).
    pub search: String,
    /// Its `Bundle.total`, when the server gave it.
    pub total: Option<u64>,
    /// Pages read (all runs).
    pub pages: u64,
    /// Resources read (all runs).
    pub resources: u64,
    /// Entries written (all runs).
    pub upserted: u64,
    /// Entries removed (all runs).
    pub removed: u64,
    /// Searches left after this one.
    pub queued: usize,
}

/// Why a sync stopped before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStopped {
    /// The stop signal came.
    Interrupted,
    /// [`SyncOptions::max_pages`] was reached.
    MaxPages,
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Every search was read to its last page.
    pub complete: bool,
    /// Set when it stopped early (resumable).
    pub stopped: Option<SyncStopped>,
    /// This run resumed an earlier one.
    pub resumed: bool,
    /// When the sync started (the first run's time for a resumed one).
    pub started_at: String,
    /// Requests sent in this run (retries included).
    pub requests: u64,
    /// Pages read (all runs).
    pub pages: u64,
    /// Resources read (all runs).
    pub resources: u64,
    /// Entries written (all runs).
    pub upserted: u64,
    /// Entries removed: red-listed or deactivated (all runs).
    pub removed: u64,
    /// Mailboxes that could not be read (all runs), and the first few reasons.
    pub rejected: u64,
    /// `Practitioner/1: telecom "x": ...`, at most 20.
    pub rejected_examples: Vec<String>,
    /// Full sync: every address written (all runs): what the API publishes when `complete`.
    pub seen: HashSet<MailAddress>,
    /// Delta: the boxes each resource re-read publishes now (all runs), for [`reconcile`].
    pub carried: Carried,
    /// Time this run took.
    pub elapsed: Duration,
}

/// The resumable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    base: String,
    mode: Mode,
    started_at: String,
    /// Searches not finished; the first is under way.
    queue: VecDeque<Search>,
    /// The next page of the first search (none: its first page).
    next: Option<String>,
    pages: u64,
    resources: u64,
    upserted: u64,
    removed: u64,
    rejected: u64,
    /// Delta: the boxes of each resource read so far.
    #[serde(default)]
    carried: Carried,
}

/// The searches of a sync, in order.
fn searches(mode: &Mode) -> VecDeque<Search> {
    let with_box = |r: &str| Search::new(r).param("mailbox-mss:contains", "@");
    let role = |s: Search| {
        s.param("_include", "PractitionerRole:practitioner")
            .param("_include", "PractitionerRole:organization")
    };
    match mode {
        Mode::Full => [
            with_box("Practitioner"),
            with_box("Organization"),
            role(with_box("PractitionerRole")),
        ]
        .into(),
        Mode::Delta { since } => {
            let ge = format!("ge{since}");
            [
                Search::new("Practitioner").param("_lastUpdated", &ge),
                Search::new("Organization").param("_lastUpdated", &ge),
                // without `mailbox-mss`: a role that lost its last box must be read too
                role(Search::new("PractitionerRole").param("_lastUpdated", &ge)),
            ]
            .into()
        }
    }
}

/// The state file of an interrupted sync: its base URL and mode.
pub fn pending(state_file: &Path) -> Result<Option<(String, Mode)>> {
    Ok(load_state(state_file)?.map(|s| (s.base, s.mode)))
}

/// Forgets an interrupted sync (its state and seen files).
pub fn forget_state(state_file: &Path) -> Result<()> {
    for p in [state_file.to_path_buf(), seen_path(state_file)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", p.display()), e)),
        }
    }
    Ok(())
}

fn seen_path(state_file: &Path) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".seen");
    PathBuf::from(name)
}

fn load_state(path: &Path) -> Result<Option<State>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::FhirConfig(format!(
            "state file {} does not read ({e}): remove it (or --restart) to start over",
            path.display()
        ))
    })
}

fn save_state(path: &Path, state: &State) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        serde_json::to_writer(&mut f, state)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn load_seen(path: &Path) -> Result<HashSet<MailAddress>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mut seen = HashSet::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        // a line cut by a crash is not an address: skipped (its page is read again anyway)
        if let Ok(a) = MailAddress::parse(&line) {
            seen.insert(a);
        }
    }
    Ok(seen)
}

/// Synchronises `client`'s directory into `sink`. Returns when done, at `stop`, at
/// [`SyncOptions::max_pages`], or on an error (after committing what was applied and saving the state).
pub async fn sync<S: HarvestSink>(
    client: &FhirClient,
    options: &SyncOptions,
    sink: &mut S,
    mut progress: impl FnMut(&SyncProgress),
    stop: impl Future<Output = ()>,
) -> Result<SyncReport, S::Error> {
    let began = Instant::now();
    let requests_before = client.requests();
    let base = client.config().base.clone();
    let mut resumed = false;
    let mut state = match options.state_file.as_deref().map(load_state).transpose()? {
        Some(Some(s)) => {
            if s.base != base || s.mode != options.mode {
                return Err(Error::FhirConfig(format!(
                    "an interrupted {} sync of {} is pending: run it again to resume it, or start over with --restart",
                    describe(&s.mode),
                    s.base
                ))
                .into());
            }
            resumed = true;
            s
        }
        _ => State {
            base: base.clone(),
            mode: options.mode.clone(),
            started_at: options.started_at.clone(),
            queue: searches(&options.mode),
            next: None,
            pages: 0,
            resources: 0,
            upserted: 0,
            removed: 0,
            rejected: 0,
            carried: Carried::new(),
        },
    };
    let full = state.mode == Mode::Full;
    let seen_file = options.state_file.as_deref().map(seen_path);
    let mut report = SyncReport {
        resumed,
        started_at: state.started_at.clone(),
        ..SyncReport::default()
    };
    if resumed && let Some(p) = &seen_file {
        report.seen = load_seen(p)?;
    }
    let mut seen_log = match &seen_file {
        Some(p) if full => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
            Some(BufWriter::new(f))
        }
        _ => None,
    };
    let mut unsaved: Vec<MailAddress> = Vec::new();
    let mut last_checkpoint = Instant::now();
    let mut commit_cost = Duration::ZERO;
    let mut pages_this_run = 0u64;
    let mut stop = std::pin::pin!(stop);

    let outcome: Result<Option<SyncStopped>, S::Error> = async {
        while let Some(search) = state.queue.front().cloned() {
            if options.max_pages.is_some_and(|m| pages_this_run >= m) {
                return Ok(Some(SyncStopped::MaxPages));
            }
            let fetch = async {
                match &state.next {
                    Some(url) => client.next_page(url, &search).await,
                    None => client.first_page(&search).await,
                }
            };
            let page: Page = tokio::select! {
                biased;
                () = &mut stop => return Ok(Some(SyncStopped::Interrupted)),
                page = fetch => page?,
            };
            pages_this_run += 1;
            state.pages += 1;
            state.resources += page.matches.len() as u64;
            if !full {
                follow_ups(&page, &mut state.queue);
            }
            let mut changes = Vec::new();
            for p in page.published() {
                if !full && let Some(r) = &p.resource {
                    state.carried.insert(r.clone(), p.carried().cloned().collect());
                }
                changes.extend(p.changes);
            }
            for change in changes {
                match change {
                    Change::Upsert(mut e) => {
                        // a full sync starts `published_by` afresh at a box's first sighting
                        let fresh = full && !report.seen.contains(&e.address);
                        let partial = e.structure() == Structure::default();
                        let known = if partial || !fresh {
                            sink.current(&e.address)?
                        } else {
                            None
                        };
                        let mut published_by = std::mem::take(&mut e.published_by);
                        if let Some(k) = &known
                            && k.source == Source::Fhir
                            && !fresh
                        {
                            published_by.extend(k.published_by.iter().cloned());
                        }
                        // a Practitioner's box has no structure: keep the one the index knows
                        if partial && let Some(k) = known {
                            e.merge(k);
                        }
                        published_by.sort();
                        published_by.dedup();
                        e.published_by = published_by;
                        sink.upsert(&e)?;
                        state.upserted += 1;
                        if full && report.seen.insert(e.address.clone()) {
                            unsaved.push(e.address);
                        }
                    }
                    Change::Remove(a) => {
                        sink.remove(&a)?;
                        state.removed += 1;
                    }
                    Change::Withdraw { address, resource } => {
                        let Some(mut known) = sink.current(&address)? else {
                            continue;
                        };
                        let elsewhere = known.source == Source::Fhir
                            && known.published_by.iter().any(|r| *r != resource);
                        if !elsewhere {
                            sink.remove(&address)?;
                            state.removed += 1;
                        } else if known.published_by.contains(&resource) {
                            // still published by another resource: it stays
                            known.published_by.retain(|r| *r != resource);
                            sink.upsert(&known)?;
                        }
                    }
                    Change::Rejected { resource, reason } => {
                        tracing::warn!(resource = %resource, reason = %reason, "FHIR mailbox skipped");
                        state.rejected += 1;
                        if report.rejected_examples.len() < 20 {
                            report.rejected_examples.push(format!("{resource}: {reason}"));
                        }
                    }
                }
            }
            state.next = page.next.clone();
            if state.next.is_none() {
                state.queue.pop_front();
            }
            progress(&SyncProgress {
                search: search.describe(),
                total: page.total,
                pages: state.pages,
                resources: state.resources,
                upserted: state.upserted,
                removed: state.removed,
                queued: state.queue.len().saturating_sub(1),
            });
            // a commit costs more as the index grows: space them so that they take at most a fifth
            // of the time
            if last_checkpoint.elapsed() >= options.checkpoint_every.max(commit_cost * 4) {
                let began = Instant::now();
                checkpoint(sink, options, &state, &mut seen_log, &mut unsaved)?;
                commit_cost = began.elapsed();
                last_checkpoint = Instant::now();
            }
        }
        Ok(None)
    }
    .await;

    // what was applied is kept, whatever stopped the loop
    let saved = checkpoint(sink, options, &state, &mut seen_log, &mut unsaved);
    let stopped = outcome?;
    saved?;
    report.stopped = stopped;
    report.complete = state.queue.is_empty();
    if report.complete
        && let Some(path) = &options.state_file
    {
        forget_state(path)?;
    }
    report.requests = client.requests() - requests_before;
    report.pages = state.pages;
    report.resources = state.resources;
    report.upserted = state.upserted;
    report.removed = state.removed;
    report.rejected = state.rejected;
    report.carried = state.carried;
    report.elapsed = began.elapsed();
    Ok(report)
}

/// What the end of a delta does to an entry of the index (see [`reconcile`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// Nothing.
    Unchanged,
    /// Fewer resources publish it: the entry with its `published_by` narrowed.
    Narrowed(Box<Entry>),
    /// No resource publishes it any more: it leaves the index.
    Removed,
}

/// A delta re-read the resources of `carried` whole: each of them that is in `entry`'s `published_by`
/// but no longer carries its box is taken off; with none left, the entry goes. Entries of other sources,
/// and FHIR entries written before `published_by` existed, are left alone (a full sync settles them).
pub fn reconcile(entry: &Entry, carried: &Carried) -> Reconciled {
    if entry.source != Source::Fhir || entry.published_by.is_empty() {
        return Reconciled::Unchanged;
    }
    let still: Vec<String> = entry
        .published_by
        .iter()
        .filter(|r| {
            carried
                .get(*r)
                .is_none_or(|boxes| boxes.contains(&entry.address))
        })
        .cloned()
        .collect();
    if still.len() == entry.published_by.len() {
        Reconciled::Unchanged
    } else if still.is_empty() {
        Reconciled::Removed
    } else {
        let mut narrowed = entry.clone();
        narrowed.published_by = still;
        Reconciled::Narrowed(Box::new(narrowed))
    }
}

fn describe(mode: &Mode) -> String {
    match mode {
        Mode::Full => "full".into(),
        Mode::Delta { since } => format!("delta (since {since})"),
    }
}

/// Delta: the roles of changed Practitioners and Organizations (their boxes carry the person's name
/// and the structure's address), queued after the searches already known.
fn follow_ups(page: &Page, queue: &mut VecDeque<Search>) {
    let mut practitioners = Vec::new();
    let mut organizations = Vec::new();
    for r in &page.matches {
        match r {
            Resource::Practitioner(p) => practitioners.extend(p.id.clone()),
            Resource::Organization(o) => organizations.extend(o.id.clone()),
            _ => {}
        }
    }
    for (param, ty, ids) in [
        ("practitioner", "Practitioner", practitioners),
        ("organization", "Organization", organizations),
    ] {
        for chunk in ids.chunks(REFS_PER_QUERY) {
            let refs: Vec<String> = chunk.iter().map(|id| format!("{ty}/{id}")).collect();
            queue.push_back(
                Search::new("PractitionerRole")
                    .param(param, refs.join(","))
                    .param("mailbox-mss:contains", "@")
                    .param("_include", "PractitionerRole:practitioner")
                    .param("_include", "PractitionerRole:organization"),
            );
        }
    }
}

fn checkpoint<S: HarvestSink>(
    sink: &mut S,
    options: &SyncOptions,
    state: &State,
    seen_log: &mut Option<BufWriter<File>>,
    unsaved: &mut Vec<MailAddress>,
) -> Result<(), S::Error> {
    sink.commit()?;
    let Some(path) = &options.state_file else {
        unsaved.clear();
        return Ok(());
    };
    if let Some(log) = seen_log {
        let mut write = || -> std::io::Result<()> {
            for a in unsaved.iter() {
                writeln!(log, "{a}")?;
            }
            log.flush()?;
            log.get_ref().sync_data()
        };
        write().map_err(|e| Error::io(format!("writing {}", seen_path(path).display()), e))?;
    }
    unsaved.clear();
    save_state(path, state)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BalType;

    fn entry(address: &str, source: Source, published_by: &[&str]) -> Entry {
        let mut e = Entry::new(MailAddress::parse(address).unwrap(), BalType::Per, source);
        e.published_by = published_by.iter().map(|r| r.to_string()).collect();
        e
    }

    fn carried(pairs: &[(&str, &[&str])]) -> Carried {
        pairs
            .iter()
            .map(|(r, boxes)| {
                let boxes = boxes.iter().map(|b| MailAddress::parse(b).unwrap());
                (r.to_string(), boxes.collect())
            })
            .collect()
    }

    #[test]
    fn reconcile_takes_off_only_the_resources_that_dropped_the_box() {
        let re_read = carried(&[
            ("Practitioner/p1", &["a@x.fr"]),
            ("Practitioner/p2", &[]),
            ("PractitionerRole/r1", &["b@x.fr"]),
        ]);
        // still carried by the resource re-read, or published by resources not re-read
        for e in [
            entry("a@x.fr", Source::Fhir, &["Practitioner/p1"]),
            entry("c@x.fr", Source::Fhir, &["Organization/o9"]),
            // written before `published_by`, or by another source: left alone
            entry("d@x.fr", Source::Fhir, &[]),
            entry("e@x.fr", Source::Extraction, &[]),
        ] {
            assert_eq!(reconcile(&e, &re_read), Reconciled::Unchanged, "{e:?}");
        }
        // dropped by its only resource (still active, or deactivated: nothing carried)
        for e in [
            entry("x@x.fr", Source::Fhir, &["Practitioner/p1"]),
            entry("y@x.fr", Source::Fhir, &["Practitioner/p2"]),
            entry(
                "b2@x.fr",
                Source::Fhir,
                &["Practitioner/p2", "PractitionerRole/r1"],
            ),
        ] {
            assert_eq!(reconcile(&e, &re_read), Reconciled::Removed, "{e:?}");
        }
        // dropped by one, still published by another
        let shared = entry(
            "b@x.fr",
            Source::Fhir,
            &["Practitioner/p2", "PractitionerRole/r1"],
        );
        assert_eq!(
            reconcile(&shared, &re_read),
            Reconciled::Narrowed(Box::new(entry(
                "b@x.fr",
                Source::Fhir,
                &["PractitionerRole/r1"]
            )))
        );
        let other = entry(
            "z@x.fr",
            Source::Fhir,
            &["Practitioner/p1", "Organization/o9"],
        );
        assert_eq!(
            reconcile(&other, &re_read),
            Reconciled::Narrowed(Box::new(entry(
                "z@x.fr",
                Source::Fhir,
                &["Organization/o9"]
            )))
        );
    }
}
