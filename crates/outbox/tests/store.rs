//! One behaviour, two backends: every case below runs against the embedded SQLite store and against a real
//! PostgreSQL server started by the test (scripts/postgres.sh).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::msg;
use mss_outbox::supervisor::{self, NameBusy};
use mss_outbox::{Accepted, Clock, Error, ManualClock, NewMessage, Outcome, State, Store};

const LONG: Duration = Duration::from_secs(60);

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let clock = mss_outbox::ManualClock::new();
                    let (store, dir) = super::common::sqlite_store_with(&clock);
                    let path = dir.path().join(mss_outbox::SqliteStore::FILE_NAME);
                    let other_clock = clock.clone();
                    let other = move || -> std::sync::Arc<dyn mss_outbox::Store> {
                        let s = mss_outbox::SqliteStore::open(&path).expect("second handle");
                        std::sync::Arc::new(s.with_clock(std::sync::Arc::new(other_clock.clone())))
                    };
                    super::$case(store, &other, &clock).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let clock = mss_outbox::ManualClock::new();
                    let Some((store, url)) = super::common::pg_store_with(&clock).await else { return };
                    let other_clock = clock.clone();
                    let other = move || -> std::sync::Arc<dyn mss_outbox::Store> {
                        // another pool on the same database, as another machine's worker has
                        let s = tokio::task::block_in_place(|| {
                            tokio::runtime::Handle::current().block_on(mss_outbox::PostgresStore::connect(&url, 4))
                        })
                        .expect("second store");
                        std::sync::Arc::new(s.with_clock(std::sync::Arc::new(other_clock.clone())))
                    };
                    super::$case(store, &other, &clock).await;
                }
            )*
        }
    };
}

suite!(
    accepted_messages_are_leased_with_their_bytes_and_recorded_per_recipient,
    an_idempotency_key_is_stored_once,
    bad_items_are_refused_naming_the_field_and_nothing_is_stored,
    a_lease_is_exclusive_until_it_expires,
    deferred_recipients_wait_for_their_retry_time,
    a_paused_sender_is_not_leased_until_resumed,
    released_recipients_go_back_to_the_queue,
    batches_page_their_items_in_acceptance_order,
    receipts_move_recipients_forward_only,
    the_receipts_cursor_is_kept_per_mailbox,
    concurrent_records_are_each_answered_with_their_own_count,
    a_renewed_lease_is_kept_past_its_first_expiry,
    concurrent_workers_never_lease_the_same_recipient,
    a_worker_name_is_held_by_one_live_process_at_a_time,
    a_batch_and_its_messages_belong_to_the_client_that_created_it,
    another_owner_adds_nothing_to_a_batch,
    two_owners_racing_for_one_batch_id_leave_it_to_one,
    the_overview_shows_loads_rates_batches_and_troubles,
    retry_now_and_cancel_queued_act_on_waiting_or_given_up_recipients_only,
    the_inbox_overview_counts_each_mailbox_by_status,
);

/// Something that opens a second, independent handle on the same store (another process's view).
type Other<'a> = &'a (dyn Fn() -> Arc<dyn Store> + Sync);

async fn accepted_messages_are_leased_with_their_bytes_and_recorded_per_recipient(
    s: Arc<dyn Store>,
    _: Other<'_>,
    _: &ManualClock,
) {
    let m1 = msg(
        "k1",
        "alice@sante.test",
        &["bob@sante.test", "carol@sante.test"],
    );
    let m2 = NewMessage {
        dsn: false,
        ..msg("k2", "alice@sante.test", &["dan@sante.test"])
    };
    let acc = s
        .enqueue(None, None, vec![m1.clone(), m2.clone()])
        .await
        .expect("enqueue");
    assert!(matches!(acc[..], [Accepted::New(_), Accepted::New(_)]));
    let c = s.counts(None).await.expect("counts");
    assert_eq!((c.queued, c.total()), (3, 3));

    let leased = s.lease("w1", None, 10, LONG).await.expect("lease");
    assert_eq!(leased.len(), 2);
    assert_eq!(leased[0].key, acc[0].key());
    assert_eq!(leased[0].content, m1.content);
    assert_eq!(leased[0].message_id, "<k1@mss.test>");
    assert_eq!(leased[0].auth_ref, "token:alice@sante.test");
    // whether to ask for delivery reports is each message's own
    assert_eq!((leased[0].dsn, leased[1].dsn), (true, false));
    let addrs: Vec<&str> = leased[0]
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(addrs, ["bob@sante.test", "carol@sante.test"]);
    assert!(leased[0].recipients.iter().all(|r| r.attempts == 1));
    assert_eq!(s.counts(None).await.expect("counts").sending, 3);

    let [bob, carol] = [&leased[0].recipients[0], &leased[0].recipients[1]];
    let n = s
        .record(
            "w1",
            &[
                (
                    bob.id,
                    Outcome::Sent {
                        reply: "250 2.0.0 Ok: queued as 4AbC".into(),
                    },
                ),
                (
                    carol.id,
                    Outcome::Failed {
                        reason: "550 5.1.1 <carol@sante.test>: Recipient address rejected".into(),
                    },
                ),
            ],
        )
        .await
        .expect("record");
    assert_eq!(n, 2);
    let st = s
        .message(acc[0].key())
        .await
        .expect("status")
        .expect("known");
    assert_eq!(st.message_id, "<k1@mss.test>");
    assert_eq!(st.label, "k1.eml");
    assert_eq!(st.recipients[0].state, State::Sent);
    assert_eq!(
        st.recipients[0].reply.as_deref(),
        Some("250 2.0.0 Ok: queued as 4AbC")
    );
    assert_eq!(st.recipients[1].state, State::Failed);
    assert_eq!(
        st.recipients[1].reason.as_deref(),
        Some("550 5.1.1 <carol@sante.test>: Recipient address rejected")
    );
    let c = s.counts(None).await.expect("counts");
    assert_eq!((c.sent, c.failed, c.sending), (1, 1, 1));
    assert_eq!(
        s.counts(Some("someone@sante.test"))
            .await
            .expect("counts")
            .total(),
        0
    );
    assert!(s.message(999_999).await.expect("status").is_none());
}

async fn an_idempotency_key_is_stored_once(s: Arc<dyn Store>, _: Other<'_>, _: &ManualClock) {
    let first = s
        .enqueue(
            None,
            None,
            vec![msg("same", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect("enqueue");
    let again = s
        .enqueue(
            None,
            None,
            vec![
                msg("same", "alice@sante.test", &["bob@sante.test"]),
                msg("other", "alice@sante.test", &["bob@sante.test"]),
            ],
        )
        .await
        .expect("enqueue");
    assert_eq!(again[0], Accepted::Existing(first[0].key()));
    assert!(matches!(again[1], Accepted::New(k) if k != first[0].key()));
    assert_eq!(s.counts(None).await.expect("counts").total(), 2);
}

async fn bad_items_are_refused_naming_the_field_and_nothing_is_stored(
    s: Arc<dyn Store>,
    _: Other<'_>,
    _: &ManualClock,
) {
    let good = msg("good", "alice@sante.test", &["bob@sante.test"]);
    let mut no_rcpt = msg("bad", "alice@sante.test", &["bob@sante.test"]);
    no_rcpt.recipients.clear();
    let e = s
        .enqueue(None, None, vec![good.clone(), no_rcpt])
        .await
        .expect_err("refused");
    assert!(e.is_permanent());
    assert_eq!(e.to_string(), "invalid recipients: none");
    let mut bad_key = good.clone();
    bad_key.idempotency_key = "a\nb".into();
    let e = s
        .enqueue(None, None, vec![bad_key])
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "invalid idempotency_key: contains control characters"
    );
    assert_eq!(s.counts(None).await.expect("counts").total(), 0);
}

async fn a_lease_is_exclusive_until_it_expires(
    s: Arc<dyn Store>,
    other: Other<'_>,
    clock: &ManualClock,
) {
    s.enqueue(
        None,
        None,
        vec![msg("k", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    let w2 = other();
    let l1 = s
        .lease("w1", None, 10, Duration::from_millis(400))
        .await
        .expect("lease");
    assert_eq!(l1.len(), 1);
    assert!(
        w2.lease("w2", None, 10, LONG)
            .await
            .expect("lease")
            .is_empty()
    );
    // w1 "dies": its lease expires and w2 takes the recipient over
    clock.advance(Duration::from_millis(600));
    let l2 = w2.lease("w2", None, 10, LONG).await.expect("lease");
    assert_eq!(l2.len(), 1);
    let r = &l2[0].recipients[0];
    assert_eq!(r.attempts, 2);
    // w1 comes back late: its outcome no longer applies
    let late = Outcome::Sent {
        reply: "250 late".into(),
    };
    assert_eq!(s.record("w1", &[(r.id, late)]).await.expect("record"), 0);
    let ok = Outcome::Sent {
        reply: "250 w2".into(),
    };
    assert_eq!(w2.record("w2", &[(r.id, ok)]).await.expect("record"), 1);
    let st = s.message(l2[0].key).await.expect("status").expect("known");
    assert_eq!(st.recipients[0].reply.as_deref(), Some("250 w2"));
}

async fn deferred_recipients_wait_for_their_retry_time(
    s: Arc<dyn Store>,
    _: Other<'_>,
    clock: &ManualClock,
) {
    s.enqueue(
        None,
        None,
        vec![msg("k", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    let l = s.lease("w1", None, 10, LONG).await.expect("lease");
    let id = l[0].recipients[0].id;
    let retry_at = clock.now_ms() + 500;
    let reason = "451 4.3.0 try again later".to_owned();
    s.record(
        "w1",
        &[(
            id,
            Outcome::Deferred {
                retry_at,
                reason: reason.clone(),
            },
        )],
    )
    .await
    .expect("record");
    let st = s.message(l[0].key).await.expect("status").expect("known");
    assert_eq!(st.recipients[0].state, State::Deferred);
    assert_eq!(st.recipients[0].retry_at_ms, Some(retry_at));
    assert_eq!(st.recipients[0].reason.as_deref(), Some(reason.as_str()));
    assert!(
        s.lease("w1", None, 10, LONG)
            .await
            .expect("lease")
            .is_empty()
    );
    clock.advance(Duration::from_millis(700));
    let again = s.lease("w2", None, 10, LONG).await.expect("lease");
    assert_eq!(again[0].recipients[0].id, id);
    assert_eq!(again[0].recipients[0].attempts, 2);
}

async fn a_paused_sender_is_not_leased_until_resumed(
    s: Arc<dyn Store>,
    _: Other<'_>,
    _: &ManualClock,
) {
    let acc = s
        .enqueue(
            None,
            None,
            vec![
                msg("a", "alice@sante.test", &["bob@sante.test"]),
                msg("b", "labo@app.sante.test", &["bob@sante.test"]),
            ],
        )
        .await
        .expect("enqueue");
    let reason = "authentication of alice@sante.test failed: token expired";
    s.pause("alice@sante.test", reason).await.expect("pause");
    let l = s.lease("w", None, 10, LONG).await.expect("lease");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].sender.as_str(), "labo@app.sante.test");
    let st = s
        .message(acc[0].key())
        .await
        .expect("status")
        .expect("known");
    assert_eq!(st.paused.as_deref(), Some(reason));
    let paused = s.paused().await.expect("paused");
    assert_eq!(paused.len(), 1);
    assert_eq!(
        (paused[0].sender.as_str(), paused[0].reason.as_str()),
        ("alice@sante.test", reason)
    );
    assert!(
        s.lease("w", Some("alice@sante.test"), 10, LONG)
            .await
            .expect("lease")
            .is_empty()
    );
    assert!(s.resume("alice@sante.test").await.expect("resume"));
    assert!(!s.resume("alice@sante.test").await.expect("resume"));
    let l = s
        .lease("w", Some("alice@sante.test"), 10, LONG)
        .await
        .expect("lease");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].key, acc[0].key());
}

async fn released_recipients_go_back_to_the_queue(
    s: Arc<dyn Store>,
    other: Other<'_>,
    _: &ManualClock,
) {
    s.enqueue(
        None,
        None,
        vec![msg(
            "k",
            "alice@sante.test",
            &["bob@sante.test", "x@sante.test"],
        )],
    )
    .await
    .expect("enqueue");
    assert_eq!(s.lease("w1", None, 10, LONG).await.expect("lease").len(), 1);
    assert_eq!(s.release("w1").await.expect("release"), 2);
    let c = s.counts(None).await.expect("counts");
    assert_eq!((c.queued, c.sending), (2, 0));
    let l = other().lease("w2", None, 10, LONG).await.expect("lease");
    assert_eq!(l[0].recipients.len(), 2);
    // a release does not count as an attempt
    assert!(l[0].recipients.iter().all(|r| r.attempts == 1));
}

async fn batches_page_their_items_in_acceptance_order(
    s: Arc<dyn Store>,
    _: Other<'_>,
    _: &ManualClock,
) {
    let items: Vec<_> = (0..5)
        .map(|i| {
            msg(
                &format!("b{i}"),
                "alice@sante.test",
                &["bob@sante.test", "carol@sante.test"],
            )
        })
        .collect();
    let acc = s
        .enqueue(Some("batch-1"), None, items)
        .await
        .expect("enqueue");
    s.enqueue(
        None,
        None,
        vec![msg("loose", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    let b = s
        .batch("batch-1", 1, 2)
        .await
        .expect("batch")
        .expect("known");
    assert_eq!(b.id, "batch-1");
    assert_eq!(b.messages, 5);
    assert_eq!((b.counts.queued, b.counts.total()), (10, 10));
    let ids: Vec<_> = b.items.iter().map(|m| m.id).collect();
    assert_eq!(ids, [acc[1].key(), acc[2].key()]);
    assert_eq!(b.items[0].batch.as_deref(), Some("batch-1"));
    assert_eq!(b.items[0].recipients.len(), 2);
    assert_eq!(b.items[0].idempotency_key, "b1");
    let last = s
        .batch("batch-1", 4, 100)
        .await
        .expect("batch")
        .expect("known");
    assert_eq!(last.items.len(), 1);
    assert!(s.batch("nope", 0, 10).await.expect("batch").is_none());
}

async fn receipts_move_recipients_forward_only(s: Arc<dyn Store>, _: Other<'_>, _: &ManualClock) {
    let acc = s
        .enqueue(
            None,
            None,
            vec![msg(
                "r",
                "alice@sante.test",
                &["bob@sante.test", "carol@sante.test"],
            )],
        )
        .await
        .expect("enqueue");
    let l = s.lease("w", None, 10, LONG).await.expect("lease");
    let sent = |r: &mss_outbox::LeasedRecipient| {
        (
            r.id,
            Outcome::Sent {
                reply: "250 ok".into(),
            },
        )
    };
    s.record("w", &[sent(&l[0].recipients[0]), sent(&l[0].recipients[1])])
        .await
        .expect("record");
    let n = s
        .receipt("<r@mss.test>", None, State::Delivered, "2.0.0 delivered")
        .await
        .expect("dsn");
    assert_eq!(n, 2);
    let n = s
        .receipt(
            "<r@mss.test>",
            Some("BOB@sante.test"),
            State::Read,
            "displayed",
        )
        .await
        .expect("mdn");
    assert_eq!(n, 1);
    // a late DSN does not take bob back from read
    let n = s
        .receipt(
            "<r@mss.test>",
            Some("bob@sante.test"),
            State::Delivered,
            "late",
        )
        .await
        .expect("dsn");
    assert_eq!(n, 0);
    let n = s
        .receipt(
            "<r@mss.test>",
            Some("carol@sante.test"),
            State::Failed,
            "5.2.2 mailbox full",
        )
        .await
        .expect("dsn");
    assert_eq!(n, 1);
    let st = s
        .message(acc[0].key())
        .await
        .expect("status")
        .expect("known");
    assert_eq!(st.recipients[0].state, State::Read);
    assert_eq!(st.recipients[0].reason.as_deref(), Some("displayed"));
    assert_eq!(st.recipients[1].state, State::Failed);
    assert_eq!(
        st.recipients[1].reason.as_deref(),
        Some("5.2.2 mailbox full")
    );
    assert!(matches!(
        s.receipt("<r@mss.test>", None, State::Queued, "").await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        s.receipt("<unknown@mss.test>", None, State::Delivered, "")
            .await
            .expect("dsn"),
        0
    );
}

async fn the_receipts_cursor_is_kept_per_mailbox(
    s: Arc<dyn Store>,
    other: Other<'_>,
    _: &ManualClock,
) {
    assert_eq!(
        s.receipt_cursor("alice@sante.test/INBOX")
            .await
            .expect("get"),
        None
    );
    s.set_receipt_cursor("alice@sante.test/INBOX", 1_700_000_000, 42)
        .await
        .expect("set");
    s.set_receipt_cursor("bob@sante.test/INBOX", 7, 3)
        .await
        .expect("set");
    s.set_receipt_cursor("alice@sante.test/INBOX", u32::MAX, u32::MAX)
        .await
        .expect("move");
    // another handle (another process) sees what was committed
    let o = other();
    assert_eq!(
        o.receipt_cursor("alice@sante.test/INBOX")
            .await
            .expect("get"),
        Some((u32::MAX, u32::MAX))
    );
    assert_eq!(
        o.receipt_cursor("bob@sante.test/INBOX").await.expect("get"),
        Some((7, 3))
    );
}

async fn concurrent_records_are_each_answered_with_their_own_count(
    s: Arc<dyn Store>,
    _: Other<'_>,
    _: &ManualClock,
) {
    let items: Vec<_> = (0..40)
        .map(|i| msg(&format!("g{i}"), "alice@sante.test", &["bob@sante.test"]))
        .collect();
    s.enqueue(None, None, items).await.expect("enqueue");
    let leased = s.lease("w", None, 100, LONG).await.expect("lease");
    assert_eq!(leased.len(), 40);
    // 40 callers at once (workers of one process share the store): each commit answers its own caller
    let calls = leased.iter().enumerate().map(|(i, m)| {
        let s = Arc::clone(&s);
        let id = m.recipients[0].id;
        // every fourth one names another worker: not its lease, nothing updated
        let worker = if i % 4 == 0 { "other" } else { "w" };
        tokio::spawn(async move {
            s.record(
                worker,
                &[(
                    id,
                    Outcome::Sent {
                        reply: "250 ok".into(),
                    },
                )],
            )
            .await
            .expect("record")
        })
    });
    let mut answers = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        answers.push(c.await.expect("task"));
    }
    let expected: Vec<u64> = (0..40).map(|i| u64::from(i % 4 != 0)).collect();
    assert_eq!(answers, expected);
    let c = s.counts(None).await.expect("counts");
    assert_eq!((c.sent, c.sending), (30, 10));
}

async fn a_renewed_lease_is_kept_past_its_first_expiry(
    s: Arc<dyn Store>,
    other: Other<'_>,
    clock: &ManualClock,
) {
    s.enqueue(
        None,
        None,
        vec![msg("l", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    let short = Duration::from_secs(2);
    assert_eq!(
        s.lease("w1", None, 10, short).await.expect("lease").len(),
        1
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(s.renew("w1", short).await.expect("renew"), 1);
    clock.advance(Duration::from_millis(1500));
    // past the first expiry, within the renewed one: nobody else takes it
    let o = other();
    assert!(
        o.lease("w2", None, 10, LONG)
            .await
            .expect("lease")
            .is_empty()
    );
    assert_eq!(
        o.renew("w2", LONG).await.expect("renew"),
        0,
        "w2 holds nothing"
    );
    clock.advance(Duration::from_secs(1));
    // not renewed again: it expires and goes to another worker, whose renewal then holds it
    assert_eq!(o.lease("w2", None, 10, LONG).await.expect("lease").len(), 1);
    assert_eq!(s.renew("w1", short).await.expect("renew"), 0, "w1 lost it");
}

async fn a_worker_name_is_held_by_one_live_process_at_a_time(
    s: Arc<dyn Store>,
    other: Other<'_>,
    _: &ManualClock,
) {
    let name = "batch:host:alice@sante.test";
    let held = s.hold_worker_name(name).await.expect("hold").expect("free");
    // another process (another handle: its own file descriptor, its own session) is refused the name...
    let o = other();
    assert!(o.hold_worker_name(name).await.expect("try").is_none());
    match supervisor::hold(o.as_ref(), name, NameBusy::Refuse, || {}).await {
        Err(Error::WorkerNameInUse { name: n }) => assert_eq!(n, name),
        other => panic!("{other:?}"),
    }
    // ...but not another name
    let bob = o
        .hold_worker_name("batch:host:bob@sante.test")
        .await
        .expect("try")
        .expect("another name is free");
    // one that waits gets it when its holder is gone
    let (waiting_tx, waiting_rx) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        supervisor::hold(o.as_ref(), name, NameBusy::Wait, move || {
            let _ = waiting_tx.send(());
        })
        .await
    });
    waiting_rx.await.expect("waits");
    assert!(!waiter.is_finished(), "taken while held");
    drop(held);
    let hold = tokio::time::timeout(LONG, waiter)
        .await
        .expect("the name is freed")
        .expect("task")
        .expect("held");
    assert!(s.hold_worker_name(name).await.expect("try").is_none());
    drop((hold, bob));
    // gone: free again (a PostgreSQL session ends a moment after its socket closes)
    tokio::time::timeout(
        LONG,
        supervisor::hold(s.as_ref(), name, NameBusy::Wait, || {}),
    )
    .await
    .expect("the name is freed")
    .expect("held");
}

async fn concurrent_workers_never_lease_the_same_recipient(
    s: Arc<dyn Store>,
    other: Other<'_>,
    _: &ManualClock,
) {
    let items: Vec<_> = (0..100)
        .map(|i| {
            msg(
                &format!("c{i}"),
                "alice@sante.test",
                &["bob@sante.test", "carol@sante.test"],
            )
        })
        .collect();
    s.enqueue(Some("c"), None, items).await.expect("enqueue");
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = other();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let l = store
                    .lease(&format!("w{w}"), None, 7, LONG)
                    .await
                    .expect("lease");
                if l.is_empty() {
                    break;
                }
                mine.extend(l.iter().flat_map(|m| m.recipients.iter().map(|r| r.id)));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 200, "every recipient leased");
    assert_eq!(unique.len(), 200, "none leased twice");
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_not_acknowledged() {
    // SQLite: the directory does not exist
    let e = mss_outbox::SqliteStore::open(std::path::Path::new("/nonexistent/dir/outbox.sqlite"))
        .expect_err("no store");
    assert!(e.is_transient(), "{e}");
    // PostgreSQL: nobody listens
    let port = mss_testing::free_ports(1, 7);
    let url = format!("postgresql://mss:s3cret-pw@127.0.0.1:{port}/x");
    let e = mss_outbox::PostgresStore::connect(&url, 1)
        .await
        .expect_err("no server");
    assert!(e.is_transient(), "{e}");
    assert!(!e.to_string().contains("s3cret-pw"), "{e}");
}

async fn a_batch_and_its_messages_belong_to_the_client_that_created_it(
    s: Arc<dyn Store>,
    _: Other<'_>,
    _: &ManualClock,
) {
    let owned = s
        .enqueue(
            Some("b-dpi"),
            Some("dpi"),
            vec![msg("o1", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect("enqueue");
    // the owner's later items join its batch
    let more = s
        .enqueue(
            Some("b-dpi"),
            Some("dpi"),
            vec![msg("o2", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect("enqueue");
    let cli = s
        .enqueue(
            Some("b-cli"),
            None,
            vec![msg("c1", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect("enqueue");
    let loose = s
        .enqueue(
            None,
            None,
            vec![msg("l1", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect("enqueue");
    let b = s
        .batch("b-dpi", 0, 10)
        .await
        .expect("batch")
        .expect("known");
    assert_eq!(b.owner.as_deref(), Some("dpi"));
    assert_eq!(b.messages, 2);
    let owners: Vec<_> = b.items.iter().map(|m| m.owner.as_deref()).collect();
    assert_eq!(owners, [Some("dpi"), Some("dpi")]);
    let owner_of = async |key: i64| s.message(key).await.expect("message").expect("known").owner;
    assert_eq!(owner_of(owned[0].key()).await.as_deref(), Some("dpi"));
    assert_eq!(owner_of(more[0].key()).await.as_deref(), Some("dpi"));
    assert_eq!(owner_of(cli[0].key()).await, None);
    assert_eq!(owner_of(loose[0].key()).await, None);
    let b = s
        .batch("b-cli", 0, 10)
        .await
        .expect("batch")
        .expect("known");
    assert_eq!(b.owner, None);
    // the owner is for the service's checks, never in an answer
    let json = serde_json::to_string(&b).expect("json");
    assert!(!json.contains("owner"), "{json}");
    // an owner is a batch's
    let e = s
        .enqueue(
            None,
            Some("dpi"),
            vec![msg("o3", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "invalid owner: an owned message needs a batch"
    );
}

async fn another_owner_adds_nothing_to_a_batch(s: Arc<dyn Store>, _: Other<'_>, _: &ManualClock) {
    s.enqueue(
        Some("b-dpi"),
        Some("dpi"),
        vec![msg("d1", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    s.enqueue(
        Some("b-cli"),
        None,
        vec![msg("c1", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    // another client, the command line on a client's batch, a client on the command line's batch
    for (batch, owner, key) in [
        ("b-dpi", Some("rdv"), "x1"),
        ("b-dpi", None, "x2"),
        ("b-cli", Some("rdv"), "x3"),
    ] {
        let e = s
            .enqueue(
                Some(batch),
                owner,
                vec![
                    msg(&format!("{key}a"), "alice@sante.test", &["bob@sante.test"]),
                    msg(&format!("{key}b"), "alice@sante.test", &["bob@sante.test"]),
                ],
            )
            .await
            .expect_err("another owner's batch");
        assert!(
            matches!(&e, Error::BatchOwner { batch: b } if b == batch),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("the batch \"{batch}\" belongs to another client")
        );
        assert!(e.is_permanent() && !e.is_transient());
    }
    // nothing of theirs was stored: the batches are as they were, the keys still free
    for (batch, owner) in [("b-dpi", Some("dpi")), ("b-cli", None)] {
        let b = s.batch(batch, 0, 10).await.expect("batch").expect("known");
        assert_eq!((b.messages, b.owner.as_deref()), (1, owner));
    }
    assert_eq!(s.counts(None).await.expect("counts").total(), 2);
    let again = s
        .enqueue(
            Some("b-rdv"),
            Some("rdv"),
            vec![msg("x1a", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect("enqueue");
    assert!(matches!(again[..], [Accepted::New(_)]));
}

async fn two_owners_racing_for_one_batch_id_leave_it_to_one(
    s: Arc<dyn Store>,
    other: Other<'_>,
    _: &ManualClock,
) {
    let t = other();
    let items = |owner: &str| -> Vec<NewMessage> {
        (0..20)
            .map(|i| {
                msg(
                    &format!("{owner}{i}"),
                    "alice@sante.test",
                    &["bob@sante.test"],
                )
            })
            .collect()
    };
    let (a, b) = tokio::join!(
        s.enqueue(Some("shared"), Some("dpi"), items("dpi")),
        t.enqueue(Some("shared"), Some("rdv"), items("rdv")),
    );
    let winner = match (&a, &b) {
        (Ok(_), Err(Error::BatchOwner { .. })) => "dpi",
        (Err(Error::BatchOwner { .. }), Ok(_)) => "rdv",
        other => panic!("one owner must win: {other:?}"),
    };
    let batch = s
        .batch("shared", 0, 100)
        .await
        .expect("batch")
        .expect("known");
    assert_eq!(batch.owner.as_deref(), Some(winner));
    assert_eq!(batch.messages, 20);
    assert!(
        batch
            .items
            .iter()
            .all(|m| m.idempotency_key.starts_with(winner))
    );
    assert_eq!(s.counts(None).await.expect("counts").total(), 20);
}

/// A batch of an outbox made before batches had owners is the command line's: it keeps its items and
/// takes more from the command line, not from a client; new batches get their owner.
async fn an_old_batch_is_unowned_and_new_ones_have_owners(s: &dyn Store) {
    let old = s.batch("old", 0, 10).await.expect("batch").expect("known");
    assert_eq!((old.owner, old.messages), (None, 1));
    s.enqueue(
        Some("old"),
        None,
        vec![msg("old2", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("the command line's batch takes more");
    let e = s
        .enqueue(
            Some("old"),
            Some("dpi"),
            vec![msg("old3", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect_err("not a client's");
    assert!(matches!(e, Error::BatchOwner { .. }), "{e:?}");
    s.enqueue(
        Some("new"),
        Some("dpi"),
        vec![msg("new1", "alice@sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    let new = s.batch("new", 0, 10).await.expect("batch").expect("known");
    assert_eq!(new.owner.as_deref(), Some("dpi"));
    let old = s.batch("old", 0, 10).await.expect("batch").expect("known");
    assert_eq!(old.messages, 2);
    let leased = s.lease("w", None, 10, LONG).await.expect("lease");
    assert_eq!(leased.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_from_before_batch_owners_opens_and_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(mss_outbox::SqliteStore::FILE_NAME);
    let old = rusqlite::Connection::open(&path).expect("old file");
    old.execute_batch(
        "CREATE TABLE batches (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);
         CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, batch TEXT REFERENCES batches(id), \
         label TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE, sender TEXT NOT NULL, \
         auth_ref TEXT NOT NULL, message_id TEXT NOT NULL, content BLOB NOT NULL, \
         created_ms INTEGER NOT NULL, dsn INTEGER NOT NULL DEFAULT 1, spool TEXT, spool_offset INTEGER, \
         spool_len INTEGER);
         CREATE TABLE recipients (id INTEGER PRIMARY KEY AUTOINCREMENT, message INTEGER NOT NULL, \
         address TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, \
         due_ms INTEGER NOT NULL, lease_owner TEXT, reason TEXT, reply TEXT, updated_ms INTEGER NOT NULL);
         INSERT INTO batches VALUES ('old', 0);
         INSERT INTO messages (id, batch, label, idempotency_key, sender, auth_ref, message_id, content, \
         created_ms) VALUES (1, 'old', 'old.eml', 'old', 'alice@sante.test', 'token:alice@sante.test', \
         '<old@mss.test>', x'48690d0a', 0);
         INSERT INTO recipients (message, address, state, due_ms, updated_ms) \
         VALUES (1, 'bob@sante.test', 'queued', 0, 0);",
    )
    .expect("old schema");
    drop(old);
    let s = mss_outbox::SqliteStore::open(&path).expect("opened and brought up to date");
    an_old_batch_is_unowned_and_new_ones_have_owners(&s).await;
    mss_outbox::SqliteStore::open(&path).expect("opened again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outbox_from_before_batch_owners_opens_and_keeps_working() {
    let Some(pg) = mss_testing::postgres::postgres() else {
        return;
    };
    let url = mss_testing::postgres::fresh_database(pg).await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE batches (id TEXT PRIMARY KEY, created_ms BIGINT NOT NULL);
             CREATE TABLE messages (id BIGSERIAL PRIMARY KEY, batch TEXT REFERENCES batches(id), \
             label TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE, sender TEXT NOT NULL, \
             auth_ref TEXT NOT NULL, message_id TEXT NOT NULL, content BYTEA NOT NULL, \
             created_ms BIGINT NOT NULL, dsn BOOLEAN NOT NULL DEFAULT TRUE);
             CREATE TABLE recipients (id BIGSERIAL PRIMARY KEY, message BIGINT NOT NULL, \
             address TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, \
             due_ms BIGINT NOT NULL, lease_owner TEXT, reason TEXT, reply TEXT, updated_ms BIGINT NOT NULL);
             INSERT INTO batches VALUES ('old', 0);
             INSERT INTO messages (batch, label, idempotency_key, sender, auth_ref, message_id, content, \
             created_ms) VALUES ('old', 'old.eml', 'old', 'alice@sante.test', 'token:alice@sante.test', \
             '<old@mss.test>', '\\x48690d0a', 0);
             INSERT INTO recipients (message, address, state, due_ms, updated_ms) \
             VALUES (1, 'bob@sante.test', 'queued', 0, 0);",
        )
        .await
        .expect("old schema");
    drop(client);
    let _ = task.await;
    let s = mss_outbox::PostgresStore::connect(&url, 2)
        .await
        .expect("connected and brought up to date");
    an_old_batch_is_unowned_and_new_ones_have_owners(&s).await;
    mss_outbox::PostgresStore::connect(&url, 2)
        .await
        .expect("connected again");
}

/// In an outbox brought up to date, holding `<old@mss.test>` (bytes `Hi\r\n`) from before the DSN choice
/// and the spool: the old message still asks for DSNs and is sent with its bytes, a new one carries its own
/// choice.
async fn the_old_message_asks_and_a_new_one_chooses(s: &dyn Store) {
    let new = NewMessage {
        dsn: false,
        ..msg("new", "alice@sante.test", &["carol@sante.test"])
    };
    s.enqueue(None, None, vec![new.clone()])
        .await
        .expect("enqueue");
    let leased = s.lease("w", None, 10, LONG).await.expect("lease");
    let dsn: Vec<(&str, bool, &[u8])> = leased
        .iter()
        .map(|m| (m.message_id.as_str(), m.dsn, m.content.as_slice()))
        .collect();
    assert_eq!(
        dsn,
        [
            ("<old@mss.test>", true, &b"Hi\r\n"[..]),
            ("<new@mss.test>", false, &new.content[..])
        ]
    );
}

/// An outbox file written before messages chose whether to ask for DSNs: what it holds is still sent
/// asking for them (as it was accepted), and new messages carry their own choice.
#[tokio::test]
async fn an_outbox_from_before_the_dsn_choice_keeps_asking_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(mss_outbox::SqliteStore::FILE_NAME);
    let old = rusqlite::Connection::open(&path).expect("old file");
    old.execute_batch(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, batch TEXT, label TEXT NOT NULL, \
         idempotency_key TEXT NOT NULL UNIQUE, sender TEXT NOT NULL, auth_ref TEXT NOT NULL, \
         message_id TEXT NOT NULL, content BLOB NOT NULL, created_ms INTEGER NOT NULL);
         CREATE TABLE recipients (id INTEGER PRIMARY KEY AUTOINCREMENT, message INTEGER NOT NULL, \
         address TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, \
         due_ms INTEGER NOT NULL, lease_owner TEXT, reason TEXT, reply TEXT, updated_ms INTEGER NOT NULL);
         INSERT INTO messages VALUES (1, NULL, 'old.eml', 'old', 'alice@sante.test', \
         'token:alice@sante.test', '<old@mss.test>', x'48690d0a', 0);
         INSERT INTO recipients (message, address, state, due_ms, updated_ms) \
         VALUES (1, 'bob@sante.test', 'queued', 0, 0);",
    )
    .expect("old schema");
    drop(old);
    let s = mss_outbox::SqliteStore::open(&path).expect("opened and brought up to date");
    the_old_message_asks_and_a_new_one_chooses(&s).await;
    // opening it again finds it up to date
    mss_outbox::SqliteStore::open(&path).expect("opened again");
}

/// The embedded outbox writes a message's bytes once, into a segment of its spool beside the database
/// (one per acceptance), and the rows only point at them; accepting the same keys again writes nothing; bytes
/// that went missing are a clear store error when leased, not a panic nor an empty message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_outbox_writes_message_bytes_once_into_its_spool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(mss_outbox::SqliteStore::FILE_NAME);
    let s = mss_outbox::SqliteStore::open(&path).expect("store");
    let big: Vec<NewMessage> = (0..3)
        .map(|i| {
            let mut m = msg(&format!("big{i}"), "alice@sante.test", &["bob@sante.test"]);
            m.content.extend(std::iter::repeat_n(b'a' + i, 200_000));
            m
        })
        .collect();
    let sizes: u64 = big.iter().map(|m| m.content.len() as u64).sum();
    s.enqueue(Some("b"), None, big.clone())
        .await
        .expect("enqueue");
    let segments = || -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = std::fs::read_dir(dir.path().join("outbox.spool"))
            .expect("spool dir")
            .map(|e| {
                let e = e.expect("entry");
                let len = e.metadata().expect("metadata").len();
                (e.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        all.sort();
        all
    };
    let first = segments();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1, sizes, "the bytes of the three, once");
    let (inline, spooled) = stored_bytes(&path);
    assert_eq!((inline, spooled), (0, 3), "no bytes in the database");

    let again = s
        .enqueue(Some("b"), None, big.clone())
        .await
        .expect("again");
    assert!(again.iter().all(|a| matches!(a, Accepted::Existing(_))));
    assert_eq!(
        segments(),
        first,
        "nothing written for keys already accepted"
    );

    let leased = s.lease("w", None, 10, LONG).await.expect("lease");
    let bytes: Vec<&[u8]> = leased.iter().map(|m| m.content.as_slice()).collect();
    let want: Vec<&[u8]> = big.iter().map(|m| m.content.as_slice()).collect();
    assert_eq!(bytes, want);

    // damaged outbox: the segment is gone
    assert_eq!(s.release("w").await.expect("release"), 3);
    std::fs::remove_file(dir.path().join("outbox.spool").join(&first[0].0)).expect("remove");
    let e = s.lease("w", None, 10, LONG).await.expect_err("bytes gone");
    assert!(matches!(e, Error::Store { .. }), "{e}");
    assert!(e.to_string().contains("missing"), "{e}");
}

/// A small acceptance (one letter of 60 KB, as a DPI sends them over MLLP) keeps its bytes in its row,
/// committed by the one sync of the WAL: no segment is written, and it is leased with its bytes like a
/// spooled one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_acceptance_keeps_its_bytes_in_its_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(mss_outbox::SqliteStore::FILE_NAME);
    let s = mss_outbox::SqliteStore::open(&path).expect("store");
    let mut m = msg("letter", "alice@sante.test", &["bob@sante.test"]);
    m.content.extend(std::iter::repeat_n(b'x', 60_000));
    let accepted = s
        .enqueue(Some("hl7:alice"), None, vec![m.clone()])
        .await
        .expect("enqueue");
    assert!(matches!(accepted[..], [Accepted::New(_)]), "{accepted:?}");
    let spool = dir.path().join("outbox.spool");
    let segments = std::fs::read_dir(&spool).map_or(0, Iterator::count);
    assert_eq!(segments, 0, "no segment for a small acceptance");
    let (inline, spooled) = stored_bytes(&path);
    assert_eq!((inline, spooled), (m.content.len() as i64, 0));
    let again = s
        .enqueue(Some("hl7:alice"), None, vec![m.clone()])
        .await
        .expect("again");
    assert_eq!(again, vec![Accepted::Existing(accepted[0].key())]);
    let leased = s.lease("w", None, 10, LONG).await.expect("lease");
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].content, m.content);
}

/// Rows are outside input (an older version, another program): an address column that does not hold an
/// address is a store error naming the column, when leased and when shown, never a panic.
async fn a_stored_value_that_is_not_an_address_is_a_store_error(
    s: &dyn Store,
    corrupt: impl AsyncFnOnce(&str),
    column: &str,
) {
    let acc = s
        .enqueue(
            None,
            None,
            vec![msg("bad", "alice@sante.test", &["bob@sante.test"])],
        )
        .await
        .expect("enqueue");
    corrupt("not an address").await;
    let e = s.lease("w", None, 10, LONG).await.expect_err("refused");
    assert!(matches!(e, Error::Store { .. }), "{e}");
    assert!(e.to_string().contains(column), "{e}");
    let e = s.message(acc[0].key()).await.expect_err("refused");
    assert!(matches!(e, Error::Store { .. }), "{e}");
    assert!(e.to_string().contains(column), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_outbox_row_that_is_not_an_address_is_a_store_error() {
    for (table, column) in [("messages", "sender"), ("recipients", "address")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(mss_outbox::SqliteStore::FILE_NAME);
        let s = mss_outbox::SqliteStore::open(&path).expect("store");
        let corrupt = async |value: &str| {
            let db = rusqlite::Connection::open(&path).expect("db");
            db.execute(&format!("UPDATE {table} SET {column} = ?1"), [value])
                .expect("update");
        };
        a_stored_value_that_is_not_an_address_is_a_store_error(
            &s,
            corrupt,
            &format!("{table}.{column}"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outbox_row_that_is_not_an_address_is_a_store_error() {
    let Some(pg) = mss_testing::postgres::postgres() else {
        return;
    };
    for (table, column) in [("messages", "sender"), ("recipients", "address")] {
        let url = mss_testing::postgres::fresh_database(pg).await;
        let s = mss_outbox::PostgresStore::connect(&url, 2)
            .await
            .expect("store");
        let corrupt = async |value: &str| {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let task = tokio::spawn(conn);
            client
                .execute(&format!("UPDATE {table} SET {column} = $1"), &[&value])
                .await
                .expect("update");
            drop(client);
            let _ = task.await;
        };
        a_stored_value_that_is_not_an_address_is_a_store_error(
            &s,
            corrupt,
            &format!("{table}.{column}"),
        )
        .await;
    }
}

/// The same on PostgreSQL: a shared queue made before the DSN choice gets the column when a worker
/// connects, and what it holds keeps asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outbox_from_before_the_dsn_choice_keeps_asking_for_it() {
    let Some(pg) = mss_testing::postgres::postgres() else {
        return;
    };
    let url = mss_testing::postgres::fresh_database(pg).await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE messages (id BIGSERIAL PRIMARY KEY, batch TEXT, label TEXT NOT NULL, \
             idempotency_key TEXT NOT NULL UNIQUE, sender TEXT NOT NULL, auth_ref TEXT NOT NULL, \
             message_id TEXT NOT NULL, content BYTEA NOT NULL, created_ms BIGINT NOT NULL);
             CREATE TABLE recipients (id BIGSERIAL PRIMARY KEY, message BIGINT NOT NULL, \
             address TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, \
             due_ms BIGINT NOT NULL, lease_owner TEXT, reason TEXT, reply TEXT, updated_ms BIGINT NOT NULL);
             INSERT INTO messages (label, idempotency_key, sender, auth_ref, message_id, content, created_ms) \
             VALUES ('old.eml', 'old', 'alice@sante.test', 'token:alice@sante.test', '<old@mss.test>', \
             '\\x48690d0a', 0);
             INSERT INTO recipients (message, address, state, due_ms, updated_ms) \
             VALUES (1, 'bob@sante.test', 'queued', 0, 0);",
        )
        .await
        .expect("old schema");
    drop(client);
    let _ = task.await;
    let s = mss_outbox::PostgresStore::connect(&url, 2)
        .await
        .expect("connected and brought up to date");
    the_old_message_asks_and_a_new_one_chooses(&s).await;
    mss_outbox::PostgresStore::connect(&url, 2)
        .await
        .expect("connected again");
}

/// Processes starting together on one data directory (`mss serve` beside `mss batch`, or several test
/// servers) all open the embedded outbox: none is refused with "database is locked". The processes are
/// this test binary again, running `open_the_store_named_by_the_environment`.
#[test]
fn many_processes_opening_a_new_file_at_once_all_succeed() {
    let exe = std::env::current_exe().expect("test binary");
    for round in 0..40 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(mss_outbox::SqliteStore::FILE_NAME);
        let children: Vec<_> = (0..16)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "open_the_store_named_by_the_environment",
                        "--nocapture",
                    ])
                    .env("MSS_TEST_OPEN_OUTBOX", &path)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("child");
            assert!(
                out.status.success(),
                "round {round}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Opens the outbox named by `MSS_TEST_OPEN_OUTBOX` (nothing without it): one of the processes above.
#[test]
fn open_the_store_named_by_the_environment() {
    if let Some(path) = std::env::var_os("MSS_TEST_OPEN_OUTBOX")
        && let Err(e) = mss_outbox::SqliteStore::open(std::path::Path::new(&path))
    {
        panic!("open: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_name_whose_postgres_session_ended_is_seen_no_longer_held() {
    let Some((store, url)) = common::pg_store().await else {
        return;
    };
    let name = "serve:host:alice@sante.test";
    let hold = store
        .hold_worker_name(name)
        .await
        .expect("hold")
        .expect("free");
    assert!(hold.is_held());
    // the server ends the session (as a restart would)
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let ended = client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND classid = 7316526 AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .expect("terminate");
    assert_eq!(ended, 1);
    tokio::time::timeout(LONG, async {
        while hold.is_held() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hold sees its session end");
    assert!(store.hold_worker_name(name).await.expect("try").is_some());
}

async fn the_overview_shows_loads_rates_batches_and_troubles(
    s: Arc<dyn Store>,
    _: Other<'_>,
    clock: &ManualClock,
) {
    assert!(s.sender_loads().await.expect("loads").is_empty());
    let t0 = clock.now_ms();
    s.enqueue(
        Some("b1"),
        Some("dpi"),
        vec![
            msg(
                "o1",
                "alice@sante.test",
                &["bob@sante.test", "carol@sante.test"],
            ),
            msg("o2", "alice@sante.test", &["dan@sante.test"]),
        ],
    )
    .await
    .expect("enqueue");
    clock.advance(Duration::from_secs(90));
    s.enqueue(
        Some("b2"),
        None,
        vec![msg("o3", "labo@app.sante.test", &["bob@sante.test"])],
    )
    .await
    .expect("enqueue");
    let leased = s
        .lease("w", Some("alice@sante.test"), 10, LONG)
        .await
        .expect("lease");
    let ids: Vec<i64> = leased
        .iter()
        .flat_map(|m| m.recipients.iter().map(|r| r.id))
        .collect();
    assert_eq!(ids.len(), 3);
    clock.advance(Duration::from_secs(60));
    let retry_at = clock.now_ms() + 600_000;
    s.record(
        "w",
        &[
            (
                ids[0],
                Outcome::Sent {
                    reply: "250 2.0.0 Ok: queued as A1".into(),
                },
            ),
            (
                ids[1],
                Outcome::Failed {
                    reason: "550 5.1.1 <carol@sante.test>: unknown".into(),
                },
            ),
            (
                ids[2],
                Outcome::Deferred {
                    retry_at,
                    reason: "451 4.3.0 try later".into(),
                },
            ),
        ],
    )
    .await
    .expect("record");

    let loads = s.sender_loads().await.expect("loads");
    let senders: Vec<&str> = loads.iter().map(|l| l.sender.as_str()).collect();
    assert_eq!(senders, ["alice@sante.test", "labo@app.sante.test"]);
    let alice = &loads[0];
    assert_eq!(
        (
            alice.counts.sent,
            alice.counts.failed,
            alice.counts.deferred,
            alice.counts.queued
        ),
        (1, 1, 1, 0)
    );
    // the deferred one is still waiting: its message was accepted first
    assert_eq!(alice.oldest_pending_ms, Some(t0));
    assert_eq!(loads[1].counts.queued, 1);
    assert_eq!(loads[1].oldest_pending_ms, Some(t0 + 90_000));

    let minute = 60_000;
    let rates = s.rates(t0, minute).await.expect("rates");
    assert_eq!(rates.len(), 1, "{rates:?}");
    assert_eq!(rates[0].sender, "alice@sante.test");
    assert_eq!((rates[0].accepted, rates[0].failed), (1, 1));
    assert_eq!(rates[0].start_ms, (t0 + 150_000) / minute * minute);
    assert!(
        s.rates(t0 + 151_000, minute)
            .await
            .expect("rates")
            .is_empty()
    );

    let batches = s.recent_batches(10).await.expect("batches");
    let names: Vec<&str> = batches.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(names, ["b2", "b1"], "newest first");
    assert_eq!(batches[1].owner.as_deref(), Some("dpi"));
    assert_eq!(batches[1].sender.as_deref(), Some("alice@sante.test"));
    assert_eq!((batches[1].messages, batches[1].counts.total()), (2, 3));
    assert_eq!(batches[0].counts.queued, 1);
    assert_eq!(s.recent_batches(1).await.expect("batches").len(), 1);

    let troubles = s
        .recipients_in(&[State::Failed, State::Deferred], 10)
        .await
        .expect("troubles");
    let seen: Vec<(&str, State)> = troubles
        .iter()
        .map(|t| (t.address.as_str(), t.state))
        .collect();
    assert_eq!(
        seen,
        [
            ("dan@sante.test", State::Deferred),
            ("carol@sante.test", State::Failed)
        ]
    );
    assert_eq!(troubles[0].retry_at_ms, Some(retry_at));
    assert_eq!(troubles[1].retry_at_ms, None);
    assert_eq!(
        troubles[1].reason.as_deref(),
        Some("550 5.1.1 <carol@sante.test>: unknown")
    );
    assert_eq!(troubles[1].label, "o1.eml");
    assert_eq!(troubles[1].batch.as_deref(), Some("b1"));
    assert_eq!(troubles[1].attempts, 1);
    let latest = s.recipients_in(&[], 10).await.expect("latest");
    assert_eq!(latest.len(), 4);
    assert_eq!(latest[3].state, State::Queued, "the oldest change last");
}

async fn retry_now_and_cancel_queued_act_on_waiting_or_given_up_recipients_only(
    s: Arc<dyn Store>,
    _: Other<'_>,
    clock: &ManualClock,
) {
    let acc = s
        .enqueue(
            Some("b1"),
            None,
            vec![msg(
                "r1",
                "alice@sante.test",
                &["bob@sante.test", "carol@sante.test", "dan@sante.test"],
            )],
        )
        .await
        .expect("enqueue");
    let key = acc[0].key();
    let ids: Vec<i64> = s.lease("w", None, 10, LONG).await.expect("lease")[0]
        .recipients
        .iter()
        .map(|r| r.id)
        .collect();
    let later = clock.now_ms() + 3_600_000;
    s.record(
        "w",
        &[
            (
                ids[0],
                Outcome::Sent {
                    reply: "250 ok".into(),
                },
            ),
            (
                ids[1],
                Outcome::Failed {
                    reason: "550 no".into(),
                },
            ),
            (
                ids[2],
                Outcome::Deferred {
                    retry_at: later,
                    reason: "451 later".into(),
                },
            ),
        ],
    )
    .await
    .expect("record");
    // one named recipient (case does not matter): only that one, and a sent one is never sent again
    assert_eq!(
        s.retry_now(key, &["Carol@Sante.test".into()])
            .await
            .expect("retry"),
        1
    );
    assert_eq!(
        s.retry_now(key, &["bob@sante.test".into()])
            .await
            .expect("retry"),
        0
    );
    let l = s.lease("w", None, 10, LONG).await.expect("lease");
    let again: Vec<&str> = l[0].recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(
        again,
        ["carol@sante.test"],
        "due now; dan still waits for his retry time"
    );
    assert_eq!(l[0].recipients[0].attempts, 2);
    s.release("w").await.expect("release");
    // all of them: the deferred one is due now too
    assert_eq!(s.retry_now(key, &[]).await.expect("retry"), 1);
    let st = s.message(key).await.expect("status").expect("known");
    let states: Vec<State> = st.recipients.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Sent, State::Queued, State::Queued]);
    assert!(st.recipients[2].reason.is_none());

    // cancel: what waits is cancelled with the reason; a leased one goes on
    let leased = s.lease("w", None, 1, LONG).await.expect("lease");
    assert_eq!(leased[0].recipients.len(), 1);
    let reason = mss_outbox::overview::cancel_reason("ops");
    assert_eq!(
        s.cancel_queued("b1", &reason).await.expect("cancel"),
        Some(1)
    );
    assert_eq!(
        s.cancel_queued("nope", &reason).await.expect("cancel"),
        None
    );
    let st = s.message(key).await.expect("status").expect("known");
    let states: Vec<State> = st.recipients.iter().map(|r| r.state).collect();
    assert_eq!(states, [State::Sent, State::Sending, State::Cancelled]);
    assert_eq!(st.recipients[2].reason.as_deref(), Some(reason.as_str()));
    // counted apart from the failed ones, and not retried
    let c = s
        .batch("b1", 0, 1)
        .await
        .expect("batch")
        .expect("known")
        .counts;
    assert_eq!((c.cancelled, c.failed, c.sending), (1, 0, 1));
    let alice = s.sender_loads().await.expect("loads");
    assert_eq!((alice[0].counts.cancelled, alice[0].counts.failed), (1, 0));
    assert_eq!(s.retry_now(key, &[]).await.expect("retry"), 0);
    assert!(
        s.lease("w2", None, 10, LONG)
            .await
            .expect("lease")
            .is_empty()
    );
}

async fn the_inbox_overview_counts_each_mailbox_by_status(
    s: Arc<dyn Store>,
    _: Other<'_>,
    clock: &ManualClock,
) {
    use mss_outbox::inbox::{Arrival, InboxStatus};
    let incoming = |uid: u32, id: &str| match Arrival::read(
        uid,
        format!("From: labo@sante.test\r\nMessage-ID: <{id}>\r\nSubject: cr\r\n\r\nhi\r\n")
            .into_bytes(),
    ) {
        Arrival::Message(m) => m,
        Arrival::Report(_) => panic!("a report"),
    };
    let t0 = clock.now_ms();
    s.keep(
        "hop@sante.test",
        "INBOX",
        1,
        2,
        vec![incoming(1, "i1"), incoming(2, "i2")],
    )
    .await
    .expect("keep");
    clock.advance(Duration::from_secs(5));
    s.keep("alice@sante.test", "INBOX", 1, 1, vec![incoming(1, "i3")])
        .await
        .expect("keep");
    let first = s
        .inbox_list(&mss_outbox::inbox::InboxQuery {
            mailbox: Some("hop@sante.test".into()),
            ..Default::default()
        })
        .await
        .expect("list")[0]
        .id;
    s.inbox_outcome(
        first,
        InboxStatus::Error,
        Some(207),
        Some("unknown patient"),
    )
    .await
    .expect("outcome");
    let loads = s.inbox_loads().await.expect("loads");
    let seen: Vec<(&str, u64, u64, u64)> = loads
        .iter()
        .map(|l| (l.mailbox.as_str(), l.new, l.integrated, l.error))
        .collect();
    assert_eq!(
        seen,
        [("alice@sante.test", 1, 0, 0), ("hop@sante.test", 1, 0, 1)]
    );
    assert_eq!(loads[0].oldest_new_ms, Some(t0 + 5000));
    assert_eq!(loads[1].oldest_new_ms, Some(t0));
}

/// Bytes of content kept in the messages' rows, and how many messages have theirs in the spool.
fn stored_bytes(path: &std::path::Path) -> (i64, i64) {
    rusqlite::Connection::open(path)
        .expect("db")
        .query_row(
            "SELECT sum(length(content)), count(spool) FROM messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("rows")
}
