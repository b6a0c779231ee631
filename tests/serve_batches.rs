//! `POST /v1/batches` on the real `mss serve`, whose workers deliver through the local operator
//! (scripts/lps-operator.sh: Postfix + Dovecot as root): compose requests accepted (202) and delivered into the
//! Dovecot mailbox with the Message-IDs answered, a recipient refused with 5xx shown failed with the reply,
//! an expired token pausing the mailbox until a new token file is dropped, bad bodies refused naming the item
//! and the field, and a full disk answered with 503 and nothing half-stored; and a sender with
//! `receive = true` keeping what arrives in its mailbox in the inbox, pushing it to a webhook, and removing
//! it at the operator once acknowledged over REST.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Server, demo_file, import, shared_dir, unique};
use mss_testing::lps::{Operator, TokenKind, operator};
use mss_testing::unavailable;
use serde_json::{Value, json};

/// One index shared by the tests (each has its own outbox, `--outbox PATH`).
fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = shared_dir("serve-batches-500");
        let file = demo_file(&dir, 500, 8, false);
        import(&dir.join("data"), &file);
        // the test domains are in the data directory's whitelist (docs/mssante.md M8)
        common::install_whitelist(&dir.join("data"), mss_testing::TEST_DOMAINS);
        dir
    })
}

/// A configuration with one sender, `alice`, whose token is in `token_file`.
fn config(
    dir: &Path,
    submission: &str,
    ca: Option<&Path>,
    token_file: &Path,
    extra: &str,
    sender_extra: &str,
) -> PathBuf {
    let conf = dir.join("mss.toml");
    let ca = ca.map(|c| format!("ca_file = {c:?}\n")).unwrap_or_default();
    std::fs::write(
        &conf,
        format!(
            "[send]\nproduct_reference = \"MSS-TEST-NIL\"\n{ca}submission = {submission:?}\n\n\
             [outbox]\nworker = \"test\"\n{extra}\n\n\
             [[senders]]\nname = \"alice\"\naddress = \"alice@sante.test\"\ntoken_file = {token_file:?}\n{sender_extra}\n"
        ),
    )
    .expect("config");
    conf
}

/// `mss serve` with a client holding every scope beside the configuration; requests go with its key.
fn start(conf: &Path, outbox: &Path) -> Server {
    start_in(
        &data_dir().join("data"),
        conf,
        outbox.to_str().expect("utf-8"),
    )
}

/// [`start`] with its data directory and an outbox path or URL.
fn start_in(data: &Path, conf: &Path, outbox: &str) -> Server {
    let clients = conf.with_file_name("clients.toml");
    // a restarted service keeps its client (batches belong to the client that made them)
    let key_file = conf.with_file_name("client.key");
    if !clients.exists() {
        let key = common::add_client(&clients, "test", &["batches:write", "batches:read"]);
        std::fs::write(&key_file, key).expect("key file");
    }
    let key = std::fs::read_to_string(&key_file).expect("key file");
    Server::start(
        data,
        &[
            "--config",
            conf.to_str().expect("utf-8"),
            "--outbox",
            outbox,
            "--clients",
            clients.to_str().expect("utf-8"),
        ],
    )
    .with_key(&key)
}

fn compose(i: usize, to: &[&str]) -> Value {
    json!({
        "sender": {"address": "alice@sante.test", "type": "PER", "first_name": "Alice", "last_name": "Martin"},
        "recipients": {"to": to},
        "subject": format!("Résultat {i}"),
        "body": {"text": format!("Bonjour,\nvoici le résultat {i}.\n")}
    })
}

struct Answer {
    status: u16,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn call(req: reqwest::blocking::RequestBuilder) -> Answer {
    let r = req.send().expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = r.text().expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

fn post(s: &Server, body: &Value) -> Answer {
    call(s.http.post(s.url("/v1/batches")).json(body))
}

fn get(s: &Server, path: &str) -> Answer {
    call(s.http.get(s.url(path)))
}

/// Asserts a problem+json answer and returns the names in `invalid-params`.
fn problem(a: &Answer, status: u16) -> Vec<String> {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.body);
    assert_eq!(a.body["status"], status);
    a.body["invalid-params"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls the batch until no recipient is pending, or `wait` passed.
fn settled(s: &Server, id: &str, wait: Duration) -> Value {
    let start = Instant::now();
    loop {
        let a = get(s, &format!("/v1/batches/{id}?limit=0"));
        assert_eq!(a.status, 200, "{}", a.body);
        let c = &a.body["counts"];
        let pending = ["queued", "sending", "deferred"]
            .iter()
            .map(|k| c[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        if pending == 0 || start.elapsed() > wait {
            return a.body;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The distinct Message-IDs in `user`'s maildir once `expected` of them are there (Postfix delivers
/// asynchronously; up to 30 s).
fn mailbox(op: &Operator, user: &str, expected: usize) -> HashSet<String> {
    op.message_ids(user, expected, Duration::from_secs(30))
        .into_keys()
        .collect()
}

#[test]
fn a_batch_is_accepted_delivered_and_followed_and_a_new_token_file_resumes_it() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        unavailable("reading the mailboxes and 5xx refusals need Postfix (root)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let psc = op.psc();
    // the ops team's token file starts expired: the mailbox pauses until a new one is dropped
    let token_file = dir.path().join("alice.token");
    let expired = psc.token("alice@sante.test", TokenKind::Expired);
    std::fs::write(&token_file, expired.expose()).expect("token");
    let conf = config(
        dir.path(),
        &format!("localhost:{}", op.port("SUBMISSION_PORT")),
        Some(&op.path("CA")),
        &token_file,
        "",
        &format!("imap = \"localhost:{}\"", op.port("IMAP_PORT")),
    );
    let mut s = start(&conf, &dir.path().join("outbox.sqlite"));

    let rcpt = format!("{}@sante.test", unique("api"));
    // delivery reports asked by every letter but the first, which stays `sent`
    let asking_dsn = |mut request: Value| {
        request["receipts"] = json!({"dsn": true});
        request
    };
    let mut items: Vec<Value> = (0..30)
        .map(|i| {
            let request = compose(i, &[&rcpt]);
            let request = if i == 0 { request } else { asking_dsn(request) };
            json!({"idempotency_key": format!("k{i}"), "compose": request})
        })
        .collect();
    // one letter also to a recipient outside the trust space: Postfix refuses it with 554
    items.push(json!({"idempotency_key": "k30", "label": "mixed", "compose": asking_dsn(compose(30, &[&rcpt, "x@elsewhere.test"]))}));
    // and one Postfix accepts, then bounces: the report of a failure comes even unasked, and read back
    // over IMAP it fails the recipient
    items.push(json!({"idempotency_key": "k31", "compose": compose(31, &["unknown@sante.test"])}));
    let body = json!({"sender": "alice@sante.test", "auth": "alice", "items": items});
    let a = post(&s, &body);
    assert_eq!(a.status, 202, "{}", a.body);
    let batch = a.body["batch_id"].as_str().expect("batch id").to_owned();
    assert_eq!(
        a.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v1/batches/{batch}").as_str())
    );
    assert_eq!(
        (a.body["accepted"].as_u64(), a.body["duplicates"].as_u64()),
        (Some(32), Some(0))
    );
    let accepted = a.body["items"].as_array().expect("items").clone();
    let ids: HashSet<String> = accepted[..31]
        .iter()
        .map(|i| i["message_id"].as_str().expect("message id").to_owned())
        .collect();
    assert_eq!(ids.len(), 31);
    assert_eq!(accepted[30]["idempotency_key"], "k30");
    let mixed = accepted[30]["id"].as_i64().expect("id");
    let bounced = accepted[31]["id"].as_i64().expect("id");

    // expired token: paused, with the reason, nothing sent
    let start_wait = Instant::now();
    let paused = loop {
        let m = get(&s, &format!("/v1/messages/{mixed}"));
        assert_eq!(m.status, 200, "{}", m.body);
        if let Some(p) = m.body["paused"].as_str() {
            break p.to_owned();
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(30),
            "never paused: {}",
            m.body
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        paused.contains("authentication of alice@sante.test"),
        "{paused}"
    );
    let b = get(&s, &format!("/v1/batches/{batch}?limit=0")).body;
    assert_eq!(b["counts"]["sent"], 0, "{b}");

    // a new token file: the workers read it, the mailbox resumes, everything goes
    let valid = psc.token("alice@sante.test", TokenKind::Valid);
    std::fs::write(&token_file, valid.expose()).expect("token");
    let b = settled(&s, &batch, Duration::from_secs(60));
    assert_eq!(b["messages"], 32, "{b}");
    // then the receipts: Postfix's DSNs (success to rcpt, failure of unknown) come back to alice's INBOX
    let start_wait = Instant::now();
    let b = loop {
        let b = get(&s, &format!("/v1/batches/{batch}?limit=0")).body;
        if b["counts"]["delivered"] == 30 && b["counts"]["failed"] == 2 {
            break b;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(60),
            "receipts never came: {b}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        (b["counts"]["sent"].as_u64(), b["counts"]["read"].as_u64()),
        (Some(1), Some(0)),
        "{b}"
    );
    let first = accepted[0]["id"].as_i64().expect("id");
    let m = get(&s, &format!("/v1/messages/{first}")).body;
    assert_eq!(m["recipients"][0]["state"], "sent", "no report asked: {m}");
    let m = get(&s, &format!("/v1/messages/{bounced}")).body;
    assert_eq!(m["recipients"][0]["state"], "failed", "{m}");
    let dsn = m["recipients"][0]["reason"].as_str().unwrap_or_default();
    assert!(dsn.contains("5.1.1"), "{m}");

    let m = get(&s, &format!("/v1/messages/{mixed}")).body;
    assert_eq!(m["batch"], batch.as_str());
    assert_eq!(m["label"], "mixed");
    assert!(m.get("paused").is_none(), "{m}");
    let r = m["recipients"].as_array().expect("recipients");
    assert_eq!(
        (r[0]["address"].as_str(), r[0]["state"].as_str()),
        (Some(rcpt.as_str()), Some("delivered"))
    );
    assert!(
        r[0]["reply"].as_str().is_some_and(|x| x.starts_with("250")),
        "{m}"
    );
    assert_eq!(
        (r[1]["address"].as_str(), r[1]["state"].as_str()),
        (Some("x@elsewhere.test"), Some("failed"))
    );
    let reason = r[1]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("554") && reason.contains("x@elsewhere.test"),
        "{reason}"
    );

    // paged: the last page holds the last two messages
    let page = get(&s, &format!("/v1/batches/{batch}?offset=30&limit=10")).body;
    let page_items = page["items"].as_array().expect("items");
    assert_eq!(page_items.len(), 2, "{page}");
    assert_eq!(page_items[0]["id"], mixed);

    // what the 202 promised is in the mailbox, with the same Message-IDs
    assert_eq!(mailbox(op, &rcpt, 31), ids);

    // the same request again: recognised, nothing added, the same ids answered
    let again = post(&s, &body);
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(
        (
            again.body["accepted"].as_u64(),
            again.body["duplicates"].as_u64()
        ),
        (Some(0), Some(32))
    );
    assert_eq!(again.body["batch_id"], batch.as_str());
    assert_eq!(again.body["items"][30]["id"], mixed);
    assert_eq!(
        again.body["items"][30]["message_id"],
        accepted[30]["message_id"]
    );
    assert_eq!(
        get(&s, &format!("/v1/batches/{batch}?limit=0")).body["messages"],
        32
    );

    // SIGTERM: the workers give their leases back and the service stops cleanly
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = s.stderr_lines.try_iter().collect();
    let log = log.join("\n");
    assert!(log.contains("credentials changed"), "{log}");
    assert!(log.contains("mss: stopped"), "{log}");
    for secret in [expired.expose(), valid.expose()] {
        assert!(!log.contains(secret), "a token in the log");
    }
    let stored = std::fs::read(dir.path().join("outbox.sqlite")).expect("outbox");
    for secret in [expired.expose(), valid.expose()] {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a token in the outbox"
        );
    }
}

fn eml(to: &str, id: &str, body_bytes: usize) -> String {
    use base64::Engine;
    let text = format!(
        "From: alice@sante.test\r\nTo: {to}\r\nSubject: r\r\nMessage-ID: {id}\r\n\r\n{}\r\n",
        "x".repeat(body_bytes)
    );
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A configuration whose sender's server is not there (nothing is delivered: these tests look at acceptance).
fn offline_config(dir: &Path, extra: &str) -> PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, "not-a-real-token").expect("token");
    config(dir, "localhost:1", None, &token, extra, "receipts = false")
}

#[test]
fn bad_batches_are_refused_naming_the_item_and_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = offline_config(dir.path(), "max_body_bytes = 200000");
    let s = start(&conf, &dir.path().join("outbox.sqlite"));
    let ok = |i: usize| json!({"compose": compose(i, &["bob@sante.test"])});

    let a = call(
        s.http
            .post(s.url("/v1/batches"))
            .header("content-type", "application/json")
            .body("{\"sender\": "),
    );
    assert_eq!(problem(&a, 400), ["body"]);
    let a = call(
        s.http
            .post(s.url("/v1/batches"))
            .header("content-type", "application/json")
            .body(r#"{"sender": "alice@sante.test", "auth": "alice", "items": [{}]} {"#),
    );
    assert_eq!(problem(&a, 400), ["body"]);
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "items": 3}),
    );
    assert_eq!(problem(&a, 400), ["items"]);
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "bob", "items": [ok(0)]}),
    );
    assert_eq!(problem(&a, 422), ["auth"]);
    let a = post(
        &s,
        &json!({"sender": "not an address", "auth": "alice", "items": [ok(0)]}),
    );
    assert_eq!(problem(&a, 400), ["sender"]);
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "items": []}),
    );
    assert_eq!(problem(&a, 400), ["items"]);
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "batch_id": "a/b", "items": [ok(0)]}),
    );
    assert_eq!(problem(&a, 400), ["batch_id"]);

    // several faulty items: each named with its field, nothing stored
    let mut bad_recipients = compose(2, &["bob@sante.test"]);
    bad_recipients["recipients"] = json!(5);
    let mut other_sender = compose(4, &["bob@sante.test"]);
    other_sender["sender"]["address"] = json!("eve@sante.test");
    let items = json!([ok(0), {"label": "x"}, {"compose": bad_recipients}, {"message": "%%%"},
                      {"compose": other_sender}, {"message": eml("bob@sante.test", "<a@b>", 1), "compose": ok(5)["compose"]}]);
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "batch_id": "bad-1", "items": items}),
    );
    assert_eq!(
        problem(&a, 400),
        [
            "items[1]",
            "items[2].compose.recipients",
            "items[3].message",
            "items[4].compose.sender.address",
            "items[5]"
        ]
    );
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("5 of 6 items refused, nothing was stored"),
        "{}",
        a.body
    );
    problem(&get(&s, "/v1/batches/bad-1"), 404);

    // an MSSanté rule alone: 422
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "items": [{"compose": other_sender}]}),
    );
    assert_eq!(problem(&a, 422), ["items[0].compose.sender.address"]);

    // over 10 000 items: 422 (small items, under the body limit)
    let many: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "items": many}),
    );
    assert_eq!(problem(&a, 422), ["items"]);

    // over the configured body limit: 413 problem+json; its rest unread, the connection is closed, and the
    // client's next request goes on a new one
    let big = json!({"sender": "alice@sante.test", "auth": "alice", "items": [{"message": eml("bob@sante.test", "<big@b>", 300_000)}]});
    let a = post(&s, &big);
    problem(&a, 413);
    assert_eq!(a.headers["connection"], "close");
    assert!(
        a.body["detail"].as_str().unwrap_or_default().ends_with(
            "limit of 200000 bytes; send the batch as several requests with the same batch_id"
        ),
        "{}",
        a.body
    );
    // without the close, about one follow-up in twenty failed on a pooled connection the server had dropped
    for _ in 0..50 {
        problem(&post(&s, &big), 413);
        problem(&get(&s, "/v1/batches/nope"), 404);
    }

    // the status routes
    problem(&get(&s, "/v1/batches/nope"), 404);
    assert_eq!(
        problem(&get(&s, "/v1/batches/nope?limit=5000"), 400),
        ["limit"]
    );
    assert_eq!(problem(&get(&s, "/v1/batches/nope?page=2"), 400), ["page"]);
    assert_eq!(problem(&get(&s, "/v1/messages/abc"), 400), ["id"]);
    problem(&get(&s, "/v1/messages/999999"), 404);

    // and a good one is accepted with a ready message
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "batch_id": "good-1",
                            "items": [{"message": eml("bob@sante.test", "<good-1@sante.test>", 10)}]}),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["items"][0]["message_id"], "<good-1@sante.test>");
    let b = get(&s, "/v1/batches/good-1").body;
    assert_eq!(b["messages"], 1, "{b}");
    assert_eq!(b["items"][0]["recipients"][0]["address"], "bob@sante.test");
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let path = dir.join("tiny");
        std::fs::create_dir_all(&path).expect("mkdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(path))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_answers_503_and_stores_nothing_half() {
    // SAFETY of the check: only root can mount a tmpfs
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        eprintln!("SKIP: the full-disk test mounts a small tmpfs: needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = offline_config(dir.path(), "");
    let Some(tiny) = Tmpfs::mount(dir.path(), "400k") else {
        eprintln!("SKIP: cannot mount a tmpfs here");
        return;
    };
    let mut s = start(&conf, &tiny.0.join("outbox.sqlite"));
    let first = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "batch_id": "before",
        "items": [{"message": eml("bob@sante.test", "<before@sante.test>", 100)}]}),
    );
    assert_eq!(first.status, 202, "{}", first.body);

    // 20 messages of 50 KB do not fit in what is left
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"message": eml("bob@sante.test", &format!("<full-{i}@sante.test>"), 50_000)}))
        .collect();
    let full =
        json!({"sender": "alice@sante.test", "auth": "alice", "batch_id": "full", "items": items});
    let a = post(&s, &full);
    problem(&a, 503);
    assert_eq!(
        a.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("10")
    );
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was stored"),
        "{}",
        a.body
    );
    // nothing of the refused batch, everything of the accepted one
    problem(&get(&s, "/v1/batches/full"), 404);
    let before = get(&s, "/v1/batches/before").body;
    assert_eq!(before["messages"], 1, "{before}");
    assert_eq!(before["items"][0]["message_id"], "<before@sante.test>");

    // room again: the same request is accepted, whole
    tiny.resize("16m");
    let a = post(&s, &full);
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 20);
    assert_eq!(get(&s, "/v1/batches/full?limit=0").body["messages"], 20);
    assert!(s.terminate().success());
}

/// scripts/postgres.sh on `port` with its cluster in `dir` (kept across restarts); `None` when it cannot run.
fn postgres(dir: &Path, port: u16) -> Option<(std::process::Child, String)> {
    let (child, mut vars) = mss_testing::spawn_ready(
        mss_testing::fixture_script("postgres.sh")
            .arg("--dir")
            .arg(dir)
            .args(["--port", &port.to_string()]),
    )
    .ok()?;
    vars.remove("PGURL").map(|url| (child, url))
}

/// Stops the script (its trap stops the server) and waits for it.
fn stop_postgres(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn the_database_down_answers_503_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = mss_testing::free_ports(1, 4);
    let pg_dir = dir.path().join("pg");
    let Some((pg, url)) = postgres(&pg_dir, port) else {
        unavailable("PostgreSQL did not start");
        return;
    };
    let conf = offline_config(dir.path(), "");
    let s = start_in(&data_dir().join("data"), &conf, &url);
    let item = |id: &str| json!({"message": eml("bob@sante.test", id, 100)});
    let a = post(
        &s,
        &json!({"sender": "alice@sante.test", "auth": "alice", "batch_id": "up",
        "items": [item("<up@sante.test>")]}),
    );
    assert_eq!(a.status, 202, "{}", a.body);

    stop_postgres(pg);
    let down = json!({"sender": "alice@sante.test", "auth": "alice", "batch_id": "down",
        "items": [item("<down-1@sante.test>"), item("<down-2@sante.test>")]});
    let a = post(&s, &down);
    problem(&a, 503);
    assert_eq!(
        a.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("10")
    );
    problem(&get(&s, "/v1/batches/up"), 503);

    // the database back: what was acknowledged is there, what was refused is not, and is accepted now
    let Some((pg, _)) = postgres(&pg_dir, port) else {
        panic!("PostgreSQL did not restart");
    };
    let start = Instant::now();
    let up = loop {
        let a = get(&s, "/v1/batches/up");
        if a.status == 200 || start.elapsed() > Duration::from_secs(20) {
            break a;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["items"][0]["message_id"], "<up@sante.test>");
    problem(&get(&s, "/v1/batches/down"), 404);
    let a = post(&s, &down);
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 2);
    drop(s);
    stop_postgres(pg);
}

/// Issue 17, docs/mssante.md M8: without a whitelist only mssante.fr and its sub-domains are inside the
/// espace de confiance; the whitelist `mss whitelist update` installs while serving is used within seconds,
/// and then only its domains are.
#[test]
fn batches_stay_in_the_espace_de_confiance_and_a_newly_installed_whitelist_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    import(&data, &demo_file(dir.path(), 50, 3, false));
    let conf = offline_config(dir.path(), "");
    let outbox = dir.path().join("outbox.sqlite");
    let s = start_in(&data, &conf, outbox.to_str().expect("utf-8"));
    let body =
        |items: Value| json!({"sender": "alice@sante.test", "auth": "alice", "items": items});

    // no whitelist: sante.test (the sender's own domain) and gmail.com are outside
    let a = post(
        &s,
        &body(json!([
            {"message": eml("bob@sante.test", "<t1@sante.test>", 1)},
            {"compose": compose(1, &["x@gmail.com"])}
        ])),
    );
    assert_eq!(
        problem(&a, 422),
        ["items[0].message.sender", "items[1].compose.sender.address"]
    );
    assert!(
        a.body.to_string().contains("mss whitelist update"),
        "{}",
        a.body
    );

    // installed while serving: picked up without a restart
    common::install_whitelist(&data, mss_testing::TEST_DOMAINS);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = post(
            &s,
            &body(json!([{"message": eml("bob@sante.test", "<t2@sante.test>", 1)}])),
        );
        if a.status == 202 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new whitelist was not used: {}",
            a.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // with the whitelist: its domains only, mssante.fr or not; sub-domain tricks are refused
    let a = post(
        &s,
        &body(json!([
            {"message": eml("x@gmail.com", "<t3@sante.test>", 1)},
            {"message": eml("x@evilmssante.fr", "<t4@sante.test>", 1)},
            {"message": eml("x@mssante.fr.example.com", "<t5@sante.test>", 1)},
            {"compose": compose(6, &["x@unlisted.mssante.fr"])},
            {"compose": compose(7, &["bob@sante.test", "x@gmail.com"])}
        ])),
    );
    assert_eq!(
        problem(&a, 422),
        [
            "items[0].message.recipients[0]",
            "items[1].message.recipients[0]",
            "items[2].message.recipients[0]",
            "items[3].compose.recipients.to[0]",
            "items[4].compose.recipients.to[1]"
        ]
    );
    assert!(
        a.body.to_string().contains("not in the MSSanté whitelist"),
        "{}",
        a.body
    );
}

#[test]
fn a_sender_that_receives_keeps_pushes_and_after_the_ack_removes_at_the_operator() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let user = format!("{}@sante.test", unique("recv"));
    let token_file = dir.path().join("recv.token");
    let token = op.psc().token(&user, TokenKind::Valid);
    std::fs::write(&token_file, token.expose()).expect("token");
    // the LPS back-end's webhook receiver
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (hook, got) = common::webhook_receiver(&rt, axum::http::StatusCode::NO_CONTENT);
    let secret = dir.path().join("whsec");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("secret");
    let conf = dir.path().join("mss.toml");
    std::fs::write(
        &conf,
        format!(
            "[send]\nproduct_reference = \"MSS-TEST-NIL\"\nca_file = {:?}\nsubmission = \"localhost:{}\"\n\n\
             [outbox]\nworker = \"recv\"\n\n\
             [[senders]]\nname = \"recv\"\naddress = {user:?}\ntoken_file = {token_file:?}\n\
             imap = \"localhost:{}\"\nreceive = true\nwebhook = {hook:?}\nwebhook_secret_file = {secret:?}\n",
            op.path("CA"),
            op.port("SUBMISSION_PORT"),
            op.port("IMAP_PORT")
        ),
    )
    .expect("config");
    // the PFI's key: reads the inbox and acknowledges
    let key = common::add_client(
        &dir.path().join("clients.toml"),
        "pfi",
        &["inbox:read", "inbox:ack"],
    );
    std::fs::write(dir.path().join("client.key"), &key).expect("key file");
    let outbox = dir.path().join("outbox.sqlite");
    let mut server = start(&conf, &outbox);
    let append = |id: &str| {
        let letter = format!(
            "From: labo@sante.test\r\nTo: {user}\r\nSubject: Compte rendu\r\nMessage-ID: <{id}>\r\n\
             Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nBonjour\r\n"
        );
        rt.block_on(async {
            let mut s = op.imap_session(&user).await;
            s.append("INBOX", &[], letter.as_bytes())
                .await
                .expect("append");
            s.logout().await.expect("logout");
        })
    };
    let at_operator = || -> usize {
        rt.block_on(async {
            let mut s = op.imap_session(&user).await;
            s.examine("INBOX").await.expect("examine");
            let n = s.uid_search("ALL").await.expect("search").len();
            s.logout().await.expect("logout");
            n
        })
    };
    let wait = |what: &str, mut done: Box<dyn FnMut() -> bool + '_>| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(30), "never {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let id = format!("{}@labo.test", unique("arrived"));
    append(&id);
    // the service's reader (IDLE) keeps it and pushes it, signed
    wait("pushed", Box::new(|| !got.lock().expect("lock").is_empty()));
    let list = call(server.http.get(server.url("/v1/inbox")));
    assert_eq!(list.status, 200, "{}", list.body);
    let items = list.body["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1, "{items:?}");
    let row = &items[0];
    assert_eq!(row["message_id"], id.as_str());
    assert_eq!(row["mailbox"], user.as_str());
    assert_eq!(
        (row["status"].as_str(), row["disposition"].as_str()),
        (Some("new"), None)
    );
    let (headers, body) = got.lock().expect("lock")[0].clone();
    let h = |n: &str| headers[n].to_str().expect("ascii").to_owned();
    let key_bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .expect("key");
    assert_eq!(h("webhook-id"), format!("inbox_{}", row["id"]));
    assert_eq!(
        h("webhook-signature"),
        mss_outbox::inbox::push::signature(
            &key_bytes,
            &h("webhook-id"),
            h("webhook-timestamp").parse().expect("seconds"),
            &body
        )
    );
    let pushed: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(pushed["message_id"], id.as_str());
    assert_eq!(at_operator(), 1, "still at the operator before its outcome");

    // acknowledged over REST; the reader's next pass (woken by the next message) removes it there
    let ack = call(
        server
            .http
            .post(server.url(&format!("/v1/inbox/{}/ack", row["id"])))
            .json(&json!({"status": "integrated"})),
    );
    assert_eq!(ack.status, 200, "{}", ack.body);
    assert_eq!(ack.body["status"], "integrated");
    append(&format!("{}@labo.test", unique("next")));
    wait(
        "removed at the operator",
        Box::new(|| got.lock().expect("lock").len() == 2 && at_operator() == 1),
    );
    let shown = call(
        server
            .http
            .get(server.url(&format!("/v1/inbox/{}", row["id"]))),
    );
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["disposition"], "deleted");
    assert!(shown.body["left_operator_at"].is_string(), "{}", shown.body);
    assert!(shown.body["pushed_at"].is_string(), "{}", shown.body);
    assert!(server.terminate().success());
}
