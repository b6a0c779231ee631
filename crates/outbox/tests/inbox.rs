//! The inbox side of the store, one behaviour on both backends: messages kept with their bytes, found
//! again by Message-ID (or by their bytes' hash) whatever UID the server gives them, the reader's mark
//! moved with them.

#[macro_use]
mod common;

use std::sync::Arc;

use mss_outbox::Store;
use mss_outbox::inbox::{Arrival, InboxQuery, InboxStatus, Incoming, Kept};

suite!(
    kept_messages_are_listed_with_their_bytes_and_move_the_mark,
    a_message_read_again_is_stored_once_under_any_uid,
    messages_without_an_id_are_told_apart_by_their_bytes,
    marks_are_kept_per_mailbox_and_folder,
    an_outcome_is_final_and_its_mdn_queued_once,
    a_patient_reply_is_linked_to_the_outbox_message_it_answers,
);

// retention reads the time: a clock of the test's own
mod sqlite_clock {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_leave_the_operator_after_their_outcome_and_are_purged_on_time() {
        let clock = mss_outbox::ManualClock::new();
        let (store, dir) = super::common::sqlite_store_with(&clock);
        super::messages_leave_the_operator_after_their_outcome_and_are_purged_on_time(
            store, &clock,
        )
        .await;
        // nothing of the purged messages is left in any file of the store (bytes, rows, log)
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).expect("read");
            for marker in [&b"purge-a"[..], b"purge-b"] {
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker),
                    "{} still holds {:?}",
                    entry.display(),
                    String::from_utf8_lossy(marker)
                );
            }
        }
        // the one still new is there, bytes and row
        let kept = walk(dir.path()).into_iter().any(|p| {
            std::fs::read(p)
                .expect("read")
                .windows(7)
                .any(|w| w == b"purge-c")
        });
        assert!(kept, "the new message's bytes are kept");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}

mod postgres_clock {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_leave_the_operator_after_their_outcome_and_are_purged_on_time() {
        let clock = mss_outbox::ManualClock::new();
        let Some((store, _url)) = super::common::pg_store_with(&clock).await else {
            return;
        };
        super::messages_leave_the_operator_after_their_outcome_and_are_purged_on_time(
            store, &clock,
        )
        .await;
    }
}

const BOX: &str = "bob@sante.test";
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

async fn messages_leave_the_operator_after_their_outcome_and_are_purged_on_time(
    s: Arc<dyn Store>,
    clock: &mss_outbox::ManualClock,
) {
    use mss_outbox::inbox::Leaving;
    let kept = s
        .keep(
            BOX,
            "INBOX",
            7,
            3,
            vec![
                incoming(1, raw(Some("a@lab.test"), "purge-a", "purge-a body")),
                incoming(2, raw(Some("b@lab.test"), "purge-b", "purge-b body")),
                incoming(3, raw(Some("c@lab.test"), "purge-c", "purge-c body")),
            ],
        )
        .await
        .expect("keep");
    let [a, b, c] = ids(&kept)[..] else {
        panic!("three kept")
    };
    // nothing leaves before its outcome
    assert_eq!(
        s.inbox_leaving(BOX, "INBOX", 10).await.expect("leaving"),
        Vec::<Leaving>::new()
    );
    s.inbox_outcome(a, InboxStatus::Integrated, None, None)
        .await
        .expect("outcome");
    clock.advance(DAY);
    s.inbox_outcome(b, InboxStatus::Error, Some(902), Some("inconnu"))
        .await
        .expect("outcome");
    let leaving = |id, uid| Leaving {
        id,
        uid_validity: 7,
        uid,
    };
    assert_eq!(
        s.inbox_leaving(BOX, "INBOX", 10).await.expect("leaving"),
        [leaving(a, 1), leaving(b, 2)]
    );
    assert_eq!(
        s.inbox_leaving(BOX, "INBOX", 1).await.expect("leaving"),
        [leaving(a, 1)]
    );
    assert_eq!(
        s.inbox_leaving(BOX, "Other", 10).await.expect("leaving"),
        Vec::<Leaving>::new()
    );
    assert_eq!(
        s.inbox_leaving("x@sante.test", "INBOX", 10)
            .await
            .expect("leaving"),
        Vec::<Leaving>::new()
    );
    s.inbox_left(&[a], "deleted").await.expect("left");
    assert_eq!(
        s.inbox_leaving(BOX, "INBOX", 10).await.expect("leaving"),
        [leaving(b, 2)]
    );

    // a's outcome is 1 day old, b's just recorded: nothing is due under 30 days
    let keep = 30 * DAY;
    assert_eq!(
        s.inbox_purge(BOX, keep, false).await.expect("purge"),
        Vec::<i64>::new()
    );
    clock.advance(29 * DAY);
    // a is 30 days past its outcome and left the operator; b is 29 days past and still there
    assert_eq!(s.inbox_purge(BOX, keep, true).await.expect("purge"), [a]);
    assert_eq!(s.inbox_get(a).await.expect("get"), None);
    assert_eq!(s.inbox_raw(a).await.expect("raw"), None);
    clock.advance(DAY);
    // b is due but has not left the operator: kept while retention still has to remove it there
    assert_eq!(
        s.inbox_purge(BOX, keep, true).await.expect("purge"),
        Vec::<i64>::new()
    );
    assert_eq!(s.inbox_purge(BOX, keep, false).await.expect("purge"), [b]);
    // a message still new is never purged, whatever the delay
    assert_eq!(
        s.inbox_purge(BOX, std::time::Duration::ZERO, false)
            .await
            .expect("purge"),
        Vec::<i64>::new()
    );
    let left: Vec<i64> = all(s.as_ref()).await.iter().map(|e| e.id).collect();
    assert_eq!(left, [c]);
    // met again (retention `keep` leaves them at the operator; here in a renumbered folder): their
    // tombstones keep them out; c is known, a message never seen is new
    let again = s
        .keep(
            BOX,
            "INBOX",
            8,
            4,
            vec![
                incoming(1, raw(Some("a@lab.test"), "purge-a", "purge-a body")),
                incoming(2, raw(Some("b@lab.test"), "purge-b", "purge-b body")),
                incoming(3, raw(Some("c@lab.test"), "purge-c", "purge-c body")),
                incoming(4, raw(Some("d@lab.test"), "purge-d", "purge-d body")),
            ],
        )
        .await
        .expect("keep again");
    assert!(
        matches!(again[..], [Kept::Gone, Kept::Gone, Kept::Known(x), Kept::New(_)] if x == c),
        "{again:?}"
    );
    let left: Vec<Option<String>> = all(s.as_ref())
        .await
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(
        left,
        [Some("c@lab.test".to_owned()), Some("d@lab.test".to_owned())]
    );
    assert_eq!(
        s.inbox_raw(c).await.expect("raw").as_deref(),
        Some(&raw(Some("c@lab.test"), "purge-c", "purge-c body")[..])
    );
}

fn raw(id: Option<&str>, subject: &str, body: &str) -> Vec<u8> {
    let id = id
        .map(|i| format!("Message-ID: <{i}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: alice@sante.test\r\nTo: {BOX}\r\nSubject: {subject}\r\n{id}Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn incoming(uid: u32, bytes: Vec<u8>) -> Incoming {
    match Arrival::read(uid, bytes) {
        Arrival::Message(m) => m,
        Arrival::Report(_) => panic!("not a report"),
    }
}

fn ids(kept: &[Kept]) -> Vec<i64> {
    kept.iter()
        .map(|k| match k {
            Kept::New(id) | Kept::Known(id) => *id,
            Kept::Gone => 0,
        })
        .collect()
}

async fn all(s: &dyn Store) -> Vec<mss_outbox::inbox::InboxEntry> {
    s.inbox_list(&InboxQuery::default()).await.expect("list")
}

async fn kept_messages_are_listed_with_their_bytes_and_move_the_mark(s: Arc<dyn Store>) {
    assert_eq!(s.inbox_cursor(BOX, "INBOX").await.expect("cursor"), None);
    let one = raw(Some("r1@lab.test"), "Résultats", "bonjour");
    let two = raw(Some("r2@lab.test"), "Compte rendu", "au revoir");
    let kept = s
        .keep(
            BOX,
            "INBOX",
            77,
            12,
            vec![incoming(3, one.clone()), incoming(12, two.clone())],
        )
        .await
        .expect("keep");
    assert!(matches!(kept[..], [Kept::New(_), Kept::New(_)]), "{kept:?}");
    assert_eq!(
        s.inbox_cursor(BOX, "INBOX").await.expect("cursor"),
        Some((77, 12))
    );
    let listed = all(s.as_ref()).await;
    let rows: Vec<_> = listed
        .iter()
        .map(|e| {
            (
                e.id,
                e.mailbox.as_str(),
                e.folder.as_str(),
                e.uid_validity,
                e.uid,
                e.message_id.as_deref(),
                e.from.as_deref(),
                e.subject.as_deref(),
                e.status,
                e.size,
            )
        })
        .collect();
    let ids = ids(&kept);
    assert_eq!(
        rows,
        [
            (
                ids[0],
                BOX,
                "INBOX",
                77,
                3,
                Some("r1@lab.test"),
                Some("alice@sante.test"),
                Some("Résultats"),
                InboxStatus::New,
                one.len() as u64
            ),
            (
                ids[1],
                BOX,
                "INBOX",
                77,
                12,
                Some("r2@lab.test"),
                Some("alice@sante.test"),
                Some("Compte rendu"),
                InboxStatus::New,
                two.len() as u64
            ),
        ]
    );
    // the reader's summary (was `{"problems": []}` before it carried the listing's fields)
    assert_eq!(
        listed[0].summary,
        serde_json::json!({
            "from_name": null,
            "patient": null,
            "date": "2026-11-23T10:00:00+01:00",
            "end_of_exchange": false,
            "documents": 0,
            "attachments": 0,
            "disposition_notification_to": null,
            "thread_ids": [],
            "problems": [],
        })
    );
    assert_eq!(
        s.inbox_raw(ids[0]).await.expect("raw").as_deref(),
        Some(&one[..])
    );
    assert_eq!(
        s.inbox_raw(ids[1]).await.expect("raw").as_deref(),
        Some(&two[..])
    );
    assert_eq!(s.inbox_raw(ids[1] + 100).await.expect("raw"), None);
    // the filters: all are new, none integrated; paging by id
    let new = s
        .inbox_list(&InboxQuery {
            status: Some(InboxStatus::New),
            ..InboxQuery::default()
        })
        .await
        .expect("new");
    assert_eq!(new.len(), 2);
    let integrated = s
        .inbox_list(&InboxQuery {
            status: Some(InboxStatus::Integrated),
            ..InboxQuery::default()
        })
        .await
        .expect("integrated");
    assert!(integrated.is_empty());
    let page = s
        .inbox_list(&InboxQuery {
            after: ids[0],
            limit: 1,
            ..InboxQuery::default()
        })
        .await
        .expect("page");
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[1]]);
    let json = serde_json::to_value(&listed[0]).expect("json");
    assert_eq!(json["status"], "new");
    assert!(
        json["received_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );
}

async fn a_message_read_again_is_stored_once_under_any_uid(s: Arc<dyn Store>) {
    let one = raw(Some("again@lab.test"), "s", "b");
    let first = s
        .keep(BOX, "INBOX", 1, 5, vec![incoming(5, one.clone())])
        .await
        .expect("keep");
    // a reader killed before its mark moved reads it again
    let again = s
        .keep(BOX, "INBOX", 1, 5, vec![incoming(5, one.clone())])
        .await
        .expect("again");
    assert_eq!(again, [Kept::Known(ids(&first)[0])]);
    // the server renumbered the folder (new UIDVALIDITY): same message, new UID
    let renumbered = s
        .keep(BOX, "INBOX", 2, 1, vec![incoming(1, one.clone())])
        .await
        .expect("renumbered");
    assert_eq!(renumbered, [Kept::Known(ids(&first)[0])]);
    let listed = all(s.as_ref()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].uid_validity, listed[0].uid),
        (2, 1),
        "its place now"
    );
    assert_eq!(
        s.inbox_cursor(BOX, "INBOX").await.expect("cursor"),
        Some((2, 1))
    );
    // twice in one reading (the same Message-ID at two UIDs): once
    let twin = raw(Some("twin@lab.test"), "s", "b");
    let kept = s
        .keep(
            BOX,
            "INBOX",
            2,
            9,
            vec![incoming(8, twin.clone()), incoming(9, twin)],
        )
        .await
        .expect("twins");
    assert!(
        matches!(kept[..], [Kept::New(a), Kept::Known(b)] if a == b),
        "{kept:?}"
    );
    assert_eq!(all(s.as_ref()).await.len(), 2);
}

async fn messages_without_an_id_are_told_apart_by_their_bytes(s: Arc<dyn Store>) {
    let a = raw(None, "a", "one");
    let b = raw(None, "b", "two");
    let kept = s
        .keep(
            BOX,
            "INBOX",
            1,
            3,
            vec![
                incoming(1, a.clone()),
                incoming(2, b),
                incoming(3, a.clone()),
            ],
        )
        .await
        .expect("keep");
    assert!(
        matches!(kept[..], [Kept::New(x), Kept::New(y), Kept::Known(z)] if x != y && x == z),
        "{kept:?}"
    );
    let listed = all(s.as_ref()).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].message_id, None);
    // a message that makes the MIME parser panic (mail-parser 0.11.9) is kept too, with its problem
    let broken = incoming(
        4,
        include_bytes!("../../message/tests/fixtures/mail-parser-0.11.9-panic.eml").to_vec(),
    );
    assert!(broken.is_faulty(), "{}", broken.summary);
    let kept = s
        .keep(BOX, "INBOX", 1, 4, vec![broken])
        .await
        .expect("broken");
    assert!(matches!(kept[..], [Kept::New(_)]));
    let listed = all(s.as_ref()).await;
    let problems = listed[2].summary["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{}", listed[2].summary);
}

async fn marks_are_kept_per_mailbox_and_folder(s: Arc<dyn Store>) {
    s.keep(BOX, "INBOX", 1, 10, Vec::new()).await.expect("mark");
    s.keep(BOX, "Archives", 4, 2, Vec::new())
        .await
        .expect("mark");
    s.keep("carol@sante.test", "INBOX", 9, 3, Vec::new())
        .await
        .expect("mark");
    assert_eq!(
        s.inbox_cursor(BOX, "INBOX").await.expect("c"),
        Some((1, 10))
    );
    assert_eq!(
        s.inbox_cursor(BOX, "Archives").await.expect("c"),
        Some((4, 2))
    );
    assert_eq!(
        s.inbox_cursor("carol@sante.test", "INBOX")
            .await
            .expect("c"),
        Some((9, 3))
    );
    // the same Message-ID in two mailboxes is two messages (each mailbox received its copy)
    let m = raw(Some("both@lab.test"), "s", "b");
    let a = s
        .keep(BOX, "INBOX", 1, 11, vec![incoming(11, m.clone())])
        .await
        .expect("a");
    let b = s
        .keep("carol@sante.test", "INBOX", 9, 4, vec![incoming(4, m)])
        .await
        .expect("b");
    assert!(matches!((a[0], b[0]), (Kept::New(x), Kept::New(y)) if x != y));
    let carol = s
        .inbox_list(&InboxQuery {
            mailbox: Some("carol@sante.test".into()),
            ..InboxQuery::default()
        })
        .await
        .expect("carol");
    assert_eq!(carol.len(), 1);
}

#[tokio::test]
async fn the_bytes_are_health_data_readable_by_the_service_only() {
    use std::os::unix::fs::PermissionsExt;
    let (s, dir) = common::sqlite_store();
    let kept = s
        .keep(
            BOX,
            "INBOX",
            1,
            1,
            vec![incoming(1, raw(Some("p@x"), "s", "b"))],
        )
        .await
        .expect("keep");
    assert!(matches!(kept[..], [Kept::New(_)]));
    let spool = dir.path().join("outbox.inbox");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&spool), 0o700);
    let files: Vec<_> = std::fs::read_dir(&spool)
        .expect("spool")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&files[0]), 0o600);
    // nothing new, nothing written: a re-read stores no bytes
    s.keep(
        BOX,
        "INBOX",
        1,
        1,
        vec![incoming(1, raw(Some("p@x"), "s", "b"))],
    )
    .await
    .expect("again");
    assert_eq!(std::fs::read_dir(&spool).expect("spool").count(), 1);
}

async fn an_outcome_is_final_and_its_mdn_queued_once(s: Arc<dyn Store>) {
    use mss_outbox::inbox::ack::{Ack, Answering, acknowledge};
    let asking = format!(
        "From: Labo <alice@sante.test>\r\nTo: {BOX}\r\nSubject: XDM/1.0/DDM+CR\r\n\
         Message-ID: <ask@lab.test>\r\nDisposition-Notification-To: <alice@sante.test>\r\n\r\nhi\r\n"
    );
    let kept = s
        .keep(
            BOX,
            "INBOX",
            1,
            2,
            vec![
                incoming(1, asking.into_bytes()),
                incoming(2, raw(Some("quiet@lab.test"), "sans accusé", "hi")),
            ],
        )
        .await
        .expect("keep");
    let ids = ids(&kept);
    let answering = Answering {
        auth_ref: format!("token:{BOX}"),
        product_reference: "NIL-TEST".into(),
        error_mailbox: None,
        label: Some("Hopital Test - Laboratoire".into()),
    };
    let error = Ack::error(902, "Identifiant de patient inconnu").expect("ack");
    let first = acknowledge(s.as_ref(), ids[0], &error, &answering)
        .await
        .expect("ack")
        .expect("known");
    assert!(first.recorded);
    assert_eq!(first.entry.status, InboxStatus::Error);
    let outcome = first.entry.outcome.clone().expect("outcome");
    assert_eq!(
        (outcome.code, outcome.label.as_deref()),
        (Some(902), Some("Identifiant de patient inconnu"))
    );
    let answer = first.answer.expect("an MDN");
    assert_eq!(answer.kind, "mdn");
    let mdn = s
        .message(answer.message)
        .await
        .expect("status")
        .expect("queued");
    assert_eq!(mdn.sender.as_str(), BOX);
    assert_eq!(mdn.idempotency_key, format!("mdn:{BOX}:{}", ids[0]));
    let to: Vec<_> = mdn.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["alice@sante.test"]);
    // the second ack changes nothing and queues nothing new
    let second = acknowledge(s.as_ref(), ids[0], &Ack::Integrated, &answering)
        .await
        .expect("ack")
        .expect("known");
    assert!(!second.recorded);
    assert_eq!(second.entry.status, InboxStatus::Error);
    assert_eq!(second.entry.outcome, Some(outcome));
    assert_eq!(second.answer.map(|a| a.message), Some(answer.message));
    // no MDN asked, no error mailbox: recorded, nothing queued
    let quiet = acknowledge(s.as_ref(), ids[1], &Ack::Integrated, &answering)
        .await
        .expect("ack")
        .expect("known");
    assert!(quiet.recorded && quiet.answer.is_none());
    assert_eq!(quiet.entry.status, InboxStatus::Integrated);
    assert_eq!(
        quiet
            .entry
            .outcome
            .as_ref()
            .map(|o| (o.code, o.label.clone())),
        Some((None, None))
    );
    // no MDN asked, an error, an error mailbox: the plain notice goes there
    let kept = s
        .keep(
            BOX,
            "INBOX",
            1,
            3,
            vec![incoming(
                3,
                raw(Some("third@lab.test"), "XDM/1.0/DDM+CR", "hi"),
            )],
        )
        .await
        .expect("keep");
    let with_error_mailbox = Answering {
        error_mailbox: Some("integration@sante.test".parse().expect("address")),
        ..answering.clone()
    };
    let third = crate::ids(&kept)[0];
    let notice = acknowledge(s.as_ref(), third, &error, &with_error_mailbox)
        .await
        .expect("ack")
        .expect("known")
        .answer
        .expect("a notice");
    assert_eq!(notice.kind, "error_notice");
    let queued = s
        .message(notice.message)
        .await
        .expect("status")
        .expect("queued");
    let to: Vec<_> = queued
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(to, ["integration@sante.test"]);
    assert!(
        acknowledge(s.as_ref(), ids[1] + 1000, &Ack::Integrated, &answering)
            .await
            .expect("ack")
            .is_none()
    );
    let errors = s
        .inbox_list(&InboxQuery {
            status: Some(InboxStatus::Error),
            ..InboxQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        errors.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[0], third]
    );
    // both answers are sent under the mailbox's label (Ref#2 ECO.2.2.7)
    let leased = s
        .lease("w", None, 10, std::time::Duration::from_secs(60))
        .await
        .expect("lease");
    assert_eq!(leased.len(), 2);
    for m in leased {
        let read = mss_message::read_message(&m.content).expect("read");
        assert_eq!(read.from.as_deref(), Some(BOX));
        assert_eq!(
            read.from_name.as_deref(),
            Some("Hopital Test - Laboratoire")
        );
    }
}

async fn a_patient_reply_is_linked_to_the_outbox_message_it_answers(s: Arc<dyn Store>) {
    let sent = s
        .enqueue(
            None,
            None,
            vec![mss_outbox::NewMessage {
                idempotency_key: "k1".into(),
                label: "sent.eml".into(),
                sender: BOX.parse().expect("address"),
                auth_ref: format!("token:{BOX}"),
                message_id: "<sent@mss.test>".into(),
                content: raw(Some("sent@mss.test"), "question", "?"),
                recipients: vec!["alice@sante.test".parse().expect("address")],
                dsn: false,
            }],
        )
        .await
        .expect("enqueue")[0]
        .key();
    for ids in [
        vec!["other@x".to_owned(), "sent@mss.test".to_owned()],
        vec!["<sent@mss.test>".to_owned()],
    ] {
        assert_eq!(s.inbox_replied(&ids).await.expect("replied"), Some(sent));
    }
    assert_eq!(
        s.inbox_replied(&["nothing@x".to_owned()])
            .await
            .expect("replied"),
        None
    );
    let mut reply = incoming(
        5,
        format!(
            "From: Pierre-Antoine Santoni <185072A00401797@patient.mssante.fr>\r\nTo: {BOX}\r\n\
             Subject: Re: question\r\nX-MSS-MES: FIN\r\n\
             Message-ID: <re@lab.test>\r\nIn-Reply-To: <sent@mss.test>\r\n\r\n!\r\n"
        )
        .into_bytes(),
    );
    assert_eq!(reply.thread_ids(), ["sent@mss.test"]);
    reply.set_replies_to(sent);
    let kept = s.keep(BOX, "INBOX", 1, 5, vec![reply]).await.expect("keep");
    let entry = s
        .inbox_get(ids(&kept)[0])
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(entry.details.replies_to, Some(sent));
    assert_eq!(entry.subject.as_deref(), Some("Re: question"));
    // a patient's reply from Mon espace santé, ending the exchange (docs/mssante.md R2)
    assert_eq!(
        entry.details.patient,
        Some(serde_json::json!({"ins": "185072A00401797", "name": "Pierre-Antoine Santoni"}))
    );
    assert_eq!(
        entry.details.from_name.as_deref(),
        Some("Pierre-Antoine Santoni")
    );
    assert!(entry.details.end_of_exchange);
    assert_eq!(
        entry.from.as_deref(),
        Some("185072A00401797@patient.mssante.fr")
    );
}

mod webhook {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use base64::Engine as _;
    use hmac::Mac as _;
    use mss_outbox::inbox::push::{PushReport, Webhook, push_pending};

    use super::{BOX, incoming, raw};

    /// What the receiver got: headers and body of each request.
    type Got = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

    /// A receiver that fails its first two requests, and every one for a message whose subject says so.
    async fn receiver() -> (String, Got) {
        let got: Got = Arc::default();
        let seen = Arc::clone(&got);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let mut g = seen.lock().expect("lock");
                        g.push((headers, body.to_vec()));
                        let always = body.windows(6).any(|w| w == b"broken");
                        if g.len() <= 2 || always {
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            axum::http::StatusCode::NO_CONTENT
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, got)
    }

    /// Checks the Standard Webhooks signature of one request with the key, as a receiver does.
    fn verify(key: &[u8], headers: &axum::http::HeaderMap, body: &[u8]) -> String {
        let h = |n: &str| headers[n].to_str().expect("ascii").to_owned();
        let (id, ts) = (h("webhook-id"), h("webhook-timestamp"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let ts_n: u64 = ts.parse().expect("seconds");
        assert!(now.abs_diff(ts_n) < 300, "timestamp {ts} not now");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        let want = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(h("webhook-signature"), want);
        assert_eq!(h("content-type"), "application/json");
        id
    }

    async fn pushed_in_order_retried_and_given_up(
        s: Arc<dyn mss_outbox::Store>,
        clock: &mss_outbox::ManualClock,
    ) {
        let (url, got) = receiver().await;
        let key = b"a webhook key of the LPS back-end".to_vec();
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&key)
        );
        let hook = Webhook::new(&url, &secret).expect("hook");
        let kept = s
            .keep(
                BOX,
                "INBOX",
                1,
                2,
                vec![
                    incoming(1, raw(Some("w1@lab.test"), "premier", "un")),
                    incoming(2, raw(Some("w2@lab.test"), "second", "deux")),
                ],
            )
            .await
            .expect("keep");
        let [a, b] = super::ids(&kept)[..] else {
            panic!("two kept")
        };
        let report = |pushed, failed, given_up| PushReport {
            pushed,
            failed,
            given_up,
        };
        // fails: the first message stays at the head, nothing after it goes
        assert_eq!(
            push_pending(s.as_ref(), BOX, &hook).await.expect("push"),
            report(0, 1, 0)
        );
        // not due yet
        assert_eq!(
            push_pending(s.as_ref(), BOX, &hook).await.expect("push"),
            report(0, 0, 0)
        );
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            push_pending(s.as_ref(), BOX, &hook).await.expect("push"),
            report(0, 1, 0)
        );
        clock.advance(Duration::from_secs(4 * 60));
        assert_eq!(
            push_pending(s.as_ref(), BOX, &hook).await.expect("push"),
            report(0, 0, 0)
        );
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            push_pending(s.as_ref(), BOX, &hook).await.expect("push"),
            report(2, 0, 0)
        );
        assert_eq!(
            push_pending(s.as_ref(), BOX, &hook).await.expect("push"),
            report(0, 0, 0)
        );

        let requests = got.lock().expect("lock").clone();
        let ids: Vec<String> = requests.iter().map(|(h, b)| verify(&key, h, b)).collect();
        let (ia, ib) = (format!("inbox_{a}"), format!("inbox_{b}"));
        assert_eq!(ids, [ia.clone(), ia.clone(), ia, ib]);
        // the body is the message as `mss inbox list --json` shows it
        // as it was before it was pushed; since, with the time it was
        for ((_, body), id) in requests.iter().zip([a, a, a, b]) {
            let mut entry = s.inbox_get(id).await.expect("get").expect("kept");
            assert_eq!(entry.pushed_at, Some(mss_outbox::Clock::now_ms(clock)));
            entry.pushed_at = None;
            let sent: serde_json::Value = serde_json::from_slice(body).expect("json");
            assert_eq!(sent, serde_json::to_value(&entry).expect("json"));
        }

        // a message the receiver never takes is retried with backoff for 3 days, then given up, and the
        // next one goes
        s.keep(
            BOX,
            "INBOX",
            1,
            4,
            vec![
                incoming(3, raw(Some("w3@lab.test"), "broken", "trois")),
                incoming(4, raw(Some("w4@lab.test"), "quatre", "quatre")),
            ],
        )
        .await
        .expect("keep");
        let start = got.lock().expect("lock").len();
        let mut elapsed = Duration::ZERO;
        let mut total = PushReport::default();
        while total.given_up == 0 {
            let r = push_pending(s.as_ref(), BOX, &hook).await.expect("push");
            total.pushed += r.pushed;
            total.failed += r.failed;
            total.given_up += r.given_up;
            assert!(
                elapsed < Duration::from_secs(4 * 24 * 3600),
                "never given up"
            );
            clock.advance(Duration::from_secs(3600));
            elapsed += Duration::from_secs(3600);
        }
        assert!(
            elapsed >= Duration::from_secs(3 * 24 * 3600),
            "given up after {elapsed:?}"
        );
        // the clock moving by the hour: tries at 0, 1, 2, 3 h (5 s, 5 min, 30 min, 2 h later), 5 h, 10 h,
        // then every 10 h: the try at 80 h, past 3 days of failing, gives it up, and the next one goes
        assert_eq!((total.pushed, total.failed, total.given_up), (1, 12, 1));
        let later: Vec<String> = got.lock().expect("lock")[start..]
            .iter()
            .map(|(h, b)| verify(&key, h, b))
            .collect();
        assert_eq!(later.len(), 14);
        assert_eq!(
            later.last().map(String::as_str),
            Some(format!("inbox_{}", b + 2).as_str())
        );
        // given up is not pushed
        let given_up = s.inbox_get(b + 1).await.expect("get").expect("kept");
        let next = s.inbox_get(b + 2).await.expect("get").expect("kept");
        assert_eq!(
            (given_up.pushed_at.is_some(), next.pushed_at.is_some()),
            (false, true)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let clock = mss_outbox::ManualClock::new();
        let (store, _dir) = super::common::sqlite_store_with(&clock);
        pushed_in_order_retried_and_given_up(store, &clock).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let clock = mss_outbox::ManualClock::new();
        let Some((store, _url)) = super::common::pg_store_with(&clock).await else {
            return;
        };
        pushed_in_order_retried_and_given_up(store, &clock).await;
    }
}
