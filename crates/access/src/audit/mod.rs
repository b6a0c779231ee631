//! The audit trail (docs/mssante.md S2): one JSON line per request that sends, reads or deletes health
//! data, allowed or refused, written before the answer goes out. Who (client, key id, certificate, source
//! address), when (UTC, milliseconds), what (action, route, ids, sender, recipients) and the outcome; never a
//! body, subject, document, token, key or password.
//!
//! [`AuditLog`] writes the trail (one `write()` per line, `O_APPEND`, mode 0600, rotated by size, old files
//! deleted after `keep_days`); [`read`] reads it back, rotated files first, oldest first.

mod files;
mod log;
mod read;

use std::net::IpAddr;

pub use log::{AuditConfig, AuditLog};
pub use read::{AuditEntries, AuditQuery, read};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the answer was decided (UTC, written with milliseconds: `2026-12-06T07:31:02.123Z`).
    #[serde(with = "utc_ms")]
    pub time: OffsetDateTime,
    /// The client's name, when its key was valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The key id presented (public), whether or not the key was valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The subject of the TLS client certificate, when clients present one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The address the request came from (behind a trusted reverse proxy, the client it forwarded for).
    pub source: IpAddr,
    /// The trusted reverse proxy that forwarded the request, when it named another client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    /// What was asked: `batches.create`, `batches.read`, `messages.read`, `messages.send`,
    /// `messages.compose`.
    pub action: String,
    /// Method and route template, e.g. `GET /v1/batches/{id}`.
    pub route: String,
    /// The batch concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// The messages concerned (outbox ids, or Message-IDs of direct sends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// The sending mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The recipients' addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
}

/// The answer given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// Why it was refused or failed (`unknown_key`, `revoked_key`, `insufficient_scope: batches:write`…);
    /// none when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `time` as the trail writes it: UTC with milliseconds, `2026-12-06T07:31:02.123Z`.
pub fn format_time(time: OffsetDateTime) -> Result<String, time::error::Format> {
    utc_ms::format(time)
}

/// `2026-12-06T07:31:02.123Z` both ways.
mod utc_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{OffsetDateTime, UtcOffset};

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t).map_err(serde::ser::Error::custom)?)
    }

    pub fn format(t: OffsetDateTime) -> Result<String, time::error::Format> {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        t.to_offset(UtcOffset::UTC).format(&format)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_json_line_with_millisecond_utc_time() {
        let record = AuditRecord {
            time: time::macros::datetime!(2026-12-06 07:31:02.123456 UTC),
            client: Some("dpi".into()),
            key_id: Some("k1".into()),
            certificate: None,
            source: "10.1.2.3".parse().unwrap(),
            via: None,
            action: "batches.read".into(),
            route: "GET /v1/batches/{id}".into(),
            batch: Some("b1".into()),
            messages: vec![],
            sender: None,
            recipients: vec![],
            outcome: Outcome {
                status: 200,
                reason: None,
            },
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2026-12-06T07:31:02.123Z","client":"dpi","key_id":"k1","source":"10.1.2.3","action":"batches.read","route":"GET /v1/batches/{id}","batch":"b1","outcome":{"status":200}}"#
        );
        let back: AuditRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back.time,
            time::macros::datetime!(2026-12-06 07:31:02.123 UTC)
        );
    }
}
