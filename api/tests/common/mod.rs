//! The service with a client holding every scope, whose key every request carries: for the tests of
//! routes whose subject is not access control (that is tests/access.rs).

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use mss_api::{AccessConfig, ApiConfig, AppState};
use tower_http::set_header::SetRequestHeaderLayer;

/// The router over `state` and its clients file's directory (kept alive with it).
pub fn keyed_router(state: Arc<AppState>) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (clients, key) = mss_testing::access::every_scope(dir.path());
    let config = ApiConfig {
        access: AccessConfig {
            clients: Some(clients),
            ..AccessConfig::default()
        },
        ..ApiConfig::default()
    };
    let router = mss_api::router(state, &config).layer(SetRequestHeaderLayer::if_not_present(
        HeaderName::from_static(mss_api::API_KEY_HEADER),
        HeaderValue::from_str(&key).expect("a key is a header value"),
    ));
    (router, dir)
}
