//! Relevance of the directory's answers on the judged query set, beside a plain tantivy BM25.
//!
//! `cargo bench -p mss-index --bench relevance` (add `-- --write-queries` to draw the set again)
//!
//! The population is `mss demo-data --count 535000` (seed 20240101, no faults). mss is run through both
//! routes (search and autocomplete, 10 answers); the baseline is what any tantivy user gets: the same
//! fields (names, organisation and service, place, profession) with tantivy's default tokenizer,
//! lower-casing and ASCII folding, BM25, the query parser over the four fields, filters as required
//! terms. Printed per class and overall: success@1, success@5 (the meant box among the first 1 / 5) and
//! MRR@10 (the mean of 1 / rank of the first meant box, 0 beyond 10).

#[path = "relevance/judged.rs"]
mod judged;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use mss_annuaire::{BalType, Entry, demo, extraction};
use mss_index::{Builder, DirectoryIndex, Filters, SearchRequest, import};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{IndexRecordOption, STORED, STRING, Schema, TEXT, Value};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, TantivyDocument, Term};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mss demo-data`'s default seed and the national size.
const POPULATION_SEED: u64 = 20_240_101;
const POPULATION: usize = 535_000;
/// Seed of the draw of the queries.
const QUERY_SEED: u64 = 0x6a75_6467_6564;
const SET: &str = "benches/data/judged-queries.tsv";

fn set_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SET)
}

fn main() {
    let write = std::env::args().any(|a| a == "--write-queries");
    let entries: Vec<Entry> = demo::entries(POPULATION, POPULATION_SEED).collect();
    if write {
        let set = judged::generate(&entries, QUERY_SEED);
        let header = format!(
            "# Judged query set of the relevance bench (index/benches/relevance.rs), drawn from `mss demo-data \
             --count {POPULATION}` (seed {POPULATION_SEED}) with seed {QUERY_SEED:#x}:\n# `cargo bench -p \
             mss-index --bench relevance -- --write-queries`. Columns: class, query, filters, meant addresses.\n"
        );
        std::fs::write(set_path(), judged::to_tsv(&set, &header)).expect("write the set");
        println!("wrote {} queries to {}", set.len(), set_path().display());
        return;
    }
    let text = std::fs::read_to_string(set_path()).expect("read the judged set");
    let set = judged::from_tsv(&text);
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("extraction.txt");
    let mut out = std::fs::File::create(&file).expect("create extraction");
    let opts = demo::DemoOptions {
        count: POPULATION,
        seed: POPULATION_SEED,
        faults: false,
    };
    demo::write(&mut out, &opts).expect("write extraction");
    let data = scratch.path().join("data");
    let builder = Builder::create(&data).expect("builder");
    extraction::read_path(&file, |r| import(builder, r, |_| {}, |_| {})).expect("import");
    let index = DirectoryIndex::open(&data).expect("open");
    // `-- --show "query"...`: the first ten answers of mss search, to see why a query misses
    let shown: Vec<String> = std::env::args()
        .skip_while(|a| a != "--show")
        .skip(1)
        .collect();
    if !shown.is_empty() {
        for q in shown {
            let (q, f) = q.split_once('|').unwrap_or((&q, ""));
            let pairs: Vec<(String, String)> = f
                .split(';')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let r = index
                .search(&SearchRequest {
                    q: q.to_string(),
                    filters: filters_of(&pairs),
                    limit: 10,
                    cursor: None,
                })
                .expect("search");
            println!("== {q} ({} matches, dropped {:?})", r.total, r.dropped);
            for h in r.hits {
                let e = h.entry;
                println!(
                    "  {:>5} {} | {} | {}",
                    h.score,
                    e.address,
                    e.display_name(),
                    e.city().unwrap_or("")
                );
            }
        }
        return;
    }
    let bm25 = Bm25::build(&entries);
    println!(
        "relevance: {} judged queries, {} entries (mss demo-data --count {POPULATION}, seed {POPULATION_SEED})",
        set.len(),
        index.num_entries()
    );
    let mut rows: BTreeMap<(usize, String), [Score; 3]> = BTreeMap::new();
    let mut all = [Score::default(); 3];
    let mut misses = Vec::new();
    for j in &set {
        let filters = filters_of(&j.filters);
        let meant: HashSet<&str> = j.meant.iter().map(String::as_str).collect();
        let search = index
            .search(&SearchRequest {
                q: j.q.clone(),
                filters: filters.clone(),
                limit: 10,
                cursor: None,
            })
            .expect("search")
            .hits
            .into_iter()
            .map(|h| h.entry.address.to_string())
            .collect::<Vec<_>>();
        let auto = index
            .autocomplete(&j.q, &filters, 10)
            .expect("autocomplete")
            .into_iter()
            .map(|s| s.address)
            .collect::<Vec<_>>();
        let base = bm25.search(&j.q, &j.filters);
        let ranks = [
            rank(&search, &meant),
            rank(&auto, &meant),
            rank(&base, &meant),
        ];
        if ranks[0].is_none_or(|r| r > 5) {
            misses.push(format!("{:<14} {:<40} rank {:?}", j.class, j.q, ranks[0]));
        }
        let order = judged::CLASSES
            .iter()
            .position(|c| c.0 == j.class)
            .unwrap_or(99);
        let row = rows.entry((order, j.class.clone())).or_default();
        for (i, r) in ranks.into_iter().enumerate() {
            row[i].add(r);
            all[i].add(r);
        }
    }
    println!(
        "{:<14} {:>4} | {:^23} | {:^23} | {:^23}",
        "class", "n", "mss search", "mss autocomplete", "tantivy BM25"
    );
    println!(
        "{:<14} {:>4} | {:>7}{:>8}{:>8} | {:>7}{:>8}{:>8} | {:>7}{:>8}{:>8}",
        "", "", "s@1", "s@5", "MRR@10", "s@1", "s@5", "MRR@10", "s@1", "s@5", "MRR@10"
    );
    for ((_, class), s) in rows
        .iter()
        .chain(std::iter::once((&(0, "overall".into()), &all)))
    {
        let cells: Vec<String> = s.iter().map(Score::cells).collect();
        println!(
            "{:<14} {:>4} | {} | {} | {}",
            class, s[0].n, cells[0], cells[1], cells[2]
        );
    }
    if !misses.is_empty() {
        println!(
            "mss search: meant box not in the first 5 ({}):",
            misses.len()
        );
        for m in misses.iter().take(400) {
            println!("  {m}");
        }
    }
}

/// Position (1-based) of the first meant box among the answers.
fn rank(answers: &[String], meant: &HashSet<&str>) -> Option<usize> {
    answers
        .iter()
        .position(|a| meant.contains(a.as_str()))
        .map(|p| p + 1)
}

#[derive(Default, Clone, Copy)]
struct Score {
    n: usize,
    at1: usize,
    at5: usize,
    rr: f64,
}

impl Score {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        if let Some(r) = rank.filter(|&r| r <= 10) {
            self.at1 += usize::from(r == 1);
            self.at5 += usize::from(r <= 5);
            self.rr += 1.0 / r as f64;
        }
    }

    fn cells(&self) -> String {
        let n = self.n.max(1) as f64;
        format!(
            "{:>7.3}{:>8.3}{:>8.3}",
            self.at1 as f64 / n,
            self.at5 as f64 / n,
            self.rr / n
        )
    }
}

fn filters_of(pairs: &[(String, String)]) -> Filters {
    let mut f = Filters::default();
    for (k, v) in pairs {
        match k.as_str() {
            "department" => f.department = Some(v.clone()),
            "bal_type" => f.bal_type = v.parse::<BalType>().ok(),
            "profession" => f.profession = Some(v.clone()),
            other => panic!("unknown filter {other}"),
        }
    }
    f
}

/// The baseline: the same fields in a plain tantivy index, BM25.
struct Bm25 {
    reader: tantivy::IndexReader,
    parser: QueryParser,
    fields: Bm25Fields,
}

#[derive(Clone, Copy)]
struct Bm25Fields {
    name: tantivy::schema::Field,
    org: tantivy::schema::Field,
    place: tantivy::schema::Field,
    job: tantivy::schema::Field,
    bal_type: tantivy::schema::Field,
    department: tantivy::schema::Field,
    address: tantivy::schema::Field,
}

impl Bm25 {
    fn build(entries: &[Entry]) -> Bm25 {
        let mut b = Schema::builder();
        let text = TEXT.set_indexing_options(
            tantivy::schema::TextFieldIndexing::default()
                .set_tokenizer("folded")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let f = Bm25Fields {
            name: b.add_text_field("name", text.clone()),
            org: b.add_text_field("org", text.clone()),
            place: b.add_text_field("place", text.clone()),
            job: b.add_text_field("job", text),
            bal_type: b.add_text_field("bal_type", STRING),
            department: b.add_text_field("department", STRING),
            address: b.add_text_field("address", STRING | STORED),
        };
        let index = Index::create_in_ram(b.build());
        index.tokenizers().register(
            "folded",
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(AsciiFoldingFilter)
                .build(),
        );
        // one thread, one segment: ties come back in the same order on every run
        let mut w = index
            .writer_with_num_threads(1, 200_000_000)
            .expect("writer");
        for e in entries {
            let mut d = TantivyDocument::default();
            let persons = [&e.first_name, &e.last_name];
            for n in persons.iter().copied().flatten() {
                d.add_text(f.name, n);
            }
            let orgs = [&e.organisation_name, &e.organisation_trade_name, &e.service];
            if e.bal_type != BalType::Per || persons.iter().all(|n| n.is_none()) {
                for o in orgs.iter().copied().flatten() {
                    d.add_text(f.name, o);
                }
            }
            for o in orgs.iter().copied().flatten() {
                d.add_text(f.org, o);
            }
            for p in [
                e.city(),
                e.postal_code.as_deref(),
                e.department.as_ref().map(|d| d.as_str()),
            ]
            .into_iter()
            .flatten()
            {
                d.add_text(f.place, p);
            }
            for c in [&e.profession, &e.speciality].into_iter().flatten() {
                d.add_text(f.job, &c.label);
            }
            d.add_text(f.bal_type, e.bal_type.code());
            if let Some(dep) = &e.department {
                d.add_text(f.department, dep.as_str());
            }
            d.add_text(f.address, e.address.as_str());
            w.add_document(d).expect("add");
        }
        w.commit().expect("commit");
        let reader = index.reader().expect("reader");
        let parser = QueryParser::for_index(&index, vec![f.name, f.org, f.place, f.job]);
        Bm25 {
            reader,
            parser,
            fields: f,
        }
    }

    fn search(&self, q: &str, filters: &[(String, String)]) -> Vec<String> {
        let (parsed, _) = self.parser.parse_query_lenient(q);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, parsed)];
        for (k, v) in filters {
            let field = match k.as_str() {
                "department" => self.fields.department,
                "bal_type" => self.fields.bal_type,
                _ => continue,
            };
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(field, v),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let searcher = self.reader.searcher();
        let top = searcher
            .search(
                &BooleanQuery::new(clauses),
                &TopDocs::with_limit(10).order_by_score(),
            )
            .expect("bm25 search");
        top.into_iter()
            .filter_map(|(_, addr)| {
                let d: TantivyDocument = searcher.doc(addr).ok()?;
                d.get_first(self.fields.address)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .collect()
    }
}
