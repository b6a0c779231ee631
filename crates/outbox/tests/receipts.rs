//! Reports recorded into the store: a DSN as Postfix writes it (one recipient delivered, one failed) and the
//! MDN `mss-message` builds; reading the same report again changes nothing. The reader against the real
//! operator (Postfix's DSNs over IMAP) is tested end to end in the root crate (`tests/batch.rs`).

mod common;

use common::{msg, sqlite_store};
use mss_outbox::receipts::{ReceiptsReport, record};
use mss_outbox::{Outcome, State, Store};

/// A DSN in Postfix's layout: notification, delivery-status (envelope id = the Message-ID), headers.
fn postfix_dsn(envid: &str, delivered: &str, failed: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mail.sante.test (Mail Delivery System)\r\n\
Subject: Delivery Status Notification\r\nTo: alice@sante.test\r\nAuto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\
\tboundary=\"B1.1/mail.sante.test\"\r\nMessage-Id: <20261123.B1@mail.sante.test>\r\n\r\n\
This is a MIME-encapsulated message.\r\n\r\n--B1.1/mail.sante.test\r\n\
Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
This is the mail system at host mail.sante.test.\r\n\r\n--B1.1/mail.sante.test\r\n\
Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mail.sante.test\r\nX-Postfix-Queue-ID: B1\r\n\
X-Postfix-Sender: rfc822; alice@sante.test\r\nArrival-Date: Mon, 23 Nov 2026 17:00:00 +0000 (UTC)\r\n\
Original-Envelope-Id: {envid}\r\n\r\n\
Final-Recipient: rfc822; {delivered}\r\nOriginal-Recipient: rfc822;{delivered}\r\nAction: delivered\r\n\
Status: 2.0.0\r\nRemote-MTA: dns; 127.0.0.1\r\nDiagnostic-Code: smtp; 250 2.0.0 <{delivered}> Saved\r\n\r\n\
Final-Recipient: rfc822; {failed}\r\nOriginal-Recipient: rfc822;{failed}\r\nAction: failed\r\n\
Status: 5.1.1\r\nDiagnostic-Code: X-Postfix; mailbox unknown\r\n\r\n\
--B1.1/mail.sante.test\r\nContent-Description: Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n\
From: alice@sante.test\r\nSubject: k\r\n\r\n--B1.1/mail.sante.test--\r\n"
    )
    .into_bytes()
}

async fn sent(store: &dyn Store, key: &str, to: &[&str]) -> i64 {
    let acc = store
        .enqueue(None, None, vec![msg(key, "alice@sante.test", to)])
        .await
        .expect("enqueue");
    let leased = store
        .lease("w", None, 10, std::time::Duration::from_secs(60))
        .await
        .expect("lease");
    let outcomes: Vec<_> = leased
        .iter()
        .flat_map(|m| &m.recipients)
        .map(|r| {
            (
                r.id,
                Outcome::Sent {
                    reply: "250 ok".into(),
                },
            )
        })
        .collect();
    store.record("w", &outcomes).await.expect("record");
    acc[0].key()
}

#[tokio::test]
async fn a_postfix_dsn_moves_each_recipient_and_counts_once() {
    let (store, _dir) = sqlite_store();
    let key = sent(
        store.as_ref(),
        "k",
        &["bob@sante.test", "unknown@sante.test"],
    )
    .await;
    let dsn = postfix_dsn("<k@mss.test>", "bob@sante.test", "unknown@sante.test");
    let r = record(store.as_ref(), &dsn).await.expect("record");
    assert_eq!(
        r,
        ReceiptsReport {
            reports: 1,
            delivered: 1,
            failed: 1,
            ..ReceiptsReport::default()
        }
    );
    let st = store.message(key).await.expect("status").expect("known");
    assert_eq!(st.recipients[0].state, State::Delivered);
    assert_eq!(
        st.recipients[0].reason.as_deref(),
        Some("DSN delivered 2.0.0 by mail.sante.test: smtp; 250 2.0.0 <bob@sante.test> Saved")
    );
    assert_eq!(st.recipients[1].state, State::Failed);
    assert_eq!(
        st.recipients[1].reason.as_deref(),
        Some("DSN failed 5.1.1 by mail.sante.test: X-Postfix; mailbox unknown")
    );
    // the same report read again (a reader killed before moving its mark) changes and counts nothing
    let again = record(store.as_ref(), &dsn).await.expect("again");
    assert_eq!((again.delivered, again.failed, again.unchanged), (0, 0, 2));
}

#[tokio::test]
async fn an_mdn_built_by_mss_message_marks_its_recipient_read_and_an_error_mdn_failed() {
    let (store, _dir) = sqlite_store();
    let key = sent(store.as_ref(), "m", &["bob@sante.test", "carol@sante.test"]).await;
    // what bob and carol received (the outbox's bytes, with a read receipt asked)
    let mut original = msg("m", "alice@sante.test", &["bob@sante.test"]).content;
    original.splice(
        0..0,
        b"Disposition-Notification-To: alice@sante.test\r\n"
            .iter()
            .copied(),
    );
    let received = mss_message::read_message(&original).expect("read");
    let mdn = |who: &str, disposition| {
        mss_message::mdn::build_mdn(
            &received,
            &mss_message::mdn::MdnRequest {
                final_recipient: who.to_owned(),
                label: None,
                disposition,
            },
            &mss_message::ComposeConfig::new("MSS-TEST-NIL"),
            &mut mss_message::Env::system(),
        )
        .expect("mdn")
        .raw
    };
    let r = record(
        store.as_ref(),
        &mdn(
            "bob@sante.test",
            mss_message::mdn::MdnDisposition::Displayed,
        ),
    )
    .await
    .expect("record");
    assert_eq!((r.reports, r.read), (1, 1));
    let r = record(
        store.as_ref(),
        &mdn(
            "carol@sante.test",
            mss_message::mdn::MdnDisposition::Error {
                code: "902".into(),
                label: "Identifiant de patient inconnu".into(),
            },
        ),
    )
    .await
    .expect("record");
    assert_eq!((r.reports, r.failed), (1, 1));
    // a late DSN does not take bob back from read
    let late = record(
        store.as_ref(),
        &postfix_dsn("<m@mss.test>", "bob@sante.test", "nobody@sante.test"),
    )
    .await
    .expect("late");
    assert_eq!((late.delivered, late.unchanged), (0, 2));
    let st = store.message(key).await.expect("status").expect("known");
    assert_eq!(st.recipients[0].state, State::Read);
    assert_eq!(
        st.recipients[0].reason.as_deref(),
        Some("MDN displayed by bob@sante.test (manual-action)")
    );
    assert_eq!(st.recipients[1].state, State::Failed);
    assert_eq!(
        st.recipients[1].reason.as_deref(),
        Some("MDN processed error 902: Identifiant de patient inconnu (carol@sante.test)")
    );
}

#[tokio::test]
async fn a_message_that_is_no_report_is_left_alone() {
    let (store, _dir) = sqlite_store();
    sent(store.as_ref(), "n", &["bob@sante.test"]).await;
    let letter = msg("x", "bob@sante.test", &["alice@sante.test"]).content;
    let r = record(store.as_ref(), &letter).await.expect("record");
    assert_eq!(r, ReceiptsReport::default());
    let r = record(store.as_ref(), b"\x00\xff not a message")
        .await
        .expect("record");
    assert_eq!(r, ReceiptsReport::default());
    assert_eq!(store.counts(None).await.expect("counts").sent, 1);
}
