//! `mss fhir-sync`: the Annuaire Santé FHIR API (spec D3) into the index, full then by deltas.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mss_annuaire::fhir::{
    self, FhirClient, FhirConfig, Mode, Reconciled, SyncOptions, SyncStopped,
};
use mss_annuaire::{HarvestSink, Secret, Source};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::ldap::{IndexSink, for_each_entry, open_or_create, remove_vanished, runtime};

/// Environment variable holding the API key (instead of `--api-key-file`).
pub const API_KEY_ENV: &str = "MSS_FHIR_API_KEY";
/// Name of the sync's progress file in the data directory.
pub const STATE_FILE: &str = "fhir-sync.state.json";
/// Key of the FHIR state recorded with the index (last successful sync).
pub const INDEX_STATE_KEY: &str = "fhir";

/// Where the FHIR API is and how to reach it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "FHIR API")]
pub struct FhirArgs {
    /// Base URL of the Annuaire Santé FHIR API.
    #[arg(long = "base", env = "MSS_FHIR_BASE", default_value = fhir::PRODUCTION_BASE, value_name = "URL")]
    pub base: String,
    /// File whose first line is the API key (ESANTE-API-KEY); default: the MSS_FHIR_API_KEY variable.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Most requests per second (the national limit is 17; 0: none, for local test servers only).
    #[arg(long, default_value_t = fhir::NATIONAL_RATE, value_name = "N")]
    pub rate: u32,
    /// Seconds each request may take (the national timeout is 30).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Tries of a request failing with 429, 5xx or a timeout.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub attempts: u32,
    /// Page size asked with _count (default: the server's, 50 nationally).
    #[arg(long, value_name = "N")]
    pub page_size: Option<u32>,
}

impl FhirArgs {
    /// The client settings; reads the API key file or MSS_FHIR_API_KEY.
    pub fn config(&self) -> Result<FhirConfig> {
        let mut c = FhirConfig::new(&self.base)?;
        c.api_key = match &self.api_key_file {
            Some(path) => Some(Secret::from_file(path)?),
            None => std::env::var(API_KEY_ENV)
                .ok()
                .filter(|k| !k.is_empty())
                .map(Secret::new),
        };
        if c.api_key.is_none() && self.base.contains("esante.gouv.fr") {
            bail!(
                "the national API needs an API key: give --api-key-file FILE or set {API_KEY_ENV}"
            );
        }
        c.rate = self.rate;
        c.timeout = Duration::from_secs(self.timeout.max(1));
        c.attempts = self.attempts;
        c.page_size = self.page_size;
        Ok(c)
    }
}

/// `mss fhir-sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub fhir: FhirArgs,
    /// Read everything (the first sync is always full); removes the FHIR entries the API no longer has.
    #[arg(long, conflicts_with = "since")]
    pub full: bool,
    /// Only what changed since this date (YYYY-MM-DD or RFC 3339), at most 30 days back. Default: since
    /// the last successful sync recorded with the index.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Forget an interrupted sync and start over.
    #[arg(long)]
    pub restart: bool,
    /// Stop after this many pages; the next run continues where this one stopped.
    #[arg(long, value_name = "N")]
    pub max_pages: Option<u64>,
    /// Never draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `mss fhir-fixtures` (hidden): the FHIR resources of `mss demo-data`'s population, for test servers.
#[derive(Debug, Args)]
pub struct FixturesArgs {
    /// Number of mailboxes.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Seed of the population (as `mss demo-data --seed`).
    #[arg(long, default_value_t = crate::data::SAMPLE_SEED)]
    pub seed: u64,
    /// `meta.lastUpdated` of every resource.
    #[arg(long, default_value = "2026-11-01T08:00:00Z")]
    pub last_updated: String,
    /// Output file, one resource per line (NDJSON; default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `mss fhir-fixtures`.
pub fn fixtures(args: FixturesArgs) -> Result<()> {
    use std::io::Write;
    let population = fhir::fixtures::population(
        mss_annuaire::demo::entries(args.count, args.seed),
        &args.last_updated,
    );
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    for r in population.all() {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush().context("writing the resources")?;
    eprintln!(
        "mss: {} Practitioner, {} PractitionerRole, {} Organization",
        population.practitioners.len(),
        population.roles.len(),
        population.organizations.len()
    );
    Ok(())
}

/// Now, as a FHIR instant to the second (`2026-11-23T08:00:00Z`).
fn now_instant() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

/// Reads `--since` (a date or an RFC 3339 time) as a time and as the FHIR value sent.
fn parse_since(text: &str) -> Result<(OffsetDateTime, String)> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((t, text.to_string()));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    match Date::parse(text, &date_format) {
        Ok(d) => Ok((d.midnight().assume_utc(), text.to_string())),
        Err(_) => bail!("--since: `{text}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
    }
}

/// A delta may not start more than 30 days ago (the API refuses it).
fn check_gap(since: OffsetDateTime, now: OffsetDateTime, what: &str) -> Result<()> {
    let gap = now - since;
    if gap > time::Duration::days(fhir::MAX_DELTA_DAYS) {
        bail!(
            "{what} was {} days ago: the FHIR API gives changes of the last {} days at most; run \
             `mss fhir-sync --full` (or import the national extraction with `mss import`)",
            gap.whole_days(),
            fhir::MAX_DELTA_DAYS
        );
    }
    Ok(())
}

/// The mode of this run: an interrupted sync first, then what was asked, then a delta since the last one.
fn choose_mode(
    args: &SyncArgs,
    base: &str,
    state_file: &Path,
    index: &mss_index::DirectoryIndex,
) -> Result<Mode> {
    let now = OffsetDateTime::now_utc();
    if let Some(since) = &args.since {
        let (t, value) = parse_since(since)?;
        check_gap(t, now, &format!("--since {since}"))?;
        return Ok(Mode::Delta { since: value });
    }
    if args.full {
        return Ok(Mode::Full);
    }
    if let Some((pending_base, mode)) = fhir::sync::pending(state_file)?
        && pending_base == base
    {
        return Ok(mode);
    }
    let last = index.source_state(INDEX_STATE_KEY)?;
    let last_sync = last
        .as_ref()
        .filter(|s| s["base"].as_str() == Some(base))
        .and_then(|s| s["last_sync"].as_str());
    match last_sync {
        None => {
            eprintln!("mss: no earlier sync of {base} in this index: full sync");
            Ok(Mode::Full)
        }
        Some(since) => {
            let (t, value) = parse_since(since).with_context(|| {
                format!("the last sync time recorded with the index, `{since}`")
            })?;
            check_gap(t, now, &format!("the last sync of {base}, {since},"))?;
            Ok(Mode::Delta { since: value })
        }
    }
}

/// After a complete delta: takes the resources it re-read off the entries they no longer publish, and
/// removes the entries no resource publishes any more. Returns how many left the index.
fn remove_dropped(
    index: &mss_index::DirectoryIndex,
    sink: &mut IndexSink,
    carried: &fhir::Carried,
) -> Result<u64> {
    if carried.is_empty() {
        return Ok(0);
    }
    let mut changes = Vec::new();
    for_each_entry(index, |e| match fhir::reconcile(e, carried) {
        Reconciled::Unchanged => {}
        other => changes.push((e.address.clone(), other)),
    })?;
    let mut removed = 0;
    for (address, change) in &changes {
        match change {
            Reconciled::Narrowed(e) => sink.upsert(e)?,
            Reconciled::Removed => {
                sink.remove(address)?;
                removed += 1;
            }
            Reconciled::Unchanged => {}
        }
    }
    if !changes.is_empty() {
        sink.commit()?;
    }
    Ok(removed)
}

fn progress_bar(draw: bool) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if !draw {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `mss fhir-sync`.
pub fn sync(data_dir: &Path, args: SyncArgs) -> Result<()> {
    let config = args.fhir.config()?;
    let base = config.base.clone();
    let client = FhirClient::new(config)?;
    let index = open_or_create(data_dir)?;
    let state_file = data_dir.join(STATE_FILE);
    if args.restart {
        fhir::sync::forget_state(&state_file)?;
    }
    let mode = choose_mode(&args, &base, &state_file, &index)?;
    let mut options = SyncOptions::new(mode.clone(), now_instant());
    options.state_file = Some(state_file.clone());
    options.max_pages = args.max_pages;
    let mut sink = IndexSink {
        updater: index.writer().context("opening the index for writing")?,
    };
    let bar = progress_bar(!args.quiet && io::stderr().is_terminal());
    let report = runtime()?.block_on(async {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let progress = |p: &fhir::SyncProgress| {
            let total = p.total.map(|t| format!(" of {t}")).unwrap_or_default();
            bar.set_message(format!(
                "{} pages, {} resources{total}; {} written, {} removed; {} searches queued ({})",
                p.pages, p.resources, p.upserted, p.removed, p.queued, p.search
            ));
        };
        fhir::sync(&client, &options, &mut sink, progress, stop).await
    });
    bar.finish_and_clear();
    let report = report.with_context(|| {
        format!("synchronising {base} (progress is saved: run the same command again to resume)")
    })?;
    let kind = match &mode {
        Mode::Full => "full".to_string(),
        Mode::Delta { since } => format!("delta since {since}"),
    };
    let resumed = if report.resumed { ", resumed" } else { "" };
    let counts = format!(
        "{} pages, {} resources, {} requests in {:.1} s{resumed}; {} written, {} removed (red-listed or deactivated), {} rejected",
        report.pages,
        report.resources,
        report.requests,
        report.elapsed.as_secs_f64(),
        report.upserted,
        report.removed,
        report.rejected
    );
    for example in &report.rejected_examples {
        eprintln!("mss: skipped: {example}");
    }
    if !report.complete {
        return match report.stopped {
            Some(SyncStopped::MaxPages) => {
                println!(
                    "fhir-sync ({kind}): stopped after {counts} (--max-pages); progress saved in {}: run again to continue",
                    state_file.display()
                );
                Ok(())
            }
            _ => bail!(
                "fhir-sync ({kind}) interrupted after {counts}; progress saved in {}: run the same command again to resume",
                state_file.display()
            ),
        };
    }
    let vanished = if mode == Mode::Full {
        remove_vanished(&index, &mut sink, Source::Fhir, &report.seen)?
    } else {
        remove_dropped(&index, &mut sink, &report.carried)?
    };
    sink.updater.set_source_state(
        INDEX_STATE_KEY,
        json!({"base": base, "last_sync": report.started_at, "mode": kind}),
    );
    sink.updater
        .commit()
        .context("recording the sync time with the index")?;
    println!(
        "fhir-sync ({kind}): complete: {counts}; {vanished} removed (gone from the API); the index holds {} entries; next delta from {}",
        index.num_entries(),
        report.started_at
    );
    Ok(())
}
