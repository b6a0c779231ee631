//! A rebuild that fails, is dropped or is killed leaves the previous index answering.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{MEDECIN, build, filler, fixture, labels, person};
use mss_index::{Builder, DirectoryIndex, Error, Filters, SearchRequest};

/// Set in the child process of `killed_rebuild_leaves_the_old_index`: the data directory to abort in.
const CHILD_ENV: &str = "MSS_INDEX_TEST_ABORT_IN";

/// What the old index must keep answering.
fn answers(index: &DirectoryIndex) -> Vec<(String, u64, Vec<String>)> {
    ["dupont", "bernard", "lhermite", "saint etienne", "f", ""]
        .iter()
        .map(|q| {
            let r = index
                .search(&SearchRequest {
                    q: q.to_string(),
                    filters: Filters::default(),
                    limit: 10,
                    cursor: None,
                })
                .expect("search");
            let labels = r.hits.iter().map(|h| h.entry.display_name()).collect();
            (q.to_string(), r.total, labels)
        })
        .collect()
}

fn generations(data_dir: &Path) -> Vec<String> {
    let mut g: Vec<String> = std::fs::read_dir(data_dir.join("index"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    g.sort();
    g
}

/// A replacement directory: different names, so that a swap would show.
fn replacement(n: usize) -> impl Iterator<Item = mss_annuaire::Entry> {
    (0..n).map(|i| {
        person(
            &format!("new.{i}@medecin.mssante.fr"),
            "Zoé",
            &format!("Nouvelle{i}"),
            MEDECIN,
            None,
            "75011",
            "Paris",
        )
    })
}

#[test]
fn dropped_rebuild_leaves_the_old_index() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    let before = answers(&index);
    let gens = generations(dir.path());
    {
        let mut b = Builder::create(dir.path()).unwrap();
        for e in replacement(500) {
            b.add(e).unwrap();
        }
        // dropped: an import that failed half-way
    }
    assert_eq!(
        generations(dir.path()),
        gens,
        "the abandoned generation is removed"
    );
    index.reload().unwrap();
    assert_eq!(answers(&index), before);
    let reopened = DirectoryIndex::open(dir.path()).unwrap();
    assert_eq!(answers(&reopened), before);
}

#[test]
fn one_rebuild_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), fixture());
    let first = Builder::create(dir.path()).unwrap();
    let err = Builder::create(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    drop(first);
    Builder::create(dir.path()).expect("free again");
}

/// Not a test on its own: the child process of `killed_rebuild_leaves_the_old_index`, which starts a
/// rebuild and aborts in the middle of it.
#[test]
fn abort_midway_child() {
    let Some(data_dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut b = Builder::create(Path::new(&data_dir)).unwrap();
    for (i, e) in replacement(5_000).enumerate() {
        b.add(e).unwrap();
        if i == 3_000 {
            std::process::abort();
        }
    }
    unreachable!("aborted above");
}

#[test]
fn killed_rebuild_leaves_the_old_index() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), fixture());
    let before = answers(&index);
    let gens = generations(dir.path());

    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "abort_midway_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have aborted");
    let after_kill = generations(dir.path());
    assert_eq!(
        after_kill.len(),
        gens.len() + 1,
        "a stale generation is left: {after_kill:?}"
    );

    // the serving index and a fresh open both answer as before
    index.reload().unwrap();
    assert_eq!(answers(&index), before);
    assert_eq!(answers(&DirectoryIndex::open(dir.path()).unwrap()), before);

    // the dead process's lock is gone; the next rebuild cleans the stale generation up and succeeds
    let mut b = Builder::create(dir.path()).unwrap();
    let stale: Vec<_> = after_kill.iter().filter(|g| !gens.contains(g)).collect();
    for g in &stale {
        assert!(!dir.path().join("index").join(g).exists(), "{g} removed");
    }
    for e in filler() {
        b.add(e).unwrap();
    }
    b.commit().unwrap();
    index.reload().unwrap();
    assert_eq!(labels(&index, "dupont", 5), Vec::<String>::new());
    assert_eq!(index.num_entries() as usize, filler().len());
}

/// The import parses blocks of lines on several threads: what it reports and builds must be what a line
/// by line read of the same file gives (rejections in file order with their line numbers, repeated
/// addresses merged into their first line).
#[test]
fn parallel_import_matches_a_line_by_line_read() {
    use mss_annuaire::demo::{self, DemoOptions};
    use mss_annuaire::extraction::{self, Record};

    let mut file = Vec::new();
    let summary = demo::write(
        &mut file,
        &DemoOptions {
            count: 6000,
            seed: 5,
            faults: true,
        },
    )
    .unwrap();
    assert!(file.len() > 1 << 20, "several blocks of lines");
    assert!(summary.duplicates >= 2 && summary.malformed >= 4);

    // line by line
    let mut expected_rejections = Vec::new();
    let mut first_lines: Vec<mss_annuaire::Entry> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    extraction::read_stream(&mut std::io::Cursor::new(&file), None, |reader| {
        for record in reader {
            match record? {
                Record::Entry(e) => match seen.get(&e.address) {
                    Some(&i) => {
                        let first: &mut mss_annuaire::Entry = &mut first_lines[i];
                        first.merge(*e);
                    }
                    None => {
                        seen.insert(e.address.clone(), first_lines.len());
                        first_lines.push(*e);
                    }
                },
                Record::Rejected(r) => expected_rejections.push((r.line, r.reason)),
            }
        }
        Ok::<_, mss_annuaire::Error>(())
    })
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let builder = Builder::create(dir.path()).unwrap();
    let mut rejections = Vec::new();
    let mut progress = Vec::new();
    let stats = extraction::read_stream(&mut std::io::Cursor::new(&file), None, |reader| {
        mss_index::import(
            builder,
            reader,
            |lines| progress.push(lines),
            |r| rejections.push((r.line, r.reason.clone())),
        )
    })
    .unwrap();

    assert_eq!(rejections, expected_rejections);
    assert_eq!(stats.lines as usize, summary.lines);
    assert_eq!(stats.rejected as usize, summary.malformed);
    assert_eq!(stats.merged as usize, summary.duplicates);
    assert_eq!(stats.imported as usize, first_lines.len());
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "progress only grows"
    );
    assert_eq!(progress.last().copied(), Some(stats.lines));
    let index = DirectoryIndex::open(dir.path()).unwrap();
    for e in &first_lines {
        let stored = index
            .get(e.address.as_str())
            .unwrap()
            .expect("every address");
        assert_eq!(&stored, e, "{}", e.address);
    }
}
