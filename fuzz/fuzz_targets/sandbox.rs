//! The sandbox fronts' parsers (`mss-sandbox`) on arbitrary bytes sent by a client: XOAUTH2, OAUTHBEARER
//! and PLAIN responses, and bearer tokens checked against a JWKS. Nothing may panic. The body is
//! `mss_testing::fuzzing::sandbox_client_input`, which also runs under proptest on stable
//! (`crates/sandbox/tests/properties.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mss_testing::fuzzing::sandbox_client_input(data);
});
