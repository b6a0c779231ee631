//! Prometheus metrics: request counts and latency histograms per route, index size; and what the ops
//! console shows, read from the store at each scrape: the outbox's depth per sender and state, the age of
//! the oldest message waiting, paused senders, the inbox per mailbox and status, the last successful
//! run of each directory source, and the service's scheduled runs (last attempt, failed, next run); the
//! business acks to the DPI not done, and what the HL7 listener answered the DPI. Every configured sender
//! (and receiving mailbox, source, DPI sender) has its series, at zero when there is nothing, so that a
//! dashboard and an alert see it from the start.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

/// Content type of the OpenMetrics text exposition (read by Prometheus).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SenderStateLabels {
    sender: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SenderLabels {
    sender: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailboxStatusLabels {
    mailbox: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailboxLabels {
    mailbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Hl7ReceivedLabels {
    r#type: String,
    ack: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BusinessAckLabels {
    sender: String,
    r#type: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BusinessAckTypeLabels {
    sender: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// What a scrape reads from the store and the index, besides the index's size.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The store's time, ms since the epoch.
    pub now_ms: i64,
    /// Configured sending mailboxes, and the receiving ones among them.
    pub senders: Vec<String>,
    pub receiving: Vec<String>,
    pub loads: Vec<mss_outbox::overview::SenderLoad>,
    pub paused: Vec<String>,
    pub inbox: Vec<mss_outbox::overview::InboxLoad>,
    /// The sending mailboxes that send on a DPI's behalf, and the business acks not done.
    pub dpi: Vec<String>,
    pub business_acks: Vec<mss_outbox::overview::BusinessAckLoad>,
    /// Each directory source, its last successful run (seconds since the epoch) if any, and the
    /// service's schedule of it if it runs it.
    pub sources: Vec<(String, Option<f64>, Option<crate::Schedule>)>,
}

/// The console's gauges: rewritten whole at each scrape (a sender gone from the configuration and the
/// store goes away with its series).
#[derive(Default)]
struct StoreGauges {
    recipients: Family<SenderStateLabels, Gauge>,
    oldest_pending: Family<SenderLabels, FloatGauge>,
    paused: Family<SenderLabels, Gauge>,
    inbox: Family<MailboxStatusLabels, Gauge>,
    oldest_waiting: Family<MailboxLabels, FloatGauge>,
    business_acks: Family<BusinessAckLabels, Gauge>,
    oldest_business_ack: Family<BusinessAckTypeLabels, FloatGauge>,
    source_last: Family<SourceLabels, FloatGauge>,
    source_attempt: Family<SourceLabels, FloatGauge>,
    source_failed: Family<SourceLabels, Gauge>,
    source_next: Family<SourceLabels, FloatGauge>,
}

/// The service's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    index_entries: Gauge,
    index_bytes: Gauge,
    hl7_received: Family<Hl7ReceivedLabels, Counter>,
    store: StoreGauges,
    /// One scrape at a time rewrites the store's gauges and encodes them.
    rendering: Mutex<()>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s: directory answers take well under a millisecond, so the low buckets matter
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let index_entries = Gauge::default();
        let index_bytes = Gauge::default();
        registry.register(
            "mss_http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "mss_http_request_duration_seconds",
            "Time to answer HTTP requests, by route",
            latency.clone(),
        );
        registry.register(
            "mss_index_entries",
            "Mailboxes in the directory index",
            index_entries.clone(),
        );
        registry.register(
            "mss_index_size_bytes",
            "Size of the directory index on disk",
            index_bytes.clone(),
        );
        let hl7_received = Family::<Hl7ReceivedLabels, Counter>::default();
        registry.register(
            "mss_hl7_received",
            "Messages the DPI sent to the HL7 listener, by type (ORU^R01, MDM^T02, MDM^T10, MDM^T04; other; unreadable), the answer's MSA-1 (AA queued, AE/AR refused: nothing queued) and the refusal's ERR-3 code",
            hl7_received.clone(),
        );
        let store = StoreGauges::default();
        registry.register(
            "mss_outbox_recipients",
            "Outbox recipients by sending mailbox and state (queued, sending, sent, deferred, failed, delivered, read)",
            store.recipients.clone(),
        );
        registry.register(
            "mss_outbox_oldest_pending_age_seconds",
            "Age of the oldest message still waiting for a worker (queued, sending or deferred), by sending mailbox; 0 when none waits",
            store.oldest_pending.clone(),
        );
        registry.register(
            "mss_outbox_sender_paused",
            "1 while a sending mailbox is paused (its credentials were refused), else 0",
            store.paused.clone(),
        );
        registry.register(
            "mss_inbox_messages",
            "Received messages by mailbox and status (new: waiting for integration, integrated, error)",
            store.inbox.clone(),
        );
        registry.register(
            "mss_inbox_oldest_waiting_age_seconds",
            "Age of the oldest received message waiting for integration, by mailbox; 0 when none waits",
            store.oldest_waiting.clone(),
        );
        registry.register(
            "mss_hl7_business_acks",
            "Business acks to the DPI (type ZAM^Z02 delivery, ZAM^Z03 reading) not done, by sending mailbox and state (pending: still to go, the DPI down or answering AR; refused: the DPI answered AE, not resent)",
            store.business_acks.clone(),
        );
        registry.register(
            "mss_hl7_business_ack_oldest_pending_age_seconds",
            "Age of the oldest business ack still to go to the DPI, by sending mailbox and type; 0 when none waits",
            store.oldest_business_ack.clone(),
        );
        registry.register(
            "mss_directory_source_last_success_timestamp_seconds",
            "When each directory source (extraction, ldap, fhir) last completed a run into the index (Unix time); 0: never",
            store.source_last.clone(),
        );
        registry.register(
            "mss_directory_source_last_attempt_timestamp_seconds",
            "When the service's last scheduled run of each directory source ended, whatever its outcome (Unix time); 0: none since the service started or not scheduled",
            store.source_attempt.clone(),
        );
        registry.register(
            "mss_directory_source_last_run_failed",
            "1 while the service's last scheduled run of a directory source failed, else 0",
            store.source_failed.clone(),
        );
        registry.register(
            "mss_directory_source_next_run_timestamp_seconds",
            "When the service's next scheduled run of each directory source starts (Unix time); 0: running now or not scheduled",
            store.source_next.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            index_entries,
            index_bytes,
            hl7_received,
            store,
            rendering: Mutex::new(()),
        }
    }
}

/// The message types the sending guide accepts; any other MSH-9 counts as `other` (a peer's text never
/// becomes a label of its own).
const HL7_TYPES: [&str; 5] = ["ORU^R01", "MDM^T02", "MDM^T10", "MDM^T04", "unreadable"];

impl Metrics {
    /// Counts an answer of the HL7 listener.
    pub fn hl7_answered(&self, message_type: &str, ack: &str, error_code: Option<u16>) {
        let known = |v: &str, set: &[&str]| {
            set.iter()
                .find(|k| k.eq_ignore_ascii_case(v))
                .map_or("other", |k| *k)
                .to_owned()
        };
        self.hl7_received
            .get_or_create(&Hl7ReceivedLabels {
                r#type: known(message_type, &HL7_TYPES),
                ack: known(ack, &["AA", "AE", "AR"]),
                code: error_code.map(|c| c.to_string()).unwrap_or_default(),
            })
            .inc();
    }

    /// The text exposition, with the index gauges read now.
    pub fn render(&self, index_entries: u64, index_bytes: u64) -> String {
        self.render_with(index_entries, index_bytes, None)
    }

    /// The text exposition, with the index gauges and, when given, the store's read now.
    pub(crate) fn render_with(
        &self,
        index_entries: u64,
        index_bytes: u64,
        snapshot: Option<&Snapshot>,
    ) -> String {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = snapshot {
            self.store.set(s);
        }
        self.index_entries
            .set(i64::try_from(index_entries).unwrap_or(i64::MAX));
        self.index_bytes
            .set(i64::try_from(index_bytes).unwrap_or(i64::MAX));
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
    }
}

/// Middleware counting and timing every request under its route template (never the raw path, which would
/// make one series per address).
pub async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    state.metrics.observe(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

fn seconds_since(now_ms: i64, then_ms: Option<i64>) -> f64 {
    then_ms.map_or(0.0, |t| (now_ms.saturating_sub(t)).max(0) as f64 / 1000.0)
}

impl StoreGauges {
    /// Every DPI sender's two types in both states, at zero when none; any other sender with some.
    fn set_business_acks(&self, s: &Snapshot) {
        use mss_outbox::exchanges::{BusinessAckKind, ExchangeState};
        let mut keys: Vec<(String, String)> = s
            .dpi
            .iter()
            .flat_map(|d| {
                [BusinessAckKind::Delivery, BusinessAckKind::Reading]
                    .map(|k| (d.clone(), k.message_type().to_owned()))
            })
            .collect();
        for b in &s.business_acks {
            if !keys
                .iter()
                .any(|(d, t)| d.eq_ignore_ascii_case(&b.sender) && *t == b.kind)
            {
                keys.push((b.sender.clone(), b.kind.clone()));
            }
        }
        for (sender, kind) in keys {
            let of = |state: ExchangeState| {
                s.business_acks.iter().find(|b| {
                    b.sender.eq_ignore_ascii_case(&sender) && b.kind == kind && b.state == state
                })
            };
            for state in [ExchangeState::Pending, ExchangeState::Refused] {
                self.business_acks
                    .get_or_create(&BusinessAckLabels {
                        sender: sender.clone(),
                        r#type: kind.clone(),
                        state: state.as_str().to_owned(),
                    })
                    .set(of(state).map_or(0, |b| i64::try_from(b.count).unwrap_or(i64::MAX)));
            }
            self.oldest_business_ack
                .get_or_create(&BusinessAckTypeLabels {
                    sender: sender.clone(),
                    r#type: kind.clone(),
                })
                .set(seconds_since(
                    s.now_ms,
                    of(ExchangeState::Pending).map(|b| b.oldest_ms),
                ));
        }
    }

    fn set(&self, s: &Snapshot) {
        self.recipients.clear();
        self.oldest_pending.clear();
        self.paused.clear();
        self.inbox.clear();
        self.oldest_waiting.clear();
        self.business_acks.clear();
        self.oldest_business_ack.clear();
        self.source_last.clear();
        self.source_attempt.clear();
        self.source_failed.clear();
        self.source_next.clear();
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let mut senders: Vec<&str> = s.senders.iter().map(String::as_str).collect();
        for l in &s.loads {
            if !senders.iter().any(|x| same(x, &l.sender)) {
                senders.push(&l.sender);
            }
        }
        for sender in senders {
            let load = s.loads.iter().find(|l| same(&l.sender, sender));
            let counts = load.map(|l| l.counts).unwrap_or_default();
            for state in mss_outbox::State::ALL {
                let n = counts.of(state);
                self.recipients
                    .get_or_create(&SenderStateLabels {
                        sender: sender.to_owned(),
                        state: state.as_str().to_owned(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            let label = SenderLabels {
                sender: sender.to_owned(),
            };
            self.oldest_pending.get_or_create(&label).set(seconds_since(
                s.now_ms,
                load.and_then(|l| l.oldest_pending_ms),
            ));
            self.paused
                .get_or_create(&label)
                .set(i64::from(s.paused.iter().any(|p| same(p, sender))));
        }
        let mut mailboxes: Vec<&str> = s.receiving.iter().map(String::as_str).collect();
        for l in &s.inbox {
            if !mailboxes.iter().any(|x| same(x, &l.mailbox)) {
                mailboxes.push(&l.mailbox);
            }
        }
        for mailbox in mailboxes {
            let load = s.inbox.iter().find(|l| same(&l.mailbox, mailbox));
            let l = load.cloned().unwrap_or_default();
            for (status, n) in [
                ("new", l.new),
                ("integrated", l.integrated),
                ("error", l.error),
            ] {
                self.inbox
                    .get_or_create(&MailboxStatusLabels {
                        mailbox: mailbox.to_owned(),
                        status: status.to_owned(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            self.oldest_waiting
                .get_or_create(&MailboxLabels {
                    mailbox: mailbox.to_owned(),
                })
                .set(seconds_since(s.now_ms, l.oldest_new_ms));
        }
        self.set_business_acks(s);
        for (source, last, schedule) in &s.sources {
            let label = SourceLabels {
                source: source.clone(),
            };
            self.source_last
                .get_or_create(&label)
                .set(last.unwrap_or(0.0));
            let attempt = schedule.as_ref().and_then(|s| s.last_attempt.as_ref());
            self.source_attempt
                .get_or_create(&label)
                .set(attempt.map_or(0.0, |a| a.finished_at));
            self.source_failed.get_or_create(&label).set(i64::from(
                attempt.is_some_and(|a| a.outcome == crate::Outcome::Failed),
            ));
            self.source_next
                .get_or_create(&label)
                .set(schedule.as_ref().and_then(|s| s.next_at).unwrap_or(0.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DPI's MSH-9 never becomes a label of its own: the guide's types keep theirs, any other is `other`.
    #[test]
    fn hl7_answers_are_counted_under_bounded_labels() {
        let m = Metrics::default();
        m.hl7_answered("MDM^T02", "AA", None);
        m.hl7_answered("mdm^t02", "AA", None);
        m.hl7_answered("ADT^A08", "AE", Some(200));
        m.hl7_answered("<script>", "XX", Some(207));
        m.hl7_answered("unreadable", "AR", Some(100));
        let text = m.render(0, 0);
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("mss_hl7_received_total"))
            .collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                r#"mss_hl7_received_total{type="MDM^T02",ack="AA",code=""} 2"#,
                r#"mss_hl7_received_total{type="other",ack="AE",code="200"} 1"#,
                r#"mss_hl7_received_total{type="other",ack="other",code="207"} 1"#,
                r#"mss_hl7_received_total{type="unreadable",ack="AR",code="100"} 1"#,
            ]
        );
    }
}
