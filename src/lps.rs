//! `mss send` and `mss proof`: arguments and output; the work is done by `mss-lps`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use mss_lps::{
    AccessToken, ClientIdentity, ConnectOptions, Credentials, DnsResolver, DsnRequest, Endpoint,
    Envelope, LpsClient, MailboxConfig, Secret, ServerEndpoints, ServerSource, SessionPolicy,
    StaticToken, TlsSettings, TokenPolicy, TrustRoots,
};
use mss_types::{BalType, MailAddress};

/// The sending mailbox, how it authenticates and where its servers are: shared by `mss send` and `mss batch`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The sending mailbox (BAL).
    #[arg(long, value_name = "BAL", value_parser = parse_address)]
    pub from: MailAddress,
    /// PER/ORG mailbox: file holding the Pro Santé Connect access token (`-` for stdin). Read into memory
    /// only, never copied.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "cert",
        conflicts_with = "cert"
    )]
    pub token_file: Option<PathBuf>,
    /// APP mailbox: PKCS#12 file of the IGC Santé ORG AUTH_CLI certificate.
    #[arg(long, value_name = "P12")]
    pub cert: Option<PathBuf>,
    /// File holding the PKCS#12 password (else MSS_CERT_PASSWORD, else empty).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub cert_password_file: Option<PathBuf>,
    /// Submission server (default: DNS SRV of the BAL's domain).
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// IMAP server, for --save-sent, receipts and the inbox (default: DNS SRV, or the --server host on
    /// port 143).
    #[arg(long, value_name = "HOST:PORT")]
    pub imap_server: Option<String>,
    /// PEM file of the trust roots (the IGC Santé chain); replaces the system store.
    #[arg(long, value_name = "PEM", env = "MSS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The message, ready to send (RFC 5322, `.eml`); `-` for stdin.
    pub message: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Recipients (default: the To, Cc and Bcc of the message).
    #[arg(long = "to", value_name = "ADDRESS", value_parser = parse_address)]
    pub to: Vec<MailAddress>,
    /// Ask for delivery status notifications (DSN: success, failure, delay; headers only).
    #[arg(long)]
    pub dsn: bool,
    /// Also file a copy in the Sent mailbox, unless the operator already did.
    #[arg(long)]
    pub save_sent: bool,
    #[command(flatten)]
    pub trust: crate::whitelist::TrustArgs,
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// FQDN of the operator's API LPS front.
    pub host: String,
    /// IMAP port.
    #[arg(long, default_value_t = 143)]
    pub imap_port: u16,
    /// SMTP submission port.
    #[arg(long, default_value_t = 587)]
    pub smtp_port: u16,
    /// Write the listings to this `.txt` file (default: stdout; the verdicts then go to stderr).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// PEM file of the trust roots for the STARTTLS checks; replaces the system store.
    #[arg(long, value_name = "PEM", env = "MSS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Argument of EHLO (default: HOST, as in the ANS procedure).
    #[arg(long, value_name = "NAME")]
    pub ehlo: Option<String>,
}

/// `[send]` of the `mss serve` configuration file: enables `POST /v1/messages/send`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendFileConfig {
    /// Product reference (NIL) written in `X-MSS-NIL`.
    pub product_reference: String,
    /// PEM trust roots (the IGC Santé chain); default: MSS_CA_FILE, else the system store.
    pub ca_file: Option<PathBuf>,
    /// PER/ORG submission front `HOST:PORT`; default: DNS SRV of each sender's domain.
    pub submission: Option<String>,
    /// APP submission front `HOST:PORT`; default: DNS SRV.
    pub app_submission: Option<String>,
    /// PKCS#12 certificate of the APP mailboxes (IGC Santé ORG AUTH_CLI); none: APP senders are refused.
    pub app_certificate: Option<PathBuf>,
    /// File holding its password (else MSS_CERT_PASSWORD, else empty).
    pub app_certificate_password_file: Option<PathBuf>,
}

/// The service's sending configuration from `[send]`.
pub fn send_config(file: &SendFileConfig) -> Result<mss_api::SendConfig> {
    let ca = file
        .ca_file
        .clone()
        .or_else(|| std::env::var_os(mss_lps::CA_FILE_ENV).map(PathBuf::from));
    let roots = roots(ca.as_deref())?;
    let mut cfg = mss_api::SendConfig::new(
        &file.product_reference,
        TlsSettings::new(roots.clone(), None)?,
    )?;
    let explicit = |s: &str| -> Result<ServerSource> {
        let submission = Endpoint::parse(s, 587)?;
        let imap = Endpoint::new(submission.host.clone(), 143);
        Ok(ServerSource::Explicit(ServerEndpoints { submission, imap }))
    };
    if let Some(s) = &file.submission {
        cfg.servers = explicit(s)?;
    }
    if let Some(s) = &file.app_submission {
        cfg.app_servers = explicit(s)?;
    }
    if let Some(p12) = &file.app_certificate {
        let password = match &file.app_certificate_password_file {
            Some(f) => Secret::from_reader(open_input(f)?)
                .with_context(|| format!("reading {}", f.display()))?,
            None => Secret::new(std::env::var("MSS_CERT_PASSWORD").unwrap_or_default()),
        };
        let identity = ClientIdentity::from_pkcs12_file(p12, &password)?;
        cfg.app_tls = Some(TlsSettings::new(roots, Some(identity))?);
    }
    Ok(cfg)
}

fn parse_address(s: &str) -> Result<MailAddress, String> {
    MailAddress::parse(s).map_err(|e| e.to_string())
}

fn roots(ca_file: Option<&Path>) -> Result<TrustRoots> {
    Ok(match ca_file {
        Some(p) => TrustRoots::from_pem_file(p)?,
        None => {
            tracing::warn!(
                "no --ca-file / MSS_CA_FILE: using the system trust store, which lacks IGC Santé"
            );
            TrustRoots::system()?
        }
    })
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading stdin")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Opens a file, or stdin for `-`, for secrets read straight into wiped buffers.
fn open_input(path: &Path) -> Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Box::new(f))
    }
}

/// The mailbox configuration from the connection flags: reads the token or the certificate into memory.
pub fn mailbox(c: &ConnectArgs) -> Result<MailboxConfig> {
    let roots = roots(c.ca_file.as_deref())?;
    let (bal_type, credentials, identity) = match (&c.token_file, &c.cert) {
        (Some(f), _) => {
            let token = AccessToken::from_reader(open_input(f)?)
                .with_context(|| format!("reading {}", f.display()))?;
            if token.expose().is_empty() {
                bail!("{}: no token", f.display());
            }
            let credentials = Credentials::Psc {
                provider: std::sync::Arc::new(StaticToken::new(token)),
                policy: TokenPolicy::default(),
            };
            (BalType::Per, credentials, None)
        }
        (None, Some(p12)) => {
            let password = match &c.cert_password_file {
                Some(f) => Secret::from_reader(open_input(f)?)
                    .with_context(|| format!("reading {}", f.display()))?,
                None => Secret::new(std::env::var("MSS_CERT_PASSWORD").unwrap_or_default()),
            };
            let identity = ClientIdentity::from_pkcs12_file(p12, &password)?;
            (
                BalType::App,
                Credentials::Certificate { password: None },
                Some(identity),
            )
        }
        (None, None) => bail!("--token-file or --cert is required"),
    };
    let servers = match &c.server {
        Some(s) => {
            let submission = Endpoint::parse(s, 587)?;
            let imap = match &c.imap_server {
                Some(i) => Endpoint::parse(i, 143)?,
                None => Endpoint::new(submission.host.clone(), 143),
            };
            ServerSource::Explicit(ServerEndpoints { submission, imap })
        }
        None => ServerSource::Srv(std::sync::Arc::new(DnsResolver::system()?)),
    };
    Ok(MailboxConfig {
        address: c.from.clone(),
        bal_type,
        credentials,
        servers,
        connect: ConnectOptions::new(TlsSettings::new(roots, identity)?),
        session: SessionPolicy::default(),
    })
}

pub fn send(data_dir: &Path, args: SendArgs) -> Result<()> {
    if args.message.as_os_str() == "-"
        && args
            .connect
            .token_file
            .as_deref()
            .is_some_and(|p| p.as_os_str() == "-")
    {
        bail!("the message and the token cannot both come from stdin");
    }
    let message = read_input(&args.message)?;
    let mailbox = mailbox(&args.connect)?;
    let mut envelope = if args.to.is_empty() {
        mss_lps::message_envelope(args.connect.from.clone(), &message)?
    } else {
        Envelope {
            from: args.connect.from.clone(),
            recipients: args.to.clone(),
            dsn: None,
        }
    };
    // nothing leaves the espace de confiance (docs/mssante.md M8)
    args.trust.trust(data_dir)?.check_envelope("", &envelope)?;
    let id = mss_lps::message_id(&message);
    if args.dsn {
        // all notices; the ENVID is the Message-ID, none when the message has none
        envelope.dsn = Some(DsnRequest {
            envid: id.clone(),
            ..DsnRequest::all_notices(String::new())
        });
    }
    let client = LpsClient::new(mailbox)?;
    let data = mss_lps::without_bcc(&message);
    crate::runtime::current_thread()?.block_on(async {
        let report = client.send(&envelope, &data).await?;
        for r in &report.recipients {
            let word = if r.accepted() { "accepted" } else { "refused " };
            println!("{word} {}  ({})", r.recipient, r.reply);
        }
        println!("sent: {}", report.reply);
        if report.dsn_ignored {
            println!("note: the server does not offer DSN; no delivery notification was requested");
        }
        if args.save_sent {
            match client.file_sent_copy(&data, id.as_deref()).await? {
                mss_lps::imap::SentCopy::AlreadyFiled { mailbox } => {
                    println!("copy: already in {mailbox} (filed by the operator)");
                }
                mss_lps::imap::SentCopy::Appended { mailbox, .. } => {
                    println!("copy: filed in {mailbox}")
                }
            }
        }
        client.close().await;
        Ok(())
    })
}

pub fn proof(args: ProofArgs) -> Result<()> {
    let roots = roots(args.ca_file.as_deref())?;
    let opts = mss_lps::proof::ProofOptions {
        host: args.host.clone(),
        imap_port: args.imap_port,
        smtp_port: args.smtp_port,
        ehlo_name: args.ehlo.clone(),
        connect: ConnectOptions::new(TlsSettings::new(roots, None)?),
    };
    let proof = crate::runtime::current_thread()?.block_on(mss_lps::proof::run(&opts))?;
    let verdicts = proof
        .checks
        .iter()
        .map(|c| {
            if c.detail.is_empty() {
                format!("{}  {}", c.verdict, c.point)
            } else {
                format!("{}  {}  ({})", c.verdict, c.point, c.detail)
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    match &args.out {
        Some(path) => {
            std::fs::write(path, &proof.transcript)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("listings written to {}", path.display());
            println!("{verdicts}");
        }
        None => {
            print!("{}", proof.transcript);
            eprintln!("{verdicts}");
        }
    }
    if !proof.passed() {
        bail!("the API LPS front does not meet every point");
    }
    Ok(())
}
