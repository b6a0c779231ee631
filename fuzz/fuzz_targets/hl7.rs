//! The HL7 v2 parser and writer and the MLLP frame decoder of mss-hl7 on arbitrary bytes: nothing may
//! panic or hang, and a message that parses must read back as itself once written. The body is
//! `mss_hl7::fuzz_one`, which also runs under proptest on stable (`crates/hl7/tests/properties.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mss_hl7::fuzz_one(data);
});
