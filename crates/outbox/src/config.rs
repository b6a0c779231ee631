//! `[[senders]]` of a service's configuration: the mailboxes whose credentials it holds, which batches
//! name in `auth` and its workers deliver for.

use std::collections::HashSet;
use std::path::PathBuf;

use mss_types::MailAddress;

use crate::error::{Error, Result};

/// A mailbox whose credentials the service holds.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
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
    /// Receive in this mailbox (default false): every message that is not a report is kept in the inbox
    /// (docs/mssante.md R1), read in the same IMAP pass as the reports. Left on the server as it is.
    pub receive: Option<bool>,
    /// What becomes of a received message at the operator once its outcome is recorded (docs/mssante.md
    /// R5): `delete` (default), `move:FOLDER` or `keep`.
    pub retention: Option<String>,
    /// Days a received message is kept locally after its outcome (default 30; 0: purged at the next pass).
    pub keep_days: Option<u32>,
    /// URL each message received is POSTed to (Standard Webhooks, signed with `webhook_secret_file`).
    pub webhook: Option<String>,
    /// File holding the webhook's `whsec_` secret.
    pub webhook_secret_file: Option<PathBuf>,
    /// Where the consumer's errors go as a plain message when a received message asked for no MDN
    /// (docs/mssante.md R4); none: nowhere.
    pub error_mailbox: Option<String>,
    /// The mailbox's label (`Intitule_BAL`, docs/mssante.md M4): the `From:` display name of the MDNs and
    /// error notices it sends for received messages (Ref#2 ECO.2.2.7).
    pub label: Option<String>,
    /// SMTP sessions in parallel for this mailbox (default 1).
    pub connections: Option<u16>,
    /// At most this many messages per second (default: no limit).
    pub rate: Option<f64>,
}

impl SenderConfig {
    /// The mailbox, checked.
    pub fn mailbox_address(&self) -> Result<MailAddress> {
        MailAddress::parse(&self.address)
            .map_err(|e| Error::Config(format!("[[senders]] {:?}: address: {e}", self.name)))
    }

    /// Its retention at the operator, checked.
    pub fn retention(&self) -> Result<crate::reader::Retention> {
        self.retention
            .as_deref()
            .map_or(Ok(crate::reader::Retention::Delete), |r| {
                crate::reader::Retention::parse(r).map_err(|e| {
                    Error::Config(format!("[[senders]] {:?}: retention: {e}", self.name))
                })
            })
    }

    /// How long its received messages are kept locally after their outcome.
    pub fn keep(&self) -> std::time::Duration {
        self.keep_days.map_or(crate::reader::DEFAULT_KEEP, |d| {
            std::time::Duration::from_secs(u64::from(d) * 24 * 3600)
        })
    }

    /// Its webhook, its secret read (none when not set).
    pub fn webhook(&self) -> Result<Option<crate::inbox::push::Webhook>> {
        match (&self.webhook, &self.webhook_secret_file) {
            (None, None) => Ok(None),
            (Some(url), Some(file)) => crate::inbox::push::Webhook::with_secret_file(url, file)
                .map(Some)
                .map_err(|e| Error::Config(format!("[[senders]] {:?}: {e}", self.name))),
            _ => Err(Error::Config(format!(
                "[[senders]] {:?}: webhook and webhook_secret_file go together",
                self.name
            ))),
        }
    }

    /// Its error mailbox, checked.
    pub fn error_mailbox_address(&self) -> Result<Option<MailAddress>> {
        self.error_mailbox
            .as_deref()
            .map(|a| {
                MailAddress::parse(a).map_err(|e| {
                    Error::Config(format!("[[senders]] {:?}: error_mailbox: {e}", self.name))
                })
            })
            .transpose()
    }

    /// Its label, checked: one line of at most 200 characters.
    pub fn sender_label(&self) -> Result<Option<String>> {
        match self.label.as_deref().map(str::trim) {
            None => Ok(None),
            Some(l)
                if !l.is_empty()
                    && l.chars().count() <= 200
                    && !l.chars().any(char::is_control) =>
            {
                Ok(Some(l.to_owned()))
            }
            Some(_) => Err(Error::Config(format!(
                "[[senders]] {:?}: label: one line of 1 to 200 characters",
                self.name
            ))),
        }
    }

    /// The files its credentials are read from (watched for changes).
    pub fn credential_files(&self) -> Vec<PathBuf> {
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
pub fn check_senders(senders: &[SenderConfig]) -> Result<()> {
    let mut names = HashSet::new();
    let mut addresses = HashSet::new();
    let refuse = |m: String| Err(Error::Config(m));
    for s in senders {
        let address = s.mailbox_address()?;
        s.error_mailbox_address()?;
        s.sender_label()?;
        s.retention()?;
        if s.webhook.is_some() && !s.receive.unwrap_or(false) {
            return refuse(format!(
                "[[senders]] {:?}: webhook needs receive = true",
                s.name
            ));
        }
        if s.name.is_empty() || s.name.len() > 128 || s.name.chars().any(char::is_control) {
            return refuse(format!(
                "[[senders]] name {:?}: 1 to 128 characters",
                s.name
            ));
        }
        if !names.insert(s.name.clone()) {
            return refuse(format!("[[senders]] name {:?} given twice", s.name));
        }
        if !addresses.insert(address.to_string()) {
            return refuse(format!("[[senders]] {address} given twice"));
        }
        match (&s.token_file, &s.certificate) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return refuse(format!(
                    "[[senders]] {:?}: give token_file (PER/ORG) or certificate (APP), not both",
                    s.name
                ));
            }
        }
        if s.certificate_password_file.is_some() && s.certificate.is_none() {
            return refuse(format!(
                "[[senders]] {:?}: certificate_password_file without certificate",
                s.name
            ));
        }
        if s.connections.is_some_and(|c| !(1..=64).contains(&c)) {
            return refuse(format!(
                "[[senders]] {:?}: connections must be 1 to 64",
                s.name
            ));
        }
    }
    Ok(())
}
