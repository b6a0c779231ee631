//! The inbox webhook: each message kept in a mailbox's inbox is POSTed to the LPS back-end's URL
//! (`[[senders]] webhook`), signed as the Standard Webhooks specification says (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the key being
//! the `whsec_` secret), in id order per mailbox, at least once.
//!
//! Durable: where each mailbox's push stands is a mark in the store ([`Inbox::inbox_push_mark`]), moved
//! only once the receiver answered 2xx; a failure keeps the message at the head and retries it with backoff
//! (5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h) until it has failed for 3 days, when it is given up,
//! logged, and the next one goes. A process killed after the receiver's 2xx but before the mark moved
//! sends that message again: receivers deduplicate by `webhook-id` (`inbox_<id>`, the same at every try).
//! The body is the message as `mss inbox list --json` shows it (no bytes); nothing of it is logged.

use std::time::Duration;

use base64::Engine as _;
use hmac::Mac as _;

use crate::error::{Error, Result};
use crate::inbox::{Inbox, InboxQuery};

/// How long a message is retried before it is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// The pause after the n-th failure (the last one repeats).
const BACKOFF: [Duration; 6] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Where and how a mailbox's messages are pushed.
#[derive(Clone)]
pub struct Webhook {
    url: reqwest::Url,
    key: Vec<u8>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Webhook {
    // the key is a secret: never printed
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook at `url` (http or https) signing with `secret` (`whsec_<base64>`, or the base64 alone).
    pub fn new(url: &str, secret: &str) -> Result<Webhook> {
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::Config(format!("webhook {url:?}: not an http(s) URL")))?;
        let secret = secret.trim();
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Error::Config("webhook secret: expected whsec_<base64>".into()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config(format!("webhook client: {e}")))?;
        Ok(Webhook { url, key, http })
    }

    /// A webhook whose secret is read from `file` (its name, never its content, in errors).
    pub fn with_secret_file(url: &str, file: &std::path::Path) -> Result<Webhook> {
        let secret = std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("webhook secret {}: {e}", file.display())))?;
        Webhook::new(url, &secret)
    }
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard Webhooks).
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// What a push round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Messages the receiver took.
    pub pushed: u64,
    /// Failed attempts (the message stays at the head, retried later).
    pub failed: u64,
    /// Messages given up after failing for [`GIVE_UP_AFTER`].
    pub given_up: u64,
}

/// Pushes the messages of `mailbox` not yet delivered, in order, until one fails, one is not yet due, or
/// none is left. Only the store's failures are errors: the receiver's are noted and retried.
pub async fn push_pending(store: &dyn Inbox, mailbox: &str, hook: &Webhook) -> Result<PushReport> {
    let mut report = PushReport::default();
    loop {
        let mark = store.inbox_push_mark(mailbox).await?;
        if mark.due_ms > mark.now_ms {
            return Ok(report);
        }
        let next = store
            .inbox_list(&InboxQuery {
                mailbox: Some(mailbox.to_owned()),
                after: mark.last_id,
                limit: 1,
                ..InboxQuery::default()
            })
            .await?;
        let Some(entry) = next.into_iter().next() else {
            return Ok(report);
        };
        let body = serde_json::to_vec(&entry).map_err(|e| Error::Store {
            reason: format!("inbox message {}: {e}", entry.id),
        })?;
        let id = format!("inbox_{}", entry.id);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let sent = hook
            .http
            .post(hook.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(&hook.key, &id, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        let failure = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
            // the kind only: reqwest's text may quote the URL, which may hold a token
            Err(e) if e.is_timeout() => Some("timed out".to_owned()),
            Err(e) if e.is_connect() => Some("connection failed".to_owned()),
            Err(_) => Some("request failed".to_owned()),
        };
        match failure {
            None => {
                store.inbox_pushed(mailbox, entry.id, true).await?;
                tracing::debug!(%mailbox, id = entry.id, "webhook: message delivered");
                report.pushed += 1;
            }
            Some(reason) => {
                let failing_for = mark
                    .failing_since_ms
                    .map_or(0, |since| mark.now_ms.saturating_sub(since));
                if u128::try_from(failing_for).unwrap_or(0) >= GIVE_UP_AFTER.as_millis() {
                    tracing::error!(%mailbox, id = entry.id, attempts = mark.attempts + 1, %reason,
                        "webhook: message given up after failing for 3 days");
                    store.inbox_pushed(mailbox, entry.id, false).await?;
                    report.given_up += 1;
                    continue;
                }
                let pause = BACKOFF[usize::try_from(mark.attempts)
                    .unwrap_or(usize::MAX)
                    .min(BACKOFF.len() - 1)];
                tracing::warn!(%mailbox, id = entry.id, attempt = mark.attempts + 1, %reason,
                    retry_in_s = pause.as_secs(), "webhook: delivery failed");
                store.inbox_push_failed(mailbox, pause, &reason).await?;
                report.failed += 1;
                return Ok(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // the example of the Standard Webhooks specification's reference libraries
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("key");
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let hook = Webhook::new(
            "https://lps.example/hook",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .expect("hook");
        assert_eq!(hook.key, key);
        assert!(!format!("{hook:?}").contains("MfKQ"));
        assert!(Webhook::new("ftp://x/", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Webhook::new("https://x/", "whsec_***").is_err());
    }
}
