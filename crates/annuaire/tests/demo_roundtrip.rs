//! The synthetic extraction is read back by the real reader exactly as generated.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::HashSet;

use mss_annuaire::demo::{self, DemoOptions, DemoSummary};
use mss_annuaire::extraction;
use proptest::prelude::*;

fn write(count: usize, seed: u64, faults: bool) -> (Vec<u8>, DemoSummary) {
    let mut out = Vec::new();
    let summary = demo::write(
        &mut out,
        &DemoOptions {
            count,
            seed,
            faults,
        },
    )
    .expect("writing to memory does not fail");
    (out, summary)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_written_file_reads_back_as_the_entries(count in 0usize..=300, seed in any::<u64>()) {
        let (bytes, summary) = write(count, seed, false);
        let (read, rejected) = extraction::read_bytes(&bytes).unwrap();
        prop_assert!(rejected.is_empty(), "{:?}", rejected);
        let expected: Vec<_> = demo::entries(count, seed).collect();
        prop_assert_eq!(read, expected);
        prop_assert_eq!(
            summary,
            DemoSummary { lines: count, entries: count, duplicates: 0, malformed: 0 }
        );
    }

    #[test]
    fn faults_are_exactly_what_the_summary_says(count in 1usize..=300, seed in any::<u64>()) {
        let (bytes, summary) = write(count, seed, true);
        let (read, rejected) = extraction::read_bytes(&bytes).unwrap();
        prop_assert_eq!(rejected.len(), summary.malformed);
        prop_assert_eq!(read.len(), summary.entries);
        prop_assert_eq!(summary.entries, count + summary.duplicates);
        prop_assert_eq!(summary.lines, summary.entries + summary.malformed);
        let distinct: HashSet<&str> = read.iter().map(|e| e.address.as_str()).collect();
        prop_assert_eq!(distinct.len(), summary.entries - summary.duplicates);
        if count >= 100 {
            prop_assert!(summary.duplicates >= 2 && summary.malformed >= 3, "{:?}", summary);
        }
    }
}

#[test]
fn a_file_of_20_000_lines_is_valid_and_covers_the_overseas() {
    let (bytes, summary) = write(20_000, 20_260_826, false);
    let (read, rejected) = extraction::read_bytes(&bytes).unwrap();
    assert!(rejected.is_empty());
    assert_eq!(read.len(), summary.entries);
    let departments: HashSet<&str> = read
        .iter()
        .filter_map(|e| e.department.as_ref().map(|d| d.as_str()))
        .collect();
    for d in ["2A", "2B", "971", "972", "973", "974", "975", "976"] {
        assert!(departments.contains(d), "{d}");
    }
    let addresses: HashSet<&str> = read.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(addresses.len(), read.len());
}

/// Records of `bytes` (a header, then anything) read line by line, or by blocks of `target` bytes.
fn records_both_ways(
    bytes: &[u8],
    target: usize,
) -> (Vec<extraction::Record>, Vec<extraction::Record>) {
    let one_by_one = extraction::read_stream(&mut std::io::Cursor::new(bytes), None, |reader| {
        reader.collect::<mss_annuaire::Result<Vec<_>>>()
    })
    .unwrap();
    let by_blocks =
        extraction::read_stream(&mut std::io::Cursor::new(bytes), None, |mut reader| {
            let mut out = Vec::new();
            while let Some(lines) = reader.read_lines(target)? {
                out.extend(lines.records(None));
            }
            Ok::<_, mss_annuaire::Error>(out)
        })
        .unwrap();
    (one_by_one, by_blocks)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The import parses blocks of lines on several threads: a block must give the records, line numbers
    /// and rejection reasons the line-by-line reader gives, whatever the bytes (blank lines, CR, invalid
    /// UTF-8, no final newline) and wherever a block ends.
    #[test]
    fn blocks_of_lines_read_as_lines_do(
        count in 0usize..=40,
        seed in any::<u64>(),
        noise in proptest::collection::vec(
            prop_oneof![
                Just(b'\n'), Just(b'\r'), Just(b'|'), Just(0xff_u8), Just(b' '), any::<u8>()
            ],
            0..400,
        ),
        cut in 0usize..2000,
        target in 1usize..3000,
    ) {
        let (mut bytes, _) = write(count, seed, true);
        let at = (extraction::HEADER.join("|").len() + 1 + cut).min(bytes.len());
        let tail = bytes.split_off(at);
        bytes.extend_from_slice(&noise);
        bytes.extend_from_slice(&tail);
        let (one_by_one, by_blocks) = records_both_ways(&bytes, target);
        prop_assert_eq!(one_by_one, by_blocks);
    }
}
