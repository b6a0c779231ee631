//! [`FhirClient`]: searches of the Annuaire Santé FHIR API, page by page.
//!
//! Every request waits its turn at a [`RateLimiter`] (17 calls in any second by default, the national
//! limit), carries the API key in `ESANTE-API-KEY` (marked sensitive: never logged by the HTTP stack,
//! never in an error: keys live in a [`Secret`]) and has a timeout (30 s, the national one). Transient
//! failures — 429 (after `Retry-After`), 5xx, timeouts, broken connections — are retried with
//! exponential backoff; then the error is returned, with the server's `OperationOutcome` diagnostics.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};

use super::mapping::{self, Change, Included};
use super::resources::{Bundle, OperationOutcome, Resource, parse_bundle, parse_resource};
use super::{API_KEY_HEADER, NATIONAL_RATE, NATIONAL_TIMEOUT};
use crate::Secret;
use crate::model::{Entry, MailAddress, Structure};
use crate::{Error, Result};

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct FhirConfig {
    /// Base URL, e.g. `https://gateway.api.esante.gouv.fr/fhir/v2`.
    pub base: String,
    /// The API key (`ESANTE-API-KEY`); none for a server that needs none.
    pub api_key: Option<Secret>,
    /// Most requests in any second (0: no limit, for local test servers only).
    pub rate: u32,
    /// Timeout of each request, answer body included.
    pub timeout: Duration,
    /// Tries of a request that fails transiently (429, 5xx, timeout, network) before giving up.
    pub attempts: u32,
    /// First wait before a retry; doubled at each further one (a 429's `Retry-After` wins).
    pub backoff: Duration,
    /// Longest wait honoured from a `Retry-After` (a longer one fails the request).
    pub max_retry_after: Duration,
    /// Page size asked with `_count` (none: the server's, 50 nationally).
    pub page_size: Option<u32>,
}

impl FhirConfig {
    /// The national API (which refuses every request without a key), rather than a local or test server.
    pub fn is_national(&self) -> bool {
        self.base.contains("esante.gouv.fr")
    }

    /// Settings for `base` with the national limits.
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        let url =
            Url::parse(&base).map_err(|e| Error::FhirConfig(format!("base URL `{base}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::FhirConfig(format!(
                "base URL `{base}`: must be http(s)://host/path"
            )));
        }
        Ok(FhirConfig {
            base,
            api_key: None,
            rate: NATIONAL_RATE,
            timeout: NATIONAL_TIMEOUT,
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(120),
            page_size: None,
        })
    }
}

/// A search: resource type and parameters (the first page; the next ones come by `next` link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    /// `Practitioner`, `PractitionerRole` or `Organization`.
    pub resource: String,
    /// Parameters, in order.
    pub params: Vec<(String, String)>,
}

impl Search {
    /// A search of `resource`.
    pub fn new(resource: &str) -> Self {
        Search {
            resource: resource.to_string(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.params.push((name.to_string(), value.into()));
        self
    }

    /// `Resource?a=b&c=d`, as errors and logs name it.
    pub fn describe(&self) -> String {
        let q: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if q.is_empty() {
            self.resource.clone()
        } else {
            format!("{}?{}", self.resource, q.join("&"))
        }
    }
}

/// At most `per_second` requests in any window of a second, as the server counts them: a request may
/// start only when the `per_second`-th previous one *ended* more than a second ago. A request reaches the
/// server between its start and its end, so however late the network or the scheduler delivers it, no
/// second at the server holds more (counting from starts, jitter showed 18 in a second under load).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: usize,
    window: Duration,
    /// Requests under way, and those that ended less than a window ago.
    slots: tokio::sync::Mutex<VecDeque<Slot>>,
    next_id: AtomicU64,
}

/// A request under way, counted by a [`RateLimiter`]; give it back with [`RateLimiter::done`].
#[derive(Debug)]
pub struct Permit(Option<u64>);

impl RateLimiter {
    /// A limiter of `per_second` (0: none).
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: per_second as usize,
            window: Duration::from_millis(1005),
            slots: tokio::sync::Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
        }
    }

    /// Waits until one more request fits, and counts it.
    pub async fn acquire(&self) -> Permit {
        if self.per_second == 0 {
            return Permit(None);
        }
        loop {
            let wait = {
                let mut slots = self.slots.lock().await;
                let now = Instant::now();
                // a request counts while under way and for a second after it ended
                slots.retain(|s| !s.ended || now.saturating_duration_since(s.at) < self.window);
                if slots.len() < self.per_second {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    slots.push_back(Slot {
                        id,
                        at: now,
                        ended: false,
                    });
                    return Permit(Some(id));
                }
                match slots.iter().filter(|s| s.ended).map(|s| s.at).min() {
                    Some(end) => self
                        .window
                        .saturating_sub(now.saturating_duration_since(end))
                        .max(Duration::from_millis(1)),
                    // all under way: check again shortly
                    None => Duration::from_millis(5),
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Records that the request of `permit` ended now.
    pub async fn done(&self, permit: Permit) {
        let Some(id) = permit.0 else {
            return;
        };
        let mut slots = self.slots.lock().await;
        if let Some(slot) = slots.iter_mut().find(|s| s.id == id) {
            slot.at = Instant::now();
            slot.ended = true;
        }
    }
}

/// One request counted by a [`RateLimiter`].
#[derive(Debug)]
struct Slot {
    id: u64,
    /// Its start while under way, then its end.
    at: Instant,
    ended: bool,
}

/// One page of a search, typed.
#[derive(Debug, Default)]
pub struct Page {
    /// The resources that matched (`search.mode` = `match`, or no mode).
    pub matches: Vec<Resource>,
    /// Resources brought by `_include`.
    pub included: Included,
    /// The `next` page's URL.
    pub next: Option<String>,
    /// `Bundle.total`, when the server counted.
    pub total: Option<u64>,
}

/// What one resource of a page publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// `Practitioner/123`; none for a resource without an id.
    pub resource: Option<String>,
    /// Its mailboxes, as changes to the index.
    pub changes: Vec<Change>,
}

impl Published {
    /// The boxes this resource still publishes (red-listed ones included: they are still its own).
    pub fn carried(&self) -> impl Iterator<Item = &MailAddress> {
        self.changes.iter().filter_map(|c| match c {
            Change::Upsert(e) => Some(&e.address),
            Change::Remove(a) => Some(a),
            Change::Withdraw { .. } | Change::Rejected { .. } => None,
        })
    }
}

impl Page {
    /// What each resource of this page publishes, in order.
    pub fn published(&self) -> Vec<Published> {
        let key = |ty: &str, id: &Option<String>| id.as_ref().map(|id| format!("{ty}/{id}"));
        let mut out = Vec::new();
        for r in &self.matches {
            let (resource, changes) = match r {
                Resource::Practitioner(p) => (key("Practitioner", &p.id), mapping::practitioner(p)),
                Resource::PractitionerRole(r) => (
                    key("PractitionerRole", &r.id),
                    mapping::practitioner_role(r, &self.included),
                ),
                Resource::Organization(o) => (key("Organization", &o.id), mapping::organization(o)),
                Resource::OperationOutcome(_) => continue,
            };
            out.push(Published { resource, changes });
        }
        out
    }

    /// What this page asks of the index, in order.
    pub fn changes(&self) -> Vec<Change> {
        self.published()
            .into_iter()
            .flat_map(|p| p.changes)
            .collect()
    }
}

/// The API client. `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct FhirClient {
    config: FhirConfig,
    base: Url,
    http: reqwest::Client,
    limiter: RateLimiter,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl FhirClient {
    /// A client; fails on a bad base URL or API key.
    pub fn new(config: FhirConfig) -> Result<Self> {
        let base = Url::parse(&format!("{}/", config.base))
            .map_err(|e| Error::FhirConfig(format!("base URL `{}`: {e}", config.base)))?;
        if let Some(key) = &config.api_key
            && HeaderValue::from_str(key.expose()).is_err()
        {
            return Err(Error::FhirConfig(
                "the API key holds characters that cannot go in an HTTP header".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("mss/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::FhirConfig(format!("HTTP client: {e}")))?;
        Ok(FhirClient {
            limiter: RateLimiter::new(config.rate),
            config,
            base,
            http,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    /// The settings.
    pub fn config(&self) -> &FhirConfig {
        &self.config
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Retries so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The URL of a search's first page.
    pub fn search_url(&self, search: &Search) -> Result<Url> {
        let mut url = self
            .base
            .join(&search.resource)
            .map_err(|e| Error::FhirConfig(format!("{}: {e}", search.resource)))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &search.params {
                q.append_pair(k, v);
            }
            if let Some(n) = self.config.page_size {
                q.append_pair("_count", &n.to_string());
            }
        }
        Ok(url)
    }

    /// The first page of `search`.
    pub async fn first_page(&self, search: &Search) -> Result<Page> {
        let url = self.search_url(search)?;
        self.page_at(url, &search.describe()).await
    }

    /// The page at `url` (a `next` link of a page of `search`). Links to another origin than the base
    /// URL are refused: the API key must not leave for another host.
    pub async fn next_page(&self, url: &str, search: &Search) -> Result<Page> {
        let url = self.base.join(url).map_err(|e| Error::FhirResponse {
            resource: search.describe(),
            field: "link.url".into(),
            reason: format!("`next` link `{url}` is not a URL: {e}"),
        })?;
        if url.origin() != self.base.origin() {
            return Err(Error::FhirResponse {
                resource: search.describe(),
                field: "link.url".into(),
                reason: format!(
                    "`next` link to another origin ({}): not followed, the API key would go there",
                    url.origin().ascii_serialization()
                ),
            });
        }
        self.page_at(url, &format!("{} (next page)", search.describe()))
            .await
    }

    async fn page_at(&self, url: Url, what: &str) -> Result<Page> {
        let bundle = self.get(url, what).await?;
        to_page(bundle, what)
    }

    /// GET with rate limit and retries; the answer as a Bundle.
    async fn get(&self, url: Url, what: &str) -> Result<Bundle> {
        let mut attempt = 1;
        loop {
            let (err, retry_after) = match self.try_get(&url, what).await {
                Ok(bundle) => return Ok(bundle),
                Err(e) => e,
            };
            if !err.is_transient() || attempt >= self.config.attempts.max(1) {
                return Err(err);
            }
            let backoff = self
                .config
                .backoff
                .saturating_mul(1 << (attempt - 1).min(16));
            let wait = match retry_after {
                Some(w) if w > self.config.max_retry_after => {
                    return Err(match err {
                        Error::FhirOutcome {
                            what,
                            status,
                            diagnostics,
                        } => Error::FhirOutcome {
                            what,
                            status,
                            diagnostics: format!(
                                "{diagnostics} (the server asks to wait {} s by Retry-After, more than the {} s this client waits)",
                                w.as_secs(),
                                self.config.max_retry_after.as_secs()
                            ),
                        },
                        other => other,
                    });
                }
                Some(w) => w,
                None => backoff,
            };
            tracing::warn!(request = what, attempt, wait_ms = wait.as_millis() as u64, error = %err, "FHIR request failed; retrying");
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn try_get(&self, url: &Url, what: &str) -> Result<Bundle, (Error, Option<Duration>)> {
        let permit = self.limiter.acquire().await;
        let result = self.send(url, what).await;
        self.limiter.done(permit).await;
        result
    }

    async fn send(&self, url: &Url, what: &str) -> Result<Bundle, (Error, Option<Duration>)> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(request = what, "FHIR GET");
        let mut req = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/fhir+json");
        if let Some(key) = &self.config.api_key
            && let Ok(mut value) = HeaderValue::from_str(key.expose())
        {
            value.set_sensitive(true);
            req = req.header(API_KEY_HEADER, value);
        }
        let seconds = self.config.timeout.as_secs_f64();
        let network = |e: reqwest::Error| {
            if e.is_timeout() {
                Error::FhirTimeout {
                    what: what.to_string(),
                    seconds,
                }
            } else {
                Error::FhirNetwork {
                    what: what.to_string(),
                    reason: chain(&e.without_url()),
                }
            }
        };
        let resp = req.send().await.map_err(|e| (network(e), None))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        let body = resp.bytes().await.map_err(|e| (network(e), None))?;
        if status.is_success() {
            return parse_bundle(what, &body).map_err(|e| (e, None));
        }
        let diagnostics = match serde_json::from_slice::<OperationOutcome>(&body) {
            Ok(o) if !o.issue.is_empty() => o.summary(),
            _ => {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.trim().chars().take(200).collect();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_string()
                } else {
                    text
                }
            }
        };
        Err((
            Error::FhirOutcome {
                what: what.to_string(),
                status: status.as_u16(),
                diagnostics,
            },
            retry_after,
        ))
    }

    /// Asks the API for one mailbox (`mailbox-mss:exact`) on Practitioner, PractitionerRole (with its
    /// practitioner and organization) and Organization. `Some(entry)`: the box as published (the most
    /// complete of its resources); `None`: not published, red-listed or deactivated.
    pub async fn mailbox(&self, address: &MailAddress) -> Result<Option<Entry>> {
        let exact = |r: &str| Search::new(r).param("mailbox-mss:exact", address.as_str());
        let searches = [
            exact("Practitioner"),
            exact("PractitionerRole")
                .param("_include", "PractitionerRole:practitioner")
                .param("_include", "PractitionerRole:organization"),
            exact("Organization"),
        ];
        let mut found: Option<Entry> = None;
        let mut red_listed = false;
        for s in &searches {
            let page = self.first_page(s).await?;
            for change in page.changes() {
                match change {
                    Change::Upsert(e) if &e.address == address => {
                        found = Some(match found.take() {
                            None => e,
                            Some(prev) => most_complete(prev, e),
                        });
                    }
                    Change::Remove(a) if &a == address => red_listed = true,
                    // a deactivated resource: the box stands if an active one publishes it
                    _ => {}
                }
            }
        }
        // red-listed by one of its resources: it is not to be shown
        Ok(if red_listed { None } else { found })
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date (a date past is now). None
/// when it reads as neither. The caller caps it ([`FhirConfig::max_retry_after`]).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // more seconds than a u64 holds: as long as can be, refused by the cap
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The entry with a structure wins; the other fills what it lacks.
fn most_complete(a: Entry, b: Entry) -> Entry {
    let empty = Structure::default();
    let (mut keep, other) = if a.structure() == empty {
        (b, a)
    } else {
        (a, b)
    };
    if other.structure() == empty {
        keep.merge(other);
    } else {
        for r in other.published_by {
            if !keep.published_by.contains(&r) {
                keep.published_by.push(r);
            }
        }
    }
    keep.published_by.sort();
    keep
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Types a Bundle's resources; included ones are indexed by `Type/id`.
pub fn to_page(bundle: Bundle, what: &str) -> Result<Page> {
    let mut page = Page {
        next: bundle.next().map(str::to_string),
        total: bundle.total,
        ..Page::default()
    };
    for (i, entry) in bundle.entry.into_iter().enumerate() {
        let Some(value) = entry.resource else {
            return Err(Error::FhirResponse {
                resource: what.to_string(),
                field: format!("entry[{i}].resource"),
                reason: "missing".into(),
            });
        };
        let include = entry.search.and_then(|s| s.mode).as_deref() == Some("include");
        let resource = parse_resource(value).map_err(|e| match e {
            Error::FhirResponse {
                resource,
                field,
                reason,
            } => Error::FhirResponse {
                resource: format!("{resource} (entry[{i}] of {what})"),
                field,
                reason,
            },
            other => other,
        })?;
        if include {
            match resource {
                Resource::Practitioner(p) => {
                    if let Some(id) = &p.id {
                        page.included
                            .practitioners
                            .insert(format!("Practitioner/{id}"), p);
                    }
                }
                Resource::Organization(o) => {
                    if let Some(id) = &o.id {
                        page.included
                            .organizations
                            .insert(format!("Organization/{id}"), o);
                    }
                }
                _ => {}
            }
        } else {
            page.matches.push(resource);
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 22 Nov 2026 08:00:00 GMT").unwrap();
        let read = |v: &str| retry_after(v, now);
        assert_eq!(read(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(read("0"), Some(Duration::ZERO));
        assert_eq!(
            read("Sun, 22 Nov 2026 08:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        // the obsolete forms RFC 9110 asks recipients to accept
        assert_eq!(
            read("Sunday, 22-Nov-26 08:01:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            read("Sun Nov 22 08:00:05 2026"),
            Some(Duration::from_secs(5))
        );
        // past: at once; too large: as long as can be (the caller's cap refuses it)
        assert_eq!(read("Sat, 21 Nov 2026 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(
            read("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "Sun, 32 Nov 2026 08:00:00 GMT"] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }

    proptest! {
        /// Any header text: a wait or nothing, never a panic; seconds read back exactly.
        #[test]
        fn retry_after_never_panics(v in "\\PC{0,40}", n in any::<u32>()) {
            let now = SystemTime::now();
            let _ = retry_after(&v, now);
            prop_assert_eq!(retry_after(&n.to_string(), now), Some(Duration::from_secs(n.into())));
        }
    }
}
