//! `mss audit`: the real binary reading a trail written by the library.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::Path;

use common::{mss, stderr, stdout};
use mss_access::audit::{AuditConfig, AuditLog, AuditRecord, Outcome};
use time::OffsetDateTime;
use time::macros::datetime;

fn record(time: OffsetDateTime, client: Option<&str>) -> AuditRecord {
    AuditRecord {
        time,
        client: client.map(str::to_string),
        key_id: Some("k1".into()),
        certificate: None,
        source: "10.1.2.3".parse().unwrap(),
        via: None,
        action: "batches.read".into(),
        route: "GET /v1/batches/{id}".into(),
        batch: Some("b-1".into()),
        messages: vec![],
        sender: None,
        recipients: vec![],
        outcome: Outcome {
            status: 200,
            reason: None,
        },
    }
}

/// Three records of two clients and a refused one, across a rotation.
fn write_trail(path: &Path) {
    let log = AuditLog::open(AuditConfig {
        max_bytes: 400,
        ..AuditConfig::new(path)
    })
    .unwrap();
    log.write(&record(datetime!(2026-12-01 08:00:00.5 UTC), Some("dpi")))
        .unwrap();
    let mut refused = record(datetime!(2026-12-02 09:15:00 UTC), None);
    refused.key_id = Some("k-unknown".into());
    refused.batch = None;
    refused.route = "POST /v1/batches".into();
    refused.action = "batches.create".into();
    refused.source = "2001:db8::7".parse().unwrap();
    refused.outcome = Outcome {
        status: 401,
        reason: Some("unknown_key".into()),
    };
    log.write(&refused).unwrap();
    let mut sent = record(datetime!(2026-12-03 10:00:00.042 UTC), Some("rdv"));
    sent.action = "messages.read".into();
    sent.route = "GET /v1/messages/{id}".into();
    // an id chosen by a client, with a newline: it must not forge a line of the listing
    sent.batch = Some("b-2\n2026-12-09T00:00:00.000Z  admin".into());
    sent.messages = vec!["m-1".into(), "m-2".into()];
    sent.recipients = vec!["1234567890123@patient.mssante.fr".into()];
    log.write(&sent).unwrap();
    log.write(&record(datetime!(2026-12-04 11:00:00 UTC), Some("dpi")))
        .unwrap();
}

const DPI_1: &str = "2026-12-01T08:00:00.500Z  dpi  10.1.2.3  batches.read  GET /v1/batches/{id}  batch=b-1  200  -";
const REFUSED: &str = "2026-12-02T09:15:00.000Z  -  2001:db8::7  batches.create  POST /v1/batches  -  401  unknown_key";
const RDV: &str = "2026-12-03T10:00:00.042Z  rdv  10.1.2.3  messages.read  GET /v1/messages/{id}  \
                   batch=b-2\\n2026-12-09T00:00:00.000Z  admin messages=m-1,m-2  200  -";
const DPI_2: &str = "2026-12-04T11:00:00.000Z  dpi  10.1.2.3  batches.read  GET /v1/batches/{id}  batch=b-1  200  -";

fn audit(data: &Path, args: &[&str]) -> Vec<String> {
    let out = mss()
        .args(["--data", data.to_str().unwrap(), "audit"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn mss_audit_lists_filters_and_dumps_the_trail() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("audit.jsonl");
    write_trail(&path);
    assert!(
        std::fs::read_dir(data.path()).unwrap().count() >= 3,
        "the trail was rotated"
    );

    assert_eq!(audit(data.path(), &[]), [DPI_1, REFUSED, RDV, DPI_2]);
    assert_eq!(audit(data.path(), &["--client", "dpi"]), [DPI_1, DPI_2]);
    assert_eq!(
        audit(data.path(), &["--since", "2026-12-02"]),
        [REFUSED, RDV, DPI_2]
    );
    assert_eq!(
        audit(data.path(), &["--since", "2026-12-02T09:15:00.001Z"]),
        [RDV, DPI_2]
    );
    assert_eq!(
        audit(data.path(), &["--since", "2026-12-03", "--client", "dpi"]),
        [DPI_2]
    );

    // --json: the lines as the library stored them, oldest file first
    let mut files: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    // rotated files in name (time) order, the current one last
    files.sort_by_key(|p| (p.file_name().unwrap() == "audit.jsonl", p.clone()));
    let stored: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(stored.len(), 4);
    assert_eq!(audit(data.path(), &["--json"]), stored);
    assert_eq!(
        audit(data.path(), &["--json", "--client", "rdv"]),
        [stored[2].clone()]
    );
    assert!(stored[2].contains(r#""recipients":["1234567890123@patient.mssante.fr"]"#));
}

#[test]
fn mss_audit_reads_a_span_back_from_now() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig::new(data.path().join("audit.jsonl"))).unwrap();
    let now = OffsetDateTime::now_utc();
    log.write(&record(now - time::Duration::days(3), Some("old")))
        .unwrap();
    log.write(&record(now - time::Duration::hours(1), Some("recent")))
        .unwrap();
    let clients = |since: &str| -> Vec<String> {
        audit(data.path(), &["--since", since])
            .iter()
            .map(|l| l.split("  ").nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(clients("2d"), ["recent"]);
    assert_eq!(clients("4d"), ["old", "recent"]);
    assert_eq!(clients("2h"), ["recent"]);
}

#[test]
fn mss_audit_reads_the_trail_named_by_the_configuration() {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("trail.jsonl");
    write_trail(&path);
    let config = data.path().join("mss.toml");
    std::fs::write(
        &config,
        format!(
            "[audit]\npath = \"{}\"\nkeep_days = 30\nmax_bytes = 1000000\n",
            path.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    assert_eq!(
        audit(data.path(), &["--config", config, "--client", "rdv"]),
        [RDV]
    );
    // without the configuration: the data directory's trail, empty
    assert_eq!(audit(data.path(), &[]), Vec::<String>::new());

    std::fs::write(data.path().join("bad.toml"), "[audit]\nfile = \"x\"\n").unwrap();
    let out = mss()
        .args(["--data", data.path().to_str().unwrap(), "audit", "--config"])
        .arg(data.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown field `file`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn mss_audit_reports_damaged_lines_and_refuses_a_bad_time() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("audit.jsonl");
    write_trail(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"time\":\"2026-12-0");
    std::fs::write(&path, bytes).unwrap();
    let out = mss()
        .args([
            "--data",
            data.path().to_str().unwrap(),
            "audit",
            "--client",
            "dpi",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), format!("{DPI_1}\n{DPI_2}\n"));
    assert_eq!(
        stderr(&out),
        format!(
            "mss: warning: damaged audit line: {}: line 2: not an audit record: EOF while parsing a \
             string (column 18)\nmss: 1 damaged line(s) skipped\n",
            path.display()
        )
    );

    let out = mss()
        .args([
            "--data",
            data.path().to_str().unwrap(),
            "audit",
            "--since",
            "last week",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "mss: error: since: `last week` is not a time: give 2026-12-01T08:00:00Z (RFC 3339), \
         2026-12-01 (midnight UTC) or a span back from now such as 7d or 24h\n"
    );
    assert_eq!(stdout(&out), "");
}
