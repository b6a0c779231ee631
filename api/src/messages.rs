//! `POST /v1/messages/send`: compose (`mss-message`) and submit through the sender's API LPS (`mss-lps`) in
//! one call. A PER/ORG/CAB sender's Pro Santé Connect token comes in `Authorization: Bearer`; it lives for
//! the request only and is never logged nor stored. An APP sender is authenticated by the client certificate
//! of the service's configuration.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mss_lps::{
    AccessToken, ConnectOptions, Credentials, LpsClient, MailboxConfig, ServerSource,
    SessionPolicy, StaticToken, Timeouts, TlsSettings, TokenPolicy,
};
use mss_message::{ComposeConfig, ComposeRequest, SenderKind};
use mss_types::{BalType, MailAddress};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::access::{AuditNote, Caller};
use crate::body::{Limited, MAX_MESSAGE_BYTES};
use crate::problem::Problem;

/// What sending needs; set with [`AppState::set_sending`]. Without it the route answers 503.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Composition settings (product reference `X-MSS-NIL`, whitelist, ...).
    pub compose: ComposeConfig,
    /// TLS of PER/ORG senders: the trust roots (IGC Santé in production).
    pub tls: TlsSettings,
    /// TLS with the APP client certificate, for APP senders; `None`: APP senders are refused (503).
    pub app_tls: Option<TlsSettings>,
    /// PER/ORG front: explicit, or SRV priority 10 of the sender's domain.
    pub servers: ServerSource,
    /// APP front: explicit, or SRV priority 20.
    pub app_servers: ServerSource,
    /// Network deadlines.
    pub timeouts: Timeouts,
    /// How PSC tokens are explained when refused.
    pub token_policy: TokenPolicy,
    /// Source address of the connections (multi-homed hosts).
    pub local_addr: Option<std::net::IpAddr>,
}

impl SendConfig {
    /// Sending with `product_reference` in `X-MSS-NIL`, `tls` for PER/ORG/CAB senders, fronts found by DNS
    /// SRV, no APP certificate.
    pub fn new(product_reference: &str, tls: TlsSettings) -> Result<Self, mss_lps::Error> {
        let resolver: Arc<dyn mss_lps::SrvResolver> = Arc::new(mss_lps::DnsResolver::system()?);
        Ok(SendConfig {
            compose: ComposeConfig::new(product_reference),
            tls,
            app_tls: None,
            servers: ServerSource::Srv(Arc::clone(&resolver)),
            app_servers: ServerSource::Srv(resolver),
            timeouts: Timeouts::default(),
            token_policy: TokenPolicy::default(),
            local_addr: None,
        })
    }
}

/// The outcome: the message left with at least one recipient accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendResponse {
    /// `Message-ID` of the sent message, with its angle brackets.
    pub message_id: String,
    /// Recipients the operator accepted.
    pub accepted: Vec<String>,
    /// Recipients it refused, with its reply.
    pub refused: Vec<RefusedRecipient>,
    /// The operator's reply to the message (often with its queue id).
    pub reply: String,
    /// A delivery notification was asked but the operator does not offer DSN.
    pub dsn_ignored: bool,
}

/// A refused recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedRecipient {
    /// The address.
    pub recipient: String,
    /// The operator's reply to `RCPT TO`.
    pub reply: String,
}

/// Compose and send a message.
#[utoipa::path(
    post,
    path = "/v1/messages/send",
    tag = "messages",
    request_body(
        content = serde_json::Value,
        content_type = "application/json",
        description = "A compose request (mss-message `ComposeRequest`: sender, recipients, body, documents, patient, receipts)"
    ),
    params(
        ("Authorization" = Option<String>, Header,
         description = "`Bearer <Pro Santé Connect access token>`, required for PER, ORG and CAB senders")
    ),
    responses(
        (status = 200, description = "Sent; per-recipient results", body = SendResponse),
        (status = 400, description = "The request is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or the operator refused the credentials (expired, other user, not PSC, certificate)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The request is larger than 64 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An MSSanté rule or the operator refuses the message or every recipient", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The operator's front is unusable (no STARTTLS, TLS < 1.2, untrusted certificate)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sending is not configured, or the operator is unreachable for now: retry", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn send(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(note): Extension<AuditNote>,
    headers: HeaderMap,
    Limited(body): Limited<MAX_MESSAGE_BYTES>,
) -> Result<Json<SendResponse>, Problem> {
    send_inner(&state, &caller, &note, &headers, &body)
        .await
        .map(Json)
}

/// Compose a message without sending it: the MIME bytes a vendor can inspect, store or send itself.
#[utoipa::path(
    post,
    path = "/v1/messages/compose",
    tag = "messages",
    request_body(
        content = serde_json::Value,
        content_type = "application/json",
        description = "A compose request (mss-message `ComposeRequest`), as for `/v1/messages/send`"
    ),
    responses(
        (status = 200, description = "The message (RFC 5322, CRLF); its Message-ID is in the `X-MSS-Message-ID` response header", body = String, content_type = "message/rfc822"),
        (status = 400, description = "The request is malformed (the field is named)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The request is larger than 64 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An MSSanté rule refuses the message (whitelist, INS, size)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The product reference (NIL) is not configured", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn compose(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<AuditNote>,
    Limited(body): Limited<MAX_MESSAGE_BYTES>,
) -> Result<Response, Problem> {
    let cfg = state.sending.get().ok_or_else(|| {
        Problem::not_configured("composition is not configured on this service (product reference)")
    })?;
    let request: ComposeRequest =
        serde_json::from_slice(&body).map_err(|e| Problem::invalid_json("body", &e))?;
    note.compose_request(&request);
    let m = mss_message::compose(&request, &cfg.compose)?;
    note.message(format!("<{}>", m.message_id));
    let mut r = ([(header::CONTENT_TYPE, "message/rfc822")], m.raw).into_response();
    if let Ok(id) = HeaderValue::from_str(&m.message_id) {
        r.headers_mut().insert("x-mss-message-id", id);
    }
    Ok(r)
}

async fn send_inner(
    state: &AppState,
    caller: &Caller,
    note: &AuditNote,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SendResponse, Problem> {
    let cfg = state.sending.get().ok_or_else(|| {
        Problem::not_configured(
            "sending is not configured on this service (product reference, trust roots)",
        )
    })?;
    let token = bearer(headers)?;
    let request: ComposeRequest =
        serde_json::from_slice(body).map_err(|e| Problem::invalid_json("body", &e))?;
    note.compose_request(&request);
    if let Ok(sender) = MailAddress::parse(&request.sender.address) {
        caller.check_sender(&sender)?;
    }
    let composed = mss_message::compose(&request, &cfg.compose)?;
    note.message(format!("<{}>", composed.message_id));
    let from = composed.envelope.from.clone();
    let (bal_type, credentials, tls, servers) = match (request.sender.kind, token) {
        (SenderKind::App, _) => match &cfg.app_tls {
            Some(tls) => (
                BalType::App,
                Credentials::Certificate { password: None },
                tls.clone(),
                cfg.app_servers.clone(),
            ),
            None => {
                return Err(Problem::not_configured(
                    "APP senders need the service's client certificate, which is not configured",
                ));
            }
        },
        (kind, Some(token)) => (
            match kind {
                SenderKind::Org => BalType::Org,
                SenderKind::Cab => BalType::Cab,
                _ => BalType::Per,
            },
            Credentials::Psc {
                provider: Arc::new(StaticToken::new(token)),
                policy: cfg.token_policy.clone(),
            },
            cfg.tls.clone(),
            cfg.servers.clone(),
        ),
        (_, None) => {
            return Err(Problem::unauthorized(
                "a Pro Santé Connect access token is required (Authorization: Bearer)",
                "Bearer",
            ));
        }
    };
    let mut connect = ConnectOptions::new(tls);
    connect.timeouts = cfg.timeouts;
    connect.local_addr = cfg.local_addr;
    let client = LpsClient::new(MailboxConfig {
        address: from,
        bal_type,
        credentials,
        servers,
        connect,
        session: SessionPolicy::default(),
    })?;
    let result = client.send(&composed.envelope, &composed.raw).await;
    client.close().await;
    let report = result?;
    Ok(SendResponse {
        message_id: format!("<{}>", composed.message_id),
        accepted: report.accepted().map(|a| a.to_string()).collect(),
        refused: report
            .refused()
            .map(|r| RefusedRecipient {
                recipient: r.recipient.to_string(),
                reply: r.reply.to_string(),
            })
            .collect(),
        reply: report.reply.to_string(),
        dsn_ignored: report.dsn_ignored,
    })
}

/// The token of `Authorization: Bearer`, if any.
fn bearer(headers: &HeaderMap) -> Result<Option<AccessToken>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Problem::unauthorized("the Authorization header is not ASCII", "Bearer"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(AccessToken::new(token)))
        }
        _ => Err(Problem::unauthorized(
            "the Authorization header must be `Bearer <token>`",
            "Bearer",
        )),
    }
}
