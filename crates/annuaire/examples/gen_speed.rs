//! Times the synthetic extraction generator: `cargo run --release -p mss-annuaire --example gen_speed [COUNT] [SEED]`.
//!
//! Writes to a sink (the disk is not what is measured) and prints the summary and the rate.

use std::time::Instant;

use mss_annuaire::demo::{DemoOptions, write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(535_000);
    let seed = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let mut bytes = Counter(0);
    let start = Instant::now();
    let summary = write(
        &mut bytes,
        &DemoOptions {
            count,
            seed,
            faults: true,
        },
    )?;
    let elapsed = start.elapsed();
    println!(
        "{summary:?}\n{} bytes in {:.2} s ({:.0} lines/s)",
        bytes.0,
        elapsed.as_secs_f64(),
        summary.lines as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Counts what is written and drops it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
