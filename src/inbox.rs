//! `mss inbox`: what arrives in a mailbox, kept locally (docs/mssante.md R1). `sync` reads the mailbox
//! once (or, with --watch, until interrupted) through its one reader (`mss_outbox::reader`): reports move
//! the outbox's recipients, every other message is kept in the inbox; `list` shows the inbox.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use mss_lps::LpsClient;
use mss_outbox::inbox::{InboxQuery, InboxStatus, format_ms};
use mss_outbox::reader::{self, ReaderConfig, SyncReport};

use crate::lps::ConnectArgs;

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Read the mailbox: new messages into the inbox, DSN/MDN into the outbox; one reading, or --watch.
    Sync(SyncArgs),
    /// The messages of the inbox, oldest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The store: a `postgresql://` URL or a SQLite file, else <data>/outbox.sqlite (the outbox's).
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// The folder read.
    #[arg(long, default_value = "INBOX", value_name = "NAME")]
    pub folder: String,
    /// Messages fetched per IMAP round trip.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub fetch_size: u16,
    /// Keep reading as messages arrive (IMAP IDLE, else polling) until interrupted.
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusFilter {
    New,
    Integrated,
    Error,
    All,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The store: a `postgresql://` URL or a SQLite file, else <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// Which messages.
    #[arg(long, value_enum, default_value = "all")]
    pub status: StatusFilter,
    /// Of this mailbox only.
    #[arg(long, value_name = "BAL")]
    pub mailbox: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(data_dir: &Path, cmd: InboxCommand) -> Result<()> {
    match cmd {
        InboxCommand::Sync(args) => sync(data_dir, args),
        InboxCommand::List(args) => list(data_dir, args),
    }
}

fn sync(data_dir: &Path, args: SyncArgs) -> Result<()> {
    let mailbox = crate::lps::mailbox(&args.connect)?;
    let rt = crate::runtime::current_thread()?;
    rt.block_on(async move {
        let store = mss_outbox::open_store(data_dir, args.outbox.as_deref()).await?;
        let client = Arc::new(LpsClient::new(mailbox)?);
        let cfg = ReaderConfig {
            folder: args.folder.clone(),
            receive: true,
            receipts: true,
            fetch_size: usize::from(args.fetch_size),
            ..ReaderConfig::default()
        };
        let r = if args.watch {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    let _ = stop_tx.send(true);
                }
            });
            reader::watch(Arc::clone(&store), client, cfg, stop_rx).await?
        } else {
            let r = reader::sync(store.as_ref(), &client, &cfg).await;
            client.close().await;
            r?
        };
        print_summary(&r);
        Ok(())
    })
}

fn print_summary(r: &SyncReport) {
    println!(
        "inbox: {} new ({} faulty), {} already kept; receipts: {} report(s): {} delivered, {} read, {} failed, {} unchanged",
        r.new,
        r.faulty,
        r.known,
        r.receipts.reports,
        r.receipts.delivered,
        r.receipts.read,
        r.receipts.failed,
        r.receipts.unchanged
    );
}

fn list(data_dir: &Path, args: ListArgs) -> Result<()> {
    let rt = crate::runtime::current_thread()?;
    rt.block_on(async move {
        let store = mss_outbox::open_store(data_dir, args.outbox.as_deref()).await?;
        let status = match args.status {
            StatusFilter::New => Some(InboxStatus::New),
            StatusFilter::Integrated => Some(InboxStatus::Integrated),
            StatusFilter::Error => Some(InboxStatus::Error),
            StatusFilter::All => None,
        };
        let mut query = InboxQuery {
            status,
            mailbox: args.mailbox.clone(),
            after: 0,
            limit: 500,
        };
        loop {
            let page = store.inbox_list(&query).await?;
            for e in &page {
                if args.json {
                    println!("{}", serde_json::to_string(e)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        e.id,
                        format_ms(e.received_at),
                        e.status.as_str(),
                        e.mailbox,
                        e.from.as_deref().unwrap_or("-"),
                        e.message_id.as_deref().unwrap_or("-"),
                        e.subject.as_deref().unwrap_or("")
                    );
                }
            }
            match page.last() {
                Some(last) if page.len() as u64 == query.limit => query.after = last.id,
                _ => return Ok(()),
            }
        }
    })
}
