//! Directory routes, probes and metrics.
//!
//! Index calls run on the request's worker thread: they take a millisecond or less of CPU, less than a hop
//! to the blocking pool would cost.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mss_annuaire::fhir::FhirClient;
use mss_annuaire::ldap::LdapClient;
use mss_annuaire::{Entry, MailAddress};
use mss_index::{SearchRequest, Suggestion};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::params::{MAX_LIMIT, Params};
use crate::problem::Problem;
use crate::{AppState, metrics};

const SEARCH_PARAMS: &[&str] = &[
    "q",
    "type",
    "profession",
    "speciality",
    "dept",
    "postal_code",
    "limit",
    "cursor",
    "source",
];
const AUTOCOMPLETE_PARAMS: &[&str] = &[
    "q",
    "type",
    "profession",
    "speciality",
    "dept",
    "postal_code",
    "limit",
];

/// Query parameters of `/v1/directory/search` (documentation; parsing is strict, see `params`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchQuery {
    /// Words to find in names, organisation, service, city, profession and speciality; accents and case
    /// ignored, the last word may be a prefix, 1 typo allowed from 4 letters and 2 from 8. At most 200
    /// characters. Empty: every entry matching the filters.
    q: Option<String>,
    /// Mailbox type: `PER`, `ORG`, `APP` or `CAB`.
    #[param(rename = "type")]
    bal_type: Option<String>,
    /// Profession code (`10` médecin, `21` pharmacien, `60` infirmier...).
    profession: Option<String>,
    /// Speciality (savoir-faire) code, e.g. `SM54`.
    speciality: Option<String>,
    /// Department code: `01`–`95`, `2A`, `2B`, `971`–`976`.
    dept: Option<String>,
    /// Postal code (5 digits).
    postal_code: Option<String>,
    /// Page size, 1 to 100 (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page (`source=local` only).
    cursor: Option<String>,
    /// `local` (default): the local index. `ldap`: the national LDAP directory, live: at most 100 entries,
    /// `partial` with a `hint` when it stopped at its size or time limit, no paging; when it does not
    /// answer, the local index answers instead, with `source: "local"` and a `warning`.
    source: Option<String>,
}

/// The LDAP directory of `source=ldap`, if the server has one.
#[derive(Clone)]
pub struct LdapSource(pub Option<Arc<LdapClient>>);

/// The FHIR API of `refresh=true`, if the server has one.
#[derive(Clone)]
pub struct FhirSource(pub Option<Arc<FhirClient>>);

/// Query parameters of `/v1/directory/entries/{address}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct EntryQuery {
    /// `true`: ask the Annuaire Santé FHIR API first (`mailbox-mss:exact`) and update the local index with
    /// its answer: the entry is written, or removed when the API no longer publishes the box (red-listed,
    /// deactivated, gone). Needs `mss serve --fhir-base`. Default `false`: the local index only.
    refresh: Option<bool>,
}

/// Query parameters of `/v1/directory/autocomplete`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AutocompleteQuery {
    /// What the user typed so far (at most 200 characters).
    q: Option<String>,
    /// Only this mailbox type: `PER`, `ORG`, `APP` or `CAB`.
    #[param(rename = "type")]
    bal_type: Option<String>,
    /// Only this profession code.
    profession: Option<String>,
    /// Only this speciality code.
    speciality: Option<String>,
    /// Only this department.
    dept: Option<String>,
    /// Only this postal code.
    postal_code: Option<String>,
    /// Number of suggestions, 1 to 100 (default 8).
    limit: Option<u32>,
}

/// A page of search results.
#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    /// Entries matching the query and filters, over all pages (from the LDAP directory: the entries it
    /// returned).
    total: u64,
    /// This page, best first (from the LDAP directory: in its order).
    results: Vec<Entry>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// Words of the query left out because with them nothing matched; absent when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropped: Vec<String>,
    /// Where the results come from: `local` (the index) or `ldap` (the national directory, live).
    source: String,
    /// The LDAP directory stopped at its size or time limit: more entries match than it returned.
    partial: bool,
    /// How to refine the query, when `partial`.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    /// Why the results do not come from the source asked for (the LDAP directory did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// Suggestions for what the user is typing.
#[derive(Serialize, ToSchema)]
pub struct AutocompleteResponse {
    /// The query as understood (trimmed).
    query: String,
    /// Best first.
    suggestions: Vec<Suggestion>,
    /// Words of the query left out because with them nothing matched; absent when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropped: Vec<String>,
}

/// Refined search, paged by cursor.
#[utoipa::path(
    get,
    path = "/v1/directory/search",
    tag = "directory",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of entries", body = SearchResponse),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The index is loading", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    Extension(LdapSource(ldap)): Extension<LdapSource>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchResponse>, Problem> {
    let params = Params::parse(raw.as_deref(), SEARCH_PARAMS)?;
    let request = SearchRequest {
        q: params.query(false)?,
        filters: params.filters()?,
        limit: params.limit(20, MAX_LIMIT)?,
        cursor: params.get("cursor").map(str::to_string),
    };
    let mut warning = None;
    match params.get("source").unwrap_or("local") {
        "local" => {}
        "ldap" => {
            let Some(client) = ldap else {
                return Err(Problem::invalid_param(
                    "source",
                    "this server has no LDAP directory configured (mss serve --ldap-url)",
                ));
            };
            if request.cursor.is_some() {
                return Err(Problem::invalid_param(
                    "cursor",
                    "the LDAP directory has no paging (at most 100 entries per query): refine the query",
                ));
            }
            let query = request.ldap_query();
            match client.search(&query).await {
                Ok(answer) => {
                    return Ok(Json(SearchResponse {
                        total: answer.entries.len() as u64,
                        results: answer.entries,
                        next_cursor: None,
                        dropped: Vec::new(),
                        source: "ldap".into(),
                        partial: answer.partial.is_some(),
                        hint: answer.hint,
                        warning: answer.warning,
                    }));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "LDAP search failed; answering from the local index");
                    warning = Some(format!(
                        "the LDAP directory did not answer ({e}); these results come from the local index"
                    ));
                }
            }
        }
        other => {
            return Err(Problem::invalid_param(
                "source",
                format!("must be `local` or `ldap`, got `{other}`"),
            ));
        }
    }
    let results = state.index()?.search(&request)?;
    Ok(Json(SearchResponse {
        total: results.total,
        results: results.hits.into_iter().map(|h| h.entry).collect(),
        next_cursor: results.next_cursor,
        dropped: results.dropped,
        source: "local".into(),
        partial: false,
        hint: None,
        warning,
    }))
}

/// Search-as-you-type: a small payload per mailbox, with the matched parts of its label.
#[utoipa::path(
    get,
    path = "/v1/directory/autocomplete",
    tag = "directory",
    params(AutocompleteQuery),
    responses(
        (status = 200, description = "Suggestions, best first", body = AutocompleteResponse),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The index is loading", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn autocomplete(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AutocompleteResponse>, Problem> {
    let params = Params::parse(raw.as_deref(), AUTOCOMPLETE_PARAMS)?;
    let query = params.query(false)?;
    let filters = params.filters()?;
    let limit = params.limit(8, MAX_LIMIT)?;
    let found = if query.is_empty() {
        Default::default() // nothing typed yet: nothing to suggest
    } else {
        state.index()?.suggest(&query, &filters, limit)?
    };
    Ok(Json(AutocompleteResponse {
        query,
        suggestions: found.suggestions,
        dropped: found.dropped,
    }))
}

/// One mailbox by its address.
#[utoipa::path(
    get,
    path = "/v1/directory/entries/{address}",
    tag = "directory",
    params(("address" = String, Path, description = "The mailbox address, e.g. `jean.dupont@medecin.mssante.fr` (domain case-insensitive)"), EntryQuery),
    responses(
        (status = 200, description = "The entry", body = Entry),
        (status = 400, description = "Not a mailbox address, or a bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such mailbox in the directory (with `refresh=true`: not published by the FHIR API, and removed from the index)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`refresh=true` and the FHIR API refused the lookup or answered something unreadable", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The index is loading, or `refresh=true` and the FHIR API is unavailable for now: retry after `Retry-After`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn entry(
    State(state): State<Arc<AppState>>,
    Extension(FhirSource(fhir)): Extension<FhirSource>,
    Path(address): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Entry>, Problem> {
    let params = Params::parse(raw.as_deref(), &["refresh"])?;
    let refresh = match params.get("refresh") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Problem::invalid_param(
                "refresh",
                format!("must be `true` or `false`, got `{other}`"),
            ));
        }
    };
    let address =
        MailAddress::parse(&address).map_err(|e| Problem::invalid_param("address", e.reason))?;
    let index = state.index()?;
    if !refresh {
        return index
            .get(address.as_str())?
            .map(Json)
            .ok_or_else(|| Problem::not_found(format!("no mailbox {address} in the directory")));
    }
    let Some(client) = fhir else {
        return Err(Problem::invalid_param(
            "refresh",
            "this server has no FHIR API configured (mss serve --fhir-base)",
        ));
    };
    let published = client.mailbox(&address).await.map_err(|e| {
        tracing::warn!(address = %address, error = %e, "FHIR lookup failed");
        Problem::from(e)
    })?;
    // one short write; a sync holding the writer makes it wait its turn, not fail the request
    let write = published.clone();
    let target = address.clone();
    let state2 = Arc::clone(&state);
    let written = tokio::task::spawn_blocking(move || -> Result<(), mss_index::Error> {
        let index = state2
            .index
            .get()
            .ok_or_else(|| mss_index::Error::Corrupt {
                reason: "index not loaded".into(),
            })?;
        let mut w = writer_with_patience(index)?;
        match &write {
            Some(e) => w.upsert(e)?,
            None => w.delete(&target)?,
        }
        w.commit()
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(address = %address, error = %e, "could not update the index after a FHIR lookup")
        }
        Err(e) => tracing::warn!(address = %address, error = %e, "index update task failed"),
    }
    published.map(Json).ok_or_else(|| {
        Problem::not_found(format!(
            "no mailbox {address} in the FHIR directory (not published, red-listed or deactivated); removed from the local index"
        ))
    })
}

/// The index writer, waiting up to 2 s for another writer (a running sync commits every 2 s) to let go.
fn writer_with_patience(
    index: &mss_index::DirectoryIndex,
) -> Result<mss_index::Updater, mss_index::Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match index.writer() {
            Err(mss_index::Error::Busy { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the index is loaded.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: the index is loaded", body = String),
        (status = 503, description = "Not ready yet", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<String, Problem> {
    let index = state.index()?;
    Ok(format!("ok: {} entries\n", index.num_entries()))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Request counts, latency histograms per route, index size; the outbox per sender and state, the inbox per mailbox and status, each directory source's last successful run", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let (entries, bytes) = state
        .index
        .get()
        .map_or((0, 0), |i| (i.num_entries(), i.size_on_disk()));
    let snapshot = match crate::console::snapshot(&state).await {
        Ok(s) => Some(s),
        Err(e) => {
            // the request and index metrics still go out; the store's series are absent this time
            tracing::warn!(error = %e, "metrics: reading the outbox failed");
            None
        }
    };
    let body = state.metrics.render_with(entries, bytes, snapshot.as_ref());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}
