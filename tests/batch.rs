//! `mss batch`, the real binary against the local operator (scripts/lps-operator.sh; Postfix delivering into
//! the Dovecot mailboxes as root): a directory of ready messages and XDM compose requests delivered, a second
//! run skipping what was accepted, an expired token pausing the mailbox until a new one, and the crash test:
//! the worker SIGKILLed at random moments and restarted until everything is in the mailbox.
//!
//! Then the same on PostgreSQL with two workers draining one queue, one of them SIGKILLed and restarted;
//! and the receipts: Postfix's real DSNs and a recipient's MDN read back over IMAP by `mss receipts`.
//!
//! The crash tests send MSS_CRASH_ITEMS messages (default 300, a CI-sized run; the issue's full run is
//! `MSS_CRASH_ITEMS=5000 cargo test --release --test batch crash`).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{jitter, mss, stderr, stdout, unique};
use mss_testing::lps::{Operator, TokenKind, operator};
use mss_testing::unavailable;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_str().expect("utf-8 temp path").to_owned()
}

fn eml(from: &str, to: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: resultat {id}\r\nMessage-ID: {id}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour,\r\nresultat joint.\r\n"
    )
    .into_bytes()
}

/// A directory of `n` ready messages to `to`; returns their Message-IDs.
fn eml_dir(dir: &Path, n: usize, to: &str) -> HashSet<String> {
    std::fs::create_dir_all(dir).expect("mkdir");
    let tag = unique("");
    (0..n)
        .map(|i| {
            let id = format!("<{tag}.{i}@batch.mss.test>");
            write(
                dir,
                &format!("{i:05}.eml"),
                &eml("alice@sante.test", to, &id),
            );
            id
        })
        .collect()
}

struct Flags {
    data: String,
    token_file: String,
    server: String,
}

impl Flags {
    fn new(op: &Operator, dir: &Path, kind: TokenKind) -> Self {
        let token = op.psc().token("alice@sante.test", kind);
        // the test domains are in the data directory's whitelist (docs/mssante.md M8)
        common::install_whitelist(&dir.join("data"), mss_testing::TEST_DOMAINS);
        Flags {
            data: dir.join("data").to_str().expect("utf-8").to_owned(),
            token_file: write(dir, "token", token.expose().as_bytes()),
            server: format!("localhost:{}", op.port("SUBMISSION_PORT")),
        }
    }

    /// `mss batch` of alice, without input.
    fn base(&self, op: &Operator) -> Command {
        let mut c = mss();
        c.env("MSS_CA_FILE", op.path("CA"))
            .args(["-vv", "--data", &self.data, "batch"])
            .args([
                "--from",
                "alice@sante.test",
                "--token-file",
                &self.token_file,
            ])
            .args(["--server", &self.server, "--nil", "MSS-TEST-NIL"]);
        c
    }

    fn command(&self, op: &Operator, input: &str, extra: &[&str]) -> Command {
        let mut c = self.base(op);
        c.arg(input).args(extra);
        c
    }

    fn run(&self, op: &Operator, input: &str, extra: &[&str]) -> Output {
        self.command(op, input, extra)
            .output()
            .expect("running mss")
    }
}

#[test]
fn a_directory_is_delivered_and_a_second_run_skips_what_was_accepted() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let rcpt = format!("{}@sante.test", unique("dir"));
    let items = dir.path().join("items");
    let mut ids = eml_dir(&items, 12, &rcpt);
    // an XDM compose request among the ready messages
    let mut req: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("examples/compose/cda-to-professional.json").expect("example"),
    )
    .expect("json");
    req["sender"]["address"] = "alice@sante.test".into();
    req["recipients"] = serde_json::json!({ "to": [rcpt] });
    write(&items, "xdm.json", req.to_string().as_bytes());
    let flags = Flags::new(op, dir.path(), TokenKind::Valid);
    let input = items.to_str().expect("utf-8");

    let out = flags.run(op, input, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(": 13 new item(s) in the outbox, 0 already there"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("13 message(s), recipients: 13 sent, 0 delivered, 0 read, 0 deferred, 0 queued, 0 failed"),
        "{}",
        stdout(&out)
    );
    let token = std::fs::read_to_string(&flags.token_file).expect("token");
    assert!(!stderr(&out).contains(&token) && !stdout(&out).contains(&token));
    assert!(Path::new(&flags.data).join("outbox.sqlite").exists());

    let again = flags.run(op, input, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(": 0 new item(s) in the outbox, 13 already there"),
        "{}",
        stderr(&again)
    );
    if op.delivers() {
        let got = op.message_ids(&rcpt, 13, Duration::from_secs(20));
        assert_eq!(got.len(), 13, "{got:?}");
        assert!(got.values().all(|n| *n == 1), "nothing sent twice: {got:?}");
        let eml_ids: HashSet<_> = got
            .keys()
            .filter(|k| k.contains("@batch.mss.test"))
            .cloned()
            .collect();
        ids.retain(|i| eml_ids.contains(i));
        assert_eq!(ids.len(), 12);
    } else {
        unavailable("no Postfix (not root): accepted but not delivered");
    }
}

#[test]
fn an_expired_token_pauses_the_batch_until_a_new_token_is_given() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let items = dir.path().join("items");
    eml_dir(&items, 3, "bob@sante.test");
    let input = items.to_str().expect("utf-8");
    let expired = Flags::new(op, dir.path(), TokenKind::Expired);
    let out = expired.run(op, input, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the mailbox is paused: authentication of alice@sante.test"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("0 sent"), "{}", stdout(&out));
    // one refused login, not one per message: the other messages wait without being tried
    assert_eq!(
        stderr(&out)
            .matches("credentials refused: pausing the mailbox")
            .count(),
        1,
        "{}",
        stderr(&out)
    );
    let valid = Flags::new(op, dir.path(), TokenKind::Valid);
    let out = valid.run(op, input, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("was paused; resuming"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("3 sent"), "{}", stdout(&out));
}

/// A faulty item is refused by itself, named with its field; the rest of its chunk goes.
#[test]
fn a_bad_item_is_refused_alone_and_named() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let rcpt = format!("{}@sante.test", unique("bad"));
    let items = dir.path().join("items");
    eml_dir(&items, 3, &rcpt);
    write(
        &items,
        "nobody.eml",
        b"From: alice@sante.test\r\nMessage-ID: <nobody@batch.mss.test>\r\n\r\nhi\r\n",
    );
    write(&items, "shape.json", br#"{"sender": 1}"#);
    let flags = Flags::new(op, dir.path(), TokenKind::Valid);
    let out = flags.run(op, items.to_str().expect("utf-8"), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("nobody.eml: refused: message: ")
            && err.contains("no recipient in To, Cc or Bcc"),
        "{err}"
    );
    assert!(
        err.contains("shape.json: refused: compose.sender: invalid type"),
        "{err}"
    );
    assert!(
        err.contains(": 3 new item(s) in the outbox, 0 already there, 2 refused"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("3 message(s), recipients: 3 sent"),
        "{}",
        stdout(&out)
    );
    assert!(
        err.contains("0 recipient(s) failed, 2 item(s) refused"),
        "{err}"
    );
}

#[test]
fn once_sends_what_is_due_and_exits_listing_what_waits_for_a_retry() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let items = dir.path().join("items");
    eml_dir(&items, 2, "bob@sante.test");
    let input = items.to_str().expect("utf-8");
    // nothing listens there: every message is deferred (connection refused) with a retry in 15 to 30 s
    let port = mss_testing::free_ports(1, 9);
    let mut flags = Flags::new(op, dir.path(), TokenKind::Valid);
    flags.server = format!("127.0.0.1:{port}");
    let out = flags.run(op, input, &["--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // one attempt each: it did not wait for the retries (the store says so, however slow the machine)
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let attempts: Vec<u32> = rt.block_on(async {
        let store = mss_outbox::open_store(Path::new(&flags.data), None)
            .await
            .expect("outbox");
        let from = mss_annuaire::MailAddress::parse("alice@sante.test").expect("address");
        let batch = mss_outbox::prepare::input_batch_id(&from, &items);
        let b = store
            .batch(&batch, 0, 10)
            .await
            .expect("batch")
            .expect("known");
        b.items
            .iter()
            .flat_map(|m| m.recipients.iter().map(|r| r.attempts))
            .collect()
    });
    assert_eq!(attempts, [1, 1], "did not wait for the retries");
    assert!(
        stdout(&out)
            .contains("recipients: 0 sent, 0 delivered, 0 read, 2 deferred, 0 queued, 0 failed"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("deferred 00000.eml -> bob@sante.test (retry in "),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("2 recipient(s) wait for a retry; run again to send them"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn crash_test_the_worker_killed_at_random_moments_loses_nothing() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        unavailable("the crash test reads the mailboxes: needs Postfix (root)");
        return;
    }
    let n: usize = std::env::var("MSS_CRASH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    let rcpt = format!("{}@sante.test", unique("crash"));
    let items = dir.path().join("items");
    let ids = eml_dir(&items, n, &rcpt);
    let flags = Flags::new(op, dir.path(), TokenKind::Valid);
    let input = items.to_str().expect("utf-8");
    let mut kills = 0;
    // kill at random moments until ten kills landed while the worker was running, or the batch is done
    // (on an idle machine a small batch may finish first: a run that ends by itself, successfully, has
    // nothing left to send, and looping on would never land another kill). The moments are short: a run
    // spends tens of milliseconds starting, so on a fast machine longer ones let a few runs send the whole
    // batch before five kills land.
    while kills < 10 {
        let mut child = flags
            .command(op, input, &["--worker", "crash", "--connections", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mss");
        std::thread::sleep(Duration::from_millis(20 + jitter(130)));
        match child.try_wait().expect("wait") {
            None => kills += 1,
            Some(status) if status.success() => break,
            Some(_) => {}
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    assert!(
        kills >= 5,
        "only {kills} kills landed before the batch was done"
    );
    let out = flags.run(op, input, &["--worker", "crash", "--connections", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{n} message(s), recipients: {n} sent")),
        "{}",
        stdout(&out)
    );
    let got = op.message_ids(&rcpt, n, Duration::from_secs(60));
    let got_ids: HashSet<String> = got.keys().cloned().collect();
    assert_eq!(got_ids, ids, "every message arrived, none unknown");
    let duplicates: usize = got.values().map(|c| c - 1).sum();
    // a duplicate only where a kill fell between the server's acceptance and the outbox commit: per
    // connection (two here), at most the message being sent and the one whose outcome was being committed
    assert!(
        duplicates <= kills * 2 * 2,
        "{duplicates} duplicates for {kills} kills"
    );
    eprintln!(
        "crash test: {n} messages, {kills} kills, {duplicates} duplicate(s) (same Message-ID)"
    );
}

/// A cron job that overlaps itself: several `mss batch` runs of one batch at once on one outbox, all under
/// the default worker name (the host name). One holds the name and sends; the others wait for it, then
/// find nothing left: every message arrives once.
#[test]
fn overlapping_runs_of_one_batch_send_nothing_twice() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        unavailable("the overlap test reads the mailboxes: needs Postfix (root)");
        return;
    }
    let n: usize = std::env::var("MSS_OVERLAP_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    let rcpt = format!("{}@sante.test", unique("overlap"));
    let items = dir.path().join("items");
    let ids = eml_dir(&items, n, &rcpt);
    let flags = Flags::new(op, dir.path(), TokenKind::Valid);
    let input = items.to_str().expect("utf-8");
    let runs: Vec<_> = (0..7)
        .map(|i| {
            let dir = dir.path().to_owned();
            let child = flags
                .command(op, input, &["--connections", "2"])
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join(format!("run{i}.stderr"))).expect("log"))
                .spawn()
                .expect("spawn mss");
            std::thread::sleep(Duration::from_millis(jitter(150)));
            (i, child)
        })
        .collect();
    for (i, child) in runs {
        let out = child.wait_with_output().expect("wait");
        let log =
            std::fs::read_to_string(dir.path().join(format!("run{i}.stderr"))).unwrap_or_default();
        assert!(out.status.success(), "run {i}: {log}");
        assert!(
            stdout(&out).contains(&format!("{n} message(s), recipients: {n} sent")),
            "run {i}: {}\n{log}",
            stdout(&out)
        );
    }
    let got = op.message_ids(&rcpt, n, Duration::from_secs(60));
    let got_ids: HashSet<String> = got.keys().cloned().collect();
    assert_eq!(got_ids, ids, "every message arrived, none unknown");
    let twice: Vec<_> = got.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        twice.is_empty(),
        "{} sent more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
}

/// Runs `mss receipts` for alice until `want` is in its output (Postfix writes DSNs asynchronously) or
/// 30 s pass; returns the last output.
fn receipts_until(op: &Operator, flags: &Flags, want: &str) -> Output {
    let start = Instant::now();
    loop {
        let out = mss()
            .env("MSS_CA_FILE", op.path("CA"))
            .args([
                "--data",
                &flags.data,
                "receipts",
                "--from",
                "alice@sante.test",
            ])
            .args(["--token-file", &flags.token_file, "--server", &flags.server])
            .args([
                "--imap-server",
                &format!("localhost:{}", op.port("IMAP_PORT")),
            ])
            .output()
            .expect("running mss receipts");
        assert!(out.status.success(), "{}", stderr(&out));
        if stdout(&out).contains(want) || start.elapsed() > Duration::from_secs(30) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn receipts_from_postfix_and_the_recipient_move_the_batch_to_delivered_read_and_failed() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        unavailable("DSNs are written by Postfix: needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bob = format!("{}@sante.test", unique("rcpt"));
    let items = dir.path().join("items");
    std::fs::create_dir_all(&items).expect("mkdir");
    let tag = unique("");
    let read_id = format!("<{tag}.read@batch.mss.test>");
    let mut asks_mdn = eml("alice@sante.test", &bob, &read_id);
    asks_mdn.splice(
        0..0,
        b"Disposition-Notification-To: alice@sante.test\r\n"
            .iter()
            .copied(),
    );
    write(&items, "1-read.eml", &asks_mdn);
    write(
        &items,
        "2-delivered.eml",
        &eml(
            "alice@sante.test",
            &bob,
            &format!("<{tag}.dsn@batch.mss.test>"),
        ),
    );
    write(
        &items,
        "3-unknown.eml",
        &eml(
            "alice@sante.test",
            "unknown@sante.test",
            &format!("<{tag}.gone@batch.mss.test>"),
        ),
    );
    let flags = Flags::new(op, dir.path(), TokenKind::Valid);
    let out = flags.run(op, items.to_str().expect("utf-8"), &["--dsn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 sent"), "{}", stdout(&out));

    // bob reads the first message and sends the read receipt mss composes (RFC 8098)
    let got = op.message_ids(&bob, 2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "{got:?}");
    let original = op
        .maildir_files(&bob)
        .into_iter()
        .filter_map(|f| std::fs::read(f).ok())
        .find(|b| mss_lps::message_id(b).as_deref() == Some(read_id.as_str()))
        .expect("the message asking for a read receipt");
    let received = mss_message::read_message(&original).expect("read");
    let mdn = mss_message::mdn::build_mdn(
        &received,
        &mss_message::mdn::MdnRequest {
            final_recipient: bob.clone(),
            label: None,
            disposition: mss_message::mdn::MdnDisposition::Displayed,
        },
        &mss_message::ComposeConfig::new("MSS-TEST-NIL"),
        &mut mss_message::Env::system(),
    )
    .expect("mdn");
    let mdn_file = write(dir.path(), "mdn.eml", &mdn.raw);
    let bob_token = write(
        dir.path(),
        "bob-token",
        op.psc().token(&bob, TokenKind::Valid).expose().as_bytes(),
    );
    let sent = mss()
        .env("MSS_CA_FILE", op.path("CA"))
        .env("MSS_DATA", &flags.data)
        .args([
            "send",
            &mdn_file,
            "--from",
            &bob,
            "--token-file",
            &bob_token,
        ])
        .args(["--server", &flags.server])
        .output()
        .expect("mss send");
    assert!(sent.status.success(), "{}", stderr(&sent));

    let out = receipts_until(
        op,
        &flags,
        "recipients: 0 sent, 1 delivered, 1 read, 0 deferred, 0 queued, 1 failed",
    );
    assert!(
        stdout(&out)
            .contains("recipients: 0 sent, 1 delivered, 1 read, 0 deferred, 0 queued, 1 failed"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let token = std::fs::read_to_string(&flags.token_file).expect("token");
    assert!(!stderr(&out).contains(&token) && !stdout(&out).contains(&token));
    // the failure keeps Postfix's diagnostic; a new reading finds nothing new and changes nothing
    let status = flags.run(op, items.to_str().expect("utf-8"), &["--no-send"]);
    assert!(
        stdout(&status).contains("1 delivered, 1 read, 0 deferred, 0 queued, 1 failed"),
        "{}",
        stdout(&status)
    );
    assert!(
        stdout(&status).contains("failed 3-unknown.eml -> unknown@sante.test: DSN failed 5.1.1"),
        "{}",
        stdout(&status)
    );
    assert!(
        stdout(&status).contains("mailbox unknown"),
        "{}",
        stdout(&status)
    );
    // (reports about other tests' messages from alice may arrive meanwhile: read, matched to nothing here)
    let again = receipts_until(op, &flags, "");
    assert!(
        stdout(&again).contains(" report(s) read: 0 delivered, 0 read, 0 failed")
            && stdout(&again).contains(
                "recipients: 0 sent, 1 delivered, 1 read, 0 deferred, 0 queued, 1 failed"
            ),
        "{}",
        stdout(&again)
    );
}

#[test]
fn crash_test_on_postgres_two_workers_share_the_queue_and_one_killed_loses_nothing() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        unavailable("the crash test reads the mailboxes: needs Postfix (root)");
        return;
    }
    let Some(pg) = mss_testing::postgres::postgres() else {
        return;
    };
    let url = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(mss_testing::postgres::fresh_database(pg));
    let n: usize = std::env::var("MSS_CRASH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    let rcpt = format!("{}@sante.test", unique("pgcrash"));
    let items = dir.path().join("items");
    let ids = eml_dir(&items, n, &rcpt);
    let flags = Flags::new(op, dir.path(), TokenKind::Valid);
    let input = items.to_str().expect("utf-8");
    let queued = flags.run(op, input, &["--outbox", &url, "--no-send"]);
    assert!(queued.status.success(), "{}", stderr(&queued));
    assert!(
        stdout(&queued).contains(&format!("{n} message(s), recipients: 0 sent")),
        "{}",
        stdout(&queued)
    );
    // each worker paced so that the queue outlasts ten kills (worker b alone needs 30 s or more); a lease
    // of 16 recipients is sent in about 2 s, well within its 20 s even on a loaded machine (a lease that
    // expires under a live worker is sent by both: 5 s gave 14 duplicates for 10 kills at load 6); the
    // killed worker's leases come back at once when it restarts under the same name
    let rate = (n / 30).max(10).to_string();
    let worker = |name: &str| {
        let mut c = flags.base(op);
        c.args(["--drain", "--outbox", &url, "--worker", name])
            .args(["--lease-secs", "20", "--rate", &rate])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    // worker b's log goes to a file: a pipe nobody reads until b ends fills with its -vv log, and b then
    // blocks on a write past its lease (this test once counted 12 duplicates for 10 kills that way)
    let b_err = dir.path().join("b.stderr");
    let mut steady = worker("b")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&b_err).expect("b.stderr"))
        .spawn()
        .expect("spawn worker b");
    let mut kills = 0;
    while kills < 10 {
        let mut child = worker("a")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker a");
        std::thread::sleep(Duration::from_millis(200 + jitter(800)));
        let running = child.try_wait().expect("wait").is_none();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(
            running,
            "worker a ended before its kill: the queue ran dry after {kills} kill(s)"
        );
        kills += 1;
    }
    let last = worker("a").output().expect("worker a");
    assert!(last.status.success(), "{}", stderr(&last));
    let status = steady.wait().expect("worker b");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&b_err).unwrap_or_default()
    );
    assert!(
        stdout(&last).contains(&format!(
            "outbox of alice@sante.test, recipients: {n} sent, 0 delivered, 0 read, 0 deferred, 0 queued, 0 failed"
        )),
        "{}",
        stdout(&last)
    );
    let got = op.message_ids(&rcpt, n, Duration::from_secs(60));
    let got_ids: HashSet<String> = got.keys().cloned().collect();
    assert_eq!(got_ids, ids, "every message arrived, none unknown");
    let duplicates: usize = got.values().map(|c| c - 1).sum();
    // worker a has one connection: at each kill, at most the message it was sending and the one whose
    // outcome was being committed go twice
    assert!(
        duplicates <= kills * 2,
        "{duplicates} duplicates for {kills} kills"
    );
    eprintln!(
        "postgres crash test: {n} messages, 2 workers, {kills} kills of one, {duplicates} duplicate(s) (same Message-ID)"
    );
}
