//! Composition throughput: 10 000 messages each carrying a 50 KB CDA R2 document, on one core,
//! against the bare cost of deflating and base64-encoding the same document bytes.
//!
//! `cargo bench -p mss-message --bench compose` (`MSS_BENCH_N` changes the count). Goal: the ratio
//! stays at or under 1.3, i.e. composing adds little to the unavoidable deflate + base64 work.

use base64::Engine;
use mss_message::{ComposeConfig, Env, compose_with};
use std::hint::black_box;
use std::time::{Duration, Instant};
use time::macros::datetime;

mod common;
use common::{cda_of_size, request};

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("MSS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cda = cda_of_size(50 * 1024);
    let req = request(&cda);
    let cfg = ComposeConfig::new("DEV935997");
    let now = datetime!(2026-11-23 09:30 UTC);

    // Warm-up (allocator, caches), then the timed runs, interleaved to share machine noise.
    let mut bytes_out = 0usize;
    for i in 0..200u64 {
        let m = compose_with(&req, &cfg, &mut Env::fixed(now, i)).expect("composes");
        bytes_out = m.raw.len();
    }
    let mut compose_time = Duration::ZERO;
    let mut bare_time = Duration::ZERO;
    // Per-chunk ratios: the machine is shared, so the median chunk is the figure to trust.
    let mut chunk_ratios = Vec::new();
    let mut deflated_len = 0;
    let mut c = flate2::Compress::new(
        flate2::Compression::new(mss_message::xdm::DEFLATE_LEVEL as u32),
        false,
    );
    let chunk = 250.min(n).max(1);
    let mut done = 0;
    while done < n {
        let k = chunk.min(n - done);
        let t = Instant::now();
        let mut this_compose = Duration::ZERO;
        for i in 0..k {
            let m = compose_with(&req, &cfg, &mut Env::fixed(now, (done + i) as u64))
                .expect("composes");
            black_box(m.raw);
        }
        this_compose += t.elapsed();
        compose_time += this_compose;

        let t = Instant::now();
        for _ in 0..k {
            // The most direct deflate: one raw stream, its state reused, into a presized buffer.
            c.reset();
            let mut deflated = Vec::with_capacity(cda.len() + cda.len() / 512 + 64);
            c.compress_vec(
                black_box(cda.as_bytes()),
                &mut deflated,
                flate2::FlushCompress::Finish,
            )
            .expect("deflate");
            deflated_len = deflated.len();
            black_box(base64::engine::general_purpose::STANDARD.encode(&deflated));
        }
        let this_bare = t.elapsed();
        bare_time += this_bare;
        chunk_ratios.push(this_compose.as_secs_f64() / this_bare.as_secs_f64());
        done += k;
    }
    let ratio = compose_time.as_secs_f64() / bare_time.as_secs_f64();
    chunk_ratios.sort_by(f64::total_cmp);
    let median = chunk_ratios[chunk_ratios.len() / 2];
    println!(
        "compose: {n} messages, CDA {} bytes (deflated {deflated_len}), message {bytes_out} bytes",
        cda.len()
    );
    println!(
        "compose:   {:>9.0} messages/s  ({:.1} µs/message, one core)",
        per_second(n, compose_time),
        compose_time.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "bare deflate+base64 of the CDA: {:>9.0} /s  ({:.1} µs each)",
        per_second(n, bare_time),
        bare_time.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "ratio compose / bare: {ratio:.2} overall, {median:.2} median of {} interleaved chunks (goal <= 1.30)",
        chunk_ratios.len()
    );
}
