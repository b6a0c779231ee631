//! The HL7 exchanges of the store, one behaviour on both backends (docs/mssante.md H1, H2): the log of
//! what the DPI sent and was answered, the business acks queued once per recipient and kind as receipts
//! come back, and their answers (AA done, AE refused, AR again later).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[macro_use]
mod common;

use std::sync::Arc;

use mss_outbox::exchanges::{
    Answer, BusinessAckKind, Direction, ExchangeState, Link, NewExchange, Requester,
};
use mss_outbox::{State, Store};

suite!(
    business_acks_are_queued_once_as_receipts_come_and_answered,
    exchanges_of_inbox_messages_are_logged_apart,
);

// the watch window reads the time: a clock of the test's own
mod clocked {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let clock = mss_outbox::ManualClock::new();
        let (store, _dir) = super::common::sqlite_store_with(&clock);
        super::receipts_after_the_watch_call_for_no_ack(store, &clock).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let clock = mss_outbox::ManualClock::new();
        let Some((store, _url)) = super::common::pg_store_with(&clock).await else {
            return;
        };
        super::receipts_after_the_watch_call_for_no_ack(store, &clock).await;
    }
}

async fn receipts_after_the_watch_call_for_no_ack(
    s: Arc<dyn Store>,
    clock: &mss_outbox::ManualClock,
) {
    let key = s
        .enqueue_logged(
            Some("hl7:pfi"),
            None,
            vec![common::msg("late", SENDER, &[A, B])],
            vec![received(0, "LATE", true, true)],
        )
        .await
        .unwrap()[0]
        .key();
    s.receipt(
        "<late@mss.test>",
        Some(A),
        State::Delivered,
        "DSN delivered 2.0.0",
    )
    .await
    .unwrap();
    clock.advance(std::time::Duration::from_millis(
        u64::try_from(mss_outbox::exchanges::WATCH_MS).unwrap() - 1000,
    ));
    s.receipt(
        "<late@mss.test>",
        Some(B),
        State::Delivered,
        "DSN delivered 2.0.0",
    )
    .await
    .unwrap();
    // both within the watch (planned at its very end)
    assert_eq!(s.plan_business_acks().await.unwrap(), 2);
    clock.advance(std::time::Duration::from_secs(2));
    s.receipt(
        "<late@mss.test>",
        Some(A),
        State::Read,
        "MDN displayed by a (manual)",
    )
    .await
    .unwrap();
    assert_eq!(s.plan_business_acks().await.unwrap(), 0, "past the watch");
    assert_eq!(s.exchanges(Link::Message(key)).await.unwrap().len(), 3);
}

const SENDER: &str = "pfi@hopital.mssante.fr";
const A: &str = "a@medecin.mssante.fr";
const B: &str = "b@medecin.mssante.fr";

fn received(key: i64, control_id: &str, delivery: bool, reading: bool) -> NewExchange {
    NewExchange {
        link: Link::Message(key),
        direction: Direction::Received,
        kind: "MDM^T02".into(),
        control_id: control_id.into(),
        answer: Answer {
            ack: "AA".into(),
            ..Answer::default()
        },
        origin: Some(Requester {
            application: "DPI".into(),
            facility: "CH-X".into(),
            processing: "P".into(),
            charset: "UNICODE UTF-8".into(),
            delivery,
            reading,
        }),
    }
}

async fn business_acks_are_queued_once_as_receipts_come_and_answered(s: Arc<dyn Store>) {
    // the listener's one commit: the message and the DPI's MDM that asked for it
    let accept = || {
        s.enqueue_logged(
            Some("hl7:pfi"),
            None,
            vec![common::msg("hl7-1", SENDER, &[A, B])],
            vec![received(0, "MSG-1", true, true)],
        )
    };
    let key = accept().await.unwrap()[0].key();
    // a message asking nothing back, received and answered: logged, no ack planned for it
    let quiet = s
        .enqueue(None, None, vec![common::msg("hl7-2", SENDER, &[A])])
        .await
        .unwrap()[0]
        .key();
    s.log_exchanges(&[received(quiet, "MSG-2", false, false)])
        .await
        .unwrap();
    // the DPI sent it again after a lost ACK: nothing queued again, logged again, still one origin
    assert_eq!(
        accept().await.unwrap(),
        [mss_outbox::Accepted::Existing(key)]
    );
    assert_eq!(s.plan_business_acks().await.unwrap(), 0, "no receipt yet");

    // A delivered, B refused by its server; the quiet message delivered too
    let id = "<hl7-1@mss.test>";
    assert_eq!(
        s.receipt(
            id,
            Some(A),
            State::Delivered,
            "DSN delivered 2.0.0 by mx.x.fr"
        )
        .await
        .unwrap(),
        1
    );
    s.receipt(
        id,
        Some(B),
        State::Failed,
        "DSN failed 5.1.1 by mx.x.fr: smtp; 550 5.1.1 <b@medecin.mssante.fr>: unknown",
    )
    .await
    .unwrap();
    s.receipt(
        "<hl7-2@mss.test>",
        None,
        State::Delivered,
        "DSN delivered 2.0.0",
    )
    .await
    .unwrap();
    assert_eq!(s.plan_business_acks().await.unwrap(), 2);
    assert_eq!(s.plan_business_acks().await.unwrap(), 0, "once only");
    // A reads it: its reading ack
    s.receipt(
        id,
        Some(A),
        State::Read,
        "MDN displayed by a@medecin.mssante.fr (manual)",
    )
    .await
    .unwrap();
    assert_eq!(s.plan_business_acks().await.unwrap(), 1);
    assert_eq!(s.plan_business_acks().await.unwrap(), 0);
    assert_eq!(
        ack_loads(&s).await,
        ["ZAM^Z02 pending 2", "ZAM^Z03 pending 1"]
    );

    let due = s.due_business_acks(None, 10).await.unwrap();
    assert_eq!(due.len(), 3);
    let kinds: Vec<_> = due
        .iter()
        .map(|z| (z.report.kind, z.recipient.as_str(), z.report.ok))
        .collect();
    assert_eq!(
        kinds,
        [
            (BusinessAckKind::Delivery, A, true),
            (BusinessAckKind::Delivery, B, false),
            (BusinessAckKind::Reading, A, true),
        ]
    );
    for z in &due {
        assert_eq!(z.message, key);
        assert_eq!(z.refers_to, "MSG-1");
        assert_eq!(z.origin.application, "DPI");
        assert_eq!(z.origin.facility, "CH-X");
        assert_eq!(z.origin.processing, "P");
        assert_eq!(z.origin.charset, "UNICODE UTF-8");
        assert_eq!(z.control_id, format!("MSSZ{}", z.id));
        assert_eq!(z.attempts, 0);
    }
    assert_eq!(
        due[1].report.error.as_ref().map(|e| e.0.as_str()),
        Some("550")
    );

    // the DPI: AA for the first, AE for the second, AR for the third (again at +60 s), then down
    let now = s.now_ms();
    let answer = |ack: &str| Answer {
        ack: ack.into(),
        error_code: (ack != "AA").then(|| "207".into()),
        error_label: (ack != "AA").then(|| "Application error".into()),
    };
    s.business_ack_answered(due[0].id, &answer("AA"), now + 60_000)
        .await
        .unwrap();
    s.business_ack_answered(due[1].id, &answer("AE"), now + 60_000)
        .await
        .unwrap();
    s.business_ack_answered(due[2].id, &answer("AR"), now + 60_000)
        .await
        .unwrap();
    assert!(s.due_business_acks(Some(now), 10).await.unwrap().is_empty());
    let again = s.due_business_acks(Some(now + 60_000), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, due[2].id);
    assert_eq!(again[0].attempts, 1);
    s.business_ack_unanswered(
        again[0].id,
        "127.0.0.1:9: connection refused",
        now + 120_000,
    )
    .await
    .unwrap();
    // an answer to what is no longer pending changes nothing
    s.business_ack_answered(due[0].id, &answer("AE"), now)
        .await
        .unwrap();
    // what the console and the metrics show: the one the DPI refused, the one still to go and why
    assert_eq!(
        ack_loads(&s).await,
        [
            "ZAM^Z02 refused 1: 207 Application error",
            "ZAM^Z03 pending 1: 127.0.0.1:9: connection refused",
        ]
    );

    let log = s.exchanges(Link::Message(key)).await.unwrap();
    let shown: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.direction,
                e.kind.as_str(),
                e.state,
                e.ack.as_deref(),
                e.recipient.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                Direction::Received,
                "MDM^T02",
                ExchangeState::Done,
                Some("AA"),
                None
            ),
            (
                Direction::Received,
                "MDM^T02",
                ExchangeState::Done,
                Some("AA"),
                None
            ),
            (
                Direction::Sent,
                "ZAM^Z02",
                ExchangeState::Done,
                Some("AA"),
                Some(A)
            ),
            (
                Direction::Sent,
                "ZAM^Z02",
                ExchangeState::Refused,
                Some("AE"),
                Some(B)
            ),
            (
                Direction::Sent,
                "ZAM^Z03",
                ExchangeState::Pending,
                Some("AR"),
                Some(A)
            ),
        ]
    );
    assert_eq!(log[0].control_id, "MSG-1");
    assert_eq!(log[3].reported, Some(false));
    assert_eq!(log[3].reported_code.as_deref(), Some("550"));
    assert_eq!(log[3].error_code.as_deref(), Some("207"));
    assert_eq!(log[4].attempts, 2);
    assert_eq!(log[4].due_ms, Some(now + 120_000));
    assert_eq!(
        log[4].last_error.as_deref(),
        Some("127.0.0.1:9: connection refused")
    );
    assert_eq!(s.exchanges(Link::Message(quiet)).await.unwrap().len(), 1);
}

/// The business acks not done, as `type state count: latest trouble`, each of [`SENDER`] and queued
/// before now.
async fn ack_loads(s: &Arc<dyn Store>) -> Vec<String> {
    let now = s.now_ms();
    s.business_ack_loads()
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            assert_eq!(l.sender, SENDER);
            assert!(l.oldest_ms <= now, "{l:?}");
            let trouble = l.latest_error.map(|e| format!(": {e}")).unwrap_or_default();
            format!("{} {} {}{trouble}", l.kind, l.state.as_str(), l.count)
        })
        .collect()
}

async fn exchanges_of_inbox_messages_are_logged_apart(s: Arc<dyn Store>) {
    s.log_exchanges(&[NewExchange {
        link: Link::Inbox(7),
        direction: Direction::Sent,
        kind: "MDM^T02".into(),
        control_id: "MSS7D1".into(),
        answer: Answer {
            ack: "AE".into(),
            error_code: Some("902".into()),
            error_label: Some("Identifiant patient inconnu".into()),
        },
        origin: None,
    }])
    .await
    .unwrap();
    let log = s.exchanges(Link::Inbox(7)).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].direction, Direction::Sent);
    assert_eq!(log[0].error_code.as_deref(), Some("902"));
    assert!(log[0].answered_ms.is_some());
    assert!(s.exchanges(Link::Message(7)).await.unwrap().is_empty());
    assert!(s.exchanges(Link::Inbox(8)).await.unwrap().is_empty());
    assert_eq!(s.plan_business_acks().await.unwrap(), 0);
}
