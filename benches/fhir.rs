//! FHIR benchmark: `cargo bench -p mss --bench fhir`.
//!
//! A full `mss fhir-sync` of the synthetic population (`mss demo-data`, seed 1) as ANS-shaped FHIR
//! resources (`mss_annuaire::fhir::fixtures`), served by the local FHIR server of the tests
//! (`tests/fhir_fake`, axum, in this process; pages of 50 by `_page?id=` links, `_include`), into a fresh
//! index: wall time, requests, pages/s, resources/s, and the most requests seen by the server in any
//! second. Once without a rate limit (the client and index alone), once at the national 17 requests/s.
//! Then a delta on the first index: 1 % of the Practitioners changed (renamed; one in ten of those with
//! boxes of their own dropping them), which ends with the pass over the index that removes dropped boxes.
//! The in-memory Medplum server of the tests is not used here: its searches scan every resource, which at
//! 100 k practitioners would measure the server, not the client.
//!
//! Environment: MSS_BENCH_FHIR_ENTRIES (mailboxes, default 126000: about 100 k Practitioners),
//! MSS_BENCH_FHIR_RATES (default "0,17").

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

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

/// Runs `mss fhir-sync` into `data` at `rate` requests/s; its output and the seconds it took.
fn fhir_sync(
    mss: &std::path::Path,
    data: &std::path::Path,
    base: &str,
    rate: impl std::fmt::Display,
) -> (std::process::Output, f64) {
    let started = Instant::now();
    let out = Command::new(mss)
        .args(["--data", data.to_str().unwrap(), "fhir-sync", "--quiet"])
        .args(["--base", base, "--rate", &rate.to_string()])
        .output()
        .expect("running mss fhir-sync");
    let took = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "fhir-sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, took)
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
    let mut first_index = None;
    for rate in rates {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let before = fake.log().len();
        let (out, took) = fhir_sync(&mss, &data, &base, rate);
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
        if first_index.is_none() {
            first_index = Some((tmp, data, rate));
        }
    }
    let Some((_tmp, data, rate)) = first_index else {
        return;
    };
    let (changed, dropped) = fake.with(|s| {
        let list = s.resources.get_mut("Practitioner").expect("practitioners");
        let (mut changed, mut with_boxes, mut dropped) = (0, 0, 0);
        for p in list.iter_mut().step_by(100) {
            p["name"][0]["family"] = serde_json::json!("Delta");
            p["meta"]["lastUpdated"] = serde_json::json!("2099-01-01T00:00:00Z");
            changed += 1;
            let boxes = p["telecom"].as_array().map_or(0, Vec::len);
            if boxes > 0 {
                if with_boxes % 10 == 0 {
                    dropped += boxes;
                    p["telecom"] = serde_json::json!([]);
                }
                with_boxes += 1;
            }
        }
        (changed, dropped)
    });
    let before = fake.log().len();
    let (out, took) = fhir_sync(&mss, &data, &base, rate);
    let summary = String::from_utf8_lossy(&out.stdout);
    let sync_part: f64 = summary
        .split(" requests in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    println!(
        "delta, {changed} Practitioners changed ({dropped} boxes dropped): {took:.1} s for the whole command, {} requests; the searches {sync_part:.1} s, the rest (opening the index, the pass over it that removes dropped boxes, the commit) {:.1} s",
        fake.log().len() - before,
        took - sync_part
    );
    println!("  mss: {}", summary.trim());
}
