//! # mss-api — the REST service of mss
//!
//! This crate owns the HTTP face of mss (axum): the directory endpoints (`/v1/directory/...`), health and
//! readiness probes, Prometheus metrics, the OpenAPI 3.1 document (generated from the code, kept in git at
//! `api/openapi.json`), the embeddable address-autocomplete widget served at `/`, the ops console at
//! `/console`, and the listener, in plain
//! HTTP or over TLS ([`serve`], [`ListenerTls`]).
//!
//! Every error is `application/problem+json` (RFC 9457) naming the parameter at fault; unknown or repeated
//! query parameters are refused; nothing panics into a client's face (a panic becomes a logged 500).

mod access;
mod batches;
mod body;
mod check;
mod console;
mod directory;
mod inbox;
mod messages;
mod metrics;
mod params;
mod problem;
mod schedule;
mod tls;
mod widget;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use access::SecurityDoc;
use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use mss_index::DirectoryIndex;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;

pub use access::{API_KEY_HEADER, AccessConfig, DirectoryAccess, Rate, parse_trusted_proxies};
pub use batches::{
    AcceptedItem, BatchAccepted, BatchItem, BatchRequest, BatchSender, DEFAULT_MAX_BODY_BYTES,
    OutboxConfig,
};
pub use messages::{RefusedRecipient, SendConfig, SendResponse};
pub use metrics::Metrics;
pub use problem::{InvalidParam, Problem};
pub use schedule::{Attempt, Outcome, RunDone, Schedule, SourceRun, SourceRuns, sync_periodically};
pub use tls::{ClientCertificate, ListenerTls, is_loopback};

/// What the service needs besides the index.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// Origins allowed to call the API from a browser (CORS); `*` allows any. Empty: same origin only.
    pub cors_origins: Vec<String>,
    /// The LDAP directory answering `GET /v1/directory/search?source=ldap` (none: `source=ldap` is refused).
    pub ldap: Option<Arc<mss_annuaire::ldap::LdapClient>>,
    /// The FHIR API answering `GET /v1/directory/entries/{address}?refresh=true` (none: refused).
    pub fhir: Option<Arc<mss_annuaire::fhir::FhirClient>>,
    /// Client keys, the directory's access and rate, the audit trail.
    pub access: AccessConfig,
}

/// Shared state of the handlers.
pub struct AppState {
    index: OnceLock<DirectoryIndex>,
    metrics: Metrics,
    sending: OnceLock<SendConfig>,
    outbox: OnceLock<OutboxConfig>,
    /// The outbox overview the consoles and scrapes share.
    console: console::OverviewCache,
    /// How the service's workers and readers last connected to their operator.
    connections: Arc<mss_outbox::overview::ConnectionLog>,
    /// The runs of the directory sources the service schedules itself.
    runs: SourceRuns,
}

impl AppState {
    /// A state whose index is not loaded yet: directory routes answer 503 and `/readyz` fails until
    /// [`AppState::set_index`].
    pub fn new() -> Arc<Self> {
        Arc::new(AppState {
            index: OnceLock::new(),
            metrics: Metrics::default(),
            sending: OnceLock::new(),
            outbox: OnceLock::new(),
            console: console::OverviewCache::default(),
            connections: Arc::default(),
            runs: SourceRuns::default(),
        })
    }

    /// A state serving `index`.
    pub fn with_index(index: DirectoryIndex) -> Arc<Self> {
        let state = Self::new();
        state.set_index(index);
        state
    }

    /// Makes the index available (once; later calls are ignored).
    pub fn set_index(&self, index: DirectoryIndex) {
        let _ = self.index.set(index);
    }

    /// Enables `POST /v1/messages/send` (once; later calls are ignored).
    pub fn set_sending(&self, config: SendConfig) {
        let _ = self.sending.set(config);
    }

    /// Enables the batch routes over a durable outbox (once; later calls are ignored).
    pub fn set_outbox(&self, config: OutboxConfig) {
        let _ = self.outbox.set(config);
    }

    /// The log the service's workers and readers record their connections in, shown by `GET /v1/sources`.
    pub fn connection_log(&self) -> Arc<mss_outbox::overview::ConnectionLog> {
        Arc::clone(&self.connections)
    }

    /// Counts an answer the HL7 listener gave the DPI (`mss_hl7_received_total`).
    pub fn hl7_answered(&self, message_type: &str, ack: &str, error_code: Option<u16>) {
        self.metrics.hl7_answered(message_type, ack, error_code);
    }

    /// The index, or 503 with `Retry-After` while it is loading.
    fn index(&self) -> Result<&DirectoryIndex, Problem> {
        self.index.get().ok_or_else(|| {
            Problem::unavailable("the directory index is still loading; retry in a moment")
        })
    }
}

/// The OpenAPI document of the service.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mss",
        description = "MSSanté directory search and autocomplete for health software (LPS, DPI, PFI).",
        license(name = "Apache-2.0")
    ),
    paths(
        directory::search,
        directory::autocomplete,
        directory::entry,
        directory::healthz,
        directory::readyz,
        directory::metrics,
        messages::send,
        messages::compose,
        check::check,
        batches::create,
        batches::batch,
        batches::message,
        inbox::list,
        inbox::message,
        inbox::raw,
        inbox::document,
        inbox::ack,
        console::outbox,
        console::retry,
        console::cancel,
        console::sources,
    ),
    components(schemas(Problem, InvalidParam, SendResponse, RefusedRecipient, check::CheckResponse,
        check::CheckFinding, BatchRequest, BatchItem, BatchAccepted, AcceptedItem, inbox::InboxPage,
        inbox::AckRequest, inbox::AckResponse, console::OutboxView, console::SenderView, console::PauseView,
        console::RetryRequest, console::ActionDone, console::SourcesView, console::SourceView, Schedule, Attempt, Outcome,
        console::EndpointView)),
    modifiers(&SecurityDoc),
    tags((name = "directory", description = "Mailboxes (BAL) of the national MSSanté directory"),
         (name = "messages", description = "Composing, checking, and sending through the sender's operator (API LPS)"),
         (name = "batches", description = "Batches through the durable outbox, delivered by the service's workers"),
         (name = "inbox", description = "Messages received in the service's mailboxes, their documents verified, and the outcome answered with an MDN"),
         (name = "operations", description = "Probes and metrics"))
)]
pub struct ApiDoc;

/// The OpenAPI document as served at `/openapi.json` and kept in `api/openapi.json`.
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.to_pretty_json().unwrap_or_default() + "\n"
}

/// All routes, with metrics, CORS and panic containment.
pub fn router(state: Arc<AppState>, config: &ApiConfig) -> Router {
    let access = access::Access::new(config.access.clone());
    let guard = |g: access::Guard| {
        axum::middleware::from_fn_with_state((Arc::clone(&access), g), access::guard)
    };
    let route = |router: Router<Arc<AppState>>,
                 path: &'static str,
                 handler: MethodRouter<Arc<AppState>>| {
        match access::guard_of(path) {
            Some(g) => router.route(path, handler.route_layer(guard(g))),
            None => router.route(path, handler),
        }
    };
    let mut routes = Router::new();
    for (path, handler) in [
        ("/v1/directory/search", get(directory::search)),
        ("/v1/directory/autocomplete", get(directory::autocomplete)),
        ("/v1/directory/entries/{address}", get(directory::entry)),
        ("/healthz", get(directory::healthz)),
        ("/readyz", get(directory::readyz)),
        ("/metrics", get(directory::metrics)),
        ("/v1/messages/send", post(messages::send)),
        ("/v1/messages/compose", post(messages::compose)),
        ("/v1/messages/check", post(check::check)),
        ("/v1/batches", post(batches::create)),
        ("/v1/batches/{id}", get(batches::batch)),
        ("/v1/messages/{id}", get(batches::message)),
        ("/v1/inbox", get(inbox::list)),
        ("/v1/inbox/{id}", get(inbox::message)),
        ("/v1/inbox/{id}/raw", get(inbox::raw)),
        ("/v1/inbox/{id}/documents/{n}", get(inbox::document)),
        ("/v1/inbox/{id}/ack", post(inbox::ack)),
        ("/v1/outbox", get(console::outbox)),
        ("/v1/messages/{id}/retry", post(console::retry)),
        ("/v1/batches/{id}/cancel", post(console::cancel)),
        ("/v1/sources", get(console::sources)),
    ] {
        routes = route(routes, path, handler);
    }
    routes
        .route("/openapi.json", get(openapi))
        .merge(widget::routes())
        .merge(console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(cors(config, access))
        .layer(axum::middleware::from_fn(body::close_when_unread))
        .layer(CatchPanicLayer::custom(|_| {
            Problem::internal(&"a handler panicked").into_response()
        }))
        .layer(axum::Extension(directory::LdapSource(config.ldap.clone())))
        .layer(axum::Extension(directory::FhirSource(config.fhir.clone())))
        .with_state(state)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

async fn not_found() -> Problem {
    Problem::not_found("no such route; the routes are listed in /openapi.json")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not answer that method",
    )
}

/// CORS: the configured origins, and those of the publishable keys (read at each preflight, so that a new
/// key works without a restart). Preflights never need a key.
fn cors(config: &ApiConfig, access: Arc<access::Access>) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static(API_KEY_HEADER),
        ])
        .max_age(Duration::from_secs(3600));
    if config.cors_origins.iter().any(|o| o == "*") {
        return layer.allow_origin(AllowOrigin::any());
    }
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    layer.allow_origin(AllowOrigin::predicate(move |origin, _| {
        origins.contains(origin) || origin.to_str().is_ok_and(|o| access.publishable_origin(o))
    }))
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests under way finish: plain
/// HTTP/1.1, or over TLS with `tls` (each request then carries its [`ClientCertificate`] when clients must
/// present one). Requests carry `ConnectInfo<SocketAddr>` either way.
pub async fn serve(
    listener: TcpListener,
    tls: Option<ListenerTls>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(tls) => {
            axum::serve(
                tls::TlsListener::new(listener, &tls),
                tls::MakeTlsService { router },
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}

/// Keeps the served index on the newest generation (a concurrent `mss import` swaps one in).
pub async fn reload_periodically(state: Arc<AppState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Some(index) = state.index.get()
            && let Err(e) = index.reload()
        {
            tracing::warn!(error = %e, "reloading the index failed; still serving the previous one");
        }
    }
}

/// Keeps the espace de confiance on the newest whitelist installed by `mss whitelist update`
/// (docs/mssante.md M8): every route sees it within `every`, without a restart.
pub async fn refresh_trust_periodically(trust: mss_message::Trust, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let t = trust.clone();
        match tokio::task::spawn_blocking(move || t.refresh()).await {
            Ok(Ok(true)) => tracing::info!(
                domains = trust.current().map_or(0, |w| w.len()),
                "installed whitelist reloaded"
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reloading the whitelist failed; the previous one stays")
            }
            Err(e) => tracing::warn!(error = %e, "reloading the whitelist failed"),
        }
    }
}

/// Keeps the client keys on the clients file as `mss client` edits it (a revoked key fails within `every`
/// and a second), and writes their last use beside it every ten rounds.
pub async fn refresh_clients_periodically(
    clients: Arc<mss_access::clients::Clients>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    let mut round: u32 = 0;
    loop {
        tick.tick().await;
        round = round.wrapping_add(1);
        let c = Arc::clone(&clients);
        let save = round.is_multiple_of(10);
        let done = tokio::task::spawn_blocking(move || {
            let reloaded = c.refresh();
            let saved = if save {
                c.save_last_used().map(|_| ())
            } else {
                Ok(())
            };
            (reloaded, saved)
        })
        .await;
        match done {
            Ok((reloaded, saved)) => {
                match reloaded {
                    Ok(true) => tracing::info!("clients file reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        error = %e,
                        "reloading the clients file failed; the previous keys stay"
                    ),
                }
                if let Err(e) = saved {
                    tracing::warn!(error = %e, "saving the keys' last use failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reloading the clients file failed"),
        }
    }
}
