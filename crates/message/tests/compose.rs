//! Byte-level tests of composed messages: headers (docs/mssante.md M3, M4), MIME layout, the
//! IHE_XDM archive layout and METADATA.XML fragments (docs/mssante.md M1).

mod common;

use common::{config, env, example, example_path, headers, unzip};
use mss_message::{ComposeRequest, Content, EndOfExchangeStyle, compose_with, read_message};
use sha1::{Digest, Sha1};

fn compose(req: &ComposeRequest) -> mss_message::ComposedMessage {
    compose_with(req, &config(), &mut env()).expect("composes")
}

fn xdm_of(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let msg = read_message(raw).expect("readable");
    assert_eq!(msg.xdm.len(), 1, "one IHE_XDM.zip");
    unzip(&msg.attachments[msg.xdm[0].attachment].content)
}

fn metadata_of(raw: &[u8]) -> String {
    let files = xdm_of(raw);
    let (_, xml) = files
        .iter()
        .find(|(n, _)| n == "IHE_XDM/SUBSET01/METADATA.XML")
        .expect("METADATA.XML");
    String::from_utf8(xml.clone()).expect("UTF-8")
}

#[test]
fn professional_message_headers_are_exact() {
    let m = compose(&example("cda-to-professional.json"));
    assert_eq!(
        headers(&m.raw),
        "From: \"Dr_Marie_MARTIN_Cabinet de cardiologie des Brotteaux\"\r\n \
         <marie.martin@medecin.mssante.fr>\r\n\
         To: <jean.dupont@chu-exemple.mssante.fr>\r\n\
         Cc: <secretariat.cardio@chu-exemple.mssante.fr>\r\n\
         Subject: XDM/1.0/DDM+CR de consultation DURAND Camille 15/03/1979\r\n\
         Date: Mon, 23 Nov 2026 09:30:00 +0000\r\n\
         Message-ID: <7848b5d7-11bc-4883-9963-17a3f9c90269@medecin.mssante.fr>\r\n\
         X-MSS-NIL: DEV935997\r\n\
         X-MSS-CODECDA: 11488-4\r\n\
         X-MSS-INS: O\r\n\
         Disposition-Notification-To: <marie.martin@medecin.mssante.fr>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mss_49168bedb8134d6a\""
    );
    assert_eq!(
        m.message_id,
        "7848b5d7-11bc-4883-9963-17a3f9c90269@medecin.mssante.fr"
    );
    assert_eq!(
        m.subject,
        "XDM/1.0/DDM+CR de consultation DURAND Camille 15/03/1979"
    );
    assert_eq!(m.envelope.from.as_str(), "marie.martin@medecin.mssante.fr");
    assert_eq!(
        recipients(&m),
        [
            "jean.dupont@chu-exemple.mssante.fr",
            "secretariat.cardio@chu-exemple.mssante.fr"
        ]
    );
    let dsn = m.envelope.dsn.expect("a DSN was asked");
    assert_eq!(
        dsn.mail_params(),
        "RET=HDRS ENVID=729a95f4-c452-4087-b434-05b0baf850df"
    );
    assert_eq!(
        dsn.rcpt_params("jean.dupont@chu-exemple.mssante.fr"),
        "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;jean.dupont@chu-exemple.mssante.fr"
    );
}

#[test]
fn the_archive_is_a_base64_application_zip_part() {
    let m = compose(&example("cda-to-professional.json"));
    let text = String::from_utf8_lossy(&m.raw);
    assert!(text.contains(
        "\r\n--mss_49168bedb8134d6a\r\n\
         Content-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
         Cher confr=C3=A8re,\r\n"
    ));
    assert!(text.contains(
        "\r\n--mss_49168bedb8134d6a\r\n\
         Content-Type: application/zip; name=\"IHE_XDM.zip\"\r\n\
         Content-Disposition: attachment; filename=\"IHE_XDM.zip\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nUEsDB"
    ));
    assert!(text.ends_with("\r\n--mss_49168bedb8134d6a--\r\n"));
    // Every line fits SMTP's limit.
    assert!(text.split("\r\n").all(|l| l.len() <= 998));
}

#[test]
fn archive_layout_is_iti_32_with_8_3_names() {
    let m = compose(&example("cda-to-professional.json"));
    let files = xdm_of(&m.raw);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.TXT",
            "INDEX.HTM",
            "IHE_XDM/",
            "IHE_XDM/SUBSET01/",
            "IHE_XDM/SUBSET01/METADATA.XML",
            "IHE_XDM/SUBSET01/DOC00001.XML"
        ]
    );
    let cda = std::fs::read(example_path("cda-to-professional.xml")).expect("sample CDA");
    assert_eq!(files[5].1, cda, "the document travels byte for byte");
    assert_eq!(
        String::from_utf8_lossy(&files[0].1),
        "IHE_XDM - message MSSante\r\n\r\n\
         Cree par : mss 0.1.0 (reference produit DEV935997)\r\n\
         Expediteur : marie.martin@medecin.mssante.fr\r\n\
         Date de creation (UTC) : 2026-11-23T09:30:00Z\r\n\
         Contenu : IHE_XDM/SUBSET01/METADATA.XML et 1 document(s) CDA R2\r\n\r\n\
         Ouvrir INDEX.HTM pour la liste des documents.\r\n"
    );
    assert!(String::from_utf8_lossy(&files[1].1).contains(
        "<li><a href=\"IHE_XDM/SUBSET01/DOC00001.XML\">Compte rendu de consultation de cardiologie</a></li>"
    ));
}

#[test]
fn metadata_fragments_follow_the_ans_conventions() {
    let m = compose(&example("cda-to-professional.json"));
    let xml = metadata_of(&m.raw);
    let cda = std::fs::read(example_path("cda-to-professional.xml")).expect("sample CDA");
    let sha1: String = Sha1::digest(&cda)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fragments = [
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\">\n <rim:RegistryObjectList>\n".to_string(),
        // patientId of the document entry and of the submission set: INS^^^&OID&ISO^NH (docs/mssante.md M1)
        "identificationScheme=\"urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427\" registryObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" value=\"279037505612309^^^&amp;1.2.250.1.213.1.4.10&amp;ISO^NH\">\n    <rim:Name>\n     <rim:LocalizedString xml:lang=\"fr-FR\" charset=\"UTF-8\" value=\"XDSDocumentEntry.patientId\"/>".into(),
        "identificationScheme=\"urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446\" registryObject=\"urn:uuid:d5677100-5d54-4a19-9849-39c9e8d0db2a\" value=\"279037505612309^^^&amp;1.2.250.1.213.1.4.10&amp;ISO^NH\">".into(),
        // uniqueId = root^extension of ClinicalDocument/id
        "identificationScheme=\"urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab\" registryObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" value=\"1.2.250.1.999.8.1.1^CR-2026-004217\">".into(),
        // sourcePatientInfo (PID-5 birth name ^ first given name ^^^^^L, PID-7, PID-8)
        "   <rim:Slot name=\"sourcePatientInfo\">\n    <rim:ValueList>\n     <rim:Value>PID-5|DURAND^Camille^^^^^L</rim:Value>\n     <rim:Value>PID-7|19790315</rim:Value>\n     <rim:Value>PID-8|F</rim:Value>\n    </rim:ValueList>\n   </rim:Slot>\n".into(),
        // SHA-1 hash and size of the document
        format!("   <rim:Slot name=\"hash\">\n    <rim:ValueList>\n     <rim:Value>{sha1}</rim:Value>\n"),
        format!("   <rim:Slot name=\"size\">\n    <rim:ValueList>\n     <rim:Value>{}</rim:Value>\n", cda.len()),
        // creationTime = CDA effectiveTime 20261120163000+0100 in UTC; service times likewise
        "   <rim:Slot name=\"creationTime\">\n    <rim:ValueList>\n     <rim:Value>20261120153000</rim:Value>\n".into(),
        "   <rim:Slot name=\"serviceStartTime\">\n    <rim:ValueList>\n     <rim:Value>20261120150000</rim:Value>\n".into(),
        "   <rim:Slot name=\"submissionTime\">\n    <rim:ValueList>\n     <rim:Value>20261123093000</rim:Value>\n".into(),
        "   <rim:Slot name=\"URI\">\n    <rim:ValueList>\n     <rim:Value>DOC00001.XML</rim:Value>\n".into(),
        // typeCode = CDA code (LOINC)
        "classificationScheme=\"urn:uuid:f0306f51-975f-434e-a61c-c59651d33983\" classifiedObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" nodeRepresentation=\"11488-4\">\n    <rim:Slot name=\"codingScheme\">\n     <rim:ValueList>\n      <rim:Value>2.16.840.1.113883.6.1</rim:Value>\n     </rim:ValueList>\n    </rim:Slot>\n    <rim:Name>\n     <rim:LocalizedString xml:lang=\"fr-FR\" charset=\"UTF-8\" value=\"CR de consultation\"/>".into(),
        // classCode from the request (JDV_J06, TRE_A03)
        "classificationScheme=\"urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a\" classifiedObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" nodeRepresentation=\"10\">\n    <rim:Slot name=\"codingScheme\">\n     <rim:ValueList>\n      <rim:Value>1.2.250.1.213.1.1.4.1</rim:Value>".into(),
        // confidentialityCode from the CDA
        "classificationScheme=\"urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f\" classifiedObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" nodeRepresentation=\"N\">\n    <rim:Slot name=\"codingScheme\">\n     <rim:ValueList>\n      <rim:Value>2.16.840.1.113883.5.25</rim:Value>".into(),
        // formatCode default
        "classificationScheme=\"urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d\" classifiedObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" nodeRepresentation=\"urn:ihe:iti:xds:2017:mimeTypeSufficient\">\n    <rim:Slot name=\"codingScheme\">\n     <rim:ValueList>\n      <rim:Value>1.3.6.1.4.1.19376.1.2.3</rim:Value>".into(),
        // healthcareFacilityTypeCode and practiceSettingCode from the CDA header
        "classificationScheme=\"urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1\" classifiedObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" nodeRepresentation=\"SA07\">\n    <rim:Slot name=\"codingScheme\">\n     <rim:ValueList>\n      <rim:Value>1.2.250.1.71.4.2.4</rim:Value>".into(),
        "classificationScheme=\"urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead\" classifiedObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" nodeRepresentation=\"AMBULATOIRE\">\n    <rim:Slot name=\"codingScheme\">\n     <rim:ValueList>\n      <rim:Value>1.2.250.1.213.1.1.4.9</rim:Value>".into(),
        // author person / institution as the ANS sample writes them
        "<rim:Value>810101234567^MARTIN^Marie^^^Dr^^^&amp;1.2.250.1.71.4.2.1&amp;ISO^D^^^IDNPS</rim:Value>".into(),
        "<rim:Value>Cabinet de cardiologie des Brotteaux^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^IDNST^^^1690012345</rim:Value>".into(),
        // submission set marker and membership
        "  <rim:Classification id=\"urn:uuid:7f5ea6c4-20b5-4fb8-8477-7157b105a712\" classificationNode=\"urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd\" classifiedObject=\"urn:uuid:d5677100-5d54-4a19-9849-39c9e8d0db2a\"/>\n".into(),
        "associationType=\"urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember\" sourceObject=\"urn:uuid:d5677100-5d54-4a19-9849-39c9e8d0db2a\" targetObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\">\n   <rim:Slot name=\"SubmissionSetStatus\">\n    <rim:ValueList>\n     <rim:Value>Original</rim:Value>".into(),
        "<rim:Value>||^^Internet^jean.dupont@chu-exemple.mssante.fr</rim:Value>\n     <rim:Value>||^^Internet^secretariat.cardio@chu-exemple.mssante.fr</rim:Value>\n".into(),
        "  <rim:ExtrinsicObject id=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" mimeType=\"text/xml\" objectType=\"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1\">\n".into(),
        " </rim:RegistryObjectList>\n</lcm:SubmitObjectsRequest>\n".into(),
    ];
    for f in &fragments {
        assert!(xml.contains(f.as_str()), "missing fragment:\n{f}");
    }
    assert!(xml.ends_with(" </rim:RegistryObjectList>\n</lcm:SubmitObjectsRequest>\n"));
}

/// The whole METADATA.XML of the example, pinned (regenerate with `MSS_BLESS=1` after review).
#[test]
fn metadata_golden() {
    let m = compose(&example("cda-to-professional.json"));
    let xml = metadata_of(&m.raw);
    let golden = common::root().join("tests/golden/cda-to-professional.METADATA.XML");
    if std::env::var_os("MSS_BLESS").is_some() {
        std::fs::write(&golden, &xml).expect("bless");
    }
    let expected = std::fs::read_to_string(&golden).expect("golden file");
    assert_eq!(xml, expected);
}

#[test]
fn patient_message_ends_the_exchange_with_the_header() {
    let m = compose(&example("patient-end-of-exchange.json"));
    assert_eq!(
        headers(&m.raw),
        "From: =?utf-8?Q?Dr=5FPaul=5FLEROY=5FLaboratoire_du_Cours_Napol=C3=A9on?=\r\n \
         <paul.leroy@labo-biologie-exemple.mssante.fr>\r\n\
         To: <185072A00401797@patient.mssante.fr>\r\n\
         Subject: XDM/1.0/DDM+CR d'examens biologiques SANTONI Pierre-Antoine\r\n 12/07/1985\r\n\
         Date: Mon, 23 Nov 2026 09:30:00 +0000\r\n\
         Message-ID: <7848b5d7-11bc-4883-9963-17a3f9c90269@labo-biologie-exemple.mssante.fr>\r\n\
         X-MSS-NIL: DEV935997\r\n\
         X-MSS-CODECDA: 11502-2\r\n\
         X-MSS-INS: O\r\n\
         X-MSS-MES: FIN\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mss_49168bedb8134d6a\""
    );
    assert!(m.envelope.dsn.is_none());
}

#[test]
fn end_of_exchange_in_the_subject_style_is_exactly_fin() {
    let mut req = example("patient-end-of-exchange.json");
    req.documents.clear();
    let mut cfg = config();
    cfg.end_of_exchange = EndOfExchangeStyle::Subject;
    let m = compose_with(&req, &cfg, &mut env()).expect("composes");
    let h = headers(&m.raw);
    assert!(h.contains("\r\nSubject: [FIN]\r\n"), "{h}");
    assert!(!h.contains("X-MSS-MES"));
    assert!(!h.contains("X-MSS-CODECDA") && !h.contains("X-MSS-INS"));
    assert_eq!(m.subject, "[FIN]");
}

#[test]
fn without_cda_only_x_mss_nil_is_set() {
    let mut req = example("cda-to-professional.json");
    req.documents.clear();
    req.patient = None;
    req.subject = Some("Réunion de concertation du 2 décembre".into());
    req.receipts = Default::default();
    let m = compose(&req);
    assert_eq!(
        headers(&m.raw),
        "From: \"Dr_Marie_MARTIN_Cabinet de cardiologie des Brotteaux\"\r\n \
         <marie.martin@medecin.mssante.fr>\r\n\
         To: <jean.dupont@chu-exemple.mssante.fr>\r\n\
         Cc: <secretariat.cardio@chu-exemple.mssante.fr>\r\n\
         Subject: =?utf-8?Q?R=C3=A9union_de_concertation_du_2_d=C3=A9cembre?=\r\n\
         Date: Mon, 23 Nov 2026 09:30:00 +0000\r\n\
         Message-ID: <7848b5d7-11bc-4883-9963-17a3f9c90269@medecin.mssante.fr>\r\n\
         X-MSS-NIL: DEV935997\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: quoted-printable"
    );
    assert!(m.envelope.dsn.is_none());
}

/// A second CDA for the example patient: same header, another type and id.
fn second_document(req: &ComposeRequest, code: &str, name: &str) -> mss_message::Document {
    let mut d = req.documents[0].clone();
    let Content::Text(t) = &d.cda else {
        panic!("text CDA")
    };
    d.cda = Content::Text(
        t.replace("code=\"11488-4\"", &format!("code=\"{code}\""))
            .replace(
                "displayName=\"CR de consultation\"",
                &format!("displayName=\"{name}\""),
            )
            .replace("CR-2026-004217", &format!("CR-{code}")),
    );
    d
}

#[test]
fn several_cda_give_a_multi_valued_codecda() {
    let mut req = example("cda-to-professional.json");
    let ecg = second_document(&req, "28010-7", "ECG");
    let again = second_document(&req, "11488-4", "CR de consultation bis");
    req.documents.push(ecg);
    req.documents.push(again);
    let m = compose(&req);
    assert!(headers(&m.raw).contains("\r\nX-MSS-CODECDA: 11488-4,28010-7\r\nX-MSS-INS: O\r\n"));
    let names: Vec<String> = xdm_of(&m.raw).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        &names[4..],
        [
            "IHE_XDM/SUBSET01/METADATA.XML",
            "IHE_XDM/SUBSET01/DOC00001.XML",
            "IHE_XDM/SUBSET01/DOC00002.XML",
            "IHE_XDM/SUBSET01/DOC00003.XML"
        ]
    );
    let mut cfg = config();
    cfg.codecda_separator = "; ".into();
    let m = compose_with(&req, &cfg, &mut env()).expect("composes");
    assert!(headers(&m.raw).contains("\r\nX-MSS-CODECDA: 11488-4; 28010-7\r\n"));
}

#[test]
fn an_unqualified_ins_is_flagged_n() {
    let mut req = example("cda-to-professional.json");
    if let Some(p) = req.patient.as_mut() {
        p.qualified = false;
    }
    let m = compose(&req);
    assert!(headers(&m.raw).contains("\r\nX-MSS-CODECDA: 11488-4\r\nX-MSS-INS: N\r\n"));
}

#[test]
fn bcc_reaches_the_envelope_only() {
    let mut req = example("cda-to-professional.json");
    req.recipients.bcc = vec!["archives@chu-exemple.mssante.fr".into()];
    let m = compose(&req);
    assert_eq!(
        recipients(&m),
        [
            "jean.dupont@chu-exemple.mssante.fr",
            "secretariat.cardio@chu-exemple.mssante.fr",
            "archives@chu-exemple.mssante.fr"
        ]
    );
    assert!(!String::from_utf8_lossy(&m.raw).contains("archives@"));
    assert!(!metadata_of(&m.raw).contains("archives@"));
}

#[test]
fn replies_carry_in_reply_to_and_references() {
    let mut req = example("cda-to-professional.json");
    req.in_reply_to = Some("<abc@chu-exemple.mssante.fr>".into());
    req.references = vec![
        "root@chu-exemple.mssante.fr".into(),
        "<abc@chu-exemple.mssante.fr>".into(),
    ];
    req.reply_to = Some("secretariat@medecin.mssante.fr".into());
    let h = headers(&compose(&req).raw);
    assert!(
        h.contains("\r\nReply-To: <secretariat@medecin.mssante.fr>\r\nSubject: "),
        "{h}"
    );
    assert!(h.contains(
        "\r\nIn-Reply-To: <abc@chu-exemple.mssante.fr>\r\nReferences: <root@chu-exemple.mssante.fr> <abc@chu-exemple.mssante.fr>\r\n"
    ), "{h}");
}

#[test]
fn sender_labels_follow_ref2() {
    let mut req = example("cda-to-professional.json");
    req.sender.title = None;
    req.sender.entity = None;
    req.sender.last_name = Some("Le Goff".into());
    assert!(
        headers(&compose(&req).raw)
            .starts_with("From: \"Marie_LE GOFF\" <marie.martin@medecin.mssante.fr>\r\n")
    );
    req.sender = serde_json::from_str(
        r#"{"address":"resultats.biologie@chu-exemple.mssante.fr","type":"ORG","entity":"CHU Exemple - Biologie"}"#,
    )
    .expect("sender");
    assert!(headers(&compose(&req).raw).starts_with(
        "From: \"CHU Exemple - Biologie\" <resultats.biologie@chu-exemple.mssante.fr>\r\n"
    ));
}

#[test]
fn a_pdf_rendering_is_attached_with_the_eco_2_1_6_name() {
    let mut req = example("cda-to-professional.json");
    req.documents[0].rendering = Some(mss_message::Rendering {
        content: Content::Base64("JVBERi0xLjQKJcOkw7zDtsOfCg==".into()),
        filename: None,
        file_number: Some("D-4217".into()),
    });
    let m = compose(&req);
    let text = String::from_utf8_lossy(&m.raw);
    assert!(text.contains(
        "Content-Type: application/pdf;\r\n name=\"20261120_CR_de_consultation_DURAND_Camille_D_4217.pdf\"\r\n\
         Content-Disposition: attachment;\r\n filename=\"20261120_CR_de_consultation_DURAND_Camille_D_4217.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCg==\r\n"
    ), "{text}");
}

#[test]
fn the_same_request_gives_the_same_bytes() {
    let req = example("cda-to-professional.json");
    assert_eq!(compose(&req).raw, compose(&req).raw);
    let other = compose_with(
        &req,
        &config(),
        &mut mss_message::Env::fixed(time::macros::datetime!(2026-11-23 09:30 UTC), 43),
    )
    .expect("composes");
    assert_ne!(other.message_id, compose(&req).message_id);
}

/// The envelope recipients, as text.
fn recipients(m: &mss_message::ComposedMessage) -> Vec<&str> {
    m.envelope.recipients.iter().map(|r| r.as_str()).collect()
}
