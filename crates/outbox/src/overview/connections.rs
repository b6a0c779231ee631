//! Each sending mailbox's last connection to its operator, per endpoint (submission for the workers, IMAP
//! for the reader): when, and whether it worked or what kind of failure stopped it. The service owns one
//! log, its workers and reader write to it as they use their sessions, and the ops console reads it. It
//! lives in memory: what matters is how the connections of this process go now, and the store keeps the
//! pause that outlives a restart.

use std::collections::HashMap;
use std::sync::Mutex;

/// Which of a mailbox's connections.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// SMTP submission (the workers).
    Submission,
    /// IMAP (the reader: receipts and received messages).
    Imap,
}

/// A connection's last use.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastConnection {
    /// Which one.
    pub endpoint: Endpoint,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// Whether the session reached the server and was accepted (a refused recipient or message still
    /// counts as a working connection).
    pub ok: bool,
    /// What stopped it: `credentials refused`, `unreachable`, `timeout`, `connection lost`, `tls`,
    /// `protocol`, `configuration`.
    pub error: Option<String>,
    /// The error as the service logged it (server and reply; never a token nor a password).
    pub detail: Option<String>,
}

/// The service's log of last connections, by mailbox (compared without case) and endpoint.
#[derive(Debug, Default)]
pub struct ConnectionLog {
    last: Mutex<HashMap<(String, Endpoint), LastConnection>>,
}

impl ConnectionLog {
    /// Records a use of `sender`'s `endpoint` at `at_ms`: `Ok` when it worked, else the error it met.
    pub fn record(
        &self,
        sender: &str,
        endpoint: Endpoint,
        at_ms: i64,
        outcome: std::result::Result<(), &mss_lps::Error>,
    ) {
        let failure = outcome
            .err()
            .and_then(|e| kind(e).map(|k| (k, e.to_string())));
        let entry = LastConnection {
            endpoint,
            at_ms,
            ok: failure.is_none(),
            error: failure.as_ref().map(|(k, _)| (*k).to_owned()),
            detail: failure.map(|(_, d)| d),
        };
        if let Ok(mut last) = self.last.lock() {
            last.insert((sender.to_ascii_lowercase(), endpoint), entry);
        }
    }

    /// `sender`'s last connections, submission first; none for an endpoint not used yet.
    pub fn of(&self, sender: &str) -> Vec<LastConnection> {
        let Ok(last) = self.last.lock() else {
            return Vec::new();
        };
        let sender = sender.to_ascii_lowercase();
        [Endpoint::Submission, Endpoint::Imap]
            .into_iter()
            .filter_map(|e| last.get(&(sender.clone(), e)).cloned())
            .collect()
    }
}

/// What kind of failure `e` is for the connection; none when the connection itself worked (the server
/// refused a command, a recipient or the message: that is the message's story, not the connection's).
fn kind(e: &mss_lps::Error) -> Option<&'static str> {
    use mss_lps::Error as E;
    if e.needs_credentials() {
        return Some("credentials refused");
    }
    match e {
        E::Connect { .. } | E::Dns { .. } | E::NoService { .. } => Some("unreachable"),
        E::Timeout { .. } => Some("timeout"),
        E::Io { .. } | E::ConnectionClosed { .. } | E::ServerShutdown { .. } => {
            Some("connection lost")
        }
        E::StartTlsUnavailable { .. } | E::StartTlsRefused { .. } | E::Tls { .. } => Some("tls"),
        E::Auth { .. } | E::SessionEnded | E::TokenUnavailable { .. } => {
            Some("credentials refused")
        }
        E::Protocol { .. } | E::Unsupported { .. } => Some("protocol"),
        E::Config { .. } => Some("configuration"),
        E::Smtp { .. }
        | E::Imap { .. }
        | E::MessageTooLarge { .. }
        | E::RecipientsRefused { .. }
        | E::InvalidMessage { .. } => None,
        // a kind added later: said as it is rather than taken for a working connection
        _ => Some("other"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_use_of_each_endpoint_is_kept_with_its_kind_of_failure() {
        let log = ConnectionLog::default();
        assert!(log.of("a@x.test").is_empty());
        let closed = mss_lps::Error::ConnectionClosed {
            server: "smtp.x.test:587".into(),
        };
        log.record("A@x.test", Endpoint::Submission, 1, Err(&closed));
        log.record("a@x.test", Endpoint::Imap, 2, Ok(()));
        let refused = mss_lps::Error::MessageTooLarge { size: 2, limit: 1 };
        let last = log.of("a@X.test");
        assert_eq!(last.len(), 2);
        assert_eq!(
            (last[0].endpoint, last[0].ok, last[0].error.as_deref()),
            (Endpoint::Submission, false, Some("connection lost"))
        );
        assert_eq!(
            last[0].detail.as_deref(),
            Some("smtp.x.test:587 closed the connection")
        );
        assert!(last[1].ok && last[1].error.is_none());
        // a message the server refused: the connection worked
        log.record("a@x.test", Endpoint::Submission, 3, Err(&refused));
        assert_eq!(
            (log.of("a@x.test")[0].at_ms, log.of("a@x.test")[0].ok),
            (3, true)
        );
    }
}
