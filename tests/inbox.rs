//! `mss inbox`, the real binary against the local operator's Dovecot (scripts/lps-operator.sh): messages
//! APPENDed to a mailbox, then synced into the inbox (exact rows), a second run storing nothing twice, a DSN
//! among them moving the outbox's recipient and not becoming an inbox message; a folder recreated on the
//! server (new UIDVALIDITY) losing nothing and duplicating nothing; and `mss inbox sync` SIGKILLed at random
//! moments during a sync of a few hundred messages, each message kept exactly once. An IHE_XDM letter
//! with a real CDA shown with its exact fields, acknowledged in error (902) then integrated: the MDN goes
//! through the outbox to the sender's mailbox with the fields of docs/mssante.md R4, and the sender's own
//! reader moves its recipient to failed (902) or read; a second ack answers the recorded outcome.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{jitter, mss, stderr, stdout, unique, xdm_letter};
use mss_lps::imap::ImapSession;
use mss_outbox::{NewMessage, Outcome, State, Store};
use mss_testing::lps::{Operator, TokenKind, operator};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A mailbox of its own for one test, and the flags `mss inbox sync` needs for it.
struct Bal {
    address: String,
    data: String,
    token_file: String,
    server: String,
    imap_server: String,
}

impl Bal {
    fn new(op: &Operator, dir: &Path, prefix: &str) -> Bal {
        let address = format!("{}@sante.test", unique(prefix));
        let token = op.psc().token(&address, TokenKind::Valid);
        let token_file = dir.join("token");
        std::fs::write(&token_file, token.expose()).expect("token");
        Bal {
            address,
            data: dir.join("data").to_str().expect("utf-8").to_owned(),
            token_file: token_file.to_str().expect("utf-8").to_owned(),
            server: format!("localhost:{}", op.port("SUBMISSION_PORT")),
            imap_server: format!("localhost:{}", op.port("IMAP_PORT")),
        }
    }

    fn command(&self, op: &Operator, args: &[&str]) -> Command {
        let mut c = mss();
        c.env("MSS_CA_FILE", op.path("CA"))
            .args(["--data", &self.data, "inbox"])
            .args(args);
        c
    }

    fn sync_command(&self, op: &Operator, extra: &[&str]) -> Command {
        let mut c = self.command(op, &["sync", "--from", &self.address]);
        c.args(["--token-file", &self.token_file, "--server", &self.server])
            .args(["--imap-server", &self.imap_server])
            .args(extra);
        c
    }

    fn sync(&self, op: &Operator, extra: &[&str]) -> Output {
        let out = self
            .sync_command(op, extra)
            .output()
            .expect("running mss inbox sync");
        assert!(out.status.success(), "{}", stderr(&out));
        out
    }

    /// `mss inbox list --json`, one object per line.
    fn list(&self, op: &Operator) -> Vec<serde_json::Value> {
        let out = self
            .command(op, &["list", "--json"])
            .output()
            .expect("running mss inbox list");
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// An IMAP session of this mailbox, to put messages in it.
    async fn imap(&self, op: &Operator) -> ImapSession {
        op.imap_session(&self.address).await
    }
}

fn letter(to: &str, id: Option<&str>, subject: &str) -> Vec<u8> {
    let id = id
        .map(|i| format!("Message-ID: <{i}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Labo Biologie <labo@sante.test>\r\nTo: {to}\r\nSubject: {subject}\r\n{id}\
         Date: Mon, 23 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour,\r\n{subject}\r\n"
    )
    .into_bytes()
}

/// A DSN in Postfix's layout saying `rcpt` got the message whose Message-ID is `envid`.
fn dsn(to: &str, envid: &str, rcpt: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mail.sante.test (Mail Delivery System)\r\n\
Subject: Delivery Status Notification\r\nTo: {to}\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1\"\r\n\
Message-Id: <{envid}.dsn@mail.sante.test>\r\n\r\n--B1\r\nContent-Type: text/plain\r\n\r\nDelivered.\r\n\r\n\
--B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.sante.test\r\n\
Original-Envelope-Id: <{envid}>\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\n\
Original-Recipient: rfc822;{rcpt}\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n--B1--\r\n"
    )
    .into_bytes()
}

/// Puts in the outbox of `bal` a message sent to `rcpt` (as a worker would have), under Message-ID `id`.
async fn sent(store: &dyn Store, bal: &str, rcpt: &str, id: &str) -> mss_outbox::MessageKey {
    sent_raw(store, bal, rcpt, id, letter(rcpt, Some(id), "envoi")).await
}

/// Puts `content` in the outbox of `bal` as sent to `rcpt`, under Message-ID `id`.
async fn sent_raw(
    store: &dyn Store,
    bal: &str,
    rcpt: &str,
    id: &str,
    content: Vec<u8>,
) -> mss_outbox::MessageKey {
    let item = NewMessage {
        idempotency_key: id.to_owned(),
        label: "sent.eml".into(),
        sender: bal.parse().expect("address"),
        auth_ref: format!("token:{bal}"),
        content,
        message_id: format!("<{id}>"),
        recipients: vec![rcpt.parse().expect("address")],
        dsn: true,
    };
    let acc = store
        .enqueue(None, None, vec![item])
        .await
        .expect("enqueue");
    let leased = store
        .lease("w", None, 10, Duration::from_secs(60))
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

#[test]
fn appended_messages_are_kept_once_and_a_dsn_moves_the_outbox_instead() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bal = Bal::new(op, dir.path(), "inbox");
    let rt = runtime();
    let store = rt.block_on(async {
        std::fs::create_dir_all(&bal.data).expect("data");
        mss_outbox::open_store(Path::new(&bal.data), None)
            .await
            .expect("store")
    });
    let sent_id = format!("{}@mss.test", unique("sent"));
    let key = rt.block_on(sent(
        store.as_ref(),
        &bal.address,
        "bob@sante.test",
        &sent_id,
    ));
    let tag = unique("m");
    let messages = [
        letter(
            &bal.address,
            Some(&format!("{tag}.1@labo.test")),
            "Résultats 1",
        ),
        dsn(&bal.address, &sent_id, "bob@sante.test"),
        letter(&bal.address, None, "Sans identifiant"),
        letter(
            &bal.address,
            Some(&format!("{tag}.2@labo.test")),
            "Résultats 2",
        ),
    ];
    rt.block_on(async {
        let mut s = bal.imap(op).await;
        for m in &messages {
            s.append("INBOX", &[], m).await.expect("append");
        }
        s.logout().await.expect("logout");
    });

    let out = bal.sync(op, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "inbox: 3 new (0 faulty), 0 already kept; receipts: 1 report(s): 1 delivered, 0 read, 0 failed, 0 unchanged"
    );
    let rows: Vec<_> = bal
        .list(op)
        .iter()
        .map(|r| {
            (
                r["mailbox"].as_str().map(str::to_owned),
                r["message_id"].as_str().map(str::to_owned),
                r["from"].as_str().map(str::to_owned),
                r["subject"].as_str().map(str::to_owned),
                r["status"].as_str().map(str::to_owned),
                r["uid"].as_u64(),
            )
        })
        .collect();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        rows,
        [
            (
                some(&bal.address),
                some(&format!("{tag}.1@labo.test")),
                some("labo@sante.test"),
                some("Résultats 1"),
                some("new"),
                Some(1)
            ),
            (
                some(&bal.address),
                None,
                some("labo@sante.test"),
                some("Sans identifiant"),
                some("new"),
                Some(3)
            ),
            (
                some(&bal.address),
                some(&format!("{tag}.2@labo.test")),
                some("labo@sante.test"),
                some("Résultats 2"),
                some("new"),
                Some(4)
            ),
        ]
    );
    // the DSN moved the recipient it reports on, and is not an inbox message
    let status = rt
        .block_on(store.message(key))
        .expect("status")
        .expect("known");
    assert_eq!(status.recipients[0].state, State::Delivered);
    // kept as received, byte for byte
    let first = bal.list(op)[0]["id"].as_i64().expect("id");
    assert_eq!(
        rt.block_on(store.inbox_raw(first)).expect("raw").as_deref(),
        Some(&messages[0][..])
    );

    // a second run: nothing new, nothing twice
    let out = bal.sync(op, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "inbox: 0 new (0 faulty), 0 already kept; receipts: 0 report(s): 0 delivered, 0 read, 0 failed, 0 unchanged"
    );
    assert_eq!(bal.list(op).len(), 3);
    // the mailbox is left as it was: nothing flagged, nothing removed
    rt.block_on(async {
        let mut s = bal.imap(op).await;
        let st = s.examine("INBOX").await.expect("examine");
        assert_eq!(st.exists, 4);
        assert_eq!(
            s.uid_search("SEEN").await.expect("search"),
            Vec::<u32>::new()
        );
        s.logout().await.expect("logout");
    });
}

#[test]
fn a_folder_renumbered_by_the_server_loses_nothing_and_duplicates_nothing() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bal = Bal::new(op, dir.path(), "uidv");
    let rt = runtime();
    let tag = unique("v");
    let first: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            letter(
                &bal.address,
                Some(&format!("{tag}.{i}@labo.test")),
                &format!("n{i}"),
            )
        })
        .chain([letter(&bal.address, None, "sans identifiant")])
        .collect();
    let validity = rt.block_on(async {
        let mut s = bal.imap(op).await;
        s.create("Labo").await.expect("create");
        for m in &first {
            s.append("Labo", &[], m).await.expect("append");
        }
        let v = s.examine("Labo").await.expect("examine").uid_validity;
        s.logout().await.expect("logout");
        v
    });
    let out = bal.sync(op, &["--folder", "Labo"]);
    assert!(
        stdout(&out).starts_with("inbox: 6 new (0 faulty), 0 already kept;"),
        "{}",
        stdout(&out)
    );
    // the folder deleted and made again, the same messages put back in another order, and two more
    let renewed = rt.block_on(async {
        let mut s = bal.imap(op).await;
        s.delete("Labo").await.expect("delete");
        // Dovecot's UIDVALIDITY is a time in seconds: the new folder must not share the old one's
        tokio::time::sleep(Duration::from_millis(1100)).await;
        s.create("Labo").await.expect("create");
        for m in first.iter().rev() {
            s.append("Labo", &[], m).await.expect("append");
        }
        for i in 5..7 {
            let m = letter(
                &bal.address,
                Some(&format!("{tag}.{i}@labo.test")),
                &format!("n{i}"),
            );
            s.append("Labo", &[], &m).await.expect("append");
        }
        let v = s.examine("Labo").await.expect("examine").uid_validity;
        s.logout().await.expect("logout");
        v
    });
    assert_ne!(validity, renewed, "the server renumbered the folder");
    let out = bal.sync(op, &["--folder", "Labo"]);
    assert!(
        stdout(&out).starts_with("inbox: 2 new (0 faulty), 6 already kept;"),
        "{}",
        stdout(&out)
    );
    let listed = bal.list(op);
    let mut ids: Vec<Option<String>> = listed
        .iter()
        .map(|r| r["message_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    let mut want: Vec<Option<String>> = (0..7)
        .map(|i| Some(format!("{tag}.{i}@labo.test")))
        .chain([None])
        .collect();
    want.sort();
    assert_eq!(ids, want);
    // each row now names its place in the renumbered folder
    assert!(
        listed
            .iter()
            .all(|r| r["uid_validity"].as_u64() == renewed.map(u64::from) && r["folder"] == "Labo"),
        "{listed:?}"
    );
}

#[test]
fn crash_test_a_sync_killed_at_random_moments_keeps_each_message_once() {
    let Some(op) = operator() else { return };
    let n: usize = std::env::var("MSS_INBOX_CRASH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let bal = Bal::new(op, dir.path(), "crash");
    let tag = unique("c");
    // every tenth message without a Message-ID: those are told apart by their bytes
    let messages: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let id = (i % 10 != 0).then(|| format!("{tag}.{i}@labo.test"));
            letter(&bal.address, id.as_deref(), &format!("message {i}"))
        })
        .collect();
    runtime().block_on(async {
        let mut s = bal.imap(op).await;
        for m in &messages {
            s.append("INBOX", &[], m).await.expect("append");
        }
        s.logout().await.expect("logout");
    });
    let mut kills = 0;
    // how many messages the inbox held after each kill (shown: where the kills fell)
    let mut progress = Vec::new();
    // kill at random moments until ten kills landed while the sync was running, or a run completed
    while kills < 10 {
        let mut child = bal
            .sync_command(op, &["--fetch-size", "7"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mss");
        std::thread::sleep(Duration::from_millis(20 + jitter(200)));
        match child.try_wait().expect("wait") {
            None => kills += 1,
            Some(status) if status.success() => break,
            Some(_) => {}
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        progress.push(bal.list(op).len());
    }
    let out = bal.sync(op, &[]);
    assert!(stdout(&out).contains("0 faulty"), "{}", stdout(&out));
    let listed = bal.list(op);
    assert_eq!(listed.len(), n, "each message kept, none twice");
    let mut by_subject: HashMap<String, usize> = HashMap::new();
    for r in &listed {
        *by_subject
            .entry(r["subject"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    assert_eq!(by_subject.len(), n);
    assert!(by_subject.values().all(|c| *c == 1));
    let without_id = listed.iter().filter(|r| r["message_id"].is_null()).count();
    assert_eq!(without_id, n.div_ceil(10));
    eprintln!(
        "inbox crash test: {n} messages, {kills} kill(s) during the sync; kept after each: {progress:?}"
    );
}

/// `mss inbox ARGS` of `bal`, successful; its stdout.
fn inbox(bal: &Bal, op: &Operator, args: &[&str]) -> String {
    let out = bal.command(op, args).output().expect("running mss inbox");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The one message of `user`'s maildir whose subject starts with `prefix`, waited for.
fn delivered(op: &Operator, user: &str, prefix: &str) -> Vec<u8> {
    let start = std::time::Instant::now();
    loop {
        for f in op.maildir_files(user) {
            let raw = std::fs::read(&f).expect("read");
            let m = mss_message::read_message(&raw).expect("a message");
            if m.subject.starts_with(prefix) {
                return raw;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no message {prefix:?} delivered to {user}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_xdm_letter_is_shown_verified_and_its_outcome_answered_with_an_mdn() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        mss_testing::unavailable("the MDN is read in the sender's mailbox: needs Postfix (root)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["sender", "receiver"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("dir");
    }
    let sender = Bal::new(op, &dir.path().join("sender"), "labo");
    let bal = Bal::new(op, &dir.path().join("receiver"), "dpi");
    let rt = runtime();
    // the sender's outbox sent both letters (as mss would), and they arrive in the receiving mailbox
    let sender_store = rt.block_on(async {
        std::fs::create_dir_all(&sender.data).expect("data");
        mss_outbox::open_store(Path::new(&sender.data), None)
            .await
            .expect("store")
    });
    let (first, cda) = xdm_letter(&sender.address, &bal.address, 1);
    let (second, _) = xdm_letter(&sender.address, &bal.address, 2);
    let mut keys = Vec::new();
    for m in [&first, &second] {
        keys.push(rt.block_on(sent_raw(
            sender_store.as_ref(),
            &sender.address,
            &bal.address,
            &m.message_id,
            m.raw.clone(),
        )));
    }
    rt.block_on(async {
        let mut s = bal.imap(op).await;
        for m in [&first, &second] {
            s.append("INBOX", &[], &m.raw).await.expect("append");
        }
        s.logout().await.expect("logout");
    });
    let out = bal.sync(op, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "inbox: 2 new (0 faulty), 0 already kept; receipts: 0 report(s): 0 delivered, 0 read, 0 failed, 0 unchanged"
    );

    // listed with the reader's fields
    let rows = bal.list(op);
    let row = &rows[0];
    let shown_subject = first
        .subject
        .strip_prefix("XDM/1.0/DDM+")
        .expect("an XDM subject");
    let from_name = mss_message::read_message(&first.raw)
        .expect("read")
        .from_name;
    for (field, want) in [
        ("id", serde_json::json!(1)),
        ("mailbox", bal.address.as_str().into()),
        ("message_id", first.message_id.as_str().into()),
        ("from", sender.address.as_str().into()),
        ("from_name", from_name.clone().into()),
        ("patient", serde_json::Value::Null),
        ("subject", shown_subject.into()),
        ("status", "new".into()),
        ("end_of_exchange", false.into()),
        ("documents", 1.into()),
        ("problems", serde_json::json!([])),
        ("outcome", serde_json::Value::Null),
        ("replies_to", serde_json::Value::Null),
    ] {
        assert_eq!(row[field], want, "{field} of {row}");
    }
    assert_eq!(
        from_name.as_deref(),
        Some("Dr_Marie_MARTIN_Cabinet de cardiologie des Brotteaux")
    );
    assert!(
        row["received_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // shown with its bodies, headers and verified document
    let show: serde_json::Value =
        serde_json::from_str(&inbox(&bal, op, &["show", "1", "--json"])).expect("json");
    assert_eq!(show["id"], 1);
    assert_eq!(show["subject"], shown_subject);
    assert!(
        show["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Cher confrère,")),
        "{}",
        show["text"]
    );
    assert!(
        show["headers"]
            .as_array()
            .expect("headers")
            .contains(&serde_json::json!(["X-MSS-NIL", "DEV935997"])),
        "{}",
        show["headers"]
    );
    let sha1 = {
        use sha1::Digest as _;
        mss_types::hex(&sha1::Sha1::digest(cda.as_bytes()))
    };
    let patient_id = "279037505612309^^^&1.2.250.1.213.1.4.10&ISO^NH";
    let doc = &show["xdm"]["documents"][0];
    assert_eq!(show["xdm"]["patient_id"], patient_id);
    assert_eq!(show["xdm"]["problems"], serde_json::json!([]));
    assert_eq!(show["xdm"]["documents"].as_array().map(Vec::len), Some(1));
    for (field, want) in [
        ("name", serde_json::json!("DOC00001.XML")),
        ("size", cda.len().into()),
        ("sha1", sha1.as_str().into()),
        ("hash_ok", true.into()),
        ("type_code", "11488-4".into()),
        (
            "title",
            "Compte rendu de consultation de cardiologie".into(),
        ),
        ("patient_id", patient_id.into()),
        ("unique_id", "1.2.250.1.999.8.1.1^CR-2026-004217".into()),
    ] {
        assert_eq!(doc[field], want, "{field} of {doc}");
    }
    assert!(doc["format_code"].as_str().is_some_and(|f| !f.is_empty()));

    // exported: the archive as an attachment, the CDA as a document, 0600
    let out_dir = dir.path().join("export");
    let listing = inbox(
        &bal,
        op,
        &["export", "1", "--out", out_dir.to_str().expect("utf-8")],
    );
    assert!(listing.contains("document\t"), "{listing}");
    assert_eq!(
        std::fs::read(out_dir.join("documents").join("DOC00001.XML")).expect("document"),
        cda.as_bytes()
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(out_dir.join("IHE_XDM.zip")).expect("archive");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    // error 902: recorded, the MDN queued and sent by the receiving mailbox at once
    let connect = [
        "--from",
        &bal.address,
        "--token-file",
        &bal.token_file,
        "--server",
        &bal.server,
        "--imap-server",
        &bal.imap_server,
    ];
    let label = "Identifiant de patient inconnu";
    let mut args = vec!["ack", "1", "--error", "902", "--label", label];
    args.extend(connect);
    let out = inbox(&bal, op, &args);
    assert!(
        out.starts_with(&format!(
            "inbox message 1: error 902 {label}\nmdn queued in the outbox (message 1)\n"
        )),
        "{out}"
    );
    let mdn = delivered(op, &sender.address, "[KO Intégration système !][902] ");
    let m = mss_message::read_message(&mdn).expect("the MDN");
    assert_eq!(
        m.subject,
        format!("[KO Intégration système !][902] {}", first.subject)
    );
    // the maildir keeps lines ending in LF
    let text = String::from_utf8_lossy(&mdn).replace("\r\n", "\n");
    for field in [
        format!(
            "Disposition: automatic-action/MDN-sent-automatically; processed/Error: 902^{label}\n"
        ),
        format!("Final-Recipient: rfc822;{}\n", bal.address),
        format!("Original-Recipient: rfc822;{}\n", bal.address),
        format!("Original-Message-ID: <{}>\n", first.message_id),
        "multipart/report; report-type=\"disposition-notification\"".to_owned(),
        "Content-Type: message/rfc822".to_owned(),
    ] {
        assert!(
            text.contains(&field),
            "{field:?} missing from the MDN: {}",
            &text[..text.len().min(2500)]
        );
    }
    let attached: Vec<_> = m.attachments.iter().map(|a| a.filename.as_str()).collect();
    assert!(attached.contains(&"IHE_XDM.zip"), "{attached:?}");

    // a second ack answers the recorded outcome and queues nothing new
    let out = inbox(&bal, op, &["ack", "1", "--integrated"]);
    assert_eq!(
        out,
        format!(
            "inbox message 1: error 902 {label}\n(recorded before; this ack changed nothing)\n\
             mdn queued in the outbox (message 1)\n"
        )
    );
    let row = &bal.list(op)[0];
    assert_eq!(row["status"], "error");
    assert_eq!(row["outcome"]["code"], 902);
    assert_eq!(row["outcome"]["label"], label);

    // integrated: the MDN waits in the outbox (no connection flags), then goes with mss batch --drain
    let out = inbox(&bal, op, &["ack", "2", "--integrated"]);
    assert_eq!(
        out,
        "inbox message 2: integrated\nmdn queued in the outbox (message 2)\n"
    );
    let drain = mss()
        .env("MSS_CA_FILE", op.path("CA"))
        .args(["--data", &bal.data, "batch", "--drain", "--once"])
        .args(connect)
        .output()
        .expect("running mss batch --drain");
    assert!(drain.status.success(), "{}", stderr(&drain));
    let processed = delivered(op, &sender.address, &second.subject);
    let text = String::from_utf8_lossy(&processed).replace("\r\n", "\n");
    assert!(
        text.contains("Disposition: automatic-action/MDN-sent-automatically; processed\n"),
        "{text}"
    );
    assert!(text.contains(&format!("Original-Message-ID: <{}>\n", second.message_id)));

    // the sender's own reader reads both MDNs back: 902 failed, the other read; and a reply to the first
    // letter is linked to the outbox message it answers
    let reply = format!(
        "From: {dpi}\r\nTo: {labo}\r\nSubject: Re: patient inconnu\r\nMessage-ID: <{tag}@sante.test>\r\n\
         In-Reply-To: <{first}>\r\nReferences: <{first}>\r\n\r\nQuel patient ?\r\n",
        dpi = bal.address,
        labo = sender.address,
        tag = unique("re"),
        first = first.message_id,
    );
    rt.block_on(async {
        let mut s = sender.imap(op).await;
        s.append("INBOX", &[], reply.as_bytes())
            .await
            .expect("append");
        s.logout().await.expect("logout");
    });
    let out = sender.sync(op, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "inbox: 1 new (0 faulty), 0 already kept; receipts: 2 report(s): 0 delivered, 1 read, 1 failed, 0 unchanged"
    );
    let replies = sender.list(op);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["replies_to"], keys[0]);
    assert_eq!(replies[0]["subject"], "Re: patient inconnu");
    let states: Vec<_> = keys
        .iter()
        .map(|k| {
            let s = rt
                .block_on(sender_store.message(*k))
                .expect("status")
                .expect("known");
            (s.recipients[0].state, s.recipients[0].reason.clone())
        })
        .collect();
    assert_eq!(states[0].0, State::Failed);
    assert!(
        states[0].1.as_deref().is_some_and(|r| r.contains("902")),
        "{:?}",
        states[0]
    );
    assert_eq!(states[1].0, State::Read);
}

/// The Message-IDs of the messages in `folder` of `bal` at the operator, and those flagged `\Deleted`.
fn at_operator(
    rt: &tokio::runtime::Runtime,
    bal: &Bal,
    op: &Operator,
    folder: &str,
) -> (Vec<String>, usize) {
    rt.block_on(async {
        let mut s = bal.imap(op).await;
        let st = s.examine(folder).await.expect("examine");
        let mut ids = Vec::new();
        if st.exists > 0 {
            let uids = s.uid_search("ALL").await.expect("search");
            for m in s.uid_fetch(&uids).await.expect("fetch") {
                let raw = m.body.expect("body");
                ids.push(mss_lps::message_id(&raw).unwrap_or_default());
            }
        }
        let deleted = s.uid_search("DELETED").await.expect("search").len();
        s.logout().await.expect("logout");
        (ids, deleted)
    })
}

/// Every file under `dir` holding `marker`.
fn files_holding(dir: &Path, marker: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(files_holding(&p, marker));
        } else if std::fs::read(&p)
            .expect("read")
            .windows(marker.len())
            .any(|w| w == marker.as_bytes())
        {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_message_leaves_the_operator_only_after_its_outcome_and_its_local_copy_later() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bal = Bal::new(op, dir.path(), "retain");
    let rt = runtime();
    let tag = unique("r");
    let id = |n: u32| format!("{tag}.{n}@labo.test");
    let subject = |n: u32| format!("Compte rendu {tag} {n}");
    rt.block_on(async {
        let mut s = bal.imap(op).await;
        for n in 1..=3 {
            s.append(
                "INBOX",
                &[],
                &letter(&bal.address, Some(&id(n)), &subject(n)),
            )
            .await
            .expect("append");
        }
        s.logout().await.expect("logout");
    });
    let angle = |n: u32| format!("<{}>", id(n));
    let all_three = vec![angle(1), angle(2), angle(3)];

    // kept locally, left at the operator: no outcome yet
    let out = bal.sync(op, &[]);
    assert_eq!(
        stdout(&out).trim(),
        "inbox: 3 new (0 faulty), 0 already kept; receipts: 0 report(s): 0 delivered, 0 read, 0 failed, 0 unchanged"
    );
    assert_eq!(at_operator(&rt, &bal, op, "INBOX"), (all_three.clone(), 0));
    // an outcome alone does not touch the operator (ack has no IMAP connection)
    inbox(&bal, op, &["ack", "1", "--integrated"]);
    inbox(
        &bal,
        op,
        &["ack", "2", "--error", "902", "--label", "Patient inconnu"],
    );
    assert_eq!(at_operator(&rt, &bal, op, "INBOX"), (all_three.clone(), 0));

    // `keep` leaves them there
    let out = bal.sync(op, &["--retention", "keep"]);
    assert_eq!(
        stdout(&out).trim(),
        "inbox: 0 new (0 faulty), 0 already kept; receipts: 0 report(s): 0 delivered, 0 read, 0 failed, 0 unchanged"
    );
    assert_eq!(at_operator(&rt, &bal, op, "INBOX"), (all_three.clone(), 0));

    // the next reading with the default (delete) expunges the two with an outcome, nothing else
    let out = bal.sync(op, &[]);
    assert_eq!(
        stdout(&out).lines().nth(1),
        Some(
            "retention: 2 removed from the operator (0 only flagged \\Deleted: no UIDPLUS), 0 purged locally"
        )
    );
    assert_eq!(at_operator(&rt, &bal, op, "INBOX"), (vec![angle(3)], 0));
    // kept locally for keep_days after the outcome: all three still listed, with how they left
    let listed = bal.list(op);
    let left = |rows: &[serde_json::Value]| -> Vec<(serde_json::Value, bool)> {
        rows.iter()
            .map(|r| (r["disposition"].clone(), r["left_operator_at"].is_string()))
            .collect()
    };
    assert_eq!(
        left(&listed),
        [
            ("deleted".into(), true),
            ("deleted".into(), true),
            (serde_json::Value::Null, false)
        ]
    );

    // move:FOLDER: the third, once acknowledged, goes to that folder
    inbox(&bal, op, &["ack", "3", "--integrated"]);
    let out = bal.sync(op, &["--retention", "move:Handled"]);
    assert_eq!(
        stdout(&out).lines().nth(1),
        Some(
            "retention: 1 removed from the operator (0 only flagged \\Deleted: no UIDPLUS), 0 purged locally"
        )
    );
    assert_eq!(at_operator(&rt, &bal, op, "INBOX"), (vec![], 0));
    assert_eq!(at_operator(&rt, &bal, op, "Handled"), (vec![angle(3)], 0));
    let shown: serde_json::Value =
        serde_json::from_str(&inbox(&bal, op, &["show", "3", "--json"])).expect("json");
    assert_eq!(shown["disposition"], "moved:Handled");
    assert!(shown["left_operator_at"].is_string(), "{shown}");

    // keep_days 0: every local copy with an outcome that left the operator is purged, bytes and rows
    let data = Path::new(&bal.data);
    assert!(
        !files_holding(data, &subject(1)).is_empty(),
        "kept until now"
    );
    let out = bal.sync(op, &["--keep-days", "0"]);
    assert_eq!(
        stdout(&out).lines().nth(1),
        Some(
            "retention: 0 removed from the operator (0 only flagged \\Deleted: no UIDPLUS), 3 purged locally"
        )
    );
    assert_eq!(bal.list(op).len(), 0);
    for n in 1..=3 {
        assert_eq!(
            files_holding(data, &subject(n)),
            Vec::<std::path::PathBuf>::new()
        );
        assert_eq!(
            files_holding(data, &id(n)),
            Vec::<std::path::PathBuf>::new()
        );
    }
    // and the dir holds no file the test did not expect
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n == "data" || n == "token"),
        "{names:?}"
    );
}

#[test]
fn a_message_renumbered_before_its_retention_is_found_again_by_its_id_and_removed() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bal = Bal::new(op, dir.path(), "retuidv");
    let rt = runtime();
    let tag = unique("rv");
    let (one, two) = (format!("{tag}.1@labo.test"), format!("{tag}.2@labo.test"));
    let append = |ids: &[&str]| {
        rt.block_on(async {
            let mut s = bal.imap(op).await;
            s.create("Labo").await.expect("create");
            for id in ids {
                s.append("Labo", &[], &letter(&bal.address, Some(id), id))
                    .await
                    .expect("append");
            }
            let v = s.examine("Labo").await.expect("examine").uid_validity;
            s.logout().await.expect("logout");
            v
        })
    };
    let before = append(&[&one]);
    bal.sync(op, &["--folder", "Labo"]);
    inbox(&bal, op, &["ack", "1", "--integrated"]);
    // the server renumbers the folder (deleted, recreated) before the reader comes back: the message is
    // now second, under another UIDVALIDITY
    rt.block_on(async {
        let mut s = bal.imap(op).await;
        s.delete("Labo").await.expect("delete");
        s.logout().await.expect("logout");
    });
    let after = append(&[&two, &one]);
    assert_ne!(before, after);
    let out = bal.sync(op, &["--folder", "Labo"]);
    assert_eq!(
        stdout(&out),
        "inbox: 1 new (0 faulty), 1 already kept; receipts: 0 report(s): 0 delivered, 0 read, 0 failed, 0 unchanged\n\
         retention: 1 removed from the operator (0 only flagged \\Deleted: no UIDPLUS), 0 purged locally\n"
    );
    assert_eq!(
        at_operator(&rt, &bal, op, "Labo"),
        (vec![format!("<{two}>")], 0)
    );
    let rows: Vec<_> = bal
        .list(op)
        .iter()
        .map(|r| {
            (
                r["message_id"].as_str().map(str::to_owned),
                r["uid"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(Some(one.clone()), Some(2)), (Some(two.clone()), Some(1))]
    );
}

#[test]
fn each_message_kept_is_pushed_to_the_webhook_signed_in_order() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bal = Bal::new(op, dir.path(), "hook");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (url, got) = common::webhook_receiver(&rt, axum::http::StatusCode::OK);
    let secret_file = dir.path().join("whsec");
    std::fs::write(&secret_file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("secret");
    let tag = unique("h");
    rt.block_on(async {
        let mut s = bal.imap(op).await;
        for n in 1..=2 {
            let id = format!("{tag}.{n}@labo.test");
            s.append("INBOX", &[], &letter(&bal.address, Some(&id), &id))
                .await
                .expect("append");
        }
        s.logout().await.expect("logout");
    });
    let secret = secret_file.to_str().expect("utf-8");
    let out = bal.sync(op, &["--webhook", &url, "--webhook-secret-file", secret]);
    assert_eq!(
        stdout(&out).lines().nth(1),
        Some("webhook: 2 pushed, 0 failed (retried later), 0 given up")
    );
    // a second reading pushes nothing again
    let out = bal.sync(op, &["--webhook", &url, "--webhook-secret-file", secret]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    let requests = got.lock().expect("lock").clone();
    let key = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .expect("key");
    let listed = bal.list(op);
    assert_eq!(requests.len(), 2);
    for ((headers, body), row) in requests.iter().zip(&listed) {
        let h = |n: &str| headers[n].to_str().expect("ascii").to_owned();
        let ts: i64 = h("webhook-timestamp").parse().expect("seconds");
        assert_eq!(h("webhook-id"), format!("inbox_{}", row["id"]));
        assert_eq!(
            h("webhook-signature"),
            mss_outbox::inbox::push::signature(&key, &h("webhook-id"), ts, body)
        );
        let mut sent: serde_json::Value = serde_json::from_slice(body).expect("json");
        // the body is the list --json object as it was before it was pushed
        assert_eq!(sent["pushed_at"], serde_json::Value::Null);
        assert!(row["pushed_at"].is_string(), "{row}");
        sent["pushed_at"] = row["pushed_at"].clone();
        assert_eq!(&sent, row, "the body is the list --json object");
    }
}
