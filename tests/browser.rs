//! The autocomplete widget in a real headless Chromium (Debian's), driven by playwright-core against a real
//! `mss serve`. Screenshots land in `target/test-artefacts/browser/`.
//!
//! Needs `scripts/install-deps.sh` (chromium + playwright-core). Where they are missing the test fails under
//! CI (`CI` set) and is skipped with a message elsewhere.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, demo_file, import};

/// The Chromium to drive, or `None` (skipped outside CI) when it or playwright-core is missing.
fn chromium(root: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists()
        && root
            .join("tests/browser/node_modules/playwright-core")
            .exists();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium or playwright-core missing: run scripts/install-deps.sh"
        );
        eprintln!("SKIPPED: chromium or playwright-core missing (run scripts/install-deps.sh)");
        return None;
    }
    Some(chromium)
}

#[test]
fn autocomplete_widget_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/autocomplete.mjs");
    let Some(chromium) = chromium(root) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 5000, 31, false));
    let server = Server::start(&data, &[]);
    let artefacts = root.join("target/test-artefacts/browser");
    let out = Command::new("node")
        .arg(&script)
        .arg(&server.base)
        .arg(&artefacts)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("running node");
    let printed = String::from_utf8_lossy(&out.stdout);
    eprintln!("{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser checks failed:\n{printed}");
    assert!(printed.contains(" passed, 0 failed"), "{printed}");
    assert!(artefacts.join("autocomplete-dup.png").exists());
}

/// Issue 17: a vendor's page embeds the widget with a publishable key; the directory needs a key.
#[test]
fn publishable_key_widget_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = chromium(root) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 2000, 31, false));
    let clients = tmp.path().join("clients.toml");
    let out = common::run(&[
        "client",
        "add",
        "dpi-web",
        "--publishable",
        "--origin",
        "http://dpi.example.test",
        "--clients",
        clients.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let key = common::stdout(&out).trim().to_string();
    let conf = tmp.path().join("mss.toml");
    std::fs::write(&conf, "[access]\ndirectory = \"key\"\n").unwrap();
    let server = Server::start(
        &data,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--clients",
            clients.to_str().unwrap(),
        ],
    );
    let artefacts = root.join("target/test-artefacts/browser");
    let out = Command::new("node")
        .arg(root.join("tests/browser/publishable.mjs"))
        .args([
            server.base.as_str(),
            key.as_str(),
            "http://dpi.example.test",
            "http://evil.example.test",
        ])
        .arg(&artefacts)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("running node");
    let printed = String::from_utf8_lossy(&out.stdout);
    eprintln!("{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser checks failed:\n{printed}");
    assert!(printed.contains("3 passed, 0 failed"), "{printed}");
}

/// Issue 22: the ops console against a real `mss serve` whose workers and reader talk to the local operator
/// (Postfix + Dovecot): one mailbox paused by an expired token, one that sends and receives. Chromium signs
/// in, sees the pause with its reason and what to do, retries a failed recipient until it is sent, cancels
/// what waits of a batch (counted as cancelled, not failed), marks a received patient message in error (the
/// MDN is queued), sees each endpoint's last connection, and is refused without a key and with a key
/// lacking the scope. Then `/metrics` is read by the Prometheus project's own
/// parser, and the Grafana dashboard's queries name only metrics the service exposes.
#[test]
fn ops_console_in_chromium() {
    use mss_outbox::{NewMessage, Outcome, SqliteStore, Store};
    use mss_testing::lps::{TokenKind, operator};

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = chromium(root) else {
        return;
    };
    let Some(op) = operator() else { return };
    if !op.delivers() {
        mss_testing::unavailable("the console test sends through Postfix (root)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 1000, 31, false));
    common::install_whitelist(&data, mss_testing::TEST_DOMAINS);
    let psc = op.psc();
    let paused_token = tmp.path().join("alice.token");
    std::fs::write(
        &paused_token,
        psc.token("alice@sante.test", TokenKind::Expired).expose(),
    )
    .unwrap();
    let hop = format!("{}@sante.test", common::unique("hop"));
    let hop_token = tmp.path().join("hop.token");
    std::fs::write(&hop_token, psc.token(&hop, TokenKind::Valid).expose()).unwrap();
    let conf = tmp.path().join("mss.toml");
    std::fs::write(
        &conf,
        format!(
            // a directory that does not answer, harvested hourly: the console shows the failure and the next run
            "ldap_url = \"ldap://127.0.0.1:1\"\nldap_sync_every = \"1h\"\n\n\
             [send]\nproduct_reference = \"MSS-TEST-NIL\"\nca_file = {ca:?}\nsubmission = \"localhost:{smtp}\"\n\n\
             [outbox]\nworker = \"console\"\n\n\
             [[senders]]\nname = \"alice\"\naddress = \"alice@sante.test\"\ntoken_file = {paused_token:?}\n\
             imap = \"localhost:{imap}\"\nreceipts = false\n\n\
             [[senders]]\nname = \"hop\"\naddress = {hop:?}\ntoken_file = {hop_token:?}\n\
             imap = \"localhost:{imap}\"\nreceive = true\n",
            ca = op.path("CA"),
            smtp = op.port("SUBMISSION_PORT"),
            imap = op.port("IMAP_PORT"),
        ),
    )
    .unwrap();

    // what the workers left before this start: a batch of the paused mailbox, and a recipient of the
    // other one that its server refused (recorded as a worker records a 5xx)
    let outbox = tmp.path().join("outbox.sqlite");
    let rcpt = format!("{}@sante.test", common::unique("retried"));
    let letter = |key: &str, from: &str, to: &str| {
        let id = format!("<{key}@console.test>");
        NewMessage {
            idempotency_key: key.to_owned(),
            label: format!("{key}.eml"),
            sender: mss_types::MailAddress::parse(from).unwrap(),
            auth_ref: String::new(),
            content: format!(
                "From: {from}\r\nTo: {to}\r\nSubject: {key}\r\nMessage-ID: {id}\r\n\
                 Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nBonjour\r\n"
            )
            .into_bytes(),
            message_id: id,
            recipients: vec![mss_types::MailAddress::parse(to).unwrap()],
            dsn: false,
        }
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqliteStore::open(&outbox).unwrap();
            let mut waiting = Vec::new();
            for i in 0..3 {
                let mut m = letter(&format!("wait{i}"), "alice@sante.test", "bob@sante.test");
                m.auth_ref = "senders:alice".into();
                waiting.push(m);
            }
            store
                .enqueue(Some("letters-paused"), None, waiting)
                .await
                .unwrap();
            let mut refused = letter("refused", &hop, &rcpt);
            refused.auth_ref = "senders:hop".into();
            store
                .enqueue(Some("letters-hop"), None, vec![refused])
                .await
                .unwrap();
            let leased = store
                .lease("before", Some(&hop), 10, std::time::Duration::from_secs(60))
                .await
                .unwrap();
            let id = leased[0].recipients[0].id;
            let reason =
                "550 5.7.1 <recipient>: mailbox temporarily disabled by its owner".to_owned();
            store
                .record("before", &[(id, Outcome::Failed { reason })])
                .await
                .unwrap();
        });
    // a patient writes from Mon espace santé to the receiving mailbox, asking for a notification
    let patient_letter = format!(
        "From: Leo Dupond <279035121518989@patient.mssante.fr>\r\nTo: {hop}\r\nSubject: Question sur mon traitement\r\n\
         Message-ID: <{}@patient.mssante.fr>\r\nDisposition-Notification-To: 279035121518989@patient.mssante.fr\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nBonjour docteur\r\n",
        common::unique("q")
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut s = op.imap_session(&hop).await;
            s.append("INBOX", &[], patient_letter.as_bytes())
                .await
                .unwrap();
            s.logout().await.unwrap();
        });

    let clients = tmp.path().join("clients.toml");
    let ops = common::add_client(
        &clients,
        "ops",
        &[
            "outbox:read",
            "outbox:manage",
            "inbox:read",
            "inbox:ack",
            "metrics:read",
        ],
    );
    let weak = common::add_client(&clients, "dpi", &["directory:read", "batches:read"]);
    let mut server = Server::start(
        &data,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--outbox",
            outbox.to_str().unwrap(),
            "--clients",
            clients.to_str().unwrap(),
        ],
    )
    .with_key(&ops);
    let artefacts = root.join("target/test-artefacts/browser");
    let out = Command::new("node")
        .arg(root.join("tests/browser/console.mjs"))
        .args([server.base.as_str(), ops.as_str(), weak.as_str()])
        .arg(&artefacts)
        .args([rcpt.as_str(), paused_token.to_str().unwrap()])
        .env("CHROMIUM", &chromium)
        .output()
        .expect("running node");
    let printed = String::from_utf8_lossy(&out.stdout);
    eprintln!("{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser checks failed:\n{printed}");
    assert!(printed.contains(" passed, 0 failed"), "{printed}");
    for shot in ["console-outbox", "console-inbox", "console-refused-scope"] {
        assert!(artefacts.join(format!("{shot}.png")).exists(), "{shot}");
    }

    // /metrics, as a scraper reads it (Bearer), through the Prometheus client library's parser
    let metrics = server.text("/metrics");
    let parsed = Command::new("/usr/bin/python3")
        .arg(root.join("tests/browser/metrics.py"))
        .arg(root.join("examples/grafana-dashboard.json"))
        .args([hop.as_str(), "alice@sante.test"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(metrics.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 with prometheus_client (scripts/install-deps.sh)");
    let said = String::from_utf8_lossy(&parsed.stdout);
    eprintln!("{said}{}", String::from_utf8_lossy(&parsed.stderr));
    assert!(parsed.status.success(), "metrics checks failed:\n{said}");
    assert!(said.contains("metrics ok"), "{said}");

    // the routes' refusals name what is wrong
    let answer = |r: reqwest::blocking::RequestBuilder| {
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap())
    };
    let (status, view) = answer(server.http.get(server.url("/v1/outbox")));
    assert_eq!(status, 200, "{view}");
    let sent = view["latest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["address"] == rcpt.as_str())
        .expect("the retried recipient in the latest changes");
    assert_eq!(sent["state"], "sent", "{sent}");
    let retry = server.url(&format!("/v1/messages/{}/retry", sent["message"]));
    let (status, p) = answer(
        server
            .http
            .post(&retry)
            .json(&serde_json::json!({"recipients": ["not an address"]})),
    );
    assert_eq!(
        (status, &p["invalid-params"][0]["name"]),
        (400, &serde_json::json!("recipients[0]")),
        "{p}"
    );
    let (status, p) = answer(server.http.post(&retry));
    assert_eq!(status, 409, "a sent recipient is not sent again: {p}");
    let (status, _) = answer(server.http.post(server.url("/v1/messages/99999/retry")));
    assert_eq!(status, 404);
    // the last connections: the refused token said by its kind, the token itself nowhere
    let (status, sources) = answer(server.http.get(server.url("/v1/sources")));
    assert_eq!(status, 200, "{sources}");
    let alice = sources["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sender"] == "alice@sante.test")
        .expect("alice's endpoints");
    assert_eq!(
        (
            &alice["last_connections"][0]["endpoint"],
            &alice["last_connections"][0]["ok"],
            &alice["last_connections"][0]["error"]
        ),
        (
            &serde_json::json!("submission"),
            &serde_json::json!(false),
            &serde_json::json!("credentials refused")
        ),
        "{alice}"
    );
    let expired = std::fs::read_to_string(&paused_token).unwrap();
    assert!(!sources.to_string().contains(expired.trim()), "{sources}");
    let (status, _) = answer(server.http.post(server.url("/v1/batches/nope/cancel")));
    assert_eq!(status, 404);
    let (status, p) = answer(server.http.get(server.url("/v1/outbox?rows=0")));
    assert_eq!(
        (status, &p["invalid-params"][0]["name"]),
        (400, &serde_json::json!("rows")),
        "{p}"
    );
    assert!(server.terminate().success());

    // the console's reads and actions are in the audit trail, the refused one too
    let audit: Vec<serde_json::Value> = std::fs::read_to_string(data.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logged = |action: &str, client: &str, status: u64| {
        audit.iter().any(|l| {
            l["action"] == action && l["client"] == client && l["outcome"]["status"] == status
        })
    };
    assert!(logged("outbox.read", "dpi", 403), "the refused read");
    assert!(logged("outbox.read", "ops", 200));
    assert!(logged("batches.cancel", "ops", 200));
    let retry = audit
        .iter()
        .find(|l| l["action"] == "messages.retry" && l["outcome"]["status"] == 200)
        .expect("the retry is audited");
    assert_eq!(retry["recipients"], serde_json::json!([rcpt]), "{retry}");
    assert_eq!(retry["batch"], "letters-hop", "{retry}");
}
