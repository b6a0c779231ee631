//! The MDM the PFI writes to the DPI for a received document (docs/mssante.md H2), field by field
//! against the receiving guide's profile: a new document (T02), a replacement (T10 with TXA-13), a
//! withdrawal (T04, ORC-1 CA), the sender, recipient and Reply-To PRT, the restriction OBX.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use mss_hl7::pfi::receiving::{Sending, documents, mdm};

const MAILBOX: &str = "pfi@hopital.mssante.fr";

fn request() -> mss_message::ComposeRequest {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/compose/cda-to-professional.json"
    );
    let mut req: mss_message::ComposeRequest =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    req.recipients.to = vec![MAILBOX.into()];
    req.recipients.cc.clear();
    req.reply_to = Some("secretariat.cardio@chu-exemple.mssante.fr".into());
    req
}

fn cda(req: &mss_message::ComposeRequest) -> String {
    match &req.documents[0].cda {
        mss_message::Content::Text(t) => t.clone(),
        mss_message::Content::Base64(_) => panic!("the example's CDA is text"),
    }
}

/// The MDM of the first document of the message `req` composes (the action read from its archive),
/// as text with `\n` between segments and the base64 values cut.
fn written(req: &mss_message::ComposeRequest, restriction: Option<&str>) -> String {
    let cfg = mss_message::ComposeConfig::new("DEV935997");
    let now = time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
    let raw = mss_message::compose_with(req, &cfg, &mut mss_message::Env::fixed(now, 7))
        .unwrap()
        .raw;
    let read = mss_message::read_message(&raw).unwrap();
    let docs = documents(&read);
    assert_eq!(docs.len(), 1);
    let (doc, action) = docs[0];
    let mut doc = doc.clone();
    if let Some(code) = restriction {
        doc.entry.confidentiality.push(mss_message::metadata::Code {
            code: code.into(),
            scheme: "1.2.250.1.213.1.1.4.13".into(),
            display: String::new(),
        });
    }
    let from = Sending {
        application: "PFI".into(),
        facility: "CH".into(),
        receiving_application: "DPI".into(),
        receiving_facility: "CH".into(),
    };
    let m = mdm(
        &read,
        MAILBOX,
        &doc,
        action,
        "MSS7D1",
        &from,
        "20261206100000",
    );
    let text = m.to_text().replace('\r', "\n");
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    assert!(
        text.contains(&b64(&cda(req))),
        "the CDA in base64, byte for byte"
    );
    // python-hl7 reads every MDM in tests/hl7.rs; here the fields, the base64 values cut
    text.lines()
        .map(|l| match l.find("^Base64^") {
            Some(i) => {
                let rest = &l[i + "^Base64^".len()..];
                format!("{}^Base64^…{}", &l[..i], &rest[rest.find('|').unwrap()..])
            }
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const T02: &str = "MSH|^~\\&|PFI|CH|DPI|CH|20261206100000||MDM^T02^MDM_T02|MSS7D1|P|2.6|||||FRA|UNICODE UTF-8|||1.1^CISIS_CDA_HL7_LPS
EVN||20261206100000
PID|||279037505612309^^^&1.2.250.1.213.1.4.10&ISO^INS~PAT-000381^^^&1.2.250.1.999.8.1.3&ISO^PI||DURAND^Camille^^^^^L||19790315|F
PV1|1|N
ORC|NW
OBR|1|||11488-4^CR de consultation^LN
TXA|1|11488-4|TEXT|20261120153000||||||||CR-2026-004217^^1.2.250.1.999.8.1.1^ISO|||||AU
OBX|1|ED|11488-4^CR de consultation^LN||^text^XML^Base64^…||||||F
PRT||UC||SB^Send by^participation|||||||||||^^X.400^marie.martin@medecin.mssante.fr
PRT||UC||RCT^Result Copies To^participation|||||||||||^^X.400^pfi@hopital.mssante.fr
PRT||UC||REPLY^Reply To^participation|||||||||||^^X.400^secretariat.cardio@chu-exemple.mssante.fr
OBX|2|ED|MESSAGE-ID^XDM/1.0/DDM+CR de consultation DURAND Camille 15/03/1979||^text^^Base64^…||||||F
OBX|3|CWE|MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F
OBX|4|CWE|INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F
OBX|5|CWE|INVISIBLE_REP_LEGAUX^Non visible par les représentants Légaux du patient^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F
OBX|6|CWE|MODIF_CONF_CODE^Modification Confidentiality Code^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F";

#[test]
fn a_new_document_is_an_mdm_t02_as_the_guide_writes_it() {
    let text = written(&request(), None);
    let id = text
        .split("OBX|2|ED|")
        .nth(1)
        .unwrap()
        .split('^')
        .next()
        .unwrap()
        .to_owned();
    assert!(id.ends_with("@medecin.mssante.fr"), "{id}");
    assert_eq!(text.replace(&id, "MESSAGE-ID"), T02);
}

#[test]
fn a_replacement_is_a_t10_naming_its_parent_and_a_withdrawal_a_t04() {
    // version 2 of the report, replacing version 1 (the CDA's relatedDocument)
    let mut req = request();
    let v1 = cda(&req);
    let at = v1.find("<recordTarget").unwrap();
    let mut v2 = v1.replacen("CR-2026-004217", "CR-2026-004218", 1);
    v2.insert_str(
        at,
        "<relatedDocument typeCode=\"RPLC\"><parentDocument><id root=\"1.2.250.1.999.8.1.1\" \
         extension=\"CR-2026-004217\"/></parentDocument></relatedDocument>\n  ",
    );
    req.documents[0].cda = mss_message::Content::Text(v2);
    let text = written(&req, None);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("|MDM^T10^MDM_T02|"), "{}", lines[0]);
    assert_eq!(lines[4], "ORC|RO");
    assert_eq!(
        lines[6],
        "TXA|1|11488-4|TEXT|20261120153000||||||||CR-2026-004218^^1.2.250.1.999.8.1.1^ISO|\
         CR-2026-004217^^1.2.250.1.999.8.1.1^ISO||||AU"
    );
    assert!(lines[7].ends_with("||||||C"), "{}", lines[7]);

    // the first version withdrawn by its author, hidden from the patient
    let mut req = request();
    req.documents[0].withdraw = true;
    req.reply_to = None;
    let text = written(&req, Some("INVISIBLE_PATIENT"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("|MDM^T04^MDM_T02|"), "{}", lines[0]);
    assert_eq!(lines[4], "ORC|CA");
    assert_eq!(
        lines[6],
        "TXA|1|11488-4|TEXT|20261120153000||||||||CR-2026-004217^^1.2.250.1.999.8.1.1^ISO|||||AU"
    );
    assert!(lines[7].ends_with("||||||D"), "{}", lines[7]);
    // no Reply-To: no REPLY participation
    assert_eq!(lines.iter().filter(|l| l.starts_with("PRT|")).count(), 2);
    assert_eq!(
        lines[12],
        "OBX|4|CWE|INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F"
    );
}
