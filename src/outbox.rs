//! The outbox as `mss serve` wires it: its `[outbox]` and `[[senders]]` configuration, and the supervisor
//! of its delivery workers (`mss_outbox::supervisor`), given each sender's credentials as `mss send` reads
//! them and printing what the supervisors report.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use mss_outbox::Store;
use mss_outbox::supervisor::{Event, ServedSender, Supervisor, WorkerSet};
use tokio::sync::watch;

use crate::lps::{ConnectArgs, SendFileConfig};

pub use mss_outbox::config::{SenderConfig as SenderFileConfig, check_senders};

/// `[outbox]` of the `mss serve` configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxFileConfig {
    /// `postgresql://` URL or SQLite file (default `<data>/outbox.sqlite`); `--outbox` / `MSS_OUTBOX` win.
    pub url: Option<String>,
    /// This service's worker name, unique among the services sharing an outbox (default: the host
    /// name); a restarted service of the same name takes its unfinished leases back at once. A second
    /// service started under a name that a live one holds is refused.
    pub worker: Option<String>,
    /// Largest `POST /v1/batches` body in bytes (default 64 MiB).
    pub max_body_bytes: Option<usize>,
}

/// The same connection settings as `mss send` flags (one way to read credentials).
fn connect_args(sender: &SenderFileConfig, send: Option<&SendFileConfig>) -> Result<ConnectArgs> {
    let app = sender.certificate.is_some();
    let server = sender.submission.clone().or_else(|| {
        send.and_then(|s| {
            if app {
                s.app_submission.clone()
            } else {
                s.submission.clone()
            }
        })
    });
    Ok(ConnectArgs {
        from: sender.mailbox_address()?,
        token_file: sender.token_file.clone(),
        cert: sender.certificate.clone(),
        cert_password_file: sender.certificate_password_file.clone(),
        server,
        imap_server: sender.imap.clone(),
        ca_file: send
            .and_then(|s| s.ca_file.clone())
            .or_else(|| std::env::var_os(mss_lps::CA_FILE_ENV).map(PathBuf::from)),
    })
}

/// Starts the delivery workers of every sender, until `stop` turns true; a worker name another live
/// service holds is refused. Leases a previous run of the same worker name left are taken back first.
pub async fn start(
    store: Arc<dyn Store>,
    senders: &[SenderFileConfig],
    send: Option<&SendFileConfig>,
    worker_name: &str,
    stop: watch::Receiver<bool>,
) -> Result<Supervisor> {
    start_logged(store, senders, send, worker_name, None, stop).await
}

/// [`start`], the workers and readers recording how each connection went in `connections` (the
/// service's log, which the ops console reads).
pub async fn start_logged(
    store: Arc<dyn Store>,
    senders: &[SenderFileConfig],
    send: Option<&SendFileConfig>,
    worker_name: &str,
    connections: Option<Arc<mss_outbox::overview::ConnectionLog>>,
    stop: watch::Receiver<bool>,
) -> Result<Supervisor> {
    let mut served = Vec::with_capacity(senders.len());
    for s in senders {
        let args = connect_args(s, send)?;
        let address = args.from.to_string();
        let name = s.name.clone();
        let mut set = WorkerSet::new(
            format!("serve:{worker_name}:{address}"),
            address,
            s.connections.unwrap_or(1),
            s.rate,
        );
        set.worker.lease_size = 8;
        set.worker.connections = connections.clone();
        served.push(ServedSender {
            name: s.name.clone(),
            set,
            credential_files: s.credential_files(),
            // the reason names the file, never its content
            credentials: Arc::new(move || {
                crate::lps::mailbox(&args)
                    .map_err(|e| format!("credentials of {name} unusable: {e:#}"))
            }),
            receipts: s.receipts.unwrap_or(true),
            receive: s.receive.unwrap_or(false),
            retention: s.retention()?,
            keep: s.keep(),
            webhook: s.webhook()?.map(Arc::new),
        });
    }
    let on_event = Arc::new(|s: &ServedSender, event: Event| {
        let address = &s.set.sender;
        match event {
            Event::Delivering => eprintln!(
                "mss: outbox: delivering for {address} ({} with {} connection(s))",
                s.name, s.set.connections
            ),
            other => eprintln!("mss: outbox: {address}: {other}"),
        }
    });
    Ok(Supervisor::start(store, served, on_event, stop).await?)
}
