//! `mss send` and `mss proof`, the real binary against the local operator (scripts/lps-operator.sh): Dovecot
//! IMAP + submission with XOAUTH2, an APP front requiring a client certificate, and (as root) Postfix
//! delivering into the Dovecot mailboxes, where the recipient reads the message back over IMAP.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{mss, stderr, stdout};
use mss_testing::lps::{Operator, TokenKind, message, operator};
use mss_testing::unavailable;

/// Runs `mss args...` with the operator's test CA as trust roots and a verbose log (to prove that no secret
/// reaches it).
fn run_mss(op: &Operator, args: &[&str]) -> Output {
    mss()
        .env("MSS_CA_FILE", op.path("CA"))
        // the test domains are in this data directory's whitelist (docs/mssante.md M8)
        .env("MSS_DATA", common::trusted_data())
        .env_remove("MSS_CERT_PASSWORD")
        .arg("-vv")
        .args(args)
        .output()
        .expect("running mss")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_str().expect("utf-8 temp path").to_owned()
}

/// Waits until `user`'s maildir holds the message `id` (Postfix delivers asynchronously), then reads it back
/// over IMAP as that user.
async fn arrives(op: &Operator, user: &str, id: &str) -> String {
    if !op.delivers() {
        unavailable("no Postfix (not root): the message was accepted but not delivered");
        return String::new();
    }
    let reader = op.per_client(user);
    for _ in 0..100 {
        let found = reader
            .fetch_new("INBOX", 0)
            .await
            .expect("fetch")
            .into_iter()
            .filter_map(|m| m.body)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .find(|text| text.contains(id));
        if let Some(text) = found {
            reader.close().await;
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("message {id} never reached {user}");
}

#[tokio::test]
async fn send_with_a_token_file_delivers_and_files_the_sent_copy() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let token = op.psc().token("alice@sante.test", TokenKind::Valid);
    let token_file = write(dir.path(), "token", token.expose().as_bytes());
    let (id, msg) = message("alice@sante.test", "bob@sante.test", "CR de consultation");
    let eml = write(dir.path(), "message.eml", &msg);
    let server = format!("localhost:{}", op.port("SUBMISSION_PORT"));
    let imap = format!("localhost:{}", op.port("IMAP_PORT"));
    let out = run_mss(
        op,
        &[
            "send",
            &eml,
            "--from",
            "alice@sante.test",
            "--token-file",
            &token_file,
            "--server",
            &server,
            "--imap-server",
            &imap,
            "--save-sent",
        ],
    );
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout: {o}\nstderr: {e}");
    let lines: Vec<&str> = o.lines().collect();
    assert!(lines[0].starts_with("accepted bob@sante.test  (250"), "{o}");
    assert!(lines[1].starts_with("sent: 250"), "{o}");
    assert_eq!(lines.last().copied(), Some("copy: filed in Sent"), "{o}");
    assert!(
        !o.contains(token.expose()) && !e.contains(token.expose()),
        "the token leaked: {o}{e}"
    );
    let text = arrives(op, "bob@sante.test", &id).await;
    if !text.is_empty() {
        assert!(text.contains("Subject: CR de consultation"), "{text}");
        assert!(text.contains("\r\n.ligne qui commence par un point\r\n"));
    }
}

#[tokio::test]
async fn send_with_a_client_certificate_from_an_app_mailbox() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let password = write(dir.path(), "password", op.var("P12_PASSWORD").as_bytes());
    let (id, msg) = message("labo@sante.test", "carol@sante.test", "Résultats");
    let eml = write(dir.path(), "message.eml", &msg);
    let server = format!("localhost:{}", op.port("SUBMISSION_APP_PORT"));
    let p12 = op.path("APP_P12");
    let out = run_mss(
        op,
        &[
            "send",
            &eml,
            "--from",
            "labo@sante.test",
            "--cert",
            p12.to_str().expect("utf-8"),
            "--cert-password-file",
            &password,
            "--server",
            &server,
            "--to",
            "carol@sante.test",
        ],
    );
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout: {o}\nstderr: {e}");
    assert!(o.starts_with("accepted carol@sante.test  (250"), "{o}");
    assert!(
        !e.contains(op.var("P12_PASSWORD")),
        "the password leaked: {e}"
    );
    arrives(op, "carol@sante.test", &id).await;
}

#[test]
fn an_expired_token_is_named_and_never_printed() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let token = op.psc().token("alice@sante.test", TokenKind::Expired);
    let token_file = write(dir.path(), "token", token.expose().as_bytes());
    let (_, msg) = message("alice@sante.test", "bob@sante.test", "Jamais envoyé");
    let eml = write(dir.path(), "message.eml", &msg);
    let server = format!("localhost:{}", op.port("SUBMISSION_PORT"));
    let out = run_mss(
        op,
        &[
            "send",
            &eml,
            "--from",
            "alice@sante.test",
            "--token-file",
            &token_file,
            "--server",
            &server,
        ],
    );
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "stdout: {o}\nstderr: {e}");
    assert!(o.is_empty(), "{o}");
    let last = e.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("mss: error: authentication of alice@sante.test at localhost:")
            && last.contains("the PSC access token has expired"),
        "{e}"
    );
    assert!(!e.contains(token.expose()), "the token leaked: {e}");
}

#[test]
fn send_refuses_bad_arguments_before_connecting() {
    // exit 2 for usage errors, 1 with a named reason for bad input
    let out = common::run(&["send", "m.eml", "--from", "alice@sante.test"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--token-file"), "{}", stderr(&out));
    let out = common::run(&["send", "m.eml", "--from", "not an address", "--cert", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--from"), "{}", stderr(&out));
    let out = common::run(&[
        "send",
        "-",
        "--from",
        "alice@sante.test",
        "--token-file",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "mss: error: the message and the token cannot both come from stdin"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = write(dir.path(), "token", b"");
    let out = common::run(&[
        "send",
        "/nonexistent/m.eml",
        "--from",
        "alice@sante.test",
        "--token-file",
        &empty,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("mss: error: reading /nonexistent/m.eml: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn proof_writes_both_listings_and_a_verdict_per_point() {
    let Some(op) = operator() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("preuve.txt");
    let (imap, smtp) = (op.port("IMAP_PORT"), op.port("SUBMISSION_PORT"));
    let out = run_mss(
        op,
        &[
            "proof",
            "localhost",
            "--imap-port",
            &imap.to_string(),
            "--smtp-port",
            &smtp.to_string(),
            "--out",
            out_file.to_str().expect("utf-8"),
        ],
    );
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout: {o}\nstderr: {e}");
    let mut lines = o.lines();
    assert_eq!(
        lines.next(),
        Some(format!("listings written to {}", out_file.display()).as_str())
    );
    let verdicts: Vec<&str> = lines.collect();
    assert!(verdicts.len() >= 4, "{o}");
    assert!(verdicts.iter().all(|l| l.starts_with("PASS  ")), "{o}");
    for point in ["IMAP", "SMTP", "XOAUTH2", "SASL-IR"] {
        assert!(verdicts.iter().any(|l| l.contains(point)), "{point}: {o}");
    }
    let transcript = std::fs::read_to_string(&out_file).expect("transcript");
    let imap_at = transcript
        .find(&format!("LISTING IMAP — localhost port {imap}"))
        .expect("IMAP section");
    let smtp_at = transcript
        .find(&format!("LISTING SMTP — localhost port {smtp}"))
        .expect("SMTP section");
    assert!(imap_at < smtp_at);
    for line in [
        "C01 CAPABILITY",
        "C02 LOGOUT",
        "EHLO localhost",
        "QUIT",
        "Connection closed by foreign host.",
    ] {
        assert!(
            transcript.lines().any(|l| l == line),
            "{line}: {transcript}"
        );
    }

    // the APP front has no XOAUTH2 on IMAP: exit 1, the failed point named, listings still on stdout
    let out = run_mss(
        op,
        &[
            "proof",
            "localhost",
            "--imap-port",
            &op.port("IMAP_APP_PORT").to_string(),
            "--smtp-port",
            &op.port("SUBMISSION_APP_PORT").to_string(),
        ],
    );
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "stdout: {o}\nstderr: {e}");
    assert!(
        o.contains("LISTING IMAP") && o.contains("LISTING SMTP"),
        "{o}"
    );
    assert!(
        e.lines()
            .any(|l| l.starts_with("FAIL  ") && l.contains("XOAUTH2")),
        "{e}"
    );
    assert!(
        e.ends_with("mss: error: the API LPS front does not meet every point\n"),
        "{e}"
    );
}
