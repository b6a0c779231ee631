//! The DPI's MLLP messages into the durable outbox (docs/mssante.md H1): parse, read what is asked,
//! compose, store, and only then answer `AA`. A refused message gets `AE`/`AR` with ERR naming the fault
//! and leaves nothing queued; a resent message (same MSH-10 from the same application) finds what the
//! first one stored and is answered `AA` again without a second message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mss_message::{ComposeConfig, Trust};
use mss_outbox::exchanges::{Answer, Direction, Link, NewExchange, Requester};
use mss_outbox::prepare::{Content, Item, KeySource, Origin, prepare};
use mss_outbox::{Accepted, Store};
use mss_types::MailAddress;

use super::sending::{self, Context, Outgoing, Refusal};
use crate::ack::{AckCode, Fault, acknowledge, reject_unreadable};
use crate::{Message, mllp};

/// How the listener queues.
pub struct DpiListener {
    store: Arc<dyn Store>,
    sender: MailAddress,
    auth_ref: String,
    compose: ComposeConfig,
    owner: Option<String>,
    batch: String,
    context: Context,
    application: String,
    facility: Option<String>,
    counter: AtomicU64,
    observer: Option<Observer>,
}

/// What the listener answered one message, for the service's counters: never the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered<'a> {
    /// MSH-9's message type and event (`MDM^T02`); `unreadable` when the message could not be parsed.
    pub message_type: &'a str,
    /// MSA-1: `AA`, `AE` or `AR`.
    pub ack: &'a str,
    /// ERR-3 of a refusal (HL7 table 0357: 100, 101, 103, 207…).
    pub error_code: Option<u16>,
}

/// Told of every answer (the service counts them in its metrics).
pub type Observer = Arc<dyn Fn(Answered<'_>) + Send + Sync>;

/// What the listener is given.
pub struct ListenerConfig {
    /// The outbox.
    pub store: Arc<dyn Store>,
    /// The `[[senders]]` entry's name (`auth_ref` `senders:<name>`, batch `hl7:<name>`).
    pub sender_name: String,
    /// Its mailbox.
    pub sender: MailAddress,
    /// Composition (product reference, espace de confiance).
    pub compose: ComposeConfig,
    /// `[hl7]`.
    pub hl7: super::Hl7Config,
    /// Told of every answer.
    pub observer: Option<Observer>,
}

/// What one message became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Queued now, or found queued by an earlier send of the same message: the outbox message ids.
    Queued {
        /// Outbox message ids, one per audience.
        ids: Vec<i64>,
        /// True when every part was already stored (a resend).
        again: bool,
    },
    /// Refused.
    Refused(Refusal),
}

impl DpiListener {
    /// A listener queueing into `config.store`.
    pub fn new(config: ListenerConfig) -> Self {
        let context = Context {
            sender_address: config.sender.to_string(),
            entity: config.hl7.entity.clone(),
            class_code: config.hl7.class_code(),
        };
        DpiListener {
            store: config.store,
            batch: format!("hl7:{}", config.sender_name),
            auth_ref: format!("senders:{}", config.sender_name),
            sender: config.sender,
            compose: config.compose,
            owner: config.hl7.client.clone(),
            context,
            application: config.hl7.application(),
            facility: config.hl7.facility,
            counter: AtomicU64::new(0),
            observer: config.observer,
        }
    }

    fn observe(&self, answered: Answered<'_>) {
        if let Some(observer) = &self.observer {
            observer(answered);
        }
    }

    /// The outbox batch these messages are queued under.
    pub fn batch(&self) -> &str {
        &self.batch
    }

    /// Queues what `m` asks (or refuses it).
    pub async fn accept(&self, m: &Message) -> Outcome {
        let outgoing = match sending::read(m, &self.context) {
            Ok(o) => o,
            Err(r) => return Outcome::Refused(r),
        };
        let items = match self.prepare(m, &outgoing) {
            Ok(items) => items,
            Err(r) => return Outcome::Refused(r),
        };
        // the exchange logged in the same commit, with the business acks the DPI asked for
        match self
            .store
            .enqueue_logged(
                Some(&self.batch),
                self.owner.as_deref(),
                items,
                received(m, &outgoing),
            )
            .await
        {
            Ok(accepted) => Outcome::Queued {
                again: accepted.iter().all(|a| matches!(a, Accepted::Existing(_))),
                ids: accepted.iter().map(|a| a.key()).collect(),
            },
            Err(e) => Outcome::Refused(Refusal {
                // a circumstance: the DPI sends it again later
                code: AckCode::AR,
                fault: Fault::new(207, "", format!("not queued, send again later: {e}")),
            }),
        }
    }

    fn prepare(
        &self,
        m: &Message,
        outgoing: &Outgoing,
    ) -> Result<Vec<mss_outbox::NewMessage>, Refusal> {
        let app = m.get("MSH", 3).raw();
        let facility = m.get("MSH", 4).raw();
        let id = m.control_id();
        let trust: &Trust = &self.compose.trust;
        let origin = Origin {
            sender: &self.sender,
            auth_ref: &self.auth_ref,
            compose: Some(&self.compose),
            trust,
            owner: self.owner.as_deref(),
        };
        let mut out = Vec::new();
        for part in &outgoing.parts {
            let request = serde_json::to_value(&part.request).map_err(|e| Refusal {
                code: AckCode::AE,
                fault: Fault::new(207, "", format!("the request cannot be written: {e}")),
            })?;
            let item = Item {
                label: format!(
                    "hl7 {} {id} from {app}/{facility} ({})",
                    outgoing.kind,
                    part.audience.as_str()
                ),
                // MSH-10 is unique per sending application: with it and the audience, a resend finds
                // what the first send stored
                key: KeySource::Given(format!(
                    "hl7:{app}/{facility}/{id}/{}",
                    part.audience.as_str()
                )),
                content: Content::Compose(request),
                dsn: part.request.receipts.dsn,
            };
            let prepared = off_runtime(|| prepare(&item, &origin)).map_err(|e| {
                let (field, reason) = match &e {
                    mss_outbox::Error::Invalid { field, reason }
                    | mss_outbox::Error::Refused { field, reason } => {
                        (field.clone(), reason.clone())
                    }
                    other => (String::new(), other.to_string()),
                };
                Refusal {
                    code: AckCode::AE,
                    fault: Fault::new(207, location_of(&field, part), format!("{field}: {reason}")),
                }
            })?;
            out.push(prepared.message);
        }
        Ok(out)
    }

    /// The acknowledgement of `m` for `outcome`.
    pub fn acknowledgement(&self, m: &Message, outcome: &Outcome) -> Message {
        let (code, faults) = match outcome {
            Outcome::Queued { .. } => (AckCode::AA, Vec::new()),
            Outcome::Refused(r) => (r.code, vec![r.fault.clone()]),
        };
        let mut ack = acknowledge(m, code, &faults, &self.next_id(), &now());
        if let Some(msh) = ack.segments_mut().first_mut() {
            let d = crate::Delimiters::default();
            msh.set(3, d.escape(&self.application).into_owned());
            if let Some(f) = &self.facility {
                msh.set(4, d.escape(f).into_owned());
            }
        }
        ack
    }

    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) % 1000;
        let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        format!("MSS{ms}{n:03}")
    }
}

/// The log of `m`, one entry per part (the store links each to its outbox message), answered `AA`, with
/// who sent it and the business acks its flags ask for.
fn received(m: &Message, outgoing: &Outgoing) -> Vec<NewExchange> {
    let (kind, event, _) = m.message_type();
    outgoing
        .parts
        .iter()
        .map(|part| NewExchange {
            link: Link::Message(0),
            direction: Direction::Received,
            kind: format!("{kind}^{event}"),
            control_id: m.control_id().into_owned(),
            answer: Answer {
                ack: AckCode::AA.as_str().to_owned(),
                ..Answer::default()
            },
            origin: Some(Requester {
                application: m.get("MSH", 3).text().into_owned(),
                facility: m.get("MSH", 4).text().into_owned(),
                processing: m.get("MSH", 11).text().into_owned(),
                charset: m.charset().msh18().to_owned(),
                delivery: part.request.receipts.dsn,
                reading: part.request.receipts.mdn,
            }),
        })
        .collect()
}

/// Where a refused compose field came from: `compose.recipients.to[i]` → the PRT of that recipient; the
/// documents → OBX 1; the patient → PID.
fn location_of(field: &str, part: &sending::Part) -> String {
    let field = field.strip_prefix("compose.").unwrap_or(field);
    if let Some(rest) = field.strip_prefix("recipients.to[")
        && let Some(i) = rest.split(']').next().and_then(|i| i.parse::<usize>().ok())
        && let Some(loc) = part.to_locations.get(i)
    {
        return loc.clone();
    }
    if field.starts_with("documents") {
        return "OBX^1^5".into();
    }
    if field.starts_with("patient") {
        return "PID^1^3".into();
    }
    if field.starts_with("reply_to") {
        return "PRT^1^15".into();
    }
    String::new()
}

/// Runs blocking work (composition) where the runtime lets other tasks go on.
fn off_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// MSH-7 of what the PFI writes: UTC, with its offset.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `YYYYMMDDHHMMSS+0000` of `t` (in UTC).
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl mllp::Handler for DpiListener {
    async fn handle(&self, bytes: Vec<u8>, peer: SocketAddr) -> Vec<u8> {
        let m = match Message::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "HL7: unreadable message refused");
                let code = if matches!(e, crate::Error::Charset(_)) {
                    103
                } else {
                    100
                };
                let loc = match &e {
                    crate::Error::Charset(_) => "MSH^1^18".to_owned(),
                    crate::Error::Parse { location, .. } => location.clone(),
                    _ => String::new(),
                };
                self.observe(Answered {
                    message_type: "unreadable",
                    ack: AckCode::AR.as_str(),
                    error_code: Some(code),
                });
                return reject_unreadable(
                    &Fault::new(code, loc, e.to_string()),
                    &self.next_id(),
                    &now(),
                )
                .to_bytes();
            }
        };
        let outcome = self.accept(&m).await;
        let (kind, event, _) = m.message_type();
        let message_type = format!("{kind}^{event}");
        match &outcome {
            Outcome::Queued { ids, again } => {
                tracing::info!(
                    %peer, control_id = %m.control_id(), r#type = %message_type,
                    outbox = ?ids, again, "HL7: queued"
                );
                self.observe(Answered {
                    message_type: &message_type,
                    ack: AckCode::AA.as_str(),
                    error_code: None,
                });
            }
            Outcome::Refused(r) => {
                tracing::info!(
                    %peer, control_id = %m.control_id(), r#type = %message_type,
                    ack = r.code.as_str(), code = r.fault.code, location = %r.fault.location,
                    "HL7: refused"
                );
                self.observe(Answered {
                    message_type: &message_type,
                    ack: r.code.as_str(),
                    error_code: Some(r.fault.code),
                });
            }
        }
        self.acknowledgement(&m, &outcome).to_bytes()
    }
}

/// Serves the DPI on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dpi: Arc<DpiListener>,
    idle_timeout: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let options = mllp::ServerOptions {
        idle_timeout,
        ..mllp::ServerOptions::default()
    };
    mllp::serve(listener, dpi, options, stop).await;
}
