//! FHIR benchmark: `cargo bench -p mss --bench fhir`.
//!
//! A full `mss fhir-sync` of the synthetic population (`mss demo-data`, seed 1) as ANS-shaped FHIR
//! resources (`mss_annuaire::fhir::fixtures`), served by the local FHIR server of the tests
//! (`tests/fhir_fake`, axum, in this process; pages of 50 by `_page?id=` links, `_include`), into a fresh
//! index: wall time, requests, pages/s, resources/s, and the most requests seen by the server in any
//! second. Once without a rate limit (the client and index alone), once at the national 17 requests/s.
//! The in-memory Medplum server of the tests is not used here: its searches scan every resource, which at
//! 100 k practitioners would measure the server, not the client.
//!
//! Environment: MSS_BENCH_FHIR_ENTRIES (mailboxes, default 126000: about 100 k Practitioners),
//! MSS_BENCH_FHIR_RATES (default "0,17").

#[path = "../tests/fhir_fake/mod.rs"]
mod fhir_fake;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mss_annuaire::demo;
use mss_annuaire::fhir::fixtures;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let entries: usize = env_or("MSS_BENCH_FHIR_ENTRIES", 126_000);
    let rates: Vec<u32> = std::env::var("MSS_BENCH_FHIR_RATES")
        .unwrap_or_else(|_| "0,17".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let mss = PathBuf::from(env!("CARGO_BIN_EXE_mss"));
    let made = Instant::now();
    let population = fixtures::population(demo::entries(entries, 1), "2026-11-01T08:00:00Z");
    println!(
        "FHIR benchmark: {entries} mailboxes as {} Practitioner, {} PractitionerRole, {} Organization (built in {:.1} s), {} cores",
        population.practitioners.len(),
        population.roles.len(),
        population.organizations.len(),
        made.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let fake = fhir_fake::FakeFhir::serve(population);
    let base = fake.base();
    for rate in rates {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let before = fake.log().len();
        let started = Instant::now();
        let out = Command::new(&mss)
            .args(["--data", data.to_str().unwrap(), "fhir-sync", "--quiet"])
            .args(["--base", &base, "--rate", &rate.to_string()])
            .output()
            .expect("running mss fhir-sync");
        let took = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "fhir-sync failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = fake.log();
        let log = &log[before..];
        let requests = log.len();
        let mut busiest = 0;
        for (i, first) in log.iter().enumerate() {
            let n = log[i..]
                .iter()
                .take_while(|l| l.at - first.at < Duration::from_secs(1))
                .count();
            busiest = busiest.max(n);
        }
        let summary = String::from_utf8_lossy(&out.stdout);
        let resources: u64 = summary
            .split(", ")
            .find_map(|p| p.strip_suffix(" resources")?.parse().ok())
            .unwrap_or(0);
        let limit = if rate == 0 {
            "no limit".to_string()
        } else {
            format!("limit {rate}/s")
        };
        println!(
            "full sync, {limit}: {took:.1} s, {requests} requests ({:.1} pages/s), {resources} resources ({:.0}/s), at most {busiest} requests in any second",
            requests as f64 / took,
            resources as f64 / took
        );
        println!("  mss: {}", summary.trim());
    }
}
