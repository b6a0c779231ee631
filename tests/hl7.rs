//! `mss hl7` end to end against python-hl7 (tests/hl7/dpi.py, an HL7 implementation nobody here wrote).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/hl7/tests/fixtures")
        .join(name)
}

/// python-hl7's MLLP server playing the DPI (tests/hl7/dpi.py serve): messages written to `out`.
struct Dpi {
    child: Child,
    port: u16,
    out: PathBuf,
    answer: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dpi {
    fn start() -> Dpi {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received");
        std::fs::create_dir_all(&out).unwrap();
        let port_file = dir.path().join("port");
        let answer = dir.path().join("answer");
        let child = std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hl7/dpi.py"))
            .arg("serve")
            .args([&port_file, &out])
            .arg("--answer-file")
            .arg(&answer)
            .spawn()
            .expect("python3 tests/hl7/dpi.py serve");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the DPI did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Dpi {
            child,
            port,
            out,
            answer,
            _dir: dir,
        }
    }

    /// What python-hl7 read of the `n`-th message received (from 1).
    fn received(&self, n: usize) -> serde_json::Value {
        let path = self.out.join(format!("{n}.json"));
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }
}

impl Drop for Dpi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn hl7_send_prints_the_acknowledgement_of_an_independent_peer() {
    let dpi = Dpi::start();
    let to = format!("127.0.0.1:{}", dpi.port);
    let file = fixture("receiving-mdm-t02.hl7");
    let out = common::run(&["hl7", "send", file.to_str().unwrap(), "--to", &to]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("MSH|^~\\&|DPI|HOP|PFI-Y|Organisation-Y|"),
        "{text}"
    );
    assert_eq!(lines[1], "MSA|AA|015");
    // python-hl7 read what mss framed and sent
    let got = dpi.received(1);
    assert_eq!(got["type"], "MDM^T02");
    assert_eq!(got["profile"], "CISIS_CDA_HL7_LPS");
    assert_eq!(got["pv1_2"], "N");
    // an AE makes the exit status 3
    std::fs::write(&dpi.answer, "AE:902").unwrap();
    let out = common::run(&["hl7", "send", file.to_str().unwrap(), "--to", &to]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        common::stdout(&out).contains(
            "ERR||PID^1^3|207^Application error^HL70357|E|902^Identifiant patient inconnu^HL70533"
        ),
        "{}",
        common::stdout(&out)
    );
}
