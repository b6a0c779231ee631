//! `mss hl7`: HL7 v2 over MLLP for integration engineers (docs/mssante.md H1–H3). `send` sends one
//! message file and prints the acknowledgement; `listen` is the PFI's DPI listener of `[hl7]` alone
//! (what `mss serve` also runs when `[hl7] listen` is set): the DPI's documents into the outbox,
//! acknowledged once queued.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mss_hl7::Message;
use mss_hl7::ack::AckCode;
use mss_hl7::mllp::{ClientOptions, MllpClient};
use mss_hl7::pfi::{DpiListener, Hl7Config, listener::ListenerConfig};
use mss_outbox::Store;

#[derive(Debug, Subcommand)]
pub enum Hl7Command {
    /// Send one HL7 v2 message (ER7 file; segments may end with line feeds) over MLLP and print the
    /// acknowledgement; exit status 0 on AA, 3 on AE/AR.
    Send(SendArgs),
    /// Accept the DPI's MDM/ORU over MLLP as `[hl7]` of --config says, queue what they ask in the outbox
    /// and deliver it (unless --queue-only), until interrupted.
    Listen(ListenArgs),
    /// Send the documents received in the `[hl7] sender` mailbox (its inbox) to `[hl7] dpi` as MDM, and
    /// record each message integrated or in error as the DPI answers (the MDN follows); send the DPI the
    /// business acks (ZAM^Z02 delivery, ZAM^Z03 reading) its messages asked for as receipts come back:
    /// one pass with --once (every ack waiting, whatever its backoff), else every 5 s until interrupted.
    Forward(ForwardArgs),
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The service's TOML configuration (`[hl7]` with `dpi` and `sender`, `[[senders]]`, `[send]`).
    #[arg(long, env = "MSS_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// The store: a `postgresql://` URL or a SQLite file, else `[outbox] url`, else <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// One pass, then exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The message file.
    pub file: PathBuf,
    /// The MLLP listener, `HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Seconds to wait for the acknowledgement.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Sends in all when the connection breaks or no answer comes (the same bytes, same MSH-10).
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The service's TOML configuration (`[hl7]`, `[[senders]]`, `[send]`, `[outbox]`).
    #[arg(long, env = "MSS_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Where to listen, instead of `[hl7] listen`.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// The outbox: a `postgresql://` URL or a SQLite file, else `[outbox] url`, else <data>/outbox.sqlite.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// Queue only: another service's workers deliver.
    #[arg(long)]
    pub queue_only: bool,
}

/// The parts of the service's configuration file the listener reads (the others are `mss serve`'s).
#[derive(Debug, Default, serde::Deserialize)]
struct ListenFile {
    data: Option<PathBuf>,
    send: Option<crate::lps::SendFileConfig>,
    outbox: Option<crate::outbox::OutboxFileConfig>,
    #[serde(default)]
    senders: Vec<crate::outbox::SenderFileConfig>,
    hl7: Option<Hl7Config>,
}

pub fn run(data_flag: Option<PathBuf>, cmd: Hl7Command) -> Result<()> {
    match cmd {
        Hl7Command::Send(args) => send(args),
        Hl7Command::Listen(args) => listen(data_flag, args),
        Hl7Command::Forward(args) => forward(data_flag, args),
    }
}

fn send(args: SendArgs) -> Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let message =
        Message::parse(&bytes).with_context(|| format!("{} is not HL7 v2", args.file.display()))?;
    let options = ClientOptions {
        ack_timeout: Duration::from_secs(args.timeout),
        attempts: args.attempts.max(1),
        ..ClientOptions::default()
    };
    let runtime = crate::runtime::current_thread()?;
    let (ack, read) =
        runtime.block_on(async { MllpClient::new(&args.to, options).send(&message).await })?;
    println!("{}", ack.to_text().trim_end().replace('\r', "\n"));
    if read.code != AckCode::AA {
        std::process::exit(3);
    }
    Ok(())
}

/// What the DPI listener needs from the service's configuration.
pub struct Wiring<'a> {
    /// `[hl7]`.
    pub hl7: &'a Hl7Config,
    /// `[[senders]]`.
    pub senders: &'a [crate::outbox::SenderFileConfig],
    /// `[send]`: the product reference composition needs.
    pub send: Option<&'a crate::lps::SendFileConfig>,
    /// The espace de confiance of the service.
    pub trust: mss_message::Trust,
    /// Told of every answer to the DPI (`mss serve` counts them in its metrics).
    pub observer: Option<mss_hl7::pfi::listener::Observer>,
}

/// Binds `[hl7] listen` (or `listen`) and serves the DPI until `stop`; `None` without a listener.
pub async fn start_listener(
    wiring: Wiring<'_>,
    listen: Option<&str>,
    store: Arc<dyn Store>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let hl7 = wiring.hl7;
    hl7.check()?;
    let Some(listen) = listen.or(hl7.listen.as_deref()) else {
        return Ok(None);
    };
    let Some(sender_name) = &hl7.sender else {
        bail!("[hl7] listen needs sender: the [[senders]] name whose mailbox sends for the DPI");
    };
    let Some(sender) = wiring.senders.iter().find(|s| &s.name == sender_name) else {
        bail!("[hl7] sender = {sender_name:?}: no [[senders]] entry of that name");
    };
    let Some(send) = wiring.send else {
        bail!("[hl7] listen needs [send] product_reference: the DPI's documents are composed here");
    };
    let mut compose = crate::lps::send_config(send)?.compose;
    compose.trust = wiring.trust;
    let dpi = Arc::new(DpiListener::new(ListenerConfig {
        store,
        sender_name: sender_name.clone(),
        sender: sender.mailbox_address()?,
        compose,
        hl7: hl7.clone(),
        observer: wiring.observer,
    }));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("[hl7] listening on {listen}"))?;
    let local = listener.local_addr().context("reading the HL7 address")?;
    eprintln!(
        "mss: hl7: listening for the DPI on {local} (MLLP), queueing for {} (batch {})",
        sender.address,
        dpi.batch()
    );
    let idle = Duration::from_secs(hl7.idle_timeout_secs.unwrap_or(300));
    Ok(Some(tokio::spawn(mss_hl7::pfi::listener::serve(
        listener, dpi, idle, stop,
    ))))
}

fn listen(data_flag: Option<PathBuf>, args: ListenArgs) -> Result<()> {
    let file = crate::config::load::<ListenFile>(Some(&args.config))?;
    let data_dir = crate::data::data_dir(data_flag.or(file.data.clone()))?;
    crate::outbox::check_senders(&file.senders)?;
    let Some(hl7) = file.hl7.as_ref() else {
        bail!("{}: no [hl7] section", args.config.display());
    };
    if args.listen.is_none() && hl7.listen.is_none() {
        bail!("give --listen or [hl7] listen");
    }
    let trust = crate::whitelist::installed(&data_dir)?;
    let outbox_file = file.outbox.as_ref();
    let location = args
        .outbox
        .clone()
        .or_else(|| outbox_file.and_then(|o| o.url.clone()));
    let worker_name = outbox_file
        .and_then(|o| o.worker.clone())
        .unwrap_or_else(mss_outbox::default_worker_name);
    let runtime = crate::runtime::multi_thread(None)?;
    runtime.block_on(async move {
        let store = mss_outbox::open_store(&data_dir, location.as_deref()).await?;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let wiring = Wiring {
            hl7,
            senders: &file.senders,
            send: file.send.as_ref(),
            trust,
            observer: None,
        };
        let server = start_listener(wiring, args.listen.as_deref(), store.clone(), stop.clone())
            .await?
            .context("no listener")?;
        let workers = if args.queue_only {
            None
        } else {
            Some(
                crate::outbox::start(
                    store,
                    &file.senders,
                    file.send.as_ref(),
                    &worker_name,
                    stop.clone(),
                )
                .await?,
            )
        };
        crate::runtime::shutdown_signal().await;
        let _ = stop_tx.send(true);
        let _ = server.await;
        if let Some(w) = workers {
            w.join(Duration::from_secs(20)).await;
        }
        eprintln!("mss: hl7: stopped");
        Ok(())
    })
}

/// What one forwarder pass sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passed {
    /// Received messages whose documents went to the DPI (they got an outcome).
    pub messages: usize,
    /// Business acks (ZAM) the DPI answered.
    pub acks: usize,
}

/// The forwarder of `[hl7] dpi`: the sender mailbox's received documents, and the business acks of the
/// messages the DPI sent, to the DPI.
pub struct Forwarder {
    mailbox: String,
    client: MllpClient,
    from: mss_hl7::pfi::receiving::Sending,
    answering: mss_outbox::inbox::ack::Answering,
}

impl Forwarder {
    /// `None` when `[hl7] dpi` is not set.
    pub fn new(
        hl7: &Hl7Config,
        senders: &[crate::outbox::SenderFileConfig],
        send: Option<&crate::lps::SendFileConfig>,
    ) -> Result<Option<Forwarder>> {
        hl7.check()?;
        let Some(dpi) = &hl7.dpi else {
            return Ok(None);
        };
        let Some(name) = &hl7.sender else {
            bail!("[hl7] dpi needs sender: the [[senders]] name whose inbox goes to the DPI");
        };
        let Some(sender) = senders.iter().find(|s| &s.name == name) else {
            bail!("[hl7] sender = {name:?}: no [[senders]] entry of that name");
        };
        let Some(send) = send else {
            bail!(
                "[hl7] dpi needs [send] product_reference: the MDNs that follow are composed here"
            );
        };
        Ok(Some(Forwarder {
            mailbox: sender.mailbox_address()?.to_string(),
            client: MllpClient::new(dpi, ClientOptions::default()),
            from: hl7.sending(),
            answering: mss_outbox::inbox::ack::Answering {
                auth_ref: format!("senders:{name}"),
                product_reference: send.product_reference.clone(),
                error_mailbox: sender.error_mailbox_address()?,
                label: sender.sender_label()?,
            },
        }))
    }

    /// One pass: the received documents, then the business acks due (every one waiting when `all`);
    /// an error of either ends the pass once both were tried.
    pub async fn pass(&mut self, store: &dyn Store, all: bool) -> mss_hl7::Result<Passed> {
        let documents = mss_hl7::pfi::receiving::pass(
            store,
            &self.mailbox,
            &mut self.client,
            &self.from,
            &self.answering,
        )
        .await;
        let acks =
            mss_hl7::pfi::business_acks::pass(store, &mut self.client, &self.from, all).await;
        Ok(Passed {
            messages: documents?,
            acks: acks?,
        })
    }

    /// Passes every 5 s until `stop`.
    pub async fn run(
        mut self,
        store: Arc<dyn Store>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            match self.pass(store.as_ref(), false).await {
                Ok(p) => {
                    if p.messages > 0 {
                        eprintln!(
                            "mss: hl7: {} received message(s) sent to the DPI",
                            p.messages
                        );
                    }
                    if p.acks > 0 {
                        eprintln!("mss: hl7: {} business ack(s) sent to the DPI", p.acks);
                    }
                }
                Err(e) => eprintln!("mss: hl7: sending to the DPI: {e} (again in 5 s)"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

fn forward(data_flag: Option<PathBuf>, args: ForwardArgs) -> Result<()> {
    let file = crate::config::load::<ListenFile>(Some(&args.config))?;
    let data_dir = crate::data::data_dir(data_flag.or(file.data.clone()))?;
    crate::outbox::check_senders(&file.senders)?;
    let Some(hl7) = file.hl7.as_ref() else {
        bail!("{}: no [hl7] section", args.config.display());
    };
    let Some(mut forwarder) = Forwarder::new(hl7, &file.senders, file.send.as_ref())? else {
        bail!("{}: [hl7] dpi is not set", args.config.display());
    };
    let location = args
        .outbox
        .clone()
        .or_else(|| file.outbox.as_ref().and_then(|o| o.url.clone()));
    let runtime = crate::runtime::multi_thread(None)?;
    runtime.block_on(async move {
        let store = mss_outbox::open_store(&data_dir, location.as_deref()).await?;
        if args.once {
            let p = forwarder.pass(store.as_ref(), true).await?;
            println!("{} message(s) sent to the DPI", p.messages);
            if p.acks > 0 {
                println!("{} business ack(s) sent to the DPI", p.acks);
            }
            return Ok(());
        }
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(forwarder.run(store, stop));
        crate::runtime::shutdown_signal().await;
        let _ = stop_tx.send(true);
        let _ = task.await;
        Ok(())
    })
}
