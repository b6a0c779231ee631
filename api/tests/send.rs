//! `POST /v1/messages/send` against the local operator (scripts/lps-operator.sh): a PER sender with a PSC
//! token in the Authorization header, an APP sender with the service's certificate, refusals mapped to
//! HTTP, and the token never echoed.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mss_api::{AppState, SendConfig};
use mss_lps::{ServerSource, Timeouts};
use mss_testing::lps::{TokenKind, next_source, operator};
use tower::ServiceExt;

fn request(sender: &str, kind: &str, to: &str, token: Option<&str>) -> Request<Body> {
    let entity = if kind == "APP" {
        r#","entity":"Laboratoire Test""#
    } else {
        r#","first_name":"Alice","last_name":"Martin""#
    };
    let body = format!(
        r#"{{"sender":{{"address":"{sender}","type":"{kind}"{entity}}},"recipients":{{"to":["{to}"]}},"subject":"Résultat","body":{{"text":"Bonjour,\nvoici le résultat.\n"}},"receipts":{{"dsn":true}}}}"#
    );
    let mut r = Request::post("/v1/messages/send").header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::from(body)).expect("request")
}

/// Composition whose whitelist lists the operator's test domains (docs/mssante.md M8).
fn compose() -> mss_message::ComposeConfig {
    let mut c = mss_message::ComposeConfig::new("NIL-MSS-TEST");
    c.trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
    c
}

async fn call(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn compose_and_send_through_the_senders_operator() {
    let Some(op) = operator() else { return };
    let state = AppState::new();
    let (app, _clients) = common::keyed_router(state.clone());
    let (status, _, _) = call(
        &app,
        request("alice@sante.test", "PER", "bob@sante.test", None),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not configured yet"
    );

    state.set_sending(SendConfig {
        compose: compose(),
        tls: op.tls(),
        app_tls: Some(op.app_tls()),
        servers: ServerSource::Explicit(op.per_endpoints()),
        app_servers: ServerSource::Explicit(op.app_endpoints()),
        timeouts: Timeouts::default(),
        token_policy: op.policy(),
        local_addr: Some(next_source()),
    });

    // PER: the token in the header
    let token = op.psc().token("alice@sante.test", TokenKind::Valid);
    let (status, _, body) = call(
        &app,
        request(
            "alice@sante.test",
            "PER",
            "bob@sante.test",
            Some(token.expose()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        json["accepted"],
        serde_json::json!(["bob@sante.test"]),
        "{body}"
    );
    let id = json["message_id"].as_str().expect("message id").to_owned();
    assert!(!body.contains(token.expose()));

    // APP: the service's certificate
    let (status, _, body) = call(
        &app,
        request("labo@sante.test", "APP", "bob@sante.test", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // no token for a PER sender
    let (status, headers, _) = call(
        &app,
        request("alice@sante.test", "PER", "bob@sante.test", None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");

    // a recipient outside the test operator's trust space
    let (status, _, body) = call(
        &app,
        request(
            "alice@sante.test",
            "PER",
            "x@elsewhere.test",
            Some(token.expose()),
        ),
    )
    .await;
    if op.delivers() {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }

    // the message arrived, composed (Ségur header) and sent
    if op.delivers() {
        let bob = op.per_client("bob@sante.test");
        let mut found = false;
        for _ in 0..100 {
            let msgs = bob.fetch_new("INBOX", 0).await.expect("fetch");
            if let Some(m) = msgs.iter().find_map(|m| {
                let text =
                    String::from_utf8_lossy(m.body.as_deref().unwrap_or_default()).into_owned();
                text.contains(&id).then_some(text)
            }) {
                assert!(m.contains("X-MSS-NIL: NIL-MSS-TEST"), "{m}");
                found = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(found, "message {id} not delivered");
    }
}

#[tokio::test]
async fn an_expired_token_is_a_401_that_does_not_echo_it() {
    let Some(op) = operator() else { return };
    let state = AppState::new();
    state.set_sending(SendConfig {
        compose: compose(),
        tls: op.tls(),
        app_tls: None,
        servers: ServerSource::Explicit(op.per_endpoints()),
        app_servers: ServerSource::Explicit(op.app_endpoints()),
        timeouts: Timeouts::default(),
        token_policy: op.policy(),
        local_addr: Some(next_source()),
    });
    let (app, _clients) = common::keyed_router(Arc::clone(&state));
    let token = op.psc().token("alice@sante.test", TokenKind::Expired);
    let (status, headers, body) = call(
        &app,
        request(
            "alice@sante.test",
            "PER",
            "bob@sante.test",
            Some(token.expose()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );
    assert!(body.contains("expired"), "{body}");
    for part in token.expose().split('.') {
        assert!(!body.contains(part), "token part echoed: {body}");
    }
    // APP sender without a configured certificate
    let (status, _, _) = call(
        &app,
        request("labo@sante.test", "APP", "bob@sante.test", None),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_unreachable_operator_is_a_503_with_retry_after() {
    // a port nobody listens on: the connection is refused, a transient failure
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let endpoint = mss_lps::Endpoint::new("127.0.0.1", port);
    let tls = mss_lps::TlsSettings::new(mss_lps::TrustRoots::system().expect("roots"), None)
        .expect("tls");
    let state = AppState::new();
    state.set_sending(SendConfig {
        compose: compose(),
        tls,
        app_tls: None,
        servers: ServerSource::Explicit(mss_lps::ServerEndpoints {
            submission: endpoint.clone(),
            imap: endpoint,
        }),
        app_servers: ServerSource::Explicit(mss_lps::ServerEndpoints {
            submission: mss_lps::Endpoint::new("127.0.0.1", port),
            imap: mss_lps::Endpoint::new("127.0.0.1", port),
        }),
        timeouts: Timeouts::default(),
        token_policy: mss_lps::TokenPolicy::default(),
        local_addr: None,
    });
    let (app, _clients) = common::keyed_router(state);
    let (status, headers, body) = call(
        &app,
        request(
            "alice@sante.test",
            "PER",
            "bob@sante.test",
            Some("opaque-token"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "10");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(body.contains(&format!("127.0.0.1:{port}")), "{body}");
    assert!(!body.contains("opaque-token"), "{body}");
}
