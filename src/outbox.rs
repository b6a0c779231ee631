//! The durable outbox as `mss serve` and `mss batch` use it: which store to open, and the delivery workers
//! `mss serve` runs next to the REST service, one set per mailbox whose credentials the server holds
//! (`[[senders]]`). Every background task of the outbox is started by [`start`], so that they stop together.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use mss_annuaire::MailAddress;
use mss_lps::LpsClient;
use mss_outbox::receipts::{self, ReceiptsConfig};
use mss_outbox::worker::{self, OperatorLimits, WorkerConfig};
use mss_outbox::{PostgresStore, SqliteStore, Store};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::lps::{ConnectArgs, SendFileConfig};

/// How often credential files are checked for a change.
const CREDENTIALS_POLL: Duration = Duration::from_secs(1);

/// Opens the outbox: a `postgresql://` URL (a queue shared by several workers), a SQLite file path, or
/// `<data>/outbox.sqlite` by default.
pub async fn open_store(data_dir: &Path, location: Option<&str>) -> Result<Arc<dyn Store>> {
    Ok(match location {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Arc::new(PostgresStore::connect(u, 8).await?)
        }
        Some(u) if u.contains("://") => {
            bail!("outbox: expected a postgresql:// URL or a file path, got {u:?}")
        }
        Some(path) => {
            Arc::new(SqliteStore::open(Path::new(path)).with_context(|| format!("outbox {path}"))?)
        }
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            Arc::new(SqliteStore::open(&data_dir.join(SqliteStore::FILE_NAME))?)
        }
    })
}

/// The host name: the default worker name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `[outbox]` of the `mss serve` configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxFileConfig {
    /// `postgresql://` URL or SQLite file (default `<data>/outbox.sqlite`); `--outbox` / `MSS_OUTBOX` win.
    pub url: Option<String>,
    /// This service's worker name, unique among the services sharing a PostgreSQL outbox (default: the host
    /// name); a restarted service of the same name takes its unfinished leases back at once.
    pub worker: Option<String>,
    /// Largest `POST /v1/batches` body in bytes (default 64 MiB).
    pub max_body_bytes: Option<usize>,
}

/// `[[senders]]`: a mailbox whose credentials the server holds; batches name it in `auth`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderFileConfig {
    /// The name requests give in `auth`.
    pub name: String,
    /// The mailbox (BAL).
    pub address: String,
    /// PER/ORG mailbox: file holding the Pro Santé Connect access token; re-read when it changes.
    pub token_file: Option<PathBuf>,
    /// APP mailbox: PKCS#12 certificate (IGC Santé ORG AUTH_CLI); re-read when it changes.
    pub certificate: Option<PathBuf>,
    /// File holding its password (else MSS_CERT_PASSWORD, else empty).
    pub certificate_password_file: Option<PathBuf>,
    /// Submission front `HOST:PORT` (default: `[send]` submission / app_submission, else DNS SRV).
    pub submission: Option<String>,
    /// IMAP front `HOST:PORT` where receipts arrive (default: the submission host on port 143, else DNS SRV).
    pub imap: Option<String>,
    /// Read the DSN/MDN that come back to this mailbox (default true): recipients move on to delivered,
    /// read or failed. The mailbox is left as it is (nothing flagged, nothing moved).
    pub receipts: Option<bool>,
    /// SMTP sessions in parallel for this mailbox (default 1).
    pub connections: Option<u16>,
    /// At most this many messages per second (default: no limit).
    pub rate: Option<f64>,
}

impl SenderFileConfig {
    /// The mailbox, checked.
    pub fn mailbox_address(&self) -> Result<MailAddress> {
        MailAddress::parse(&self.address)
            .with_context(|| format!("[[senders]] {:?}: address", self.name))
    }

    /// The same connection settings as `mss send` flags (one way to read credentials).
    fn connect_args(&self, send: Option<&SendFileConfig>) -> Result<ConnectArgs> {
        let app = self.certificate.is_some();
        let server = self.submission.clone().or_else(|| {
            send.and_then(|s| {
                if app {
                    s.app_submission.clone()
                } else {
                    s.submission.clone()
                }
            })
        });
        Ok(ConnectArgs {
            from: self.mailbox_address()?,
            token_file: self.token_file.clone(),
            cert: self.certificate.clone(),
            cert_password_file: self.certificate_password_file.clone(),
            server,
            imap_server: self.imap.clone(),
            ca_file: send
                .and_then(|s| s.ca_file.clone())
                .or_else(|| std::env::var_os(mss_lps::CA_FILE_ENV).map(PathBuf::from)),
        })
    }

    fn credential_files(&self) -> Vec<PathBuf> {
        [
            &self.token_file,
            &self.certificate,
            &self.certificate_password_file,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

/// Checks `[[senders]]`: names and mailboxes unique, exactly one kind of credentials each.
pub fn check_senders(senders: &[SenderFileConfig]) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    let mut addresses = std::collections::HashSet::new();
    for s in senders {
        let address = s.mailbox_address()?;
        if s.name.is_empty() || s.name.len() > 128 || s.name.chars().any(char::is_control) {
            bail!("[[senders]] name {:?}: 1 to 128 characters", s.name);
        }
        if !names.insert(s.name.clone()) {
            bail!("[[senders]] name {:?} given twice", s.name);
        }
        if !addresses.insert(address.to_string()) {
            bail!("[[senders]] {address} given twice");
        }
        match (&s.token_file, &s.certificate) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => bail!(
                "[[senders]] {:?}: give token_file (PER/ORG) or certificate (APP), not both",
                s.name
            ),
        }
        if s.certificate_password_file.is_some() && s.certificate.is_none() {
            bail!(
                "[[senders]] {:?}: certificate_password_file without certificate",
                s.name
            );
        }
        if s.connections.is_some_and(|c| !(1..=64).contains(&c)) {
            bail!("[[senders]] {:?}: connections must be 1 to 64", s.name);
        }
    }
    Ok(())
}

/// The outbox's background tasks.
pub struct Workers {
    tasks: JoinSet<()>,
}

impl Workers {
    /// Waits until the tasks stopped (after `stop` turned true), at most `deadline`; a task still sending
    /// then is abandoned (its leases expire, or are taken back by the next start of this worker name).
    pub async fn join(mut self, deadline: Duration) {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(deadline, all).await.is_err() {
            eprintln!("mss: outbox workers still busy after {deadline:?}; leaving them");
            self.tasks.abort_all();
        }
    }
}

/// Starts the delivery workers of every sender, until `stop` turns true. Leases a previous run of the same
/// worker name left are taken back first.
pub fn start(
    store: Arc<dyn Store>,
    senders: &[SenderFileConfig],
    send: Option<&SendFileConfig>,
    worker_name: &str,
    stop: watch::Receiver<bool>,
) -> Result<Workers> {
    let mut tasks = JoinSet::new();
    for s in senders {
        let args = s.connect_args(send)?;
        tasks.spawn(supervise(
            Arc::clone(&store),
            s.clone(),
            args,
            worker_name.to_owned(),
            stop.clone(),
        ));
    }
    Ok(Workers { tasks })
}

type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// One sender: reads its credentials, runs its worker loops and its receipts reader, and restarts them with the
/// new credentials when a credential file changes (the mailbox, paused for refused credentials, resumes).
async fn supervise(
    store: Arc<dyn Store>,
    sender: SenderFileConfig,
    args: ConnectArgs,
    worker_name: String,
    mut stop: watch::Receiver<bool>,
) {
    let address = args.from.to_string();
    let files = sender.credential_files();
    let connections = sender.connections.unwrap_or(1);
    let limits = OperatorLimits::new(usize::from(connections), sender.rate);
    let mut first = true;
    loop {
        if *stop.borrow() {
            return;
        }
        let seen = stamp(&files);
        let mailbox = match crate::lps::mailbox(&args) {
            Ok(m) => Some(m),
            Err(e) => {
                // the reason names the file, never its content
                let reason = format!("credentials of {} unusable: {e:#}", sender.name);
                eprintln!("mss: outbox: {address}: {reason}; waiting for new ones");
                if let Err(e) = store.pause(&address, &reason).await {
                    tracing::warn!(error = %e, "cannot record the pause");
                }
                None
            }
        };
        let mut loops = JoinSet::new();
        let (loop_stop_tx, loop_stop) = watch::channel(false);
        if let Some(mailbox) = mailbox {
            match store.resume(&address).await {
                Ok(true) => eprintln!("mss: outbox: {address}: credentials read; resuming"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot resume {address}"),
            }
            for i in 0..connections {
                let mut cfg = WorkerConfig::new(format!("serve:{worker_name}:{address}:{i}"));
                cfg.sender = Some(address.clone());
                cfg.lease_size = 8;
                if first && let Err(e) = store.release(&cfg.id).await {
                    tracing::warn!(error = %e, worker = %cfg.id, "cannot take back old leases");
                }
                let client = match LpsClient::new(mailbox.clone()) {
                    Ok(c) => Arc::new(c),
                    Err(e) => {
                        eprintln!("mss: outbox: {address}: {e}");
                        break;
                    }
                };
                let run = worker::run(
                    Arc::clone(&store),
                    client,
                    cfg,
                    Arc::clone(&limits),
                    loop_stop.clone(),
                );
                loops.spawn(async move { run.await.map(|_| ()) });
            }
            if sender.receipts.unwrap_or(true) {
                // its own IMAP session, next to the SMTP ones
                match LpsClient::new(mailbox.clone()) {
                    Ok(c) => {
                        let watch = receipts::watch(
                            Arc::clone(&store),
                            Arc::new(c),
                            ReceiptsConfig::default(),
                            loop_stop.clone(),
                        );
                        loops.spawn(async move { watch.await.map(|_| ()) });
                    }
                    Err(e) => eprintln!("mss: outbox: {address}: receipts: {e}"),
                }
            }
            if first {
                eprintln!(
                    "mss: outbox: delivering for {address} ({} with {connections} connection(s))",
                    sender.name
                );
            }
        }
        first = false;
        // until stopped, the credentials change, or every loop ended (a store failure: start again)
        let mut tick = tokio::time::interval(CREDENTIALS_POLL);
        let stopping = loop {
            tokio::select! {
                _ = stop.changed() => {
                    if *stop.borrow() { break true; }
                }
                _ = tick.tick() => {
                    if stamp(&files) != seen {
                        eprintln!("mss: outbox: {address}: credentials changed; reading them again");
                        break false;
                    }
                }
                ended = loops.join_next(), if !loops.is_empty() => {
                    match ended {
                        Some(Ok(Ok(_))) | None => {}
                        Some(Ok(Err(e))) => eprintln!("mss: outbox: {address}: stopped: {e}"),
                        Some(Err(e)) => eprintln!("mss: outbox: {address}: task failed: {e}"),
                    }
                    if loops.is_empty() {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        break false;
                    }
                }
            }
        };
        // the loops give their leases back as they stop
        let _ = loop_stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        if stopping {
            return;
        }
    }
}
