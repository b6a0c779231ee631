//! Every reader of mss-message (MIME message, conformance checker, IHE_XDM zip, METADATA.XML, CDA
//! header, whitelist) on arbitrary bytes: none may panic or hang. The body is `mss_testing::fuzzing::read_any`, which
//! also runs under proptest on stable (`crates/message/tests/properties.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(
    // libfuzzer-sys aborts on any panic, even one caught inside. `read_message` contains the
    // panics of mail-parser by design (issue 19): put the default hook back, so that only a panic
    // that escapes a reader (through the target's `extern "C"` entry, which aborts) is a crash.
    init: {
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| {
        mss_testing::fuzzing::read_any(data);
    }
);
