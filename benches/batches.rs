//! Batch acceptance benchmark: `cargo bench -p mss --bench batches`.
//!
//! How fast `mss serve` takes batches in: MSS_BENCH_ITEMS (default 2 000) XDM letters with a CDA of about
//! 50 KB, posted to `POST /v1/batches` in requests of MSS_BENCH_PER_REQUEST items (default 500, about 30 MB:
//! under the default 64 MiB body limit), all into one batch, timed from the first byte sent to the last 202
//! (every item composed, checked and committed to the SQLite outbox with synchronous=FULL). As compose
//! requests (the service composes the XDM archive) and as ready messages (base64 of the same letters: parsing,
//! checks and the commit only); each against two services side by side, one writing the audit trail and one
//! with `[audit] enabled = false`, alternated twice: the ratio is the cost of the audit trail (goal >= 0.95).
//! Requests carry a client key. The sender's credentials are left unreadable so that no worker competes for
//! the store while it is measured. Needs no operator.

use base64::Engine;
use common::{letter, post_all, serve};
use serde_json::{Value, json};

mod common;

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    let n = env_or("MSS_BENCH_ITEMS", 2000);
    let per = env_or("MSS_BENCH_PER_REQUEST", 500).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let letter = letter();
    let composed = mss_message::compose(
        &serde_json::from_value(letter.clone()).expect("request"),
        &common::compose_config(),
    )
    .expect("compose");
    let header = format!("Message-ID: <{}>", composed.message_id);
    let raw = String::from_utf8(composed.raw).expect("ASCII");
    println!(
        "POST /v1/batches: {n} XDM letters (CDA ~50 KB, message {} KB) in requests of {per}, one batch, \
         SQLite outbox (synchronous=FULL); {} cores, load average {}",
        raw.len() / 1024,
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default()
    );
    let audited = serve(&dir.path().join("audit-on"), true, "");
    let unaudited = serve(&dir.path().join("audit-off"), false, "");
    let eml_of = |i: &str| {
        let m = raw.replacen(&header, &format!("Message-ID: <bench-{i}@sante.test>"), 1);
        base64::engine::general_purpose::STANDARD.encode(m)
    };
    for kind in ["compose requests", "ready messages"] {
        let mut rates = [Vec::new(), Vec::new()];
        for round in 0..2 {
            for (side, s) in [&unaudited, &audited].into_iter().enumerate() {
                let tag = format!("{}{side}{round}", &kind[..1]);
                let items: Vec<Value> = (0..n)
                    .map(|i| {
                        let key = format!("{tag}-{i}");
                        if kind.starts_with("compose") {
                            json!({"idempotency_key": key, "compose": letter})
                        } else {
                            json!({"idempotency_key": key, "message": eml_of(&key)})
                        }
                    })
                    .collect();
                let (secs, bytes) = post_all(s, &format!("bench-{tag}"), &items, per);
                let rate = n as f64 / secs;
                println!(
                    "{kind}, audit {}: {rate:.0} items/s accepted ({secs:.1} s, {:.1} MB of JSON, {:.1} MB/s)",
                    if side == 1 { "on " } else { "off" },
                    bytes as f64 / 1e6,
                    bytes as f64 / 1e6 / secs
                );
                rates[side].push(rate);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "{kind}: audit on / off = {:.3} of the acceptance rate (goal >= 0.95)",
            mean(&rates[1]) / mean(&rates[0])
        );
    }
    let dir = dir.path().join("audit-on");
    let size = std::fs::metadata(dir.join("data/outbox.sqlite")).map_or(0, |m| m.len())
        + std::fs::metadata(dir.join("data/outbox.sqlite-wal")).map_or(0, |m| m.len());
    let trail = std::fs::metadata(dir.join("data/audit.jsonl")).map_or(0, |m| m.len());
    println!(
        "outbox on disk: {:.1} MB for {} messages; audit trail {:.1} KB",
        size as f64 / 1e6,
        4 * n,
        trail as f64 / 1e3
    );
}
