//! `mss import` and `mss demo-data`: the national extraction file into the index, and a synthetic one.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use mss_annuaire::{demo, extraction};
use mss_index::{Builder, ImportStats};

use crate::{data, progress};

/// `mss import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The extraction: `Extraction_Correspondance_MSSante_*.zip`, its `.txt`, or `-` for stdin.
    pub file: PathBuf,
    /// Where to write rejected lines (default: <data>/import-rejected.txt).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Never draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `mss demo-data`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of mailboxes.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Seed: the same seed always gives the same file.
    #[arg(long, default_value_t = data::SAMPLE_SEED)]
    pub seed: u64,
    /// Also write a few duplicated addresses and malformed lines.
    #[arg(long)]
    pub faults: bool,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `mss import FILE`: a full rebuild; the previous index keeps serving until the new one is complete.
pub fn import(data_dir: &Path, args: ImportArgs) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let report_path = args
        .report
        .unwrap_or_else(|| data_dir.join("import-rejected.txt"));
    let mut report = Report::new(&report_path);
    let total_bytes = (args.file.as_os_str() != "-")
        .then(|| std::fs::metadata(&args.file).map(|m| m.len()))
        .transpose()
        .with_context(|| format!("reading {}", args.file.display()))?;
    let template = if total_bytes.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}"
    } else {
        "{spinner} [{elapsed_precise}] {msg}"
    };
    let bar = progress::bar(args.quiet, total_bytes, template);
    let consumed = AtomicU64::new(0);
    let started = Instant::now();
    let builder = Builder::create(data_dir).context("preparing a new index generation")?;
    let stats = extraction::read_path_counting(&args.file, &consumed, |records| {
        mss_index::import(
            builder,
            records,
            |lines| {
                bar.set_position(consumed.load(Ordering::Relaxed));
                let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!("{lines} lines, {rate:.0} entries/s"));
            },
            |rejection| report.add(rejection),
        )
    })
    .with_context(|| format!("importing {}", args.file.display()))?;
    bar.finish_and_clear();
    let written = report.finish()?;
    // what the console and /metrics show of this source: recorded with the new generation
    let index = mss_index::DirectoryIndex::open(data_dir).context("opening the new index")?;
    let mut updater = index.writer().context("opening the index for writing")?;
    updater.set_source_state(
        "extraction",
        serde_json::json!({
            "last_sync": data::now_rfc3339(),
            "file": args.file.display().to_string(),
            "entries": stats.imported,
            "rejected": stats.rejected,
            "rejected_report": written.then(|| report_path.display().to_string()),
        }),
    );
    updater
        .commit()
        .context("recording the import with the index")?;
    print_import_summary(
        &stats,
        started.elapsed(),
        written.then_some(report_path.as_path()),
    );
    Ok(())
}

fn print_import_summary(stats: &ImportStats, took: Duration, report: Option<&Path>) {
    let secs = took.as_secs_f64().max(1e-3);
    let rejected = match report {
        Some(path) => format!("{} rejected (see {})", stats.rejected, path.display()),
        None => format!("{} rejected", stats.rejected),
    };
    println!(
        "imported {} entries ({} merged, {rejected}, {} red-listed skipped) from {} lines in {:.1} s ({:.0} entries/s)",
        stats.imported,
        stats.merged,
        stats.red_listed,
        stats.lines,
        secs,
        stats.lines as f64 / secs
    );
}

/// Rejected lines, written as they come (`line N: reason` then the raw line, tab-indented).
struct Report<'a> {
    path: &'a Path,
    out: Option<BufWriter<File>>,
    error: Option<io::Error>,
}

impl<'a> Report<'a> {
    fn new(path: &'a Path) -> Self {
        Report {
            path,
            out: None,
            error: None,
        }
    }

    fn add(&mut self, r: &extraction::Rejection) {
        if self.error.is_some() {
            return;
        }
        let result = (|| {
            if self.out.is_none() {
                self.out = Some(BufWriter::new(File::create(self.path)?));
            }
            let out = self.out.as_mut().expect("opened just above");
            writeln!(out, "line {}: {}\n\t{}", r.line, r.reason, r.raw)
        })();
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// Flushes; tells whether anything was written. A stale report from an earlier import is removed.
    fn finish(mut self) -> Result<bool> {
        if let Some(e) = self.error.take() {
            return Err(e).with_context(|| format!("writing {}", self.path.display()));
        }
        match self.out.take() {
            Some(mut out) => {
                out.flush()
                    .with_context(|| format!("writing {}", self.path.display()))?;
                Ok(true)
            }
            None => {
                let _ = std::fs::remove_file(self.path);
                Ok(false)
            }
        }
    }
}

/// `mss demo-data`.
pub fn demo_data(args: DemoArgs) -> Result<()> {
    let options = demo::DemoOptions {
        count: args.count,
        seed: args.seed,
        faults: args.faults,
    };
    let summary = match &args.out {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::new(file);
            let summary = demo::write(&mut out, &options)?;
            out.flush()
                .with_context(|| format!("writing {}", path.display()))?;
            summary
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let summary = demo::write(&mut out, &options)?;
            out.flush()?;
            summary
        }
    };
    eprintln!(
        "mss: wrote {} lines ({} mailboxes, {} duplicated addresses, {} malformed lines)",
        summary.lines, summary.entries, summary.duplicates, summary.malformed
    );
    Ok(())
}
