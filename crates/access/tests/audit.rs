//! The audit trail on disk: exact lines, mode, rotation, retention, reading back, concurrent writers.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mss_access::audit::{self, AuditConfig, AuditLog, AuditQuery, AuditRecord, Outcome};
use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

fn record(time: OffsetDateTime, client: Option<&str>, batch: &str) -> AuditRecord {
    AuditRecord {
        time,
        client: client.map(str::to_string),
        key_id: client.map(|c| format!("{c}-k1")),
        certificate: None,
        source: "10.1.2.3".parse().unwrap(),
        via: None,
        action: "batches.read".into(),
        route: "GET /v1/batches/{id}".into(),
        batch: Some(batch.into()),
        messages: vec![],
        sender: None,
        recipients: vec![],
        outcome: Outcome {
            status: 200,
            reason: None,
        },
    }
}

fn read_all(path: &Path, query: &AuditQuery) -> Vec<AuditRecord> {
    audit::read(path, query)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The trail's files, oldest first: rotated ones then the current one.
fn trail_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("audit-") && name.ends_with("Z.jsonl")
        })
        .collect();
    rotated.sort();
    rotated.push(dir.join("audit.jsonl"));
    rotated
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_write_appends_exactly_one_line_to_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/audit.jsonl");
    let log = AuditLog::open(AuditConfig::new(&path)).unwrap();
    assert_eq!(log.path(), path);
    assert_eq!(mode(&path), 0o600);
    let mut refused = record(datetime!(2026-12-06 07:31:02.123456 UTC), None, "b-42");
    refused.key_id = Some("k9".into());
    refused.outcome = Outcome {
        status: 401,
        reason: Some("unknown_key".into()),
    };
    log.write(&record(
        datetime!(2026-12-06 07:31:01 UTC),
        Some("dpi"),
        "b-1",
    ))
    .unwrap();
    log.write(&refused).unwrap();
    log.sync().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        concat!(
            r#"{"time":"2026-12-06T07:31:01.000Z","client":"dpi","key_id":"dpi-k1","source":"10.1.2.3","action":"batches.read","route":"GET /v1/batches/{id}","batch":"b-1","outcome":{"status":200}}"#,
            "\n",
            r#"{"time":"2026-12-06T07:31:02.123Z","key_id":"k9","source":"10.1.2.3","action":"batches.read","route":"GET /v1/batches/{id}","batch":"b-42","outcome":{"status":401,"reason":"unknown_key"}}"#,
            "\n",
        )
    );
    // a second opening appends, never truncates
    drop(log);
    let log = AuditLog::open(AuditConfig::new(&path)).unwrap();
    log.write(&record(
        datetime!(2026-12-06 08:00:00 UTC),
        Some("dpi"),
        "b-2",
    ))
    .unwrap();
    let batches: Vec<_> = read_all(&path, &AuditQuery::default())
        .into_iter()
        .map(|r| r.batch.unwrap())
        .collect();
    assert_eq!(batches, ["b-1", "b-42", "b-2"]);
}

#[test]
fn an_existing_trail_readable_by_others_is_narrowed_to_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _log = AuditLog::open(AuditConfig::new(&path)).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn rotation_at_the_size_threshold_keeps_every_line_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let t0 = datetime!(2026-12-06 07:00:00 UTC);
    let line_len = serde_json::to_vec(&record(t0, Some("dpi"), "b-00"))
        .unwrap()
        .len() as u64
        + 1;
    let config = AuditConfig {
        max_bytes: 3 * line_len,
        ..AuditConfig::new(&path)
    };
    let log = AuditLog::open(config).unwrap();
    for i in 0..10 {
        log.write(&record(t0, Some("dpi"), &format!("b-{i:02}")))
            .unwrap();
    }
    let files = trail_files(dir.path());
    let per_file: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<AuditRecord>(l)
                        .unwrap()
                        .batch
                        .unwrap()
                })
                .collect()
        })
        .collect();
    assert_eq!(
        per_file,
        [
            vec!["b-00", "b-01", "b-02"],
            vec!["b-03", "b-04", "b-05"],
            vec!["b-06", "b-07", "b-08"],
            vec!["b-09"],
        ]
    );
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        assert!(std::fs::metadata(f).unwrap().len() <= 3 * line_len);
    }
    let read: Vec<_> = read_all(&path, &AuditQuery::default())
        .into_iter()
        .map(|r| r.batch.unwrap())
        .collect();
    assert_eq!(read, per_file.concat());
}

#[test]
fn retention_deletes_only_rotated_files_closed_more_than_keep_days_ago() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let stamp = |days: i64| {
        let t = now - time::Duration::days(days);
        format!(
            "audit-{:04}{:02}{:02}T{:02}{:02}{:02}000Z.jsonl",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let old = stamp(191);
    let kept = stamp(189);
    let names = [
        old.as_str(),
        kept.as_str(),
        "audit-old.jsonl",
        "other-20200101T000000000Z.jsonl",
        "audit-20200101T000000000Z.jsonl.gz",
    ];
    for name in names {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    // a recent mtime does not save a file whose name says it is old
    let _log = AuditLog::open(AuditConfig::new(dir.path().join("audit.jsonl"))).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut expected: Vec<String> = names[1..].iter().map(|s| s.to_string()).collect();
    expected.extend(["audit.jsonl".into(), "audit.jsonl.lock".into()]);
    expected.sort();
    assert_eq!(left, expected);
}

#[test]
fn the_reader_filters_by_time_and_client_across_rotated_files_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let line_len = serde_json::to_vec(&record(
        datetime!(2026-12-01 00:00:00 UTC),
        Some("dpi"),
        "b-0",
    ))
    .unwrap()
    .len() as u64
        + 1;
    let log = AuditLog::open(AuditConfig {
        max_bytes: 2 * line_len,
        ..AuditConfig::new(&path)
    })
    .unwrap();
    let days = [1, 2, 3, 4, 5];
    for (i, day) in days.into_iter().enumerate() {
        let client = if i % 2 == 0 { "dpi" } else { "rdv" };
        let t = datetime!(2026-12-01 00:00:00 UTC) + time::Duration::days(day - 1);
        log.write(&record(t, Some(client), &format!("b-{i}")))
            .unwrap();
    }
    log.write(&record(datetime!(2026-12-06 00:00:00 UTC), None, "b-5"))
        .unwrap();
    assert!(trail_files(dir.path()).len() >= 3, "rotated");
    let batches = |query: AuditQuery| -> Vec<String> {
        read_all(&path, &query)
            .into_iter()
            .map(|r| r.batch.unwrap())
            .collect()
    };
    assert_eq!(
        batches(AuditQuery::default()),
        ["b-0", "b-1", "b-2", "b-3", "b-4", "b-5"]
    );
    assert_eq!(
        batches(AuditQuery {
            since: Some(datetime!(2026-12-03 00:00:00 UTC)),
            client: None
        }),
        ["b-2", "b-3", "b-4", "b-5"]
    );
    assert_eq!(
        batches(AuditQuery {
            since: None,
            client: Some("dpi".into())
        }),
        ["b-0", "b-2", "b-4"]
    );
    assert_eq!(
        batches(AuditQuery {
            since: Some(datetime!(2026-12-02 00:00:00.001 UTC)),
            client: Some("rdv".into())
        }),
        ["b-3"]
    );
}

#[test]
fn a_missing_trail_reads_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let read = read_all(&dir.path().join("audit.jsonl"), &AuditQuery::default());
    assert!(read.is_empty());
}

#[test]
fn a_damaged_line_is_reported_with_its_file_and_line_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(AuditConfig::new(&path)).unwrap();
    log.write(&record(
        datetime!(2026-12-01 00:00:00 UTC),
        Some("dpi"),
        "b-1",
    ))
    .unwrap();
    // a line cut by a crash, then the service started again
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, br#"{"time":"2026-12-01T00:00:01.000Z","cli"#)
        })
        .unwrap();
    drop(log);
    // the next opening ends the cut line, so the next record stays whole
    let log = AuditLog::open(AuditConfig::new(&path)).unwrap();
    log.write(&record(
        datetime!(2026-12-01 00:00:02 UTC),
        Some("dpi"),
        "b-3",
    ))
    .unwrap();
    let items: Vec<_> = audit::read(&path, &AuditQuery::default())
        .unwrap()
        .collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().batch.as_deref(), Some("b-1"));
    let e = items[1].as_ref().unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: line 2: not an audit record: EOF while parsing a string (column 39)",
            path.display()
        )
    );
    assert_eq!(items[2].as_ref().unwrap().batch.as_deref(), Some("b-3"));
}

#[test]
fn concurrent_writers_produce_only_whole_lines_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let config = AuditConfig {
        max_bytes: 8 * 1024,
        ..AuditConfig::new(&path)
    };
    // two logs on one path stand for two processes: separate descriptors, mutexes and locks
    let logs = [
        Arc::new(AuditLog::open(config.clone()).unwrap()),
        Arc::new(AuditLog::open(config).unwrap()),
    ];
    let threads = 8;
    let per_thread = 300;
    std::thread::scope(|s| {
        for t in 0..threads {
            let log = Arc::clone(&logs[t % 2]);
            s.spawn(move || {
                for i in 0..per_thread {
                    log.write(&record(
                        datetime!(2026-12-06 07:00:00 UTC),
                        Some(&format!("client-{t}")),
                        &format!("b-{t}-{i}-{}", "x".repeat(i % 37)),
                    ))
                    .unwrap();
                }
            });
        }
    });
    let files = trail_files(dir.path());
    assert!(files.len() > 10, "rotated under load: {}", files.len());
    let mut seen = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'));
        for line in text.lines() {
            let r: AuditRecord = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {line:?}: {e}", f.display()));
            assert!(seen.insert(r.batch.unwrap()), "a line written twice");
        }
    }
    assert_eq!(seen.len(), threads * per_thread);
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z0-9.@/{} \n\"\\\\-]{0,24}"]
}

prop_compose! {
    fn arb_record()(
        ms in 0i64..253_402_300_799_999,
        client in proptest::option::of(arb_text()),
        key_id in proptest::option::of(arb_text()),
        certificate in proptest::option::of(arb_text()),
        source in any::<std::net::IpAddr>(),
        via in proptest::option::of(any::<std::net::IpAddr>()),
        action in arb_text(),
        route in arb_text(),
        batch in proptest::option::of(arb_text()),
        messages in proptest::collection::vec(arb_text(), 0..3),
        sender in proptest::option::of(arb_text()),
        recipients in proptest::collection::vec(arb_text(), 0..3),
        status in any::<u16>(),
        reason in proptest::option::of(arb_text()),
    ) -> AuditRecord {
        AuditRecord {
            time: OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap(),
            client, key_id, certificate, source, via, action, route, batch, messages, sender, recipients,
            outcome: Outcome { status, reason },
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn records_read_back_as_written(records in proptest::collection::vec(arb_record(), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(AuditConfig { max_bytes: 600, ..AuditConfig::new(&path) }).unwrap();
        for r in &records {
            log.write(r).unwrap();
        }
        // a newline in any field is escaped: one record, one line
        let lines: usize = trail_files(dir.path())
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
            .sum();
        prop_assert_eq!(lines, records.len());
        prop_assert_eq!(read_all(&path, &AuditQuery::default()), records);
    }

    #[test]
    fn any_bytes_read_as_records_or_numbered_damaged_lines(bytes in proptest::collection::vec(
        prop_oneof![Just(b'\n'), Just(b'{'), Just(b'"'), any::<u8>()], 0..400),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        let items: Vec<_> = audit::read(&path, &AuditQuery::default()).unwrap().collect();
        let lines = bytes.split(|&b| b == b'\n').count() - usize::from(bytes.last() == Some(&b'\n'));
        let lines = if bytes.is_empty() { 0 } else { lines };
        prop_assert_eq!(items.len(), lines);
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = item {
                let expected = format!("{}: line {}: ", path.display(), i + 1);
                prop_assert!(e.to_string().starts_with(&expected), "{}", e);
            }
        }
    }
}
