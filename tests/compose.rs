//! `mss compose` end to end: the shipped examples become messages with the Ségur headers.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::{run, stderr, stdout};

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

#[test]
fn what_mss_composes_passes_mss_check_and_a_fault_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let pro = tmp.path().join("pro.eml");
    let fin = tmp.path().join("fin.eml");
    assert!(compose("cda-to-professional.json", &pro).status.success());
    assert!(
        compose("patient-end-of-exchange.json", &fin)
            .status
            .success()
    );
    let (pro_s, fin_s) = (pro.to_str().unwrap(), fin.to_str().unwrap());

    let o = run(&["check", "--data", data, pro_s, fin_s]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "{pro_s}: conformant (0 error(s), 0 warning(s))\n{fin_s}: conformant (0 error(s), 0 warning(s))\n"
        )
    );

    // Without X-MSS-NIL: one error, exit status 1, the same finding in JSON.
    let raw = std::fs::read_to_string(&pro).unwrap();
    let broken = tmp.path().join("no-nil.eml");
    std::fs::write(&broken, raw.replacen("X-MSS-NIL: DEV935997\r\n", "", 1)).unwrap();
    let b = broken.to_str().unwrap();
    let o = run(&["check", "--data", data, "--json", pro_s, b]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        stdout(&o).starts_with(&format!(
            "{{\"file\":{},\"errors\":0,\"warnings\":0,\"findings\":[]}}\n",
            serde_json::Value::from(pro_s)
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(lines[0]["errors"], 0);
    assert_eq!(
        lines[1],
        serde_json::json!({
            "file": b,
            "errors": 1,
            "warnings": 0,
            "findings": [{
                "rule": "ECO.2.4.3",
                "severity": "error",
                "where": "header X-MSS-NIL",
                "message": "missing: every message carries the product reference (NIL) given at the product's declaration",
            }],
        })
    );
    assert_eq!(stderr(&o), "mss: error: 1 of 2 message(s) not conformant\n");

    // From stdin, human output.
    let mut child = common::mss()
        .args(["check", "--data", data, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        raw.replacen("X-MSS-NIL: DEV935997\r\n", "", 1).as_bytes(),
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "-: not conformant (1 error(s), 0 warning(s))\n  error   ECO.2.4.3  header X-MSS-NIL: missing: every message carries the product reference (NIL) given at the product's declaration\n"
    );

    // Usage errors: no file; stdin twice.
    assert_eq!(run(&["check"]).status.code(), Some(2));
    let o = run(&["check", "--data", data, "-", "-"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o), "error: stdin (-) can be read only once\n");
}
