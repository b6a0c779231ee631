//! Prometheus metrics: request counts and latency histograms per route, index size.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

/// Content type of the OpenMetrics text exposition (read by Prometheus).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// The service's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    index_entries: Gauge,
    index_bytes: Gauge,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s: directory answers take well under a millisecond, so the low buckets matter
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let index_entries = Gauge::default();
        let index_bytes = Gauge::default();
        registry.register(
            "mss_http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "mss_http_request_duration_seconds",
            "Time to answer HTTP requests, by route",
            latency.clone(),
        );
        registry.register(
            "mss_index_entries",
            "Mailboxes in the directory index",
            index_entries.clone(),
        );
        registry.register(
            "mss_index_size_bytes",
            "Size of the directory index on disk",
            index_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            index_entries,
            index_bytes,
        }
    }
}

impl Metrics {
    /// The text exposition, with the index gauges read now.
    pub fn render(&self, index_entries: u64, index_bytes: u64) -> String {
        self.index_entries
            .set(i64::try_from(index_entries).unwrap_or(i64::MAX));
        self.index_bytes
            .set(i64::try_from(index_bytes).unwrap_or(i64::MAX));
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
    }
}

/// Middleware counting and timing every request under its route template (never the raw path, which would
/// make one series per address).
pub async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    state.metrics.observe(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
