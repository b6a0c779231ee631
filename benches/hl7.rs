//! HL7 acceptance benchmark: `cargo bench -p mss --bench hl7`.
//!
//! How fast `mss serve` takes the DPI's documents in over MLLP (docs/mssante.md H1): MSS_BENCH_ITEMS
//! (default 1 000) `MDM^T02` carrying the batches benchmark's letter (CDA ~50 KB, base64 in OBX), sent one
//! at a time over one MLLP connection, each answered `AA` only once parsed, composed and committed to
//! the SQLite outbox (synchronous=FULL). Beside it, in the same run and on the same service, the same
//! letters through `POST /v1/batches` in requests of MSS_BENCH_PER_REQUEST (default 500), as the
//! batches benchmark sends them; alternated twice. Needs no operator: no worker competes for the store
//! (the sender's credentials are unreadable).

use std::time::Instant;

use base64::Engine;
use common::{letter, post_all, serve};
use mss_hl7::mllp::{ClientOptions, MllpClient};
use serde_json::{Value, json};

mod common;

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// The letter as the DPI sends it: an MDM^T02 of the sending guide, `{ID}` standing for MSH-10.
fn mdm(letter: &Value) -> String {
    let p = &letter["patient"];
    let cda = letter["documents"][0]["cda"]["text"].as_str().expect("cda");
    let b64 = base64::engine::general_purpose::STANDARD.encode(cda);
    let flag = |i: usize, name: &str, v: &str| {
        format!("OBX|{i}|CWE|{name}^{name}^MetaDMPMSS||{v}^^expandedYes-NoIndicator||||||F\r")
    };
    format!(
        "MSH|^~\\&|DPI|CH|PFI|CH|20260101120000||MDM^T02^MDM_T02|{{ID}}|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r\
         EVN||20260101120000\r\
         PID|||{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||{name}^{given}^^^^^L||{birth}|{sex}|||||||||||||||||||||||VALI\r\
         PV1|1|N\r\
         ORC|NW\r\
         OBR|1|||11488-4^Compte rendu de consultation^LN\r\
         TXA|1|11488-4|TEXT|20260101120000\r\
         OBX|1|ED|11488-4^Compte rendu de consultation^LN||^text^XML^Base64^{b64}||||||F\r\
         PRT||UC||RCT^^participation|||||||||||^^X.400^bench@sante.test\r\
         {}{}{}{}{}{}{}",
        flag(2, "MASQUE_PS", "N"),
        flag(3, "INVISIBLE_PATIENT", "Y"),
        flag(4, "INVISIBLE_REP_LEGAUX", "N"),
        flag(5, "DESTMSSANTEPS", "Y"),
        flag(6, "DESTMSSANTEPAT", "N"),
        flag(7, "ACK_RECEPTION", "Y"),
        flag(8, "ACK_LECTURE_MSS", "Y"),
        ins = p["ins"].as_str().expect("ins"),
        name = p["birth_name"].as_str().expect("name"),
        given = p["first_given_name"].as_str().expect("given"),
        birth = p["birth_date"].as_str().expect("birth"),
        sex = p["sex"].as_str().expect("sex"),
    )
}

fn main() {
    let n = env_or("MSS_BENCH_ITEMS", 1000);
    let per = env_or("MSS_BENCH_PER_REQUEST", 500).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let letter = letter();
    let template = mdm(&letter);
    println!(
        "MDM^T02 over MLLP (one connection, one message at a time) beside POST /v1/batches (requests of \
         {per}): {n} letters each, CDA ~50 KB (MDM {} KB), SQLite outbox (synchronous=FULL); {} cores, \
         load average {}",
        template.len() / 1024,
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default()
    );
    let s = serve(
        &dir.path().join("svc"),
        false,
        "\n[hl7]\nlisten = \"127.0.0.1:0\"\nsender = \"alice\"\nentity = \"Bench\"\n",
    );
    let hl7 = s.hl7.clone().expect("the service printed its HL7 address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..2 {
        // MLLP
        let messages: Vec<mss_hl7::Message> = (0..n)
            .map(|i| {
                mss_hl7::Message::parse(
                    template
                        .replace("{ID}", &format!("R{round}M{i}"))
                        .as_bytes(),
                )
                .expect("MDM")
            })
            .collect();
        let secs = runtime.block_on(async {
            let mut client = MllpClient::new(&hl7, ClientOptions::default());
            let start = Instant::now();
            for m in &messages {
                let (_, ack) = client.send(m).await.expect("MLLP");
                assert_eq!(ack.code, mss_hl7::AckCode::AA, "{:?}", ack.faults);
            }
            start.elapsed().as_secs_f64()
        });
        let rate = n as f64 / secs;
        println!("MLLP MDM^T02: {rate:.0} documents/s accepted ({secs:.1} s)");
        rates[0].push(rate);
        // REST
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"idempotency_key": format!("R{round}B{i}"), "compose": letter}))
            .collect();
        let (secs, _) = post_all(&s, &format!("bench-{round}"), &items, per);
        let rate = n as f64 / secs;
        println!("POST /v1/batches: {rate:.0} letters/s accepted ({secs:.1} s)");
        rates[1].push(rate);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "MLLP / REST = {:.2} of the acceptance rate (goal >= 1)",
        mean(&rates[0]) / mean(&rates[1])
    );
}
