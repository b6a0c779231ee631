//! The worker against the local operator (scripts/lps-operator.sh: Dovecot + Postfix as root): one
//! connection for a whole batch, 5xx per recipient, an expired token pausing the mailbox, a worker that
//! overslept its lease, the server going away and coming back.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{msg, sqlite_store, sqlite_store_with};
use mss_lps::{Endpoint, ServerEndpoints, SessionPolicy, SharedToken, StaticToken};
use mss_outbox::worker::{self, Backoff, OperatorLimits, WorkerConfig};
use mss_outbox::{ManualClock, NewMessage, State};
use mss_testing::lps::{TokenKind, operator};
use tokio::sync::watch;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        mss_outbox::now_ms() % 1_000_000
    )
}

fn config(sender: &str) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(unique("w"));
    cfg.sender = Some(sender.to_owned());
    cfg.stop_when_idle = true;
    cfg.poll = Duration::from_millis(100);
    cfg.backoff = Backoff {
        base: Duration::from_millis(200),
        max: Duration::from_millis(800),
        max_attempts: 50,
    };
    cfg
}

fn batch(n: usize, from: &str, to: &[&str]) -> Vec<NewMessage> {
    let tag = unique("m");
    (0..n)
        .map(|i| msg(&format!("{tag}-{i}"), from, to))
        .collect()
}

/// Message-IDs in a mailbox, one per message (a duplicate appears twice), once `expected` distinct ones
/// arrived; panics after 20 s.
fn mailbox_ids(op: &mss_testing::lps::Operator, user: &str, expected: usize) -> Vec<String> {
    let ids = op.message_ids(user, expected, Duration::from_secs(20));
    assert!(
        ids.len() >= expected,
        "{user}: {ids:?}, expected {expected}"
    );
    ids.into_iter()
        .flat_map(|(id, n)| std::iter::repeat_n(id, n))
        .collect()
}

fn no_stop() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_over_one_connection_and_every_message_arrives() {
    let Some(op) = operator() else { return };
    let (store, _dir) = sqlite_store();
    let rcpt = format!("{}@sante.test", unique("batch"));
    let items = batch(40, "alice@sante.test", &[&rcpt]);
    let ids: HashSet<String> = items.iter().map(|m| m.message_id.clone()).collect();
    store
        .enqueue(Some("b"), None, items)
        .await
        .expect("enqueue");
    let client = Arc::new(op.per_client("alice@sante.test"));
    let report = worker::run(
        Arc::clone(&store),
        Arc::clone(&client),
        config("alice@sante.test"),
        OperatorLimits::unlimited(),
        no_stop(),
    )
    .await
    .expect("run");
    assert_eq!((report.sent, report.deferred, report.failed), (40, 0, 0));
    assert_eq!(
        client.stats().await.smtp_logins,
        1,
        "one authenticated session"
    );
    let b = store
        .batch("b", 0, 100)
        .await
        .expect("batch")
        .expect("known");
    assert_eq!(b.counts.sent, 40);
    let st = &b.items[0].recipients[0];
    assert_eq!(st.state, State::Sent);
    assert!(
        st.reply.as_deref().is_some_and(|r| r.starts_with("250")),
        "{st:?}"
    );
    if op.delivers() {
        let got: HashSet<String> = mailbox_ids(op, &rcpt, 40).into_iter().collect();
        assert_eq!(got, ids);
    }
}

/// A batch run sends while it accepts: an empty queue ends the run only once acceptance is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_keeps_going_while_messages_are_still_being_accepted() {
    let Some(op) = operator() else { return };
    let (store, _dir) = sqlite_store();
    let rcpt = format!("{}@sante.test", unique("accepting"));
    let mut first = batch(10, "alice@sante.test", &[&rcpt]);
    let later = first.split_off(5);
    store
        .enqueue(Some("a"), None, first)
        .await
        .expect("enqueue");
    let (accepting_tx, accepting) = watch::channel(true);
    let mut cfg = config("alice@sante.test");
    cfg.accepting = Some(accepting);
    let run = tokio::spawn(worker::run(
        Arc::clone(&store),
        Arc::new(op.per_client("alice@sante.test")),
        cfg,
        OperatorLimits::unlimited(),
        no_stop(),
    ));
    // the first chunk goes out, and the worker waits with an empty queue
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store
        .counts(Some("alice@sante.test"))
        .await
        .expect("counts")
        .sent
        < 5
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first chunk not sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !run.is_finished(),
        "stopped while messages were still being accepted"
    );
    store
        .enqueue(Some("a"), None, later)
        .await
        .expect("enqueue");
    accepting_tx.send_replace(false);
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the worker stops once acceptance is over and the queue is empty")
        .expect("task")
        .expect("run");
    assert_eq!((report.sent, report.deferred, report.failed), (10, 0, 0));
    let counts = store
        .batch("a", 0, 0)
        .await
        .expect("batch")
        .expect("known")
        .counts;
    assert_eq!((counts.sent, counts.pending()), (10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_fails_with_the_reply_and_the_rest_go() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        common::unavailable("recipient checks need Postfix (root)");
        return;
    }
    let (store, _dir) = sqlite_store();
    let rcpt = format!("{}@sante.test", unique("partial"));
    let items = batch(3, "alice@sante.test", &[&rcpt, "x@elsewhere.test"]);
    let acc = store.enqueue(None, None, items).await.expect("enqueue");
    let report = worker::run(
        Arc::clone(&store),
        Arc::new(op.per_client("alice@sante.test")),
        config("alice@sante.test"),
        OperatorLimits::unlimited(),
        no_stop(),
    )
    .await
    .expect("run");
    assert_eq!((report.sent, report.failed), (3, 3));
    let st = store
        .message(acc[0].key())
        .await
        .expect("status")
        .expect("known");
    assert_eq!(st.recipients[0].state, State::Sent);
    assert_eq!(st.recipients[1].state, State::Failed);
    let reason = st.recipients[1].reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("554") && reason.contains("x@elsewhere.test"),
        "{reason}"
    );
    assert_eq!(mailbox_ids(op, &rcpt, 3).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_pauses_the_mailbox_until_a_new_token_is_given() {
    let Some(op) = operator() else { return };
    let (store, _dir) = sqlite_store();
    let items = batch(3, "alice@sante.test", &["bob@sante.test"]);
    store
        .enqueue(Some("p"), None, items)
        .await
        .expect("enqueue");
    let token = Arc::new(SharedToken::new(
        op.psc().token("alice@sante.test", TokenKind::Expired),
    ));
    let client =
        Arc::new(op.per_client_with("alice@sante.test", token.clone(), SessionPolicy::default()));
    // one message per lease: the lease taken ahead holds one more of the paused sender's messages
    let mut cfg = config("alice@sante.test");
    cfg.lease_size = 1;
    let report = worker::run(
        Arc::clone(&store),
        Arc::clone(&client),
        cfg,
        OperatorLimits::unlimited(),
        no_stop(),
    )
    .await
    .expect("run");
    let statuses = store
        .batch("p", 0, 10)
        .await
        .expect("batch")
        .expect("known");
    let tried: Vec<_> = statuses
        .items
        .iter()
        .flat_map(|m| &m.recipients)
        .filter_map(|r| r.reason.as_deref())
        .filter(|reason| reason.starts_with("mailbox paused"))
        .collect();
    assert_eq!(tried.len(), 1, "one refused login, no more: {tried:?}");
    let reason = report.paused.clone().expect("paused");
    assert!(
        reason.contains("authentication of alice@sante.test"),
        "{reason}"
    );
    assert_eq!(report.sent + report.failed, 0);
    let paused = store.paused().await.expect("paused");
    assert_eq!(paused[0].reason, reason);
    let c = store.counts(None).await.expect("counts");
    assert_eq!((c.failed, c.sent, c.pending()), (0, 0, 3));

    // a new token, the mailbox resumed: everything goes
    token.replace(op.psc().token("alice@sante.test", TokenKind::Valid));
    assert!(store.resume("alice@sante.test").await.expect("resume"));
    // a new client (new source address): Dovecot slows logins from an address that just failed one
    let client =
        Arc::new(op.per_client_with("alice@sante.test", token.clone(), SessionPolicy::default()));
    let report = worker::run(
        Arc::clone(&store),
        client,
        config("alice@sante.test"),
        OperatorLimits::unlimited(),
        no_stop(),
    )
    .await
    .expect("run");
    assert_eq!((report.sent, report.paused), (3, None));
}

/// A TCP relay to the real submission server that the test switches off and on (an operator outage).
struct Outage {
    port: u16,
    target: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Outage {
    fn new(target: u16) -> Self {
        let port = mss_testing::free_ports(1, 6);
        Outage {
            port,
            target,
            task: None,
        }
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind relay");
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    /// Closes the listener and every open connection.
    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_overslept_its_lease_sends_none_of_what_another_worker_took() {
    let Some(op) = operator() else { return };
    // the store's clock moves when the test says: the lease expires while the worker waits, whatever the
    // machine's speed
    let clock = ManualClock::new();
    let (store, _dir) = sqlite_store_with(&clock);
    let rcpt = format!("{}@sante.test", unique("overslept"));
    store
        .enqueue(None, None, batch(6, "alice@sante.test", &[&rcpt]))
        .await
        .expect("enqueue");
    // one message every 5 s and a lease of 2 s: after the first message the worker waits for its next slot
    // while its lease runs out (as a stopped or blocked process would), and another worker takes two of
    // the three left of it; the worker also holds the lease it took ahead (the last two messages), which
    // must not hide the loss
    let mut cfg = config("alice@sante.test");
    cfg.lease = Duration::from_secs(2);
    cfg.lease_size = 4;
    let run = tokio::spawn(worker::run(
        Arc::clone(&store),
        Arc::new(op.per_client("alice@sante.test")),
        cfg,
        OperatorLimits::new(1, Some(0.2)),
        no_stop(),
    ));
    let started = std::time::Instant::now();
    while store.counts(None).await.expect("counts").sent == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "nothing sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        store
            .lease("other", None, 2, Duration::from_secs(60))
            .await
            .expect("lease")
            .is_empty(),
        "taken before its lease expired"
    );
    clock.advance(Duration::from_secs(3));
    let taken = store
        .lease("other", None, 2, Duration::from_secs(60))
        .await
        .expect("lease");
    let taken: Vec<(i64, mss_outbox::Outcome)> = taken
        .iter()
        .flat_map(|m| &m.recipients)
        .map(|r| {
            (
                r.id,
                mss_outbox::Outcome::Sent {
                    reply: "250 sent by the other worker".into(),
                },
            )
        })
        .collect();
    assert_eq!(taken.len(), 2);
    assert_eq!(store.record("other", &taken).await.expect("record"), 2);
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("finishes")
        .expect("task")
        .expect("run");
    assert_eq!(
        (report.sent, report.deferred, report.failed),
        (4, 0, 0),
        "the stalled worker sent the message it sent before its lease expired, then, leasing again, \
         the three the other worker did not take; none of those two"
    );
    assert_eq!(store.counts(None).await.expect("counts").sent, 6);
    if op.delivers() {
        assert_eq!(mailbox_ids(op, &rcpt, 4).len(), 4, "each once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_defers_and_everything_goes_when_it_is_back() {
    let Some(op) = operator() else { return };
    let (store, _dir) = sqlite_store();
    let rcpt = format!("{}@sante.test", unique("outage"));
    let items = batch(20, "alice@sante.test", &[&rcpt]);
    let ids: HashSet<String> = items.iter().map(|m| m.message_id.clone()).collect();
    store.enqueue(None, None, items).await.expect("enqueue");
    let real = op.per_endpoints();
    let mut outage = Outage::new(real.submission.port);
    let endpoints = ServerEndpoints {
        submission: Endpoint::new(real.submission.host.clone(), outage.port),
        imap: real.imap.clone(),
    };
    let token = op.psc().token("alice@sante.test", TokenKind::Valid);
    let client = Arc::new(
        mss_lps::LpsClient::new(mss_lps::MailboxConfig {
            address: mss_testing::lps::addr("alice@sante.test"),
            bal_type: mss_types::BalType::Per,
            credentials: mss_lps::Credentials::Psc {
                provider: Arc::new(StaticToken::new(token)),
                policy: op.policy(),
            },
            servers: mss_lps::ServerSource::Explicit(endpoints),
            connect: op.options(op.tls()),
            session: SessionPolicy::default(),
        })
        .expect("client"),
    );
    // the server is down from the start
    let run = tokio::spawn(worker::run(
        Arc::clone(&store),
        client,
        config("alice@sante.test"),
        OperatorLimits::unlimited(),
        no_stop(),
    ));
    // until the first message was tried twice and deferred again (however long the machine takes)
    let started = std::time::Instant::now();
    loop {
        let m = store.message(1).await.expect("status").expect("known");
        let r = &m.recipients[0];
        if r.attempts >= 2 && r.state == State::Deferred {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = store.counts(None).await.expect("counts");
    assert_eq!(c.sent, 0);
    assert!(c.deferred > 0, "{c:?}");
    let b = store.message(1).await.expect("status").expect("known");
    let reason = b.recipients[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("cannot connect"), "{reason}");
    assert!(b.recipients[0].attempts >= 2, "retried: {b:?}");
    // back up: everything goes, then down again in the middle, then up
    outage.up().await;
    for _ in 0..100 {
        if store.counts(None).await.expect("counts").sent >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outage.down().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    outage.up().await;
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("finishes")
        .expect("task")
        .expect("run");
    assert!(report.deferred > 0);
    let c = store.counts(None).await.expect("counts");
    assert_eq!((c.sent, c.failed, c.pending()), (20, 0, 0));
    if op.delivers() {
        // everything arrived; a retry after a cut may have delivered one twice, with the same Message-ID
        let got = mailbox_ids(op, &rcpt, 20);
        let distinct: HashSet<String> = got.into_iter().collect();
        assert_eq!(distinct, ids);
    }
}
