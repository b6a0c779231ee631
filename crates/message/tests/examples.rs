//! The vendor examples stay consistent: each request carries, byte for byte, the CDA R2 document
//! stored beside it, and that document has the realistic header the brief asks for.

mod common;

use mss_message::{Content, InsAuthority, cda};

fn check(json: &str, xml: &str, code: &str, ins: &str) {
    let req = common::example(json);
    let beside = std::fs::read_to_string(common::example_path(xml)).expect("sample CDA");
    let Content::Text(inline) = &req.documents[0].cda else {
        panic!("{json}: the CDA is carried as text")
    };
    assert_eq!(inline, &beside, "{json} must embed {xml} unchanged");
    let h = cda::parse_header(beside.as_bytes()).expect("sample CDA is valid");
    assert_eq!(h.code.code, code);
    assert_eq!(h.code.code_system, "2.16.840.1.113883.6.1", "LOINC");
    assert_eq!(h.patient_ins(), Some((ins, InsAuthority::Test)));
    let author = h
        .author
        .as_ref()
        .and_then(|a| a.id.as_ref())
        .expect("author id");
    assert_eq!(author.root, "1.2.250.1.71.4.2.1");
    assert!(
        author
            .extension
            .as_deref()
            .is_some_and(|x| x.starts_with('8') && x.len() == 12)
    );
    let custodian = h
        .custodian
        .as_ref()
        .and_then(|c| c.id.as_ref())
        .expect("custodian id");
    assert_eq!(custodian.root, "1.2.250.1.71.4.2.2", "FINESS-based IDNST");
    assert!(mss_message::Ins::parse(ins).is_ok());
    assert_eq!(req.patient.as_ref().map(|p| p.ins.as_str()), Some(ins));
}

#[test]
fn cda_to_professional_example() {
    check(
        "cda-to-professional.json",
        "cda-to-professional.xml",
        "11488-4",
        "279037505612309",
    );
    let req = common::example("cda-to-professional.json");
    assert!(req.receipts.mdn);
    assert!(req.patient.as_ref().is_some_and(|p| p.qualified));
}

#[test]
fn patient_end_of_exchange_example() {
    check(
        "patient-end-of-exchange.json",
        "patient-end-of-exchange.xml",
        "11502-2",
        "185072A00401797",
    );
    let req = common::example("patient-end-of-exchange.json");
    assert!(req.end_of_exchange);
    assert_eq!(req.recipients.to, ["185072A00401797@patient.mssante.fr"]);
}
