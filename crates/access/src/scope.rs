//! What a key allows (docs/mssante.md S1).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One permission of a client key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    /// `directory:read`: search, autocomplete and entries of the directory.
    DirectoryRead,
    /// `messages:compose`: `POST /v1/messages/compose`.
    MessagesCompose,
    /// `messages:send`: `POST /v1/messages/send`.
    MessagesSend,
    /// `batches:write`: `POST /v1/batches`.
    BatchesWrite,
    /// `batches:read`: `GET /v1/batches/{id}` and `GET /v1/messages/{id}`.
    BatchesRead,
    /// `metrics:read`: `GET /metrics`.
    MetricsRead,
    /// `inbox:read`: `GET /v1/inbox` and a received message, its bytes and its documents.
    InboxRead,
    /// `inbox:ack`: `POST /v1/inbox/{id}/ack` (the outcome, and the MDN it sends).
    InboxAck,
    /// `outbox:read`: `GET /v1/outbox`, the whole outbox as the ops console shows it (every sender's
    /// counts, batches and recipients in trouble, whoever created them; a client limited to some senders
    /// sees theirs).
    OutboxRead,
    /// `outbox:manage`: the ops team's actions on any batch, `POST /v1/messages/{id}/retry` and
    /// `POST /v1/batches/{id}/cancel`.
    OutboxManage,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 10] = [
        Scope::DirectoryRead,
        Scope::MessagesCompose,
        Scope::MessagesSend,
        Scope::BatchesWrite,
        Scope::BatchesRead,
        Scope::MetricsRead,
        Scope::InboxRead,
        Scope::InboxAck,
        Scope::OutboxRead,
        Scope::OutboxManage,
    ];

    /// Its name, e.g. `batches:write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::DirectoryRead => "directory:read",
            Scope::MessagesCompose => "messages:compose",
            Scope::MessagesSend => "messages:send",
            Scope::BatchesWrite => "batches:write",
            Scope::BatchesRead => "batches:read",
            Scope::MetricsRead => "metrics:read",
            Scope::InboxRead => "inbox:read",
            Scope::InboxAck => "inbox:ack",
            Scope::OutboxRead => "outbox:read",
            Scope::OutboxManage => "outbox:manage",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                crate::Error::invalid(
                    "scope",
                    format!("unknown scope `{s}`; the scopes are {}", known.join(", ")),
                )
            })
    }
}

impl TryFrom<String> for Scope {
    type Error = crate::Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_reads_back_from_its_name() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
        let e = "batches:delete".parse::<Scope>().unwrap_err().to_string();
        assert!(
            e.starts_with("scope: unknown scope `batches:delete`"),
            "{e}"
        );
    }
}
