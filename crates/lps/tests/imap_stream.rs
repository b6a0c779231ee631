//! The IMAP response parser under property tests, on what a server sends on the receiving path: FETCH
//! responses with literal bodies, flags, sizes and dates, EXPUNGE and VANISHED, statuses, interleaved; then
//! the same streams damaged (cut, bytes changed, lengths lying) and arbitrary bytes. Well-formed streams
//! come back exactly; nothing panics. The body is `mss_testing::fuzzing::imap_stream`, also the `imap`
//! fuzz target (`fuzz/`).

use mss_lps::imap::{FetchedMessage, StreamSummary};
use mss_testing::fuzzing::imap_stream;
use proptest::prelude::*;

/// A FETCH response as Dovecot writes it for `UID FETCH n (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])`.
fn fetch(m: &FetchedMessage) -> Vec<u8> {
    let body = m.body.as_deref().unwrap_or_default();
    let mut out = format!(
        "* {} FETCH (UID {} FLAGS ({}) RFC822.SIZE {} INTERNALDATE \"{}\" BODY[] {{{}}}\r\n",
        m.seq,
        m.uid.unwrap_or(0),
        m.flags.join(" "),
        m.size.unwrap_or(0),
        m.internal_date.as_deref().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b")\r\n");
    out
}

fn message() -> impl Strategy<Value = FetchedMessage> {
    (
        1u32..100_000,
        1u32..,
        proptest::collection::vec(
            prop_oneof![
                Just("\\Seen".to_owned()),
                Just("\\Flagged".to_owned()),
                Just("$Forwarded".to_owned()),
                "[a-zA-Z]{1,10}"
            ],
            0..4,
        ),
        proptest::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|(seq, uid, flags, body)| FetchedMessage {
            seq,
            uid: Some(uid),
            flags,
            size: Some(body.len() as u64),
            internal_date: Some("23-Nov-2026 10:00:00 +0100".into()),
            body: Some(body),
        })
}

/// Something else a server may say between FETCH responses.
fn other() -> impl Strategy<Value = (Vec<u8>, Option<u32>)> {
    prop_oneof![
        (1u32..1000).prop_map(|n| (format!("* {n} EXPUNGE\r\n").into_bytes(), Some(n))),
        (1u32..1000, 1u32..1000).prop_map(|(a, b)| (
            format!("* VANISHED (EARLIER) {a}:{b},7\r\n").into_bytes(),
            None
        )),
        (0u32..1000).prop_map(|n| (format!("* {n} EXISTS\r\n").into_bytes(), None)),
        Just((b"* OK [HIGHESTMODSEQ 42] Highest\r\n".to_vec(), None)),
        Just((
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n".to_vec(),
            None
        )),
    ]
}

/// A stream of FETCH responses and others, and what it holds.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<FetchedMessage>, Vec<u32>)> {
    proptest::collection::vec(
        prop_oneof![message().prop_map(Ok), other().prop_map(Err)],
        0..8,
    )
    .prop_map(|items| {
        let (mut bytes, mut fetched, mut expunged) = (Vec::new(), Vec::new(), Vec::new());
        for item in items {
            match item {
                Ok(m) => {
                    bytes.extend(fetch(&m));
                    fetched.push(m);
                }
                Err((line, n)) => {
                    bytes.extend(line);
                    expunged.extend(n);
                }
            }
        }
        bytes.extend_from_slice(b"A7 OK Fetch completed.\r\n");
        (bytes, fetched, expunged)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn well_formed_streams_come_back_exactly((bytes, fetched, expunged) in stream()) {
        let got = imap_stream(&bytes);
        prop_assert_eq!(got.malformed, 0);
        prop_assert_eq!(got.fetched, fetched);
        prop_assert_eq!(got.expunged, expunged);
    }

    #[test]
    fn damaged_streams_never_panic(
        (bytes, _, _) in stream(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut damaged = bytes.clone();
        for (at, b) in flips {
            if !damaged.is_empty() {
                let i = at.index(damaged.len());
                damaged[i] = b;
            }
        }
        let _ = imap_stream(&damaged);
        let _ = imap_stream(&bytes[..cut.index(bytes.len() + 1)]);
    }

    #[test]
    fn literal_lengths_that_lie_never_panic(
        (bytes, _, _) in stream(),
        claimed in prop_oneof![0usize..600, Just(usize::MAX), Just(64 * 1024 * 1024 + 1)],
    ) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let lied = text.replacen("BODY[] {", &format!("BODY[] {{{claimed}}}{{"), 1);
        let _ = imap_stream(lied.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = imap_stream(&data);
        let mut prefixed = b"* 1 FETCH (UID 1 BODY[] {3}\r\n".to_vec();
        prefixed.extend(&data);
        let _ = imap_stream(&prefixed);
    }
}

#[test]
fn a_literal_beyond_the_stream_ends_it_without_a_response() {
    let s = imap_stream(b"* 1 EXPUNGE\r\n* 2 FETCH (UID 9 BODY[] {100}\r\nshort");
    assert_eq!(
        s,
        StreamSummary {
            parsed: 1,
            malformed: 0,
            fetched: Vec::new(),
            expunged: vec![1],
        }
    );
}
