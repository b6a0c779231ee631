//! The HL7 exchange log in the REST answers (docs/mssante.md H1, H2): `GET /v1/messages/{id}` lists the
//! exchanges of a message the DPI sent (its MDM and mss's answer, each business ack and the DPI's), and
//! `GET /v1/inbox/{id}` those of a received message sent on to the DPI.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mss_api::{AppState, OutboxConfig};
use mss_outbox::exchanges::{Answer, Direction, Link, NewExchange, Requester};
use mss_outbox::{NewMessage, SqliteStore, Store};
use tower::ServiceExt;

const PFI: &str = "pfi@hopital.mssante.fr";

async fn get(app: &axum::Router, path: &str) -> serde_json::Value {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_inbox_entries_show_their_hl7_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join(SqliteStore::FILE_NAME)).unwrap());
    let to = mss_types::MailAddress::parse("adam.hoda@test-ci-sis.mssante.fr").unwrap();
    let raw = format!(
        "From: {PFI}\r\nTo: {to}\r\nSubject: CR\r\nMessage-ID: <hl7-api@mss.test>\r\n\r\nbody\r\n"
    );
    let key = store
        .enqueue(
            Some("hl7:pfi"),
            Some("test"),
            vec![NewMessage {
                idempotency_key: "hl7:RIS/CH/015/ps".into(),
                label: "hl7 MDM^T02 015 from RIS/CH (ps)".into(),
                sender: mss_types::MailAddress::parse(PFI).unwrap(),
                auth_ref: "senders:pfi".into(),
                message_id: "<hl7-api@mss.test>".into(),
                content: raw.into_bytes(),
                recipients: vec![to.clone()],
                dsn: true,
            }],
        )
        .await
        .unwrap()[0]
        .key();
    store
        .log_exchanges(&[NewExchange {
            link: Link::Message(key),
            direction: Direction::Received,
            kind: "MDM^T02".into(),
            control_id: "015".into(),
            answer: Answer {
                ack: "AA".into(),
                ..Answer::default()
            },
            origin: Some(Requester {
                application: "RIS".into(),
                facility: "CH".into(),
                processing: "P".into(),
                charset: "UNICODE UTF-8".into(),
                delivery: true,
                reading: false,
            }),
        }])
        .await
        .unwrap();
    store
        .receipt(
            "<hl7-api@mss.test>",
            None,
            mss_outbox::State::Delivered,
            "DSN delivered 2.0.0",
        )
        .await
        .unwrap();
    assert_eq!(store.plan_business_acks().await.unwrap(), 1);

    // a received message, sent on to the DPI, which answered AE 902
    let received = "From: marie@medecin.mssante.fr\r\nTo: pfi@hopital.mssante.fr\r\nSubject: x\r\n\
                    Message-ID: <in-1@x>\r\n\r\nhello\r\n";
    let kept = store
        .keep(
            PFI,
            "INBOX",
            1,
            1,
            vec![mss_outbox::inbox::Incoming {
                uid: 1,
                message_id: Some("in-1@x".into()),
                raw: received.as_bytes().to_vec(),
                from: Some("marie@medecin.mssante.fr".into()),
                subject: Some("x".into()),
                summary: serde_json::json!({"problems": []}),
            }],
        )
        .await
        .unwrap();
    let mss_outbox::inbox::Kept::New(inbox_id) = kept[0] else {
        panic!("kept {kept:?}")
    };
    store
        .log_exchanges(&[NewExchange {
            link: Link::Inbox(inbox_id),
            direction: Direction::Sent,
            kind: "MDM^T02".into(),
            control_id: format!("MSS{inbox_id}D1"),
            answer: Answer {
                ack: "AE".into(),
                error_code: Some("902".into()),
                error_label: Some("Identifiant patient inconnu".into()),
            },
            origin: None,
        }])
        .await
        .unwrap();

    let state = AppState::new();
    state.set_outbox(OutboxConfig {
        store: store.clone(),
        senders: vec![mss_api::BatchSender {
            name: "pfi".into(),
            address: mss_types::MailAddress::parse(PFI).unwrap(),
            error_mailbox: None,
            label: None,
            credential_files: Vec::new(),
            submission: None,
            imap: None,
            receives: true,
            dpi: true,
        }],
        compose: None,
        trust: mss_testing::trust(mss_testing::TEST_DOMAINS),
        max_body_bytes: 1 << 20,
    });
    let (app, _clients) = common::keyed_router(state);

    let m = get(&app, &format!("/v1/messages/{key}")).await;
    let hl7 = m["hl7"].as_array().unwrap();
    assert_eq!(hl7.len(), 2, "{m}");
    assert_eq!(hl7[0]["direction"], "received");
    assert_eq!(hl7[0]["type"], "MDM^T02");
    assert_eq!(hl7[0]["control_id"], "015");
    assert_eq!(hl7[0]["ack"], "AA");
    assert_eq!(hl7[1]["direction"], "sent");
    assert_eq!(hl7[1]["type"], "ZAM^Z02");
    assert_eq!(hl7[1]["state"], "pending");
    assert_eq!(hl7[1]["recipient"], to.to_string());
    assert_eq!(hl7[1]["reported"], true);
    // never the content: no body, no CDA, no patient
    assert!(!m.to_string().contains("body"), "{m}");

    let e = get(&app, &format!("/v1/inbox/{inbox_id}")).await;
    let hl7 = e["hl7"].as_array().unwrap();
    assert_eq!(hl7.len(), 1, "{e}");
    assert_eq!(hl7[0]["direction"], "sent");
    assert_eq!(hl7[0]["control_id"], format!("MSS{inbox_id}D1"));
    assert_eq!(hl7[0]["ack"], "AE");
    assert_eq!(hl7[0]["error_code"], "902");
    assert_eq!(hl7[0]["error_label"], "Identifiant patient inconnu");

    // the ops console and the metrics: the business ack still to go
    let o = get(&app, "/v1/outbox").await;
    assert_eq!(o["senders"][0]["sender"], PFI, "{o}");
    assert_eq!(o["senders"][0]["dpi"], true);
    let acks = &o["senders"][0]["business_acks"];
    assert_eq!(acks.as_array().unwrap().len(), 1, "{o}");
    assert_eq!(acks[0]["type"], "ZAM^Z02");
    assert_eq!(acks[0]["state"], "pending");
    assert_eq!(acks[0]["count"], 1);
    assert!(acks[0]["latest_error"].is_null(), "not tried yet: {o}");
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let metrics = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for (series, value) in [
        (r#"type="ZAM^Z02",state="pending""#, "1"),
        (r#"type="ZAM^Z02",state="refused""#, "0"),
        (r#"type="ZAM^Z03",state="pending""#, "0"),
        (r#"type="ZAM^Z03",state="refused""#, "0"),
    ] {
        let line = format!("mss_hl7_business_acks{{sender=\"{PFI}\",{series}}} {value}");
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.lines().any(|l| l.starts_with(&format!(
            "mss_hl7_business_ack_oldest_pending_age_seconds{{sender=\"{PFI}\",type=\"ZAM^Z02\"}} "
        ))),
        "{metrics}"
    );
}
