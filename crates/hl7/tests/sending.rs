//! The sending guide's rules on small messages (docs/mssante.md H1): the flag matrix row by row, the
//! patient's own address from a qualified INS, the FIN note, Latin-9 messages.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use mss_hl7::pfi::sending::{Audience, Context, read};
use mss_hl7::{AckCode, Charset, Message};

const CDA: &str = "PENsaW5pY2FsRG9jdW1lbnQvPg=="; // <ClinicalDocument/>

fn mdm(flags: &[(&str, &str)], extra: &str) -> String {
    let mut m = format!(
        "MSH|^~\\&|DPI|CH|PFI|CH|20260101||MDM^T02^MDM_T02|42|P|2.6|||||FRA|UNICODE UTF-8\r\
         PID|||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||DUPONT^Éloïse^^^^^L||19790328|F||||||||||||||||||||||||VALI\r\
         PV1|1|N\r\
         ORC|NW\r\
         OBR|1|||11488-4^CR^LN\r\
         TXA|1|11488-4|TEXT\r\
         OBX|1|ED|11488-4^CR^LN||^text^XML^Base64^{CDA}||||||F\r\
         PRT||UC||RCT^^participation|||||||||||^NET^X.400^dr.b@ch.mssante.fr\r"
    );
    for (i, (name, v)) in flags.iter().enumerate() {
        m.push_str(&format!(
            "OBX|{}|CWE|{name}^{name}^MetaDMPMSS||{v}^^expandedYes-NoIndicator||||||F\r",
            i + 2
        ));
    }
    m.push_str(extra);
    m
}

fn ctx() -> Context {
    Context {
        sender_address: "pfi@ch.mssante.fr".into(),
        entity: None,
        class_code: mss_hl7::pfi::Hl7Config::default().class_code(),
    }
}

fn refusal(text: &str) -> (AckCode, u16, String, String) {
    let e = read(&Message::parse(text.as_bytes()).unwrap(), &ctx()).unwrap_err();
    (e.code, e.fault.code, e.fault.location, e.fault.text)
}

#[test]
fn the_matrix_row_by_row() {
    let ps = [
        ("MASQUE_PS", "N"),
        ("INVISIBLE_PATIENT", "Y"),
        ("INVISIBLE_REP_LEGAUX", "N"),
        ("DESTMSSANTEPS", "Y"),
        ("DESTMSSANTEPAT", "N"),
    ];
    let out = read(&Message::parse(mdm(&ps, "").as_bytes()).unwrap(), &ctx()).unwrap();
    assert_eq!(out.kind, "MDM^T02");
    assert_eq!(out.parts.len(), 1);
    assert_eq!(out.parts[0].audience, Audience::Professionals);
    assert_eq!(out.parts[0].request.recipients.to, ["dr.b@ch.mssante.fr"]);
    assert_eq!(out.parts[0].request.sender.entity.as_deref(), Some("CH"));
    // INVISIBLE_PATIENT = Y: the TRE_A07 confidentialityCode of the document
    let codes = &out.parts[0].request.documents[0].confidentiality_codes;
    assert_eq!(
        codes
            .iter()
            .map(|c| (c.code.as_str(), c.coding_scheme.as_str()))
            .collect::<Vec<_>>(),
        [("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13")]
    );
    // professionals only, but the document visible to the patient: not in the matrix
    let mut visible = ps;
    visible[1].1 = "N";
    let (code, err3, at, text) = refusal(&mdm(&visible, ""));
    // ERR-2 counts OBX segments: the document is OBX 1, the first flag OBX 2
    assert_eq!((code, err3, at.as_str()), (AckCode::AE, 207, "OBX^3^5"));
    assert_eq!(
        text,
        "INVISIBLE_PATIENT = N is not allowed when sending to professionals only: the guide's matrix \
         wants MASQUE_PS = N, INVISIBLE_PATIENT = Y, INVISIBLE_REP_LEGAUX = N"
    );
    // patient only: CONNEXION_SECRETE must be N; the PS recipient must then go
    let patient = [
        ("INVISIBLE_PATIENT", "N"),
        ("CONNEXION_SECRETE", "Y"),
        ("DESTMSSANTEPS", "N"),
        ("DESTMSSANTEPAT", "Y"),
    ];
    let (_, _, at, text) = refusal(&mdm(&patient, ""));
    assert_eq!(at, "OBX^3^5");
    assert!(
        text.starts_with("CONNEXION_SECRETE = Y is not allowed when sending to the patient only")
    );
    let mut patient = patient;
    patient[1].1 = "N";
    let (_, _, at, text) = refusal(&mdm(&patient, ""));
    assert_eq!(at, "PRT^1^15");
    assert_eq!(
        text,
        "dr.b@ch.mssante.fr is a recipient but DESTMSSANTEPS is N"
    );
    // nothing for MSSanté
    let (_, err3, _, text) = refusal(&mdm(&[("DESTDMP", "Y")], ""));
    assert_eq!(err3, 207);
    assert!(text.starts_with("DESTMSSANTEPS and DESTMSSANTEPAT are both N"));
    // a flag that is neither Y nor N
    let (_, err3, at, _) = refusal(&mdm(&[("DESTMSSANTEPS", "O")], ""));
    assert_eq!((err3, at.as_str()), (103, "OBX^2^5"));
}

#[test]
fn the_patient_is_written_to_at_the_address_of_the_qualified_ins_with_fin() {
    let flags = [
        ("INVISIBLE_PATIENT", "N"),
        ("MASQUE_PS", "N"),
        ("INVISIBLE_REP_LEGAUX", "N"),
        ("DESTMSSANTEPS", "Y"),
        ("ACK_LECTURE_MSS", "Y"),
        ("DESTMSSANTEPAT", "Y"),
    ];
    // the note follows the DESTMSSANTEPAT OBX
    let text = mdm(&flags, "NTE|1|||FIN\r");
    let out = read(&Message::parse(text.as_bytes()).unwrap(), &ctx()).unwrap();
    assert_eq!(out.parts.len(), 2);
    let patient = &out.parts[1];
    assert_eq!(patient.audience, Audience::Patient);
    assert_eq!(
        patient.request.recipients.to,
        ["279035121518989@patient.mssante.fr"]
    );
    assert!(patient.request.end_of_exchange);
    assert!(!out.parts[0].request.end_of_exchange);
    assert!(patient.request.receipts.mdn && !patient.request.receipts.dsn);
    let p = patient.request.patient.as_ref().unwrap();
    assert_eq!(
        (
            p.birth_name.as_str(),
            p.first_given_name.as_str(),
            p.qualified
        ),
        ("DUPONT", "Éloïse", true)
    );
    // not qualified: no address can be made
    let unqualified = text.replace("|VALI", "|PROV");
    let (_, _, at, _) = refusal(&unqualified);
    assert_eq!(at, "PID^1^32");
}

#[test]
fn latin9_messages_read_alike_and_versions_are_checked() {
    let flags = [("INVISIBLE_PATIENT", "Y"), ("DESTMSSANTEPS", "Y")];
    let text = mdm(&flags, "").replace("UNICODE UTF-8", "8859/15");
    let bytes = Charset::Latin9.encode(&text);
    assert_eq!(bytes.len(), text.chars().count());
    let out = read(&Message::parse(&bytes).unwrap(), &ctx()).unwrap();
    let p = out.parts[0].request.patient.as_ref().unwrap();
    assert_eq!(p.first_given_name, "Éloïse");
    let (code, err3, at, _) = refusal(&mdm(&flags, "").replace("|2.6|", "|2.5|"));
    assert_eq!((code, err3, at.as_str()), (AckCode::AE, 203, "MSH^1^12"));
    let (code, err3, _, _) = refusal(&mdm(&flags, "").replace("MDM^T02", "MDM^T01"));
    assert_eq!((code, err3), (AckCode::AR, 201));
}

/// T10 replaces the document TXA-13 names (or the CDA's relatedDocument); T04 withdraws it with a body
/// saying so; OBX-11 must agree with the event; an ORU says it in OBX-11 (docs/mssante.md H1).
#[test]
fn replacements_and_deletions_follow_the_event_and_obx_11() {
    let flags = [("INVISIBLE_PATIENT", "Y"), ("DESTMSSANTEPS", "Y")];
    let parse = |t: &str| read(&Message::parse(t.as_bytes()).unwrap(), &ctx());
    let t02 = mdm(&flags, "");
    let doc = |o: &mss_hl7::pfi::sending::Outgoing| o.parts[0].request.documents[0].clone();
    let out = parse(&t02).unwrap();
    assert_eq!((doc(&out).replaces, doc(&out).withdraw), (None, false));

    // T10: TXA-13 as the LPS guide writes it (extension^^root^ISO), and as an OID alone
    let t10 = t02
        .replace("MDM^T02", "MDM^T10")
        .replace("ORC|NW", "ORC|RO")
        .replace(
            "TXA|1|11488-4|TEXT",
            "TXA|1|11488-4|TEXT||||||||||58131^^1.2.250.2345.13^ISO",
        )
        .replace("||||||F\rPRT", "||||||C\rPRT");
    let out = parse(&t10).unwrap();
    assert_eq!(out.kind, "MDM^T10");
    assert_eq!(doc(&out).replaces.as_deref(), Some("1.2.250.2345.13^58131"));
    let oid = t10.replace(
        "58131^^1.2.250.2345.13^ISO",
        "1.2.250.2345.13.58131^Organisation-Y",
    );
    assert_eq!(
        doc(&parse(&oid).unwrap()).replaces.as_deref(),
        Some("1.2.250.2345.13.58131")
    );
    // neither TXA-13 nor a relatedDocument in the CDA: nothing says what is replaced
    let (code, err3, at, text) = refusal(&t10.replace("58131^^1.2.250.2345.13^ISO", ""));
    assert_eq!((code, err3, at.as_str()), (AckCode::AE, 101, "TXA^1^13"));
    assert_eq!(
        text,
        "a replacement names the document it replaces: TXA-13 (parent document) or the CDA's \
         relatedDocument typeCode RPLC"
    );
    // the event and OBX-11 disagree
    let (code, err3, at, text) = refusal(&t10.replace("||||||C\rPRT", "||||||F\rPRT"));
    assert_eq!((code, err3, at.as_str()), (AckCode::AE, 207, "OBX^1^11"));
    assert_eq!(
        text,
        "OBX-11 is \"F\" but MDM^T10 asks a replacement: the document's OBX-11 must be C"
    );

    // T04: the document withdrawn, the body says so
    let t04 = t02
        .replace("MDM^T02", "MDM^T04")
        .replace("ORC|NW", "ORC|CA")
        .replace("||||||F\rPRT", "||||||D\rPRT");
    let out = parse(&t04).unwrap();
    assert_eq!(out.kind, "MDM^T04");
    assert_eq!((doc(&out).replaces, doc(&out).withdraw), (None, true));
    assert_eq!(
        out.parts[0].request.body.text,
        mss_hl7::pfi::sending::WITHDRAWAL_BODY
    );

    // ORU: OBX-11 says it; an unknown status is refused
    let oru = t02
        .replace("MDM^T02^MDM_T02", "ORU^R01^ORU_R01")
        .replace("|2.6|", "|2.5|")
        .replace("||||||F\rPRT", "||||||D\rPRT");
    assert!(doc(&parse(&oru).unwrap()).withdraw);
    let (code, err3, at, _) = refusal(&oru.replace("||||||D\rPRT", "||||||X\rPRT"));
    assert_eq!((code, err3, at.as_str()), (AckCode::AE, 103, "OBX^1^11"));
}
