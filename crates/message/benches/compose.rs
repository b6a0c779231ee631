//! Composition throughput: 10 000 messages each carrying a 50 KB CDA R2 document, on one core,
//! against the bare cost of deflating and base64-encoding the same document bytes.
//!
//! `cargo bench -p mss-message --bench compose` (`MSS_BENCH_N` changes the count). Goal: the ratio
//! stays at or under 1.3, i.e. composing adds little to the unavoidable deflate + base64 work.

use base64::Engine;
use mss_message::{ComposeConfig, ComposeRequest, Content, Env, compose_with};
use std::hint::black_box;
use std::time::{Duration, Instant};
use time::macros::datetime;

/// Varied French clinical prose, so that the document compresses like a real one (not a repeat).
const WORDS: &[&str] = &[
    "patient",
    "patiente",
    "examen",
    "clinique",
    "normal",
    "tension",
    "artérielle",
    "fréquence",
    "cardiaque",
    "auscultation",
    "souffle",
    "systolique",
    "échographie",
    "ventricule",
    "gauche",
    "fraction",
    "d'éjection",
    "conservée",
    "traitement",
    "bêtabloquant",
    "posologie",
    "matin",
    "soir",
    "contrôle",
    "biologique",
    "créatinine",
    "kaliémie",
    "hémoglobine",
    "glyquée",
    "sous",
    "surveillance",
    "douleur",
    "thoracique",
    "effort",
    "dyspnée",
    "stade",
    "NYHA",
    "antécédents",
    "familiaux",
    "tabagisme",
    "sevré",
    "depuis",
    "ans",
    "hypertension",
    "diabète",
    "type",
    "2",
    "régime",
    "activité",
    "physique",
    "reprise",
    "progressive",
    "holter",
    "ECG",
    "rythme",
    "sinusal",
    "extrasystoles",
    "ventriculaires",
    "isolées",
    "monomorphes",
    "asymptomatiques",
    "consultation",
    "suivi",
    "dans",
    "trois",
    "mois",
    "avec",
    "bilan",
    "lipidique",
    "LDL",
    "objectif",
    "inférieur",
    "à",
    "0,70",
    "g/L",
    "statine",
    "bien",
    "tolérée",
    "myalgies",
];

fn cda_of_size(target: usize) -> String {
    let base = include_str!("../../../examples/compose/cda-to-professional.xml");
    let anchor = "    </structuredBody>";
    let (head, tail) = base.split_at(base.find(anchor).unwrap_or(base.len()));
    let mut doc = String::with_capacity(target + 4096);
    doc.push_str(head);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut section = 0;
    while doc.len() + tail.len() < target {
        section += 1;
        doc.push_str(&format!(
            "      <component>\n        <section>\n          <title>Observation {section}</title>\n          <text>\n"
        ));
        for _ in 0..6 {
            doc.push_str("            <paragraph>");
            for w in 0..24 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if w > 0 {
                    doc.push(' ');
                }
                doc.push_str(WORDS[(seed % WORDS.len() as u64) as usize]);
            }
            doc.push_str(".</paragraph>\n");
        }
        doc.push_str("          </text>\n        </section>\n      </component>\n");
    }
    doc.push_str(tail);
    doc
}

fn request(cda: &str) -> ComposeRequest {
    let text = include_str!("../../../examples/compose/cda-to-professional.json");
    let mut req: ComposeRequest = serde_json::from_str(text).expect("example request");
    req.documents[0].cda = Content::Text(cda.to_string());
    req
}

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
