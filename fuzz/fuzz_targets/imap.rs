//! The IMAP client's response parser (`mss-lps`) on arbitrary bytes read as a server's stream: FETCH with
//! literals, flags, EXPUNGE, VANISHED, statuses. Nothing may panic, hang or allocate without bound. The
//! body is `mss_testing::fuzzing::imap_stream`, which also runs under proptest on stable
//! (`crates/lps/tests/imap_stream.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mss_testing::fuzzing::imap_stream(data);
});
