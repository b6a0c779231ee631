//! `mss import`, `mss search`, `mss demo-data`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mss_annuaire::{demo, extraction};
use mss_index::{Builder, Filters, ImportStats, SearchRequest};

use crate::cli::{DemoArgs, ImportArgs, SearchArgs};
use crate::data;

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
    let draw = !args.quiet && io::stderr().is_terminal();
    let bar = progress_bar(draw, total_bytes);
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

fn progress_bar(draw: bool, total_bytes: Option<u64>) -> ProgressBar {
    let bar = match total_bytes {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    if !draw {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    let template = if total_bytes.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}"
    } else {
        "{spinner} [{elapsed_precise}] {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Builds the index from the embedded sample.
pub fn import_sample(data_dir: &Path) -> Result<ImportStats> {
    let builder = Builder::create(data_dir).context("preparing a new index generation")?;
    let mut input = io::Cursor::new(data::SAMPLE_ZIP);
    extraction::read_stream(&mut input, None, |records| {
        mss_index::import(builder, records, |_| {}, |_| {})
    })
    .context("importing the embedded sample")
}

/// `mss search`.
pub fn search(data_dir: &Path, args: SearchArgs) -> Result<()> {
    let index = data::open_or_build_sample(data_dir)?;
    let request = SearchRequest {
        q: args.query.join(" "),
        filters: Filters {
            bal_type: args.bal_type,
            profession: args.profession,
            speciality: args.speciality,
            department: args.dept,
            postal_code: args.postal_code,
        },
        limit: usize::from(args.limit),
        cursor: args.cursor,
    };
    let results = index.search(&request)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        for hit in &results.hits {
            serde_json::to_writer(&mut out, &hit.entry)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(());
    }
    for hit in &results.hits {
        writeln!(out, "{}", result_line(&hit.entry))?;
    }
    let shown = results.hits.len();
    writeln!(
        out,
        "-- {shown} of {} result{}",
        results.total,
        if results.total == 1 { "" } else { "s" }
    )?;
    if let Some(cursor) = results.next_cursor {
        writeln!(out, "-- next page: --cursor {cursor}")?;
    }
    out.flush()?;
    Ok(())
}

/// One result line of `mss search`, for local and LDAP answers alike.
pub fn result_line(e: &mss_annuaire::Entry) -> String {
    let what = e
        .speciality
        .as_ref()
        .or(e.profession.as_ref())
        .map(|c| c.label.as_str())
        .unwrap_or("");
    let place = match (e.city(), e.department.as_ref()) {
        (Some(c), Some(d)) => format!("{c} ({d})"),
        (Some(c), None) => c.to_string(),
        (None, Some(d)) => format!("({d})"),
        (None, None) => String::new(),
    };
    format!(
        "{:<3} {:<44} {:<32} {:<30} {}",
        e.bal_type,
        e.address,
        e.display_name(),
        what,
        place
    )
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
