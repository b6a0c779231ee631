//! Batches through the durable outbox (`mss-outbox`): `POST /v1/batches` persists up to 10 000 messages in one
//! transaction and only then answers 202; the workers of `mss serve` deliver them with the credentials the
//! server holds for the sender (the request names them, it never carries a token); `GET /v1/batches/{id}` and
//! `GET /v1/messages/{id}` follow them per recipient, SMTP reply and receipts included.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use mss_annuaire::MailAddress;
use mss_message::{ComposeConfig, Trust};
use mss_outbox::prepare::{Content, Item, KeySource, Origin, Prepared};
use mss_outbox::{Accepted, BatchStatus, MAX_BATCH_ITEMS, MessageStatus, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::access::{AuditNote, Caller};
use crate::params::Params;
use crate::problem::{InvalidParam, Problem};

/// Default largest `POST /v1/batches` body: 64 MiB (about 1 000 items of a 50 KB CDA in base64; a larger
/// batch is sent as several requests with the same `batch_id`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// Most faulty items listed in one refusal.
const MAX_LISTED: usize = 50;

/// Batch page size: default and largest.
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

/// A mailbox whose credentials the server holds, under a name requests refer to.
#[derive(Debug, Clone)]
pub struct BatchSender {
    /// The name a request gives in `auth`.
    pub name: String,
    /// The mailbox (BAL) those credentials authenticate.
    pub address: MailAddress,
    /// Where errors of messages received in it go when they asked for no MDN (docs/mssante.md R4).
    pub error_mailbox: Option<MailAddress>,
    /// Its label, the `From:` display name of the answers it sends (`[[senders]] label`).
    pub label: Option<String>,
    /// The files its credentials are read from (what the console tells to renew when it is paused).
    pub credential_files: Vec<std::path::PathBuf>,
    /// Its submission front, when configured (`HOST:PORT`).
    pub submission: Option<String>,
    /// Its IMAP front, when configured.
    pub imap: Option<String>,
    /// Whether it receives (its messages are kept in the inbox).
    pub receives: bool,
    /// Whether it sends on a hospital DPI's behalf (`[hl7] sender`): its business acks to the DPI are
    /// counted, at zero when there are none.
    pub dpi: bool,
}

/// What the batch routes need; set with [`AppState::set_outbox`]. Without it they answer 503.
#[derive(Clone)]
pub struct OutboxConfig {
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// Senders whose credentials the server holds.
    pub senders: Vec<BatchSender>,
    /// Composition of `compose` items (product reference); none: such items are refused (503).
    pub compose: Option<ComposeConfig>,
    /// The espace de confiance every item must stay in (docs/mssante.md M8), shared with the composition's.
    pub trust: Trust,
    /// Largest request body; a larger one gets 413.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for OutboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxConfig")
            .field("senders", &self.senders)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/batches`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The sending mailbox (BAL); every item is sent from it.
    pub sender: String,
    /// The name of the sender's credentials configured on the server (`[[senders]] name`), never a token.
    pub auth: String,
    /// The batch to add the items to (1–64 of `A-Z a-z 0-9 . _ : -`); several requests may fill one batch.
    /// Default: derived from the sender and the items' keys, so that the same request sent again names the
    /// same batch.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// 1 to 10 000 items.
    #[schema(value_type = Vec<BatchItem>)]
    pub items: Vec<serde_json::Value>,
}

/// One item: exactly one of `compose` and `message`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// The caller's key (1–256 characters): an item whose key this sender already used is not stored
    /// again (a resent request, a resumed batch). Default: a hash of the item's position and content.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The caller's name for it, shown in statuses (default: the key, else `#<index>`).
    #[serde(default)]
    pub label: Option<String>,
    /// A compose request, the same JSON as `POST /v1/messages/compose`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub compose: Option<serde_json::Value>,
    /// A ready message (RFC 5322, with a Message-ID), base64; sent to its To, Cc and Bcc (Bcc removed).
    #[serde(default)]
    pub message: Option<String>,
    /// Ask the operator for delivery status notifications (DSN), which move the recipients to
    /// `delivered`. A compose request asks in its own `receipts.dsn`.
    #[serde(default)]
    pub dsn: bool,
}

/// The answer of `POST /v1/batches`: every item is in the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// The batch (`GET /v1/batches/{id}`).
    pub batch_id: String,
    /// Items stored now.
    pub accepted: usize,
    /// Items whose key was already stored: nothing added.
    pub duplicates: usize,
    /// Per item, in request order.
    pub items: Vec<AcceptedItem>,
}

/// One accepted item.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedItem {
    /// Position in the request.
    pub index: usize,
    /// The message (`GET /v1/messages/{id}`).
    pub id: i64,
    /// Its Message-ID, with angle brackets: stable across retries, so a duplicate is recognisable.
    pub message_id: String,
    /// The key, as given or derived.
    pub idempotency_key: String,
    /// The key was already stored (by this request or an earlier one): `id` is the first item's.
    pub duplicate: bool,
}

/// Submit a batch of messages to the durable outbox.
#[utoipa::path(
    post,
    path = "/v1/batches",
    tag = "batches",
    request_body(content = BatchRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Every item is persisted; the server's workers deliver them", body = BatchAccepted,
         headers(("Location" = String, description = "`/v1/batches/{batch_id}`"))),
        (status = 400, description = "Malformed request or items; `invalid-params` names each (`items[3].compose.recipients`); nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the server's limit; split the batch (same `batch_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than 10 000 items, unknown credentials, or an MSSanté rule refuses items (named); nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The outbox cannot persist now (database down, disk full) or is not configured; nothing was stored: retry after `Retry-After`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let accepted = create_inner(&state, &caller, &note, &headers, body).await?;
    let mut r = (StatusCode::ACCEPTED, Json(&accepted)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/batches/{}", accepted.batch_id)) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// A batch's progress: counts per state over all its recipients, and a page of its messages.
#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    tag = "batches",
    params(
        ("id" = String, Path, description = "The batch id answered by `POST /v1/batches`"),
        ("offset" = Option<u64>, Query, description = "First message of the page, in acceptance order (default 0)"),
        ("limit" = Option<u64>, Query, description = "Messages per page, 0 to 1000 (default 100; 0: counts only)")
    ),
    responses(
        (status = 200, description = "Counts and the page", body = BatchStatus),
        (status = 400, description = "A bad parameter (named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such batch", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The outbox is unavailable now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn batch(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BatchStatus>, Problem> {
    note.batch(&id);
    let params = Params::parse(raw.as_deref(), &["offset", "limit"])?;
    let number = |name: &str, default: u64, max: u64| -> Result<u64, Problem> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
                Problem::invalid_param(
                    name,
                    format!("must be a whole number from 0 to {max}, got `{v}`"),
                )
            }),
        }
    };
    let offset = number("offset", 0, i64::MAX as u64)?;
    let limit = number("limit", DEFAULT_PAGE, MAX_PAGE)?;
    let outbox = state.outbox()?;
    let status = outbox
        .store
        .batch(&id, offset, limit)
        .await?
        // another client's batch is as absent as one that never was
        .filter(|b| b.owner.as_deref() == caller.name())
        .ok_or_else(|| Problem::not_found(format!("no batch {id:?}")))?;
    for m in &status.items {
        note.message(m.id);
        note.recipients(m.recipients.iter().map(|r| &r.address));
    }
    Ok(Json(status))
}

/// One message's delivery, per recipient: queued, sending, sent (with the server's reply), deferred (retry
/// time and reason), failed (reason), then delivered / read / failed when a receipt came back. A message a
/// hospital's DPI sent over HL7 also lists its exchanges (`hl7`): the DPI's message and mss's answer, each
/// business ack (ZAM) sent back and the DPI's answer.
#[utoipa::path(
    get,
    path = "/v1/messages/{id}",
    tag = "batches",
    params(("id" = i64, Path, description = "The message id answered by `POST /v1/batches`")),
    responses(
        (status = 200, description = "The message and its recipients", body = MessageView),
        (status = 400, description = "Not a message id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The outbox is unavailable now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn message(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, Problem> {
    let key = crate::params::row_id(&id, "a message id")?;
    note.message(key);
    let status = state
        .outbox()?
        .store
        .message(key)
        .await?
        .filter(|m| m.owner.as_deref() == caller.name())
        .ok_or_else(|| Problem::not_found(format!("no message {key}")))?;
    let hl7 = state
        .outbox()?
        .store
        .exchanges(mss_outbox::exchanges::Link::Message(key))
        .await?;
    if let Some(batch) = &status.batch {
        note.batch(batch);
    }
    note.sender(&status.sender);
    note.recipients(status.recipients.iter().map(|r| &r.address));
    Ok(Json(MessageView { status, hl7 }))
}

/// One message as `GET /v1/messages/{id}` answers it: its status, and its HL7 exchanges with the DPI
/// when a hospital's DPI sent it (docs/mssante.md H1).
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// The message and its recipients.
    #[serde(flatten)]
    pub status: MessageStatus,
    /// The DPI's message that asked for it and mss's answer, each business ack (ZAM) sent back and the
    /// DPI's answer; absent for other messages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hl7: Vec<mss_outbox::exchanges::Exchange>,
}

impl AppState {
    pub(crate) fn outbox(&self) -> Result<&OutboxConfig, Problem> {
        self.outbox
            .get()
            .ok_or_else(|| Problem::not_configured("the outbox is not configured on this service"))
    }
}

async fn create_inner(
    state: &AppState,
    caller: &Caller,
    note: &AuditNote,
    headers: &HeaderMap,
    body: Body,
) -> Result<BatchAccepted, Problem> {
    let outbox = state.outbox()?.clone();
    let bytes = crate::body::read(
        headers,
        body,
        outbox.max_body_bytes,
        "; send the batch as several requests with the same batch_id",
    )
    .await?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    let request: BatchRequest = serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        // not JSON at all: the body is at fault, not the field the parser was in
        let broken = e.inner().is_syntax() || e.inner().is_eof();
        let name = if path == "." || broken {
            "body".to_owned()
        } else {
            path
        };
        Problem::invalid_json(&name, &e.into_inner())
    })?;
    json.end()
        .map_err(|e| Problem::invalid_param("body", format!("after the JSON object: {e}")))?;
    drop(bytes);
    let sender = MailAddress::parse(&request.sender)
        .map_err(|e| Problem::invalid_param("sender", e.to_string()))?;
    note.sender(&sender);
    caller.check_sender(&sender)?;
    let Some(credentials) = outbox.senders.iter().find(|s| s.name == request.auth) else {
        return Err(Problem::unprocessable(
            "auth",
            format!(
                "no credentials named {:?} are configured on this server (`[[senders]]`)",
                request.auth
            ),
        ));
    };
    if credentials.address != sender {
        return Err(Problem::unprocessable(
            "auth",
            format!(
                "the credentials {:?} are those of {}, not of the sender {sender}",
                credentials.name, credentials.address
            ),
        ));
    }
    if request.items.is_empty() {
        return Err(Problem::invalid_param("items", "no items"));
    }
    if request.items.len() > MAX_BATCH_ITEMS {
        return Err(Problem::unprocessable(
            "items",
            format!(
                "{} items; at most {MAX_BATCH_ITEMS} per request",
                request.items.len()
            ),
        ));
    }
    if let Some(id) = &request.batch_id
        && !valid_batch_id(id)
    {
        return Err(Problem::invalid_param(
            "batch_id",
            "must be 1 to 64 characters among A-Z a-z 0-9 . _ : -",
        ));
    }
    let auth_ref = format!("senders:{}", credentials.name);
    let compose = outbox.compose.clone();
    let trust = outbox.trust.clone();
    let items = request.items;
    // what a client creates is its own: another client neither sees it nor adds to it
    let owner = caller.name().map(str::to_owned);
    let owner_of_items = owner.clone();
    // composing thousands of XDM messages is CPU work: off the async threads
    let prepared = tokio::task::spawn_blocking(move || {
        let owner = owner_of_items.as_deref();
        let mut ok = Vec::with_capacity(items.len());
        let mut refused = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match prepare(
                index,
                item,
                &sender,
                &auth_ref,
                compose.as_ref(),
                &trust,
                owner,
            ) {
                Ok(p) => ok.push(p),
                Err(e) => refused.push(e),
            }
        }
        (ok, refused)
    })
    .await
    .map_err(|e| Problem::internal(&e))?;
    let (prepared, refused) = prepared;
    if !refused.is_empty() {
        return Err(refusal(&refused, prepared.len() + refused.len()));
    }
    let batch_id = request.batch_id.unwrap_or_else(|| {
        mss_outbox::prepare::request_batch_id(
            &request.sender,
            owner.as_deref(),
            prepared.iter().map(|p| p.message.idempotency_key.as_str()),
        )
    });
    note.batch(&batch_id);
    note.recipients(prepared.iter().flat_map(|p| &p.message.recipients));
    let keys: Vec<(String, String)> = prepared
        .iter()
        .map(|p| (p.key.clone(), p.message.message_id.clone()))
        .collect();
    let accepted = outbox
        .store
        .enqueue(
            Some(&batch_id),
            owner.as_deref(),
            prepared.into_iter().map(|p| p.message).collect(),
        )
        .await?;
    let mut items = Vec::with_capacity(accepted.len());
    let mut duplicates = 0;
    for (index, (a, (key, message_id))) in accepted.into_iter().zip(keys).enumerate() {
        let (id, message_id, duplicate) = match a {
            Accepted::New(id) => (id, message_id, false),
            Accepted::Existing(id) => {
                duplicates += 1;
                // the first item's Message-ID (a composed item got a new one this time)
                let first = outbox
                    .store
                    .message(id)
                    .await?
                    .map_or(message_id, |m| m.message_id);
                (id, first, true)
            }
        };
        note.message(id);
        items.push(AcceptedItem {
            index,
            id,
            message_id,
            idempotency_key: key,
            duplicate,
        });
    }
    tracing::info!(
        batch = %batch_id,
        accepted = items.len() - duplicates,
        duplicates,
        "batch accepted"
    );
    Ok(BatchAccepted {
        batch_id,
        accepted: items.len() - duplicates,
        duplicates,
        items,
    })
}

fn valid_batch_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Why an item is refused: the field (`items[3].compose.recipients`), the reason, and whether an MSSanté rule
/// (422) rather than the request's shape (400) refused it.
#[derive(Debug)]
struct ItemError {
    name: String,
    reason: String,
    rule: bool,
    unavailable: bool,
}

impl ItemError {
    fn shape(index: usize, field: &str, reason: impl Into<String>) -> Self {
        ItemError {
            name: item_field(index, field),
            reason: reason.into(),
            rule: false,
            unavailable: false,
        }
    }

    /// The outbox's refusal of item `index`, answered as the outbox's errors always are
    /// (`Problem::from`): 400 for its shape, 422 for an MSSanté rule, 503 when this service cannot compose.
    fn from_outbox(index: usize, e: mss_outbox::Error) -> Self {
        let field = match &e {
            mss_outbox::Error::Invalid { field, .. }
            | mss_outbox::Error::Refused { field, .. }
            | mss_outbox::Error::Unconfigured { field, .. } => field.clone(),
            _ => String::new(),
        };
        let problem = Problem::from(e);
        ItemError {
            name: item_field(index, &field),
            reason: problem
                .invalid_params
                .first()
                .map_or_else(|| problem.detail.clone(), |p| p.reason.clone()),
            rule: problem.status == StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
            unavailable: problem.status == StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        }
    }
}

fn item_field(index: usize, field: &str) -> String {
    if field.is_empty() {
        format!("items[{index}]")
    } else {
        format!("items[{index}].{field}")
    }
}

fn refusal(refused: &[ItemError], total: usize) -> Problem {
    if let Some(e) = refused.iter().find(|e| e.unavailable) {
        return Problem::not_configured(e.reason.clone());
    }
    let status = if refused.iter().all(|e| e.rule) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    };
    let first = &refused[0];
    let mut p = Problem::new(
        status,
        format!(
            "{} of {total} items refused, nothing was stored; first: {}: {}",
            refused.len(),
            first.name,
            first.reason
        ),
    );
    p.invalid_params = refused
        .iter()
        .take(MAX_LISTED)
        .map(|e| InvalidParam {
            name: e.name.clone(),
            reason: e.reason.clone(),
        })
        .collect();
    p
}

/// An item of the request, prepared by the outbox ([`mss_outbox::prepare`]); a refusal names the item and
/// its field.
fn prepare(
    index: usize,
    item: serde_json::Value,
    sender: &MailAddress,
    auth_ref: &str,
    compose: Option<&ComposeConfig>,
    trust: &Trust,
    owner: Option<&str>,
) -> Result<Prepared, ItemError> {
    // the default key hashes the item as sent (with its position: two equal letters are two messages)
    let canonical = item.to_string();
    let item: BatchItem = serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        ItemError::shape(
            index,
            if path == "." { "" } else { &path },
            e.into_inner().to_string(),
        )
    })?;
    let content = match (item.compose, item.message) {
        (Some(request), None) => Content::Compose(request),
        (None, Some(b64)) => {
            let cleaned: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            Content::Message(
                base64::engine::general_purpose::STANDARD
                    .decode(&cleaned)
                    .map_err(|e| ItemError::shape(index, "message", format!("not base64: {e}")))?,
            )
        }
        (Some(_), Some(_)) => {
            return Err(ItemError::shape(
                index,
                "",
                "give either `compose` or `message`, not both",
            ));
        }
        (None, None) => {
            return Err(ItemError::shape(
                index,
                "",
                "needs `compose` (a compose request) or `message` (a ready message, base64)",
            ));
        }
    };
    let key = match &item.idempotency_key {
        Some(k) => KeySource::Given(k.clone()),
        None => KeySource::Position {
            index,
            item: canonical,
        },
    };
    let item = Item {
        label: item
            .label
            .or_else(|| item.idempotency_key.clone())
            .unwrap_or_else(|| format!("#{index}")),
        key,
        content,
        dsn: item.dsn,
    };
    let origin = Origin {
        sender,
        auth_ref,
        compose,
        trust,
        owner,
    };
    mss_outbox::prepare::prepare(&item, &origin).map_err(|e| ItemError::from_outbox(index, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trust() -> Trust {
        mss_testing::trust(mss_testing::TEST_DOMAINS)
    }

    fn sender() -> MailAddress {
        MailAddress::parse("labo@sante.test").expect("address")
    }

    fn eml(to: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "From: labo@sante.test\r\nTo: {to}\r\nBcc: hidden@sante.test\r\nMessage-ID: <m1@sante.test>\r\n\r\nhi\r\n"
        ))
    }

    #[test]
    fn a_ready_message_goes_to_its_header_recipients_without_bcc() {
        let item = serde_json::json!({ "message": eml("bob@sante.test"), "idempotency_key": "k1" });
        let p =
            prepare(0, item, &sender(), "senders:labo", None, &trust(), None).expect("prepared");
        assert_eq!(p.key, "k1");
        assert_eq!(p.message.idempotency_key, "labo@sante.test/k1");
        assert_eq!(p.message.label, "k1");
        assert_eq!(p.message.message_id, "<m1@sante.test>");
        let recipients: Vec<&str> = p.message.recipients.iter().map(|r| r.as_str()).collect();
        assert_eq!(recipients, vec!["bob@sante.test", "hidden@sante.test"]);
        assert!(!String::from_utf8_lossy(&p.message.content).contains("Bcc"));
    }

    #[test]
    fn refusals_name_the_item_and_the_field() {
        let cases = [
            (serde_json::json!({}), "items[2]"),
            (serde_json::json!({ "message": "%%%" }), "items[2].message"),
            (
                serde_json::json!({ "message": eml("b@sante.test"), "compose": {} }),
                "items[2]",
            ),
            (serde_json::json!({ "message": 3 }), "items[2].message"),
            (serde_json::json!({ "other": 1 }), "items[2].other"),
            (
                serde_json::json!({ "message": eml("b@sante.test"), "idempotency_key": "" }),
                "items[2].idempotency_key",
            ),
            (
                serde_json::json!({ "compose": { "sender": 1 } }),
                "items[2].compose.sender",
            ),
        ];
        let cfg = ComposeConfig::new("NIL");
        for (item, name) in cases {
            let e = prepare(
                2,
                item.clone(),
                &sender(),
                "senders:labo",
                Some(&cfg),
                &trust(),
                None,
            )
            .err()
            .unwrap_or_else(|| panic!("{item} accepted"));
            assert_eq!(e.name, name, "{item}: {e:?}");
            assert!(!e.rule);
        }
    }

    #[test]
    fn default_keys_differ_by_position_and_content() {
        let item = serde_json::json!({ "message": eml("bob@sante.test") });
        let a = prepare(0, item.clone(), &sender(), "r", None, &trust(), None)
            .expect("a")
            .key;
        let b = prepare(1, item.clone(), &sender(), "r", None, &trust(), None)
            .expect("b")
            .key;
        let again = prepare(0, item, &sender(), "r", None, &trust(), None)
            .expect("again")
            .key;
        assert_ne!(a, b);
        assert_eq!(a, again);
        assert!(a.starts_with("sha256:") && a.len() == 71, "{a}");
    }

    #[test]
    fn batch_ids_are_checked() {
        assert!(valid_batch_id("lot-2026.11:a_b"));
        assert!(!valid_batch_id(""));
        assert!(!valid_batch_id("a/b"));
        assert!(!valid_batch_id(&"a".repeat(65)));
    }

    proptest! {
        #[test]
        fn any_item_is_prepared_or_refused_with_its_index(text in "\\PC{0,120}", index in 0usize..20_000) {
            let item = serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or(serde_json::Value::String(text));
            if let Err(e) = prepare(index, item, &sender(), "r", None, &trust(), None) {
                let prefix = format!("items[{index}]");
                prop_assert!(e.name.starts_with(&prefix));
            }
        }

        #[test]
        fn any_base64_message_is_prepared_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let item = serde_json::json!({ "message": base64::engine::general_purpose::STANDARD.encode(&bytes) });
            if let Err(e) = prepare(0, item, &sender(), "r", None, &trust(), None) {
                prop_assert!(e.name.starts_with("items[0]"));
            }
        }
    }
}
