//! Import throughput, memory, size and query latency of the directory index.
//!
//! `cargo bench -p mss-index --bench directory -- [--entries N] [--queries N] [--keep DIR | --reuse DIR]
//! [--import-only]`
//!
//! Writes a synthetic national extraction of N entries (default 535 000, the size of the real file),
//! imports it through [`mss_index::import`] as the CLI does, then runs a fixed, seeded mix of queries
//! single-threaded after a warm-up. Every figure is printed next to its goal.
//!
//! The entries come from `mss_annuaire::demo` (realistic names, professions, structures and places, with
//! the real file's duplicated and malformed lines); the queries are drawn from a sample of them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mss_annuaire::extraction;
use mss_annuaire::{BalType, Entry, demo};
use mss_index::{Builder, DirectoryIndex, Filters, SearchRequest, import};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Seed of the synthetic extraction.
const SEED: u64 = 0x006d_7373_5f69_6478;
const GOAL_RATE: f64 = 150_000.0;
const GOAL_RSS_MB: f64 = 300.0;
const GOAL_P99_MS: f64 = 2.0;
const PROTOTYPE_P99_MS: f64 = 5.0;

struct Args {
    entries: usize,
    queries: usize,
    keep: Option<PathBuf>,
    /// Query an index kept by an earlier `--keep` run instead of importing.
    reuse: bool,
    /// Stop after the import.
    import_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        entries: 535_000,
        queries: 2_000,
        keep: None,
        reuse: false,
        import_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--entries" => {
                a.entries = value("--entries")
                    .replace('_', "")
                    .parse()
                    .expect("--entries N")
            }
            "--queries" => a.queries = value("--queries").parse().expect("--queries N"),
            "--keep" => a.keep = Some(PathBuf::from(value("--keep"))),
            "--import-only" => a.import_only = true,
            "--reuse" => {
                a.keep = Some(PathBuf::from(value("--reuse")));
                a.reuse = true;
            }
            _ => {} // cargo passes `--bench`
        }
    }
    a.queries = a.queries.max(1000);
    a
}

fn main() {
    let args = args();
    let scratch = tempfile::tempdir().expect("tempdir");
    let data_dir = args
        .keep
        .clone()
        .unwrap_or_else(|| scratch.path().join("data"));
    let file = scratch
        .path()
        .join("Extraction_Correspondance_MSSante_202611300000.txt");

    println!(
        "mss-index bench: {} entries; machine reference loop {:.2} ms (load average {})",
        args.entries,
        reference_ms(),
        load_average()
    );
    let t = Instant::now();
    let sample = if args.reuse {
        demo::entries(args.entries, SEED).step_by(100).collect()
    } else {
        generate(&file, args.entries, SEED)
    };
    let file_mb = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "  generated a {file_mb:.0} MB extraction in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    if !args.reuse {
        run_import(&file, &data_dir);
    }
    if args.import_only {
        return;
    }
    let index = DirectoryIndex::open(&data_dir).expect("open");
    run_queries(&index, &sample, args.queries);
}

fn run_import(file: &Path, data_dir: &Path) {
    // Peak RSS of the import alone: reset the high-water mark first.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let load_before = load_average();
    // Peak RSS split: anonymous memory (heap, indexing buffers) vs mapped index files (the merge reads
    // the new segments through mmap: those pages count in RSS but are the page cache's to reclaim).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let (mut anon, mut file, mut both) = (0f64, 0f64, 0f64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (a, f) = rss_split_mb();
                anon = anon.max(a);
                file = file.max(f);
                both = both.max(a + f);
                std::thread::sleep(Duration::from_millis(5));
            }
            (anon, file, both)
        })
    };
    let cpu = cpu_seconds();
    let t = Instant::now();
    let builder = Builder::create(data_dir).expect("builder");
    let stats = extraction::read_path(file, |reader| import(builder, reader, |_| {}, |_| {}))
        .expect("import");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (anon, file, both) = sampler.join().unwrap_or_default();
    let rate = stats.lines as f64 / secs;
    let rss = peak_rss_mb();
    let index = DirectoryIndex::open(data_dir).expect("open");
    let size_mb = index.size_on_disk() as f64 / 1e6;
    println!(
        "import ({} lines, {} entries, {} merged):",
        stats.lines, stats.imported, stats.merged
    );
    println!(
        "  throughput  {:>9.0} entries/s   goal >= {GOAL_RATE:.0}  {}",
        rate,
        mark(rate >= GOAL_RATE)
    );
    println!(
        "  time        {secs:>9.2} s wall, {cpu:.2} s CPU (load average before: {load_before})"
    );
    let bound = stats.lines as f64 / (cpu / 2.0);
    println!("  CPU cost    {bound:>9.0} entries/s at most on 2 idle cores (lines / (CPU s / 2))");
    println!(
        "  peak RSS    {rss:>9.0} MB          goal <= {GOAL_RSS_MB:.0} MB  {}",
        mark(rss <= GOAL_RSS_MB)
    );
    println!(
        "              sampled every 5 ms: anonymous {anon:.0} MB at most, mapped files {file:.0} MB at most, together {both:.0} MB at most"
    );
    println!("  on disk     {size_mb:>9.1} MB");
}

fn run_queries(index: &DirectoryIndex, sample: &[Entry], n: usize) {
    println!(
        "queries: load average {}, reference loop {:.2} ms",
        load_average(),
        reference_ms()
    );
    let queries = query_mix(sample, n, 0x0071_7565_7279);
    let counts = queries.iter().fold([0usize; 7], |mut c, q| {
        c[q.kind as usize] += 1;
        c
    });
    println!(
        "queries: {} ({} prefixes 1-6, {} first name + prefix, {} full names, {} one typo, {} organisations, {} empty q + filter; {} with filters)",
        queries.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[6],
        queries
            .iter()
            .filter(|q| q.filters != Filters::default())
            .count()
    );
    // Warm-up on another mix: page cache, and the engine's caches of frequent clauses hold what other
    // users' queries left, as in a running server; the measured queries are never run before their pass.
    let others = query_mix(sample, n, 0x0077_6172_6d75);
    let warm_up = || {
        index.clear_query_caches();
        for q in &others {
            let _ = index.autocomplete(&q.q, &q.filters, 10);
        }
    };
    warm_up();
    let mut auto = Vec::with_capacity(queries.len());
    let mut per_kind: Vec<Vec<Duration>> = vec![Vec::new(); 7];
    let mut empty = 0;
    for q in &queries {
        let t = Instant::now();
        let s = index
            .autocomplete(&q.q, &q.filters, 10)
            .expect("autocomplete");
        let d = t.elapsed();
        empty += usize::from(s.is_empty());
        auto.push(d);
    }
    // The machine is shared: a query preempted by another process measures the other process. The best of
    // three runs of each query is its own cost; both figures are printed. Each run starts from the
    // warmed-up state, so a query never finds its own clauses cached by its previous run.
    let mut best = auto.clone();
    for _ in 0..2 {
        warm_up();
        for (q, b) in queries.iter().zip(best.iter_mut()) {
            let t = Instant::now();
            let _ = index
                .autocomplete(&q.q, &q.filters, 10)
                .expect("autocomplete");
            *b = (*b).min(t.elapsed());
        }
    }
    for (q, b) in queries.iter().zip(&best) {
        per_kind[q.kind as usize].push(*b);
    }
    let mut search = Vec::with_capacity(queries.len());
    warm_up();
    for q in &queries {
        let req = SearchRequest {
            q: q.q.clone(),
            filters: q.filters.clone(),
            limit: 20,
            cursor: None,
        };
        let t = Instant::now();
        let _ = index.search(&req).expect("search");
        search.push(t.elapsed());
    }
    let mut slow: Vec<(Duration, &Query)> = best.iter().copied().zip(queries.iter()).collect();
    slow.sort_by_key(|s| std::cmp::Reverse(s.0));
    report("autocomplete (limit 10), one run each", &mut auto);
    report("autocomplete (limit 10), best of 3 runs each", &mut best);
    report("search (limit 20, full entries)", &mut search);
    println!("  ({empty} queries found nothing: typos and combinations absent from the data)");
    println!("  per kind, best of 3:");
    let names = [
        "prefix 1-6",
        "first + prefix",
        "full name",
        "one typo",
        "organisation",
        "-",
        "filter only",
    ];
    for (kind, ds) in per_kind.iter_mut().enumerate() {
        if ds.is_empty() {
            continue;
        }
        ds.sort();
        println!(
            "    {:<15} n={:<5} p50 {:>6} µs  p99 {:>6} µs  max {:>6} µs",
            names[kind],
            ds.len(),
            pct(ds, 0.50).as_micros(),
            pct(ds, 0.99).as_micros(),
            ds[ds.len() - 1].as_micros()
        );
    }
    println!("  slowest (best of 3):");
    for (d, q) in slow.iter().take(5) {
        println!("    {:>6} µs  {:?} {:?}", d.as_micros(), q.q, q.filters);
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn report(what: &str, ds: &mut [Duration]) {
    ds.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let p99 = us(pct(ds, 0.99));
    println!("{what}, single thread, {} queries after warm-up:", ds.len());
    println!("  p50 {:>7.0} µs", us(pct(ds, 0.50)));
    println!("  p95 {:>7.0} µs", us(pct(ds, 0.95)));
    println!(
        "  p99 {:>7.0} µs   goal <= {:.0} µs {}   (prototype anchor: p99 {:.0} µs at 500 k)",
        p99,
        GOAL_P99_MS * 1000.0,
        mark(p99 <= GOAL_P99_MS * 1000.0),
        PROTOTYPE_P99_MS * 1000.0
    );
    println!("  max {:>7.0} µs", us(ds[ds.len() - 1]));
    let mean = ds.iter().map(|&d| us(d)).sum::<f64>() / ds.len() as f64;
    println!(
        "  mean {:>6.0} µs   ({:.0} queries/s on one core)",
        mean,
        1e6 / mean
    );
}

/// CPU time (user + system) of this process so far, in seconds: on a shared machine, what the import
/// cost us, whatever the others were doing.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name (which may hold spaces), 14th and 15th overall
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fixed CPU-bound loop (best of 20), timed: on this shared machine the same code took up to twice as
/// long depending on the neighbours, and every figure moves with it. Compare runs by it.
fn reference_ms() -> f64 {
    let data: Vec<u32> = (0..1_000_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let mut best = f64::MAX;
    let mut sink = 0u64;
    for _ in 0..20 {
        let t = Instant::now();
        sink = sink.wrapping_add(data.iter().map(|&x| u64::from(x >> 7)).sum::<u64>());
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    std::hint::black_box(sink);
    best
}

/// Current resident anonymous and file-backed memory, in MB.
fn rss_split_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("RssAnon:"), field("RssFile:") + field("RssShmem:"))
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

// ---------------------------------------------------------------------------------------------------
// Queries

#[derive(Clone, Copy)]
enum Kind {
    Prefix = 0,
    FirstAndPrefix = 1,
    FullName = 2,
    Typo = 3,
    Organisation = 4,
    FilterOnly = 6,
}

struct Query {
    q: String,
    filters: Filters,
    kind: Kind,
}

fn query_mix(sample: &[Entry], n: usize, seed: u64) -> Vec<Query> {
    let mut rng = Rng(seed);
    let people: Vec<&Entry> = sample
        .iter()
        .filter(|e| e.bal_type == BalType::Per)
        .collect();
    let orgs: Vec<&Entry> = sample
        .iter()
        .filter(|e| e.bal_type != BalType::Per)
        .collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = people[rng.below(people.len())];
        let last = p.last_name.clone().unwrap_or_default();
        let first = p.first_name.clone().unwrap_or_default();
        let roll = rng.below(100);
        let (q, kind) = match roll {
            0..=29 => {
                let word = if rng.below(3) == 0 { &first } else { &last };
                let len = 1 + rng.below(6);
                (
                    word.chars().take(len).collect::<String>().to_lowercase(),
                    Kind::Prefix,
                )
            }
            30..=44 => {
                let len = 1 + rng.below(5);
                (
                    format!(
                        "{} {}",
                        first.to_lowercase(),
                        last.chars().take(len).collect::<String>().to_lowercase()
                    ),
                    Kind::FirstAndPrefix,
                )
            }
            45..=59 => (format!("{first} {last}"), Kind::FullName),
            60..=74 => (
                format!(
                    "{} {}",
                    typo(&mut rng, &last),
                    if rng.below(2) == 0 {
                        first.clone()
                    } else {
                        String::new()
                    }
                )
                .trim()
                .to_string(),
                Kind::Typo,
            ),
            75..=94 => {
                let o = orgs[rng.below(orgs.len())];
                let name = o.organisation_name.clone().unwrap_or_default();
                let words: Vec<&str> = name.split_whitespace().collect();
                let q = match rng.below(3) {
                    0 => name.clone(),
                    1 => {
                        let take = (1 + rng.below(words.len())).min(words.len());
                        let mut q = words[..take].join(" ");
                        if let Some(s) = &o.service {
                            q.push(' ');
                            q.extend(s.chars().take(3 + rng.below(4)));
                        }
                        q
                    }
                    _ => {
                        let take = rng.below(words.len());
                        let mut q = words[..take].join(" ");
                        if let Some(last) = words.get(take) {
                            q.push(' ');
                            q.extend(last.chars().take(2 + rng.below(4)));
                        }
                        q
                    }
                };
                (q, Kind::Organisation)
            }
            _ => (String::new(), Kind::FilterOnly),
        };
        // a quarter with filters (all of the filter-only ones)
        let filters = if matches!(kind, Kind::FilterOnly) || rng.below(4) == 0 {
            match rng.below(4) {
                0 => Filters {
                    department: p.department.as_ref().map(|d| d.to_string()),
                    ..Default::default()
                },
                1 => Filters {
                    profession: p.profession.as_ref().map(|c| c.code.clone()),
                    ..Default::default()
                },
                2 => Filters {
                    bal_type: Some(if rng.below(2) == 0 {
                        BalType::Per
                    } else {
                        BalType::Org
                    }),
                    department: p.department.as_ref().map(|d| d.to_string()),
                    ..Default::default()
                },
                _ => Filters {
                    postal_code: p.postal_code.clone(),
                    ..Default::default()
                },
            }
        } else {
            Filters::default()
        };
        out.push(Query { q, filters, kind });
    }
    out
}

/// One edit: swap two neighbours, substitute, delete or insert a letter (not the first one).
fn typo(rng: &mut Rng, word: &str) -> String {
    let mut c: Vec<char> = word.to_lowercase().chars().collect();
    if c.len() < 5 {
        return c.into_iter().collect();
    }
    let i = 1 + rng.below(c.len() - 2);
    match rng.below(4) {
        0 => c.swap(i, i + 1),
        1 => c[i] = char::from(b'a' + rng.below(26) as u8),
        2 => {
            c.remove(i);
        }
        _ => c.insert(i, char::from(b'a' + rng.below(26) as u8)),
    }
    c.into_iter().collect()
}

/// SplitMix64: small and seeded, for a query mix that is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------------
// Synthetic extraction

/// Writes the demo extraction of `count` entries (with its duplicate and malformed lines, as the real file
/// has) and keeps every 100th entry for the query mix.
fn generate(path: &Path, count: usize, seed: u64) -> Vec<Entry> {
    let mut out = File::create(path).expect("create extraction");
    let opts = demo::DemoOptions {
        count,
        seed,
        faults: true,
    };
    let summary = demo::write(&mut out, &opts).expect("write demo extraction");
    // On disk before the import starts, as a downloaded national file is: otherwise the kernel writes the
    // generated file back while the import runs, and the import is charged for it.
    out.sync_all().expect("sync the extraction");
    println!(
        "  {} lines: {} duplicated addresses, {} malformed",
        summary.lines, summary.duplicates, summary.malformed
    );
    demo::entries(count, seed).step_by(100).collect()
}
