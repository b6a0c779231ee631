//! xtext (RFC 3461 §4): how DSN parameters (`ENVID`, `ORCPT`) travel in SMTP commands and come back in
//! delivery reports.

/// Encodes `s`: printable ASCII but `+` and `=` as is, anything else (controls, space, non-ASCII bytes)
/// as `+HH`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Decodes `s`: `+HH` is a byte; anything malformed is kept as is (a report is read, never refused).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn xtext_encoding() {
        assert_eq!(encode("a+b=c d@é"), "a+2Bb+3Dc+20d@+C3+A9");
        assert_eq!(encode("msg-1@sante.test"), "msg-1@sante.test");
    }

    #[test]
    fn xtext_is_decoded_and_malformed_escapes_kept() {
        assert_eq!(decode("a+2Bb+3Dc+20d"), "a+b=c d");
        assert_eq!(decode("a+zz+"), "a+zz+");
    }

    proptest! {
        #[test]
        fn xtext_decoding_undoes_the_encoding(s in "\\PC{0,40}") {
            prop_assert_eq!(decode(&encode(&s)), s);
        }

        #[test]
        fn any_text_decodes_without_panicking(s in "\\PC{0,60}") {
            let _ = decode(&s);
        }
    }
}
