//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), here so that the same code also runs under
//! proptest on stable (`crates/message/tests/properties.rs`, `crates/lps/tests/imap_stream.rs`): every reader
//! must return, never panic.

/// Feeds arbitrary bytes to every reader of mss-message (MIME message and its JSON view, the
/// conformance checker, IHE_XDM zip, CDA header, whitelist, METADATA.XML).
pub fn read_any(data: &[u8]) {
    if let Ok(m) = mss_message::read_message(data) {
        let _ = m.view();
        let _ = m.thread_ids();
    }
    let _ = mss_message::check::check_message(data, &Default::default());
    let _ = mss_message::xdm::read_archive(data);
    let _ = mss_message::xdm::inspect_archive(data);
    let _ = mss_message::cda::parse_header(data);
    let _ = mss_message::whitelist::Whitelist::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mss_message::metadata::read(text);
    }
}

/// Feeds arbitrary bytes to the IMAP client's response parser as a server's stream (FETCH with literals,
/// flags, EXPUNGE, VANISHED, statuses: whatever comes). Answers what it parsed.
#[cfg(feature = "imap")]
pub fn imap_stream(data: &[u8]) -> mss_lps::imap::StreamSummary {
    mss_lps::imap::parse_server_stream(data)
}

/// Feeds arbitrary bytes, as a client would send them to the sandbox's fronts, to their parsers: XOAUTH2,
/// OAUTHBEARER and PLAIN responses, and a bearer token checked against a JWKS. Answers how many parsed.
#[cfg(feature = "sandbox")]
pub fn sandbox_client_input(data: &[u8]) -> usize {
    use std::sync::OnceLock;
    static VALIDATOR: OnceLock<Option<mss_sandbox::TokenValidator>> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "mss-sandbox-psc", "alg": "RS256",
            "n": "wUzt1Gl2NLmt7pXpXxsKr0Ll9GfkB0KfXq2IlFk6P3E", "e": "AQAB"}]});
        mss_sandbox::TokenValidator::from_jwks(&jwks, "fuzz").ok()
    });
    let text = String::from_utf8_lossy(data);
    let mut parsed = 0;
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        parsed += usize::from(mss_sandbox::front::parse_bearer(mechanism, &text).is_ok());
    }
    parsed += usize::from(mss_sandbox::front::parse_plain(&text).is_ok());
    if let Some(v) = validator {
        parsed += usize::from(v.validate(&text, "a@sandbox.mssante.fr").is_ok());
    }
    parsed
}
