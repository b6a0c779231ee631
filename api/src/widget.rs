//! The address-autocomplete widget: a demo page at `/` and the files a vendor embeds (plain JS custom
//! element and its CSS; no build step, no CDN).

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

const INDEX_HTML: &str = include_str!("../static/index.html");
const WIDGET_JS: &str = include_str!("../static/mss-autocomplete.js");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    INDEX_HTML,
                )
            }),
        )
        .route("/widget/mss-autocomplete.js", get(|| async { js() }))
}

fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
}
