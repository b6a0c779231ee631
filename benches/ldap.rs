//! LDAP benchmark: `cargo bench -p mss --bench ldap`.
//!
//! 1. Starts the test directory (scripts/ldap-directory.sh: slapd 2.5, mdb, national limits, `eq,sub`
//!    indexes on `sn`, `givenName`, `cn`) with 50 000 entries of `mss demo-data`.
//! 2. Harvest: `mss ldap-sync` of the whole directory through its 100-entry cap, timed.
//! 3. The same 1 000 name-prefix queries (1 to 6 letters, from the data), 10 results each, at the same
//!    client concurrency, against slapd over LDAP (`(|(sn=p*)(givenName=p*)(cn=p*))`, one connection per
//!    client) and against `mss serve` on the harvested index over HTTP (`/v1/directory/autocomplete`,
//!    keep-alive): queries/s, p50, p99, max, side by side, and the ratio. `slapd (100)` is the same LDAP
//!    query without a client size limit: the server's 100 entries, what a mail client usually gets.
//!    `srv cpu` and `cli cpu`: CPU milliseconds per query of the server process and of the client (this
//!    process, mss's LDAP client or reqwest), to tell the server's cost from the client's.
//! 4. 200 typo queries (first name + last name with one letter changed): how often the wanted mailbox is in
//!    each answer.
//!
//! Environment: MSS_BENCH_ENTRIES (default 50000), MSS_BENCH_CONCURRENCY (default "1,4").
//! Without slapd installed it says so and exits.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mss_annuaire::ldap::{LdapClient, LdapConfig, SearchQuery};

// the allocator of the `mss` binary, whose LDAP client this measures (`mss search --source ldap`): with
// glibc's, decoding 100 entries cost the client more than slapd spent answering them
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use mss_annuaire::{Entry, extraction};

fn main() {
    let entries: usize = env_or("MSS_BENCH_ENTRIES", 50_000);
    let concurrencies: Vec<usize> = std::env::var("MSS_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let mss = PathBuf::from(env!("CARGO_BIN_EXE_mss"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) = Directory::start(&mss, tmp.path(), entries) else {
        return;
    };
    println!(
        "LDAP benchmark: {entries} entries, slapd 2.5 (mdb, eq,sub on sn/givenName/cn, size limit 100), {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 2. harvest
    let data = tmp.path().join("data");
    let started = Instant::now();
    let out = Command::new(&mss)
        .args(["--data", data.to_str().unwrap(), "ldap-sync", "--quiet"])
        .args(["--url", &dir.url, "--base", &dir.base])
        .output()
        .expect("running mss ldap-sync");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "ldap-sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    let queries = summary
        .split(", ")
        .find_map(|p| p.split_once(" queries in").map(|(n, _)| n.to_string()))
        .unwrap_or_default();
    println!(
        "\nharvest (mss ldap-sync, concurrency 4): {entries} entries through the 100-entry cap in {:.1} s, {queries} queries ({:.0} entries/s)",
        took.as_secs_f64(),
        entries as f64 / took.as_secs_f64()
    );

    // 3. the query mix, from the data
    let source = read_entries(&dir.extraction);
    // 200 more for the warm-up: no measured query is run before it is measured (both servers cache)
    let mut prefixes = prefix_queries(&source, 1200);
    let warm_up = prefixes.split_off(1000);
    let typos = typo_queries(&source, 200);
    let server = Serve::start(&mss, &data);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "\n1000 name-prefix queries (1-6 letters), 10 results each; slapd over LDAP vs mss autocomplete over HTTP"
    );
    println!(
        "{:<12} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "server", "conc", "queries/s", "p50 ms", "p99 ms", "max ms", "srv cpu", "cli cpu"
    );
    for &c in &concurrencies {
        // warm both (caches, connections), then measure
        rt.block_on(run_ldap(&dir, &warm_up, c, 10));
        let ldap = rt.block_on(run_ldap(&dir, &prefixes, c, 10));
        let ldap100 = rt.block_on(run_ldap(&dir, &prefixes, c, 0));
        rt.block_on(run_http(&server, &warm_up, c));
        let http = rt.block_on(run_http(&server, &prefixes, c));
        ldap.print("slapd", c);
        ldap100.print("slapd (100)", c);
        http.print("mss", c);
        // throughput and p99 ratios, against slapd's 10 entries and against what the national server
        // returns without a client size limit (the peer figure)
        for (label, slapd) in [("mss/slapd", &ldap), ("mss/(100)", &ldap100)] {
            println!(
                "{:<12} {:>5} {:>9.1}x {:>10} {:>9.1}x",
                label,
                c,
                http.qps / slapd.qps,
                "",
                slapd.p(0.99) / http.p(0.99)
            );
        }
    }

    // 4. typos
    let ldap_found = rt.block_on(async {
        let client = dir.client();
        let mut found = 0;
        for (q, address) in &typos {
            let answer = client
                .search(&SearchQuery {
                    text: q.clone(),
                    limit: 10,
                    ..SearchQuery::default()
                })
                .await
                .expect("LDAP search");
            found += usize::from(answer.entries.iter().any(|e| e.address.as_str() == address));
        }
        found
    });
    let http_found = rt.block_on(async {
        let client = reqwest::Client::new();
        let mut found = 0;
        for (q, address) in &typos {
            let body = client
                .get(format!(
                    "{}/v1/directory/autocomplete?limit=10&q={}",
                    server.base,
                    encode(q)
                ))
                .send()
                .await
                .expect("HTTP")
                .text()
                .await
                .expect("body");
            found += usize::from(body.contains(&format!("\"address\":\"{address}\"")));
        }
        found
    });
    println!(
        "\n{} typo queries (first name + last name with one letter changed), wanted mailbox in the 10 results: slapd {ldap_found}, mss {http_found}",
        typos.len()
    );
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Directory {
    child: Child,
    slapd_pid: String,
    url: String,
    base: String,
    extraction: PathBuf,
}

impl Directory {
    fn start(mss: &Path, tmp: &Path, entries: usize) -> Option<Directory> {
        match mss_testing::spawn_ready(
            mss_testing::fixture_script("ldap-directory.sh")
                .args(["--mss", mss.to_str().unwrap(), "--dir"])
                .arg(tmp.join("slapd"))
                .args(["--entries", &entries.to_string(), "--seed", "535"]),
        ) {
            Ok((child, vars)) => Some(Directory {
                child,
                slapd_pid: vars["SLAPD_PID"].clone(),
                url: vars["URL"].clone(),
                base: vars["BASE"].clone(),
                extraction: PathBuf::from(&vars["EXTRACTION"]),
            }),
            Err((status, err)) => {
                eprintln!(
                    "the test directory did not start ({status:?}): install slapd with scripts/install-deps.sh\n{err}"
                );
                None
            }
        }
    }

    fn client(&self) -> LdapClient {
        LdapClient::new(LdapConfig::new(&self.url, &self.base).expect("config")).expect("client")
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(mss: &Path, data: &Path) -> Serve {
        let port = mss_testing::free_ports(1, 8);
        let mut child = Command::new(mss)
            .args(["--data", data.to_str().unwrap(), "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mss serve");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..600 {
            if reqwest::blocking::get(format!("{base}/readyz")).is_ok_and(|r| r.status() == 200) {
                return Serve { child, base };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("mss serve did not become ready");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_entries(path: &Path) -> Vec<Entry> {
    extraction::read_path(path, |records| {
        let mut out = Vec::new();
        for r in records {
            if let extraction::Record::Entry(e) = r? {
                out.push(*e);
            }
        }
        Ok::<_, mss_annuaire::Error>(out)
    })
    .expect("reading the extraction")
}

/// A small deterministic generator (the query mix must be the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Prefixes of last and first names as a user types them: 10 % one letter, 20 % two, the rest 3 to 6.
fn prefix_queries(entries: &[Entry], n: usize) -> Vec<String> {
    let names: Vec<String> = entries
        .iter()
        .flat_map(|e| [e.last_name.clone(), e.first_name.clone()])
        .flatten()
        .map(|s| s.to_lowercase())
        .filter(|s| s.chars().count() >= 6 && s.chars().all(char::is_alphabetic))
        .collect();
    let mut rng = Lcg(42);
    (0..n)
        .map(|i| {
            let name = &names[rng.below(names.len())];
            let len = match i % 10 {
                0 => 1,
                1 | 2 => 2,
                _ => 3 + rng.below(4),
            };
            name.chars().take(len).collect()
        })
        .collect()
}

/// `Prénom Nom` with one letter of the last name changed (not the first), and the wanted address.
fn typo_queries(entries: &[Entry], n: usize) -> Vec<(String, String)> {
    let mut rng = Lcg(7);
    let people: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.first_name.is_some()
                && e.last_name
                    .as_deref()
                    .is_some_and(|l| l.chars().count() >= 6 && l.is_ascii())
        })
        .collect();
    (0..n)
        .map(|_| {
            let e = people[rng.below(people.len())];
            let mut last: Vec<char> = e
                .last_name
                .as_deref()
                .unwrap()
                .to_lowercase()
                .chars()
                .collect();
            let at = 1 + rng.below(last.len() - 1);
            let replacement = if last[at] == 'x' { 'z' } else { 'x' };
            last[at] = replacement;
            (
                format!(
                    "{} {}",
                    e.first_name.as_deref().unwrap(),
                    last.iter().collect::<String>()
                ),
                e.address.to_string(),
            )
        })
        .collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Run {
    qps: f64,
    latencies: Vec<Duration>,
    /// CPU milliseconds per query of the server process and of this one (the client).
    server_cpu: f64,
    client_cpu: f64,
}

impl Run {
    fn p(&self, q: f64) -> f64 {
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1].as_secs_f64() * 1e3
    }

    fn print(&self, name: &str, c: usize) {
        println!(
            "{name:<12} {c:>5} {:>10.0} {:>10.2} {:>10.2} {:>10.2} {:>10.3} {:>10.3}",
            self.qps,
            self.p(0.5),
            self.p(0.99),
            self.p(1.0),
            self.server_cpu,
            self.client_cpu
        );
    }
}

/// CPU seconds (user + system) used so far by process `pid` (`self`: this one), from /proc; 0 if unreadable.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // after the command name (in parentheses, may hold spaces): utime and stime are the 12th and 13th
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ: 100 on Linux
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `queries` over `concurrency` workers from `make`; also counts the CPU time the server process
/// `server` and this process spend on them (per query, in ms): end to end, a heavy client can hide how
/// fast a server is.
async fn measure<F, Fut>(queries: &[String], concurrency: usize, server: &str, make: F) -> Run
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Box<dyn Worker>>,
{
    let queries = Arc::new(queries.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        workers.push(make().await);
    }
    let (server_before, client_before) = (cpu_seconds(server), cpu_seconds("self"));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut w in workers {
        let queries = Arc::clone(&queries);
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(q) = queries.get(i) else { break };
                let t = Instant::now();
                w.query(q).await;
                lat.push(t.elapsed());
            }
            lat
        });
    }
    let mut latencies = Vec::with_capacity(queries.len());
    while let Some(l) = tasks.join_next().await {
        latencies.extend(l.expect("worker"));
    }
    let took = started.elapsed();
    let per_query = |before: f64, after: f64| (after - before) * 1e3 / queries.len() as f64;
    latencies.sort();
    Run {
        qps: queries.len() as f64 / took.as_secs_f64(),
        latencies,
        server_cpu: per_query(server_before, cpu_seconds(server)),
        client_cpu: per_query(client_before, cpu_seconds("self")),
    }
}

trait Worker: Send {
    fn query<'a>(
        &'a mut self,
        q: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

/// A client and the size limit it asks for (0: the server's, 100).
struct LdapWorker(LdapClient, usize);

impl Worker for LdapWorker {
    fn query<'a>(
        &'a mut self,
        q: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .search(&SearchQuery {
                    text: q.to_string(),
                    limit: self.1,
                    ..SearchQuery::default()
                })
                .await
                .expect("LDAP search");
        })
    }
}

struct HttpWorker {
    client: reqwest::Client,
    base: String,
}

impl Worker for HttpWorker {
    fn query<'a>(
        &'a mut self,
        q: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let r = self
                .client
                .get(format!(
                    "{}/v1/directory/autocomplete?limit=10&q={}",
                    self.base,
                    encode(q)
                ))
                .send()
                .await
                .expect("HTTP");
            assert!(r.status().is_success());
            r.bytes().await.expect("body");
        })
    }
}

async fn run_ldap(dir: &Directory, queries: &[String], c: usize, limit: usize) -> Run {
    measure(queries, c, &dir.slapd_pid, || async {
        let client = dir.client();
        client.connect().await.expect("LDAP connect");
        Box::new(LdapWorker(client, limit)) as Box<dyn Worker>
    })
    .await
}

async fn run_http(server: &Serve, queries: &[String], c: usize) -> Run {
    let base = server.base.as_str();
    measure(queries, c, &server.child.id().to_string(), || async {
        Box::new(HttpWorker {
            client: reqwest::Client::new(),
            base: base.to_string(),
        }) as Box<dyn Worker>
    })
    .await
}
