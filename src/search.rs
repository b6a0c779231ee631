//! `mss search`: the local index, or the national LDAP directory live (docs/mssante.md D2).

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use mss_annuaire::BalType;
use mss_annuaire::ldap::{LdapClient, Limit};
use mss_index::{Filters, SearchRequest};

use crate::ldap::LdapArgs;
use crate::{data, runtime};

/// `mss search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to look for (names, organisation, service, city, profession; or an address, whole or by its
    /// beginning); the last one may be a prefix, and so may a word that is no whole word of the directory.
    #[arg(default_value = "")]
    pub query: Vec<String>,
    /// Mailbox type.
    #[arg(long = "type", value_parser = parse_bal_type, value_name = "PER|ORG|APP|CAB")]
    pub bal_type: Option<BalType>,
    /// Profession code (e.g. 10 médecin, 21 pharmacien).
    #[arg(long, value_name = "CODE")]
    pub profession: Option<String>,
    /// Speciality (savoir-faire) code (e.g. SM54).
    #[arg(long, value_name = "CODE")]
    pub speciality: Option<String>,
    /// Department code (e.g. 75, 2A, 974).
    #[arg(long, value_name = "CODE")]
    pub dept: Option<String>,
    /// Postal code.
    #[arg(long, value_name = "CODE")]
    pub postal_code: Option<String>,
    /// Number of results (1 to 100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub limit: u16,
    /// Continue after a previous page (the cursor printed with it).
    #[arg(long)]
    pub cursor: Option<String>,
    /// One JSON document per entry (JSON Lines), fields in snake_case.
    #[arg(long)]
    pub json: bool,
    /// Where to search: the local index, or the LDAP directory live (--url, --base...).
    #[arg(long, value_enum, default_value_t = SearchSource::Local)]
    pub source: SearchSource,
    #[command(flatten)]
    pub ldap: LdapArgs,
}

/// `mss search --source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchSource {
    /// The local index.
    Local,
    /// The LDAP directory, live (at most 100 entries per query).
    Ldap,
}

fn parse_bal_type(s: &str) -> Result<BalType, String> {
    s.parse().map_err(|e: mss_types::Error| e.to_string())
}

/// `mss search`: the local index, or the LDAP directory live.
pub fn search(data_dir: &Path, args: SearchArgs) -> Result<()> {
    match args.source {
        SearchSource::Local => local(data_dir, args),
        SearchSource::Ldap => ldap(args),
    }
}

/// The words, filters and page of `mss search`, whichever source answers.
fn request(args: &SearchArgs) -> SearchRequest {
    SearchRequest {
        q: args.query.join(" "),
        filters: Filters {
            bal_type: args.bal_type,
            profession: args.profession.clone(),
            speciality: args.speciality.clone(),
            department: args.dept.clone(),
            postal_code: args.postal_code.clone(),
        },
        limit: usize::from(args.limit),
        cursor: args.cursor.clone(),
    }
}

/// `mss search --source local`: a page of the index, with the cursor of the next one.
fn local(data_dir: &Path, args: SearchArgs) -> Result<()> {
    let index = data::open_or_build_sample(data_dir)?;
    let results = index.search(&request(&args))?;
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
    if !results.dropped.is_empty() {
        writeln!(
            out,
            "-- nothing matched every word: left out {}",
            results.dropped.join(", ")
        )?;
    }
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

/// `mss search --source ldap`: the server's answer, flagged partial when it stopped at a limit.
fn ldap(args: SearchArgs) -> Result<()> {
    if args.cursor.is_some() {
        bail!(
            "--cursor: the LDAP directory has no paging (at most 100 entries per query); refine the query instead"
        );
    }
    let config = args.ldap.config()?;
    let url = config.url.clone();
    let client = LdapClient::new(config)?;
    let query = request(&args).ldap_query();
    let answer = runtime::multi_thread(Some(2))?
        .block_on(async {
            let answer = client.search(&query).await;
            client.close().await;
            answer
        })
        .context("searching the LDAP directory")?;
    if let Some(f) = &answer.filter {
        tracing::info!(filter = %f, "LDAP search");
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        for e in &answer.entries {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        if let Some(hint) = &answer.hint {
            eprintln!("mss: {}: {hint}", partial_word(answer.partial));
        }
        if let Some(warning) = &answer.warning {
            eprintln!("mss: {warning}");
        }
        return Ok(());
    }
    for e in &answer.entries {
        writeln!(out, "{}", result_line(e))?;
    }
    let n = answer.entries.len();
    let plural = if n == 1 { "" } else { "s" };
    match answer.partial {
        Some(_) => writeln!(out, "-- {n} result{plural} from {url} (partial)")?,
        None => writeln!(out, "-- {n} result{plural} from {url}")?,
    }
    if let Some(hint) = &answer.hint {
        writeln!(out, "-- {}: {hint}", partial_word(answer.partial))?;
    }
    if let Some(warning) = &answer.warning {
        writeln!(out, "-- {warning}")?;
    }
    out.flush()?;
    Ok(())
}

fn partial_word(limit: Option<Limit>) -> &'static str {
    match limit {
        Some(_) => "partial",
        None => "note",
    }
}
