//! `mss audit` and the `[audit]` section of the configuration: where the audit trail is, and reading it
//! (docs/mssante.md S2). The trail itself is `mss_access::audit`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use mss_access::audit::{self, AuditConfig, AuditLog, AuditQuery, AuditRecord};
use serde::Deserialize;
use time::OffsetDateTime;

/// The trail's file in the data directory when `[audit] path` does not name one.
pub const DEFAULT_FILE: &str = "audit.jsonl";

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only records from T on: an RFC 3339 time (2026-12-01T08:00:00Z), a date (2026-12-01, midnight
    /// UTC), or a span back from now in days or hours (7d, 24h).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only the records of this client.
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,
    /// The records as stored, one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// The TOML configuration file of `mss serve`: its `data` and `[audit] path` say where the trail is.
    #[arg(long, env = "MSS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `[audit]`: where the trail goes and how long it is kept.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFileConfig {
    /// The current file [default: <data>/audit.jsonl]; rotated files go beside it.
    pub path: Option<PathBuf>,
    /// Days rotated files are kept [default: 190].
    pub keep_days: Option<u32>,
    /// Size past which the file is rotated [default: 64 MiB].
    pub max_bytes: Option<u64>,
    /// `false`: no trail at all (benchmarks only: health-data requests then go untraced, which
    /// docs/mssante.md S2 forbids in service) [default: true].
    pub enabled: Option<bool>,
}

/// What `mss audit` reads of `mss serve`'s configuration file: the data directory and `[audit]` (the rest is
/// `mss serve`'s to check).
#[derive(Debug, Default, Deserialize)]
struct ConfigView {
    data: Option<PathBuf>,
    audit: Option<AuditFileConfig>,
}

/// The trail's settings: `[audit]`, else the defaults in `data_dir`.
pub fn audit_config(data_dir: &Path, file: Option<&AuditFileConfig>) -> AuditConfig {
    let file = file.cloned().unwrap_or_default();
    let defaults = AuditConfig::new(file.path.unwrap_or_else(|| data_dir.join(DEFAULT_FILE)));
    AuditConfig {
        max_bytes: file.max_bytes.unwrap_or(defaults.max_bytes),
        keep_days: file.keep_days.unwrap_or(defaults.keep_days),
        ..defaults
    }
}

/// Opens the audit trail `mss serve` writes to.
pub fn open_log(data_dir: &Path, file: Option<&AuditFileConfig>) -> Result<AuditLog> {
    let config = audit_config(data_dir, file);
    let path = config.path.clone();
    AuditLog::open(config).with_context(|| format!("opening the audit trail {}", path.display()))
}

/// `mss audit`: prints the records, oldest first; damaged lines are reported on stderr.
pub fn run(data_flag: Option<PathBuf>, args: AuditArgs) -> Result<()> {
    let file = crate::config::load::<ConfigView>(args.config.as_deref())?;
    let data_dir = crate::data::data_dir(data_flag.or(file.data))?;
    let config = audit_config(&data_dir, file.audit.as_ref());
    let since = args
        .since
        .as_deref()
        .map(|t| AuditQuery::parse_since(t, OffsetDateTime::now_utc()))
        .transpose()?;
    let query = AuditQuery {
        since,
        client: args.client,
    };
    let entries = audit::read(&config.path, &query)
        .with_context(|| format!("reading the audit trail {}", config.path.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut damaged = 0usize;
    for entry in entries {
        match entry {
            Ok(record) if args.json => {
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")?;
            }
            Ok(record) => writeln!(out, "{}", human_line(&record))?,
            Err(e) => {
                damaged += 1;
                eprintln!("mss: warning: damaged audit line: {e}");
            }
        }
    }
    out.flush()?;
    if damaged > 0 {
        eprintln!("mss: {damaged} damaged line(s) skipped");
    }
    Ok(())
}

/// `2026-12-06T07:31:02.123Z  dpi  10.1.2.3  batches.read  GET /v1/batches/{id}  batch=b1  200  -`:
/// time, client, source, action, route, ids, status, reason; `-` for what is absent.
fn human_line(r: &AuditRecord) -> String {
    let time = audit::format_time(r.time).unwrap_or_else(|_| r.time.to_string());
    let mut ids = String::new();
    if let Some(batch) = &r.batch {
        let _ = write!(ids, "batch={batch}");
    }
    if !r.messages.is_empty() {
        if !ids.is_empty() {
            ids.push(' ');
        }
        let _ = write!(ids, "messages={}", r.messages.join(","));
    }
    let fields = [
        time,
        r.client.clone().unwrap_or_else(|| "-".into()),
        r.source.to_string(),
        r.action.clone(),
        r.route.clone(),
        if ids.is_empty() { "-".into() } else { ids },
        r.outcome.status.to_string(),
        r.outcome.reason.clone().unwrap_or_else(|| "-".into()),
    ];
    fields.map(|f| printable(&f)).join("  ")
}

/// Control characters escaped: a batch id chosen by a client cannot forge a line of the listing.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
