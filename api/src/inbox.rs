//! The inbox over HTTP (docs/mssante.md R2–R4): received messages listed by cursor, one shown with its
//! verified documents, its bytes and each document served apart, and the consumer's outcome recorded, which
//! queues the MDN in the outbox. A client limited to some senders sees the inboxes of those mailboxes only;
//! another message is as absent as one that never was (404).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mss_outbox::inbox::ack::{Ack, AckReport, Answer, Answering, acknowledge};
use mss_outbox::inbox::{InboxEntry, InboxOutcome, InboxQuery, InboxStatus};
use mss_types::MailAddress;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::access::{AuditNote, Caller};
use crate::body::Limited;
use crate::params::Params;
use crate::problem::Problem;

/// Messages per page of `GET /v1/inbox`.
const PAGE: u64 = 100;

/// A page of the inbox, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// The messages.
    pub items: Vec<InboxEntry>,
    /// Give it as `cursor` for the next page; `null` on the last one. Stable: messages received later come
    /// after it, never before.
    pub next_cursor: Option<String>,
}

/// `POST /v1/inbox/{id}/ack`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// `integrated` or `error`.
    pub status: String,
    /// With `error`: HL7 ERR-3 code (0, 100–103, 198, 199, 200–203, 207) or 900–906.
    pub code: Option<u16>,
    /// With `error`: its label, on one line.
    pub label: Option<String>,
}

/// What an ack did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AckResponse {
    /// The inbox id.
    pub id: i64,
    /// The recorded status (the first outcome recorded stays).
    pub status: InboxStatus,
    /// The recorded outcome.
    pub outcome: Option<InboxOutcome>,
    /// Whether this request recorded it (`false`: recorded before; this one changed nothing).
    pub recorded: bool,
    /// The answer queued in the outbox (MDN, or the error mailbox's notice), if any.
    pub answer: Option<Answer>,
}

/// Notes for the audit who sent the message and the mailbox it arrived in (its id is noted already).
fn note_entry(note: &AuditNote, e: &InboxEntry) {
    if let Some(from) = e.from.as_deref().and_then(|f| MailAddress::parse(f).ok()) {
        note.sender(&from);
    }
    if let Ok(mailbox) = MailAddress::parse(&e.mailbox) {
        note.recipients([&mailbox]);
    }
}

/// The message `id` if the caller may see it, else 404.
async fn visible(
    state: &AppState,
    caller: &Caller,
    note: &AuditNote,
    id: &str,
) -> Result<(InboxEntry, Option<mss_message::ReceivedMessage>), Problem> {
    let id = crate::params::row_id(id, "an inbox id")?;
    note.message(id);
    let (entry, message) = mss_outbox::inbox::open(state.outbox()?.store.as_ref(), id)
        .await?
        .filter(|(e, _)| caller.may_see_mailbox(&e.mailbox))
        .ok_or_else(|| Problem::not_found(format!("no message {id} in the inbox")))?;
    note_entry(note, &entry);
    Ok((entry, message))
}

/// Received messages, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/inbox",
    tag = "inbox",
    params(
        ("status" = Option<String>, Query, description = "`new`, `integrated` or `error` (default: all)"),
        ("mailbox" = Option<String>, Query, description = "Of this receiving mailbox (BAL) only"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of messages", body = InboxPage),
        (status = 400, description = "A bad parameter (named)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The inbox is unavailable now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    RawQuery(raw): RawQuery,
) -> Result<Json<InboxPage>, Problem> {
    let params = Params::parse(raw.as_deref(), &["status", "mailbox", "cursor"])?;
    let status = params
        .get("status")
        .map(|s| InboxStatus::parse(s).map_err(Problem::from))
        .transpose()?;
    let after = match params.get("cursor") {
        None => 0,
        Some(c) => c.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
            Problem::invalid_param("cursor", "must be a `next_cursor` this route answered")
        })?,
    };
    let mailbox = params.get("mailbox").map(str::to_owned);
    let store = &state.outbox()?.store;
    let mut query = InboxQuery {
        status,
        mailbox,
        after,
        limit: PAGE,
    };
    let mut items = Vec::new();
    // a client limited to some mailboxes: others' messages are skipped, the cursor moves past them
    let next_cursor = 'pages: loop {
        let page = store.inbox_list(&query).await?;
        let full = page.len() as u64 == PAGE;
        for e in page {
            query.after = e.id;
            if caller.may_see_mailbox(&e.mailbox) {
                items.push(e);
                if items.len() as u64 == PAGE {
                    break 'pages Some(query.after.to_string());
                }
            }
        }
        if !full {
            break None;
        }
    };
    for e in &items {
        note.message(e.id);
        if let Ok(mailbox) = MailAddress::parse(&e.mailbox) {
            note.recipients([&mailbox]);
        }
    }
    Ok(Json(InboxPage { items, next_cursor }))
}

/// One received message: the inbox's fields, then its headers, bodies, attachments (without their bytes)
/// and `xdm` (`patient_id`, each document with `name`, `size`, `sha1`, `hash_ok`, `type_code`,
/// `format_code`, `title`, `unique_id`, `patient_id`…, and `problems`); `hl7`, when the PFI sent its
/// documents to the DPI, each exchange (`Exchange`: the MDM sent, its MSH-10, the DPI's answer and error
/// code), never their content.
#[utoipa::path(
    get,
    path = "/v1/inbox/{id}",
    tag = "inbox",
    params(("id" = i64, Path, description = "The inbox id")),
    responses(
        (status = 200, description = "The message (`InboxEntry` fields and the reader's view)", body = Object),
        (status = 400, description = "Not an inbox id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message (or not one this key may see)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The inbox is unavailable now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn message(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let (entry, message) = visible(&state, &caller, &note, &id).await?;
    let hl7 = state
        .outbox()?
        .store
        .exchanges(mss_outbox::exchanges::Link::Inbox(entry.id))
        .await?;
    Ok(Json(mss_outbox::inbox::shown(
        &entry,
        message.as_ref(),
        &hl7,
    )))
}

/// The message as received, byte for byte.
#[utoipa::path(
    get,
    path = "/v1/inbox/{id}/raw",
    tag = "inbox",
    params(("id" = i64, Path, description = "The inbox id")),
    responses(
        (status = 200, description = "The message", body = String, content_type = "message/rfc822"),
        (status = 400, description = "Not an inbox id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message (or not one this key may see)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The inbox is unavailable now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn raw(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let (entry, _) = visible(&state, &caller, &note, &id).await?;
    let raw = state
        .outbox()?
        .store
        .inbox_raw(entry.id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no message {} in the inbox", entry.id)))?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], raw).into_response())
}

/// The `n`-th document (from 0, in the order of `xdm.documents`) of the message's IHE_XDM archives.
#[utoipa::path(
    get,
    path = "/v1/inbox/{id}/documents/{n}",
    tag = "inbox",
    params(
        ("id" = i64, Path, description = "The inbox id"),
        ("n" = usize, Path, description = "The document's place in `xdm.documents`, from 0")
    ),
    responses(
        (status = 200, description = "The document's bytes, with its METADATA.XML `mimeType`", body = String),
        (status = 400, description = "Not an inbox id or a document's place", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message or document", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The inbox is unavailable now", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn document(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (entry, message) = visible(&state, &caller, &note, &id).await?;
    let n: usize = n.parse().map_err(|_| {
        Problem::invalid_param("n", format!("must be a document's place from 0, got `{n}`"))
    })?;
    let doc = message
        .as_ref()
        .and_then(|m| m.documents().nth(n))
        .ok_or_else(|| Problem::not_found(format!("no document {n} in message {}", entry.id)))?;
    let mime = match doc.entry.mime_type.as_str() {
        m if m.contains('/') && !m.contains(['\r', '\n']) => m.to_owned(),
        _ => "application/octet-stream".to_owned(),
    };
    let name = mss_types::text::safe_file_name(doc.name(), &format!("document-{n}"));
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        doc.content.clone(),
    )
        .into_response())
}

/// Records the consumer's outcome (final once recorded: a second ack answers the recorded one) and, if the
/// message asked for one, queues the MDN in the outbox, sent by the mailbox that received it
/// (docs/mssante.md R4).
#[utoipa::path(
    post,
    path = "/v1/inbox/{id}/ack",
    tag = "inbox",
    params(("id" = i64, Path, description = "The inbox id")),
    request_body = AckRequest,
    responses(
        (status = 200, description = "The recorded outcome and the answer queued", body = AckResponse),
        (status = 400, description = "A bad field (named: `status`, `code`, `label`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message (or not one this key may see)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The inbox is unavailable now: nothing was recorded", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn ack(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    Path(id): Path<String>,
    Limited(body): Limited,
) -> Result<Json<AckResponse>, Problem> {
    let request: AckRequest =
        serde_json::from_slice(&body).map_err(|e| Problem::invalid_json("body", &e))?;
    let outcome = match (request.status.as_str(), request.code, &request.label) {
        ("integrated", None, None) => Ack::Integrated,
        ("integrated", _, _) => {
            return Err(Problem::invalid_param(
                "code",
                "an integrated message has no code nor label",
            ));
        }
        ("error", Some(code), Some(label)) => Ack::error(code, label)?,
        ("error", None, _) => return Err(Problem::invalid_param("code", "required with error")),
        ("error", _, None) => return Err(Problem::invalid_param("label", "required with error")),
        (other, _, _) => {
            return Err(Problem::invalid_param(
                "status",
                format!("expected integrated or error, got {other:?}"),
            ));
        }
    };
    let (entry, _) = visible(&state, &caller, &note, &id).await?;
    let outbox = state.outbox()?;
    let sender = outbox
        .senders
        .iter()
        .find(|s| s.address.as_str().eq_ignore_ascii_case(&entry.mailbox));
    let answering = Answering {
        // the MDN goes with the credentials the service holds for that mailbox
        auth_ref: sender.map_or_else(
            || format!("mailbox:{}", entry.mailbox),
            |s| format!("senders:{}", s.name),
        ),
        product_reference: outbox
            .compose
            .as_ref()
            .map_or_else(|| "mss".to_owned(), |c| c.product_reference.clone()),
        error_mailbox: sender.and_then(|s| s.error_mailbox.clone()),
        label: sender.and_then(|s| s.label.clone()),
    };
    let AckReport {
        entry,
        recorded,
        answer,
    } = acknowledge(outbox.store.as_ref(), entry.id, &outcome, &answering)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no message {id} in the inbox")))?;
    // the answer is queued in the outbox: the consoles see it now
    state.console.invalidate();
    if let Some(a) = answer {
        // the MDN is an outbox message: named apart from the inbox's ids
        note.message(format!("outbox:{}", a.message));
    }
    Ok(Json(AckResponse {
        id: entry.id,
        status: entry.status,
        outcome: entry.outcome,
        recorded,
        answer,
    }))
}
