//! Properties of the parser, writer and MLLP framing, on generated messages and on the agency's
//! examples (tests/fixtures).

use mss_hl7::mllp::{FrameDecoder, frame};
use mss_hl7::{Charset, Delimiters, Message, Segment};
use proptest::prelude::*;

const FIXTURES: [&str; 6] = [
    "sending-mdm-t02.hl7",
    "sending-mdm-t10.hl7",
    "sending-mdm-t04.hl7",
    "sending-oru-r01.hl7",
    "sending-ack.hl7",
    "receiving-mdm-t02.hl7",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn agency_examples_are_written_back_byte_for_byte() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // the files end segments with line feeds; HL7 with carriage returns
        let mut expected = String::from_utf8(bytes).expect("UTF-8").replace('\n', "\r");
        if !expected.ends_with('\r') {
            expected.push('\r');
        }
        assert_eq!(m.to_text(), expected, "{name}");
        mss_hl7::fuzz_one(&m.to_bytes());
    }
}

#[test]
fn agency_example_fields() {
    let m = Message::parse(&fixture("sending-oru-r01.hl7")).expect("parses");
    assert_eq!(m.message_type().0, "ORU");
    assert_eq!(m.version(), "2.5");
    let prts: Vec<String> = m
        .segments()
        .iter()
        .filter(|s| s.name() == "PRT" && s.field(4).component(1).text() == "RCT")
        .map(|s| s.field(15).component(4).text().into_owned())
        .collect();
    assert_eq!(
        prts,
        [
            "adam.hoda@test-ci-sis.mssante.fr",
            "27707279035121518989@patient.mssante.fr"
        ]
    );
}

/// Any text, delimiters and line ends included.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('|'),
            Just('^'),
            Just('~'),
            Just('\\'),
            Just('&'),
            Just('\r'),
            Just('\n'),
            Just('é'),
            Just('€'),
            any::<char>(),
            prop::char::range('a', 'z'),
        ],
        0..12,
    )
    .prop_map(|c| c.into_iter().collect())
}

proptest! {
    #[test]
    fn any_text_survives_escaping_writing_and_parsing(
        values in prop::collection::vec(prop::collection::vec(text(), 1..4), 1..6),
        latin9 in any::<bool>(),
    ) {
        let d = Delimiters::default();
        let charset = if latin9 { Charset::Latin9 } else { Charset::Utf8 };
        // Latin-9 writes what it can: keep to characters it has
        let values: Vec<Vec<String>> = values
            .into_iter()
            .map(|f| {
                f.into_iter()
                    .map(|t| {
                        if latin9 {
                            charset.decode(&charset.encode(&t)).unwrap_or_default()
                        } else {
                            t
                        }
                    })
                    .collect()
            })
            .collect();
        let mut obx = Segment::new("OBX");
        for (i, comps) in values.iter().enumerate() {
            let parts: Vec<&str> = comps.iter().map(String::as_str).collect();
            obx.set(i + 1, d.components(&parts));
        }
        let msh = Message::msh(charset, &["A", "B", "C", "D", "20260101", "", "ORU^R01^ORU_R01", "1", "P", "2.5"]);
        let m = Message::new(charset, vec![msh, obx]);
        let bytes = m.to_bytes();
        let back = Message::parse(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &m);
        for (i, comps) in values.iter().enumerate() {
            let field = back.get("OBX", i + 1);
            // trailing empty components are not written
            let n = comps.iter().rposition(|c| !c.is_empty()).map_or(0, |p| p + 1);
            for (j, c) in comps[..n].iter().enumerate() {
                prop_assert_eq!(&*field.component(j + 1).text(), c.as_str());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        mss_hl7::fuzz_one(&data);
        let mut with_header = b"MSH|^~\\&|".to_vec();
        with_header.extend_from_slice(&data);
        mss_hl7::fuzz_one(&with_header);
    }

    #[test]
    fn mutated_examples_never_panic(at in 0usize..2000, byte in any::<u8>(), cut in 0usize..3000) {
        let mut bytes = fixture("sending-ack.hl7");
        bytes.extend_from_slice(&fixture("sending-mdm-t04.hl7")[..3000]);
        let i = at % bytes.len();
        bytes[i] = byte;
        bytes.truncate(cut.max(1));
        mss_hl7::fuzz_one(&bytes);
    }

    #[test]
    fn frames_survive_any_chunking(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no end", |b| *b != 0x1C), 0..50), 1..5),
        cuts in prop::collection::vec(1usize..40, 1..20),
    ) {
        let mut stream = Vec::new();
        for m in &messages {
            stream.extend_from_slice(&frame(m));
        }
        let mut decoder = FrameDecoder::new(1000);
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut cuts = cuts.into_iter().cycle();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(1).min(rest.len());
            got.extend(decoder.push(&rest[..n]).map_err(|e| TestCaseError::fail(e.to_string()))?);
            rest = &rest[n..];
        }
        prop_assert_eq!(got, messages);
    }
}
