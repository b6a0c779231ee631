//! Property tests: random patients, names and documents survive compose -> read; no reader
//! panics on random or mutated input (the stable twin of the cargo-fuzz target).

mod common;

use common::{config, env, example};
use mss_message::{
    ComposeRequest, Content, InsAuthority, PatientRequest, Sex, compose_with, read_message,
};
use mss_testing::fuzzing;
use proptest::prelude::*;

fn ins_strategy() -> impl Strategy<Value = String> {
    (
        1u64..=2,
        0u64..100,
        1u64..=12,
        prop_oneof![Just(None), Just(Some("2A")), Just(Some("2B"))],
        1u64..96,
        1u64..990,
        1u64..999,
    )
        .prop_map(|(sex, yy, mm, corsica, dept, commune, order)| {
            let dept_s = corsica.map_or(format!("{dept:02}"), str::to_string);
            let digits_dept = match corsica {
                Some("2A") => "19".to_string(),
                Some(_) => "18".to_string(),
                None => format!("{dept:02}"),
            };
            let nir = format!("{sex}{yy:02}{mm:02}{digits_dept}{commune:03}{order:03}");
            let n: u64 = nir.parse().unwrap_or(0);
            format!(
                "{sex}{yy:02}{mm:02}{dept_s}{commune:03}{order:03}{:02}",
                97 - n % 97
            )
        })
}

fn name_strategy() -> impl Strategy<Value = String> {
    // Letters with French diacritics, inner spaces, hyphens, apostrophes, and HL7 delimiters.
    "[A-Za-zÀÂÇÉÈÊËÎÏÔÛÙÜŸàâçéèêëîïôûùüÿœ][A-Za-zÀÂÇÉÈÊËÎÏÔÛÙÜŸàâçéèêëîïôûùüÿœ '\\-^|&~]{0,24}[A-Za-zé]"
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn request(
    ins: &str,
    authority: InsAuthority,
    birth: &str,
    first: &str,
    date: &str,
    sex: Sex,
    bodies: &[String],
) -> ComposeRequest {
    let mut req = example("cda-to-professional.json");
    let template = match &req.documents[0].cda {
        Content::Text(t) => t.clone(),
        Content::Base64(_) => String::new(),
    };
    let proto = req.documents[0].clone();
    req.documents = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut d = proto.clone();
            d.cda = Content::Text(
                template
                    .replace(
                        "root=\"1.2.250.1.213.1.4.10\" extension=\"279037505612309\"",
                        &format!("root=\"{}\" extension=\"{ins}\"", authority.oid()),
                    )
                    .replace("CR-2026-004217", &format!("CR-{i}"))
                    .replace("Examen cardiovasculaire normal.", &xml_escape(body)),
            );
            d
        })
        .collect();
    req.patient = Some(PatientRequest {
        ins: ins.into(),
        ins_authority: authority,
        qualified: true,
        birth_name: birth.into(),
        first_given_name: first.into(),
        birth_date: date.into(),
        sex,
    });
    req
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compose_then_read_keeps_documents_and_patient(
        ins in ins_strategy(),
        authority in prop_oneof![Just(InsAuthority::Prod), Just(InsAuthority::Test), Just(InsAuthority::Demo)],
        birth in name_strategy(),
        first in name_strategy(),
        (y, m, d) in (1900i32..2026, 1u8..=12, 1u8..=28),
        sex in prop_oneof![Just(Sex::M), Just(Sex::F), Just(Sex::U)],
        bodies in proptest::collection::vec("\\PC{0,400}", 1..4),
    ) {
        let date = format!("{y:04}{m:02}{d:02}");
        let req = request(&ins, authority, &birth, &first, &date, sex, &bodies);
        let sent = compose_with(&req, &config(), &mut env()).expect("composes");
        let got = read_message(&sent.raw).expect("reads");
        prop_assert_eq!(got.subject.clone(), sent.subject.clone());
        let shown_date = format!(" {d:02}/{m:02}/{y:04}");
        prop_assert!(sent.subject.ends_with(&shown_date));
        prop_assert_eq!(got.mss.codecda.clone(), vec!["11488-4".to_string()]);
        let archive = got.xdm[0].archive.as_ref().expect("archive verified");
        let docs: Vec<_> = archive.documents().collect();
        prop_assert_eq!(docs.len(), req.documents.len());
        for (doc, sent_doc) in docs.iter().zip(&req.documents) {
            let Content::Text(t) = &sent_doc.cda else { unreachable!() };
            prop_assert_eq!(&doc.content, &t.as_bytes().to_vec());
        }
        let p = got.patient().expect("identity");
        prop_assert_eq!(p.id, ins);
        prop_assert_eq!(p.authority, Some(authority));
        prop_assert_eq!(p.birth_name, Some(birth.trim().to_uppercase()));
        prop_assert_eq!(p.first_given_name, Some(first.trim().to_string()));
        prop_assert_eq!(p.birth_date, Some(date));
        prop_assert_eq!(p.sex, Some(sex));
    }

    #[test]
    fn patient_addresses_follow_the_ins(ins in ins_strategy()) {
        let mut req = example("patient-end-of-exchange.json");
        req.documents.clear();
        req.recipients.to = vec![format!("{ins}@patient.mssante.fr")];
        if let Some(p) = req.patient.as_mut() { p.ins = ins.clone(); }
        let sent = compose_with(&req, &config(), &mut env()).expect("composes");
        prop_assert_eq!(sent.envelope.recipients.iter().map(|r| r.to_string()).collect::<Vec<_>>(), vec![format!("{ins}@patient.mssante.fr")]);
        // One digit off in the key and the address is refused.
        let mut bad = ins.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'9' { b'0' } else { bad[last] + 1 };
        req.recipients.to = vec![format!("{}@patient.mssante.fr", String::from_utf8_lossy(&bad))];
        let e = compose_with(&req, &config(), &mut env()).err().map(|e| e.to_string()).unwrap_or_default();
        prop_assert!(e.starts_with("recipients.to[0]: "), "{}", e);
    }

    #[test]
    fn readers_survive_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzzing::read_any(&data);
    }

    #[test]
    fn readers_survive_mutated_messages(
        cut in 0usize..40_000,
        flips in proptest::collection::vec((0usize..40_000, any::<u8>()), 0..16),
    ) {
        let sent = compose_with(&example("cda-to-professional.json"), &config(), &mut env()).expect("composes");
        let mut raw = sent.raw.clone();
        for (at, b) in flips {
            let n = raw.len();
            raw[at % n] = b;
        }
        raw.truncate(cut.max(1).min(raw.len()));
        fuzzing::read_any(&raw);
        // And the archive alone, mutated.
        let got = read_message(&sent.raw).expect("reads");
        let mut zip = got.attachments[got.xdm[0].attachment].content.clone();
        let n = zip.len();
        zip[cut % n] ^= 0x5a;
        fuzzing::read_any(&zip);
    }

    #[test]
    fn ins_parsing_never_panics(s in "\\PC{0,20}") {
        let _ = mss_message::Ins::parse(&s);
    }
}

/// A label of a domain name, in any case.
fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?"
}

/// `mssante.fr` with each letter in either case.
fn mssante_any_case() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), 10).prop_map(|up| {
        "mssante.fr"
            .chars()
            .zip(up)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

proptest! {
    /// docs/mssante.md M8, issue 17: without a whitelist, mssante.fr and its sub-domains are inside, in any case.
    #[test]
    fn the_default_rule_takes_mssante_fr_and_its_sub_domains(
        labels in proptest::collection::vec(label(), 0..4),
        root in mssante_any_case(),
    ) {
        let domain = labels.iter().map(|l| format!("{l}.")).collect::<String>() + &root;
        prop_assert!(mss_message::in_mssante_domain(&domain), "{}", domain);
        let trust = mss_message::Trust::mssante_only();
        let address = format!("x@{domain}");
        prop_assert!(trust.allows(&address));
        prop_assert!(trust.check("to", &address).is_ok());
    }

    /// Only on label boundaries: `evilmssante.fr`, `mssante.fr.example.com` and the like stay outside.
    #[test]
    fn the_default_rule_refuses_look_alike_domains(
        prefix in "[a-zA-Z0-9-]{1,12}",
        labels in proptest::collection::vec(label(), 1..3),
        root in mssante_any_case(),
    ) {
        let glued = format!("{prefix}{root}");
        prop_assert!(!mss_message::in_mssante_domain(&glued), "{}", glued);
        let suffixed = format!("{root}.{}", labels.join("."));
        prop_assert!(!mss_message::in_mssante_domain(&suffixed), "{}", suffixed);
        let trust = mss_message::Trust::mssante_only();
        for d in [&glued, &suffixed] {
            let address = format!("x@{d}");
            let e = trust.check("to", &address).err().map(|e| e.to_string()).unwrap_or_default();
            prop_assert!(e.contains("mss whitelist update"), "{}", e);
        }
    }

    /// Any text: an answer, never a panic.
    #[test]
    fn the_default_rule_never_panics(domain in "\\PC{0,40}") {
        let inside = mss_message::in_mssante_domain(&domain);
        let lower = domain.to_lowercase();
        prop_assert!(!inside || lower == "mssante.fr" || lower.ends_with(".mssante.fr") || lower.ends_with(".mssante.fr."));
    }
}
