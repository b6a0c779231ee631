//! Reading incoming messages (docs/mssante.md R2, R3): exact fields of sound messages, and the
//! exact problems of faulty ones, which are read as far as they go and never refused.
#![recursion_limit = "256"]

mod common;

use base64::Engine as _;
use common::{config, env, example, example_path, unzip};
use mss_message::metadata::Replacement;
use mss_message::xdm::{self, ArchiveFile, ReadLimits};
use mss_message::{InsAuthority, PARSER_FAILURE, ReceivedMessage, compose_with, read_message};
use proptest::prelude::*;
use serde_json::json;
use sha1::{Digest, Sha1};
use std::sync::OnceLock;

fn sha1_hex(b: &[u8]) -> String {
    Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// METADATA.XML and DOC00001.XML of the composed professional example.
fn parts() -> &'static (String, Vec<u8>) {
    static PARTS: OnceLock<(String, Vec<u8>)> = OnceLock::new();
    PARTS.get_or_init(|| {
        let m = compose_with(&example("cda-to-professional.json"), &config(), &mut env())
            .expect("compose");
        let r = read_message(&m.raw).expect("read");
        let files = unzip(&r.attachments[r.xdm[0].attachment].content);
        assert_eq!(files[4].0, "IHE_XDM/SUBSET01/METADATA.XML");
        assert_eq!(files[5].0, "IHE_XDM/SUBSET01/DOC00001.XML");
        (
            String::from_utf8(files[4].1.clone()).expect("utf8"),
            files[5].1.clone(),
        )
    })
}

const META: &str = "IHE_XDM/SUBSET01/METADATA.XML";
const DOC: &str = "IHE_XDM/SUBSET01/DOC00001.XML";

/// A zip of these entries, deflated, names as given (unsafe and repeated ones included).
fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<ArchiveFile<'_>> = files
        .iter()
        .map(|(path, content)| ArchiveFile {
            path,
            content,
            deflate: Some(6),
        })
        .collect();
    xdm::write_archive(&files, time::macros::datetime!(2026-11-23 10:00 UTC)).expect("zip")
}

/// A professional message carrying `zip` as `IHE_XDM.ZIP` (the upper-case spelling also seen).
fn message_with(zip: &[u8]) -> Vec<u8> {
    message_with_all(&[zip])
}

/// A professional message carrying each of `zips` as an `IHE_XDM.ZIP` attachment.
fn message_with_all(zips: &[&[u8]]) -> Vec<u8> {
    let mut wrapped = String::new();
    for zip in zips {
        wrapped.push_str(
            "--b1\r\n\
Content-Type: application/zip; name=\"IHE_XDM.ZIP\"\r\n\
Content-Disposition: attachment; filename=\"IHE_XDM.ZIP\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n",
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(zip);
        for line in b64.as_bytes().chunks(76) {
            wrapped.push_str(std::str::from_utf8(line).expect("ascii"));
            wrapped.push_str("\r\n");
        }
    }
    format!(
        "From: \"Dr_Marie_MARTIN\" <marie.martin@medecin.mssante.fr>\r\n\
To: jean.dupont@chu-exemple.mssante.fr\r\n\
Subject: XDM/1.0/DDM+CR de consultation\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
Message-ID: <t1@medecin.mssante.fr>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Ci-joint.\r\n\
{wrapped}--b1--\r\n"
    )
    .into_bytes()
}

fn read(zip: &[u8]) -> ReceivedMessage {
    read_message(&message_with(zip)).expect("a mail message")
}

fn xdm_json(m: &ReceivedMessage) -> serde_json::Value {
    serde_json::to_value(m.xdm_view()).expect("json")
}

#[test]
fn an_xdm_message_with_a_real_cda_reads_with_every_field() {
    let sent =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let r = read_message(&sent.raw).expect("read");
    let cda = std::fs::read(example_path("cda-to-professional.xml")).expect("sample");
    let view = serde_json::to_value(r.view()).expect("json");
    assert_eq!(
        view,
        json!({
            "message_id": sent.message_id,
            "from": "marie.martin@medecin.mssante.fr",
            "from_name": "Dr_Marie_MARTIN_Cabinet de cardiologie des Brotteaux",
            "patient": null,
            "subject": "CR de consultation DURAND Camille 15/03/1979",
            "date": "2026-11-23T09:30:00Z",
            "to": ["jean.dupont@chu-exemple.mssante.fr"],
            "cc": ["secretariat.cardio@chu-exemple.mssante.fr"],
            "in_reply_to": [],
            "references": [],
            "end_of_exchange": false,
            "mss_nil": "DEV935997",
            "mss_codecda": ["11488-4"],
            "mss_ins_qualified": true,
            "mss_mes": null,
            "disposition_notification_to": "marie.martin@medecin.mssante.fr",
            "text": r.text.as_ref().map(|t| t.0.clone()),
            "html": null,
            "attachments": [{
                "filename": "IHE_XDM.zip",
                "content_type": "application/zip",
                "size": r.attachments[0].content.len(),
            }],
            "documents": 1,
            "xdm": {
                "patient_id": "279037505612309^^^&1.2.250.1.213.1.4.10&ISO^NH",
                "patient_authority": "test",
                "documents": [{
                    "name": "DOC00001.XML",
                    "size": 6215,
                    "sha1": sha1_hex(&cda),
                    "hash_ok": true,
                    "size_ok": true,
                    "mime_type": "text/xml",
                    "type_code": "11488-4",
                    "format_code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                    "title": "Compte rendu de consultation de cardiologie",
                    "unique_id": "1.2.250.1.999.8.1.1^CR-2026-004217",
                    "entry_uuid": "urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea",
                    "patient_id": "279037505612309^^^&1.2.250.1.213.1.4.10&ISO^NH",
                    "creation_time": "20261120153000",
                    "author": "810101234567^MARTIN^Marie^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
                    "author_institutions": [
                        "Cabinet de cardiologie des Brotteaux^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1690012345"
                    ],
                    "replaces": null,
                }],
                "problems": [],
            },
            "problems": [],
        })
    );
    assert_eq!(cda.len(), 6215);
    assert!(
        r.text
            .as_deref()
            .is_some_and(|t| t.starts_with("Cher confrère,"))
    );
    // The CDA header is read too: its patient is the METADATA.XML one.
    let doc = r.documents().next().expect("one document");
    assert_eq!(
        doc.cda.as_ref().and_then(|h| h.patient_ins()),
        Some(("279037505612309", InsAuthority::Test))
    );
    let p = r.patient().expect("patient of the archive");
    assert_eq!(
        (p.id.as_str(), p.authority),
        ("279037505612309", Some(InsAuthority::Test))
    );
    // The same archive alone, through the strict reader, is flawless.
    let zip = &r.attachments[r.xdm[0].attachment].content;
    assert!(xdm::read_archive(zip).is_ok());
    assert_eq!(xdm::inspect_archive(zip).problems, Vec::<String>::new());
}

#[test]
fn a_patient_reply_gives_the_ins_the_name_the_end_and_the_thread() {
    let raw = b"From: Pierre-Antoine Santoni <185072A00401797@patient.mssante.fr>\r\n\
To: paul.leroy@labo-biologie-exemple.mssante.fr\r\n\
Subject: [FIN]\r\n\
Date: Tue, 24 Nov 2026 08:15:00 +0100\r\n\
Message-ID: <r1@patient.mssante.fr>\r\n\
In-Reply-To: <7848b5d7@labo-biologie-exemple.mssante.fr>\r\n\
References: <first@labo-biologie-exemple.mssante.fr>\r\n <7848b5d7@labo-biologie-exemple.mssante.fr>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Merci docteur.\r\n\
--alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Merci docteur.</p>\r\n\
--alt--\r\n";
    let r = read_message(raw).expect("read");
    assert_eq!(
        serde_json::to_value(r.view()).expect("json"),
        json!({
            "message_id": "r1@patient.mssante.fr",
            "from": "185072A00401797@patient.mssante.fr",
            "from_name": "Pierre-Antoine Santoni",
            "patient": {"ins": "185072A00401797", "name": "Pierre-Antoine Santoni"},
            "subject": "[FIN]",
            "date": "2026-11-24T08:15:00+01:00",
            "to": ["paul.leroy@labo-biologie-exemple.mssante.fr"],
            "cc": [],
            "in_reply_to": ["7848b5d7@labo-biologie-exemple.mssante.fr"],
            "references": [
                "first@labo-biologie-exemple.mssante.fr",
                "7848b5d7@labo-biologie-exemple.mssante.fr"
            ],
            "end_of_exchange": true,
            "mss_nil": null,
            "mss_codecda": [],
            "mss_ins_qualified": null,
            "mss_mes": null,
            "disposition_notification_to": null,
            "text": "Merci docteur.",
            "html": "<p>Merci docteur.</p>",
            "attachments": [],
            "documents": 0,
            "xdm": null,
            "problems": [],
        })
    );
    assert_eq!(
        r.thread_ids(),
        [
            "7848b5d7@labo-biologie-exemple.mssante.fr",
            "first@labo-biologie-exemple.mssante.fr"
        ]
    );
    // The header form of the end of exchange, and an unverified patient address.
    let raw = b"From: 185072A00401797@patient.mssante.fr\r\nX-MSS-MES: FIN\r\nSubject: Re: resultats\r\n\r\nok\r\n";
    let r = read_message(raw).expect("read");
    assert!(r.end_of_exchange);
    assert_eq!(r.patient_sender(), None);
    assert_eq!(r.view().patient, None);
}

#[test]
fn a_hash_mismatch_is_flagged_and_the_document_kept() {
    let (meta, doc) = parts();
    let mut tampered = doc.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 0x01;
    let r = read(&zip_of(&[(META, meta.as_bytes()), (DOC, &tampered)]));
    assert_eq!(r.problems, ["hash mismatch: DOC00001.XML"]);
    let x = xdm_json(&r);
    assert_eq!(x["problems"], json!(["hash mismatch: DOC00001.XML"]));
    assert_eq!(x["documents"][0]["hash_ok"], json!(false));
    assert_eq!(x["documents"][0]["size_ok"], json!(true));
    assert_eq!(x["documents"][0]["sha1"], json!(sha1_hex(&tampered)));
    assert_eq!(r.documents().next().map(|d| &d.content), Some(&tampered));
}

#[test]
fn a_size_mismatch_is_flagged() {
    let (meta, doc) = parts();
    let meta = meta.replacen(
        "<rim:Value>6215</rim:Value>",
        "<rim:Value>6216</rim:Value>",
        1,
    );
    let r = read(&zip_of(&[(META, meta.as_bytes()), (DOC, doc)]));
    assert_eq!(r.problems, ["size mismatch: DOC00001.XML"]);
    let x = xdm_json(&r);
    assert_eq!(x["documents"][0]["size_ok"], json!(false));
    assert_eq!(x["documents"][0]["hash_ok"], json!(true));
    assert_eq!(x["documents"][0]["size"], json!(6215));
}

#[test]
fn unsafe_names_are_flagged_and_never_used() {
    let (meta, doc) = parts();
    let r = read(&zip_of(&[
        ("../x", b"evil"),
        ("/etc/cron.d/x", b"evil"),
        ("IHE_XDM\\..\\..\\y", b"evil"),
        (META, meta.as_bytes()),
        (DOC, doc),
    ]));
    assert_eq!(
        r.problems,
        [
            "unsafe entry name ../x",
            "unsafe entry name /etc/cron.d/x",
            "unsafe entry name IHE_XDM\\..\\..\\y",
        ]
    );
    assert!(r.documents().all(|d| d.verified()));
    // A URI that climbs out of the subset is not followed either.
    let meta = meta.replacen(">DOC00001.XML<", ">../../DOC00001.XML<", 1);
    let reading = xdm::inspect_archive(&zip_of(&[(META, meta.as_bytes()), (DOC, doc)]));
    assert_eq!(reading.problems, ["unsafe document URI ../../DOC00001.XML"]);
    assert_eq!(reading.archive.map(|a| a.documents().count()), Some(0));
}

#[test]
fn a_zip_bomb_is_stopped_by_ratio_and_by_total() {
    let (meta, _) = parts();
    // 8 MiB of one byte deflates to a few KiB: a ratio of about a thousand.
    let bomb = vec![b' '; 8 * 1024 * 1024];
    let meta_bomb = meta
        .replacen(
            "<rim:Value>6215</rim:Value>",
            "<rim:Value>8388608</rim:Value>",
            1,
        )
        .replacen(&sha1_hex(&parts().1), &sha1_hex(&bomb), 1);
    let zip = zip_of(&[(META, meta_bomb.as_bytes()), (DOC, &bomb)]);
    assert!(zip.len() < 64 * 1024, "{}", zip.len());
    let r = read(&zip);
    assert_eq!(
        r.problems,
        ["compression ratio over the limit: DOC00001.XML"]
    );
    assert_eq!(r.documents().count(), 0);
    assert_eq!(
        xdm::read_archive(&zip)
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("IHE_XDM.zip/IHE_XDM/SUBSET01/DOC00001.XML: compression ratio over the reading limit")
    );

    // The total: what every entry inflates to, together.
    let zip = zip_of(&[(META, meta.as_bytes()), (DOC, &parts().1)]);
    let small = ReadLimits {
        max_total_bytes: 10_000,
        ..ReadLimits::default()
    };
    let reading = xdm::inspect_archive_with(&zip, small);
    assert_eq!(reading.problems, ["archive over the size limit"]);
    // And a huge METADATA.XML.
    let tiny_metadata = ReadLimits {
        max_metadata_bytes: 1_000,
        ..ReadLimits::default()
    };
    let reading = xdm::inspect_archive_with(&zip, tiny_metadata);
    assert_eq!(
        reading.problems,
        ["METADATA.XML over the size limit: IHE_XDM/SUBSET01/METADATA.XML"]
    );
}

#[test]
fn the_archives_of_one_message_share_one_inflating_budget() {
    let (meta, doc) = parts();
    // METADATA.XML padded to 1 MiB: under the ratio floor, a few KiB once deflated.
    let padding = " ".repeat(1024 * 1024 - meta.len());
    let padded = meta.replacen(
        "</lcm:SubmitObjectsRequest>",
        &format!("{padding}</lcm:SubmitObjectsRequest>"),
        1,
    );
    assert_eq!(padded.len(), 1024 * 1024);
    let zip = zip_of(&[(META, padded.as_bytes()), (DOC, doc)]);
    assert_eq!(xdm::inspect_archive(&zip).inflated, 1024 * 1024 + 6215);
    // 64 of them inflate past the 64 MiB of one message: the last one is not read.
    let zips: Vec<&[u8]> = vec![zip.as_slice(); 64];
    let r = read_message(&message_with_all(&zips)).expect("read");
    assert_eq!(r.problems, ["archive over the size limit"]);
    assert_eq!(r.xdm.len(), 64);
    assert_eq!(r.documents().count(), 63);
    assert_eq!(r.xdm[63].archive.as_ref().map(|a| a.subsets.len()), Some(0));
}

#[test]
fn duplicate_names_are_flagged_and_what_is_served_is_still_verified() {
    let (meta, doc) = parts();
    // In another case: the first one is read.
    let r = read(&zip_of(&[
        (META, meta.as_bytes()),
        (DOC, doc),
        ("ihe_xdm/subset01/doc00001.xml", b"another document"),
    ]));
    assert_eq!(
        r.problems,
        ["duplicate entry name ihe_xdm/subset01/doc00001.xml"]
    );
    let docs: Vec<_> = r.documents().collect();
    assert_eq!(docs.len(), 1);
    assert!(docs[0].verified());
    assert_eq!(&docs[0].content, doc);
    // The very same name twice: the zip crate shows only one of them (the last), so the
    // central directory is read for repeats, and what is served is checked as always.
    let r = read(&zip_of(&[
        (META, meta.as_bytes()),
        (DOC, doc),
        (DOC, b"a second one"),
    ]));
    assert_eq!(
        r.problems,
        [
            "duplicate entry name IHE_XDM/SUBSET01/DOC00001.XML",
            "size mismatch: DOC00001.XML",
            "hash mismatch: DOC00001.XML",
        ]
    );
    assert_eq!(
        r.documents()
            .map(|d| d.content.as_slice())
            .collect::<Vec<_>>(),
        [b"a second one".as_slice()]
    );
}

#[test]
fn broken_mime_is_flagged_not_refused() {
    // Cut inside the archive's base64: no closing boundary, and the zip is unreadable.
    let sent =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let cut = sent.raw.len() - 2000;
    let r = read_message(&sent.raw[..cut]).expect("still a mail message");
    assert_eq!(
        r.problems,
        ["truncated MIME: no closing boundary", "not a zip archive"]
    );
    assert_eq!(r.message_id.as_deref(), Some(sent.message_id.as_str()));
    assert_eq!(r.xdm.len(), 1);
    assert!(r.xdm[0].archive.is_none());

    let no_boundary =
        b"From: a@medecin.mssante.fr\r\nContent-Type: multipart/mixed\r\n\r\nhello\r\n";
    assert_eq!(
        read_message(no_boundary).expect("read").problems,
        ["not MIME: multipart without boundary"]
    );
    let no_part =
        b"From: a@medecin.mssante.fr\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\nhello\r\n";
    assert_eq!(
        read_message(no_part).expect("read").problems,
        ["not MIME: multipart without any part"]
    );
    let no_from = b"Subject: x\r\n\r\nhello\r\n";
    assert_eq!(
        read_message(no_from).expect("read").problems,
        ["no sender address (From:)"]
    );
    // Only bytes without any header field are not a mail message at all.
    for not_mail in [&b""[..], b"\r\n\r\n", b"no header here\r\n\r\nbody"] {
        assert_eq!(
            read_message(not_mail)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("message: not a mail message: no header field")
        );
    }
}

#[test]
fn a_patient_differing_from_the_cda_is_flagged() {
    let (meta, doc) = parts();
    // Another valid test INS of the same length: the size stays, the hash is updated.
    let other = String::from_utf8(doc.clone())
        .expect("utf8")
        .replace(
            "extension=\"279037505612309\"",
            "extension=\"279035121518989\"",
        )
        .into_bytes();
    assert_eq!(other.len(), doc.len());
    let meta = meta.replacen(&sha1_hex(doc), &sha1_hex(&other), 1);
    let r = read(&zip_of(&[(META, meta.as_bytes()), (DOC, &other)]));
    assert_eq!(r.problems, ["patient differs from the CDA: DOC00001.XML"]);

    // The document entry's own patientId against the submission set's.
    let scheme = mss_message::metadata::scheme::DOC_PATIENT_ID;
    let at = meta.find(scheme).expect("document patientId");
    let (head, tail) = meta.split_at(at);
    let meta = format!(
        "{head}{}",
        tail.replacen("279037505612309", "279035121518989", 1)
    );
    let r = read(&zip_of(&[(META, meta.as_bytes()), (DOC, &other)]));
    assert_eq!(
        r.problems,
        ["patient differs from the submission set: DOC00001.XML"]
    );
    assert_eq!(
        xdm_json(&r)["documents"][0]["patient_id"],
        json!("279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH")
    );
    assert_eq!(
        xdm_json(&r)["patient_id"],
        json!("279037505612309^^^&1.2.250.1.213.1.4.10&ISO^NH")
    );
}

#[test]
fn an_rplc_association_is_a_replace_request() {
    let (meta, doc) = parts();
    let entry = "urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea";
    let replaced = "urn:uuid:0f3c9a52-41b7-4e0e-9d55-6a1c2b3d4e5f";
    let meta = meta.replacen(
        " </rim:RegistryObjectList>",
        &format!(
            "  <rim:Association id=\"urn:uuid:7a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d\" \
associationType=\"urn:ihe:iti:2007:AssociationType:RPLC\" sourceObject=\"{entry}\" \
targetObject=\"{replaced}\"/>\n </rim:RegistryObjectList>"
        ),
        1,
    );
    let r = read(&zip_of(&[(META, meta.as_bytes()), (DOC, doc)]));
    assert_eq!(r.problems, Vec::<String>::new());
    let archive = r.xdm[0].archive.as_ref().expect("archive");
    assert_eq!(
        archive.replacements().collect::<Vec<_>>(),
        [&Replacement {
            document: entry.into(),
            replaced: replaced.into()
        }]
    );
    assert_eq!(xdm_json(&r)["documents"][0]["replaces"], json!(replaced));
}

#[test]
fn a_message_that_panics_mail_parser_is_read_and_flagged() {
    let raw = std::fs::read(common::root().join("tests/fixtures/mail-parser-0.11.9-panic.eml"))
        .expect("fixture");
    // The fixture does make mail-parser 0.11.9 panic (a debug assertion, so in test builds).
    if cfg!(debug_assertions) {
        let direct = std::panic::catch_unwind(|| {
            mail_parser::MessageParser::default()
                .parse(&raw[..])
                .is_some()
        });
        assert!(direct.is_err(), "mail-parser no longer panics on it");
    }
    let r = read_message(&raw).expect("read, not a panic");
    assert_eq!(r.problems, [PARSER_FAILURE]);
    assert_eq!(r.from.as_deref(), Some("jean.martin@medecin.mssante.fr"));
    assert_eq!(r.from_name.as_deref(), Some("Dr_Jean_MARTIN"));
    assert_eq!(r.raw.0, raw);
    assert!(r.attachments.is_empty() && r.xdm.is_empty());
    // And the reader goes on with the next message.
    let next =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    assert_eq!(
        read_message(&next.raw).expect("read").problems,
        Vec::<String>::new()
    );
}

/// Problems and the strict reader agree, whatever the zip.
fn check_reading(zip: &[u8]) -> Result<(), TestCaseError> {
    let reading = xdm::inspect_archive(zip);
    let strict = xdm::read_archive(zip);
    prop_assert_eq!(
        strict.is_ok(),
        reading.problems.is_empty() && reading.archive.is_some()
    );
    if let Some(a) = &reading.archive {
        for d in a.documents() {
            prop_assert_eq!(&d.sha1, &sha1_hex(&d.content));
            prop_assert_eq!(d.hash_ok, d.sha1.eq_ignore_ascii_case(d.entry.hash.trim()));
            prop_assert_eq!(d.size_ok, d.content.len() as u64 == d.entry.size);
            if !d.hash_ok {
                let flagged = format!("hash mismatch: {}", d.name());
                prop_assert!(reading.problems.contains(&flagged));
            }
        }
    }
    // Through a message, the archive's problems are the message's.
    let r = read(zip);
    prop_assert_eq!(&r.problems, &reading.problems);
    Ok(())
}

fn entry_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(META.to_string()),
        Just(DOC.to_string()),
        Just("ihe_xdm/subset01/doc00001.xml".to_string()),
        Just("../x".to_string()),
        Just("/abs/y".to_string()),
        Just("README.TXT".to_string()),
        "[A-Za-z0-9_./\\\\-]{0,24}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary zips of real, random and damaged entries under any names: never a panic, and
    /// every unsafe name is flagged.
    #[test]
    fn arbitrary_zips_are_read_without_panic(
        entries in proptest::collection::vec(
            (entry_name(), 0u8..4, proptest::collection::vec(any::<u8>(), 0..300), any::<usize>()),
            0..7,
        ),
    ) {
        let (meta, doc) = parts();
        let contents: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(name, kind, random, at)| {
                let content = match kind {
                    0 => meta.as_bytes().to_vec(),
                    1 => doc.clone(),
                    2 => {
                        let mut d = doc.clone();
                        let i = at % d.len();
                        d[i] ^= 0x20;
                        d
                    }
                    _ => random.clone(),
                };
                (name.clone(), content)
            })
            .collect();
        let files: Vec<(&str, &[u8])> =
            contents.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
        let zip = zip_of(&files);
        check_reading(&zip)?;
        let reading = xdm::inspect_archive(&zip);
        for (name, _) in &contents {
            if name.starts_with('/') || name.split(['/', '\\']).any(|c| c == "..") {
                let flagged = format!("unsafe entry name {name}");
                prop_assert!(reading.problems.contains(&flagged));
            }
        }
    }

    /// A valid archive with bytes flipped or cut: never a panic.
    #[test]
    fn damaged_zips_are_read_without_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let (meta, doc) = parts();
        let mut zip = zip_of(&[(META, meta.as_bytes()), (DOC, doc)]);
        for (at, b) in flips {
            let n = zip.len();
            zip[at % n] = b;
        }
        let n = zip.len();
        zip.truncate(n - cut % (n / 4));
        check_reading(&zip)?;
    }

    /// Arbitrary bytes as a message: a message or the one error, never a panic.
    #[test]
    fn arbitrary_bytes_read_without_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        match read_message(&data) {
            Ok(m) => prop_assert_eq!(&m.raw.0, &data),
            Err(e) => prop_assert_eq!(e.to_string(), "message: not a mail message: no header field"),
        }
    }
}

/// Writes the realistic seeds of the `read` fuzz target (`fuzz/seeds/`): messages made by the
/// composer, a patient reply, a DSN and an error MDN, and faulty archives and messages. Run it
/// when the composer changes: `cargo test -p mss-message --test receive -- --ignored`.
#[test]
#[ignore = "writes fuzz/seeds/"]
fn write_fuzz_seeds() {
    use mss_message::mdn::{MdnDisposition, MdnRequest, build_mdn};
    let dir = common::root().join("../../fuzz/seeds");
    let (meta, doc) = parts();
    let sent =
        compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("compose");
    let to_patient = compose_with(
        &example("patient-end-of-exchange.json"),
        &config(),
        &mut env(),
    )
    .expect("compose");
    let received = read_message(&sent.raw).expect("read");
    let error_mdn = build_mdn(
        &received,
        &MdnRequest {
            final_recipient: "jean.dupont@chu-exemple.mssante.fr".into(),
            label: None,
            disposition: MdnDisposition::Error {
                code: "902".into(),
                label: "Identifiant de patient inconnu".into(),
            },
        },
        &config(),
        &mut env(),
    )
    .expect("mdn");
    let dsn = format!(
        "From: MAILER-DAEMON@mx.chu-exemple.mssante.fr\r\n\
To: marie.martin@medecin.mssante.fr\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
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
Original-Envelope-Id: ENV1\r\n\
\r\n\
Final-Recipient: rfc822; jean.dupont@chu-exemple.mssante.fr\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
\r\n\
--b1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Message-ID: <{}>\r\n\
\r\n\
--b1--\r\n",
        sent.message_id
    );
    let patient_reply = b"From: Pierre-Antoine Santoni <185072A00401797@patient.mssante.fr>\r\n\
To: paul.leroy@labo-biologie-exemple.mssante.fr\r\nSubject: [FIN]\r\nX-MSS-MES: FIN\r\n\
In-Reply-To: <7848b5d7@labo-biologie-exemple.mssante.fr>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\n\
Merci.\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>Merci.</p>\r\n--alt--\r\n";
    let mut tampered = doc.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 0x01;
    let bomb = vec![b' '; 8 * 1024 * 1024];
    let rplc = meta.replacen(
        " </rim:RegistryObjectList>",
        "  <rim:Association id=\"urn:uuid:7a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d\" \
associationType=\"urn:ihe:iti:2007:AssociationType:RPLC\" \
sourceObject=\"urn:uuid:164fcebd-669b-5d97-a3f4-60055fa941ea\" \
targetObject=\"urn:uuid:0f3c9a52-41b7-4e0e-9d55-6a1c2b3d4e5f\"/>\n </rim:RegistryObjectList>",
        1,
    );
    let other_patient = String::from_utf8(doc.clone())
        .expect("utf8")
        .replace("279037505612309", "279035121518989")
        .into_bytes();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("read-xdm-professional.eml", sent.raw.clone()),
        ("read-xdm-patient-fin.eml", to_patient.raw.clone()),
        ("read-patient-reply.eml", patient_reply.to_vec()),
        ("read-dsn.eml", dsn.into_bytes()),
        ("read-mdn-error-902.eml", error_mdn.raw.clone()),
        (
            "read-truncated.eml",
            sent.raw[..sent.raw.len() - 2000].to_vec(),
        ),
        (
            "read-hash-mismatch.eml",
            message_with(&zip_of(&[(META, meta.as_bytes()), (DOC, &tampered)])),
        ),
        (
            "read-unsafe-names.zip",
            zip_of(&[
                ("../x", b"evil"),
                ("/etc/x", b"evil"),
                (META, meta.as_bytes()),
                (DOC, doc),
            ]),
        ),
        (
            "read-duplicates.zip",
            zip_of(&[
                (META, meta.as_bytes()),
                (DOC, doc),
                (DOC, b"other"),
                ("ihe_xdm/subset01/doc00001.xml", b"x"),
            ]),
        ),
        (
            "read-bomb.zip",
            zip_of(&[(META, meta.as_bytes()), (DOC, &bomb)]),
        ),
        (
            "read-rplc.zip",
            zip_of(&[(META, rplc.as_bytes()), (DOC, doc)]),
        ),
        (
            "read-patient-mismatch.zip",
            zip_of(&[(META, meta.as_bytes()), (DOC, &other_patient)]),
        ),
    ];
    for (name, bytes) in seeds {
        assert!(bytes.len() <= 65_536, "{name}: over the fuzzer's -max_len");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
