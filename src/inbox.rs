//! `mss inbox`: what arrives in a mailbox, kept locally (docs/mssante.md R1–R4). `sync` reads the mailbox
//! once (or, with --watch, until interrupted) through its one reader (`mss_outbox::reader`): reports move
//! the outbox's recipients, every other message is kept in the inbox; `list` shows the inbox, `show` one
//! message, `export` writes its files out; `ack` records the consumer's outcome and queues the MDN
//! (`mss_outbox::inbox::ack`), sent at once given the connection flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use mss_lps::LpsClient;
use mss_outbox::inbox::ack::{Ack, Answering};
use mss_outbox::inbox::{InboxEntry, InboxQuery, InboxStatus, format_ms};
use mss_outbox::reader::{self, ReaderConfig, Retention, SyncReport};
use mss_types::MailAddress;

use crate::lps::ConnectArgs;

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Read the mailbox: new messages into the inbox, DSN/MDN into the outbox; one reading, or --watch.
    Sync(SyncArgs),
    /// The messages of the inbox, oldest first.
    List(ListArgs),
    /// One message: headers, bodies, attachments and its IHE_XDM documents as verified.
    Show(ShowArgs),
    /// Write a message's attachments and IHE_XDM documents into a directory (names made safe, files 0600).
    Export(ExportArgs),
    /// Record the outcome of a message (final once recorded) and queue the MDN it asked for.
    Ack(AckArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The inbox id (`mss inbox list`).
    pub id: i64,
    /// The store: a `postgresql://` URL or a SQLite file, else <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The inbox id.
    pub id: i64,
    /// The directory written into (created 0700 if missing); existing files are never overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The store: a `postgresql://` URL or a SQLite file, else <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("outcome").required(true).args(["integrated", "error"])))]
// the connection flags are optional as a whole: given one, ConnectArgs asks for --from and
// `crate::lps::mailbox` for the credentials (an outcome flag is always there, so clap never does)
#[command(mut_arg("from", |a| a.required(false)))]
#[command(mut_arg("token_file", |a| a.required_unless_present_any(["integrated", "error"])))]
// MSS_CA_FILE alone must not count as a connection flag: ack() reads it itself
#[command(mut_arg("ca_file", |a| a.env(None)))]
pub struct AckArgs {
    /// The inbox id.
    pub id: i64,
    /// The message was integrated.
    #[arg(long)]
    pub integrated: bool,
    /// It was not: HL7 ERR-3 code (0, 100-103, 198, 199, 200-203, 207) or 900-906.
    #[arg(long, value_name = "CODE", requires = "label")]
    pub error: Option<u16>,
    /// The error's label, shown to the sender.
    #[arg(long, value_name = "TEXT", requires = "error")]
    pub label: Option<String>,
    /// Where an error goes when the message asked for no MDN (a plain message with the MDN's subject).
    #[arg(long, value_name = "BAL")]
    pub error_mailbox: Option<MailAddress>,
    /// The mailbox's label (`Intitule_BAL`), the From: display name of the MDN or error notice.
    #[arg(long, value_name = "TEXT")]
    pub from_label: Option<String>,
    /// Product reference (NIL), written in X-MSS-NIL of the MDN.
    #[arg(long, env = "MSS_NIL", value_name = "REF", default_value = "mss")]
    pub nil: String,
    /// The store: a `postgresql://` URL or a SQLite file, else <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// Given, the MDN is sent now (as `mss batch --drain --once`); else it waits in the outbox for
    /// `mss serve` or `mss batch --drain`. --from must be the mailbox that received the message.
    #[command(flatten)]
    pub connect: Option<ConnectArgs>,
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
    /// Most messages fetched per IMAP round trip and committed per transaction.
    #[arg(long, default_value_t = reader::DEFAULT_FETCH_SIZE as u16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub fetch_size: u16,
    /// Most megabytes fetched per IMAP round trip (one message at least); three fetches are in flight,
    /// so this bounds the memory whatever the messages' sizes.
    #[arg(long, default_value_t = (reader::DEFAULT_FETCH_BYTES >> 20) as u16, value_name = "MB",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub fetch_mb: u16,
    /// Keep reading as messages arrive (IMAP IDLE, else polling) until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// What becomes of a message at the operator once its outcome is recorded: delete (flag \Deleted,
    /// UID EXPUNGE), move:FOLDER or keep.
    #[arg(long, default_value = "delete", value_name = "delete|move:FOLDER|keep",
          value_parser = |s: &str| Retention::parse(s).map_err(|e| e.to_string()))]
    pub retention: Retention,
    /// Days a message is kept locally after its outcome (0: purged at this pass).
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub keep_days: u32,
    /// POST each message kept to this URL (Standard Webhooks), in order, retried for up to 3 days.
    #[arg(long, value_name = "URL", requires = "webhook_secret_file")]
    pub webhook: Option<String>,
    /// File holding the webhook's whsec_ secret.
    #[arg(long, value_name = "FILE", requires = "webhook")]
    pub webhook_secret_file: Option<PathBuf>,
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
        InboxCommand::Show(args) => show(data_dir, args),
        InboxCommand::Export(args) => export(data_dir, args),
        InboxCommand::Ack(args) => ack(data_dir, args),
    }
}

/// A message of the inbox and what the reader makes of it, or an error naming the id.
async fn entry(
    store: &dyn mss_outbox::Store,
    id: i64,
) -> Result<(InboxEntry, Option<mss_message::ReceivedMessage>)> {
    mss_outbox::inbox::open(store, id)
        .await?
        .with_context(|| format!("no message {id} in the inbox"))
}

fn show(data_dir: &Path, args: ShowArgs) -> Result<()> {
    let rt = crate::runtime::current_thread()?;
    rt.block_on(async move {
        let store = mss_outbox::open_store(data_dir, args.outbox.as_deref()).await?;
        let (e, m) = entry(store.as_ref(), args.id).await?;
        let hl7 = store
            .exchanges(mss_outbox::exchanges::Link::Inbox(e.id))
            .await?;
        if args.json {
            let shown = mss_outbox::inbox::shown(&e, m.as_ref(), &hl7);
            println!("{}", serde_json::to_string(&shown)?);
            return Ok(());
        }
        let Some(m) = m else {
            bail!(
                "inbox message {} cannot be read: {}",
                e.id,
                e.details.problems.join("; ")
            );
        };
        let view = m.view();
        println!("id:       {}", e.id);
        println!("mailbox:  {}", e.mailbox);
        println!("status:   {}", e.status.as_str());
        if let Some(o) = &e.outcome {
            println!(
                "outcome:  {} {}",
                o.code.map(|c| c.to_string()).unwrap_or_default(),
                o.label.as_deref().unwrap_or("")
            );
        }
        println!(
            "from:     {}{}",
            view.from_name
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default(),
            view.from.as_deref().unwrap_or("-")
        );
        if let Some(p) = &view.patient {
            println!("patient:  {} (INS {})", p.name, p.ins);
        }
        println!("subject:  {}", view.subject);
        println!("date:     {}", view.date.as_deref().unwrap_or("-"));
        if view.end_of_exchange {
            println!("end of exchange");
        }
        for a in &view.attachments {
            println!(
                "attachment: {} ({}, {} bytes)",
                a.filename, a.content_type, a.size
            );
        }
        if let Some(x) = &view.xdm {
            println!("patient id: {}", x.patient_id.as_deref().unwrap_or("-"));
            for d in &x.documents {
                println!(
                    "document: {} {} {} ({} bytes, {})",
                    d.name,
                    d.type_code,
                    d.title,
                    d.size,
                    if d.hash_ok && d.size_ok {
                        "verified"
                    } else {
                        "NOT verified"
                    }
                );
            }
        }
        for p in &view.problems {
            println!("problem: {p}");
        }
        for x in &hl7 {
            println!("hl7: {x}");
        }
        if let Some(t) = &view.text {
            println!("\n{t}");
        }
        Ok(())
    })
}

fn export(data_dir: &Path, args: ExportArgs) -> Result<()> {
    let rt = crate::runtime::current_thread()?;
    rt.block_on(async move {
        let store = mss_outbox::open_store(data_dir, args.outbox.as_deref()).await?;
        let (e, m) = entry(store.as_ref(), args.id).await?;
        let Some(m) = m else {
            bail!("inbox message {} cannot be read: nothing to export", e.id);
        };
        for f in mss_outbox::inbox::export::export(&m, &args.out)? {
            println!("{}\t{}\t{}", f.kind, f.size, f.path.display());
        }
        Ok(())
    })
}

fn ack(data_dir: &Path, mut args: AckArgs) -> Result<()> {
    if let Some(c) = args.connect.as_mut()
        && c.ca_file.is_none()
    {
        c.ca_file = std::env::var_os("MSS_CA_FILE").map(PathBuf::from);
    }
    let outcome = match (args.integrated, args.error, &args.label) {
        (true, None, None) => Ack::Integrated,
        (false, Some(code), Some(label)) => Ack::error(code, label)?,
        _ => bail!("give --integrated, or --error CODE with --label TEXT"),
    };
    let auth_ref = match &args.connect {
        Some(c) => match &c.cert {
            Some(p12) => format!(
                "cert:{}",
                p12.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            None => format!("token:{}", c.from),
        },
        None => "ack:the sender's worker".to_owned(),
    };
    let answering = Answering {
        auth_ref,
        product_reference: args.nil.clone(),
        error_mailbox: args.error_mailbox.clone(),
        label: args.from_label.clone(),
    };
    if let Some(c) = &args.connect {
        // the credentials are read before anything is recorded: a wrong flag changes nothing
        crate::lps::mailbox(c)?;
    }
    let rt = crate::runtime::current_thread()?;
    let report = rt.block_on(async {
        let store = mss_outbox::open_store(data_dir, args.outbox.as_deref()).await?;
        if let Some(c) = &args.connect
            && let Some(e) = store.inbox_get(args.id).await?
            && !e.mailbox.eq_ignore_ascii_case(c.from.as_str())
        {
            bail!(
                "inbox message {} arrived in {}: its answer goes from there, not --from {}",
                args.id,
                e.mailbox,
                c.from
            );
        }
        mss_outbox::inbox::ack::acknowledge(store.as_ref(), args.id, &outcome, &answering)
            .await?
            .with_context(|| format!("no message {} in the inbox", args.id))
    })?;
    drop(rt);
    let o = report.entry.outcome.as_ref();
    println!(
        "inbox message {}: {}{}{}",
        report.entry.id,
        report.entry.status.as_str(),
        o.and_then(|o| o.code)
            .map(|c| format!(" {c}"))
            .unwrap_or_default(),
        o.and_then(|o| o.label.as_deref())
            .map(|l| format!(" {l}"))
            .unwrap_or_default(),
    );
    if !report.recorded {
        println!("(recorded before; this ack changed nothing)");
    }
    match report.answer {
        Some(a) => println!("{} queued in the outbox (message {})", a.kind, a.message),
        None => println!("no answer asked"),
    }
    match args.connect {
        Some(connect) if report.answer.is_some() => {
            crate::batch::drain(data_dir, connect, args.outbox)
        }
        _ => Ok(()),
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
            fetch_bytes: u64::from(args.fetch_mb) << 20,
            retention: args.retention.clone(),
            keep: std::time::Duration::from_secs(u64::from(args.keep_days) * 24 * 3600),
            webhook: match (&args.webhook, &args.webhook_secret_file) {
                (Some(url), Some(file)) => Some(Arc::new(
                    mss_outbox::inbox::push::Webhook::with_secret_file(url, file)?,
                )),
                _ => None,
            },
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
    // more lines only when retention or the webhook did something: the first stays what scripts read
    let p = &r.pushed;
    if p.pushed > 0 || p.failed > 0 || p.given_up > 0 {
        println!(
            "webhook: {} pushed, {} failed (retried later), {} given up",
            p.pushed, p.failed, p.given_up
        );
    }
    if r.left > 0 || r.purged > 0 {
        println!(
            "retention: {} removed from the operator ({} only flagged \\Deleted: no UIDPLUS), {} purged locally",
            r.left, r.flagged_only, r.purged
        );
    }
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
