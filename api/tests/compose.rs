//! `POST /v1/messages/compose`: the example request gives a message with the Ségur headers; bad input is
//! problem+json naming the field.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use mss_api::{ApiConfig, AppState, SendConfig};
use tower::ServiceExt;

async fn post(router: axum::Router, body: String) -> (StatusCode, String, String) {
    let response = router
        .oneshot(
            Request::post("/v1/messages/compose")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let ct = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = to_bytes(response.into_body(), 1 << 26).await.unwrap();
    (status, ct, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn compose_returns_the_message() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/compose/cda-to-professional.json"
    ))
    .unwrap();
    let state = AppState::new();
    let router = mss_api::router(state.clone(), &ApiConfig::default());
    let (status, ct, body) = post(router.clone(), example.clone()).await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "application/problem+json"),
        "{body}"
    );

    let tls = mss_lps::TlsSettings::new(mss_lps::TrustRoots::system().unwrap(), None).unwrap();
    state.set_sending(SendConfig::new("DEV935997", tls).unwrap());
    let (status, ct, body) = post(router.clone(), example.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ct, "message/rfc822");
    assert!(body.contains("\r\nX-MSS-NIL: DEV935997\r\n"), "{body}");
    assert!(body.contains("X-MSS-INS: O"));

    let mut bad: serde_json::Value = serde_json::from_str(&example).unwrap();
    bad["recipients"]["to"][0] = "not an address".into();
    let (status, ct, body) = post(router, bad.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(ct, "application/problem+json");
    let p: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["invalid-params"][0]["name"], "recipients.to[0]", "{p}");
}
