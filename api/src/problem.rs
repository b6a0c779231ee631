//! Errors as `application/problem+json` (RFC 9457): every 4xx and 5xx the service answers, with the headers
//! that go with them. Each library error reaches HTTP through exactly one `From` here; a transient failure
//! (retrying later may succeed) is always 503 with `Retry-After`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client is told to wait (`Retry-After`) after a transient failure.
pub const RETRY_AFTER_SECS: u32 = 10;

/// An RFC 9457 problem. `type` is `about:blank` (the title is the HTTP status phrase); `detail` says what went
/// wrong, and `invalid-params` names each faulty parameter and why.
// The error type of every handler: it carries the `Retry-After` and `WWW-Authenticate` of its answer.
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
    // never a secret nor health content
    pub detail: String,
    /// The faulty parameters, when the request was at fault.
    #[serde(rename = "invalid-params", skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
    /// `Retry-After` in seconds: set on every transient failure.
    #[serde(skip)]
    retry_after: Option<u32>,
    /// `WWW-Authenticate` of a 401.
    #[serde(skip)]
    challenge: Option<&'static str>,
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
            retry_after: None,
            challenge: None,
        }
    }

    /// `status` naming one parameter.
    fn param(status: StatusCode, name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let mut p = Problem::new(status, format!("{name}: {reason}"));
        p.invalid_params.push(InvalidParam {
            name: name.to_string(),
            reason,
        });
        p
    }

    /// 400 naming one parameter: the request's shape is at fault.
    pub fn invalid_param(name: &str, reason: impl Into<String>) -> Self {
        Problem::param(StatusCode::BAD_REQUEST, name, reason)
    }

    /// 400 naming the JSON at fault, without the value the parser quotes (it may be a token or health
    /// content): `invalid type: string, expected struct Body at line 1 column 9`.
    pub fn invalid_json(name: &str, e: &serde_json::Error) -> Self {
        Problem::invalid_param(name, without_values(&e.to_string()))
    }

    /// 422 naming one parameter: well-formed, but a rule refuses it.
    pub fn unprocessable(name: &str, reason: impl Into<String>) -> Self {
        Problem::param(StatusCode::UNPROCESSABLE_ENTITY, name, reason)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    /// 401 with its `WWW-Authenticate` challenge.
    pub fn unauthorized(detail: impl Into<String>, challenge: &'static str) -> Self {
        let mut p = Problem::new(StatusCode::UNAUTHORIZED, detail);
        p.challenge = Some(challenge);
        p
    }

    /// 403: the key is valid but does not allow this (a scope, a sender, an origin).
    pub fn insufficient_scope(detail: impl std::fmt::Display) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            format!("insufficient_scope: {detail}"),
        )
    }

    /// 413: the body is over the route's limit (the rest of it is not read).
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// 429 with `Retry-After`: this source must slow down.
    pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u32) -> Self {
        let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, detail);
        p.retry_after = Some(retry_after_secs);
        p
    }

    /// 500: logs the cause, tells the client nothing of the internals.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to answer; the cause is in its log",
        )
    }

    /// 503 with `Retry-After`: a transient failure, retrying later may succeed.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail);
        p.retry_after = Some(RETRY_AFTER_SECS);
        p
    }

    /// 503 without `Retry-After`: this service is not set up for the request; retrying will not help.
    pub fn not_configured(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// The seconds of `Retry-After`, if the failure is transient.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        // the audit trail gives the reason of a refusal
        response
            .extensions_mut()
            .insert(ProblemDetail(self.detail.clone()));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// The detail of the problem a response carries, for the audit trail.
#[derive(Debug, Clone)]
pub(crate) struct ProblemDetail(pub(crate) String);

/// A serde message without the value it quotes: `invalid type: string "…"` becomes `invalid type: string`,
/// `unknown variant `…`` becomes `unknown variant`.
fn without_values(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        let Some(at) = message.find(marker) else {
            continue;
        };
        let start = at + marker.len();
        let rest = &message[start..];
        // the kind of value (`string`, `integer`...), then its quoted value if any
        let Some(quote) = rest.find([' ', ',']) else {
            continue;
        };
        let value = &rest[quote..];
        let end = if let Some(debug) = value.strip_prefix(" \"") {
            // a string, Debug-escaped: up to the first unescaped quote
            let mut escaped = false;
            debug
                .char_indices()
                .find(|&(_, c)| {
                    let closing = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closing
                })
                .map(|(i, _)| 2 + i + 1)
        } else if value.starts_with(" `") {
            value.find("`, expected").map(|i| i + 1)
        } else {
            Some(0)
        };
        let Some(end) = end else { continue };
        return format!("{}{}{}", &message[..start], &rest[..quote], &value[end..]);
    }
    if let Some(at) = message.find("unknown variant `") {
        let rest = &message[at + "unknown variant `".len()..];
        if let Some(end) = rest.find("`, ") {
            return format!("{}unknown variant{}", &message[..at], &rest[end + 1..]);
        }
    }
    message.to_owned()
}

impl From<mss_index::Error> for Problem {
    fn from(e: mss_index::Error) -> Self {
        use mss_index::Error as E;
        match e {
            E::InvalidCursor(reason) => Problem::invalid_param("cursor", reason),
            E::InvalidParameter { param, reason } => Problem::invalid_param(param, reason),
            E::Busy { .. } => {
                Problem::unavailable("the directory index is being written; retry in a moment")
            }
            E::Annuaire(e) => e.into(),
            other => Problem::internal(&other),
        }
    }
}

/// The HTTP face of a store error: unavailable -> 503 (nothing was stored: retry), else 400 or 500.
impl From<mss_outbox::Error> for Problem {
    fn from(e: mss_outbox::Error) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "outbox unavailable: answering 503");
            return Problem::unavailable(format!(
                "the outbox cannot persist now ({e}); nothing was stored: retry later"
            ));
        }
        match e {
            mss_outbox::Error::Invalid { field, reason } => Problem::invalid_param(&field, reason),
            mss_outbox::Error::Refused { field, reason } => Problem::unprocessable(&field, reason),
            mss_outbox::Error::Unconfigured { reason, .. } => Problem::not_configured(reason),
            mss_outbox::Error::BatchOwner { batch } => Problem::param(
                StatusCode::CONFLICT,
                "batch_id",
                format!("{batch:?} is used by another client; choose another batch_id"),
            ),
            other => Problem::internal(&other),
        }
    }
}

/// A compose refusal names the request field: 400 for its shape, 422 for an MSSanté rule.
impl From<mss_message::Error> for Problem {
    fn from(e: mss_message::Error) -> Self {
        match e {
            mss_message::Error::Invalid { field, reason } => Problem::invalid_param(&field, reason),
            mss_message::Error::Refused { field, reason } => Problem::unprocessable(&field, reason),
            other => Problem::internal(&other),
        }
    }
}

/// The HTTP face of a sending error; its text names servers and users, never credentials.
impl From<mss_lps::Error> for Problem {
    fn from(e: mss_lps::Error) -> Self {
        use mss_lps::Error as E;
        if e.needs_credentials() {
            return Problem::unauthorized(e.to_string(), "Bearer error=\"invalid_token\"");
        }
        let problem = match e {
            E::Config { .. } => return Problem::internal(&e),
            E::InvalidMessage { .. } => Problem::new(StatusCode::BAD_REQUEST, e.to_string()),
            E::RecipientsRefused { .. } | E::MessageTooLarge { .. } | E::Smtp { .. }
                if e.is_permanent() =>
            {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            _ if e.is_transient() => Problem::unavailable(e.to_string()),
            _ => Problem::new(StatusCode::BAD_GATEWAY, e.to_string()),
        };
        tracing::info!(error = %e, status = problem.status, "sending failed");
        problem
    }
}

/// The directory crate: a bad value names its field (400); the LDAP directory or the FHIR API failing is 503
/// when it may pass (network, timeout, busy, HTTP 429 or 5xx), else 502; bad settings are the server's (500).
impl From<mss_annuaire::Error> for Problem {
    fn from(e: mss_annuaire::Error) -> Self {
        use mss_annuaire::Error as E;
        if e.is_transient() {
            return Problem::unavailable(format!("{e}; retry later"));
        }
        match e {
            E::Invalid { field, reason } => Problem::invalid_param(field, reason),
            E::LdapTls { .. }
            | E::LdapBind { .. }
            | E::LdapOperation { .. }
            | E::FhirOutcome { .. }
            | E::FhirResponse { .. } => Problem::new(StatusCode::BAD_GATEWAY, e.to_string()),
            other => Problem::internal(&other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(p: Problem) -> (StatusCode, axum::http::HeaderMap) {
        let r = p.into_response();
        (r.status(), r.headers().clone())
    }

    /// Status and `Retry-After` of the answer.
    fn answer(p: Problem) -> (u16, Option<String>) {
        let (status, h) = headers(p);
        let retry = h
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        (status.as_u16(), retry)
    }

    fn smtp(code: u16) -> mss_lps::Error {
        mss_lps::Error::Smtp {
            server: "smtp.sante.test:587".into(),
            command: "MAIL FROM".into(),
            reply: Box::new(mss_lps::smtp::SmtpReply {
                code,
                enhanced: None,
                lines: vec!["try again".into()],
            }),
        }
    }

    #[test]
    fn transient_failures_are_503_with_retry_after() {
        let retry = Some(RETRY_AFTER_SECS.to_string());
        let cases: Vec<Problem> = vec![
            smtp(451).into(),
            mss_lps::Error::Connect {
                server: "smtp.sante.test:587".into(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            }
            .into(),
            mss_outbox::Error::Unavailable {
                reason: "disk full".into(),
            }
            .into(),
            mss_annuaire::Error::FhirOutcome {
                what: "Practitioner".into(),
                status: 503,
                diagnostics: "down".into(),
            }
            .into(),
            mss_annuaire::Error::LdapNetwork {
                url: "ldap://annuaire.test".into(),
                reason: "connection refused".into(),
            }
            .into(),
            mss_index::Error::Busy {
                data_dir: "/data".into(),
            }
            .into(),
        ];
        for p in cases {
            let detail = p.detail.clone();
            assert_eq!(answer(p), (503, retry.clone()), "{detail}");
        }
    }

    #[test]
    fn permanent_failures_keep_their_status_without_retry_after() {
        assert_eq!(answer(smtp(550).into()), (422, None));
        let fhir = mss_annuaire::Error::FhirOutcome {
            what: "Practitioner".into(),
            status: 401,
            diagnostics: "bad key".into(),
        };
        assert_eq!(answer(fhir.into()), (502, None));
        let p: Problem = mss_message::Error::Refused {
            field: "recipients.to[0]".into(),
            reason: "not on the whitelist".into(),
        }
        .into();
        assert_eq!(p.invalid_params[0].name, "recipients.to[0]");
        assert_eq!(answer(p), (422, None));
        let p: Problem = mss_outbox::Error::Invalid {
            field: "recipients".into(),
            reason: "empty".into(),
        }
        .into();
        assert_eq!(answer(p), (400, None));
        assert_eq!(answer(Problem::not_configured("no outbox")), (503, None));
    }

    #[test]
    fn a_refused_token_is_a_401_with_its_challenge() {
        let e = mss_lps::Error::SessionEnded;
        let (status, h) = headers(e.into());
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            h[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(h[header::CONTENT_TYPE], PROBLEM_JSON);
        assert!(h.get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn json_errors_do_not_quote_the_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            text: String,
            n: Option<u32>,
            kind: Option<mss_message::SenderKind>,
        }
        let cases = [
            (
                r#"{"text": {"x": 1}}"#,
                "invalid type: map, expected a string at line 1",
            ),
            (
                r#"{"text": "a", "n": "diabète \"type\" 2, expected"}"#,
                "invalid type: string, expected u32 at line 1",
            ),
            (
                r#"{"text": "a", "n": -12}"#,
                "invalid value: integer, expected u32 at line 1",
            ),
            (
                r#"{"text": "a", "kind": "INS 1234"}"#,
                "unknown variant, expected one of",
            ),
        ];
        for (json, expected) in cases {
            let e = serde_json::from_str::<Body>(json).expect_err(json);
            let p = Problem::invalid_json("body", &e);
            let reason = &p.invalid_params[0].reason;
            assert!(
                reason.starts_with(expected),
                "{json}: {reason} (serde: {e})"
            );
            for secret in ["diab", "-12", "INS"] {
                assert!(!reason.contains(secret), "{json}: {reason}");
            }
        }
        let e = serde_json::from_str::<Body>("{").expect_err("eof");
        assert_eq!(
            Problem::invalid_json("body", &e).invalid_params[0].reason,
            e.to_string()
        );
    }

    #[test]
    fn headers_are_not_in_the_body() {
        let body = serde_json::to_value(Problem::unauthorized("no token", "Bearer")).unwrap();
        let mut keys: Vec<&str> = body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(keys, ["detail", "status", "title", "type"]);
    }
}
