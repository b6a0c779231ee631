//! `mss fhir-sync`: the Annuaire Santé FHIR API (docs/mssante.md D3) into the index, full then by deltas.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use mss_annuaire::Secret;
use mss_annuaire::fhir::{
    self, FhirClient, FhirConfig, Requested, Since, SyncOptions, SyncStopped,
};
use mss_index::DirectoryIndex;
use mss_index::sources::{self, FHIR_STATE_FILE};
use time::OffsetDateTime;

use crate::{progress, runtime};

/// Environment variable holding the API key (instead of `--api-key-file`).
pub const API_KEY_ENV: &str = "MSS_FHIR_API_KEY";

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
        c.api_key = api_key(self.api_key_file.as_deref())?;
        if c.api_key.is_none() && c.is_national() {
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

/// The API key: the first line of `file`, else the MSS_FHIR_API_KEY variable, else none.
pub fn api_key(file: Option<&Path>) -> Result<Option<Secret>> {
    Ok(match file {
        Some(path) => Some(Secret::from_file(path)?),
        None => std::env::var(API_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty())
            .map(Secret::new),
    })
}

/// `mss fhir-sync`.
#[derive(Debug, Args)]
pub struct FhirSyncArgs {
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

impl FhirSyncArgs {
    /// What was asked: `--since` (read here), `--full`, or neither.
    fn requested(&self) -> Result<Requested> {
        if let Some(since) = &self.since {
            let since = Since::parse(since).with_context(|| {
                format!(
                    "--since: `{}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time",
                    since.trim()
                )
            })?;
            return Ok(Requested::Since(since));
        }
        Ok(if self.full {
            Requested::Full
        } else {
            Requested::Auto
        })
    }
}

/// `mss fhir-sync`.
pub fn sync(data_dir: &Path, args: FhirSyncArgs) -> Result<()> {
    let config = args.fhir.config()?;
    let base = config.base.clone();
    let client = FhirClient::new(config)?;
    let index = DirectoryIndex::open_or_create(data_dir)
        .with_context(|| format!("opening the index in {}", data_dir.display()))?;
    let state_file = data_dir.join(FHIR_STATE_FILE);
    if args.restart {
        fhir::sync::forget_state(&state_file)?;
    }
    let now = OffsetDateTime::now_utc();
    let choice = sources::fhir_plan(&index, &base, &args.requested()?, &state_file, now)?;
    if choice.first {
        eprintln!("mss: no earlier sync of {base} in this index: full sync");
    }
    let mode = choice.mode;
    let mut options = SyncOptions::new(mode.clone(), fhir::mode::instant(now));
    options.state_file = Some(state_file.clone());
    options.max_pages = args.max_pages;
    let bar = progress::bar(args.quiet, None, "{spinner} [{elapsed_precise}] {msg}");
    let run = runtime::multi_thread(Some(2))?.block_on(async {
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
        sources::fhir_into(&index, &client, &options, progress, stop).await
    });
    bar.finish_and_clear();
    let run = run.with_context(|| {
        format!("synchronising {base} (progress is saved: run the same command again to resume)")
    })?;
    let report = &run.report;
    let kind = mode.summary();
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
    let vanished = run.vanished;
    println!(
        "fhir-sync ({kind}): complete: {counts}; {vanished} removed (gone from the API); the index holds {} entries; next delta from {}",
        index.num_entries(),
        report.started_at
    );
    Ok(())
}
