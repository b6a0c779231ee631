//! Checking throughput beside composing, in one run: 10 000 messages of about 60 KB (a 50 KB CDA R2
//! document in IHE_XDM.zip and its PDF rendering), each composed, then checked, on one core.
//!
//! `cargo bench -p mss-message --bench check` (`MSS_BENCH_N` changes the count). Goal: checking a
//! message costs less than composing it (ratio check / compose under 1).

use mss_message::check::{CheckConfig, check_message, has_errors};
use mss_message::{ComposeConfig, Content, Env, Rendering, compose_with};
use std::hint::black_box;
use std::time::{Duration, Instant};
use time::macros::datetime;

mod common;
use common::{cda_of_size, request};

/// Pseudo-random bytes behind a PDF/A header: a rendering compresses little, like a real one.
fn pdf_of_size(n: usize) -> Vec<u8> {
    let mut pdf =
        b"%PDF-1.4\n<x:xmpmeta><pdfaid:part>1</pdfaid:part></x:xmpmeta>\nstream\n".to_vec();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    while pdf.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        pdf.extend_from_slice(&seed.to_le_bytes());
    }
    pdf.truncate(n);
    pdf.extend_from_slice(b"\nendstream\n%%EOF\n");
    pdf
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("MSS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cfg = ComposeConfig::new("DEV935997");
    let check_cfg = CheckConfig::default();
    let now = datetime!(2026-11-23 09:30 UTC);
    let cda = cda_of_size(50 * 1024);
    let mut req = request(&cda);
    // The PDF that brings the message to 60 KB.
    let bare = compose_with(&req, &cfg, &mut Env::fixed(now, 0))
        .expect("composes")
        .raw
        .len();
    // base64 in lines of 76 characters and CRLF: 4 bytes of text for 3 of PDF, plus 2 every 76.
    let pdf = pdf_of_size((60 * 1024usize).saturating_sub(bare + 200) * 3 * 76 / (4 * 78));
    req.documents[0].rendering = Some(Rendering {
        content: Content::Base64(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &pdf,
        )),
        filename: None,
        file_number: Some("D-4217".into()),
    });
    let sample = compose_with(&req, &cfg, &mut Env::fixed(now, 0)).expect("composes");
    let findings = check_message(&sample.raw, &check_cfg);
    assert!(
        !has_errors(&findings),
        "the bench message is conformant: {findings:?}"
    );

    // Warm-up, then interleaved chunks: compose k messages (timed), check the same k (timed).
    for i in 0..200u64 {
        let m = compose_with(&req, &cfg, &mut Env::fixed(now, i)).expect("composes");
        black_box(check_message(&m.raw, &check_cfg));
    }
    let (mut compose_time, mut check_time) = (Duration::ZERO, Duration::ZERO);
    let mut chunk_ratios = Vec::new();
    let chunk = 250.min(n).max(1);
    let mut done = 0;
    let mut messages = Vec::with_capacity(chunk);
    while done < n {
        let k = chunk.min(n - done);
        messages.clear();
        let t = Instant::now();
        for i in 0..k {
            let m = compose_with(&req, &cfg, &mut Env::fixed(now, (done + i) as u64))
                .expect("composes");
            messages.push(m.raw);
        }
        let this_compose = t.elapsed();
        let t = Instant::now();
        for m in &messages {
            black_box(check_message(black_box(m), &check_cfg));
        }
        let this_check = t.elapsed();
        compose_time += this_compose;
        check_time += this_check;
        chunk_ratios.push(this_check.as_secs_f64() / this_compose.as_secs_f64());
        done += k;
    }
    chunk_ratios.sort_by(f64::total_cmp);
    let median = chunk_ratios[chunk_ratios.len() / 2];
    let ratio = check_time.as_secs_f64() / compose_time.as_secs_f64();
    println!(
        "check: {n} messages of {} bytes (CDA {} bytes, PDF {} bytes), one core",
        sample.raw.len(),
        cda.len(),
        pdf.len()
    );
    println!(
        "compose: {:>9.0} messages/s  ({:.1} µs/message)",
        per_second(n, compose_time),
        compose_time.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "check:   {:>9.0} messages/s  ({:.1} µs/message)",
        per_second(n, check_time),
        check_time.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "ratio check / compose: {ratio:.2} overall, {median:.2} median of {} interleaved chunks (goal < 1)",
        chunk_ratios.len()
    );
}
