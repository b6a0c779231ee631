//! End-to-end tests of `mss import`, `mss search` and `mss demo-data`, driving the real binary.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{demo_file, import, mss, run, stderr, stdout};

#[test]
fn import_then_search_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = demo_file(tmp.path(), 3000, 11, false);
    let out = import(&data, &file);
    let summary = stdout(&out);
    assert!(
        summary.starts_with(
            "imported 3000 entries (0 merged, 0 rejected, 0 red-listed skipped) from 3000 lines"
        ),
        "{summary}"
    );

    let out = run(&[
        "search",
        "dupont",
        "--json",
        "--limit",
        "100",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "no Dupont in a 3000-entry file");
    for entry in &lines {
        // fields of the entry itself, snake_case
        for field in [
            "address",
            "bal_type",
            "last_name",
            "first_name",
            "profession",
            "postal_code",
            "department",
            "source",
        ] {
            assert!(entry.get(field).is_some(), "missing {field} in {entry}");
        }
        assert_eq!(entry["source"], "extraction");
        assert_eq!(entry["updated_at"], "2026-11-23T08:00:00");
    }
    assert!(
        lines.iter().any(|e| e["last_name"] == "Dupont"),
        "exact Dupont should come back: {:?}",
        lines
            .iter()
            .map(|e| e["last_name"].clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn filters_narrow_the_search() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 3000, 12, false));
    let d = data.to_str().unwrap();
    let out = run(&[
        "--data", d, "search", "--type", "ORG", "--dept", "75", "--limit", "100", "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.is_empty(), "no ORG box in Paris");
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["bal_type"], "ORG");
        assert_eq!(e["department"], "75");
    }
    let out = run(&["--data", d, "search", "--profession", "21", "--limit", "5"]);
    let text = stdout(&out);
    assert!(text.contains("Pharmacien"), "{text}");
    assert!(text.contains("-- 5 of "), "{text}");
    assert!(text.contains("-- next page: --cursor "), "{text}");
}

#[test]
fn data_dir_from_flag_before_or_after_and_from_env() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 500, 13, false));
    let d = data.to_str().unwrap();
    let before = run(&["--data", d, "search", "martin", "--json"]);
    let after = run(&["search", "martin", "--json", "--data", d]);
    let env = mss()
        .args(["search", "martin", "--json"])
        .env("MSS_DATA", d)
        .output()
        .unwrap();
    assert!(before.status.success() && after.status.success() && env.status.success());
    assert_eq!(stdout(&before), stdout(&after));
    assert_eq!(stdout(&before), stdout(&env));
}

#[test]
fn bad_lines_are_counted_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = demo_file(tmp.path(), 2000, 14, true);
    let report = tmp.path().join("rejected.txt");
    let out = run(&[
        "--data",
        data.to_str().unwrap(),
        "import",
        file.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    let rejected: usize = summary
        .split(", ")
        .find_map(|part| part.strip_suffix(&format!(" rejected (see {})", report.display())))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rejected count with report path in {summary}"));
    assert!(rejected >= 3, "{summary}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("line ")).count(),
        rejected,
        "{text}"
    );
    assert!(
        !summary.contains("(0 merged"),
        "duplicates should be merged: {summary}"
    );
}

#[test]
fn failures_exit_1_with_one_line_and_usage_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let missing = run(&[
        "--data",
        d.to_str().unwrap(),
        "import",
        "/nonexistent/extraction.txt",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let err = stderr(&missing);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err,
        "mss: error: reading /nonexistent/extraction.txt: No such file or directory (os error 2)\n"
    );

    let bad_header = tmp.path().join("bad.txt");
    std::fs::write(&bad_header, "Type de BAL|Adresse|Type Identifiant PP\n").unwrap();
    let out = run(&[
        "--data",
        d.to_str().unwrap(),
        "import",
        bad_header.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("column 2 should be `Adresse BAL`, found `Adresse`"),
        "{}",
        stderr(&out)
    );

    let usage = run(&["search", "--limit", "1000"]);
    assert_eq!(usage.status.code(), Some(2));
    let usage = run(&["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
    let usage = run(&["search", "--type", "XYZ"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("PER, ORG, APP, CAB"),
        "{}",
        stderr(&usage)
    );
}

#[test]
fn import_reads_zip_and_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let file = demo_file(tmp.path(), 400, 15, false);
    // stdin
    let data = tmp.path().join("stdin");
    let out = mss()
        .args(["--data", data.to_str().unwrap(), "import", "-"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("imported 400 entries"),
        "{}",
        stdout(&out)
    );
    // a zip made by an independent tool (Python's zipfile), like the national download
    let zip = tmp
        .path()
        .join("Extraction_Correspondance_MSSante_202611230815.zip");
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED); \
             z.write(sys.argv[1], 'Extraction_Correspondance_MSSante_202611230815.txt'); z.close()",
            file.to_str().unwrap(),
            zip.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let data = tmp.path().join("zip");
    let out = import(&data, &zip);
    assert!(
        stdout(&out).starts_with("imported 400 entries"),
        "{}",
        stdout(&out)
    );
    let found = run(&[
        "--data",
        data.to_str().unwrap(),
        "search",
        "--limit",
        "1",
        "--json",
    ]);
    let e: serde_json::Value =
        serde_json::from_str(stdout(&found).lines().next().unwrap()).unwrap();
    assert_eq!(
        e["updated_at"], "2026-11-23T08:15:00",
        "time stamp of the member's name"
    );
}

#[test]
fn search_without_index_uses_the_embedded_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("fresh");
    let out = run(&[
        "--data",
        d.to_str().unwrap(),
        "search",
        "dupont",
        "--limit",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("building one from the embedded sample (20000 synthetic mailboxes)"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("-- 3 of "), "{}", stdout(&out));
    // second run: the index is there, nothing is said
    let again = run(&[
        "--data",
        d.to_str().unwrap(),
        "search",
        "dupont",
        "--limit",
        "3",
    ]);
    assert_eq!(stderr(&again), "");
    assert_eq!(stdout(&again), stdout(&out));
}

#[test]
fn killed_import_leaves_the_previous_index_answering() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 1000, 16, false));
    let d = data.to_str().unwrap();
    let before = stdout(&run(&[
        "--data", d, "search", "martin", "--json", "--limit", "50",
    ]));
    assert!(!before.is_empty());

    let big = demo_file(tmp.path(), 150_000, 17, false);
    for delay_ms in [150, 600] {
        let mut child = mss()
            .args(["--data", d, "import", big.to_str().unwrap(), "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let started = Instant::now();
        child.kill().unwrap(); // SIGKILL: no cleanup code runs
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "import finished in under {delay_ms} ms; make the file bigger"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let after = run(&["--data", d, "search", "martin", "--json", "--limit", "50"]);
        assert!(after.status.success(), "{}", stderr(&after));
        assert_eq!(
            stdout(&after),
            before,
            "after a kill at {delay_ms} ms the old index must answer the same"
        );
    }
    // and a later complete import replaces it
    let out = import(&data, &demo_file(tmp.path(), 700, 18, false));
    assert!(stdout(&out).starts_with("imported 700 entries"));
    let count = stdout(&run(&["--data", d, "search", "--limit", "1"]));
    assert!(count.contains("-- 1 of 700 results"), "{count}");
}
