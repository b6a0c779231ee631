//! An independent reader: Python's standard library (`email`, `zipfile`, `xml.etree`, `hashlib`)
//! opens what mss writes and checks the ebRIM structure (tests/py/read_eml.py).

mod common;

use common::{config, env, example};
use mss_message::compose_with;
use serde_json::{Value, json};
use std::process::Command;

fn python_reads(name: &str) -> Value {
    let m = compose_with(&example(name), &config(), &mut env()).expect("compose");
    let dir = tempfile::tempdir().expect("tempdir");
    let eml = dir.path().join("message.eml");
    std::fs::write(&eml, &m.raw).expect("write eml");
    let script = common::root().join("tests/py/read_eml.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&eml)
        .output()
        .expect("python3 runs (it is part of the toolchain of this project)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python reader refused the message:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("JSON summary")
}

#[test]
fn python_opens_the_professional_message() {
    let v = python_reads("cda-to-professional.json");
    let cda = std::fs::read(common::example_path("cda-to-professional.xml")).expect("sample");
    assert_eq!(v["errors"], json!([]));
    assert_eq!(
        v["from"],
        "Dr_Marie_MARTIN_Cabinet de cardiologie des Brotteaux <marie.martin@medecin.mssante.fr>"
    );
    assert_eq!(
        v["subject"],
        "XDM/1.0/DDM+CR de consultation DURAND Camille 15/03/1979"
    );
    assert_eq!(v["x_mss_nil"], "DEV935997");
    assert_eq!(v["x_mss_codecda"], "11488-4");
    assert_eq!(v["x_mss_ins"], "O");
    assert_eq!(v["x_mss_mes"], Value::Null);
    assert_eq!(v["content_type"], "multipart/mixed");
    assert_eq!(v["text_starts"], "Cher confrère,\n\nVeui");
    assert_eq!(v["xdm_content_type"], "application/zip");
    assert_eq!(v["xdm_transfer_encoding"], "base64");
    assert_eq!(
        v["zip_names"],
        json!([
            "README.TXT",
            "INDEX.HTM",
            "IHE_XDM/",
            "IHE_XDM/SUBSET01/",
            "IHE_XDM/SUBSET01/METADATA.XML",
            "IHE_XDM/SUBSET01/DOC00001.XML"
        ])
    );
    assert_eq!(
        v["ss_patient_id"],
        "279037505612309^^^&1.2.250.1.213.1.4.10&ISO^NH"
    );
    assert_eq!(
        v["intended_recipients"],
        json!([
            "||^^Internet^jean.dupont@chu-exemple.mssante.fr",
            "||^^Internet^secretariat.cardio@chu-exemple.mssante.fr"
        ])
    );
    let doc = &v["documents"][0];
    assert_eq!(doc["uri"], "DOC00001.XML");
    assert_eq!(doc["size"], cda.len());
    assert_eq!(doc["type_code"], "11488-4");
    assert_eq!(doc["cda_code_matches"], true);
    assert_eq!(doc["unique_id"], "1.2.250.1.999.8.1.1^CR-2026-004217");
    assert_eq!(
        doc["source_patient_info"],
        json!(["PID-5|DURAND^Camille^^^^^L", "PID-7|19790315", "PID-8|F"])
    );
}

#[test]
fn python_opens_the_patient_message() {
    let v = python_reads("patient-end-of-exchange.json");
    assert_eq!(v["errors"], json!([]));
    assert_eq!(v["to"], "185072A00401797@patient.mssante.fr");
    assert_eq!(v["x_mss_mes"], "FIN");
    assert_eq!(
        v["from"],
        "Dr_Paul_LEROY_Laboratoire du Cours Napoléon <paul.leroy@labo-biologie-exemple.mssante.fr>"
    );
    assert_eq!(
        v["documents"][0]["patient_id"],
        "185072A00401797^^^&1.2.250.1.213.1.4.10&ISO^NH"
    );
}

/// The Python checks can fail: a hand-made message with a wrong hash, schema order and no README.
#[test]
fn python_reader_catches_violations() {
    use base64::Engine;
    use std::io::Write;
    let m =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let r = mss_message::read_message(&m.raw).expect("read");
    let files = common::unzip(&r.attachments[r.xdm[0].attachment].content);
    let meta = String::from_utf8(files[4].1.clone()).expect("utf8");
    let sha = r.xdm[0].archive.as_ref().expect("ok").subsets[0].documents[0]
        .entry
        .hash
        .clone();
    let broken = meta
        .replace(&sha, &"0".repeat(40))
        .replacen("   <rim:Name>\n    <rim:LocalizedString xml:lang=\"fr-FR\" charset=\"UTF-8\" value=\"Compte rendu de consultation de cardiologie\"/>\n   </rim:Name>\n", "", 1)
        .replacen("   <rim:Slot name=\"URI\">", "   <rim:Name>\n    <rim:LocalizedString value=\"x\"/>\n   </rim:Name>\n   <rim:Slot name=\"URI\">", 1);
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in [
        ("INDEX.HTM", files[1].1.as_slice()),
        ("IHE_XDM/SUBSET01/METADATA.XML", broken.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC00001.XML", &files[5].1),
    ] {
        z.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("start");
        z.write_all(content).expect("write");
    }
    let zip = z.finish().expect("zip").into_inner();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
    let eml = format!(
        "From: a@medecin.mssante.fr\r\nTo: b@chu-exemple.mssante.fr\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\n\
Content-Type: application/zip; name=\"IHE_XDM.zip\"\r\nContent-Disposition: attachment; filename=\"IHE_XDM.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.eml");
    std::fs::write(&path, eml).expect("write");
    let out = Command::new("python3")
        .arg(common::root().join("tests/py/read_eml.py"))
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        errors,
        [
            "missing README.TXT",
            "ExtrinsicObject: Slot out of schema order",
            "hash mismatch for DOC00001.XML"
        ]
    );
}
