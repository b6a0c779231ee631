//! Every reader of mss-message (MIME message, IHE_XDM zip, METADATA.XML, CDA header, whitelist)
//! on arbitrary bytes: none may panic or hang. The body is `mss_testing::fuzzing::read_any`, which
//! also runs under proptest on stable (`crates/message/tests/properties.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mss_testing::fuzzing::read_any(data);
});
