//! The autocomplete widget in a real headless Chromium (Debian's), driven by playwright-core against a real
//! `mss serve`. Screenshots land in `target/test-artefacts/browser/`.
//!
//! Needs `scripts/install-deps.sh` (chromium + playwright-core). Where they are missing the test fails under
//! CI (`CI` set) and is skipped with a message elsewhere.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, demo_file, import};

#[test]
fn autocomplete_widget_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/autocomplete.mjs");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists()
        && root
            .join("tests/browser/node_modules/playwright-core")
            .exists();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium or playwright-core missing: run scripts/install-deps.sh"
        );
        eprintln!("SKIPPED: chromium or playwright-core missing (run scripts/install-deps.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 5000, 31, false));
    let server = Server::start(&data, &[]);
    let artefacts = root.join("target/test-artefacts/browser");
    let out = Command::new("node")
        .arg(&script)
        .arg(&server.base)
        .arg(&artefacts)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("running node");
    let printed = String::from_utf8_lossy(&out.stdout);
    eprintln!("{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser checks failed:\n{printed}");
    assert!(printed.contains(" passed, 0 failed"), "{printed}");
    assert!(artefacts.join("autocomplete-dup.png").exists());
}
