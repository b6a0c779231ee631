//! `mss compose` end to end: the shipped examples become messages with the Ségur headers.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::{run, stderr};

fn compose(example: &str, out: &std::path::Path) -> std::process::Output {
    let json = format!("{}/examples/compose/{example}", env!("CARGO_MANIFEST_DIR"));
    run(&[
        "compose",
        "--json",
        &json,
        "--out",
        out.to_str().unwrap(),
        "--nil",
        "DEV935997",
    ])
}

#[test]
fn the_cda_example_composes_with_segur_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("message.eml");
    let o = compose("cda-to-professional.json", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let raw = std::fs::read_to_string(&out).unwrap();
    let head = &raw[..raw.find("\r\n\r\n").expect("a header block")];
    assert!(head.contains("\r\nX-MSS-NIL: DEV935997"), "{head}");
    assert!(head.contains("X-MSS-CODECDA: "), "{head}");
    assert!(head.contains("X-MSS-INS: O"), "{head}");
    assert!(head.contains("Disposition-Notification-To: "), "{head}");
    assert!(raw.contains("name=\"IHE_XDM.zip\""), "no XDM attachment");
    assert!(stderr(&o).starts_with("mss: wrote "), "{}", stderr(&o));
}

#[test]
fn the_patient_example_ends_the_exchange() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fin.eml");
    let o = compose("patient-end-of-exchange.json", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let raw = std::fs::read_to_string(&out).unwrap();
    assert!(raw.contains("\r\nX-MSS-MES: FIN\r\n"), "{raw}");
    assert!(raw.contains("@patient.mssante.fr"));
}

#[test]
fn a_bad_request_writes_nothing_and_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bad.json");
    let good = std::fs::read_to_string(format!(
        "{}/examples/compose/cda-to-professional.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["recipients"]["to"] = serde_json::json!([]);
    v["recipients"]["cc"] = serde_json::json!([]);
    std::fs::write(&json, v.to_string()).unwrap();
    let out = tmp.path().join("never.eml");
    let o = run(&[
        "compose",
        "--json",
        json.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--nil",
        "DEV1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("recipients"), "{}", stderr(&o));
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temp file left behind"
    );
}
