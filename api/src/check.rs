//! `POST /v1/messages/check`: the conformance checker (docs/mssante.md K1) over a message sent as
//! `message/rfc822`. The findings go back to the caller only: nothing of the message is logged, and
//! the audit trail records the action and the Message-ID, as for composition.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use mss_message::check::{CheckConfig, Severity, check_message};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::access::AuditNote;
use crate::body::{Limited, MAX_MESSAGE_BYTES};
use crate::problem::Problem;

/// The checker's verdict on one message.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    /// No finding is an error.
    pub conformant: bool,
    /// Findings of severity `error`.
    pub errors: usize,
    /// Findings of severity `warning`.
    pub warnings: usize,
    /// Every finding, in the order of the message.
    pub findings: Vec<CheckFinding>,
}

/// One finding (mss-message `check::Finding`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckFinding {
    /// Référentiel #2 number (`ECO.2.4.3`) where one is known, else an mss rule id (`mss.xdm.hash`).
    #[schema(example = "ECO.2.4.3")]
    pub rule: String,
    /// `error` (a requirement is broken) or `warning`.
    #[schema(example = "error")]
    pub severity: String,
    /// Where in the message: a header, an attachment by number, an archive entry, a MIME part.
    #[serde(rename = "where")]
    #[schema(example = "header X-MSS-NIL")]
    pub place: String,
    /// Why, without the message's health content.
    pub message: String,
}

/// Check a message against the MSSanté rules.
#[utoipa::path(
    post,
    path = "/v1/messages/check",
    tag = "messages",
    request_body(
        content = String,
        content_type = "message/rfc822",
        description = "The message to check, as it would be sent (RFC 5322), from any software"
    ),
    responses(
        (status = 200, description = "The findings; `conformant` is false when one is an error", body = CheckResponse),
        (status = 413, description = "The message is larger than 64 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `message/rfc822`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn check(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<AuditNote>,
    headers: HeaderMap,
    Limited(body): Limited<MAX_MESSAGE_BYTES>,
) -> Result<Json<CheckResponse>, Problem> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media.as_deref() != Some("message/rfc822") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body is a message: Content-Type: message/rfc822",
        ));
    }
    // The service's espace de confiance and patient limit, when composition is configured.
    let cfg = match state.sending.get() {
        Some(s) => CheckConfig {
            trust: s.compose.trust.clone(),
            patient_max_bytes: s.compose.patient_max_bytes,
        },
        None => CheckConfig::default(),
    };
    let (findings, message_id) = tokio::task::spawn_blocking(move || {
        let findings = check_message(&body, &cfg);
        let id = mss_message::header_fields(&body)
            .into_iter()
            .find(|[name, _]| name.eq_ignore_ascii_case("message-id"))
            .map(|[_, v]| v.trim().chars().take(255).collect::<String>());
        (findings, id)
    })
    .await
    .map_err(|e| Problem::internal(&e))?;
    if let Some(id) = message_id {
        note.message(id);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    Ok(Json(CheckResponse {
        conformant: errors == 0,
        errors,
        warnings: findings.len() - errors,
        findings: findings
            .into_iter()
            .map(|f| CheckFinding {
                rule: f.rule,
                severity: f.severity.to_string(),
                place: f.place,
                message: f.message,
            })
            .collect(),
    }))
}
