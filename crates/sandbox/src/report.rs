//! The report (docs/mssante.md K3): per client mailbox, each check passed or failed with its reason in
//! plain words, as the agency's MOTCO2 lists a job's results, and every finding of `mss check`
//! (`mss_message::check`) on the messages that went through the sandbox.
//!
//! It reads what the sandbox kept: the fronts' connection records and the journal mailbox Postfix copies
//! every message to. No subject or body is quoted (they may hold health data): messages are named by their
//! Message-ID.

use std::collections::BTreeMap;

use mss_message::check::{CheckConfig, Finding, Severity, check_message};
use serde::Serialize;

use crate::front::{Connection, Front};
use crate::{Error, Layout, Result};

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Per client mailbox, in address order; connections that named no mailbox come last (`mailbox`
    /// null).
    pub mailboxes: Vec<MailboxReport>,
}

/// One client mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxReport {
    /// The mailbox (`None`: connections that named none, e.g. a failed TLS handshake).
    pub mailbox: Option<String>,
    /// Connections recorded.
    pub connections: usize,
    /// The checks, in a fixed order; only those that apply.
    pub checks: Vec<CheckResult>,
    /// Messages sent from this mailbox (envelope sender), with their findings.
    pub messages: Vec<MessageReport>,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Stable id: `starttls`, `tls_version`, `client_certificate`, `mechanism`, `sasl_ir`,
    /// `authentication`, `messages`.
    pub check: &'static str,
    /// What is checked, in words.
    pub title: &'static str,
    /// Passed or failed.
    pub passed: bool,
    /// Why, in plain words.
    pub detail: String,
}

/// One message that went through the sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct MessageReport {
    /// Its Message-ID (without angle brackets), when it has one.
    pub message_id: Option<String>,
    /// Every finding of `mss check`.
    pub findings: Vec<Finding>,
}

/// Builds the report of the sandbox directory `layout`.
pub fn build(layout: &Layout) -> Result<Report> {
    if !layout.dir.join("settings.json").exists() {
        return Err(Error::NotRunning(layout.dir.clone()));
    }
    let mut by_box: BTreeMap<Option<String>, (Vec<Connection>, Vec<MessageReport>)> =
        BTreeMap::new();
    let text = std::fs::read_to_string(layout.connections()).unwrap_or_default();
    for line in text.lines() {
        if let Ok(c) = serde_json::from_str::<Connection>(line) {
            by_box.entry(c.user.clone()).or_default().0.push(c);
        }
    }
    let responders = crate::responders();
    let cfg = CheckConfig::default();
    for (sender, message_id, raw) in journal(layout) {
        if sender.is_empty() || sender == responders.vsm || sender == responders.crbio {
            continue;
        }
        let findings = check_message(&raw, &cfg);
        by_box
            .entry(Some(sender))
            .or_default()
            .1
            .push(MessageReport {
                message_id,
                findings,
            });
    }
    // named mailboxes first (BTreeMap puts None first)
    let mut mailboxes: Vec<MailboxReport> = by_box
        .into_iter()
        .map(|(mailbox, (connections, messages))| MailboxReport {
            checks: checks(&connections, &messages),
            connections: connections.len(),
            mailbox,
            messages,
        })
        .collect();
    mailboxes.sort_by_key(|m| m.mailbox.is_none());
    Ok(Report { mailboxes })
}

/// The journal's messages: (envelope sender, Message-ID, bytes), oldest first.
fn journal(layout: &Layout) -> Vec<(String, Option<String>, Vec<u8>)> {
    let base = layout.maildir(Layout::journal_address());
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(base.join(d)).into_iter().flatten())
        .flatten()
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, p)| std::fs::read(p).ok())
        .map(|raw| {
            let (sender, id) = match mail_parser::MessageParser::default().parse_headers(&raw[..]) {
                Some(m) => (
                    m.header_raw("Return-Path")
                        .map(|r| r.trim().trim_matches(['<', '>']).to_ascii_lowercase())
                        .unwrap_or_default(),
                    m.message_id().map(str::to_owned),
                ),
                None => (String::new(), None),
            };
            (sender, id, raw)
        })
        .collect()
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Reasons with how many connections gave each, in first-seen order.
fn tally<'a>(reasons: impl Iterator<Item = String> + 'a) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for r in reasons {
        match seen.iter_mut().find(|(s, _)| *s == r) {
            Some((_, n)) => *n += 1,
            None => seen.push((r, 1)),
        }
    }
    seen.iter()
        .map(|(r, n)| format!("{r} ({})", count(*n, "connection")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn checks(conns: &[Connection], messages: &[MessageReport]) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let front = |c: &Connection| c.front.map_or("?", Front::name);
    if !conns.is_empty() {
        let early: Vec<&Connection> = conns.iter().filter(|c| !c.before_tls.is_empty()).collect();
        let no_tls = conns
            .iter()
            .filter(|c| !c.starttls && c.mechanism.is_none())
            .count();
        out.push(CheckResult {
            check: "starttls",
            title: "STARTTLS before authentication",
            passed: early.is_empty(),
            detail: if early.is_empty() {
                format!(
                    "{} started TLS before sending credentials{}",
                    count(conns.len() - no_tls, "connection"),
                    if no_tls > 0 {
                        format!(
                            " ({} left without authenticating)",
                            count(no_tls, "connection")
                        )
                    } else {
                        String::new()
                    }
                )
            } else {
                tally(early.iter().map(|c| {
                    format!(
                        "{} sent before STARTTLS on {}",
                        c.before_tls.join(", "),
                        front(c)
                    )
                }))
            },
        });
        let failed: Vec<&Connection> = conns.iter().filter(|c| c.tls_error.is_some()).collect();
        let mut versions: Vec<&str> = conns
            .iter()
            .filter_map(|c| c.tls_version.as_deref())
            .collect();
        versions.sort_unstable();
        versions.dedup();
        out.push(CheckResult {
            check: "tls_version",
            title: "TLS 1.2 or later",
            passed: failed.is_empty(),
            detail: if failed.is_empty() {
                format!(
                    "negotiated {}",
                    if versions.is_empty() {
                        "no TLS".to_owned()
                    } else {
                        versions.join(", ")
                    }
                )
            } else {
                tally(failed.iter().filter_map(|c| c.tls_error.clone()))
            },
        });
    }
    let app: Vec<&Connection> = conns
        .iter()
        .filter(|c| c.front.is_some_and(Front::is_app) && c.tls_version.is_some())
        .collect();
    if !app.is_empty() {
        let missing: Vec<&&Connection> = app
            .iter()
            .filter(|c| c.client_certificate.is_none())
            .collect();
        let mut subjects: Vec<&str> = app
            .iter()
            .filter_map(|c| c.client_certificate.as_deref())
            .collect();
        subjects.dedup();
        out.push(CheckResult {
            check: "client_certificate",
            title: "Client certificate (APP front)",
            passed: missing.is_empty(),
            detail: if missing.is_empty() {
                format!("presented {}", subjects.join("; "))
            } else {
                format!(
                    "no client certificate presented after STARTTLS ({})",
                    count(missing.len(), "connection")
                )
            },
        });
    }
    let tried: Vec<&Connection> = conns.iter().filter(|c| c.mechanism.is_some()).collect();
    if !tried.is_empty() {
        let wrong: Vec<&&Connection> = tried
            .iter()
            .filter(|c| {
                let m = c.mechanism.as_deref().unwrap_or("");
                let expected: &[&str] = if c.front.is_some_and(Front::is_app) {
                    &["PLAIN"]
                } else {
                    &["XOAUTH2", "OAUTHBEARER"]
                };
                !expected.contains(&m)
            })
            .collect();
        let mut used: Vec<String> = tried
            .iter()
            .map(|c| format!("{} on {}", c.mechanism.as_deref().unwrap_or(""), front(c)))
            .collect();
        used.sort();
        used.dedup();
        out.push(CheckResult {
            check: "mechanism",
            title: "SASL mechanism (XOAUTH2 for PER/ORG, PLAIN after the certificate for APP)",
            passed: wrong.is_empty(),
            detail: if wrong.is_empty() {
                used.join(", ")
            } else {
                tally(wrong.iter().map(|c| {
                    format!(
                        "{} is not an API LPS mechanism on {}",
                        c.mechanism.as_deref().unwrap_or(""),
                        front(c)
                    )
                }))
            },
        });
        let imap_no_ir: Vec<&&Connection> = tried
            .iter()
            .filter(|c| c.front.is_some_and(Front::is_imap) && c.sasl_ir == Some(false))
            .collect();
        let with_ir = tried.iter().filter(|c| c.sasl_ir == Some(true)).count();
        if tried.iter().any(|c| c.sasl_ir.is_some()) {
            out.push(CheckResult {
                check: "sasl_ir",
                title: "SASL-IR (the initial response on the AUTHENTICATE line)",
                passed: imap_no_ir.is_empty(),
                detail: if imap_no_ir.is_empty() {
                    format!("{} sent the initial response with the command", count(with_ir, "connection"))
                } else {
                    format!(
                        "AUTHENTICATE without initial response on IMAP ({}): the API LPS expects SASL-IR",
                        count(imap_no_ir.len(), "connection")
                    )
                },
            });
        }
        let refused: Vec<&&Connection> = tried.iter().filter(|c| !c.authenticated).collect();
        let accepted = tried.len() - refused.len();
        out.push(CheckResult {
            check: "authentication",
            title: "Authentication (Pro Santé Connect token, or client certificate)",
            passed: refused.is_empty(),
            detail: if refused.is_empty() {
                format!("accepted ({})", count(accepted, "connection"))
            } else {
                format!(
                    "refused: {}{}",
                    tally(refused.iter().map(|c| {
                        c.refused
                            .clone()
                            .unwrap_or_else(|| "no reason recorded".into())
                    })),
                    if accepted > 0 {
                        format!("; accepted otherwise ({})", count(accepted, "connection"))
                    } else {
                        String::new()
                    }
                )
            },
        });
    }
    if !messages.is_empty() {
        let bad = messages
            .iter()
            .filter(|m| m.findings.iter().any(|f| f.severity == Severity::Error))
            .count();
        let warnings: usize = messages
            .iter()
            .map(|m| {
                m.findings
                    .iter()
                    .filter(|f| f.severity == Severity::Warning)
                    .count()
            })
            .sum();
        out.push(CheckResult {
            check: "messages",
            title: "Messages (mss check: Référentiel #2 and mss rules)",
            passed: bad == 0,
            detail: format!(
                "{} of {} with errors, {}",
                bad,
                count(messages.len(), "message"),
                count(warnings, "warning")
            ),
        });
    }
    out
}
