//! `mss ldap-sync`, `mss ldap-ldif`, and the settings of the national LDAP directory (docs/mssante.md D2) that
//! `mss search --source ldap` shares.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use mss_annuaire::extraction::{self, Record};
use mss_annuaire::ldap::{
    self, Bind, Filter, HarvestOptions, LdapClient, LdapConfig, Mapping, Secret, Stopped,
};
use mss_index::DirectoryIndex;
use mss_index::sources::{self, LDAP_STATE_FILE};

use crate::{progress, runtime};

/// Environment variable holding the bind password (instead of `--password-file`).
pub const PASSWORD_ENV: &str = "MSS_LDAP_PASSWORD";

/// Where the LDAP directory is and how to reach it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "LDAP directory")]
pub struct LdapArgs {
    /// Server URL: ldap://host[:port] or ldaps://host[:port]. Partners' (test) directory:
    /// ldap://partenaires.annuaire.sante.fr:389.
    #[arg(long, env = "MSS_LDAP_URL", default_value = ldap::PRODUCTION_URL, value_name = "URL")]
    pub url: String,
    /// Base DN of the mailboxes.
    #[arg(long, env = "MSS_LDAP_BASE", default_value = ldap::DEFAULT_BASE, value_name = "DN")]
    pub base: String,
    /// Simple bind as this DN (default: anonymous); the password comes from --password-file or
    /// MSS_LDAP_PASSWORD.
    #[arg(long, env = "MSS_LDAP_BIND_DN", value_name = "DN")]
    pub bind_dn: Option<String>,
    /// File whose first line is the bind password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Upgrade ldap:// with StartTLS before binding.
    #[arg(long)]
    pub starttls: bool,
    /// PEM file of the certificate authorities trusted for StartTLS / ldaps:// (default: the system's).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Attribute mapping overriding the built-in one, key by key (TOML; see crates/annuaire/ldap/mapping.toml).
    #[arg(long, env = "MSS_LDAP_MAPPING", value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Seconds to connect (TCP and TLS).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub connect_timeout: u64,
    /// Seconds the server may work on a query (sent as its time limit; the national limit is 60).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub time_limit: u64,
}

impl LdapArgs {
    /// The client settings; reads the password file or MSS_LDAP_PASSWORD, and the mapping file.
    pub fn config(&self) -> Result<LdapConfig> {
        let mut c = LdapConfig::new(&self.url, &self.base)?;
        c.starttls = self.starttls;
        c.ca_file = self.ca_file.clone();
        c.connect_timeout = Duration::from_secs(self.connect_timeout.max(1));
        c.time_limit = Duration::from_secs(self.time_limit);
        // a reply may take the server's whole time limit, plus the way back
        c.operation_timeout = Duration::from_secs(self.time_limit.max(1) + 5);
        if let Some(path) = &self.mapping {
            c.mapping = Arc::new(Mapping::load(path)?);
        }
        c.bind = bind(
            self.bind_dn.as_deref(),
            self.password_file.as_deref(),
            ("--bind-dn", "--password-file"),
        )?;
        Ok(c)
    }
}

/// A simple bind as `dn` with the password of `password_file` (else MSS_LDAP_PASSWORD); anonymous without
/// `dn`. `names` are the two settings as the caller knows them, for the messages.
pub fn bind(dn: Option<&str>, password_file: Option<&Path>, names: (&str, &str)) -> Result<Bind> {
    let (dn_name, file_name) = names;
    match (dn, password_file) {
        (Some(dn), file) => {
            let password = match file {
                Some(path) => Secret::from_file(path)?,
                None => match std::env::var(PASSWORD_ENV) {
                    Ok(p) => Secret::new(p),
                    Err(_) => bail!(
                        "{dn_name} needs a password: give {file_name} FILE or set {PASSWORD_ENV}"
                    ),
                },
            };
            Ok(Bind::Simple {
                dn: dn.to_owned(),
                password,
            })
        }
        (None, Some(_)) => bail!("{file_name} needs {dn_name}"),
        (None, None) => Ok(Bind::Anonymous),
    }
}

/// `mss ldap-sync`.
#[derive(Debug, Args)]
pub struct LdapSyncArgs {
    #[command(flatten)]
    pub ldap: LdapArgs,
    /// Only entries matching this RFC 4515 filter, e.g. `(mssanteDepartment=75)`.
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,
    /// Queries in flight at once (1 to 16).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub concurrency: u16,
    /// Stop after this many queries; the next run continues where this one stopped.
    #[arg(long, value_name = "N")]
    pub max_queries: Option<u64>,
    /// Forget an interrupted harvest and start over.
    #[arg(long)]
    pub restart: bool,
    /// Never draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `mss ldap-ldif`.
#[derive(Debug, Args)]
pub struct LdifArgs {
    /// The extraction to convert: `.zip`, `.txt`, or `-` for stdin.
    pub file: PathBuf,
    /// Base DN the entries go under (its own entry is written first).
    #[arg(long, default_value = ldap::DEFAULT_BASE, value_name = "DN")]
    pub base: String,
    /// Attribute mapping overriding the built-in one.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `mss ldap-sync`: harvests the directory into the index (upserts), then removes the LDAP entries it
/// no longer holds, only when the harvest was complete.
pub fn sync(data_dir: &Path, args: LdapSyncArgs) -> Result<()> {
    let config = args.ldap.config()?;
    let url = config.url.clone();
    let filter = args
        .filter
        .as_deref()
        .map(Filter::parse)
        .transpose()
        .context("--filter")?;
    let client = Arc::new(LdapClient::new(config)?);
    let index = DirectoryIndex::open_or_create(data_dir)
        .with_context(|| format!("opening the index in {}", data_dir.display()))?;
    let state_file = data_dir.join(LDAP_STATE_FILE);
    if args.restart {
        ldap::harvest::forget_state(&state_file)?;
    }
    let options = HarvestOptions {
        filter,
        concurrency: usize::from(args.concurrency),
        max_queries: args.max_queries,
        state_file: Some(state_file.clone()),
        ..HarvestOptions::default()
    };
    let bar = progress::bar(
        args.quiet,
        Some(1),
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} parts, {msg}",
    );
    let run = runtime::multi_thread(Some(2))?.block_on(async {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let progress = |p: &ldap::Progress| {
            bar.set_length(p.parts_done + p.parts_pending);
            bar.set_position(p.parts_done);
            bar.set_message(format!("{} entries, {} queries", p.entries, p.queries));
        };
        sources::ldap_into(&index, client, &options, progress, stop).await
    });
    bar.finish_and_clear();
    let run = run.with_context(|| {
        format!("harvesting {url} (progress is saved: run the same command again to resume)")
    })?;
    let report = &run.report;
    let took = report.elapsed.as_secs_f64();
    let resumed = if report.resumed { ", resumed" } else { "" };
    let counts = format!(
        "{} entries, {} queries in {took:.1} s{resumed}, {} rejected, {} red-listed dropped",
        report.entries, report.queries, report.rejected, report.red_listed
    );
    if !report.complete {
        return match report.stopped {
            Some(Stopped::Interrupted) => bail!(
                "ldap-sync interrupted after {counts}; progress saved in {}: run the same command again to resume",
                state_file.display()
            ),
            Some(Stopped::MaxQueries) => {
                println!(
                    "ldap-sync: stopped after {counts} (--max-queries); progress saved in {}: run again to continue",
                    state_file.display()
                );
                Ok(())
            }
            None => bail!(
                "ldap-sync incomplete: {} queries still exceed the server's limit and cannot be cut further \
                 (first: {}); {counts}; no entry removed",
                report.unsplittable.len(),
                report.unsplittable.first().map_or("", String::as_str)
            ),
        };
    }
    let removed = run.removed;
    println!(
        "ldap-sync: complete: {counts}; {removed} removed (gone from the directory); the index holds {} entries",
        index.num_entries()
    );
    Ok(())
}

/// `mss ldap-ldif`: an extraction as LDIF for a test directory (slapadd), through the mapping.
pub fn ldif(args: LdifArgs) -> Result<()> {
    let mapping = match &args.mapping {
        Some(path) => Mapping::load(path)?,
        None => Mapping::default(),
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    ldap::write_ldif_base(&args.base, &mut out)?;
    let (written, rejected) = extraction::read_path(&args.file, |records| {
        let mut written = 0u64;
        let mut rejected = 0u64;
        let mut seen = extraction::SeenAddresses::new();
        for record in records {
            match record? {
                Record::Entry(e) => {
                    // one entry per address: a directory holds each mailbox once
                    if seen.first_time(&e.address) {
                        mapping.write_ldif(&e, &args.base, &mut out)?;
                        written += 1;
                    }
                }
                Record::Rejected(_) => rejected += 1,
            }
        }
        Ok::<_, anyhow::Error>((written, rejected))
    })
    .with_context(|| format!("converting {}", args.file.display()))?;
    out.flush().context("writing the LDIF")?;
    eprintln!(
        "mss: wrote {written} entries under {} ({rejected} lines rejected)",
        args.base
    );
    Ok(())
}
