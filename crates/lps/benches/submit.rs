//! Messages per second submitted by mss over one reused, authenticated session (STARTTLS + XOAUTH2 on the
//! Postfix submission port of the test operator) versus Postfix's own load generator, `smtp-source`, over
//! one session on the same Postfix (plain port: smtp-source has no TLS nor SASL). Both feed the same queue,
//! which delivers into Dovecot over LMTP; the queue is drained between runs.
//!
//!     cargo bench -p mss-lps --bench submit            # MSS_BENCH_MESSAGES=1000 by default
//!
//! Needs root (Postfix); prints why and exits otherwise.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{addr, operator};
use mss_lps::Envelope;

fn queue_len(dir: &Path) -> usize {
    ["incoming", "active", "deferred", "maildrop"]
        .iter()
        .map(|q| walk(&dir.join("postfix/queue").join(q)))
        .sum()
}

fn walk(p: &Path) -> usize {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            if path.is_dir() { walk(&path) } else { 1 }
        })
        .sum()
}

fn drain(dir: &Path) {
    let start = Instant::now();
    while queue_len(dir) > 0 && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A message of about `len` bytes, like smtp-source's `-l`.
fn body(len: usize, n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: alice@sante.test\r\nTo: bench@sante.test\r\nSubject: bench {n}\r\nMessage-ID: <bench-{n}-{}@mss.test>\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    while m.len() < len {
        m.extend_from_slice(b"La MSSante, messagerie securisee de sante, message de test.\r\n");
    }
    m
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(op) = operator() else { return };
    if !op.delivers() {
        eprintln!("SKIP: the comparison needs Postfix (run as root)");
        return;
    }
    let n: usize = std::env::var("MSS_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let len = 1024;
    let dir = op.path("DIR");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let client = op.per_client("alice@sante.test");
    let env = Envelope {
        from: addr("alice@sante.test"),
        recipients: vec![addr("bench@sante.test")],
        dsn: None,
    };
    let messages: Vec<Vec<u8>> = (0..n).map(|i| body(len, i)).collect();
    // log in and warm up
    rt.block_on(async {
        for m in messages.iter().take(20) {
            client.send(&env, m).await.expect("warm-up");
        }
    });
    drain(&dir);

    let mut mss_rates = Vec::new();
    let mut source_rates = Vec::new();
    for round in 0..3 {
        let t = Instant::now();
        rt.block_on(async {
            for m in &messages {
                client.send(&env, m).await.expect("send");
            }
        });
        let mss = n as f64 / t.elapsed().as_secs_f64();
        drain(&dir);

        let t = Instant::now();
        let status = Command::new("smtp-source")
            .args([
                "-d",
                "-s",
                "1",
                "-l",
                &len.to_string(),
                "-m",
                &n.to_string(),
            ])
            .args([
                "-f",
                "alice@sante.test",
                "-t",
                "bench@sante.test",
                "-M",
                "bench.sante.test",
            ])
            .arg(format!("127.0.0.1:{}", op.port("RELAY_PORT")))
            .status()
            .expect("smtp-source");
        assert!(status.success(), "smtp-source failed");
        let source = n as f64 / t.elapsed().as_secs_f64();
        drain(&dir);
        println!("round {round}: mss {mss:.0} msg/s, smtp-source {source:.0} msg/s");
        mss_rates.push(mss);
        source_rates.push(source);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mss, source) = (median(&mut mss_rates), median(&mut source_rates));
    let logins = rt.block_on(client.stats()).smtp_logins;
    println!(
        "{n} messages of {len} bytes, one session each (mss logins: {logins}); medians of 3 rounds:\n\
         mss (STARTTLS + XOAUTH2, pipelined)   {mss:.0} msg/s\n\
         smtp-source (plain, no AUTH)          {source:.0} msg/s\n\
         ratio mss / smtp-source               {:.2} (goal >= 0.8)",
        mss / source
    );
}
