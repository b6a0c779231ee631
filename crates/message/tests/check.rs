//! The conformance checker (docs/mssante.md K1): every rule is broken by a message and kept by the
//! conformant ones; every message mss composes passes.

mod common;

use base64::Engine;
use mss_message::check::{CheckConfig, Finding, RULES, Severity, check_message, has_errors};
use mss_message::mdn::{MdnDisposition, MdnRequest, build_mdn};
use mss_message::{
    Attachment, ComposeRequest, Content, EndOfExchangeStyle, Rendering, compose_with, read_message,
    xdm,
};

fn config() -> CheckConfig {
    CheckConfig {
        trust: mss_message::Trust::whitelist(common::whitelist()),
        ..CheckConfig::default()
    }
}

fn check(raw: &[u8]) -> Vec<Finding> {
    check_message(raw, &config())
}

fn compose(req: &ComposeRequest) -> Vec<u8> {
    compose_with(req, &common::config(), &mut common::env())
        .expect("composes")
        .raw
}

/// A PDF/A: the header and the XMP identification the checker looks for.
const PDF_A: &[u8] =
    b"%PDF-1.4\n<x:xmpmeta><pdfaid:part>1</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></x:xmpmeta>\n%%EOF\n";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The example to a professional with its PDF rendering: CDA, XDM, PDF, MDN asked.
fn professional_request() -> ComposeRequest {
    let mut req = common::example("cda-to-professional.json");
    req.documents[0].rendering = Some(Rendering {
        content: Content::Base64(b64(PDF_A)),
        filename: None,
        file_number: Some("D-4217".into()),
    });
    req
}

fn professional() -> String {
    text(compose(&professional_request()))
}

fn patient() -> String {
    text(compose(&common::example("patient-end-of-exchange.json")))
}

/// A message without document: only X-MSS-NIL.
fn plain_request() -> ComposeRequest {
    let mut req = common::example("cda-to-professional.json");
    req.documents.clear();
    req.patient = None;
    req.subject = Some("Rendez-vous".into());
    req
}

fn text(raw: Vec<u8>) -> String {
    String::from_utf8(raw).expect("composed messages are UTF-8")
}

fn replace(m: &str, from: &str, to: &str) -> String {
    assert!(m.contains(from), "{from:?} not in the message");
    m.replacen(from, to, 1)
}

/// The header block's lines, each field with its continuation lines.
fn fields(m: &str) -> (Vec<String>, &str) {
    let (head, body) = m.split_once("\r\n\r\n").expect("header and body");
    let mut out: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match out.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push_str("\r\n");
                last.push_str(line);
            }
            _ => out.push(line.to_string()),
        }
    }
    (out, body)
}

fn without_header(m: &str, name: &str) -> String {
    let (fields, body) = fields(m);
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let before = fields.len();
    let kept: Vec<String> = fields
        .into_iter()
        .filter(|f| !f.to_ascii_lowercase().starts_with(&prefix))
        .collect();
    assert!(kept.len() < before, "no {name} field");
    format!("{}\r\n\r\n{body}", kept.join("\r\n"))
}

fn with_header(m: &str, name: &str, value: &str) -> String {
    let (fields, body) = fields(m);
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut kept: Vec<String> = fields
        .into_iter()
        .filter(|f| !f.to_ascii_lowercase().starts_with(&prefix))
        .collect();
    kept.insert(0, format!("{name}: {value}"));
    format!("{}\r\n\r\n{body}", kept.join("\r\n"))
}

/// The message with its IHE_XDM.zip rewritten: `edit` changes the entries (name, bytes), and
/// `deflate` the level each entry is written with.
fn with_zip(
    m: &str,
    deflate: Option<i64>,
    edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> String {
    let at = m.find("filename=\"IHE_XDM.zip\"").expect("zip part");
    let start = at + m[at..].find("\r\n\r\n").expect("part header") + 4;
    let end = start + m[start..].find("\r\n--").expect("part end");
    let zip = base64::engine::general_purpose::STANDARD
        .decode(m[start..end].replace("\r\n", ""))
        .expect("base64");
    let mut entries = common::unzip(&zip);
    edit(&mut entries);
    let files: Vec<xdm::ArchiveFile<'_>> = entries
        .iter()
        .filter(|(n, _)| !n.ends_with('/'))
        .map(|(n, c)| xdm::ArchiveFile {
            path: n,
            content: c,
            deflate,
        })
        .collect();
    let zip =
        xdm::write_archive(&files, time::macros::datetime!(2026-11-23 09:30 UTC)).expect("zip");
    let encoded = b64(&zip);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!("{}{}{}", &m[..start], lines.join("\r\n"), &m[end..])
}

fn edit_entry(entries: &mut [(String, Vec<u8>)], suffix: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let e = entries
        .iter_mut()
        .find(|(n, _)| n.ends_with(suffix))
        .expect("entry");
    f(&mut e.1);
}

fn edit_metadata(m: &str, f: impl FnOnce(String) -> String) -> String {
    with_zip(m, None, |entries| {
        edit_entry(entries, "METADATA.XML", |bytes| {
            *bytes = f(String::from_utf8(std::mem::take(bytes)).expect("utf-8")).into_bytes();
        })
    })
}

fn rules(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

/// The rule is found in `broken`, with its severity, and not in `conformant`.
fn breaks(rule: &str, broken: &str, conformant: &str) {
    let found = check(broken.as_bytes());
    let hits: Vec<&Finding> = found.iter().filter(|f| f.rule == rule).collect();
    assert!(!hits.is_empty(), "{rule} not found: {found:#?}");
    let expected = RULES
        .iter()
        .find(|r| r.id == rule)
        .map(|r| r.severity)
        .expect("a listed rule");
    assert!(hits.iter().all(|f| f.severity == expected), "{hits:?}");
    let clean = check(conformant.as_bytes());
    assert!(
        !rules(&clean).contains(&rule),
        "{rule} found in the conformant message: {clean:#?}"
    );
}

#[test]
fn every_message_mss_composes_passes() {
    let mut requests = vec![
        common::example("cda-to-professional.json"),
        common::example("patient-end-of-exchange.json"),
        professional_request(),
        plain_request(),
    ];
    let mut unqualified = common::example("cda-to-professional.json");
    if let Some(p) = unqualified.patient.as_mut() {
        p.qualified = false;
    }
    requests.push(unqualified);
    let mut reply = plain_request();
    reply.in_reply_to = Some("<1234@chu-exemple.mssante.fr>".into());
    reply.references = vec![
        "<1000@chu-exemple.mssante.fr>".into(),
        "<1234@chu-exemple.mssante.fr>".into(),
    ];
    requests.push(reply);
    let mut bcc_only = plain_request();
    bcc_only.recipients.bcc = std::mem::take(&mut bcc_only.recipients.to);
    bcc_only.recipients.cc.clear();
    requests.push(bcc_only);
    let mut html = plain_request();
    html.body.html = Some("<p>Rendez-vous demain à 10 h</p>".into());
    requests.push(html);
    let mut letter = plain_request();
    letter.attachments.push(Attachment {
        filename: "lettre.txt".into(),
        content_type: "text/plain".into(),
        content: Content::Text("Madame, Monsieur,".into()),
    });
    requests.push(letter);
    let mut two = professional_request();
    let mut second = two.documents[0].clone();
    let cda =
        std::fs::read_to_string(common::example_path("patient-end-of-exchange.xml")).expect("cda");
    second.cda = Content::Text(cda.replace("185072A00401797", "279037505612309"));
    second.rendering = None;
    two.documents.push(second);
    requests.push(two);
    for req in &requests {
        let raw = compose(req);
        let found = check(&raw);
        assert!(found.is_empty(), "{:?}: {found:#?}", req.subject);
    }
    // The subject style of the end of exchange.
    let mut cfg = common::config();
    cfg.end_of_exchange = EndOfExchangeStyle::Subject;
    let mut fin = common::example("patient-end-of-exchange.json");
    fin.documents.clear();
    let raw = compose_with(&fin, &cfg, &mut common::env())
        .expect("composes")
        .raw;
    assert_eq!(check(&raw), vec![]);
}

#[test]
fn mss_read_receipts_pass() {
    let sent = compose(&professional_request());
    let received = read_message(&sent).expect("reads");
    for disposition in [
        MdnDisposition::Processed,
        MdnDisposition::Error {
            code: "902".into(),
            label: "Identifiant de patient inconnu".into(),
        },
    ] {
        let req = MdnRequest {
            final_recipient: "jean.dupont@chu-exemple.mssante.fr".into(),
            label: Some("CHU Exemple".into()),
            disposition,
        };
        let mdn = build_mdn(&received, &req, &common::config(), &mut common::env()).expect("mdn");
        assert_eq!(check(&mdn.raw), vec![], "{req:?}");
    }
}

#[test]
fn segur_headers() {
    let pro = professional();
    breaks("ECO.2.4.3", &without_header(&pro, "X-MSS-NIL"), &pro);
    breaks(
        "ECO.2.4.3",
        &with_header(&pro, "X-MSS-NIL", "DEV 935997"),
        &pro,
    );

    breaks("ECO.2.4.1", &without_header(&pro, "X-MSS-CODECDA"), &pro);
    breaks(
        "ECO.2.4.1",
        &with_header(&pro, "X-MSS-CODECDA", "34112-3"),
        &pro,
    );
    let plain = text(compose(&plain_request()));
    breaks(
        "ECO.2.4.1",
        &with_header(&plain, "X-MSS-CODECDA", "11488-4"),
        &plain,
    );

    breaks("ECO.2.4.2", &without_header(&pro, "X-MSS-INS"), &pro);
    breaks("ECO.2.4.2", &with_header(&pro, "X-MSS-INS", "Y"), &pro);
    breaks("ECO.2.4.2", &with_header(&plain, "X-MSS-INS", "N"), &plain);
    // O, but the archive lacks a trait of a qualified INS.
    let no_sex = edit_metadata(&pro, |x| x.replace("<rim:Value>PID-8|F</rim:Value>", ""));
    breaks("ECO.2.4.2", &no_sex, &pro);
}

#[test]
fn documents_travel_in_ihe_xdm() {
    let pro = professional();
    let plain = text(compose(&plain_request()));
    let mut loose = plain_request();
    loose.attachments.push(Attachment {
        filename: "CR.XML".into(),
        content_type: "text/xml".into(),
        content: Content::Text(
            std::fs::read_to_string(common::example_path("cda-to-professional.xml")).expect("cda"),
        ),
    });
    breaks("ECO.2.1.1", &text(compose(&loose)), &plain);
    let not_zip = with_zip(&pro, None, |_| {});
    let at = not_zip.find("filename=\"IHE_XDM.zip\"").expect("zip");
    let start = at + not_zip[at..].find("\r\n\r\n").expect("body") + 4;
    let garbage = format!("{}{}{}", &not_zip[..start], b64(b"not a zip at all"), {
        let end = start + not_zip[start..].find("\r\n--").expect("end");
        &not_zip[end..]
    });
    breaks("ECO.2.1.1", &garbage, &pro);
    let no_metadata = with_zip(&pro, None, |e| {
        e.retain(|(n, _)| !n.ends_with("METADATA.XML"))
    });
    breaks("ECO.2.1.1", &no_metadata, &pro);

    let other_oid = edit_metadata(&pro, |x| {
        x.replace("&amp;1.2.250.1.213.1.4.10&amp;", "&amp;1.2.3.4.5&amp;")
    });
    breaks("ECO.2.1.2", &other_oid, &pro);
    let bad_key = edit_metadata(&pro, |x| x.replace("279037505612309", "279037505612308"));
    breaks("ECO.2.1.2", &bad_key, &pro);
}

#[test]
fn subject_of_a_document() {
    let pro = professional();
    breaks(
        "ECO.2.1.3",
        &with_header(&pro, "Subject", "Compte rendu"),
        &pro,
    );
    breaks(
        "ECO.2.1.3",
        &with_header(
            &pro,
            "Subject",
            "XDM/1.0/DDM+CR de consultation DURAND Camille",
        ),
        &pro,
    );
    breaks(
        "ECO.2.1.3",
        &with_header(
            &pro,
            "Subject",
            "XDM/1.0/DDM+CR de consultation DUPONT Camille 15/03/1979",
        ),
        &pro,
    );
    breaks(
        "ECO.2.1.3",
        &with_header(
            &pro,
            "Subject",
            "XDM/1.0/DDM+CR de consultation DURAND Camille 16/03/1979",
        ),
        &pro,
    );
    let plain = text(compose(&plain_request()));
    breaks(
        "mss.subject",
        &with_header(
            &plain,
            "Subject",
            "XDM/1.0/DDM+CR DURAND Camille 15/03/1979",
        ),
        &plain,
    );
}

#[test]
fn pdf_renderings() {
    let pro = professional();
    let mut two_pdfs = professional_request();
    two_pdfs.attachments.push(Attachment {
        filename: "20261120_CR_de_consultation_DURAND_Camille_D_4218.pdf".into(),
        content_type: "application/pdf".into(),
        content: Content::Base64(b64(PDF_A)),
    });
    breaks("ECO.2.1.5", &text(compose(&two_pdfs)), &pro);

    let named = |name: &str| {
        let mut req = professional_request();
        if let Some(r) = req.documents[0].rendering.as_mut() {
            r.filename = Some(name.into());
        }
        text(compose(&req))
    };
    breaks("ECO.2.1.6", &named("compte-rendu.pdf"), &pro);
    breaks("ECO.2.1.6", &named("20261120_CR_DURAND.pdf"), &pro);
    breaks(
        "ECO.2.1.6",
        &named("20261120_CR_de_consultation_Durand_Camille.pdf"),
        &pro,
    );

    let mut not_pdfa = professional_request();
    if let Some(r) = not_pdfa.documents[0].rendering.as_mut() {
        r.content = Content::Base64(b64(b"%PDF-1.4\n%%EOF\n"));
    }
    breaks("mss.pdf", &text(compose(&not_pdfa)), &pro);
    let mut letter = plain_request();
    letter.attachments.push(Attachment {
        filename: "lettre.pdf".into(),
        content_type: "application/pdf".into(),
        content: Content::Base64(b64(PDF_A)),
    });
    let letter = check(&compose(&letter));
    assert_eq!(
        rules(&letter),
        ["mss.pdf"],
        "a PDF without CDA is a warning"
    );
    assert!(!has_errors(&letter));
}

#[test]
fn message_ids_and_threading() {
    let pro = professional();
    breaks("ECO.2.2.1", &without_header(&pro, "Message-ID"), &pro);
    breaks(
        "ECO.2.2.1",
        &with_header(&pro, "Message-ID", "1234.chu"),
        &pro,
    );
    breaks(
        "ECO.2.2.2",
        &with_header(&pro, "In-Reply-To", "1234@chu"),
        &pro,
    );
    breaks(
        "ECO.2.2.2",
        &with_header(&pro, "References", "<a@b> c@d"),
        &pro,
    );
    let reply = with_header(&pro, "In-Reply-To", "<b@chu-exemple.mssante.fr>");
    let reply = with_header(
        &reply,
        "References",
        "<a@chu-exemple.mssante.fr> <b@chu-exemple.mssante.fr>",
    );
    breaks(
        "mss.thread",
        &with_header(
            &reply,
            "References",
            "<b@chu-exemple.mssante.fr> <a@chu-exemple.mssante.fr>",
        ),
        &reply,
    );
}

#[test]
fn text_parts_are_utf8() {
    let pro = professional();
    breaks(
        "ECO.2.2.3",
        &replace(
            &pro,
            "text/plain; charset=\"utf-8\"",
            "text/plain; charset=\"iso-8859-1\"",
        ),
        &pro,
    );
    let latin1 = b"From: Dr_Marie_MARTIN <marie.martin@medecin.mssante.fr>\r\nTo: jean.dupont@chu-exemple.mssante.fr\r\nSubject: x\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMessage-ID: <1@medecin.mssante.fr>\r\nX-MSS-NIL: DEV935997\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nD\xe9j\xe0 vu\r\n";
    let found = check(latin1);
    assert_eq!(rules(&found), ["ECO.2.2.3"], "{found:?}");
    let utf8 = String::from_utf8_lossy(latin1).replace("D\u{fffd}j\u{fffd}", "Déjà");
    assert_eq!(check(utf8.as_bytes()), vec![]);
    let undeclared = utf8.replace("; charset=utf-8", "");
    assert_eq!(rules(&check(undeclared.as_bytes())), ["ECO.2.2.3"]);

    breaks("ECO.2.2.4", &utf8.replace("text/plain", "text/html"), &utf8);
}

#[test]
fn sender_label() {
    let pro = professional();
    breaks(
        "ECO.2.2.7",
        &with_header(&pro, "From", "<marie.martin@medecin.mssante.fr>"),
        &pro,
    );
    breaks(
        "ECO.2.2.7",
        &with_header(
            &pro,
            "From",
            "marie.martin@medecin.mssante.fr <marie.martin@medecin.mssante.fr>",
        ),
        &pro,
    );
}

#[test]
fn patients() {
    let pat = patient();
    breaks(
        "ECO.2.2.6",
        &replace(&pat, "To: <185072A00401797@", "To: <185072A00401798@"),
        &pat,
    );
    breaks("ECO.2.2.6", &with_header(&pat, "X-MSS-INS", "N"), &pat);
    // Another valid INS than the archive's patient.
    breaks(
        "ECO.2.2.6",
        &replace(&pat, "To: <185072A00401797@", "To: <279037505612309@"),
        &pat,
    );

    breaks("ECO.2.2.8", &with_header(&pat, "X-MSS-MES", "fin"), &pat);
    let pro = professional();
    breaks("ECO.2.2.8", &with_header(&pro, "X-MSS-MES", "FIN"), &pro);
    let plain = text(compose(&plain_request()));
    breaks(
        "ECO.2.2.8",
        &with_header(&plain, "Subject", "[fin]"),
        &plain,
    );
    breaks(
        "mss.subject",
        &with_header(&plain, "Subject", "[FIN]"),
        &plain,
    );

    let small = CheckConfig {
        patient_max_bytes: 1_000,
        ..config()
    };
    let f = check_message(pat.as_bytes(), &small);
    assert_eq!(rules(&f), ["mss.mes.size"], "{f:?}");
    assert!(!rules(&check(pat.as_bytes())).contains(&"mss.mes.size"));
    // The same size towards a professional is not the patient limit's business.
    assert!(!rules(&check_message(professional().as_bytes(), &small)).contains(&"mss.mes.size"));
}

#[test]
fn mime_and_rfc_5322() {
    let pro = professional();
    let cut = &pro[..pro.len() - 200];
    breaks("mss.mime", cut, &pro);
    breaks("mss.rfc5322", &without_header(&pro, "Date"), &pro);
    breaks("mss.rfc5322", &with_header(&pro, "Date", "yesterday"), &pro);
    breaks(
        "mss.rfc5322",
        &replace(&pro, "To: <jean.dupont@", "To: <jean dupont@"),
        &pro,
    );
    breaks(
        "mss.trust",
        &replace(
            &pro,
            "To: <jean.dupont@chu-exemple.mssante.fr>",
            "To: <jean.dupont@gmail.com>",
        ),
        &pro,
    );
    assert_eq!(rules(&check(b"")), ["mss.mime"]);
    assert!(has_errors(&check(b"just text, no header")));
}

#[test]
fn archive_contents() {
    let pro = professional();
    breaks(
        "mss.xdm.hash",
        &with_zip(&pro, None, |e| {
            edit_entry(e, "DOC00001.XML", |b| {
                let at = b.len() - 20;
                b[at] ^= 1;
            })
        }),
        &pro,
    );
    breaks(
        "mss.xdm.size",
        &with_zip(&pro, None, |e| {
            edit_entry(e, "DOC00001.XML", |b| b.push(b'\n'))
        }),
        &pro,
    );
    breaks(
        "mss.xdm.patient",
        &edit_metadata(&pro, |x| x.replace("279037505612309", "185072A00401797")),
        &pro,
    );
    breaks(
        "mss.xdm.layout",
        &with_zip(&pro, None, |e| {
            e.retain(|(n, _)| !n.ends_with("DOC00001.XML"))
        }),
        &pro,
    );
    breaks(
        "mss.xdm.layout",
        &with_zip(&pro, None, |e| {
            e.push(("../../etc/passwd".into(), b"x".to_vec()))
        }),
        &pro,
    );
    breaks(
        "mss.xdm.limits",
        &with_zip(&pro, Some(6), |e| {
            edit_entry(e, "DOC00001.XML", |b| *b = vec![0; 3 << 20])
        }),
        &with_zip(&pro, Some(6), |_| {}),
    );
    breaks(
        "mss.xdm.files",
        &with_zip(&pro, None, |e| e.retain(|(n, _)| n != "README.TXT")),
        &pro,
    );
    breaks(
        "mss.xdm.cda",
        &edit_metadata(&pro, |x| {
            x.replace(
                "nodeRepresentation=\"11488-4\"",
                "nodeRepresentation=\"34133-9\"",
            )
        }),
        &pro,
    );
    breaks(
        "mss.xdm.part",
        &replace(
            &pro,
            "Content-Type: application/zip",
            "Content-Type: application/octet-stream",
        ),
        &pro,
    );
}

#[test]
fn read_receipts_follow_the_receiving_guide() {
    let sent = compose(&professional_request());
    let received = read_message(&sent).expect("reads");
    let mdn = |disposition| {
        let req = MdnRequest {
            final_recipient: "jean.dupont@chu-exemple.mssante.fr".into(),
            label: Some("CHU Exemple".into()),
            disposition,
        };
        text(
            build_mdn(&received, &req, &common::config(), &mut common::env())
                .expect("mdn")
                .raw,
        )
    };
    let ok = mdn(MdnDisposition::Processed);
    breaks(
        "mss.mdn",
        &replace(&ok, "Original-Message-ID:", "X-Original-Message-ID:"),
        &ok,
    );
    breaks(
        "mss.mdn",
        &replace(&ok, "Original-Recipient:", "X-Original-Recipient:"),
        &ok,
    );
    breaks(
        "mss.mdn",
        &replace(&ok, "automatic-action/MDN-sent-automatically", "automatic"),
        &ok,
    );
    let ko = mdn(MdnDisposition::Error {
        code: "902".into(),
        label: "Identifiant de patient inconnu".into(),
    });
    breaks(
        "mss.mdn.code",
        &replace(&ko, "Error: 902^", "Error: 999^"),
        &ko,
    );
    breaks("mss.mdn", &replace(&ko, "Error: 902^", "Error: 903^"), &ko);
}

/// Each rule of the table is exercised above (kept in step by hand: this list is the table's).
#[test]
fn every_rule_has_its_test() {
    let source: String = include_str!("check.rs").split_whitespace().collect();
    for r in RULES {
        assert!(
            source.contains(&format!("breaks(\"{}\"", r.id))
                || source.contains(&format!("[\"{}\"]", r.id)),
            "{} has no breaking message here",
            r.id
        );
    }
    let _ = Severity::Warning;
}

/// A message the MIME parser fails on (its panic contained by the reader): the failure is the
/// finding, and the body rules, which had nothing to read, say nothing.
#[test]
fn a_parser_failure_is_a_finding_not_a_crash() {
    let raw = std::fs::read(common::root().join("tests/fixtures/mail-parser-0.11.9-panic.eml"))
        .expect("fixture");
    let found = check(&raw);
    assert!(has_errors(&found));
    let read = read_message(&raw).expect("reads");
    if read.problems.first().map(String::as_str) == Some(mss_message::PARSER_FAILURE) {
        assert!(
            found
                .iter()
                .any(|f| f.rule == "mss.mime" && f.message == mss_message::PARSER_FAILURE),
            "{found:#?}"
        );
        assert!(!rules(&found).contains(&"ECO.2.2.4"), "{found:#?}");
    }
}

/// The sender label is asked of receipts too (ECO.2.2.7: every message sent).
#[test]
fn a_receipt_without_a_sender_label_is_reported() {
    let sent = compose(&professional_request());
    let received = read_message(&sent).expect("reads");
    let req = MdnRequest {
        final_recipient: "jean.dupont@chu-exemple.mssante.fr".into(),
        label: None,
        disposition: MdnDisposition::Processed,
    };
    let mdn = build_mdn(&received, &req, &common::config(), &mut common::env()).expect("mdn");
    assert_eq!(rules(&check(&mdn.raw)), ["ECO.2.2.7"]);
}
