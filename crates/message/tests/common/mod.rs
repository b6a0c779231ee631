//! Shared helpers of the integration tests.
#![allow(dead_code)]

use mss_message::{ComposeConfig, ComposeRequest, Env, Whitelist};
use std::path::PathBuf;
use std::sync::Arc;
use time::macros::datetime;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example_path(name: &str) -> PathBuf {
    root().join("../../examples/compose").join(name)
}

pub fn example(name: &str) -> ComposeRequest {
    let text = std::fs::read_to_string(example_path(name)).expect("example readable");
    serde_json::from_str(&text).expect("example parses")
}

pub fn whitelist() -> Arc<Whitelist> {
    let dir = root().join("tests/fixtures");
    Arc::new(
        Whitelist::from_files(&dir.join("listeblanchemssante.xml"), &dir.join("checksum"))
            .expect("fixture whitelist loads"),
    )
}

pub fn config() -> ComposeConfig {
    let mut c = ComposeConfig::new("DEV935997");
    c.trust = mss_message::Trust::whitelist(whitelist());
    c
}

/// 2026-11-23 09:30:00 UTC, seed 42.
pub fn env() -> Env {
    Env::fixed(datetime!(2026-11-23 09:30:00 UTC), 42)
}

/// The header block (up to the first empty line) as text.
pub fn headers(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

/// The entries of a zip, by name.
pub fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("entry");
        let mut v = Vec::new();
        f.read_to_end(&mut v).expect("read");
        out.push((f.name().expect("name").to_string(), v));
    }
    out
}
