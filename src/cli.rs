//! Command-line arguments and dispatch.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use mss_annuaire::BalType;

use crate::{data, directory};

/// MSSanté beside your health software: directory search, message composition, API LPS client.
#[derive(Debug, Parser)]
#[command(name = "mss", version, about, propagate_version = true)]
pub struct Cli {
    /// Data directory (index, outbox). Default: $XDG_DATA_HOME/mss, else ~/.local/share/mss.
    #[arg(long, global = true, env = "MSS_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// More logging on stderr (-v info, -vv debug); MSS_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a national extraction file (.txt, .zip, or - for stdin) into a fresh index.
    Import(ImportArgs),
    /// Search the local directory index.
    Search(SearchArgs),
    /// Write a synthetic extraction file in the national format.
    DemoData(DemoArgs),
    /// Serve the REST API and the autocomplete page (builds the sample index on first run).
    Serve(crate::serve::ServeArgs),
    /// Build a compliant MSSanté message (.eml) from a JSON compose request.
    Compose(crate::compose::ComposeArgs),
    /// Send a ready message (.eml) through the API LPS of its mailbox (SMTP submission, STARTTLS).
    Send(crate::lps::SendArgs),
    /// Send many messages (a directory or a JSON Lines manifest) through the durable outbox: resumable,
    /// retried, with a progress bar.
    Batch(crate::batch::BatchArgs),
    /// Read the delivery (DSN) and read (MDN) receipts that came back to the mailbox and update the
    /// outbox: one reading, or --watch.
    Receipts(crate::batch::ReceiptsArgs),
    /// Proof of deployment of an operator's API LPS: IMAP and SMTP listings, then a verdict per point.
    Proof(crate::lps::ProofArgs),
    /// Harvest the LDAP directory into the index despite its 100-entry cap (resumable).
    LdapSync(crate::ldap::SyncArgs),
    /// Convert an extraction file to LDIF for a test LDAP directory (slapadd).
    LdapLdif(crate::ldap::LdifArgs),
    /// Synchronise the index with the Annuaire Santé FHIR API: full, then deltas (resumable).
    FhirSync(crate::fhir::SyncArgs),
    /// Write the FHIR resources of the synthetic population (NDJSON), for test FHIR servers.
    #[command(hide = true)]
    FhirFixtures(crate::fhir::FixturesArgs),
}

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

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to look for (names, organisation, service, city, profession); the last one may be a prefix.
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
    pub ldap: crate::ldap::LdapArgs,
}

/// `mss search --source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchSource {
    /// The local index.
    Local,
    /// The LDAP directory, live (at most 100 entries per query).
    Ldap,
}

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

fn parse_bal_type(s: &str) -> Result<BalType, String> {
    s.parse().map_err(|e: mss_types::Error| e.to_string())
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> Result<()> {
        if let Command::Serve(args) = self.command {
            // the data directory may also come from the configuration file
            return crate::serve::serve(self.data, args);
        }
        let data_dir = data::data_dir(self.data)?;
        match self.command {
            Command::Import(args) => directory::import(&data_dir, args),
            Command::Search(args) if args.source == SearchSource::Ldap => crate::ldap::search(args),
            Command::Search(args) => directory::search(&data_dir, args),
            Command::DemoData(args) => directory::demo_data(args),
            Command::Compose(args) => crate::compose::compose(args),
            Command::Send(args) => crate::lps::send(args),
            Command::Batch(args) => crate::batch::batch(&data_dir, args),
            Command::Receipts(args) => crate::batch::receipts(&data_dir, args),
            Command::Proof(args) => crate::lps::proof(args),
            Command::LdapSync(args) => crate::ldap::sync(&data_dir, args),
            Command::LdapLdif(args) => crate::ldap::ldif(args),
            Command::FhirSync(args) => crate::fhir::sync(&data_dir, args),
            Command::FhirFixtures(args) => crate::fhir::fixtures(args),
            Command::Serve(_) => unreachable!("handled above"),
        }
    }
}
