//! Access control of `mss serve` over real HTTP (docs/mssante.md S1): client keys made by the real
//! `mss client`, every refusal of a key, scopes and senders, revocation and rotation while serving, the
//! failed-key limit per source address, the public directory and its rate, and no key or token in what the
//! service writes.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{
    Server, add_client, demo_file, import, keyed_client, run, shared_dir, stderr, stdout,
};
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// A small index whose whitelist lists the test domains, shared by the tests.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = shared_dir("access-50");
        let file = demo_file(&dir, 50, 5, false);
        import(&dir.join("data"), &file);
        common::install_whitelist(&dir.join("data"), mss_testing::TEST_DOMAINS);
        dir.join("data")
    })
}

/// A configuration with two senders whose server is not there (these tests look at acceptance only).
fn config(dir: &Path, extra: &str) -> PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, "psc-token-that-must-never-show-7f3c").unwrap();
    let conf = dir.join("mss.toml");
    let senders: String = ["alice", "carol"]
        .iter()
        .map(|n| {
            format!(
                "[[senders]]\nname = \"{n}\"\naddress = \"{n}@sante.test\"\ntoken_file = {token:?}\nreceipts = false\n\n"
            )
        })
        .collect();
    std::fs::write(
        &conf,
        format!(
            "{extra}\n[send]\nproduct_reference = \"MSS-TEST-NIL\"\nsubmission = \"localhost:1\"\n\n\
             [outbox]\nworker = \"access-test\"\n\n{senders}"
        ),
    )
    .unwrap();
    conf
}

fn serve(dir: &Path, extra_config: &str, args: &[&str]) -> Server {
    let conf = config(dir, extra_config);
    let outbox = dir.join("outbox.sqlite");
    let clients = dir.join("clients.toml");
    let mut all = vec![
        "-vv",
        "--config",
        conf.to_str().unwrap(),
        "--outbox",
        outbox.to_str().unwrap(),
        "--clients",
        clients.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    Server::start(data_dir(), &all)
}

fn eml(to: &str, id: &str) -> String {
    let text = format!(
        "From: alice@sante.test\r\nTo: {to}\r\nSubject: r\r\nMessage-ID: {id}\r\n\r\nbonjour\r\n"
    );
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn batch(sender: &str, auth: &str, id: &str) -> Value {
    json!({"sender": sender, "auth": auth, "batch_id": id,
           "items": [{"message": eml("bob@sante.test", &format!("<{id}@sante.test>"))}]})
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

fn send(req: reqwest::blocking::RequestBuilder) -> Answer {
    let r = req.send().unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().unwrap(),
    }
}

fn post_batch(http: &Client, s: &Server, body: &Value) -> Answer {
    send(http.post(s.url("/v1/batches")).json(body))
}

fn get(http: &Client, s: &Server, path: &str) -> Answer {
    send(http.get(s.url(path)))
}

/// A client whose connections come from `source` (another loopback address: another source).
fn from(source: &str, key: Option<&str>) -> Client {
    let mut b = Client::builder().local_address(source.parse::<IpAddr>().unwrap());
    if let Some(key) = key {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-api-key", key.parse().unwrap());
        b = b.default_headers(h);
    }
    b.build().unwrap()
}

/// Everything the service wrote on stderr so far (with -vv: its debug log).
fn log_of(s: &Server) -> String {
    let mut out = String::new();
    while let Ok(line) = s.stderr_lines.try_recv() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn without_a_client_only_the_directory_answers_and_the_401_says_how_to_add_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), "", &[]);
    let http = Client::new();
    assert_eq!(get(&http, &s, "/v1/directory/search?q=a").status, 200);
    for a in [
        post_batch(&http, &s, &batch("alice@sante.test", "alice", "b1")),
        get(&http, &s, "/v1/batches/b1"),
        get(&http, &s, "/v1/messages/1"),
        get(&http, &s, "/metrics"),
        send(http.post(s.url("/v1/messages/compose")).body("{}")),
        send(http.post(s.url("/v1/messages/check")).body("x")),
    ] {
        assert_eq!(a.status, 401, "{}", a.text);
        assert_eq!(a.headers["content-type"], "application/problem+json");
        assert_eq!(a.headers["www-authenticate"], "ApiKey header=\"X-Api-Key\"");
        assert!(
            a.text.contains("mss client add NAME --scope SCOPE"),
            "{}",
            a.text
        );
    }
    for probe in ["/healthz", "/readyz", "/openapi.json", "/"] {
        assert_eq!(get(&http, &s, probe).status, 200, "{probe}");
    }
}

#[test]
fn every_refused_key_gets_the_same_401_and_a_source_that_keeps_guessing_gets_429() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let key = add_client(&clients, "dpi", &["batches:read"]);
    let revoked = add_client(&clients, "gone", &["batches:read"]);
    let out = run(&[
        "client",
        "revoke",
        "gone",
        "--clients",
        clients.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = serve(dir.path(), "", &[]);
    assert_eq!(get(&keyed_client(&key), &s, "/v1/batches/none").status, 404);

    let mut wrong = key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    let (prefix, _) = key.split_at(7);
    let unknown = format!("{prefix}{}_{}", "q".repeat(12), "r".repeat(52));
    let mut bodies = Vec::new();
    // a missing key first: it is not a guess and never counts
    for _ in 0..40 {
        let a = get(&Client::new(), &s, "/v1/batches/none");
        assert_eq!(a.status, 401);
    }
    for k in [
        wrong.as_str(),
        unknown.as_str(),
        revoked.as_str(),
        "letmein",
        "",
    ] {
        let a = get(&keyed_client(k), &s, "/v1/batches/none");
        assert_eq!(a.status, 401, "{k}: {}", a.text);
        assert_eq!(a.headers["www-authenticate"], "ApiKey header=\"X-Api-Key\"");
        bodies.push(a.text);
    }
    let missing = get(&Client::new(), &s, "/v1/batches/none").text;
    for b in &bodies {
        assert_eq!(b, &missing, "every refusal has the same body");
    }
    for k in [&key, &wrong, &unknown, &revoked] {
        assert!(!missing.contains(k.as_str()));
    }

    // keep guessing from 127.0.0.1: 429 comes after at least 10 and at most 30 failures in the minute
    let mut failures = bodies.len();
    let guesser = keyed_client(&wrong);
    let started = Instant::now();
    let limited = loop {
        let a = get(&guesser, &s, "/v1/batches/none");
        if a.status == 429 {
            break a;
        }
        assert_eq!(a.status, 401);
        failures += 1;
        assert!(failures <= 30, "no 429 after {failures} failed keys");
    };
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(failures >= 10, "429 after only {failures} failures");
    assert_eq!(limited.headers["content-type"], "application/problem+json");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // the valid key from the guessing address waits too; from another address it is not slowed, and
    // keyless requests (the public directory) still pass from the guessing address
    assert_eq!(get(&keyed_client(&key), &s, "/v1/batches/none").status, 429);
    assert_eq!(
        get(&from("127.0.0.2", Some(&key)), &s, "/v1/batches/none").status,
        404
    );
    assert_eq!(
        get(&Client::new(), &s, "/v1/directory/search?q=a").status,
        200
    );

    // CORS preflights never need a key
    let pre = Client::new()
        .request(reqwest::Method::OPTIONS, s.url("/v1/batches"))
        .header("Origin", "https://dpi.example.test")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-api-key, content-type")
        .send()
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());

    let log = log_of(&s);
    for secret in [&key, &wrong, &unknown, &revoked] {
        assert!(!log.contains(secret.as_str()), "a key reached the log");
    }
}

/// Behind the hospital's reverse proxy (127.0.0.3, in `[access] trusted_proxies`): a client it forwards for
/// that keeps guessing keys is stopped alone, the proxy's other clients go on, and the audit trail names the
/// client and the proxy; a peer that is not trusted gains nothing by writing the header.
#[test]
fn behind_a_trusted_proxy_each_client_is_limited_and_audited_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let key = add_client(&clients, "dpi", &["batches:read"]);
    // an entry that is not an address or a network stops the start, named
    let bad = config(
        dir.path(),
        "[access]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
    );
    let out = run(&[
        "--data",
        data_dir().to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        bad.to_str().unwrap(),
        "--clients",
        clients.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "[access] trusted_proxies: `10.0.0.0/33` is neither an address (10.0.0.5, ::1) nor a network"
        ),
        "{}",
        stderr(&out)
    );
    let trail = dir.path().join("trail/audit.jsonl");
    let s = serve(
        dir.path(),
        &format!(
            "[access]\ntrusted_proxies = [\"127.0.0.3\", \"10.0.0.0/8\"]\ndirectory_burst = 3\n\
             directory_per_minute = 1\n\n[audit]\npath = {:?}\n",
            trail.to_str().unwrap()
        ),
        &[],
    );
    let forwarded_for = |peer: &str, client: &str, key: Option<&str>| {
        let mut h = reqwest::header::HeaderMap::new();
        if let Some(key) = key {
            h.insert("x-api-key", key.parse().unwrap());
        }
        // what the client wrote first, then what the proxies appended
        h.insert(
            "x-forwarded-for",
            format!("198.51.100.1, {client}, 10.1.1.1").parse().unwrap(),
        );
        Client::builder()
            .local_address(peer.parse::<IpAddr>().unwrap())
            .default_headers(h)
            .build()
            .unwrap()
    };
    let guesser = forwarded_for("127.0.0.3", "203.0.113.7", Some("mss_sk_not-a-key"));
    let mut failures = 0;
    while get(&guesser, &s, "/v1/batches/none").status == 401 {
        failures += 1;
        assert!(failures <= 30, "no 429 after {failures} failed keys");
    }
    assert_eq!(get(&guesser, &s, "/v1/batches/none").status, 429);
    // the proxy's other clients, and the proxy itself, are not slowed
    let other = forwarded_for("127.0.0.3", "203.0.113.8", Some(&key));
    assert_eq!(get(&other, &s, "/v1/batches/none").status, 404);
    assert_eq!(
        get(&from("127.0.0.3", Some(&key)), &s, "/v1/batches/none").status,
        404
    );
    // the guessing client with the right key still waits
    let same = forwarded_for("127.0.0.3", "203.0.113.7", Some(&key));
    assert_eq!(get(&same, &s, "/v1/batches/none").status, 429);
    // the public directory's rate applies per forwarded client, on a loopback listener too (a proxy is
    // in front: the callers are not this machine's own software)
    let reader = forwarded_for("127.0.0.3", "203.0.113.9", None);
    let search = |c: &Client| get(c, &s, "/v1/directory/search?q=a").status;
    let statuses: Vec<u16> = (0..4).map(|_| search(&reader)).collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(
        search(&forwarded_for("127.0.0.3", "203.0.113.10", None)),
        200
    );
    // a peer that is not a trusted proxy is itself, whatever it writes
    let posing = forwarded_for("127.0.0.4", "203.0.113.8", Some("mss_sk_not-a-key"));
    assert_eq!(get(&posing, &s, "/v1/batches/none").status, 401);

    let text = std::fs::read_to_string(&trail).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, Option<String>, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["source"].as_str().unwrap().to_owned(),
                l["via"].as_str().map(str::to_owned),
                l["outcome"]["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let tail = &seen[seen.len() - 5..];
    let line = |source: &str, via: Option<&str>, status: u64| {
        (source.to_owned(), via.map(str::to_owned), status)
    };
    assert_eq!(
        tail,
        [
            line("203.0.113.7", Some("127.0.0.3"), 429),
            line("203.0.113.8", Some("127.0.0.3"), 404),
            line("127.0.0.3", None, 404),
            line("203.0.113.7", Some("127.0.0.3"), 429),
            line("127.0.0.4", None, 401),
        ]
    );
    assert!(
        seen[..failures]
            .iter()
            .all(|l| *l == line("203.0.113.7", Some("127.0.0.3"), 401)),
        "{seen:?}"
    );
}

#[test]
fn scopes_and_senders_are_enforced_and_a_refused_batch_queues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let reader = add_client(&clients, "reader", &["batches:read"]);
    let out = run(&[
        "client",
        "add",
        "cardio",
        "--clients",
        clients.to_str().unwrap(),
        "--scope",
        "batches:write",
        "--scope",
        "batches:read",
        "--sender",
        "alice@sante.test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let writer = stdout(&out).lines().last().unwrap().to_string();
    let s = serve(dir.path(), "", &[]);

    // a key without the scope: 403 naming it, nothing queued
    let a = post_batch(
        &keyed_client(&reader),
        &s,
        &batch("alice@sante.test", "alice", "r1"),
    );
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(a.headers["content-type"], "application/problem+json");
    assert_eq!(
        a.json()["detail"],
        "insufficient_scope: this key does not have the scope batches:write"
    );
    // a sender the client may not use: 403 naming it, nothing queued
    let a = post_batch(
        &keyed_client(&writer),
        &s,
        &batch("carol@sante.test", "carol", "c1"),
    );
    assert_eq!(a.status, 403, "{}", a.text);
    let detail = a.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.starts_with("insufficient_scope: this key may not send from carol@sante.test"),
        "{detail}"
    );
    for id in ["r1", "c1"] {
        assert_eq!(
            get(&keyed_client(&writer), &s, &format!("/v1/batches/{id}")).status,
            404
        );
    }
    // its own sender: accepted
    let a = post_batch(
        &keyed_client(&writer),
        &s,
        &batch("alice@sante.test", "alice", "a1"),
    );
    assert_eq!(a.status, 202, "{}", a.text);
    // a user's PSC token and the sender's token file never reach the log
    let sender = add_client(&clients, "lps", &["messages:send"]);
    let user_token = "psc-user-token-that-must-never-show-91ad";
    let letter = json!({"sender": {"address": "alice@sante.test", "type": "PER", "first_name": "Alice",
        "last_name": "Martin"}, "recipients": {"to": ["bob@sante.test"]}, "subject": "s", "body": {"text": "t"}});
    let deadline = Instant::now() + Duration::from_secs(3);
    let a = loop {
        // the new client is seen within 2 s
        let a = send(
            keyed_client(&sender)
                .post(s.url("/v1/messages/send"))
                .bearer_auth(user_token)
                .json(&letter),
        );
        if a.status != 401 || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        a.status, 503,
        "the operator at localhost:1 is down: {}",
        a.text
    );
    assert!(!a.text.contains(user_token));
    // batches:read does not give metrics, nor compose
    assert_eq!(get(&keyed_client(&reader), &s, "/metrics").status, 403);
    let a = send(
        keyed_client(&reader)
            .post(s.url("/v1/messages/compose"))
            .body("{}"),
    );
    assert_eq!(a.status, 403);
    assert_eq!(
        a.json()["detail"],
        "insufficient_scope: this key does not have the scope messages:compose"
    );
    let log = log_of(&s);
    for secret in [
        user_token,
        "psc-token-that-must-never-show-7f3c",
        &reader,
        &writer,
        &sender,
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    assert!(log.contains("DEBUG"), "the service logged at debug level");
}

#[test]
fn a_revoked_key_fails_within_two_seconds_and_a_rotated_one_works_beside_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let old = add_client(&clients, "dpi", &["batches:read"]);
    let s = serve(dir.path(), "", &[]);
    assert_eq!(get(&keyed_client(&old), &s, "/v1/batches/x").status, 404);

    let out = run(&[
        "client",
        "rotate",
        "dpi",
        "--clients",
        clients.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new = stdout(&out).lines().last().unwrap().to_string();
    assert_ne!(new, old);
    assert!(new.starts_with("mss_sk_"));
    let within = |key: &str, status: u16| {
        let deadline = Instant::now() + Duration::from_secs(2) + Duration::from_millis(500);
        loop {
            let got = get(&keyed_client(key), &s, "/v1/batches/x").status;
            if got == status {
                return;
            }
            assert!(Instant::now() < deadline, "still {got}, not {status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    within(&new, 404);
    assert_eq!(get(&keyed_client(&old), &s, "/v1/batches/x").status, 404);

    let old_id = &old[7..19];
    let out = run(&[
        "client",
        "revoke",
        old_id,
        "--clients",
        clients.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    within(&old, 401);
    assert_eq!(get(&keyed_client(&new), &s, "/v1/batches/x").status, 404);

    // the file never holds a key; the list shows ids, never a key or a hash
    let text = std::fs::read_to_string(&clients).unwrap();
    for k in [&old, &new] {
        assert!(
            !text.contains(&k[20..]),
            "a key's secret part is in the clients file"
        );
    }
    let out = run(&[
        "client",
        "list",
        "--json",
        "--clients",
        clients.to_str().unwrap(),
    ]);
    let listed = stdout(&out);
    let c: Value = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(c["name"], "dpi");
    assert_eq!(c["scopes"], json!(["batches:read"]));
    assert_eq!(c["keys"][0]["id"], old_id);
    assert!(c["keys"][0]["revoked"].is_string());
    assert!(c["keys"][1]["revoked"].is_null());
    assert!(
        !listed.contains("sha256") && !listed.contains(&old[20..]) && !listed.contains(&new[20..])
    );
}

#[test]
fn the_directory_is_public_with_a_rate_off_loopback_or_keyed_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let key = add_client(&clients, "dpi", &["directory:read"]);
    let s = serve(
        dir.path(),
        "[access]\ndirectory_burst = 5\ndirectory_per_minute = 6\n",
        &["--listen", "0.0.0.0:0", "--insecure-http"],
    );
    let anonymous = Client::new();
    for i in 0..5 {
        let a = get(&anonymous, &s, "/v1/directory/autocomplete?q=a");
        assert_eq!(a.status, 200, "request {i}: {}", a.text);
    }
    let a = get(&anonymous, &s, "/v1/directory/autocomplete?q=a");
    assert_eq!(a.status, 429, "{}", a.text);
    assert!(a.headers.contains_key("retry-after"));
    // another address, and a secret key, are not limited
    assert_eq!(
        get(
            &from("127.0.0.3", None),
            &s,
            "/v1/directory/autocomplete?q=a"
        )
        .status,
        200
    );
    for _ in 0..10 {
        assert_eq!(
            get(&keyed_client(&key), &s, "/v1/directory/autocomplete?q=a").status,
            200
        );
    }
    // a wrong key on a public route is refused rather than ignored
    assert_eq!(
        get(&keyed_client("mss_sk_nope"), &s, "/v1/directory/search?q=a").status,
        401
    );
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let key = add_client(&clients, "dpi", &["directory:read"]);
    let other = add_client(&clients, "batches", &["batches:read"]);
    let s = serve(dir.path(), "[access]\ndirectory = \"key\"\n", &[]);
    assert_eq!(
        get(&Client::new(), &s, "/v1/directory/search?q=a").status,
        401
    );
    assert_eq!(
        get(&keyed_client(&key), &s, "/v1/directory/search?q=a").status,
        200
    );
    assert_eq!(
        get(&keyed_client(&other), &s, "/v1/directory/search?q=a").status,
        403
    );
}

#[test]
fn client_add_prints_the_key_alone_on_the_last_line_and_checks_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let c = clients.to_str().unwrap();
    let out = run(&[
        "client",
        "add",
        "dpi",
        "--clients",
        c,
        "--scope",
        "batches:read",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(printed.starts_with("mss_sk_") && printed.ends_with('\n'));
    assert!(!stderr(&out).contains(printed.trim()));
    let out = run(&[
        "client",
        "add",
        "web",
        "--clients",
        c,
        "--publishable",
        "--origin",
        "https://dpi.example.test",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["name"], "web");
    assert!(v["key"].as_str().unwrap().starts_with("mss_pk_"));
    assert_eq!(
        v["key_id"].as_str().unwrap(),
        &v["key"].as_str().unwrap()[7..19]
    );
    for (args, says) in [
        (
            vec![
                "client",
                "add",
                "x",
                "--clients",
                c,
                "--scope",
                "batches:erase",
            ],
            "unknown scope `batches:erase`",
        ),
        (
            vec!["client", "add", "x", "--clients", c],
            "give at least one --scope",
        ),
        (
            vec![
                "client",
                "add",
                "dpi",
                "--clients",
                c,
                "--scope",
                "batches:read",
            ],
            "client `dpi` exists",
        ),
        (
            vec![
                "client",
                "add",
                "x",
                "--clients",
                c,
                "--publishable",
                "--origin",
                "https://a.test",
                "--scope",
                "batches:write",
            ],
            "may only have directory:read",
        ),
        (
            vec![
                "client",
                "add",
                "x",
                "--clients",
                c,
                "--scope",
                "batches:write",
                "--sender",
                "not-an-address",
            ],
            "--sender not-an-address",
        ),
        (
            vec!["client", "revoke", "nobody", "--clients", c],
            "no client or key `nobody`",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
}

/// Every request on health data writes exactly one audit line before its answer, refused ones too, with
/// who, what and the outcome, and never a key; a batch belongs to the client that made it.
#[test]
fn every_audited_request_writes_one_line_and_a_batch_is_its_clients_own() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let out = run(&[
        "client",
        "add",
        "cardio",
        "--clients",
        clients.to_str().unwrap(),
        "--scope",
        "batches:write",
        "--scope",
        "batches:read",
        "--sender",
        "alice@sante.test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let writer = stdout(&out).lines().last().unwrap().to_string();
    let other = add_client(&clients, "other", &["batches:write", "batches:read"]);
    let trail = dir.path().join("trail/audit.jsonl");
    let s = serve(
        dir.path(),
        &format!("[audit]\npath = {:?}\n", trail.to_str().unwrap()),
        &[],
    );
    let w = keyed_client(&writer);
    let o = keyed_client(&other);
    let a = post_batch(&w, &s, &batch("alice@sante.test", "alice", "a1"));
    assert_eq!(a.status, 202, "{}", a.text);
    let id = a.json()["items"][0]["id"].as_i64().unwrap();
    let mut wrong = writer.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(
        post_batch(
            &keyed_client(&wrong),
            &s,
            &batch("alice@sante.test", "alice", "a2")
        )
        .status,
        401
    );
    assert_eq!(
        post_batch(
            &Client::new(),
            &s,
            &batch("alice@sante.test", "alice", "a3")
        )
        .status,
        401
    );
    // another client neither sees the batch nor adds to it
    assert_eq!(get(&o, &s, "/v1/batches/a1").status, 404);
    assert_eq!(get(&o, &s, &format!("/v1/messages/{id}")).status, 404);
    let a = post_batch(&o, &s, &batch("alice@sante.test", "alice", "a1"));
    assert_eq!(a.status, 409, "{}", a.text);
    assert_eq!(a.json()["invalid-params"][0]["name"], "batch_id");
    assert_eq!(get(&w, &s, "/v1/batches/a1?limit=0").json()["messages"], 1);
    let m = get(&w, &s, &format!("/v1/messages/{id}"));
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(
        post_batch(&w, &s, &batch("carol@sante.test", "carol", "c1")).status,
        403
    );
    // not health data: not audited (and a key without directory:read is refused there)
    assert_eq!(get(&w, &s, "/v1/directory/search?q=a").status, 403);
    assert_eq!(
        get(&Client::new(), &s, "/v1/directory/search?q=a").status,
        200
    );
    assert_eq!(get(&w, &s, "/healthz").status, 200);

    let text = std::fs::read_to_string(&trail).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String, u64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["client"].as_str().unwrap_or("-").to_string(),
                l["route"].as_str().unwrap().to_string(),
                l["outcome"]["status"].as_u64().unwrap(),
                l["outcome"]["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let row =
        |c: &str, r: &str, st: u64, why: &str| (c.to_string(), r.to_string(), st, why.to_string());
    assert_eq!(
        summary,
        vec![
            row("cardio", "POST /v1/batches", 202, ""),
            row("-", "POST /v1/batches", 401, "wrong_key"),
            row("-", "POST /v1/batches", 401, "missing_key"),
            row("other", "GET /v1/batches/{id}", 404, "no batch \"a1\""),
            row(
                "other",
                "GET /v1/messages/{id}",
                404,
                &format!("no message {id}")
            ),
            row(
                "other",
                "POST /v1/batches",
                409,
                "batch_id: \"a1\" is used by another client; choose another batch_id"
            ),
            row("cardio", "GET /v1/batches/{id}", 200, ""),
            row("cardio", "GET /v1/messages/{id}", 200, ""),
            row(
                "cardio",
                "POST /v1/batches",
                403,
                "insufficient_scope: this key may not send from carol@sante.test (its client `cardio` is limited to other mailboxes)"
            ),
        ],
        "{text}"
    );
    let first = &lines[0];
    assert_eq!(first["key_id"], writer[7..19]);
    assert_eq!(first["source"], "127.0.0.1");
    assert_eq!(first["action"], "batches.create");
    assert_eq!(first["batch"], "a1");
    assert_eq!(first["messages"], json!([id.to_string()]));
    assert_eq!(first["sender"], "alice@sante.test");
    assert_eq!(first["recipients"], json!(["bob@sante.test"]));
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        lines[1]["key_id"],
        writer[7..19],
        "a wrong key is named by its id"
    );
    assert_eq!(lines[7]["recipients"], json!(["bob@sante.test"]));
    assert_eq!(lines[8]["sender"], "carol@sante.test");
    for secret in [&writer, &other, &wrong] {
        assert!(
            !text.contains(&secret[19..]),
            "a key's secret reached the audit trail"
        );
    }
    assert!(
        !text.contains("bonjour"),
        "a message body reached the audit trail"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&trail).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // `mss audit` reads what the service wrote
    let conf = dir.path().join("mss.toml");
    let out = run(&[
        "audit",
        "--config",
        conf.to_str().unwrap(),
        "--client",
        "other",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
}

/// The inbox over real HTTP: `inbox:read` lists, shows, serves the bytes and each document of what the
/// client's mailboxes received (another mailbox's message is absent: 404), `inbox:ack` records an outcome
/// once and queues the MDN; a key without the scope gets 403; every request is audited with the ids, the
/// message's sender and the mailbox that received it.
#[test]
fn the_inbox_is_read_and_acknowledged_by_scope_and_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let out = run(&[
        "client",
        "add",
        "dpi",
        "--clients",
        clients.to_str().unwrap(),
        "--scope",
        "inbox:read",
        "--sender",
        "alice@sante.test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reader = stdout(&out).lines().last().unwrap().to_string();
    let acker = add_client(&clients, "pfi", &["inbox:ack", "inbox:read"]);
    let batches = add_client(&clients, "batches", &["batches:read"]);
    // alice received an XDM letter asking for an MDN, carol a plain one
    let (letter, cda) = common::xdm_letter("bob@sante.test", "alice@sante.test", 7);
    let plain = b"From: dan@sante.test\r\nTo: carol@sante.test\r\nMessage-ID: <p@sante.test>\r\n\
Subject: bonjour\r\n\r\nbonjour\r\n"
        .to_vec();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = mss_outbox::open_store(
            dir.path(),
            Some(dir.path().join("outbox.sqlite").to_str().unwrap()),
        )
        .await
        .unwrap();
        for (mailbox, raw) in [
            ("alice@sante.test", &letter.raw),
            ("carol@sante.test", &plain),
        ] {
            let mss_outbox::inbox::Arrival::Message(m) =
                mss_outbox::inbox::Arrival::read(1, raw.clone())
            else {
                panic!("a message")
            };
            store.keep(mailbox, "INBOX", 1, 1, vec![m]).await.unwrap();
        }
    });
    let trail = dir.path().join("trail/audit.jsonl");
    let s = serve(
        dir.path(),
        &format!("[audit]\npath = {:?}\n", trail.to_str().unwrap()),
        &[],
    );
    let r = keyed_client(&reader);
    let a = keyed_client(&acker);

    // the reader limited to alice sees alice's message only
    let page = get(&r, &s, "/v1/inbox");
    assert_eq!(page.status, 200, "{}", page.text);
    let items = page.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["id"], 1);
    assert_eq!(items[0]["mailbox"], "alice@sante.test");
    assert_eq!(items[0]["documents"], 1);
    assert_eq!(page.json()["next_cursor"], Value::Null);
    let all = get(&a, &s, "/v1/inbox?status=new");
    let ids: Vec<_> = all.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(
        get(&a, &s, "/v1/inbox?cursor=1").json()["items"][0]["id"],
        2
    );
    let bad = get(&a, &s, "/v1/inbox?status=done");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["invalid-params"][0]["name"], "status");
    assert_eq!(get(&r, &s, "/v1/inbox/2").status, 404);
    assert_eq!(get(&r, &s, "/v1/inbox/2/raw").status, 404);
    assert_eq!(get(&keyed_client(&batches), &s, "/v1/inbox").status, 403);

    // shown, byte for byte, and its document
    let shown = get(&r, &s, "/v1/inbox/1");
    assert_eq!(shown.status, 200, "{}", shown.text);
    let doc = &shown.json()["xdm"]["documents"][0];
    assert_eq!(doc["hash_ok"], true);
    assert_eq!(doc["name"], "DOC00001.XML");
    let raw = r.get(s.url("/v1/inbox/1/raw")).send().unwrap();
    assert_eq!(raw.headers()["content-type"], "message/rfc822");
    assert_eq!(raw.bytes().unwrap().as_ref(), letter.raw.as_slice());
    let document = r.get(s.url("/v1/inbox/1/documents/0")).send().unwrap();
    assert_eq!(document.status(), 200);
    assert_eq!(
        document.headers()["content-disposition"],
        "attachment; filename=\"DOC00001.XML\""
    );
    assert_eq!(document.bytes().unwrap().as_ref(), cda.as_bytes());
    assert_eq!(get(&r, &s, "/v1/inbox/1/documents/1").status, 404);

    // acknowledged: the reader may not; a code outside the tables is refused naming it; then 902, once
    let ack = |c: &Client, body: Value| send(c.post(s.url("/v1/inbox/1/ack")).json(&body));
    assert_eq!(ack(&r, json!({"status": "integrated"})).status, 403);
    let refused = ack(&a, json!({"status": "error", "code": 999, "label": "x"}));
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["invalid-params"][0]["name"], "code");
    let label = "Identifiant de patient inconnu";
    let first = ack(&a, json!({"status": "error", "code": 902, "label": label}));
    assert_eq!(first.status, 200, "{}", first.text);
    let f = first.json();
    assert_eq!(
        (
            f["status"].clone(),
            f["outcome"]["code"].clone(),
            f["outcome"]["label"].clone(),
            f["recorded"].clone(),
            f["answer"]["kind"].clone(),
        ),
        (
            json!("error"),
            json!(902),
            json!(label),
            json!(true),
            json!("mdn")
        )
    );
    let again = ack(&a, json!({"status": "integrated"})).json();
    assert_eq!(again["status"], "error");
    assert_eq!(again["recorded"], false);
    assert_eq!(
        again["answer"], f["answer"],
        "the same MDN, not a second one"
    );
    assert_eq!(
        get(&a, &s, "/v1/inbox?status=error").json()["items"][0]["id"],
        1
    );

    // the trail: who, which message, from whom, to which mailbox; never a subject or a document
    let text = std::fs::read_to_string(&trail).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let show = lines
        .iter()
        .find(|l| l["route"] == "GET /v1/inbox/{id}" && l["outcome"]["status"] == 200)
        .unwrap();
    assert_eq!(show["client"], "dpi");
    assert_eq!(show["action"], "inbox.read");
    assert_eq!(show["messages"], json!(["1"]));
    assert_eq!(show["sender"], "bob@sante.test");
    assert_eq!(show["recipients"], json!(["alice@sante.test"]));
    let acked = lines
        .iter()
        .find(|l| l["route"] == "POST /v1/inbox/{id}/ack" && l["outcome"]["status"] == 200)
        .unwrap();
    assert_eq!(acked["client"], "pfi");
    assert_eq!(acked["action"], "inbox.ack");
    assert_eq!(
        acked["messages"],
        json!(["1", format!("outbox:{}", f["answer"]["message"])]),
        "the inbox message, then the MDN's outbox message"
    );
    let denied = lines
        .iter()
        .filter(|l| l["outcome"]["status"] == 404 || l["outcome"]["status"] == 403)
        .count();
    assert_eq!(denied, 5, "{text}");
    assert!(!text.contains("Camille") && !text.contains("consultation"));
}

/// The ops console's overview is read once for every caller of the same second (`GET /v1/outbox`), then
/// cut to each key's senders: a client limited to alice never sees carol's queue, even answered right
/// after a client of carol's, and an unlimited one sees both.
#[test]
fn the_shared_outbox_overview_is_cut_to_each_clients_senders() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    let writer = add_client(&clients, "writer", &["batches:write"]);
    let everyone = add_client(&clients, "ops", &["outbox:read"]);
    let limited_to = |name: &str, sender: &str| {
        let out = run(&[
            "client",
            "add",
            name,
            "--clients",
            clients.to_str().unwrap(),
            "--scope",
            "outbox:read",
            "--sender",
            sender,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().last().unwrap().to_string()
    };
    let alice = limited_to("ops-alice", "alice@sante.test");
    let carol = limited_to("ops-carol", "carol@sante.test");
    let s = serve(dir.path(), "", &[]);
    for (sender, auth, id) in [
        ("alice@sante.test", "alice", "a1"),
        ("carol@sante.test", "carol", "c1"),
    ] {
        let a = post_batch(&keyed_client(&writer), &s, &batch(sender, auth, id));
        assert_eq!(a.status, 202, "{}", a.text);
    }
    let view = |key: &str| {
        let a = get(&keyed_client(key), &s, "/v1/outbox");
        assert_eq!(a.status, 200, "{}", a.text);
        let v = a.json();
        let names = |list: &str, field: &str| -> Vec<String> {
            v[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x[field].as_str().unwrap_or("-").to_owned())
                .collect()
        };
        (names("senders", "sender"), names("batches", "id"))
    };
    // back to back, well within the second the overview is shared
    let (seen_by_carol, seen_by_alice, seen_by_all) = (view(&carol), view(&alice), view(&everyone));
    assert_eq!(
        seen_by_carol,
        (vec!["carol@sante.test".to_owned()], vec!["c1".to_owned()])
    );
    assert_eq!(
        seen_by_alice,
        (vec!["alice@sante.test".to_owned()], vec!["a1".to_owned()])
    );
    assert_eq!(seen_by_all.0, ["alice@sante.test", "carol@sante.test"]);
    assert_eq!(seen_by_all.1.len(), 2, "{seen_by_all:?}");
}
