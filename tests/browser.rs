//! The autocomplete widget in a real headless Chromium (Debian's), driven by playwright-core against a real
//! `mss serve`. Screenshots land in `target/test-artefacts/browser/`.
//!
//! Needs `scripts/install-deps.sh` (chromium + playwright-core). Where they are missing the test fails under
//! CI (`CI` set) and is skipped with a message elsewhere.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, demo_file, import};

/// The Chromium to drive, or `None` (skipped outside CI) when it or playwright-core is missing.
fn chromium(root: &Path) -> Option<String> {
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
        return None;
    }
    Some(chromium)
}

#[test]
fn autocomplete_widget_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/autocomplete.mjs");
    let Some(chromium) = chromium(root) else {
        return;
    };
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

/// Issue 17: a vendor's page embeds the widget with a publishable key; the directory needs a key.
#[test]
fn publishable_key_widget_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = chromium(root) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 2000, 31, false));
    let clients = tmp.path().join("clients.toml");
    let out = common::run(&[
        "client",
        "add",
        "dpi-web",
        "--publishable",
        "--origin",
        "http://dpi.example.test",
        "--clients",
        clients.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let key = common::stdout(&out).trim().to_string();
    let conf = tmp.path().join("mss.toml");
    std::fs::write(&conf, "[access]\ndirectory = \"key\"\n").unwrap();
    let server = Server::start(
        &data,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--clients",
            clients.to_str().unwrap(),
        ],
    );
    let artefacts = root.join("target/test-artefacts/browser");
    let out = Command::new("node")
        .arg(root.join("tests/browser/publishable.mjs"))
        .args([
            server.base.as_str(),
            key.as_str(),
            "http://dpi.example.test",
            "http://evil.example.test",
        ])
        .arg(&artefacts)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("running node");
    let printed = String::from_utf8_lossy(&out.stdout);
    eprintln!("{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser checks failed:\n{printed}");
    assert!(printed.contains("3 passed, 0 failed"), "{printed}");
}
