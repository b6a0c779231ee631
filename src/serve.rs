//! `mss serve`: the REST service and the autocomplete page.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use mss_api::{ApiConfig, AppState};
use serde::Deserialize;

/// Where the service listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "MSS_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Origin allowed to call the API from a browser (CORS); repeat or separate with commas; `*` for any.
    #[arg(
        long = "cors-origin",
        env = "MSS_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,
    /// TOML configuration file; flags and MSS_* variables take precedence over it.
    #[arg(long, env = "MSS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// LDAP directory answering `GET /v1/directory/search?source=ldap` (e.g.
    /// ldap://ldap.annuaire.mssante.fr:389); none: source=ldap is refused. Queries get 10 s of server
    /// time; a directory that does not answer in 3 s (connection) or 12 s leaves the local index to answer.
    #[arg(long, env = "MSS_LDAP_URL", value_name = "URL")]
    pub ldap_url: Option<String>,
    /// Base DN of that directory [default: ou=bal,o=mssante,c=fr].
    #[arg(long, env = "MSS_LDAP_BASE", value_name = "DN")]
    pub ldap_base: Option<String>,
    /// Simple bind to that directory as this DN (default: anonymous, as the national directory); the
    /// password comes from --ldap-password-file or MSS_LDAP_PASSWORD.
    #[arg(long, env = "MSS_LDAP_BIND_DN", value_name = "DN")]
    pub ldap_bind_dn: Option<String>,
    /// File whose first line is that bind's password.
    #[arg(long, value_name = "FILE")]
    pub ldap_password_file: Option<PathBuf>,
    /// Annuaire Santé FHIR API answering `GET /v1/directory/entries/{address}?refresh=true` (e.g.
    /// https://gateway.api.esante.gouv.fr/fhir/v2); none: refresh=true is refused. Lookups get 10 s per
    /// request, 2 tries, 17 requests/s.
    #[arg(long, env = "MSS_FHIR_BASE", value_name = "URL")]
    pub fhir_base: Option<String>,
    /// File whose first line is the FHIR API key [default: the MSS_FHIR_API_KEY variable].
    #[arg(long, value_name = "FILE")]
    pub fhir_api_key_file: Option<PathBuf>,
    /// Run the FHIR sync (a delta since the last one, as `mss fhir-sync`) from --fhir-base every SPAN
    /// (30s, 15m, 24h, 7d) [default: never].
    #[arg(long, env = "MSS_FHIR_SYNC_EVERY", value_name = "SPAN")]
    pub fhir_sync_every: Option<String>,
    /// Run the LDAP harvest (as `mss ldap-sync`) of --ldap-url every SPAN [default: never].
    #[arg(long, env = "MSS_LDAP_SYNC_EVERY", value_name = "SPAN")]
    pub ldap_sync_every: Option<String>,
    /// The outbox of `POST /v1/batches`: a `postgresql://` URL (a queue shared by several services) or a
    /// SQLite file [default: <data>/outbox.sqlite]. Its workers deliver for the `[[senders]]` of --config.
    #[arg(long, env = "MSS_OUTBOX", value_name = "URL|PATH")]
    pub outbox: Option<String>,
    /// PEM certificate chain of the listener: serve HTTPS (TLS 1.2 and 1.3) instead of plain HTTP.
    #[arg(long, env = "MSS_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "MSS_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate chaining to one of them (with TLS only).
    #[arg(long, env = "MSS_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (refused otherwise: use TLS).
    #[arg(long, env = "MSS_INSECURE_HTTP")]
    pub insecure_http: bool,
    #[command(flatten)]
    pub clients: crate::client::ClientsLocation,
}

/// The `[serve]`-less TOML file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// CORS origins.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// LDAP directory of `source=ldap`.
    pub ldap_url: Option<String>,
    /// Its base DN.
    pub ldap_base: Option<String>,
    /// The DN it binds as (none: anonymous).
    pub ldap_bind_dn: Option<String>,
    /// File holding that bind's password.
    pub ldap_password_file: Option<PathBuf>,
    /// FHIR API of `refresh=true`.
    pub fhir_base: Option<String>,
    /// File holding its API key.
    pub fhir_api_key_file: Option<PathBuf>,
    /// Interval of the service's FHIR sync (`15m`); none: never.
    pub fhir_sync_every: Option<String>,
    /// Interval of the service's LDAP harvest (`24h`); none: never.
    pub ldap_sync_every: Option<String>,
    /// `POST /v1/messages/send` (product reference, trust roots, fronts, APP certificate).
    pub send: Option<crate::lps::SendFileConfig>,
    /// The outbox (store, worker name, body limit of `POST /v1/batches`).
    pub outbox: Option<crate::outbox::OutboxFileConfig>,
    /// Mailboxes whose credentials the service holds: `POST /v1/batches` names them, the workers use them.
    #[serde(default)]
    pub senders: Vec<crate::outbox::SenderFileConfig>,
    /// TLS on the listener.
    pub tls: Option<TlsFileConfig>,
    /// The listener.
    pub server: Option<ServerFileConfig>,
    /// Client keys and the directory's access.
    pub access: Option<crate::client::AccessFileConfig>,
    /// The audit trail (path, retention, rotation size).
    pub audit: Option<crate::audit::AuditFileConfig>,
    /// The PFI role: the DPI's HL7 v2 over MLLP (docs/mssante.md H1–H3).
    pub hl7: Option<mss_hl7::pfi::Hl7Config>,
}

/// `[tls]`: the listener's certificate, key and client CA (PEM files).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFileConfig {
    /// Certificate chain.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// CA client certificates must chain to.
    pub client_ca: Option<PathBuf>,
}

/// `[server]`: how the listener may be exposed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFileConfig {
    /// Plain HTTP on an address other than loopback.
    #[serde(default)]
    pub insecure_http: bool,
}

/// Runs the service until SIGINT or SIGTERM.
pub fn serve(data_flag: Option<PathBuf>, args: ServeArgs) -> Result<()> {
    // mimalloc asks for transparent huge pages, and a 2 MiB page partly used counts whole: the
    // service's memory measured 50 MB (a quarter) higher with them, and no faster.
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "transparent huge pages stay on");
    }
    let file = crate::config::load::<FileConfig>(args.config.as_deref())?;
    let data_dir = crate::data::data_dir(data_flag.or(file.data))?;
    let listen = args
        .listen
        .or(file.listen)
        .map_or_else(|| DEFAULT_LISTEN.parse(), Ok)?;
    let tls = listener_tls(&args, file.tls.unwrap_or_default())?;
    let insecure_http = args.insecure_http || file.server.is_some_and(|s| s.insecure_http);
    if tls.is_none() && !mss_api::is_loopback(&listen) {
        if !insecure_http {
            anyhow::bail!(
                "refusing to serve plain HTTP on {listen}, which is not a loopback address: give \
                 --tls-cert and --tls-key (or [tls] in the configuration), or --insecure-http to \
                 accept it"
            );
        }
        eprintln!(
            "mss: warning: serving plain HTTP on {listen} (--insecure-http): keys, tokens and \
             health data cross the network unencrypted"
        );
    }
    let cors_origins = if args.cors_origins.is_empty() {
        file.cors_origins
    } else {
        args.cors_origins
    };
    let fhir_every = crate::schedule::interval(
        "fhir_sync_every",
        args.fhir_sync_every
            .as_deref()
            .or(file.fhir_sync_every.as_deref()),
    )?;
    let ldap_every = crate::schedule::interval(
        "ldap_sync_every",
        args.ldap_sync_every
            .as_deref()
            .or(file.ldap_sync_every.as_deref()),
    )?;
    // the directory as the harvest reads it: the national limits, as `mss ldap-sync`
    let ldap_harvest = match args.ldap_url.or(file.ldap_url) {
        Some(url) => {
            let base = args
                .ldap_base
                .or(file.ldap_base)
                .unwrap_or_else(|| mss_annuaire::ldap::DEFAULT_BASE.to_string());
            let mut config = mss_annuaire::ldap::LdapConfig::new(&url, &base)?;
            config.bind = crate::ldap::bind(
                args.ldap_bind_dn.or(file.ldap_bind_dn).as_deref(),
                args.ldap_password_file
                    .or(file.ldap_password_file)
                    .as_deref(),
                ("ldap_bind_dn", "ldap_password_file"),
            )?;
            Some(config)
        }
        None => None,
    };
    let ldap = match &ldap_harvest {
        Some(harvest) => {
            let mut config = harvest.clone();
            // someone is waiting for the page: ask the directory for at most 10 s of work (not its
            // 60) and give up on it sooner than that, for the local index
            config.connect_timeout = std::time::Duration::from_secs(3);
            config.time_limit = std::time::Duration::from_secs(10);
            config.operation_timeout = std::time::Duration::from_secs(12);
            Some(std::sync::Arc::new(mss_annuaire::ldap::LdapClient::new(
                config,
            )?))
        }
        None => None,
    };
    // the API as the sync reads it: the national rate and timeouts, as `mss fhir-sync`
    let fhir_sync = match args.fhir_base.or(file.fhir_base) {
        Some(base) => {
            let mut config = mss_annuaire::fhir::FhirConfig::new(&base)?;
            config.api_key =
                crate::fhir::api_key(args.fhir_api_key_file.or(file.fhir_api_key_file).as_deref())?;
            Some(config)
        }
        None => None,
    };
    let fhir = match &fhir_sync {
        Some(sync) => {
            let mut config = sync.clone();
            // someone is waiting for the answer: fail sooner than a sync would
            config.timeout = Duration::from_secs(10);
            config.attempts = 2;
            config.max_retry_after = Duration::from_secs(2);
            Some(std::sync::Arc::new(mss_annuaire::fhir::FhirClient::new(
                config,
            )?))
        }
        None => None,
    };
    let mut scheduled = Vec::new();
    if let Some(every) = fhir_every {
        scheduled.push(crate::schedule::fhir(data_dir.clone(), fhir_sync, every)?);
    }
    if let Some(every) = ldap_every {
        scheduled.push(crate::schedule::ldap(
            data_dir.clone(),
            ldap_harvest,
            every,
        )?);
    }
    let access_file = file.access.unwrap_or_default();
    let clients_path = crate::client::clients_path(&data_dir, &args.clients, Some(&access_file));
    let clients = std::sync::Arc::new(
        mss_access::clients::Clients::open(&clients_path)
            .with_context(|| format!("reading the clients file {}", clients_path.display()))?,
    );
    if clients.current().is_empty() {
        eprintln!(
            "mss: no client in {}: only the directory answers; add one with `mss client add NAME \
             --scope SCOPE`",
            clients_path.display()
        );
    }
    let trusted_proxies = mss_api::parse_trusted_proxies(&access_file.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("[access] trusted_proxies: {e}"))?;
    let access = mss_api::AccessConfig {
        clients: Some(std::sync::Arc::clone(&clients)),
        directory: match access_file.directory {
            Some(crate::client::DirectoryMode::Key) => mss_api::DirectoryAccess::Key,
            _ => mss_api::DirectoryAccess::Public,
        },
        // on loopback the callers are this machine's own software, unless a proxy there forwards others
        directory_rate: (!mss_api::is_loopback(&listen) || !trusted_proxies.is_empty()).then_some(
            mss_api::Rate {
                burst: access_file.directory_burst.unwrap_or(60),
                per_minute: access_file.directory_per_minute.unwrap_or(600),
            },
        ),
        trusted_proxies,
        audit: if file.audit.as_ref().and_then(|a| a.enabled) == Some(false) {
            eprintln!(
                "mss: warning: the audit trail is off ([audit] enabled = false): health-data requests \
                 are not traced"
            );
            None
        } else {
            Some(std::sync::Arc::new(crate::audit::open_log(
                &data_dir,
                file.audit.as_ref(),
            )?))
        },
    };
    let audit_log = access.audit.clone();
    let config = ApiConfig {
        cors_origins,
        ldap,
        fhir,
        access,
    };
    // one espace de confiance for every route, kept in step with `mss whitelist update`
    let trust = crate::whitelist::installed(&data_dir)?;
    let mut sending = file
        .send
        .as_ref()
        .map(crate::lps::send_config)
        .transpose()?;
    if let Some(s) = sending.as_mut() {
        s.compose.trust = trust.clone();
    }
    crate::outbox::check_senders(&file.senders)?;
    let outbox_file = file.outbox.unwrap_or_default();
    let outbox_location = args.outbox.or(outbox_file.url);
    let worker_name = outbox_file
        .worker
        .unwrap_or_else(mss_outbox::default_worker_name);
    let batch_senders = file
        .senders
        .iter()
        .map(|s| {
            Ok(mss_api::BatchSender {
                name: s.name.clone(),
                address: s.mailbox_address()?,
                error_mailbox: s.error_mailbox_address()?,
                label: s.sender_label()?,
                credential_files: s.credential_files(),
                submission: s
                    .submission
                    .clone()
                    .or_else(|| file.send.as_ref().and_then(|f| f.submission.clone())),
                imap: s.imap.clone(),
                receives: s.receive.unwrap_or(false),
                dpi: file
                    .hl7
                    .as_ref()
                    .is_some_and(|h| h.sender.as_ref() == Some(&s.name)),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let compose = sending.as_ref().map(|s| s.compose.clone());
    let runtime = crate::runtime::multi_thread(None)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let local = listener
            .local_addr()
            .context("reading the listening address")?;
        let state = AppState::new();
        if let Some(sending) = sending {
            state.set_sending(sending);
        }
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let store = mss_outbox::open_store(&data_dir, outbox_location.as_deref()).await?;
        state.set_outbox(mss_api::OutboxConfig {
            store: store.clone(),
            senders: batch_senders,
            compose,
            trust: trust.clone(),
            max_body_bytes: outbox_file
                .max_body_bytes
                .unwrap_or(mss_api::DEFAULT_MAX_BODY_BYTES),
        });
        let hl7 = match &file.hl7 {
            Some(hl7) => {
                let wiring = crate::hl7::Wiring {
                    hl7,
                    senders: &file.senders,
                    send: file.send.as_ref(),
                    trust: trust.clone(),
                    observer: Some({
                        let state = std::sync::Arc::clone(&state);
                        std::sync::Arc::new(move |a: mss_hl7::pfi::listener::Answered<'_>| {
                            state.hl7_answered(a.message_type, a.ack, a.error_code);
                        })
                    }),
                };
                if let Some(f) = crate::hl7::Forwarder::new(hl7, &file.senders, file.send.as_ref())?
                {
                    tokio::spawn(f.run(store.clone(), stop.clone()));
                }
                crate::hl7::start_listener(wiring, None, store.clone(), stop.clone()).await?
            }
            None => None,
        };
        let workers = crate::outbox::start_logged(
            store,
            &file.senders,
            file.send.as_ref(),
            &worker_name,
            Some(state.connection_log()),
            stop.clone(),
        )
        .await?;
        let loading = state.clone();
        let loader = tokio::task::spawn_blocking(move || -> Result<()> {
            let index = crate::data::open_or_build_sample(&data_dir)?;
            eprintln!(
                "mss: index loaded from {} ({} entries)",
                data_dir.display(),
                index.num_entries()
            );
            loading.set_index(index);
            Ok(())
        });
        for s in scheduled {
            tokio::spawn(mss_api::sync_periodically(
                state.clone(),
                s.source,
                s.every,
                s.run,
                stop.clone(),
            ));
        }
        tokio::spawn(mss_api::reload_periodically(
            state.clone(),
            Duration::from_secs(10),
        ));
        tokio::spawn(mss_api::refresh_trust_periodically(
            trust,
            Duration::from_secs(2),
        ));
        tokio::spawn(mss_api::refresh_clients_periodically(
            std::sync::Arc::clone(&clients),
            Duration::from_secs(1),
        ));
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("mss: serving on {scheme}://{local}/ (Ctrl-C to stop)");
        let router = mss_api::router(state, &config);
        tokio::spawn(async move {
            crate::runtime::shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let mut server_stop = stop.clone();
        let server = tokio::spawn(mss_api::serve(listener, tls, router, async move {
            let _ = server_stop.wait_for(|s| *s).await;
        }));
        // a failed index load stops the service: serving 503 forever would hide it
        loader.await.context("loading the index")??;
        server.await.context("serving")?.context("serving")?;
        if let Some(hl7) = hl7 {
            let _ = hl7.await;
        }
        // the workers finish the message they are sending and give their leases back
        let deadline = Duration::from_secs(20);
        if !workers.join(deadline).await {
            eprintln!("mss: outbox workers still busy after {deadline:?}; leaving them");
        }
        if let Some(log) = &audit_log
            && let Err(e) = log.sync()
        {
            eprintln!("mss: warning: syncing the audit trail: {e}");
        }
        if let Err(e) = clients.save_last_used() {
            eprintln!("mss: warning: saving the keys' last use: {e}");
        }
        eprintln!("mss: stopped");
        Ok(())
    })
}

/// The listener's TLS from the flags (or MSS_* variables), else `[tls]`: certificate and key together.
fn listener_tls(args: &ServeArgs, file: TlsFileConfig) -> Result<Option<mss_api::ListenerTls>> {
    let (cert, key) = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => (Some(c.clone()), Some(k.clone())),
        _ => (file.cert, file.key),
    };
    let client_ca = args.client_ca.clone().or(file.client_ca);
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(mss_api::ListenerTls::from_pem_files(
            &cert,
            &key,
            client_ca.as_deref(),
        )?)),
        (None, None) if client_ca.is_none() => Ok(None),
        (None, None) => anyhow::bail!("a client CA needs TLS: give --tls-cert and --tls-key too"),
        _ => anyhow::bail!("TLS needs both a certificate and its key (--tls-cert, --tls-key)"),
    }
}
