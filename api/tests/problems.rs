//! Error answers that need no outside server: their status, `Retry-After` and `WWW-Authenticate`.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mss_api::{AppState, SendConfig};
use tower::ServiceExt;

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap) {
    let resp = app.clone().oneshot(req).await.expect("response");
    (resp.status(), resp.headers().clone())
}

#[tokio::test]
async fn while_the_index_loads_the_directory_answers_503_with_retry_after() {
    let (app, _clients) = common::keyed_router(AppState::new());
    for path in ["/v1/directory/search?q=martin", "/readyz"] {
        let (status, headers) =
            call(&app, Request::get(path).body(Body::empty()).expect("req")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(headers[header::RETRY_AFTER], "10", "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    }
}

#[tokio::test]
async fn not_configured_is_503_without_retry_after_and_no_token_is_401_with_a_challenge() {
    let state = AppState::new();
    let (app, _clients) = common::keyed_router(state.clone());
    let send = || {
        Request::post("/v1/messages/send")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"sender":{"address":"alice@sante.test","type":"PER","first_name":"Alice","last_name":"Martin"},"recipients":{"to":["bob@sante.test"]},"subject":"s","body":{"text":"t"}}"#,
            ))
            .expect("req")
    };
    let (status, headers) = call(&app, send()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get(header::RETRY_AFTER).is_none());
    // the body was read to its end: the connection may carry the next request
    assert!(headers.get(header::CONNECTION).is_none());

    let tls = mss_lps::TlsSettings::new(mss_lps::TrustRoots::system().expect("roots"), None)
        .expect("tls");
    let mut config = SendConfig::new("NIL-MSS-TEST", tls).expect("config");
    // sante.test is inside the espace de confiance through a whitelist (docs/mssante.md M8)
    config.compose.trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
    state.set_sending(config);
    let (status, headers) = call(&app, send()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert!(headers.get(header::RETRY_AFTER).is_none());
    assert!(headers.get(header::CONNECTION).is_none());
}

/// An answer given before the request's body was read to its end (here the access guard's) says
/// `Connection: close`: the server drops that connection, so a client must not send another request on it.
#[tokio::test]
async fn an_answer_given_before_the_body_is_read_closes_the_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (clients, _key) = mss_testing::access::every_scope(dir.path());
    let config = mss_api::ApiConfig {
        access: mss_api::AccessConfig {
            clients: Some(clients),
            ..mss_api::AccessConfig::default()
        },
        ..mss_api::ApiConfig::default()
    };
    let app = mss_api::router(AppState::new(), &config);
    let batch = |body: Vec<u8>| {
        Request::post("/v1/batches")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("req")
    };
    let (status, headers) = call(&app, batch(vec![b' '; 1 << 20])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::CONNECTION], "close");
    // no body, nothing left unread
    let (status, headers) = call(
        &app,
        Request::get("/v1/batches/b")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::CONNECTION).is_none());
}
