//! Proof of deployment of an API LPS (docs/mssante.md L6): the IMAP listing (greeting, `C01 CAPABILITY`,
//! `C02 LOGOUT`) and the SMTP listing (greeting, `EHLO <fqdn>`, `QUIT`), recorded exactly as exchanged and
//! framed like the telnet sessions of the procedure, in one text with two titled sections; then a check of
//! what the API LPS needs, over separate STARTTLS connections that are not part of the listings.

use std::fmt;
use std::net::IpAddr;

use crate::conn::{self, Endpoint, LineConn, Redact};
use crate::error::Error;
use crate::smtp::ConnectOptions;

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Satisfied.
    Pass,
    /// Not satisfied.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One checked point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub point: String,
    /// Result.
    pub verdict: Verdict,
    /// What was seen.
    pub detail: String,
}

/// The listings and the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The text to hand to the ANS (both listings).
    pub transcript: String,
    /// One verdict per point.
    pub checks: Vec<Check>,
}

impl Proof {
    /// Whether every point passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.verdict == Verdict::Pass)
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ProofOptions {
    /// FQDN of the API LPS front.
    pub host: String,
    /// IMAP port (143).
    pub imap_port: u16,
    /// Submission port (587).
    pub smtp_port: u16,
    /// Argument of EHLO; the procedure uses the front's FQDN.
    pub ehlo_name: Option<String>,
    /// TLS and deadlines for the checks after STARTTLS.
    pub connect: ConnectOptions,
}

const RULE: &str =
    "================================================================================";

/// Runs the procedure. Connection failures are recorded in the listings (as telnet would print them) and
/// fail the checks; only a bad configuration is an error.
pub async fn run(opts: &ProofOptions) -> Result<Proof, Error> {
    let imap_ep = Endpoint::new(opts.host.clone(), opts.imap_port);
    let smtp_ep = Endpoint::new(opts.host.clone(), opts.smtp_port);
    let mut checks = Vec::new();

    let imap_listing = imap_listing(&imap_ep, opts, &mut checks).await;
    let smtp_listing = smtp_listing(&smtp_ep, opts, &mut checks).await;
    imap_after_tls(&imap_ep, opts, &mut checks).await;
    smtp_after_tls(&smtp_ep, opts, &mut checks).await;

    let mut transcript = String::new();
    transcript.push_str(&format!(
        "Preuve de déploiement de l'interface API LPS/DUI — {}\n",
        opts.host
    ));
    transcript.push_str(&format!(
        "Produite par mss {} le {}\n\n",
        env!("CARGO_PKG_VERSION"),
        now_utc()
    ));
    for (title, listing) in [
        (
            format!("LISTING IMAP — {} port {}", opts.host, opts.imap_port),
            imap_listing,
        ),
        (
            format!("LISTING SMTP — {} port {}", opts.host, opts.smtp_port),
            smtp_listing,
        ),
    ] {
        transcript.push_str(RULE);
        transcript.push('\n');
        transcript.push_str(&title);
        transcript.push('\n');
        transcript.push_str(RULE);
        transcript.push('\n');
        for line in listing {
            transcript.push_str(&line);
            transcript.push('\n');
        }
        transcript.push('\n');
    }
    Ok(Proof { transcript, checks })
}

fn now_utc() -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_else(|_| "?".into())
}

fn check(checks: &mut Vec<Check>, point: &str, ok: bool, detail: impl Into<String>) {
    checks.push(Check {
        point: point.to_owned(),
        verdict: if ok { Verdict::Pass } else { Verdict::Fail },
        detail: detail.into(),
    });
}

/// Opens the plain connection and writes telnet's preamble.
async fn open(
    ep: &Endpoint,
    opts: &ProofOptions,
    listing: &mut Vec<String>,
) -> Result<LineConn<tokio::net::TcpStream>, String> {
    listing.push(format!("telnet {} {}", ep.host, ep.port));
    let ip: Option<IpAddr> = tokio::net::lookup_host((ep.host.as_str(), ep.port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip());
    match ip {
        Some(ip) => listing.push(format!("Trying {ip}...")),
        None => {
            listing.push(format!(
                "telnet: could not resolve {}/{}: Name or service not known",
                ep.host, ep.port
            ));
            return Err("host name not resolved".into());
        }
    }
    match conn::connect_tcp(ep, opts.connect.local_addr, opts.connect.timeouts.connect).await {
        Ok(tcp) => {
            listing.push(format!("Connected to {}.", ep.host));
            listing.push("Escape character is '^]'.".into());
            let mut c = LineConn::new(tcp, ep.label(), "proof", opts.connect.timeouts.command);
            c.record();
            Ok(c)
        }
        Err(e) => {
            listing.push("telnet: Unable to connect to remote host: Connection refused".into());
            Err(e.to_string())
        }
    }
}

/// Reads lines until one satisfies `last`.
async fn read_until(
    c: &mut LineConn<tokio::net::TcpStream>,
    last: impl Fn(&str) -> bool,
) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    loop {
        let l = String::from_utf8_lossy(&c.read_line().await?).into_owned();
        let done = last(&l);
        lines.push(l);
        if done {
            return Ok(lines);
        }
    }
}

async fn finish(c: &mut LineConn<tokio::net::TcpStream>, listing: &mut Vec<String>) {
    let closed = c.read_until_eof(c.timeout).await.is_ok();
    listing.extend(c.take_transcript());
    if closed {
        listing.push("Connection closed by foreign host.".into());
    }
}

async fn imap_listing(ep: &Endpoint, opts: &ProofOptions, checks: &mut Vec<Check>) -> Vec<String> {
    let mut listing = Vec::new();
    let mut c = match open(ep, opts, &mut listing).await {
        Ok(c) => c,
        Err(e) => {
            check(checks, "IMAP: port reachable, greeting", false, e);
            return listing;
        }
    };
    let exchange = async {
        let greeting = read_until(&mut c, |_| true).await?;
        c.send(b"C01 CAPABILITY\r\n", Redact::No).await?;
        let caps = read_until(&mut c, |l| l.starts_with("C01 ")).await?;
        c.send(b"C02 LOGOUT\r\n", Redact::No).await?;
        read_until(&mut c, |l| l.starts_with("C02 ")).await?;
        Ok::<_, Error>((greeting, caps))
    };
    match exchange.await {
        Ok((greeting, caps)) => {
            let g = greeting.first().cloned().unwrap_or_default();
            check(
                checks,
                "IMAP: port reachable, greeting",
                g.starts_with("* OK"),
                g,
            );
            let cap_line = caps
                .iter()
                .find(|l| l.to_ascii_uppercase().starts_with("* CAPABILITY"))
                .cloned()
                .unwrap_or_default();
            let ok = caps
                .last()
                .is_some_and(|l| l.to_ascii_uppercase().starts_with("C01 OK"));
            check(
                checks,
                "IMAP: C01 CAPABILITY answered",
                ok && !cap_line.is_empty(),
                cap_line.clone(),
            );
            let starttls = cap_line
                .split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("STARTTLS"));
            check(checks, "IMAP: STARTTLS offered", starttls, cap_line);
        }
        Err(e) => check(
            checks,
            "IMAP: port reachable, greeting",
            false,
            e.to_string(),
        ),
    }
    finish(&mut c, &mut listing).await;
    listing
}

async fn smtp_listing(ep: &Endpoint, opts: &ProofOptions, checks: &mut Vec<Check>) -> Vec<String> {
    let mut listing = Vec::new();
    let mut c = match open(ep, opts, &mut listing).await {
        Ok(c) => c,
        Err(e) => {
            check(checks, "SMTP: port reachable, greeting", false, e);
            return listing;
        }
    };
    let name = opts.ehlo_name.clone().unwrap_or_else(|| opts.host.clone());
    let last = |l: &str| l.len() < 4 || l.as_bytes()[3] != b'-';
    let exchange = async {
        let greeting = read_until(&mut c, last).await?;
        c.send(format!("EHLO {name}\r\n").as_bytes(), Redact::No)
            .await?;
        let ehlo = read_until(&mut c, last).await?;
        c.send(b"QUIT\r\n", Redact::No).await?;
        read_until(&mut c, last).await?;
        Ok::<_, Error>((greeting, ehlo))
    };
    match exchange.await {
        Ok((greeting, ehlo)) => {
            let g = greeting.last().cloned().unwrap_or_default();
            check(
                checks,
                "SMTP: port reachable, greeting",
                g.starts_with("220"),
                g,
            );
            let ok = ehlo.last().is_some_and(|l| l.starts_with("250"));
            check(
                checks,
                "SMTP: EHLO answered",
                ok,
                format!("{} lines", ehlo.len()),
            );
            let starttls = ehlo.iter().any(|l| {
                l.get(4..)
                    .is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))
            });
            check(checks, "SMTP: STARTTLS offered", starttls, "");
        }
        Err(e) => check(
            checks,
            "SMTP: port reachable, greeting",
            false,
            e.to_string(),
        ),
    }
    finish(&mut c, &mut listing).await;
    listing
}

async fn imap_after_tls(ep: &Endpoint, opts: &ProofOptions, checks: &mut Vec<Check>) {
    match crate::imap::connect(ep, &opts.connect).await {
        Ok(s) => {
            check(
                checks,
                "IMAP: TLS ≥ 1.2 with a trusted certificate",
                true,
                s.tls_description(),
            );
            let caps: Vec<&str> = s.capabilities().iter().collect();
            let all = caps.join(" ");
            check(
                checks,
                "IMAP after STARTTLS: AUTH=XOAUTH2",
                s.capabilities().has_auth("XOAUTH2"),
                all.clone(),
            );
            check(
                checks,
                "IMAP after STARTTLS: SASL-IR",
                s.capabilities().has("SASL-IR"),
                all,
            );
            let _ = s.logout().await;
        }
        Err(e) => check(
            checks,
            "IMAP: TLS ≥ 1.2 with a trusted certificate",
            false,
            e.to_string(),
        ),
    }
}

async fn smtp_after_tls(ep: &Endpoint, opts: &ProofOptions, checks: &mut Vec<Check>) {
    match crate::smtp::connect(ep, &opts.connect).await {
        Ok(s) => {
            check(
                checks,
                "SMTP: TLS ≥ 1.2 with a trusted certificate",
                true,
                s.tls_description(),
            );
            let mechs = s.extensions().auth_mechanisms();
            let ok = mechs.iter().any(|m| m == "XOAUTH2" || m == "PLAIN");
            check(
                checks,
                "SMTP after STARTTLS: AUTH XOAUTH2 or AUTH PLAIN",
                ok,
                format!("AUTH {}", mechs.join(" ")),
            );
            let _ = s.quit().await;
        }
        Err(e) => check(
            checks,
            "SMTP: TLS ≥ 1.2 with a trusted certificate",
            false,
            e.to_string(),
        ),
    }
}
