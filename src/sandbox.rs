//! `mss sandbox`: the vendor's conformance sandbox (docs/mssante.md K2–K4): arguments and printing; the work
//! is done by `mss-sandbox`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mss_sandbox::operator::{self, DEFAULT_BASE_PORT, StartOptions};
use mss_sandbox::{Endpoints, Psc, TokenKind};

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Print a Pro Santé Connect stand-in access token (JWT) for a mailbox, alone on stdout.
    Token(TokenArgs),
    /// Start the reference API LPS operator (Dovecot + Postfix behind mss's fronts) in the background and
    /// print its endpoints.
    Start(StartArgs),
    /// Stop the sandbox and remove its directory.
    Stop(StopArgs),
    /// What each client mailbox did, check by check (passed / failed and why), and the findings of
    /// `mss check` on its messages. Exit status 1 when a check failed.
    Report(ReportArgs),
    /// The sandbox's background process (started by `start`).
    #[command(hide = true)]
    Serve(DirArg),
}

#[derive(Debug, Args)]
pub struct DirArg {
    /// The sandbox directory. Default: <data>/sandbox.
    #[arg(long, env = "MSS_SANDBOX_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The mailbox (BAL) the token is issued for.
    #[arg(long, value_name = "BAL")]
    pub user: String,
    #[command(flatten)]
    pub dir: DirArg,
    /// A token that expired five minutes ago.
    #[arg(long, group = "kind")]
    pub expired: bool,
    /// A token signed by the stand-in's key but with this issuer instead of Pro Santé Connect's.
    #[arg(long, value_name = "URL", group = "kind")]
    pub issuer: Option<String>,
    /// A token of another identity provider (other key, other issuer, no PSC claims).
    #[arg(long, group = "kind")]
    pub not_psc: bool,
    /// Lifetime of a valid token, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = mss_sandbox::psc::DEFAULT_LIFETIME_SECS, group = "kind")]
    pub lifetime: u64,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// One JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
    /// First of the seven loopback ports used (fronts: it and the next three).
    #[arg(long, default_value_t = DEFAULT_BASE_PORT, value_name = "PORT")]
    pub base_port: u16,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Keep the directory (its records stay readable by `report`); only the processes stop.
    #[arg(long)]
    pub keep_dir: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// One JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `mss sandbox` command.
pub fn run(data_dir: &Path, cmd: SandboxCommand) -> Result<()> {
    let dir = |d: DirArg| d.dir.unwrap_or_else(|| data_dir.join("sandbox"));
    match cmd {
        SandboxCommand::Token(args) => {
            let kind = if args.expired {
                TokenKind::Expired
            } else if let Some(iss) = args.issuer {
                TokenKind::Issuer(iss)
            } else if args.not_psc {
                TokenKind::NotPsc
            } else {
                TokenKind::Valid {
                    lifetime: args.lifetime,
                }
            };
            let user = mss_types::MailAddress::parse(&args.user)
                .map_err(|e| anyhow::anyhow!("--user: {e}"))?;
            let dir = dir(args.dir);
            let psc = Psc::open_or_create(&dir)?;
            println!("{}", psc.token(user.as_str(), &kind)?);
            Ok(())
        }
        SandboxCommand::Start(args) => {
            let dir = dir(args.dir);
            let exe = std::env::current_exe().context("locating the mss binary")?;
            let mut daemon = std::process::Command::new(exe);
            daemon.args(["-v", "sandbox", "serve", "--dir"]).arg(&dir);
            let endpoints = operator::start(
                &StartOptions {
                    dir: dir.clone(),
                    base_port: args.base_port,
                },
                daemon,
            )?;
            if args.json {
                println!("{}", serde_json::to_string(&endpoints)?);
            } else {
                print_endpoints(&dir, &endpoints);
            }
            Ok(())
        }
        SandboxCommand::Stop(args) => {
            let dir = dir(args.dir);
            operator::stop(&dir, args.keep_dir)?;
            eprintln!("sandbox stopped ({})", dir.display());
            Ok(())
        }
        SandboxCommand::Report(args) => {
            let dir = dir(args.dir);
            let report = mss_sandbox::report::build(&mss_sandbox::Layout::new(&dir))?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_report(&report);
            }
            let failed = report
                .mailboxes
                .iter()
                .flat_map(|m| &m.checks)
                .filter(|c| !c.passed)
                .count();
            if failed > 0 {
                anyhow::bail!("{failed} check(s) failed");
            }
            Ok(())
        }
        SandboxCommand::Serve(args) => {
            let dir = dir(args);
            crate::runtime::multi_thread(Some(2))?.block_on(operator::serve(&dir))?;
            Ok(())
        }
    }
}

fn print_endpoints(dir: &Path, e: &Endpoints) {
    let d = dir.display();
    let p12 = Path::new(&e.client_cert).with_extension("p12");
    println!("MSSanté sandbox running from {d}");
    println!("PER/ORG front (STARTTLS, then XOAUTH2 with a Pro Santé Connect token):");
    println!("  IMAP        {}", e.imap);
    println!("  submission  {}", e.submission);
    println!(
        "APP front (STARTTLS with the client certificate, then AUTH PLAIN naming the mailbox):"
    );
    println!("  IMAP        {}", e.app_imap);
    println!("  submission  {}", e.app_submission);
    // what the operator's DNS would publish (docs/mssante.md L4): priority 10 PER/ORG, 20 APP
    println!("as SRV records of {}:", mss_sandbox::DOMAIN);
    for (service, prio, hostport) in [
        ("_submission._tcp", 10, &e.submission),
        ("_imap._tcp", 10, &e.imap),
        ("_submission._tcp", 20, &e.app_submission),
        ("_imap._tcp", 20, &e.app_imap),
    ] {
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, ""));
        println!(
            "  {service}.{}. SRV {prio} 1 {port} {host}.",
            mss_sandbox::DOMAIN
        );
    }
    println!("CA file       {}", e.ca_file);
    println!("client cert   {}", e.client_cert);
    println!("client key    {}", e.client_key);
    println!("  (PKCS#12 without password: {})", p12.display());
    println!("mailboxes");
    println!("  professional  {}", e.mailboxes.professional);
    println!("  organisation  {}", e.mailboxes.organisation);
    println!("  application   {}", e.mailboxes.application);
    println!("  patient       {}", e.mailboxes.patient);
    println!("auto-responder (answers with an IHE_XDM message of a test patient)");
    println!("  VSM           {}", e.responder.vsm);
    println!("  CR-BIO        {}", e.responder.crbio);
    println!(
        "a token:  mss sandbox token --dir {d} --user {}",
        e.mailboxes.professional
    );
    println!("report:   mss sandbox report --dir {d}");
    println!("stop:     mss sandbox stop --dir {d}");
}

fn print_report(r: &mss_sandbox::report::Report) {
    if r.mailboxes.is_empty() {
        println!("no client connection and no message yet");
    }
    for m in &r.mailboxes {
        let name = m
            .mailbox
            .as_deref()
            .unwrap_or("connections that named no mailbox");
        println!(
            "{name} — {} connection(s), {} message(s)",
            m.connections,
            m.messages.len()
        );
        for c in &m.checks {
            let mark = if c.passed { "passed" } else { "FAILED" };
            println!("  [{mark}] {}: {}", c.title, c.detail);
        }
        for msg in &m.messages {
            let id = msg.message_id.as_deref().unwrap_or("(no Message-ID)");
            if msg.findings.is_empty() {
                println!("    <{id}>: no finding");
            }
            for f in &msg.findings {
                println!("    <{id}>: {f}");
            }
        }
    }
}
