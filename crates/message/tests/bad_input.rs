//! Bad input: each refusal names the field and the reason, and nothing is produced.

mod common;

use common::{config, env, example};
use mss_message::{ComposeConfig, ComposeRequest, Content, Error, compose_with};

fn err(req: &ComposeRequest) -> String {
    err_with(req, &config())
}

fn err_with(req: &ComposeRequest, cfg: &ComposeConfig) -> String {
    match compose_with(req, cfg, &mut env()) {
        Ok(_) => panic!("composed a message that should have been refused"),
        Err(e) => e.to_string(),
    }
}

fn pro() -> ComposeRequest {
    example("cda-to-professional.json")
}

fn to_patient() -> ComposeRequest {
    example("patient-end-of-exchange.json")
}

#[test]
fn malformed_cda_is_refused_by_field() {
    let mut req = pro();
    req.documents[0].cda = Content::Text("Compte rendu en texte libre".into());
    assert_eq!(
        err(&req),
        "documents[0].cda.content: text outside the root element"
    );

    req.documents[0].cda = Content::Text(
        "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>CR</title></ClinicalDocument>".into(),
    );
    assert_eq!(
        err(&req),
        "documents[0].cda.content: the CDA header has no <code> (document type)"
    );

    req.documents[0].cda = Content::Text(
        "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><code code=\"1\" codeSystem=\"2\"><title>"
            .into(),
    );
    assert!(
        err(&req).starts_with("documents[0].cda.content: not well-formed XML at byte")
            || err(&req)
                == "documents[0].cda.content: unexpected end of document: unclosed elements",
        "{}",
        err(&req)
    );

    req.documents[0].cda = Content::Base64("PD94bWwg*".into());
    assert_eq!(
        err(&req),
        "documents[0].cda.base64: not base64: Invalid symbol 42, offset 8."
    );
}

#[test]
fn errors_never_quote_document_contents() {
    let mut req = pro();
    req.documents[0].cda = Content::Text(
        "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>SECRET-DIAGNOSTIC</titre></ClinicalDocument>".into(),
    );
    let e = err(&req);
    assert!(
        e.starts_with("documents[0].cda.content: not well-formed XML"),
        "{e}"
    );
    assert!(!e.contains("SECRET"), "{e}");
}

#[test]
fn cda_about_another_patient_is_refused() {
    let mut req = pro();
    req.documents.push(to_patient().documents.remove(0));
    assert_eq!(
        err(&req),
        "documents[1].cda.content: the recordTarget INS differs from patient.ins / patient.ins_authority"
    );
}

#[test]
fn documents_need_a_patient_and_a_class_code() {
    let mut req = pro();
    req.patient = None;
    assert_eq!(
        err(&req),
        "patient: required when documents are attached (patientId of the XDM metadata)"
    );
    let mut req = pro();
    req.documents[0].class_code.coding_scheme = " ".into();
    assert_eq!(err(&req), "documents[0].class_code.coding_scheme: required");
}

#[test]
fn unqualified_ins_cannot_reach_a_patient() {
    let mut req = to_patient();
    if let Some(p) = req.patient.as_mut() {
        p.qualified = false;
    }
    assert_eq!(
        err(&req),
        "recipients.to[0]: 185072A00401797@patient.mssante.fr: a patient address must come from a qualified INS (patient.qualified is false)"
    );
}

#[test]
fn patient_addresses_must_be_a_valid_ins_of_this_patient() {
    let mut req = to_patient();
    req.recipients.to = vec!["185072A00401798@patient.mssante.fr".into()];
    assert_eq!(
        err(&req),
        "recipients.to[0]: 185072A00401798@patient.mssante.fr: a Mon espace santé address is <INS>@patient.mssante.fr; the INS key (last 2 digits) does not match"
    );
    req.recipients.to = vec!["12345@patient.mssante.fr".into()];
    assert_eq!(
        err(&req),
        "recipients.to[0]: 12345@patient.mssante.fr: a Mon espace santé address is <INS>@patient.mssante.fr; an INS has 15 characters, found 5"
    );
    req.recipients.to = vec!["185072A00401797@patient.mssante.fr".into()];
    req.recipients.cc = vec!["279037505612309@patient.mssante.fr".into()];
    assert_eq!(
        err(&req),
        "recipients.cc[0]: 279037505612309@patient.mssante.fr: not the address of the patient of this message (patient.ins)"
    );
    let mut req = to_patient();
    req.patient = None;
    req.documents.clear();
    assert_eq!(
        err(&req),
        "recipients.to[0]: 185072A00401797@patient.mssante.fr: writing to a patient needs the patient's identity (patient)"
    );
}

#[test]
fn unknown_recipient_domain_is_named() {
    let mut req = pro();
    req.recipients.cc = vec!["dr.house@princeton-plainsboro.example.org".into()];
    assert_eq!(
        err(&req),
        "recipients.cc[0]: dr.house@princeton-plainsboro.example.org: domain princeton-plainsboro.example.org is not in the MSSanté whitelist"
    );
    // Without a whitelist configured only mssante.fr and its sub-domains are inside (issue 17).
    let unconfigured = compose_with(&req, &ComposeConfig::new("DEV935997"), &mut env())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        unconfigured.starts_with("recipients.cc[0]: dr.house@princeton-plainsboro.example.org: domain princeton-plainsboro.example.org is outside the espace de confiance")
            && unconfigured.contains("mss whitelist update"),
        "{unconfigured}"
    );
}

#[test]
fn oversized_patient_message_is_refused_before_and_after_building() {
    // Before building: base64 attachments alone exceed the limit.
    let mut req = to_patient();
    req.attachments.push(mss_message::Attachment {
        filename: "imagerie.pdf".into(),
        content_type: "application/pdf".into(),
        content: Content::Base64("A".repeat(25_000_004)),
    });
    assert_eq!(
        err(&req),
        "message: at least 25000284 bytes: a message to Mon espace santé is limited to 25000000 bytes"
    );
    // After building, with a small limit: the exact size is given.
    let mut cfg = config();
    cfg.patient_max_bytes = 5_000;
    let e = err_with(&to_patient(), &cfg);
    assert!(
        e.starts_with("message: ")
            && e.ends_with(" bytes: a message to Mon espace santé is limited to 5000 bytes"),
        "{e}"
    );
    // The same size to a professional is not limited by the MES rule.
    let mut req = pro();
    req.attachments.push(mss_message::Attachment {
        filename: "imagerie.pdf".into(),
        content_type: "application/pdf".into(),
        content: Content::Base64("JVBE".repeat(10)),
    });
    assert!(compose_with(&req, &cfg, &mut env()).is_ok());
}

#[test]
fn empty_recipients_are_refused() {
    let mut req = pro();
    req.recipients = Default::default();
    assert_eq!(
        err(&req),
        "recipients: at least one recipient (to, cc or bcc) is required"
    );
    req.recipients.to = vec!["not an address".into()];
    assert_eq!(
        err(&req),
        "recipients.to[0]: not an e-mail address: not an address"
    );
}

#[test]
fn request_fields_are_checked() {
    type Change = Box<dyn Fn(&mut ComposeRequest)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|r| r.sender.last_name = None),
            "sender.last_name: required",
        ),
        (
            Box::new(|r| r.sender.first_name = Some("Marie_Anne".into())),
            "sender.first_name: must not contain '_' (the separator of the sender label)",
        ),
        (
            Box::new(|r| r.sender.entity = Some("Cabinet\r\nBcc: x@y.fr".into())),
            "sender.entity: control characters (line breaks...) are not allowed",
        ),
        (
            Box::new(|r| r.sender.address = "marie.martin@".into()),
            "sender.address: invalid domain: marie.martin@",
        ),
        (
            Box::new(|r| {
                if let Some(p) = r.patient.as_mut() {
                    p.birth_date = "19791332".into()
                }
            }),
            "patient.birth_date: expected a date YYYYMMDD",
        ),
        (
            Box::new(|r| {
                if let Some(p) = r.patient.as_mut() {
                    p.ins = "27903750561230".into()
                }
            }),
            "patient.ins: an INS has 15 characters, found 14",
        ),
        (
            Box::new(|r| {
                if let Some(p) = r.patient.as_mut() {
                    p.birth_name = " ".into()
                }
            }),
            "patient.birth_name: required",
        ),
        (
            Box::new(|r| r.subject = Some("CR de Mme Durand".into())),
            "subject: a message carrying a patient document has the subject XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>: omit subject to have it derived",
        ),
        (
            Box::new(|r| r.end_of_exchange = true),
            "end_of_exchange: only for a message to a patient's @patient.mssante.fr address",
        ),
        (
            Box::new(|r| r.in_reply_to = Some("not-a-message-id".into())),
            "in_reply_to: expected a Message-ID <left@right>",
        ),
        (
            Box::new(|r| {
                r.documents[0].rendering = Some(mss_message::Rendering {
                    content: Content::Base64("aGVsbG8=".into()),
                    filename: None,
                    file_number: None,
                })
            }),
            "documents[0].rendering.content: not a PDF (no %PDF- header)",
        ),
        (
            Box::new(|r| {
                r.attachments.push(mss_message::Attachment {
                    filename: "IHE_XDM.ZIP".into(),
                    content_type: "application/zip".into(),
                    content: Content::Text("x".into()),
                })
            }),
            "attachments[0].filename: IHE_XDM.zip is built by mss from documents[]",
        ),
        (
            Box::new(|r| {
                r.attachments.push(mss_message::Attachment {
                    filename: "a.txt".into(),
                    content_type: "text".into(),
                    content: Content::Text("x".into()),
                })
            }),
            "attachments[0].content_type: expected a MIME type type/subtype",
        ),
    ];
    for (change, expected) in cases {
        let mut req = pro();
        change(&mut req);
        assert_eq!(err(&req), expected);
    }
}

#[test]
fn duplicate_document_ids_are_refused() {
    let mut req = pro();
    req.documents.push(req.documents[0].clone());
    assert_eq!(
        err(&req),
        "documents[1].cda.content: same ClinicalDocument/id as an earlier document"
    );
}

#[test]
fn subject_style_end_of_exchange_conflicts_are_named() {
    let mut cfg = config();
    cfg.end_of_exchange = mss_message::EndOfExchangeStyle::Subject;
    assert_eq!(
        err_with(&to_patient(), &cfg),
        "end_of_exchange: in the subject style the subject must be exactly [FIN]: send the documents in an earlier message"
    );
    let mut req = to_patient();
    req.documents.clear();
    req.subject = Some("Fin".into());
    assert_eq!(
        err_with(&req, &cfg),
        "subject: end of exchange in the subject style needs the subject to be exactly [FIN] (or omitted)"
    );
}

#[test]
fn configuration_errors_are_named() {
    let mut cfg = config();
    cfg.product_reference = String::new();
    assert_eq!(
        err_with(&pro(), &cfg),
        "config.product_reference: the NIL product reference is required: 1 to 64 letters, digits, '.', '_' or '-'"
    );
    let mut cfg = config();
    cfg.codecda_separator = "\n".into();
    assert_eq!(
        err_with(&pro(), &cfg),
        "config.codecda_separator: 1 to 3 printable non-alphanumeric characters"
    );
}

#[test]
fn errors_expose_their_field() {
    let mut req = pro();
    req.recipients.cc = vec!["x@unknown.example".into()];
    match compose_with(&req, &config(), &mut env()) {
        Err(e @ Error::Refused { .. }) => assert_eq!(e.field(), Some("recipients.cc[0]")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_with_unknown_fields_or_missing_class_code_is_refused() {
    let text =
        std::fs::read_to_string(common::example_path("cda-to-professional.json")).expect("example");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["documents"][0]
        .as_object_mut()
        .map(|d| d.remove("class_code"));
    let e = serde_json::from_value::<ComposeRequest>(v.clone())
        .err()
        .map(|e| e.to_string());
    assert_eq!(e.as_deref(), Some("missing field `class_code`"));
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["sender"]["nickname"] = "Doc".into();
    let e = serde_json::from_value::<ComposeRequest>(v)
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.starts_with("unknown field `nickname`")),
        "{e:?}"
    );
}
