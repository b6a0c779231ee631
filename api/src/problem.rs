//! Errors as `application/problem+json` (RFC 9457): every 4xx and 5xx the service answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem. `type` is `about:blank` (the title is the HTTP status phrase); `detail` says what went
/// wrong, and `invalid-params` names each faulty parameter and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// HTTP status phrase.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// The faulty parameters, when the request was at fault.
    #[serde(rename = "invalid-params", skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
}

/// One faulty parameter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvalidParam {
    /// Parameter name, as sent.
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

impl Problem {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            invalid_params: Vec::new(),
        }
    }

    /// 400 naming one parameter.
    pub fn invalid_param(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let mut p = Problem::new(StatusCode::BAD_REQUEST, format!("{name}: {reason}"));
        p.invalid_params.push(InvalidParam {
            name: name.to_string(),
            reason,
        });
        p
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    /// 500: logs the cause, tells the client nothing of the internals.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to answer; the cause is in its log",
        )
    }

    /// 503.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl From<mss_index::Error> for Problem {
    fn from(e: mss_index::Error) -> Self {
        match e {
            mss_index::Error::InvalidCursor(reason) => Problem::invalid_param("cursor", reason),
            mss_index::Error::InvalidParameter { param, reason } => {
                Problem::invalid_param(param, reason)
            }
            other => Problem::internal(&other),
        }
    }
}
