//! The harvest: every entry of a directory that answers at most N entries per query (docs/mssante.md D2: 100).
//!
//! A query that hits the server's size (or time, or administrative) limit is cut into sub-queries that
//! together cover it exactly, recursively, until each part fits. The cut follows the mapping's
//! dimensions ([`Mapping::split`]; by default: department, then last-name prefix, then display-name
//! prefix, then address prefix), and uses what the over-full answer showed: one sub-query per department
//! (or next letter) seen in the sample, **plus one for everything else**, `(!(|…))` of the seen ones.
//! That last part makes the cover exact whatever the server's matching rules (case folding, accents,
//! spaces): an entry is either in a seen branch or in the rest. A part that no dimension can cut is
//! reported, and the harvest is then not complete.
//!
//! Queries run with bounded concurrency. Progress is checkpointed to a state file (the parts still to
//! do, the parts done, and, beside it, the addresses seen): an interrupted harvest resumes where it
//! stopped. The caller removes entries gone from the directory only when [`HarvestReport::complete`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::client::{LdapClient, RawPage};
use super::filter::Filter;
use super::mapping::{Mapped, Mapping, Missing, RawEntry, Split, SplitBy};
use crate::model::MailAddress;
pub use crate::sink::HarvestSink;
use crate::{Error, Result};

/// Something to harvest from: an LDAP server, or a fake in tests.
pub trait Directory: Send + Sync + 'static {
    /// Every entry matching `filter` (at most the server's limit), with `attrs`.
    fn search(
        &self,
        filter: Filter,
        attrs: Arc<Vec<String>>,
    ) -> impl Future<Output = Result<RawPage>> + Send;

    /// What the state file is tied to (URL and base DN).
    fn identity(&self) -> String;
}

impl Directory for LdapClient {
    async fn search(&self, filter: Filter, attrs: Arc<Vec<String>>) -> Result<RawPage> {
        self.search_raw(&filter, &attrs, 0).await
    }

    fn identity(&self) -> String {
        format!("{} {}", self.config().url, self.config().base)
    }
}

/// How to harvest.
#[derive(Debug, Clone)]
pub struct HarvestOptions {
    /// Only entries matching this (ANDed with the presence of the address attribute).
    pub filter: Option<Filter>,
    /// Most queries in flight at once (at least 1).
    pub concurrency: usize,
    /// Stop (resumably) after this many queries in this run.
    pub max_queries: Option<u64>,
    /// Progress file for resuming (its addresses are kept in `<file>.seen`); none: no resuming.
    pub state_file: Option<PathBuf>,
    /// How often progress is committed and checkpointed.
    pub checkpoint_every: Duration,
    /// Attempts of a query that fails on a transient error (network, timeout, busy) before giving up.
    pub attempts: u32,
}

impl Default for HarvestOptions {
    fn default() -> Self {
        HarvestOptions {
            filter: None,
            concurrency: 4,
            max_queries: None,
            state_file: None,
            checkpoint_every: Duration::from_secs(2),
            attempts: 4,
        }
    }
}

/// Where a harvest stands (given to the progress callback after every query).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Queries sent (this run).
    pub queries: u64,
    /// Parts finished (all runs): fetched, or cut into smaller parts.
    pub parts_done: u64,
    /// Parts known and not finished.
    pub parts_pending: u64,
    /// Distinct mailboxes collected (all runs).
    pub entries: u64,
}

/// Why a harvest stopped before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The stop signal came (Ctrl-C).
    Interrupted,
    /// [`HarvestOptions::max_queries`] was reached.
    MaxQueries,
}

/// What a harvest did.
#[derive(Debug, Default)]
pub struct HarvestReport {
    /// Every part was fetched whole: the entries seen are all the directory's (for the filter).
    pub complete: bool,
    /// Set when the harvest stopped early (resumable).
    pub stopped: Option<Stopped>,
    /// This run resumed an earlier one.
    pub resumed: bool,
    /// Queries sent in this run.
    pub queries: u64,
    /// Parts finished over all runs.
    pub parts: u64,
    /// Distinct mailboxes collected over all runs.
    pub entries: u64,
    /// Red-listed entries the server sent (dropped).
    pub red_listed: u64,
    /// Entries that were not readable mailboxes (skipped; see the log).
    pub rejected: u64,
    /// Filters that still hit a limit with no dimension left to cut along: their entries are only
    /// partly collected.
    pub unsplittable: Vec<String>,
    /// Set when entries had no BAL type (a directory of standard attributes only): what they lacked,
    /// said once ([`crate::ldap::mapping::Missing::warning`]); they were collected all the same.
    pub missing: Option<String>,
    /// The addresses collected (all runs): what the directory holds when `complete`.
    pub seen: HashSet<MailAddress>,
    /// Time this run took.
    pub elapsed: Duration,
}

/// One dimension's constraint in a part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Constraint {
    /// `attr` equals one of these values.
    Values(Vec<String>),
    /// None of these values (all other values, and no value).
    Other(Vec<String>),
    /// Starts with one of `prefixes` (anything when one is empty) but not with any of `except`.
    Prefix {
        prefixes: Vec<String>,
        except: Vec<String>,
    },
}

/// A sub-query: one constraint per dimension used so far (`constraints[i]` is on `split[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Part {
    constraints: Vec<Constraint>,
}

impl Part {
    fn root() -> Part {
        Part {
            constraints: Vec::new(),
        }
    }

    fn filter(&self, split: &[Split], base: &Filter) -> Filter {
        let mut all = vec![base.clone()];
        for (c, dim) in self.constraints.iter().zip(split) {
            let a = &dim.attribute;
            match c {
                Constraint::Values(v) => {
                    all.push(Filter::or(v.iter().map(|v| Filter::equal(a, v.clone()))));
                }
                Constraint::Other(except) => {
                    if !except.is_empty() {
                        all.push(Filter::not(Filter::or(
                            except.iter().map(|v| Filter::equal(a, v.clone())),
                        )));
                    }
                }
                Constraint::Prefix { prefixes, except } => {
                    if !prefixes.iter().any(String::is_empty) {
                        all.push(Filter::or(
                            prefixes.iter().map(|p| Filter::prefix(a, p.clone())),
                        ));
                    }
                    if !except.is_empty() {
                        all.push(Filter::not(Filter::or(
                            except.iter().map(|p| Filter::prefix(a, p.clone())),
                        )));
                    }
                }
            }
        }
        Filter::and(all)
    }
}

/// Characters tried after a prefix when an over-full answer came with no entry to learn from.
const FALLBACK_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// Into how many parts an over-full part is cut (besides the part for "everything else"): each gets about
/// as many of the sample's entries, so parts stay near the server's limit instead of crumbling into
/// one query per letter.
const FANOUT: usize = 4;

fn initial(dim: &Split) -> Constraint {
    match dim.by {
        SplitBy::Value => Constraint::Other(Vec::new()),
        SplitBy::Prefix => Constraint::Prefix {
            prefixes: vec![String::new()],
            except: Vec::new(),
        },
    }
}

/// A value in the form a case-insensitive server compares it, for grouping the sample: trimmed, lower
/// case, accents left as they are (the "everything else" part covers any other rule the server has).
fn server_compare_form(v: &str) -> String {
    v.trim().to_lowercase()
}

/// The longest prefix (whole characters) shared by all of `values`.
fn common_prefix(values: &[&str]) -> String {
    let first = values.first().copied().unwrap_or("");
    let mut end = first.len();
    for v in &values[1..] {
        end = first
            .char_indices()
            .zip(v.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(end);
    }
    first[..end].to_string()
}

/// Consecutive `items` (key, weight in the sample) grouped into at most [`FANOUT`] buckets of about
/// equal weight; at least two buckets when there are two items or more.
fn buckets(items: Vec<(String, usize)>) -> Vec<Vec<String>> {
    let total: usize = items.iter().map(|(_, w)| w.max(&1)).sum();
    let target = total.div_ceil(FANOUT).max(1);
    let n = items.len();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut current = Vec::new();
    let mut weight = 0;
    for (key, w) in items {
        current.push(key);
        weight += w.max(1);
        if weight >= target {
            out.push(std::mem::take(&mut current));
            weight = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    if out.len() == 1 && n >= 2 {
        let mut all = out.remove(0);
        let second = all.split_off(n / 2);
        out = vec![all, second];
    }
    out
}

/// The `except` entries that fall under one of `prefixes` (the others cannot overlap them).
fn excepts_under(except: &[String], prefixes: &[String]) -> Vec<String> {
    except
        .iter()
        .filter(|e| prefixes.iter().any(|p| e.starts_with(p.as_str())))
        .cloned()
        .collect()
}

/// The parts that together cover `part`, learnt from `sample` (what the over-full answer held); `None`
/// when no dimension can cut it.
fn split(part: &Part, sample: &[RawEntry], dims: &[Split]) -> Option<Vec<Part>> {
    let mut part = part.clone();
    loop {
        let k = part.constraints.len();
        if k == 0 {
            part.constraints.push(initial(&dims[0]));
            continue;
        }
        let dim = &dims[k - 1];
        let values: Vec<String> = sample
            .iter()
            .flat_map(|e| e.values(&dim.attribute))
            .map(|v| server_compare_form(v))
            .filter(|v| !v.is_empty())
            .collect();
        let weight = |matches: &dyn Fn(&str) -> bool| values.iter().filter(|v| matches(v)).count();
        let cut: Option<Vec<Constraint>> = match &part.constraints[k - 1] {
            Constraint::Values(vs) if vs.len() >= 2 => Some(
                buckets(
                    vs.iter()
                        .map(|v| (v.clone(), weight(&|x| x == v)))
                        .collect(),
                )
                .into_iter()
                .map(Constraint::Values)
                .collect(),
            ),
            Constraint::Values(_) => None,
            Constraint::Other(except) => {
                let mut seen: BTreeMap<String, usize> = BTreeMap::new();
                for v in values.iter().filter(|v| !except.contains(v)) {
                    *seen.entry(v.clone()).or_default() += 1;
                }
                (!seen.is_empty()).then(|| {
                    let mut rest = except.clone();
                    rest.extend(seen.keys().cloned());
                    let mut out: Vec<Constraint> = buckets(seen.into_iter().collect())
                        .into_iter()
                        .map(Constraint::Values)
                        .collect();
                    out.push(Constraint::Other(rest));
                    out
                })
            }
            Constraint::Prefix { prefixes, except } if prefixes.len() >= 2 => Some(
                buckets(
                    prefixes
                        .iter()
                        .map(|p| (p.clone(), weight(&|x| x.starts_with(p.as_str()))))
                        .collect(),
                )
                .into_iter()
                .map(|group| Constraint::Prefix {
                    except: excepts_under(except, &group),
                    prefixes: group,
                })
                .collect(),
            ),
            Constraint::Prefix { prefixes, except } => {
                let prefix = prefixes.first().cloned().unwrap_or_default();
                let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
                for v in &values {
                    let Some(c) = v
                        .strip_prefix(prefix.as_str())
                        .and_then(|r| r.chars().next())
                    else {
                        continue;
                    };
                    let next = format!("{prefix}{c}");
                    if !except.iter().any(|e| v.starts_with(e.as_str())) {
                        groups.entry(next).or_default().push(v);
                    }
                }
                // most of the sample sharing a longer prefix ("centre hospitalier de ..."): jump to it
                // instead of one character at a time
                let mut next: Vec<(String, usize)> = groups
                    .into_iter()
                    .map(|(next, group)| {
                        if group.len() >= 10 && group.len() * 2 >= values.len() {
                            (common_prefix(&group), group.len())
                        } else {
                            (next, group.len())
                        }
                    })
                    .collect();
                if next.is_empty() && sample.is_empty() && except.is_empty() {
                    next = FALLBACK_ALPHABET
                        .chars()
                        .map(|c| (format!("{prefix}{c}"), 1))
                        .collect();
                }
                (!next.is_empty()).then(|| {
                    let mut rest = except.clone();
                    rest.extend(next.iter().map(|(p, _)| p.clone()));
                    let mut out: Vec<Constraint> = buckets(next)
                        .into_iter()
                        .map(|group| Constraint::Prefix {
                            // longer prefixes already taken stay out of the new part: no overlap
                            except: excepts_under(except, &group),
                            prefixes: group,
                        })
                        .collect();
                    out.push(Constraint::Prefix {
                        prefixes: vec![prefix],
                        except: rest,
                    });
                    out
                })
            }
        };
        match cut {
            Some(children) => {
                return Some(
                    children
                        .into_iter()
                        .map(|c| {
                            let mut p = part.clone();
                            p.constraints[k - 1] = c;
                            p
                        })
                        .collect(),
                );
            }
            None if k < dims.len() => part.constraints.push(initial(&dims[k])),
            None => return None,
        }
    }
}

/// A query's answer, read.
struct Fetched {
    page: RawPage,
    /// The entries read through the mapping (empty for an over-full answer).
    mapped: Vec<Mapped>,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    version: u32,
    /// [`Directory::identity`].
    directory: String,
    /// The whole filter of the harvest.
    filter: String,
    /// Parts finished: the 64-bit FNV-1a fingerprints of their filters (hex), in order.
    done: Vec<String>,
    /// Parts still to do.
    todo: Vec<Part>,
    /// Filters that could not be cut.
    unsplittable: Vec<String>,
    red_listed: u64,
    rejected: u64,
}

/// [`State`] as written, borrowed.
#[derive(Serialize)]
struct StateRef<'a> {
    version: u32,
    directory: &'a str,
    filter: String,
    done: &'a [String],
    todo: Vec<&'a Part>,
    unsplittable: &'a [String],
    red_listed: u64,
    rejected: u64,
}

const STATE_VERSION: u32 = 2;

/// The fingerprint of a part's filter kept in the state: 64-bit FNV-1a, hex (stable across builds, and
/// 16 bytes where a filter with its exclusions can take a kilobyte).
fn fingerprint(filter: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in filter.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The file beside the state that lists the addresses collected so far, one per line.
pub fn seen_file(state_file: &Path) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".seen");
    PathBuf::from(name)
}

/// Removes the state file and its address list (a harvest then starts over).
pub fn forget_state(state_file: &Path) -> Result<()> {
    for p in [state_file.to_path_buf(), seen_file(state_file)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", p.display()), e)),
        }
    }
    Ok(())
}

struct Run<'a, S> {
    mapping: &'a Mapping,
    options: &'a HarvestOptions,
    sink: &'a mut S,
    base: Filter,
    identity: String,
    queue: VecDeque<(Part, u32)>,
    flying: HashMap<tokio::task::Id, Part>,
    done: Vec<String>,
    unsplittable: Vec<String>,
    seen: HashSet<MailAddress>,
    /// Addresses seen since the last checkpoint, to append to the `.seen` file.
    fresh: Vec<MailAddress>,
    red_listed: u64,
    rejected: u64,
    /// What the entries of this run lacked.
    missing: Missing,
    queries: u64,
    last_checkpoint: Instant,
}

/// Harvests `directory` into `sink`. `stop` ends the harvest early (resumably) when it completes.
/// Errors of the sink, and query errors that persist after [`HarvestOptions::attempts`], end it with
/// the progress checkpointed.
pub async fn harvest<D: Directory, S: HarvestSink>(
    directory: Arc<D>,
    mapping: &Mapping,
    options: &HarvestOptions,
    sink: &mut S,
    mut progress: impl FnMut(&Progress),
    stop: impl Future<Output = ()>,
) -> Result<HarvestReport, S::Error> {
    let started = Instant::now();
    let dims = mapping.split();
    let base = match &options.filter {
        Some(f) => Filter::and([Filter::present(mapping.address()), f.clone()]),
        None => Filter::present(mapping.address()),
    };
    let attrs = Arc::new(mapping.requested_attributes());
    let shared_mapping = Arc::new(mapping.clone());
    let mut run = Run {
        mapping,
        options,
        sink,
        identity: directory.identity(),
        base,
        queue: VecDeque::new(),
        flying: HashMap::new(),
        done: Vec::new(),
        unsplittable: Vec::new(),
        seen: HashSet::new(),
        fresh: Vec::new(),
        red_listed: 0,
        rejected: 0,
        missing: Missing::default(),
        queries: 0,
        last_checkpoint: Instant::now(),
    };
    let resumed = run.resume()?;
    if !resumed {
        run.queue.push_back((Part::root(), 0));
    }
    let concurrency = options.concurrency.max(1);
    let mut in_flight: JoinSet<(u32, Result<Fetched>)> = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    let mut stopped = None;
    loop {
        while stopped.is_none() && in_flight.len() < concurrency {
            if options.max_queries.is_some_and(|max| run.queries >= max) {
                if !run.queue.is_empty() {
                    stopped = Some(Stopped::MaxQueries);
                }
                break;
            }
            let Some((part, attempt)) = run.queue.pop_front() else {
                break;
            };
            let filter = part.filter(dims, &run.base);
            let d = Arc::clone(&directory);
            let attrs = Arc::clone(&attrs);
            let mapping = Arc::clone(&shared_mapping);
            let handle = in_flight.spawn(async move {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(250 << attempt.min(5))).await;
                }
                let started = Instant::now();
                let text = tracing::enabled!(tracing::Level::DEBUG).then(|| filter.to_string());
                let answer = d.search(filter, attrs).await.map(|page| {
                    // a whole answer is read here, on the runtime's workers; an over-full one is only
                    // a sample to cut by (its entries come again in the parts)
                    let mapped = match page.limit {
                        None => page.entries.iter().map(|r| mapping.entry(r)).collect(),
                        Some(_) => Vec::new(),
                    };
                    Fetched { page, mapped }
                });
                if let (Some(filter), Ok(f)) = (text, &answer) {
                    tracing::debug!(
                        %filter,
                        entries = f.page.entries.len(),
                        limit = ?f.page.limit,
                        ms = started.elapsed().as_millis() as u64,
                        "harvest query"
                    );
                }
                (attempt, answer)
            });
            run.flying.insert(handle.id(), part);
            run.queries += 1;
        }
        if in_flight.is_empty() {
            break;
        }
        let joined = tokio::select! {
            joined = in_flight.join_next_with_id() => joined,
            () = &mut stop, if stopped.is_none() => {
                stopped = Some(Stopped::Interrupted);
                in_flight.abort_all();
                while in_flight.join_next().await.is_some() {}
                let back: Vec<Part> = run.flying.drain().map(|(_, p)| p).collect();
                for p in back {
                    run.queue.push_front((p, 0));
                }
                break;
            }
        };
        let Some(joined) = joined else { break };
        let (id, (attempt, answer)) = match joined {
            Ok(done) => done,
            Err(e) => {
                let part = run.flying.remove(&e.id());
                if let Some(p) = part {
                    run.queue.push_front((p, 0));
                }
                run.checkpoint()?;
                return Err(Error::LdapNetwork {
                    url: run.identity.clone(),
                    reason: format!("a harvest query failed: {e}"),
                }
                .into());
            }
        };
        let part = run
            .flying
            .remove(&id)
            .expect("every task's part is kept until it ends");
        match answer {
            Ok(page) => run.handle(part, page)?,
            Err(e) if e.is_transient() && attempt + 1 < options.attempts.max(1) => {
                tracing::warn!(error = %e, attempt = attempt + 1, "harvest query failed; retrying");
                run.queue.push_back((part, attempt + 1));
            }
            Err(e) => {
                run.queue.push_front((part, 0));
                in_flight.abort_all();
                while in_flight.join_next().await.is_some() {}
                let back: Vec<Part> = run.flying.drain().map(|(_, p)| p).collect();
                for p in back {
                    run.queue.push_front((p, 0));
                }
                run.checkpoint()?;
                return Err(e.into());
            }
        }
        progress(&run.progress());
        if run.last_checkpoint.elapsed() >= options.checkpoint_every {
            run.checkpoint()?;
        }
    }
    let complete = stopped.is_none() && run.queue.is_empty() && run.unsplittable.is_empty();
    if complete {
        run.sink.commit()?;
        if let Some(state) = &options.state_file {
            forget_state(state)?;
        }
    } else {
        run.checkpoint()?;
    }
    progress(&run.progress());
    let missing = run.missing.warning(mapping);
    if let Some(warning) = &missing {
        tracing::warn!("{warning}");
    }
    Ok(HarvestReport {
        complete,
        stopped,
        resumed,
        queries: run.queries,
        parts: run.done.len() as u64,
        entries: run.seen.len() as u64,
        red_listed: run.red_listed,
        rejected: run.rejected,
        unsplittable: run.unsplittable,
        missing,
        seen: run.seen,
        elapsed: started.elapsed(),
    })
}

impl<S: HarvestSink> Run<'_, S> {
    fn progress(&self) -> Progress {
        Progress {
            queries: self.queries,
            parts_done: self.done.len() as u64,
            parts_pending: (self.queue.len() + self.flying.len()) as u64,
            entries: self.seen.len() as u64,
        }
    }

    fn whole_filter(&self) -> String {
        self.base.to_string()
    }

    /// One answer: a whole one is stored; an over-full one is cut into parts (its entries will come
    /// again in them), or, when it cannot be cut, stored as far as it goes.
    fn handle(&mut self, part: Part, fetched: Fetched) -> Result<(), S::Error> {
        let dims = self.mapping.split();
        let filter = part.filter(dims, &self.base).to_string();
        let Fetched { page, mut mapped } = fetched;
        let parts = page.limit.and_then(|_| split(&part, &page.entries, dims));
        // a whole answer (or one that cannot be cut) is read; an over-full one comes again in parts
        if parts.is_none() {
            for raw in &page.entries {
                self.missing.note(self.mapping, raw);
            }
        }
        if let Some(limit) = page.limit {
            match parts {
                Some(children) => {
                    tracing::debug!(%filter, ?limit, parts = children.len(), "over-full query cut");
                    for c in children {
                        self.queue.push_back((c, 0));
                    }
                }
                None => {
                    tracing::warn!(%filter, ?limit, "query still over-full and cannot be cut further");
                    self.unsplittable.push(filter.clone());
                    mapped = page.entries.iter().map(|r| self.mapping.entry(r)).collect();
                }
            }
        }
        for m in mapped {
            match m {
                Mapped::Entry(e) => {
                    // an entry in two parts (several values, loose matching) is stored once
                    if !self.seen.contains(&e.address) {
                        self.sink.upsert(&e)?;
                        self.seen.insert(e.address.clone());
                        self.fresh.push(e.address);
                    }
                }
                Mapped::RedListed(address) => {
                    self.red_listed += 1;
                    self.sink.remove(&address)?;
                }
                Mapped::Rejected { dn, reason } => {
                    self.rejected += 1;
                    tracing::warn!(%dn, %reason, "LDAP entry skipped");
                }
            }
        }
        self.done.push(fingerprint(&filter));
        Ok(())
    }

    /// Loads the state of an interrupted harvest of the same directory and filter, if any.
    fn resume(&mut self) -> Result<bool, S::Error> {
        let Some(path) = &self.options.state_file else {
            return Ok(false);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                forget_state(path)?;
                return Ok(false);
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e).into()),
        };
        let state: State = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unreadable harvest state; starting over");
                forget_state(path)?;
                return Ok(false);
            }
        };
        if state.version != STATE_VERSION
            || state.directory != self.identity
            || state.filter != self.whole_filter()
        {
            tracing::warn!(
                file = %path.display(),
                "the harvest state is for another directory or filter; starting over"
            );
            forget_state(path)?;
            return Ok(false);
        }
        let seen = seen_file(path);
        if let Ok(file) = File::open(&seen) {
            for line in BufReader::new(file).lines() {
                let line = line.map_err(|e| Error::io(format!("reading {}", seen.display()), e))?;
                if let Ok(a) = MailAddress::parse(&line) {
                    self.seen.insert(a);
                }
            }
        }
        self.done = state.done;
        let done: HashSet<&String> = self.done.iter().collect();
        let dims = self.mapping.split();
        for part in state.todo {
            if !done.contains(&fingerprint(&part.filter(dims, &self.base).to_string())) {
                self.queue.push_back((part, 0));
            }
        }
        self.unsplittable = state.unsplittable;
        self.red_listed = state.red_listed;
        self.rejected = state.rejected;
        tracing::info!(
            parts_done = self.done.len(),
            parts_left = self.queue.len(),
            entries = self.seen.len(),
            "resuming an interrupted harvest"
        );
        Ok(true)
    }

    /// Commits the sink, then records the addresses and parts it now holds.
    fn checkpoint(&mut self) -> Result<(), S::Error> {
        self.sink.commit()?;
        self.last_checkpoint = Instant::now();
        let Some(path) = self.options.state_file.clone() else {
            self.fresh.clear();
            return Ok(());
        };
        let io = |what: &Path, e| Error::io(format!("writing {}", what.display()), e);
        let seen = seen_file(&path);
        if !self.fresh.is_empty() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&seen)
                .map_err(|e| io(&seen, e))?;
            let mut out = BufWriter::new(file);
            for a in self.fresh.drain(..) {
                writeln!(out, "{a}").map_err(|e| io(&seen, e))?;
            }
            let file = out.into_inner().map_err(|e| io(&seen, e.into_error()))?;
            file.sync_data().map_err(|e| io(&seen, e))?;
        }
        let mut todo: Vec<&Part> = self.flying.values().collect();
        todo.extend(self.queue.iter().map(|(p, _)| p));
        let state = StateRef {
            version: STATE_VERSION,
            directory: &self.identity,
            filter: self.whole_filter(),
            done: &self.done,
            todo,
            unsplittable: &self.unsplittable,
            red_listed: self.red_listed,
            rejected: self.rejected,
        };
        let tmp = path.with_extension("tmp");
        let json = serde_json::to_vec(&state)
            .map_err(|e| Error::LdapConfig(format!("harvest state does not serialise: {e}")))?;
        std::fs::write(&tmp, json).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;
    use crate::model::{Entry, Source};

    /// An in-memory directory with a size limit, evaluating filters like a case-insensitive server.
    struct Fake {
        /// Each entry with its values in [`server_compare_form`] (for matching) and as is (for answering).
        entries: Vec<(RawEntry, RawEntry)>,
        limit: usize,
        queries: std::sync::atomic::AtomicU64,
    }

    /// `f` with its values in [`server_compare_form`], evaluated on entries whose values are too.
    fn matches(f: &Filter, e: &RawEntry) -> bool {
        match f {
            Filter::And(v) => v.iter().all(|f| matches(f, e)),
            Filter::Or(v) => v.iter().any(|f| matches(f, e)),
            Filter::Not(f) => !matches(f, e),
            Filter::Equal(a, v) => e.values(a).contains(v),
            Filter::Present(a) => !e.values(a).is_empty(),
            Filter::Substrings {
                attr,
                initial: Some(i),
                any,
                last: None,
            } if any.is_empty() => e.values(attr).iter().any(|v| v.starts_with(i.as_str())),
            other => panic!("the fake does not evaluate {other}"),
        }
    }

    fn folded(f: Filter) -> Filter {
        match f {
            Filter::And(v) => Filter::And(v.into_iter().map(folded).collect()),
            Filter::Or(v) => Filter::Or(v.into_iter().map(folded).collect()),
            Filter::Not(f) => Filter::Not(Box::new(folded(*f))),
            Filter::Equal(a, v) => Filter::Equal(a, server_compare_form(&v)),
            Filter::Substrings {
                attr,
                initial,
                any,
                last,
            } => Filter::Substrings {
                attr,
                initial: initial.map(|i| server_compare_form(&i)),
                any: any.iter().map(|v| server_compare_form(v)).collect(),
                last: last.map(|l| server_compare_form(&l)),
            },
            other => other,
        }
    }

    impl Directory for Fake {
        async fn search(&self, filter: Filter, _attrs: Arc<Vec<String>>) -> Result<RawPage> {
            self.queries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::task::yield_now().await;
            let filter = folded(filter);
            let mut entries: Vec<RawEntry> = self
                .entries
                .iter()
                .filter(|(folded, _)| matches(&filter, folded))
                .take(self.limit + 1)
                .map(|(_, e)| e.clone())
                .collect();
            let limit = (entries.len() > self.limit).then(|| {
                entries.truncate(self.limit);
                super::super::client::Limit::Size
            });
            Ok(RawPage { entries, limit })
        }
        fn identity(&self) -> String {
            "fake".into()
        }
    }

    #[derive(Default)]
    struct Collect {
        entries: HashMap<MailAddress, Entry>,
        commits: usize,
    }

    impl HarvestSink for Collect {
        type Error = Error;
        fn upsert(&mut self, e: &Entry) -> Result<()> {
            self.entries.insert(e.address.clone(), e.clone());
            Ok(())
        }
        fn remove(&mut self, a: &MailAddress) -> Result<()> {
            self.entries.remove(a);
            Ok(())
        }
        fn commit(&mut self) -> Result<()> {
            self.commits += 1;
            Ok(())
        }
    }

    fn fake(entries: &[Entry], limit: usize) -> Arc<Fake> {
        let m = Mapping::default();
        let raw = entries
            .iter()
            .map(|e| {
                let attrs = m.attributes(e);
                let raw = |f: fn(&str) -> String| {
                    RawEntry::new(
                        e.address.to_string(),
                        attrs
                            .iter()
                            .map(|(a, v)| (a.as_str().to_string(), vec![f(v)])),
                    )
                };
                (raw(server_compare_form), raw(str::to_string))
            })
            .collect();
        Arc::new(Fake {
            entries: raw,
            limit,
            queries: Default::default(),
        })
    }

    fn expected(entries: &[Entry]) -> HashMap<MailAddress, Entry> {
        entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.source = Source::Ldap;
                e.updated_at = None;
                (e.address.clone(), e)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_capped_directory_is_harvested_whole() {
        let entries: Vec<Entry> = demo::entries(1000, 11).collect();
        let dir = fake(&entries, 10);
        let mut sink = Collect::default();
        let report = harvest(
            Arc::clone(&dir),
            &Mapping::default(),
            &HarvestOptions::default(),
            &mut sink,
            |_| {},
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(report.complete, "{report:?}");
        assert_eq!(report.entries, 1000);
        assert!(sink.entries == expected(&entries));
        // 100 leaves at least; the cut learns from samples, so not many more
        assert!(
            (100..600).contains(&report.queries),
            "{} queries",
            report.queries
        );
    }

    #[tokio::test]
    async fn identical_names_fall_through_to_the_next_dimension() {
        // 120 boxes of the same person, no department: only the address can tell them apart
        let mut entries: Vec<Entry> = Vec::new();
        for i in 0..120 {
            let mut e = demo::entries(1, 1).next().unwrap();
            e.address =
                MailAddress::parse(&format!("jean.martin{i}@h{}.mssante.fr", i % 7)).unwrap();
            e.department = None;
            e.postal_code = None;
            e.delivery_line = None;
            e.last_name = Some("Martin".into());
            e.first_name = Some("Jean".into());
            entries.push(e);
        }
        entries.extend(demo::entries(200, 2));
        let dir = fake(&entries, 10);
        let mut sink = Collect::default();
        let report = harvest(
            dir,
            &Mapping::default(),
            &HarvestOptions::default(),
            &mut sink,
            |_| {},
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(report.complete, "{report:?}");
        assert!(sink.entries == expected(&entries));
        // with only the department to cut along, the same directory cannot be harvested whole
        let m =
            Mapping::from_toml("[harvest]\nsplit = [{ field = \"department\", by = \"value\" }]")
                .unwrap();
        let mut sink = Collect::default();
        let report = harvest(
            fake(&entries, 10),
            &m,
            &HarvestOptions::default(),
            &mut sink,
            |_| {},
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(!report.complete);
        assert!(!report.unsplittable.is_empty());
    }

    #[tokio::test]
    async fn an_interrupted_harvest_resumes_from_its_state() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("sync.state.json");
        let entries: Vec<Entry> = demo::entries(600, 4).collect();
        let options = HarvestOptions {
            state_file: Some(state.clone()),
            max_queries: Some(30),
            checkpoint_every: Duration::ZERO,
            ..HarvestOptions::default()
        };
        let mut sink = Collect::default();
        let first = harvest(
            fake(&entries, 10),
            &Mapping::default(),
            &options,
            &mut sink,
            |_| {},
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(!first.complete);
        assert_eq!(first.stopped, Some(Stopped::MaxQueries));
        assert!(state.exists() && seen_file(&state).exists());
        // the second run gets a fresh sink: what the first collected must come from the state
        let options = HarvestOptions {
            max_queries: None,
            ..options
        };
        let dir = fake(&entries, 10);
        let mut second_sink = Collect::default();
        let second = harvest(
            Arc::clone(&dir),
            &Mapping::default(),
            &options,
            &mut second_sink,
            |_| {},
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(second.resumed && second.complete, "{second:?}");
        assert_eq!(second.entries, 600);
        assert_eq!(second.seen.len(), 600);
        assert!(second.parts > first.parts);
        assert!(!state.exists() && !seen_file(&state).exists());
        sink.entries.extend(second_sink.entries);
        assert!(sink.entries == expected(&entries));
        // a stop signal also leaves a resumable state
        let mut sink = Collect::default();
        let stopped = harvest(
            fake(&entries, 10),
            &Mapping::default(),
            &HarvestOptions {
                concurrency: 1,
                ..options.clone()
            },
            &mut sink,
            |_| {},
            std::future::ready(()),
        )
        .await
        .unwrap();
        assert_eq!(stopped.stopped, Some(Stopped::Interrupted));
        assert!(state.exists());
    }

    #[test]
    fn cutting_covers_the_part_and_learns_from_the_sample() {
        let m = Mapping::default();
        let dims = m.split();
        let base = Filter::present(m.address());
        let e = |cn: &str, dept: &str| {
            RawEntry::new(
                "x",
                [
                    ("cn".to_string(), vec![cn.to_string()]),
                    ("mssanteDepartment".to_string(), vec![dept.to_string()]),
                ],
            )
        };
        let texts = |parts: &[Part]| -> Vec<String> {
            parts
                .iter()
                .map(|c| c.filter(dims, &base).to_string())
                .collect()
        };
        // first cut: by the next letter of the display name, accents kept as the server sees them,
        // plus everything else
        let root = split(
            &Part::root(),
            &[
                e("Durand Paul", "75"),
                e("Été Anne", "13"),
                e("durand Marc", "13"),
            ],
            dims,
        )
        .unwrap();
        assert_eq!(
            texts(&root),
            [
                "(&(mail=*)(cn=d*))",
                "(&(mail=*)(cn=é*))",
                "(&(mail=*)(!(|(cn=d*)(cn=é*))))",
            ]
        );
        // many letters: grouped into FANOUT parts of about equal weight in the sample
        let sample: Vec<RawEntry> = "abcdefgh"
            .chars()
            .flat_map(|c| (0..5).map(move |i| e(&format!("{c}x{i}"), "75")))
            .collect();
        let cut = split(&Part::root(), &sample, dims).unwrap();
        assert_eq!(
            texts(&cut),
            [
                "(&(mail=*)(|(cn=a*)(cn=b*)))",
                "(&(mail=*)(|(cn=c*)(cn=d*)))",
                "(&(mail=*)(|(cn=e*)(cn=f*)))",
                "(&(mail=*)(|(cn=g*)(cn=h*)))",
                "(&(mail=*)(!(|(cn=a*)(cn=b*)(cn=c*)(cn=d*)(cn=e*)(cn=f*)(cn=g*)(cn=h*))))",
            ]
        );
        // a group that overflows again is cut along its own prefixes, with no part for "the rest"
        assert_eq!(
            texts(&split(&cut[0], &sample[..10], dims).unwrap()),
            ["(&(mail=*)(cn=a*))", "(&(mail=*)(cn=b*))"]
        );
        // most of the sample sharing a long prefix: one jump to it, and the rest keeps out of it
        let mut sample: Vec<RawEntry> = (0..20)
            .map(|i| e(&format!("Centre Hospitalier de Ville{i}"), "75"))
            .collect();
        sample.push(e("Cabinet", "75"));
        let c = split(&root[0], &[], dims).unwrap(); // no sample: the fallback alphabet, in groups
        assert_eq!(c.len(), FANOUT + 1);
        let part = Part {
            constraints: vec![Constraint::Prefix {
                prefixes: vec!["c".into()],
                except: Vec::new(),
            }],
        };
        let jump = split(&part, &sample, dims).unwrap();
        assert_eq!(
            texts(&jump),
            [
                "(&(mail=*)(cn=ca*))",
                "(&(mail=*)(cn=centre hospitalier de ville*))",
                "(&(mail=*)(cn=c*)(!(|(cn=ca*)(cn=centre hospitalier de ville*))))",
            ]
        );
        // later, the rest shows "ce" again: the new part leaves out what an earlier one took
        let again = split(&jump[2], &[e("Centre de santé", "13")], dims).unwrap();
        assert_eq!(
            texts(&again)[0],
            "(&(mail=*)(cn=ce*)(!(cn=centre hospitalier de ville*)))"
        );
        // every value exactly the prefix: the next dimension, the department, cuts
        let same: Vec<RawEntry> = ["75", "13", "75"]
            .iter()
            .map(|d| e("Pharmacie du Centre", d))
            .collect();
        let exact = Part {
            constraints: vec![Constraint::Prefix {
                prefixes: vec!["pharmacie du centre".into()],
                except: Vec::new(),
            }],
        };
        assert_eq!(
            texts(&split(&exact, &same, dims).unwrap()),
            [
                "(&(mail=*)(cn=pharmacie du centre*)(mssanteDepartment=13))",
                "(&(mail=*)(cn=pharmacie du centre*)(mssanteDepartment=75))",
                "(&(mail=*)(cn=pharmacie du centre*)(!(|(mssanteDepartment=13)(mssanteDepartment=75))))",
            ]
        );
    }
}
