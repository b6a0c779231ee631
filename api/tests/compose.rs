//! `POST /v1/messages/compose`: the example request gives a message with the Ségur headers; bad input is
//! problem+json naming the field.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use mss_api::{AppState, SendConfig};
use tower::ServiceExt;

fn compose_request(body: Body) -> Request<Body> {
    Request::post("/v1/messages/compose")
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

async fn post(router: axum::Router, body: String) -> (StatusCode, String, String) {
    let response = router
        .oneshot(compose_request(Body::from(body)))
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
    let (router, _clients) = common::keyed_router(state.clone());
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

/// Issue 17: nothing leaves the espace de confiance (docs/mssante.md M8), whitelist installed or not.
#[tokio::test]
async fn compose_and_send_refuse_an_address_outside_the_espace_de_confiance() {
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/compose/cda-to-professional.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let trust = mss_message::Trust::installed(data.path()).unwrap();
    let state = AppState::new();
    let tls = mss_lps::TlsSettings::new(mss_lps::TrustRoots::system().unwrap(), None).unwrap();
    let mut config = SendConfig::new("DEV935997", tls).unwrap();
    config.compose.trust = trust.clone();
    state.set_sending(config);
    let (router, _clients) = common::keyed_router(state);
    let refused = |to: &str| {
        let mut req = example.clone();
        req["recipients"]["to"][0] = to.into();
        let router = router.clone();
        async move {
            let mut out = Vec::new();
            for route in ["/v1/messages/compose", "/v1/messages/send"] {
                let response = router
                    .clone()
                    .oneshot(
                        Request::post(route)
                            .header("content-type", "application/json")
                            .header("authorization", "Bearer not-checked-before-the-rule")
                            .body(Body::from(req.to_string()))
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = response.status();
                let bytes = to_bytes(response.into_body(), 1 << 26).await.unwrap();
                let p: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                out.push((
                    status,
                    p["invalid-params"][0]["name"].clone(),
                    p.to_string(),
                ));
            }
            out
        }
    };
    // no whitelist installed: mssante.fr and its sub-domains only
    for to in [
        "x@gmail.com",
        "x@evilmssante.fr",
        "x@mssante.fr.example.com",
        "x@sante.test",
    ] {
        for (status, field, p) in refused(to).await {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{to}: {p}");
            assert_eq!(field, "recipients.to[0]", "{p}");
            assert!(p.contains(to) && p.contains("mss whitelist update"), "{p}");
        }
    }
    let (status, _, p) = &refused("x@chu-exemple.mssante.fr").await[0];
    assert_eq!(*status, StatusCode::OK, "{p}");

    // a whitelist installed while serving: its domains only, once refreshed
    mss_testing::install_whitelist(
        data.path(),
        &["sante.test", "chu-exemple.mssante.fr", "medecin.mssante.fr"],
    );
    assert!(trust.refresh().unwrap());
    let (status, _, p) = &refused("x@sante.test").await[0];
    assert_eq!(*status, StatusCode::OK, "{p}");
    for to in ["x@gmail.com", "x@other.mssante.fr"] {
        for (status, field, p) in refused(to).await {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{to}: {p}");
            assert_eq!(field, "recipients.to[0]", "{p}");
            assert!(p.contains("is not in the MSSanté whitelist"), "{p}");
        }
    }
}

/// `POST /v1/messages/check` (docs/mssante.md K1): what the service composes is conformant; a message
/// without X-MSS-NIL is not, and the finding names the rule; anything but `message/rfc822` is 415.
#[tokio::test]
async fn check_answers_the_findings_of_a_message() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/compose/cda-to-professional.json"
    ))
    .unwrap();
    let state = AppState::new();
    let tls = mss_lps::TlsSettings::new(mss_lps::TrustRoots::system().unwrap(), None).unwrap();
    state.set_sending(SendConfig::new("DEV935997", tls).unwrap());
    let (router, _clients) = common::keyed_router(state);
    let (status, _, message) = post(router.clone(), example).await;
    assert_eq!(status, StatusCode::OK, "{message}");

    let check = |body: String, ct: &'static str| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(
                    Request::post("/v1/messages/check")
                        .header("content-type", ct)
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            )
        }
    };
    let (status, v) = check(message.clone(), "message/rfc822").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"conformant": true, "errors": 0, "warnings": 0, "findings": []})
    );

    let broken = message.replacen("X-MSS-NIL: DEV935997\r\n", "", 1);
    let (status, v) = check(broken, "message/rfc822").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["conformant"], false);
    assert_eq!(v["errors"], 1);
    assert_eq!(v["findings"][0]["rule"], "ECO.2.4.3");
    assert_eq!(v["findings"][0]["severity"], "error");
    assert_eq!(v["findings"][0]["where"], "header X-MSS-NIL");

    let (status, v) = check(message, "application/json").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
}

/// A compose request carrying a few MB of documents is read (axum's own 2 MiB default does not apply);
/// one over 64 MiB is 413 problem+json naming the limit, with `Connection: close` since its rest is never
/// read, whether its length is declared or not.
#[tokio::test]
async fn large_compose_requests_are_read_up_to_64_mib_and_refused_above_with_the_connection_closed()
{
    use base64::Engine as _;
    let mut request: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/compose/cda-to-professional.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let pdf: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..3_000_000u32).map(|i| (i % 251) as u8))
        .collect();
    request["attachments"] = serde_json::json!([{
        "filename": "imagerie.pdf",
        "content_type": "application/pdf",
        "content": {"base64": base64::engine::general_purpose::STANDARD.encode(&pdf)}
    }]);
    let body = request.to_string();
    assert!(body.len() > 4_000_000, "over axum's 2 MiB default");
    let state = AppState::new();
    let tls = mss_lps::TlsSettings::new(mss_lps::TrustRoots::system().unwrap(), None).unwrap();
    state.set_sending(SendConfig::new("DEV935997", tls).unwrap());
    let (router, _clients) = common::keyed_router(state);
    let response = router
        .clone()
        .oneshot(compose_request(Body::from(body)))
        .await
        .unwrap();
    // read to its end: the connection stays open
    assert!(response.headers().get("connection").is_none());
    let (status, ct) = (
        response.status(),
        response.headers()["content-type"].clone(),
    );
    let message = String::from_utf8(
        to_bytes(response.into_body(), 1 << 26)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(
        (status, ct.to_str().unwrap()),
        (StatusCode::OK, "message/rfc822"),
        "{message}"
    );
    assert!(
        message.contains("filename=\"imagerie.pdf\""),
        "the attachment is in the message"
    );

    let refused = |response: axum::response::Response| async move {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let p: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{p}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(headers["connection"], "close");
        assert_eq!(
            p["detail"],
            "the body is larger than this route's limit of 67108864 bytes"
        );
    };
    // declared: refused before a byte is read
    let mut declared = compose_request(Body::from("{}"));
    declared
        .headers_mut()
        .insert("content-length", ((64u64 << 20) + 1).into());
    let declared = router.clone().oneshot(declared).await.unwrap();
    refused(declared).await;
    // undeclared (chunked): refused once the limit is passed, the rest left unread
    let streamed = router
        .oneshot(compose_request(Body::new(Spaces { chunks: 65 })))
        .await
        .unwrap();
    refused(streamed).await;
}

/// A request body sent in 1 MiB chunks of spaces, without a declared length.
struct Spaces {
    chunks: usize,
}

impl http_body::Body for Spaces {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.chunks == 0 {
            return std::task::Poll::Ready(None);
        }
        self.chunks -= 1;
        let chunk = axum::body::Bytes::from(vec![b' '; 1 << 20]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }
}
