//! What the batch benchmarks share: the letter they send, the service they send it to.

#![allow(dead_code, reason = "each benchmark uses its part of this module")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The example compose request (`examples/compose/cda-to-professional.json`) from alice@sante.test to
/// bench@sante.test, its CDA padded to about 50 KB with random base64-like text (which compresses like the PDF
/// a real CDA often embeds).
pub fn letter() -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut req: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("examples/compose/cda-to-professional.json"))
            .expect("example"),
    )
    .expect("json");
    let cda = req["documents"][0]["cda"]["text"]
        .as_str()
        .expect("cda text")
        .to_owned();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let filler: String = (0..48_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 76 == 75 {
                '\n'
            } else {
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [(x % 64) as usize],
                )
            }
        })
        .collect();
    req["documents"][0]["cda"]["text"] = cda
        .replacen(
            "</ClinicalDocument>",
            &format!("<!-- {filler} -->\n</ClinicalDocument>"),
            1,
        )
        .into();
    req["sender"]["address"] = "alice@sante.test".into();
    req["recipients"] = json!({ "to": ["bench@sante.test"] });
    req
}

/// Composition of the benches' letters: their domain is inside the espace de confiance through the test
/// whitelist (docs/mssante.md M8).
pub fn compose_config() -> mss_message::ComposeConfig {
    let mut c = mss_message::ComposeConfig::new("MSS-BENCH-NIL");
    c.trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
    c
}

/// A running `mss serve` and its client key.
pub struct Serve {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A key of scope batches:write.
    pub key: String,
    /// Its HL7 listener (`127.0.0.1:PORT`) when `[hl7] listen` is configured.
    pub hl7: Option<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mss serve` on `dir`, writing the audit trail or not, with a client allowed to write batches; `extra`
/// is appended to its configuration file.
pub fn serve(dir: &Path, audit: bool, extra: &str) -> Serve {
    std::fs::create_dir_all(dir).expect("bench directory");
    let conf = dir.join("mss.toml");
    std::fs::write(
        &conf,
        format!(
            "[audit]\nenabled = {audit}\n\n\
             [send]\nproduct_reference = \"MSS-BENCH-NIL\"\nsubmission = \"localhost:1\"\n\n\
             [outbox]\nmax_body_bytes = 1073741824\n\n\
             [[senders]]\nname = \"alice\"\naddress = \"alice@sante.test\"\ntoken_file = {:?}\nreceipts = false\n{extra}",
            dir.join("absent.token")
        ),
    )
    .expect("config");
    // the letters' domain is inside the espace de confiance through a test whitelist (docs/mssante.md M8)
    let (xml, sum) =
        mss_testing::write_whitelist(&dir.join("whitelist"), mss_testing::TEST_DOMAINS);
    let installed = Command::new(env!("CARGO_BIN_EXE_mss"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["whitelist", "update", "--xml"])
        .arg(&xml)
        .arg("--checksum")
        .arg(&sum)
        .output()
        .expect("mss whitelist update");
    assert!(installed.status.success(), "mss whitelist update failed");
    let added = Command::new(env!("CARGO_BIN_EXE_mss"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["client", "add", "bench", "--scope", "batches:write"])
        .output()
        .expect("mss client add");
    assert!(added.status.success(), "mss client add failed");
    let key = String::from_utf8(added.stdout)
        .expect("key")
        .trim()
        .to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mss"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&conf)
        .env_remove("MSS_OUTBOX")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mss serve");
    let err = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(err).lines();
    let mut hl7 = None;
    let base = loop {
        let line = lines
            .next()
            .expect("mss serve exited")
            .expect("stderr line");
        if let Some(rest) = line.strip_prefix("mss: hl7: listening for the DPI on ") {
            hl7 = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("mss: serving on ") {
            break rest
                .split_whitespace()
                .next()
                .expect("address")
                .trim_end_matches('/')
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let s = Serve {
        child,
        base,
        key,
        hl7,
    };
    let start = Instant::now();
    while reqwest::blocking::get(format!("{}/readyz", s.base)).map_or(true, |r| r.status() != 200) {
        assert!(start.elapsed() < Duration::from_secs(300), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    s
}

/// Posts the items in requests of `per`, all into `batch`; returns the seconds and the bytes sent.
pub fn post_all(s: &Serve, batch: &str, items: &[Value], per: usize) -> (f64, usize) {
    let bodies: Vec<Vec<u8>> = items
        .chunks(per)
        .map(|chunk| {
            serde_json::to_vec(&json!({
                "sender": "alice@sante.test", "auth": "alice", "batch_id": batch, "items": chunk
            }))
            .expect("body")
        })
        .collect();
    let bytes = bodies.iter().map(Vec::len).sum();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let start = Instant::now();
    for body in bodies {
        let r = client
            .post(format!("{}/v1/batches", s.base))
            .header("content-type", "application/json")
            .header("x-api-key", &s.key)
            .body(body)
            .send()
            .expect("post");
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap_or_default());
    }
    (start.elapsed().as_secs_f64(), bytes)
}
