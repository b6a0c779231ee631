//! What the batch benchmarks share: the letter they send.

use serde_json::{Value, json};

/// The example compose request (`examples/compose/cda-to-professional.json`) from alice@sante.test to
/// bench@sante.test, its CDA padded to about 50 KB with random base64-like text (which compresses like the PDF
/// a real CDA often embeds).
pub fn letter() -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut req: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("examples/compose/cda-to-professional.json"))
            .expect("example"),
    )
    .expect("json");
    let cda = req["documents"][0]["cda"]["text"]
        .as_str()
        .expect("cda text")
        .to_owned();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let filler: String = (0..48_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 76 == 75 {
                '\n'
            } else {
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [(x % 64) as usize],
                )
            }
        })
        .collect();
    req["documents"][0]["cda"]["text"] = cda
        .replacen(
            "</ClinicalDocument>",
            &format!("<!-- {filler} -->\n</ClinicalDocument>"),
            1,
        )
        .into();
    req["sender"]["address"] = "alice@sante.test".into();
    req["recipients"] = json!({ "to": ["bench@sante.test"] });
    req
}

/// Composition of the benches' letters: their domain is inside the espace de confiance through the test
/// whitelist (docs/mssante.md M8).
pub fn compose_config() -> mss_message::ComposeConfig {
    let mut c = mss_message::ComposeConfig::new("MSS-BENCH-NIL");
    c.trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
    c
}
