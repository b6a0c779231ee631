//! The body of the fuzz target (`fuzz/fuzz_targets/read.rs`), public so that the same code also
//! runs under proptest on stable (`tests/fuzz_body.rs`): every reader must return, never panic.

/// Feeds arbitrary bytes to every reader of the crate.
pub fn read_any(data: &[u8]) {
    let _ = crate::read_message(data);
    let _ = crate::xdm::read_archive(data);
    let _ = crate::cda::parse_header(data);
    let _ = crate::whitelist::Whitelist::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::metadata::read(text);
    }
}
