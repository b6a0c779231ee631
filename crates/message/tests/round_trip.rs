//! Compose -> read: same documents, hashes, patient; receipts built and correlated back.

mod common;

use common::{config, env, example, example_path};
use mss_message::mdn::{MdnDisposition, MdnRequest, build_mdn};
use mss_message::patient::SenderClass;
use mss_message::{InsAuthority, Report, Sex, compose_with, read_message};
use sha1::{Digest, Sha1};
use std::io::Write;

fn sha1_hex(b: &[u8]) -> String {
    Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn professional_message_reads_back() {
    let m =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let r = read_message(&m.raw).expect("read");
    assert_eq!(r.message_id.as_deref(), Some(m.message_id.as_str()));
    assert_eq!(r.from.as_deref(), Some("marie.martin@medecin.mssante.fr"));
    assert_eq!(
        r.from_name.as_deref(),
        Some("Dr_Marie_MARTIN_Cabinet de cardiologie des Brotteaux")
    );
    assert_eq!(r.sender, SenderClass::Professional);
    assert_eq!(r.to, ["jean.dupont@chu-exemple.mssante.fr"]);
    assert_eq!(r.cc, ["secretariat.cardio@chu-exemple.mssante.fr"]);
    assert_eq!(r.mss.nil.as_deref(), Some("DEV935997"));
    assert_eq!(r.mss.codecda, ["11488-4"]);
    assert_eq!(r.mss.ins_qualified, Some(true));
    assert!(!r.end_of_exchange);
    assert_eq!(
        r.disposition_notification_to.as_deref(),
        Some("marie.martin@medecin.mssante.fr")
    );
    assert_eq!(
        r.display_subject(),
        "CR de consultation DURAND Camille 15/03/1979"
    );
    assert!(
        r.text
            .as_deref()
            .is_some_and(|t| t.starts_with("Cher confrère,"))
    );

    let archive = r.xdm[0].archive.as_ref().expect("archive verified");
    assert!(archive.has_readme && archive.has_index);
    let docs: Vec<_> = archive.documents().collect();
    assert_eq!(docs.len(), 1);
    let cda = std::fs::read(example_path("cda-to-professional.xml")).expect("sample");
    assert_eq!(docs[0].content, cda);
    assert_eq!(docs[0].entry.hash, sha1_hex(&cda));
    assert_eq!(docs[0].entry.size, cda.len() as u64);
    assert_eq!(docs[0].entry.type_code.code, "11488-4");
    assert_eq!(
        docs[0].entry.unique_id,
        "1.2.250.1.999.8.1.1^CR-2026-004217"
    );
    assert_eq!(docs[0].path, "IHE_XDM/SUBSET01/DOC00001.XML");

    let p = r.patient().expect("patient identity");
    assert_eq!(p.id, "279037505612309");
    assert_eq!(p.authority, Some(InsAuthority::Test));
    assert_eq!(p.birth_name.as_deref(), Some("DURAND"));
    assert_eq!(p.first_given_name.as_deref(), Some("Camille"));
    assert_eq!(p.birth_date.as_deref(), Some("19790315"));
    assert_eq!(p.sex, Some(Sex::F));
}

/// A replacement writes an `RPLC` association to the earlier version's entry, which the reader
/// gives back; a withdrawal writes the CI-SIS Deleted status (docs/mssante.md H1).
#[test]
fn replacement_and_withdrawal_read_back() {
    let original =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let first = read_message(&original.raw).expect("read");
    let first_entry = first.xdm[0]
        .archive
        .as_ref()
        .expect("archive")
        .documents()
        .next()
        .expect("document")
        .entry
        .clone();
    assert_eq!(
        first_entry.entry_uuid,
        mss_message::metadata::document_entry_uuid("1.2.250.1.999.8.1.1^CR-2026-004217")
    );
    assert!(!first_entry.is_deleted());

    // version 2: same CDA with another id, replacing the first by uniqueId
    let cda = std::fs::read_to_string(example_path("cda-to-professional.xml")).expect("sample");
    let v2 = cda.replacen("CR-2026-004217", "CR-2026-004218", 1);
    assert_ne!(v2, cda);
    let mut req = example("cda-to-professional.json");
    req.documents[0].cda = mss_message::Content::Text(v2);
    req.documents[0].replaces = Some("1.2.250.1.999.8.1.1^CR-2026-004217".into());
    let m = compose_with(&req, &config(), &mut env()).expect("compose");
    let xml = metadata_xml(&m.raw);
    let new_uuid = mss_message::metadata::document_entry_uuid("1.2.250.1.999.8.1.1^CR-2026-004218");
    assert!(
        xml.contains(&format!(
            "associationType=\"urn:ihe:iti:2007:AssociationType:RPLC\" sourceObject=\"{new_uuid}\" targetObject=\"{}\"/>",
            first_entry.entry_uuid
        )),
        "{xml}"
    );
    let r = read_message(&m.raw).expect("read");
    let archive = r.xdm[0].archive.as_ref().expect("archive");
    let rs: Vec<_> = archive.replacements().collect();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].document, new_uuid);
    assert_eq!(rs[0].replaced, first_entry.entry_uuid);

    // withdrawal of the first version: the same entry, status Deleted, no association
    let mut req = example("cda-to-professional.json");
    req.documents[0].withdraw = true;
    let m = compose_with(&req, &config(), &mut env()).expect("compose");
    assert!(metadata_xml(&m.raw).contains(
        " objectType=\"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1\" status=\"urn:asip:ci-sis:2010:StatusType:Deleted\">"
    ));
    let r = read_message(&m.raw).expect("read");
    let archive = r.xdm[0].archive.as_ref().expect("archive");
    let doc = archive.documents().next().expect("document");
    assert!(doc.entry.is_deleted());
    assert_eq!(doc.entry.entry_uuid, first_entry.entry_uuid);
    assert_eq!(archive.replacements().count(), 0);
    // the `xdm` view (mss inbox show, GET /v1/inbox/{id}) says so; a document kept is silent about it
    let view = serde_json::to_value(r.xdm_view().expect("view")).expect("json");
    assert_eq!(view["documents"][0]["withdrawn"], true);
    let view = serde_json::to_value(first.xdm_view().expect("view")).expect("json");
    assert!(view["documents"][0].get("withdrawn").is_none(), "{view}");

    // a document cannot replace itself
    let mut req = example("cda-to-professional.json");
    req.documents[0].replaces = Some("1.2.250.1.999.8.1.1^CR-2026-004217".into());
    let e = compose_with(&req, &config(), &mut env()).expect_err("refused");
    assert!(e.to_string().contains("documents[0].replaces"), "{e}");
}

/// The CDA's `relatedDocument[@typeCode='RPLC']` makes the association without `replaces`.
#[test]
fn the_cda_related_document_makes_the_replacement() {
    let cda = std::fs::read_to_string(example_path("cda-to-professional.xml")).expect("sample");
    let at = cda.find("<recordTarget").expect("recordTarget");
    let mut v2 = cda.replacen("CR-2026-004217", "CR-2026-004218", 1);
    v2.insert_str(
        at,
        "<relatedDocument typeCode=\"RPLC\"><parentDocument><id root=\"1.2.250.1.999.8.1.1\" extension=\"CR-2026-004217\"/></parentDocument></relatedDocument>\n  ",
    );
    let mut req = example("cda-to-professional.json");
    req.documents[0].cda = mss_message::Content::Text(v2);
    let m = compose_with(&req, &config(), &mut env()).expect("compose");
    let r = read_message(&m.raw).expect("read");
    let archive = r.xdm[0].archive.as_ref().expect("archive");
    let rs: Vec<_> = archive.replacements().collect();
    assert_eq!(rs.len(), 1);
    assert_eq!(
        rs[0].replaced,
        mss_message::metadata::document_entry_uuid("1.2.250.1.999.8.1.1^CR-2026-004217")
    );
}

fn metadata_xml(raw: &[u8]) -> String {
    let r = read_message(raw).expect("read");
    let files = common::unzip(&r.attachments[r.xdm[0].attachment].content);
    let (_, xml) = files
        .iter()
        .find(|(n, _)| n == "IHE_XDM/SUBSET01/METADATA.XML")
        .expect("METADATA.XML");
    String::from_utf8(xml.clone()).expect("UTF-8")
}

#[test]
fn patient_message_reads_back_as_end_of_exchange() {
    let m = compose_with(
        &example("patient-end-of-exchange.json"),
        &config(),
        &mut env(),
    )
    .expect("compose");
    let r = read_message(&m.raw).expect("read");
    assert!(r.end_of_exchange);
    assert_eq!(r.mss.mes.as_deref(), Some("FIN"));
    assert_eq!(r.to, ["185072A00401797@patient.mssante.fr"]);
    let p = r.patient().expect("identity");
    assert_eq!((p.id.as_str(), p.sex), ("185072A00401797", Some(Sex::M)));
}

#[test]
fn a_patient_reply_is_recognised_with_its_identity() {
    let raw = b"From: Pierre-Antoine Santoni <185072A00401797@patient.mssante.fr>\r\n\
To: paul.leroy@labo-biologie-exemple.mssante.fr\r\n\
Subject: Re: mes resultats\r\n\
Message-ID: <r1@patient.mssante.fr>\r\n\
In-Reply-To: <7848b5d7@labo-biologie-exemple.mssante.fr>\r\n\
\r\n\
Merci docteur.\r\n";
    let r = read_message(raw).expect("read");
    match &r.sender {
        SenderClass::Patient(p) => {
            assert_eq!(p.ins.as_str(), "185072A00401797");
            assert_eq!(p.display_name, "Pierre-Antoine Santoni");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.in_reply_to, ["7848b5d7@labo-biologie-exemple.mssante.fr"]);
    assert!(r.xdm.is_empty() && r.report.is_none());
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (n, c) in files {
        z.start_file(*n, zip::write::SimpleFileOptions::default())
            .expect("start");
        z.write_all(c).expect("write");
    }
    z.finish().expect("finish").into_inner()
}

fn archive_parts() -> (String, Vec<u8>) {
    let m =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let r = read_message(&m.raw).expect("read");
    let files = common::unzip(&r.attachments[r.xdm[0].attachment].content);
    let meta = String::from_utf8(files[4].1.clone()).expect("utf8");
    (meta, files[5].1.clone())
}

#[test]
fn names_are_matched_case_insensitively() {
    let (meta, doc) = archive_parts();
    let zip = zip_of(&[
        ("readme.txt", b"x"),
        ("ihe_xdm/ss000001/metadata.xml", meta.as_bytes()),
        ("ihe_xdm/ss000001/doc00001.xml", &doc),
    ]);
    let a = mss_message::xdm::read_archive(&zip).expect("reads");
    assert_eq!(a.subsets[0].dir, "ihe_xdm/ss000001");
    assert_eq!(a.documents().next().map(|d| d.content.clone()), Some(doc));
    assert!(a.has_readme && !a.has_index);
}

#[test]
fn tampered_documents_are_detected() {
    let (meta, mut doc) = archive_parts();
    let at = doc.len() - 20;
    doc[at] ^= 0x01;
    let zip = zip_of(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC00001.XML", &doc),
    ]);
    assert_eq!(
        mss_message::xdm::read_archive(&zip)
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("IHE_XDM.zip/IHE_XDM/SUBSET01/DOC00001.XML: SHA-1 differs from METADATA.XML hash")
    );
    doc.push(b'\n');
    let zip = zip_of(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC00001.XML", &doc),
    ]);
    let e = mss_message::xdm::read_archive(&zip)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with("IHE_XDM.zip/IHE_XDM/SUBSET01/DOC00001.XML: size 6216 differs from METADATA.XML size 6215"), "{e}");
    let zip = zip_of(&[("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes())]);
    assert_eq!(
        mss_message::xdm::read_archive(&zip)
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some(
            "IHE_XDM.zip/IHE_XDM/SUBSET01/METADATA.XML: document DOC00001.XML is listed but not in the archive"
        )
    );
}

#[test]
fn an_mdn_is_built_and_correlated() {
    let cfg = config();
    let sent =
        compose_with(&example("cda-to-professional.json"), &cfg, &mut env()).expect("compose");
    let received = read_message(&sent.raw).expect("read");
    assert!(
        received.mdn_needs_confirmation(),
        "no Return-Path in a message not yet delivered"
    );
    let delivered = [
        b"Return-Path: <marie.martin@medecin.mssante.fr>\r\n".as_slice(),
        &sent.raw,
    ]
    .concat();
    assert!(
        !read_message(&delivered)
            .expect("read")
            .mdn_needs_confirmation()
    );
    let req = MdnRequest {
        final_recipient: "jean.dupont@chu-exemple.mssante.fr".into(),
        label: Some("Dr_Jean_DUPONT_Cardiologie".into()),
        disposition: MdnDisposition::Processed,
    };
    let mut e = mss_message::Env::fixed(time::macros::datetime!(2026-11-23 10:00 UTC), 7);
    let mdn = build_mdn(&received, &req, &cfg, &mut e).expect("mdn");
    assert_eq!(
        mdn.envelope.recipients[..],
        ["marie.martin@medecin.mssante.fr".parse().expect("address")]
    );
    assert_eq!(
        mdn.envelope.from.as_str(),
        "jean.dupont@chu-exemple.mssante.fr"
    );
    let text = String::from_utf8_lossy(&mdn.raw);
    assert!(
        text.contains("Content-Type: multipart/report; report-type=\"disposition-notification\";"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "Content-Type: message/disposition-notification\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         Reporting-UA: chu-exemple.mssante.fr; mss 0.1.0\r\n\
         Original-Recipient: rfc822;jean.dupont@chu-exemple.mssante.fr\r\n\
         Final-Recipient: rfc822;jean.dupont@chu-exemple.mssante.fr\r\n\
         Original-Message-ID: <{}>\r\n\
         Disposition: automatic-action/MDN-sent-automatically; processed\r\n",
        sent.message_id
    )), "{text}");
    assert!(text.contains("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nFrom: \"Dr_Marie_MARTIN"));
    assert!(text.contains("Content-Type: application/zip; name=\"IHE_XDM.zip\"\r\nContent-Disposition: attachment; filename=\"IHE_XDM.zip\""));
    assert!(text.contains(&format!("\r\nIn-Reply-To: <{}>\r\n", sent.message_id)));
    assert!(text.contains("\r\nX-MSS-NIL: DEV935997\r\n"));

    let back = read_message(&mdn.raw).expect("mdn reads");
    assert_eq!(back.subject, sent.subject);
    match back.report.as_ref() {
        Some(rep @ Report::Mdn(m)) => {
            assert!(rep.refers_to(&format!("<{}>", sent.message_id), None));
            assert_eq!(m.disposition, "processed");
            assert_eq!(m.action_mode, "automatic-action");
            assert_eq!(m.error, None);
        }
        other => panic!("{other:?}"),
    }

    let err = MdnRequest {
        disposition: MdnDisposition::Error {
            code: "902".into(),
            label: "Identifiant de patient inconnu".into(),
        },
        ..req
    };
    let mdn = build_mdn(&received, &err, &cfg, &mut e).expect("error mdn");
    let back = read_message(&mdn.raw).expect("reads");
    assert_eq!(
        back.subject,
        "[KO Intégration système !][902] XDM/1.0/DDM+CR de consultation DURAND Camille 15/03/1979"
    );
    match back.report {
        Some(Report::Mdn(m)) => {
            assert_eq!(
                m.error,
                Some(("902".into(), "Identifiant de patient inconnu".into()))
            );
            assert_eq!(
                m.original_message_id.as_deref(),
                Some(sent.message_id.as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(String::from_utf8_lossy(&mdn.raw).contains(
        "Disposition: automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant de patient inconnu\r\n"
    ));
}

#[test]
fn no_mdn_without_a_request_for_one() {
    let mut req = example("cda-to-professional.json");
    req.receipts.mdn = false;
    let sent = compose_with(&req, &config(), &mut env()).expect("compose");
    let received = read_message(&sent.raw).expect("read");
    let r = MdnRequest {
        final_recipient: "jean.dupont@chu-exemple.mssante.fr".into(),
        label: None,
        disposition: MdnDisposition::Processed,
    };
    assert_eq!(
        build_mdn(&received, &r, &config(), &mut env())
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("original: the message asks for no read receipt (no Disposition-Notification-To)")
    );
}

#[test]
fn a_dsn_is_read_and_correlated() {
    let sent =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let envid = sent
        .envelope
        .dsn
        .as_ref()
        .and_then(|d| d.envid.clone())
        .expect("dsn asked");
    let dsn = format!(
        "From: MAILER-DAEMON@mx.chu-exemple.mssante.fr\r\n\
To: marie.martin@medecin.mssante.fr\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <dsn1@mx.chu-exemple.mssante.fr>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Message non distribue.\r\n\
--b1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.chu-exemple.mssante.fr\r\n\
Original-Envelope-Id: {envid}\r\n\
\r\n\
Final-Recipient: rfc822; jean.dupont@chu-exemple.mssante.fr\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <jean.dupont@chu-exemple.mssante.fr>: unknown user\r\n\
\r\n\
--b1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: marie.martin@medecin.mssante.fr\r\n\
Message-ID: <{}>\r\n\
Subject: XDM/1.0/DDM+CR de consultation DURAND Camille 15/03/1979\r\n\
\r\n\
--b1--\r\n",
        sent.message_id
    );
    let r = read_message(dsn.as_bytes()).expect("reads");
    let rep = r.report.expect("a report");
    assert!(rep.refers_to(&sent.message_id, None));
    assert!(rep.refers_to("unrelated@x", Some(&envid)));
    match rep {
        Report::Dsn(d) => {
            assert_eq!(d.envelope_id.as_deref(), Some(envid.as_str()));
            assert_eq!(d.recipients.len(), 1);
            assert_eq!(
                d.recipients[0].final_recipient,
                "jean.dupont@chu-exemple.mssante.fr"
            );
            assert_eq!(
                (
                    d.recipients[0].action.as_str(),
                    d.recipients[0].status.as_str()
                ),
                ("failed", "5.1.1")
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Logging a request, a composed or a received message never prints the documents or the text.
#[test]
fn debug_output_leaves_health_data_out() {
    let req = example("cda-to-professional.json");
    let sent = compose_with(&req, &config(), &mut env()).expect("compose");
    let got = read_message(&sent.raw).expect("read");
    for shown in [format!("{req:?}"), format!("{sent:?}"), format!("{got:?}")] {
        assert!(!shown.contains("palpitations"), "{shown}");
        assert!(!shown.contains("Holter"), "{shown}");
    }
    assert!(format!("{sent:?}").contains(&format!("raw: <{} bytes>", sent.raw.len())));
}
