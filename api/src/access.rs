//! Who may call which route (docs/mssante.md S1) and the audit trail of health-data requests (S2): one
//! middleware per guarded route, declared beside the route in `router`.
//!
//! A client key travels in `X-Api-Key` (for `GET /metrics`, also as `Authorization: Bearer mss_…`, which is
//! what scrapers send). Missing, unknown, wrong and revoked keys all get the same 401; only the audit says
//! which. A source address that keeps presenting bad keys gets 429 for a while, without slowing anyone
//! else. The directory is public unless `[access] directory = "key"`; without a key its answers are
//! rate-limited per address (except on a loopback listener).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mss_access::Scope;
use mss_access::audit::{AuditLog, AuditRecord, Outcome};
use mss_access::clients::{Client, Clients, KeyKind};
use mss_access::limit::Buckets;
use mss_types::MailAddress;

use crate::problem::Problem;
use crate::tls::ClientCertificate;

mod forwarded;

pub use forwarded::parse_trusted_proxies;

/// The header carrying client keys.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The `WWW-Authenticate` challenge of a missing or refused key.
const CHALLENGE: &str = "ApiKey header=\"X-Api-Key\"";

/// Whether the directory routes need a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectoryAccess {
    /// Public data: answered without a key (a key, if given, must be valid).
    #[default]
    Public,
    /// A key with `directory:read` is needed.
    Key,
}

/// A rate per source address: `burst` requests at once, then `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests at once.
    pub burst: u32,
    /// Requests a minute after that.
    pub per_minute: u32,
}

/// Access control and audit of the service.
#[derive(Clone, Default)]
pub struct AccessConfig {
    /// The clients and their keys (none: no client, every guarded route says how to add one).
    pub clients: Option<Arc<Clients>>,
    /// Whether the directory needs a key.
    pub directory: DirectoryAccess,
    /// The per-address rate of keyless (and publishable-key) directory requests; `None`: unlimited (the
    /// service listens on loopback only).
    pub directory_rate: Option<Rate>,
    /// The audit trail (none: not written; the service always sets one).
    pub audit: Option<Arc<AuditLog>>,
    /// The reverse proxies believed about the client they forward for (`Forwarded`, `X-Forwarded-For`):
    /// the limits and the audit trail then count that client, not the proxy.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl std::fmt::Debug for AccessConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessConfig")
            .field("clients", &self.clients)
            .field("directory", &self.directory)
            .field("directory_rate", &self.directory_rate)
            .field("audit", &self.audit.is_some())
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// The state of the guards: the configuration and the per-address buckets.
pub(crate) struct Access {
    config: AccessConfig,
    failed_keys: Buckets,
    directory_rate: Option<Buckets>,
}

impl Access {
    pub(crate) fn new(config: AccessConfig) -> Arc<Self> {
        Arc::new(Access {
            directory_rate: config
                .directory_rate
                .map(|r| Buckets::new(r.burst, r.per_minute)),
            failed_keys: Buckets::failed_keys(),
            config,
        })
    }

    /// Whether a browser page of `origin` may call: an origin of a publishable key.
    pub(crate) fn publishable_origin(&self, origin: &str) -> bool {
        self.config
            .clients
            .as_ref()
            .is_some_and(|c| c.current().origins().iter().any(|o| o == origin))
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    scope: Scope,
    /// The audited action, for routes on health data.
    action: Option<&'static str>,
}

impl Guard {
    /// A route needing `scope`, not audited.
    pub(crate) const fn scope(scope: Scope) -> Self {
        Guard {
            scope,
            action: None,
        }
    }

    /// A route on health data needing `scope`, audited as `action`.
    pub(crate) const fn audited(scope: Scope, action: &'static str) -> Self {
        Guard {
            scope,
            action: Some(action),
        }
    }
}

/// Every guarded route and what it needs: the router guards exactly these, and the OpenAPI document
/// declares their security from here.
pub(crate) const GUARDED: [(&str, Guard); 19] = [
    ("/v1/directory/search", Guard::scope(Scope::DirectoryRead)),
    (
        "/v1/directory/autocomplete",
        Guard::scope(Scope::DirectoryRead),
    ),
    (
        "/v1/directory/entries/{address}",
        Guard::scope(Scope::DirectoryRead),
    ),
    ("/metrics", Guard::scope(Scope::MetricsRead)),
    (
        "/v1/messages/send",
        Guard::audited(Scope::MessagesSend, "messages.send"),
    ),
    (
        "/v1/messages/compose",
        Guard::audited(Scope::MessagesCompose, "messages.compose"),
    ),
    (
        "/v1/messages/check",
        Guard::audited(Scope::MessagesCompose, "messages.check"),
    ),
    (
        "/v1/batches",
        Guard::audited(Scope::BatchesWrite, "batches.create"),
    ),
    (
        "/v1/batches/{id}",
        Guard::audited(Scope::BatchesRead, "batches.read"),
    ),
    (
        "/v1/messages/{id}",
        Guard::audited(Scope::BatchesRead, "messages.read"),
    ),
    ("/v1/inbox", Guard::audited(Scope::InboxRead, "inbox.read")),
    (
        "/v1/inbox/{id}",
        Guard::audited(Scope::InboxRead, "inbox.read"),
    ),
    (
        "/v1/inbox/{id}/raw",
        Guard::audited(Scope::InboxRead, "inbox.read"),
    ),
    (
        "/v1/inbox/{id}/documents/{n}",
        Guard::audited(Scope::InboxRead, "inbox.read"),
    ),
    (
        "/v1/inbox/{id}/ack",
        Guard::audited(Scope::InboxAck, "inbox.ack"),
    ),
    (
        "/v1/outbox",
        Guard::audited(Scope::OutboxRead, "outbox.read"),
    ),
    (
        "/v1/messages/{id}/retry",
        Guard::audited(Scope::OutboxManage, "messages.retry"),
    ),
    (
        "/v1/batches/{id}/cancel",
        Guard::audited(Scope::OutboxManage, "batches.cancel"),
    ),
    ("/v1/sources", Guard::scope(Scope::MetricsRead)),
];

/// What the route at `path` needs, if it is guarded.
pub(crate) fn guard_of(path: &str) -> Option<Guard> {
    GUARDED.iter().find(|(p, _)| *p == path).map(|(_, g)| *g)
}

/// The name of the OpenAPI security scheme of client keys.
pub(crate) const SECURITY_SCHEME: &str = "api_key";

/// Declares the client-key scheme, each guarded route's scope, and the 401, 403 and 429 they may answer.
pub(crate) struct SecurityDoc;

impl utoipa::Modify for SecurityDoc {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
        use utoipa::openapi::{Ref, ResponseBuilder, content::ContentBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "A client key (`mss_sk_…`, or `mss_pk_…` from a browser page of its origins) made with \
                 `mss client add`",
            ))),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    crate::problem::PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, guard) in GUARDED {
            let Some(item) = doc.paths.paths.get_mut(path) else {
                continue;
            };
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                let keyed = SecurityRequirement::new(SECURITY_SCHEME, [guard.scope.as_str()]);
                let mut security = vec![keyed];
                if guard.scope == Scope::DirectoryRead {
                    // public unless `[access] directory = "key"`
                    security.insert(0, SecurityRequirement::default());
                }
                op.security = Some(security);
                let responses = &mut op.responses.responses;
                let no_key = "No valid client key in `X-Api-Key` (missing, unknown, wrong or revoked: one answer for all)";
                match responses.get_mut("401") {
                    // the route's own 401 (a user's token) stays, the key's is added to it
                    Some(utoipa::openapi::RefOr::T(own)) => {
                        own.description = format!("{no_key}; or: {}", own.description);
                    }
                    _ => {
                        responses.insert("401".into(), problem(no_key).into());
                    }
                }
                responses.insert(
                    "403".into(),
                    problem(&format!("`insufficient_scope`: the key lacks `{}`, may not use this sender, or is a publishable key used from another origin; nothing was done", guard.scope)).into(),
                );
                responses.insert(
                    "429".into(),
                    problem("Too many failed keys (or, for the public directory, requests) from this address: retry after `Retry-After`").into(),
                );
            }
        }
    }
}

/// Who is calling, for the handlers: the client of a valid key, or nobody on a public route.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Option<Arc<Client>>);

impl Caller {
    /// The client's name (the owner of what it creates).
    pub(crate) fn name(&self) -> Option<&str> {
        self.0.as_deref().map(|c| c.name.as_str())
    }

    /// Whether the client may see what `mailbox` sends or receives: a client limited to some senders sees
    /// theirs.
    pub(crate) fn may_see_mailbox(&self, mailbox: &str) -> bool {
        match (&self.0, MailAddress::parse(mailbox)) {
            (Some(c), Ok(m)) => c.may_send_as(&m),
            (Some(c), Err(_)) => c.senders.is_empty(),
            (None, _) => true,
        }
    }

    /// 403 unless the client may send from `sender`.
    pub(crate) fn check_sender(&self, sender: &MailAddress) -> Result<(), Problem> {
        match &self.0 {
            Some(c) if !c.may_send_as(sender) => Err(Problem::insufficient_scope(format!(
                "this key may not send from {sender} (its client `{}` is limited to other mailboxes)",
                c.name
            ))),
            _ => Ok(()),
        }
    }
}

/// What a handler learned that the audit line names: filled in as the request goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditNote(Arc<Mutex<Noted>>);

#[derive(Debug, Default)]
struct Noted {
    batch: Option<String>,
    messages: Vec<String>,
    sender: Option<String>,
    recipients: Vec<String>,
}

impl AuditNote {
    fn with(&self, f: impl FnOnce(&mut Noted)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The batch concerned.
    pub(crate) fn batch(&self, id: &str) {
        self.with(|n| n.batch = Some(id.to_string()));
    }

    /// A message concerned.
    pub(crate) fn message(&self, id: impl ToString) {
        self.with(|n| n.messages.push(id.to_string()));
    }

    /// The sending mailbox.
    pub(crate) fn sender(&self, sender: &MailAddress) {
        self.with(|n| n.sender = Some(sender.to_string()));
    }

    /// Recipients, once each.
    pub(crate) fn recipients<'a>(&self, addresses: impl IntoIterator<Item = &'a MailAddress>) {
        self.with(|n| {
            for a in addresses {
                let a = a.as_str();
                if !n.recipients.iter().any(|r| r == a) {
                    n.recipients.push(a.to_string());
                }
            }
        });
    }

    /// The sender and recipients a compose request names (those that are addresses: the audit keeps no
    /// free text).
    pub(crate) fn compose_request(&self, request: &mss_message::ComposeRequest) {
        if let Ok(sender) = MailAddress::parse(&request.sender.address) {
            self.sender(&sender);
        }
        let r = &request.recipients;
        let parsed: Vec<MailAddress> =
            r.to.iter()
                .chain(&r.cc)
                .chain(&r.bcc)
                .filter_map(|a| MailAddress::parse(a).ok())
                .collect();
        self.recipients(&parsed);
    }
}

/// A refusal of the guard: its answer and the reason the audit gives.
struct Refusal {
    problem: Box<Problem>,
    reason: String,
}

impl Refusal {
    fn unauthorized(reason: &str) -> Self {
        Refusal {
            problem: Box::new(Problem::unauthorized(
                "a valid client key is required in the X-Api-Key header",
                CHALLENGE,
            )),
            reason: reason.to_string(),
        }
    }
}

/// The guard of one route.
pub(crate) async fn guard(
    State((access, guard)): State<(Arc<Access>, Guard)>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
            c.0.ip().to_canonical()
        });
    let source = forwarded::client_address(peer, request.headers(), &access.config.trusted_proxies);
    let mut record = guard.action.map(|action| AuditRecord {
        time: time::OffsetDateTime::now_utc(),
        client: None,
        key_id: None,
        certificate: request
            .extensions()
            .get::<ClientCertificate>()
            .map(|c| c.subject.clone()),
        source,
        via: (source != peer).then_some(peer),
        action: action.to_string(),
        route: format!(
            "{} {}",
            request.method(),
            request
                .extensions()
                .get::<MatchedPath>()
                .map_or(request.uri().path(), |p| p.as_str())
        ),
        batch: None,
        messages: Vec::new(),
        sender: None,
        recipients: Vec::new(),
        outcome: Outcome {
            status: 0,
            reason: None,
        },
    });
    let decided = decide(&access, guard, request.headers(), source, record.as_mut());
    let response = match decided {
        Ok(caller) => {
            // only the handlers of audited routes (health data) look at who calls and note what they did
            let note = record.is_some().then(AuditNote::default);
            if let Some(note) = &note {
                request.extensions_mut().insert(Caller(caller));
                request.extensions_mut().insert(note.clone());
            }
            let response = next.run(request).await;
            if let (Some(r), Some(note)) = (record.as_mut(), note) {
                let noted = std::mem::take(&mut *note.0.lock().unwrap_or_else(|p| p.into_inner()));
                r.batch = noted.batch;
                r.messages = noted.messages;
                r.sender = noted.sender;
                r.recipients = noted.recipients;
                r.outcome.reason = response
                    .extensions()
                    .get::<crate::problem::ProblemDetail>()
                    .map(|p| p.0.clone());
            }
            response
        }
        Err(refusal) => {
            if let Some(r) = record.as_mut() {
                r.outcome.reason = Some(refusal.reason);
            }
            refusal.problem.into_response()
        }
    };
    if let (Some(mut r), Some(audit)) = (record, access.config.audit.as_ref()) {
        r.outcome.status = response.status().as_u16();
        r.time = time::OffsetDateTime::now_utc();
        if let Err(e) = audit.write(&r) {
            // the answer still goes: the action is done; the failure is loud in the log
            tracing::error!(error = %e, action = %r.action, "writing the audit trail failed");
        }
    }
    response
}

/// The caller of a request, or why it is refused.
fn decide(
    access: &Access,
    guard: Guard,
    headers: &HeaderMap,
    source: IpAddr,
    mut record: Option<&mut AuditRecord>,
) -> Result<Option<Arc<Client>>, Refusal> {
    let directory = guard.scope == Scope::DirectoryRead;
    let presented = presented_key(headers, guard.scope == Scope::MetricsRead)?;
    let registry = access
        .config
        .clients
        .as_ref()
        .map(|c| c.current())
        .unwrap_or_default();
    let caller = match presented {
        Some(key) => {
            let now = Instant::now();
            if let Some(r) = record.as_deref_mut() {
                r.key_id = mss_access::clients::PresentedKey::parse(&key).map(|k| k.id.to_string());
            }
            if let Some(wait) = access.failed_keys.blocked(source, now) {
                return Err(too_many(wait, "too many failed keys from this address"));
            }
            let client = authenticate(access, &registry, &key, source, now)?;
            if let Some(r) = record {
                r.client = Some(client.name.clone());
            }
            Some(client)
        }
        None if directory && access.config.directory == DirectoryAccess::Public => None,
        None if registry.is_empty() => {
            return Err(Refusal {
                problem: Box::new(Problem::unauthorized(
                    "this service has no client yet: add one with `mss client add NAME --scope SCOPE` \
                     on the server and send its key in the X-Api-Key header",
                    CHALLENGE,
                )),
                reason: "no_client_configured".into(),
            });
        }
        None => return Err(Refusal::unauthorized("missing_key")),
    };
    if let Some(client) = &caller {
        if client.kind == KeyKind::Publishable {
            let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
            if !origin.is_some_and(|o| client.allows_origin(o)) {
                return Err(Refusal {
                    problem: Box::new(Problem::insufficient_scope(
                        "this publishable key is not valid from this page's origin",
                    )),
                    reason: "origin_not_allowed".into(),
                });
            }
        }
        if !client.allows(guard.scope) {
            return Err(Refusal {
                problem: Box::new(Problem::insufficient_scope(format!(
                    "this key does not have the scope {}",
                    guard.scope
                ))),
                reason: format!("insufficient_scope: {}", guard.scope),
            });
        }
    }
    let keyless_or_public = caller
        .as_ref()
        .is_none_or(|c| c.kind == KeyKind::Publishable);
    if directory
        && keyless_or_public
        && let Some(rate) = &access.directory_rate
        && let Err(wait) = rate.take(source, Instant::now())
    {
        return Err(too_many(
            wait,
            "too many directory requests from this address; a client key lifts the limit",
        ));
    }
    Ok(caller)
}

fn authenticate(
    access: &Access,
    registry: &mss_access::clients::Registry,
    key: &str,
    source: IpAddr,
    now: Instant,
) -> Result<Arc<Client>, Refusal> {
    registry.authenticate(key).map_err(|refusal| {
        let _ = access.failed_keys.take(source, now);
        Refusal::unauthorized(refusal.as_str())
    })
}

fn too_many(wait: Duration, detail: &str) -> Refusal {
    let secs = u32::try_from(wait.as_secs())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    Refusal {
        problem: Box::new(Problem::too_many_requests(detail, secs)),
        reason: "rate_limited".into(),
    }
}

/// The key of a request: `X-Api-Key` (once), or on `/metrics` a `Bearer mss_…` token. A header that is not
/// text, or given twice, is a refused key.
fn presented_key(headers: &HeaderMap, bearer_too: bool) -> Result<Option<String>, Refusal> {
    let mut values = headers.get_all(API_KEY_HEADER).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(Refusal::unauthorized("malformed_key"));
        }
        return value
            .to_str()
            .map(|v| Some(v.trim().to_string()))
            .map_err(|_| Refusal::unauthorized("malformed_key"));
    }
    if bearer_too
        && let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .filter(|t| t.starts_with("mss_"))
    {
        return Ok(Some(token.trim().to_string()));
    }
    Ok(None)
}
