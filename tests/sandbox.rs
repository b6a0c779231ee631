//! `mss sandbox` end to end: ONE sandbox started from a fresh directory, used by mss's own commands (PER via
//! a stand-in token, APP via the sandbox's certificate) and by Python's smtplib/imaplib as a foreign client,
//! refused tokens, then stopped, leaving nothing behind. Needs root (Postfix), Dovecot, Postfix, openssl and
//! python3 (scripts/install-deps.sh); skipped outside CI without them.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{mss, stderr, stdout};
use serde_json::Value;

struct Sandbox {
    dir: PathBuf,
    e: Value,
}

impl Sandbox {
    fn s(&self, key: &str) -> &str {
        self.e[key].as_str().unwrap()
    }
    fn mailbox(&self, kind: &str) -> &str {
        self.e["mailboxes"][kind].as_str().unwrap()
    }
    fn token(&self, user: &str, extra: &[&str]) -> String {
        let o = mss()
            .args(["sandbox", "token", "--dir"])
            .arg(&self.dir)
            .args(["--user", user])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert_eq!(out.lines().count(), 1, "the token alone on stdout");
        out.trim().to_owned()
    }
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("report/connections.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn available() -> bool {
    let ok = |c: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(c)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(
        "{ [ \"$(id -u)\" = 0 ] && command -v dovecot && command -v postfix && command -v openssl && command -v python3; } >/dev/null",
    ) {
        mss_testing::unavailable("the sandbox needs root, dovecot, postfix, openssl and python3");
        return false;
    }
    true
}

/// Seven free ports, below the kernel's ephemeral range.
fn free_base() -> u16 {
    mss_testing::free_ports(7, 2)
}

/// Runs `python3 -c code` with arguments; its stdout.
fn python(code: &str, args: &[&str]) -> String {
    let o = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const PY_SMTP: &str = r#"
import smtplib, ssl, sys, base64
host, port = sys.argv[1].split(':')
ca, user, token, to = sys.argv[2:6]
s = smtplib.SMTP(host, int(port))
s.starttls(context=ssl.create_default_context(cafile=ca))
s.ehlo()
s.auth("XOAUTH2", lambda c=None: "user=%s\x01auth=Bearer %s\x01\x01" % (user, token) if c is None else "")
msg = "From: %s\r\nTo: %s\r\nSubject: depuis smtplib\r\nMessage-ID: <smtplib.%s>\r\n\r\nBonjour\r\n" % (user, to, user)
s.sendmail(user, [to], msg)
s.quit()
print("sent")
"#;

const PY_IMAP: &str = r#"
import imaplib, ssl, sys
host, port = sys.argv[1].split(':')
ca, user, token = sys.argv[2:5]
c = imaplib.IMAP4(host, int(port))
c.starttls(ssl_context=ssl.create_default_context(cafile=ca))
first = [True]
def answer(challenge):
    if first[0]:
        first[0] = False
        return "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)
    return ""
try:
    c.authenticate("XOAUTH2", answer)
except imaplib.IMAP4.error as e:
    print("refused:", e)
    sys.exit(0)
typ, data = c.select("INBOX")
print("selected", data[0].decode())
c.logout()
"#;

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn maildir_count(dir: &Path, user: &str) -> usize {
    ["new", "cur"]
        .iter()
        .map(|d| {
            std::fs::read_dir(dir.join("mail").join(user).join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

/// Processes whose command line or environment names `dir` (the daemon, Dovecot, Postfix's MAIL_CONFIG).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path();
        for f in ["cmdline", "environ"] {
            if let Ok(b) = std::fs::read(p.join(f))
                && String::from_utf8_lossy(&b).contains(&needle)
            {
                found.push(format!(
                    "{} {}",
                    p.display(),
                    String::from_utf8_lossy(&b).replace('\0', " ")
                ));
            }
        }
    }
    found
}

#[test]
fn sandbox_serves_mss_and_foreign_clients_then_leaves_nothing() {
    if !available() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sandbox");
    let data = root.path().join("data");
    let base = free_base();
    let o = mss()
        .args([
            "sandbox",
            "start",
            "--json",
            "--base-port",
            &base.to_string(),
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "start: {}", stderr(&o));
    let e: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "app_imap",
            "app_submission",
            "ca_file",
            "client_cert",
            "client_key",
            "imap",
            "mailboxes",
            "responder",
            "submission"
        ]
    );
    assert_eq!(e["imap"], format!("127.0.0.1:{base}"));
    assert_eq!(
        e["mailboxes"]["patient"],
        "279037505612309@patient.mssante.fr"
    );
    assert_eq!(e["responder"]["vsm"], "vsm@repondeur.sandbox.mssante.fr");
    let sb = Sandbox {
        dir: dir.clone(),
        e,
    };
    // a second start on the same directory is refused, naming the way out
    let again = mss()
        .args(["sandbox", "start", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("mss sandbox stop"),
        "{}",
        stderr(&again)
    );

    let pro = sb.mailbox("professional").to_owned();
    let org = sb.mailbox("organisation").to_owned();
    let app = sb.mailbox("application").to_owned();
    let ca = sb.s("ca_file").to_owned();
    let p12 = Path::new(sb.s("client_cert")).with_extension("p12");

    // mss send, PER through a stand-in token
    let token_file = root.path().join("token");
    std::fs::write(&token_file, sb.token(&pro, &[])).unwrap();
    let eml = root.path().join("m.eml");
    std::fs::write(
        &eml,
        format!("From: {pro}\r\nTo: {org}\r\nSubject: essai PER\r\nMessage-ID: <per.1@sandbox.mssante.fr>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nBonjour\r\n"),
    )
    .unwrap();
    let send_per = || {
        mss()
            .env("MSS_DATA", &data)
            .args([
                "send",
                eml.to_str().unwrap(),
                "--from",
                &pro,
                "--token-file",
            ])
            .arg(&token_file)
            .args(["--server", sb.s("submission"), "--ca-file", &ca])
            .output()
            .unwrap()
    };
    let send = send_per();
    assert!(send.status.success(), "send PER: {}", stderr(&send));
    // mss send, APP through the sandbox's client certificate
    std::fs::write(
        &eml,
        format!("From: {app}\r\nTo: {org}\r\nSubject: essai APP\r\nMessage-ID: <app.1@sandbox.mssante.fr>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nBonjour\r\n"),
    )
    .unwrap();
    let send = mss()
        .env("MSS_DATA", &data)
        .args(["send", eml.to_str().unwrap(), "--from", &app, "--cert"])
        .arg(&p12)
        .args(["--server", sb.s("app_submission"), "--ca-file", &ca])
        .output()
        .unwrap();
    assert!(send.status.success(), "send APP: {}", stderr(&send));
    // Python's smtplib, XOAUTH2 with SASL-IR
    let sent = python(
        PY_SMTP,
        &[sb.s("submission"), &ca, &pro, &sb.token(&pro, &[]), &org],
    );
    assert_eq!(sent.trim(), "sent");
    wait_for("three messages in the organisation's mailbox", || {
        maildir_count(&dir, &org) >= 3
    });

    // mss inbox sync, PER token, reads them
    let org_token = root.path().join("org-token");
    std::fs::write(&org_token, sb.token(&org, &[])).unwrap();
    let sync = mss()
        .env("MSS_DATA", &data)
        .args(["inbox", "sync", "--from", &org, "--token-file"])
        .arg(&org_token)
        .args([
            "--server",
            sb.s("submission"),
            "--imap-server",
            sb.s("imap"),
            "--ca-file",
            &ca,
        ])
        .output()
        .unwrap();
    assert!(sync.status.success(), "sync: {}", stderr(&sync));
    assert!(stdout(&sync).contains("inbox: 3 new"), "{}", stdout(&sync));

    // Python's imaplib with valid, expired and non-PSC tokens (imaplib sends no SASL-IR)
    let imap = |token: &str| python(PY_IMAP, &[sb.s("imap"), &ca, &pro, token]);
    assert!(imap(&sb.token(&pro, &[])).starts_with("selected"));
    let expired = imap(&sb.token(&pro, &["--expired"]));
    assert!(
        expired.contains("refused") && expired.contains("token expired"),
        "{expired}"
    );
    let not_psc = imap(&sb.token(&pro, &["--not-psc"]));
    assert!(
        not_psc.contains("not a Pro Santé Connect token") || not_psc.contains("not a Pro Sant"),
        "{not_psc}"
    );
    let other_user = imap(&sb.token(&org, &[]));
    assert!(
        other_user.contains("does not hold the mailbox"),
        "{other_user}"
    );

    // credentials before STARTTLS are refused, and recorded
    let early = python(
        "import smtplib, sys\nh, p = sys.argv[1].split(':')\ns = smtplib.SMTP(h, int(p))\ns.ehlo()\nprint(s.docmd('AUTH', 'XOAUTH2 dXNlcj1h')[0])\n",
        &[sb.s("submission")],
    );
    assert_eq!(early.trim(), "530");

    // the records say what each connection did
    let records = sb.records();
    let of = |front: &str, user: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["front"] == front && r["user"] == user)
            .collect()
    };
    let app_sub = of("app_submission", &app);
    assert_eq!(app_sub.len(), 1);
    assert!(
        app_sub[0]["client_certificate"]
            .as_str()
            .unwrap()
            .contains("OU=499700000000001")
    );
    assert_eq!(app_sub[0]["mechanism"], "PLAIN");
    let pro_imap = of("imap", &pro);
    assert_eq!(pro_imap.len(), 4);
    assert!(
        pro_imap
            .iter()
            .all(|r| r["starttls"] == true && r["sasl_ir"] == false)
    );
    assert!(
        pro_imap
            .iter()
            .all(|r| r["tls_version"] == "TLSv1_3" || r["tls_version"] == "TLSv1_2")
    );
    assert_eq!(
        pro_imap
            .iter()
            .filter(|r| r["authenticated"] == true)
            .count(),
        1
    );
    let pro_sub = of("submission", &pro);
    assert!(
        pro_sub
            .iter()
            .all(|r| r["sasl_ir"] == true && r["authenticated"] == true)
    );

    // the auto-responder answers the sender with IHE_XDM messages, which mss inbox reads and verifies
    let vsm = sb.e["responder"]["vsm"].as_str().unwrap().to_owned();
    let crbio = sb.e["responder"]["crbio"].as_str().unwrap().to_owned();
    std::fs::write(
        &eml,
        format!("From: {pro}\r\nTo: {vsm}, {crbio}\r\nSubject: demande de documents\r\nMessage-ID: <ask.1@sandbox.mssante.fr>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nBonjour\r\n"),
    )
    .unwrap();
    std::fs::write(&token_file, sb.token(&pro, &[])).unwrap();
    let send = send_per();
    assert!(
        send.status.success(),
        "send to the responder: {}",
        stderr(&send)
    );
    wait_for("the two answers", || maildir_count(&dir, &pro) >= 2);
    let pro_data = root.path().join("pro-data");
    let sync = mss()
        .env("MSS_DATA", &pro_data)
        .args(["inbox", "sync", "--from", &pro, "--token-file"])
        .arg(&token_file)
        .args([
            "--server",
            sb.s("submission"),
            "--imap-server",
            sb.s("imap"),
            "--ca-file",
            &ca,
        ])
        .output()
        .unwrap();
    assert!(sync.status.success(), "sync: {}", stderr(&sync));
    assert!(
        stdout(&sync).contains("inbox: 2 new (0 faulty)"),
        "{}",
        stdout(&sync)
    );
    let list = mss()
        .env("MSS_DATA", &pro_data)
        .args(["inbox", "list", "--json"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let listed = stdout(&list);
    for (responder, format_code) in [
        (&vsm, "urn:asip:ci-sis:vsm:2012"),
        (&crbio, "urn:ihe:lab:xd-lab:2008"),
    ] {
        let entry: Value = listed
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|v| {
                v["from"]
                    .as_str()
                    .is_some_and(|f| f.contains(responder.as_str()))
            })
            .unwrap_or_else(|| panic!("no answer from {responder} in {listed}"));
        let id = entry["id"].to_string();
        let show = mss()
            .env("MSS_DATA", &pro_data)
            .args(["inbox", "show", &id, "--json"])
            .output()
            .unwrap();
        assert!(show.status.success(), "{}", stderr(&show));
        let shown = stdout(&show);
        assert!(shown.contains(format_code), "{responder}: {shown}");
        assert!(
            shown.contains("279037505612309"),
            "{responder}: the test patient"
        );
        assert!(
            shown.contains("ask.1@sandbox.mssante.fr"),
            "{responder}: In-Reply-To"
        );
        // integrated: the MDN the answer asked for goes back to the responder at once
        let ack = mss()
            .env("MSS_DATA", &pro_data)
            .args(["inbox", "ack", &id, "--integrated", "--from-label"])
            .arg("Dr_Marie_MARTIN_Sandbox")
            .args(["--from", &pro, "--token-file"])
            .arg(&token_file)
            .args(["--server", sb.s("submission"), "--ca-file", &ca])
            .output()
            .unwrap();
        assert!(ack.status.success(), "ack: {}", stderr(&ack));
        let said = stdout(&ack);
        assert!(
            said.starts_with(&format!(
                "inbox message {id}: integrated\nmdn queued in the outbox"
            )),
            "{said}"
        );
        // every MDN queued so far went out (the counts are the mailbox's whole outbox)
        assert!(said.contains("0 deferred, 0 queued, 0 failed"), "{said}");
    }

    // the report: per mailbox, each check passed or failed with its reason, and mss check's findings
    let report = mss()
        .args(["sandbox", "report", "--json", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        report.status.code(),
        Some(1),
        "checks failed: {}",
        stderr(&report)
    );
    let report: Value = serde_json::from_str(stdout(&report).trim()).unwrap();
    let entry = |mailbox: Option<&str>| -> Value {
        report["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mailbox"].as_str() == mailbox)
            .unwrap_or_else(|| panic!("{mailbox:?} in {report}"))
            .clone()
    };
    let check = |m: &Value, id: &str| -> (bool, String) {
        let c = m["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == id)
            .unwrap_or_else(|| panic!("{id} in {m}"));
        (
            c["passed"].as_bool().unwrap(),
            c["detail"].as_str().unwrap().to_owned(),
        )
    };
    let pro_report = entry(Some(&pro));
    let (ok, auth) = check(&pro_report, "authentication");
    assert!(
        !ok && auth.contains("token expired (1 connection)"),
        "{auth}"
    );
    assert!(auth.contains("not a Pro Santé Connect token"), "{auth}");
    assert!(auth.contains("does not hold the mailbox"), "{auth}");
    let (ok, ir) = check(&pro_report, "sasl_ir");
    assert!(
        !ok && ir.contains("without initial response on IMAP (4 connections)"),
        "{ir}"
    );
    assert!(check(&pro_report, "starttls").0);
    assert!(check(&pro_report, "tls_version").0);
    // the PER messages carry no X-MSS-NIL (ECO.2.4.3): mss check says so
    let per1 = pro_report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == "per.1@sandbox.mssante.fr")
        .unwrap()
        .clone();
    assert!(
        per1["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "ECO.2.4.3" && f["severity"] == "error"),
        "{per1}"
    );
    assert!(!check(&pro_report, "messages").0);
    let app_report = entry(Some(&app));
    let (ok, cert) = check(&app_report, "client_certificate");
    assert!(ok && cert.contains("OU=499700000000001"), "{cert}");
    assert!(check(&app_report, "authentication").0);
    let (ok, early) = check(&entry(None), "starttls");
    assert!(
        !ok && early.contains("AUTH sent before STARTTLS on submission"),
        "{early}"
    );
    let text = mss()
        .args(["sandbox", "report", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = stdout(&text);
    assert!(
        text.contains("[FAILED] Authentication") && text.contains("token expired"),
        "{text}"
    );
    assert!(
        text.contains("<per.1@sandbox.mssante.fr>: error header X-MSS-NIL [ECO.2.4.3]"),
        "{text}"
    );

    // its relay gone (Postfix stopped under it): the front says so, a client does not see a dropped line
    assert!(
        Command::new("postfix")
            .arg("-c")
            .arg(dir.join("postfix"))
            .arg("stop")
            .status()
            .unwrap()
            .success()
    );
    let refused = send_per();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("454") && stderr(&refused).contains("relay unavailable"),
        "{}",
        stderr(&refused)
    );

    // a sandbox killed without stopping: the next start clears what it left (its servers) and serves again
    let pid = std::fs::read_to_string(dir.join("sandbox.pid")).unwrap();
    assert!(
        Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    wait_for("the killed process to end", || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |st| {
            st.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    });
    let o = mss()
        .args([
            "sandbox",
            "start",
            "--json",
            "--base-port",
            &base.to_string(),
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "start after a crash: {}", stderr(&o));
    assert_eq!(
        serde_json::from_str::<Value>(stdout(&o).trim()).unwrap(),
        sb.e
    );

    // stop: no process, no port, no directory
    let stop = mss()
        .args(["sandbox", "stop", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(stop.status.success(), "stop: {}", stderr(&stop));
    assert!(!dir.exists(), "the directory is removed");
    assert_eq!(processes_naming(&dir), Vec::<String>::new());
    for k in 0..7 {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok(),
            "port {} still taken",
            base + k
        );
    }
    let again = mss()
        .args(["sandbox", "stop", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("no sandbox is running"),
        "{}",
        stderr(&again)
    );
}
