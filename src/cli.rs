//! The command line: global options, the commands, and dispatch. Each command's arguments live beside
//! the command.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::{check, compose, data, directory, fhir, ldap, lps, search, serve, whitelist};

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
    Import(directory::ImportArgs),
    /// Search the local directory index.
    Search(search::SearchArgs),
    /// Write a synthetic extraction file in the national format.
    DemoData(directory::DemoArgs),
    /// Serve the REST API and the autocomplete page (builds the sample index on first run).
    Serve(serve::ServeArgs),
    /// Build a compliant MSSanté message (.eml) from a JSON compose request.
    Compose(compose::ComposeArgs),
    /// Check messages (.eml, from any software) against the MSSanté rules: every finding with its
    /// Référentiel #2 rule; exit status 1 when one is an error.
    Check(check::CheckArgs),
    /// Send a ready message (.eml) through the API LPS of its mailbox (SMTP submission, STARTTLS).
    Send(lps::SendArgs),
    /// Send many messages (a directory or a JSON Lines manifest) through the durable outbox: resumable,
    /// retried, with a progress bar.
    Batch(crate::batch::BatchArgs),
    /// Read the delivery (DSN) and read (MDN) receipts that came back to the mailbox and update the
    /// outbox: one reading, or --watch.
    Receipts(crate::batch::ReceiptsArgs),
    /// What arrives in a mailbox, kept locally: sync it (reports go to the outbox), list it.
    #[command(subcommand)]
    Inbox(crate::inbox::InboxCommand),
    /// HL7 v2 over MLLP, the hospital's side (DPI/PFI): send a message file, or listen for the DPI.
    #[command(subcommand)]
    Hl7(crate::hl7::Hl7Command),
    /// Proof of deployment of an operator's API LPS: IMAP and SMTP listings, then a verdict per point.
    Proof(lps::ProofArgs),
    /// Clients of the REST service and their keys (add, list, revoke, rotate).
    Client(crate::client::ClientArgs),
    /// Read the audit trail of the REST service: who sent or read what, allowed or refused.
    Audit(crate::audit::AuditArgs),
    /// The national whitelist of the espace de confiance (docs/mssante.md M8).
    #[command(subcommand)]
    Whitelist(whitelist::WhitelistCommand),
    /// Harvest the LDAP directory into the index despite its 100-entry cap (resumable).
    LdapSync(ldap::LdapSyncArgs),
    /// Convert an extraction file to LDIF for a test LDAP directory (slapadd).
    LdapLdif(ldap::LdifArgs),
    /// Synchronise the index with the Annuaire Santé FHIR API: full, then deltas (resumable).
    FhirSync(fhir::FhirSyncArgs),
    /// The vendor's conformance sandbox: a local API LPS operator with a Pro Santé Connect stand-in, an
    /// IHE_XDM auto-responder and a report of what each client did.
    #[command(subcommand)]
    Sandbox(crate::sandbox::SandboxCommand),
    /// Write the FHIR resources of the synthetic population (NDJSON), for test FHIR servers.
    #[command(hide = true)]
    FhirFixtures(fhir::FixturesArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> Result<()> {
        if let Command::Serve(args) = self.command {
            // the data directory may also come from the configuration file
            return serve::serve(self.data, args);
        }
        if let Command::Hl7(cmd) = self.command {
            // the data directory may come from the configuration file
            return crate::hl7::run(self.data, cmd);
        }
        if let Command::Audit(args) = self.command {
            // so may the trail's place
            return crate::audit::run(self.data, args);
        }
        let data_dir = data::data_dir(self.data)?;
        match self.command {
            Command::Import(args) => directory::import(&data_dir, args),
            Command::Search(args) => search::search(&data_dir, args),
            Command::DemoData(args) => directory::demo_data(args),
            Command::Compose(args) => compose::compose(&data_dir, args),
            Command::Check(args) => check::check(&data_dir, args),
            Command::Send(args) => lps::send(&data_dir, args),
            Command::Whitelist(cmd) => whitelist::run(&data_dir, cmd),
            Command::Client(args) => crate::client::run(&data_dir, args),
            Command::Batch(args) => crate::batch::batch(&data_dir, args),
            Command::Receipts(args) => crate::batch::receipts(&data_dir, args),
            Command::Inbox(cmd) => crate::inbox::run(&data_dir, cmd),
            Command::Proof(args) => lps::proof(args),
            Command::LdapSync(args) => ldap::sync(&data_dir, args),
            Command::LdapLdif(args) => ldap::ldif(args),
            Command::FhirSync(args) => fhir::sync(&data_dir, args),
            Command::FhirFixtures(args) => fhir::fixtures(args),
            Command::Sandbox(cmd) => crate::sandbox::run(&data_dir, cmd),
            Command::Serve(_) | Command::Audit(_) | Command::Hl7(_) => {
                unreachable!("handled above")
            }
        }
    }
}
