//! The ops console (`/console`: a plain page, its script and style, served without a key) and the routes
//! it reads and acts through, which need one: the whole outbox as an ops team sees it (`GET /v1/outbox`),
//! retrying recipients now (`POST /v1/messages/{id}/retry`), cancelling what still waits of a batch
//! (`POST /v1/batches/{id}/cancel`) and the directory's sources (`GET /v1/sources`). The inbox view uses
//! the inbox routes as they are.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::routing::get;
use axum::{Extension, Json, Router};
use mss_outbox::Counts;
use mss_outbox::overview::{
    BatchSummary, BusinessAckLoad, LastConnection, RateBucket, RecipientLine, SenderLoad,
    cancel_reason,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod cache;

pub(crate) use cache::OverviewCache;
use cache::{MAX_ROWS, RATE_BUCKET_MS, StoreOverview};

use crate::AppState;
use crate::access::{AuditNote, Caller};
use crate::body::Limited;
use crate::params::Params;
use crate::problem::Problem;

const PAGE_HTML: &str = include_str!("../static/console/index.html");
const PAGE_JS: &str = include_str!("../static/console/console.js");
const PAGE_CSS: &str = include_str!("../static/console/console.css");

/// Rows of each list the overview answers by default.
const DEFAULT_ROWS: u64 = 50;

/// The page and its two files: no key (the data routes need one), no build step, nothing from elsewhere.
pub fn routes() -> Router<Arc<AppState>> {
    let file = |body: &'static str, kind: &'static str| {
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CACHE_CONTROL, "no-cache"),
                    // the page talks to this service only, and is never framed by another
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'",
                    ),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::REFERRER_POLICY, "no-referrer"),
                ],
                body,
            )
        })
    };
    Router::new()
        .route("/console", file(PAGE_HTML, "text/html; charset=utf-8"))
        .route(
            "/console/console.js",
            file(PAGE_JS, "text/javascript; charset=utf-8"),
        )
        .route(
            "/console/console.css",
            file(PAGE_CSS, "text/css; charset=utf-8"),
        )
}

/// A sending mailbox as the console shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SenderView {
    /// The mailbox (BAL).
    pub sender: String,
    /// Its `[[senders]]` name, when the service holds its credentials.
    pub name: Option<String>,
    /// Its recipients by state (zero for a configured mailbox with none).
    pub counts: Counts,
    /// When the oldest message still waiting was accepted (ms since the epoch).
    pub oldest_pending_ms: Option<i64>,
    /// Why its workers stopped, and what to do about it; none when it sends.
    pub paused: Option<PauseView>,
    /// Whether it sends on a hospital DPI's behalf (`[hl7] sender`).
    pub dpi: bool,
    /// Its business acks to the DPI not done: still to go (the DPI down, or `AR`) or refused (`AE`).
    pub business_acks: Vec<BusinessAckLoad>,
}

/// A paused mailbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct PauseView {
    /// The reason the workers recorded (the server's refusal).
    pub reason: String,
    /// Since when (ms since the epoch).
    pub since_ms: i64,
    /// What the ops team does to resume it.
    pub action: String,
}

/// `GET /v1/outbox`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxView {
    /// The store's time (ms since the epoch): ages and retry times are against it.
    pub now_ms: i64,
    /// Sending mailboxes, paused ones first, then the configured ones in order, then any other.
    pub senders: Vec<SenderView>,
    /// Length of a rate interval (ms).
    pub rate_bucket_ms: i64,
    /// Recipients that reached a final state in the last hour, by sender and minute.
    pub rate: Vec<RateBucket>,
    /// The most recent batches and their progress, newest first.
    pub batches: Vec<BatchSummary>,
    /// Failed and deferred recipients, most recently changed first, with the server's reply.
    pub troubles: Vec<RecipientLine>,
    /// The latest changes of any recipient, newest first.
    pub latest: Vec<RecipientLine>,
}

/// `POST /v1/messages/{id}/retry`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// The recipients to retry (failed or deferred ones); none or empty: all of them.
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// What a retry or a cancellation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDone {
    /// The message or batch.
    pub id: String,
    /// Recipients requeued (retry) or cancelled (cancel).
    pub recipients: u64,
}

/// One directory source as the index recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// `extraction`, `ldap` or `fhir`.
    pub source: String,
    /// What its last complete run recorded with the index (time, server, counts); `null`: never run on
    /// this index.
    #[schema(value_type = Option<Object>)]
    pub last: Option<serde_json::Value>,
    /// The service's own runs of it (`fhir_sync_every`, `ldap_sync_every`): the last attempt and its
    /// outcome, the last failure, the next run; `null`: the service does not run this source itself.
    pub schedule: Option<crate::Schedule>,
}

/// A sending mailbox's operator endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// The mailbox.
    pub sender: String,
    /// Its `[[senders]]` name.
    pub name: String,
    /// Submission front (`HOST:PORT`; none: `[send]`'s, else DNS SRV).
    pub submission: Option<String>,
    /// IMAP front (none: derived from the submission host, else DNS SRV).
    pub imap: Option<String>,
    /// Whether its reader keeps received messages in the inbox.
    pub receives: bool,
    /// Whether its credentials worked at the last connection: `false` while it is paused.
    pub working: bool,
    /// Why not, when it is paused.
    pub reason: Option<String>,
    /// This service's last use of each endpoint (submission, IMAP): when, and whether it worked or what
    /// kind of failure stopped it; none used yet since the service started.
    pub last_connections: Vec<LastConnection>,
}

/// `GET /v1/sources`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourcesView {
    /// Entries in the served index (none while it loads).
    pub entries: Option<u64>,
    /// Its size on disk, bytes.
    pub size_bytes: Option<u64>,
    /// The directory's sources.
    pub sources: Vec<SourceView>,
    /// The operator endpoints of the sending mailboxes.
    pub endpoints: Vec<EndpointView>,
}

/// The names under which the directory's sources record their last run with the index.
pub(crate) const SOURCES: [&str; 3] = ["extraction", "ldap", "fhir"];

/// What an ops team does to resume a paused mailbox whose credential files are `files`.
fn what_to_do(name: Option<&str>, files: &[PathBuf]) -> String {
    match (name, files.first()) {
        (Some(_), Some(file)) => format!(
            "drop new credentials at {} (a fresh Pro Santé Connect token, or the renewed certificate): the \
             workers read the file within seconds and resume by themselves",
            file.display()
        ),
        (Some(name), None) => format!(
            "give [[senders]] `{name}` its credentials (token_file or certificate) and restart the service"
        ),
        (None, _) => {
            "this mailbox is not among this service's [[senders]]: the process that sends for it \
                      (another `mss serve` or `mss batch`) resumes it when it gets new credentials"
                .to_owned()
        }
    }
}

/// The whole outbox: counts per sending mailbox (paused first, with the reason and what to do), the last
/// hour's rate, recent batches, recipients in trouble and the latest changes. A client limited to some
/// senders sees theirs only.
#[utoipa::path(
    get,
    path = "/v1/outbox",
    tag = "batches",
    params(("rows" = Option<u64>, Query, description = "Rows of each list, 1 to 500 (default 50)")),
    responses(
        (status = 200, description = "The outbox as the console shows it", body = OutboxView),
        (status = 400, description = "A bad parameter (named)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The outbox is unavailable now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn outbox(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OutboxView>, Problem> {
    let params = Params::parse(raw.as_deref(), &["rows"])?;
    let rows = match params.get("rows") {
        None => DEFAULT_ROWS,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_ROWS).contains(n))
            .ok_or_else(|| {
                Problem::invalid_param("rows", format!("must be from 1 to {MAX_ROWS}, got `{v}`"))
            })?,
    };
    let config = state.outbox()?;
    // the store seen whole, shared by every caller for a second; cut below to what this one may see
    let whole = state.console.get(config.store.as_ref()).await?;
    let StoreOverview {
        now_ms,
        loads,
        paused,
        business_acks,
        ..
    } = whole.as_ref();
    let now_ms = *now_ms;
    let sees = |sender: &str| caller.may_see_mailbox(sender);
    let mut senders: Vec<SenderView> = Vec::new();
    let name_of = |address: &str| {
        config
            .senders
            .iter()
            .find(|s| s.address.as_str().eq_ignore_ascii_case(address))
    };
    let view = |address: &str, load: Option<&SenderLoad>| {
        let configured = name_of(address);
        SenderView {
            sender: address.to_owned(),
            name: configured.map(|s| s.name.clone()),
            counts: load.map(|l| l.counts).unwrap_or_default(),
            oldest_pending_ms: load.and_then(|l| l.oldest_pending_ms),
            dpi: configured.is_some_and(|s| s.dpi),
            business_acks: business_acks
                .iter()
                .filter(|b| b.sender.eq_ignore_ascii_case(address))
                .cloned()
                .collect(),
            paused: paused
                .iter()
                .find(|p| p.sender.eq_ignore_ascii_case(address))
                .map(|p| PauseView {
                    reason: p.reason.clone(),
                    since_ms: p.since_ms,
                    action: what_to_do(
                        configured.map(|s| s.name.as_str()),
                        configured.map_or(&[][..], |s| &s.credential_files),
                    ),
                }),
        }
    };
    for s in &config.senders {
        let load = loads
            .iter()
            .find(|l| l.sender.eq_ignore_ascii_case(s.address.as_str()));
        senders.push(view(s.address.as_str(), load));
    }
    for l in loads {
        if name_of(&l.sender).is_none() {
            senders.push(view(&l.sender, Some(l)));
        }
    }
    // mailboxes with nothing in the queue but business acks or a pause still have their line
    let others = business_acks.iter().map(|b| b.sender.as_str());
    for address in others.chain(paused.iter().map(|p| p.sender.as_str())) {
        if !senders
            .iter()
            .any(|s| s.sender.eq_ignore_ascii_case(address))
        {
            senders.push(view(address, None));
        }
    }
    senders.retain(|s| sees(&s.sender));
    // paused first; otherwise the order above stays (the sort is stable)
    senders.sort_by_key(|s| s.paused.is_none());
    let take = |lines: &[RecipientLine]| -> Vec<RecipientLine> {
        lines
            .iter()
            .filter(|l| sees(&l.sender))
            .take(usize::try_from(rows).unwrap_or(usize::MAX))
            .cloned()
            .collect()
    };
    let (troubles, latest) = (take(&whole.troubles), take(&whole.latest));
    for l in troubles.iter().chain(&latest) {
        note.message(l.message);
    }
    if let Ok(addresses) = troubles
        .iter()
        .chain(&latest)
        .map(|l| mss_types::MailAddress::parse(&l.address))
        .collect::<Result<Vec<_>, _>>()
    {
        note.recipients(&addresses);
    }
    Ok(Json(OutboxView {
        now_ms,
        senders,
        rate_bucket_ms: RATE_BUCKET_MS,
        rate: whole
            .rate
            .iter()
            .filter(|r| sees(&r.sender))
            .cloned()
            .collect(),
        batches: whole
            .batches
            .iter()
            .filter(|b| b.sender.as_deref().is_none_or(sees))
            .take(usize::try_from(rows).unwrap_or(usize::MAX))
            .cloned()
            .collect(),
        troubles,
        latest,
    }))
}

/// Puts a message's failed and deferred recipients (or the ones named) back in the queue, due now: the
/// workers send them again, with the same Message-ID, whoever created the batch.
#[utoipa::path(
    post,
    path = "/v1/messages/{id}/retry",
    tag = "batches",
    params(("id" = i64, Path, description = "The message id")),
    request_body(content = Option<RetryRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Recipients requeued", body = ActionDone),
        (status = 400, description = "A bad field (named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message (or not one this key may see)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "None of them is failed or deferred: nothing requeued", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The outbox is unavailable now: nothing requeued", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn retry(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path(id): Path<String>,
    Limited(body): Limited,
) -> Result<Json<ActionDone>, Problem> {
    let key = crate::params::row_id(&id, "a message id")?;
    note.message(key);
    let request: RetryRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RetryRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::invalid_json("body", &e))?
    };
    let mut named = Vec::with_capacity(request.recipients.len());
    for (i, r) in request.recipients.iter().enumerate() {
        named.push(mss_types::MailAddress::parse(r).map_err(|e| {
            Problem::invalid_param(&format!("recipients[{i}]"), format!("not an address: {e}"))
        })?);
    }
    let store = &state.outbox()?.store;
    let status = store
        .message(key)
        .await?
        .filter(|m| caller.may_see_mailbox(m.sender.as_str()))
        .ok_or_else(|| Problem::not_found(format!("no message {key}")))?;
    if let Some(batch) = &status.batch {
        note.batch(batch);
    }
    note.sender(&status.sender);
    note.recipients(if named.is_empty() {
        status
            .recipients
            .iter()
            .map(|r| &r.address)
            .collect::<Vec<_>>()
    } else {
        named.iter().collect()
    });
    let names: Vec<String> = named.iter().map(|a| a.as_str().to_owned()).collect();
    let n = store.retry_now(key, &names).await?;
    state.console.invalidate();
    if n == 0 {
        return Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "message {key} has no failed or deferred recipient{}: nothing requeued",
                if names.is_empty() {
                    ""
                } else {
                    " among those named"
                }
            ),
        ));
    }
    tracing::info!(
        message = key,
        recipients = n,
        by = caller.name().unwrap_or("-"),
        "recipients requeued by hand"
    );
    Ok(Json(ActionDone {
        id: key.to_string(),
        recipients: n,
    }))
}

/// Cancels what still waits of a batch (queued or deferred recipients: they become `cancelled`, with the
/// reason "cancelled by CLIENT"; not retried, counted apart from `failed`); a recipient being sent goes
/// on. Any client's batch.
#[utoipa::path(
    post,
    path = "/v1/batches/{id}/cancel",
    tag = "batches",
    params(("id" = String, Path, description = "The batch id")),
    responses(
        (status = 200, description = "Recipients cancelled (0: nothing waited)", body = ActionDone),
        (status = 404, description = "No such batch (or not one this key may see)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The outbox is unavailable now: nothing cancelled", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path(id): Path<String>,
) -> Result<Json<ActionDone>, Problem> {
    note.batch(&id);
    let store = &state.outbox()?.store;
    let absent = || Problem::not_found(format!("no batch {id:?}"));
    let batch = store.batch(&id, 0, 1).await?.ok_or_else(absent)?;
    if let Some(m) = batch.items.first() {
        if !caller.may_see_mailbox(m.sender.as_str()) {
            return Err(absent());
        }
        note.sender(&m.sender);
    }
    let by = caller.name().unwrap_or("the ops console");
    let n = store
        .cancel_queued(&id, &cancel_reason(by))
        .await?
        .ok_or_else(absent)?;
    state.console.invalidate();
    tracing::info!(batch = %id, recipients = n, by, "queued recipients cancelled by hand");
    Ok(Json(ActionDone { id, recipients: n }))
}

/// The directory's sources as the index recorded their last complete run, the index's size, and the
/// operator endpoints of the sending mailboxes with whether their credentials work.
#[utoipa::path(
    get,
    path = "/v1/sources",
    tag = "operations",
    responses(
        (status = 200, description = "Sources and endpoints", body = SourcesView),
        (status = 503, description = "The index cannot be read now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn sources(State(state): State<Arc<AppState>>) -> Result<Json<SourcesView>, Problem> {
    let index = state.index.get();
    let mut sources = Vec::new();
    for source in SOURCES {
        let last = match index {
            Some(i) => i
                .source_state(source)
                .map_err(|e| Problem::unavailable(format!("reading the index: {e}")))?,
            None => None,
        };
        sources.push(SourceView {
            source: source.to_owned(),
            last,
            schedule: state.runs.of(source),
        });
    }
    let mut endpoints = Vec::new();
    if let Some(outbox) = state.outbox.get() {
        let paused = outbox.store.paused().await?;
        for s in &outbox.senders {
            let reason = paused
                .iter()
                .find(|p| p.sender.eq_ignore_ascii_case(s.address.as_str()))
                .map(|p| p.reason.clone());
            endpoints.push(EndpointView {
                sender: s.address.to_string(),
                name: s.name.clone(),
                submission: s.submission.clone(),
                imap: s.imap.clone(),
                receives: s.receives,
                working: reason.is_none(),
                reason,
                last_connections: state.connections.of(s.address.as_str()),
            });
        }
    }
    Ok(Json(SourcesView {
        entries: index.map(|i| i.num_entries()),
        size_bytes: index.map(|i| i.size_on_disk()),
        sources,
        endpoints,
    }))
}

/// What `/metrics` reads from the store and the index at a scrape.
pub(crate) async fn snapshot(state: &AppState) -> mss_outbox::Result<crate::metrics::Snapshot> {
    let mut sources = Vec::new();
    for source in SOURCES {
        let last = state
            .index
            .get()
            .and_then(|i| i.source_state(source).ok().flatten())
            .as_ref()
            .and_then(crate::schedule::source_time);
        sources.push((source.to_owned(), last, state.runs.of(source)));
    }
    let Some(outbox) = state.outbox.get() else {
        return Ok(crate::metrics::Snapshot {
            sources,
            ..Default::default()
        });
    };
    let store = outbox.store.as_ref();
    // the loads the consoles share: a scrape while they poll costs no second reading
    let (whole, inbox) = tokio::try_join!(state.console.get(store), store.inbox_loads())?;
    Ok(crate::metrics::Snapshot {
        now_ms: whole.now_ms,
        senders: outbox
            .senders
            .iter()
            .map(|s| s.address.to_string())
            .collect(),
        receiving: outbox
            .senders
            .iter()
            .filter(|s| s.receives)
            .map(|s| s.address.to_string())
            .collect(),
        loads: whole.loads.clone(),
        dpi: outbox
            .senders
            .iter()
            .filter(|s| s.dpi)
            .map(|s| s.address.to_string())
            .collect(),
        business_acks: whole.business_acks.clone(),
        paused: whole.paused.iter().map(|p| p.sender.clone()).collect(),
        inbox,
        sources,
    })
}
