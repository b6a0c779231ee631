//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463), parsed line by line.

use std::fmt;

use mss_types::MailAddress;

/// An enhanced status code `class.subject.detail` (RFC 3463), e.g. `5.7.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 success, 4 transient failure, 5 permanent failure.
    pub class: u8,
    /// Subject (7 = security or policy).
    pub subject: u16,
    /// Detail.
    pub detail: u16,
}

impl EnhancedCode {
    /// Builds a code.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// Parses `x.y.z` at the start of `text`; returns the code and the rest of the text.
    fn parse_prefix(text: &str) -> Option<(Self, &str)> {
        let end = text.find(' ').unwrap_or(text.len());
        let mut parts = text[..end].split('.');
        let class: u8 = parse_digits(parts.next()?, 1)?;
        let subject: u16 = parse_digits(parts.next()?, 3)?;
        let detail: u16 = parse_digits(parts.next()?, 3)?;
        if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let rest = &text[end..];
        Some((
            EnhancedCode::new(class, subject, detail),
            rest.strip_prefix(' ').unwrap_or(rest),
        ))
    }
}

fn parse_digits<T: std::str::FromStr>(s: &str, max_len: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One complete reply: its code, the enhanced code of its first line if any, and its text lines (code and
/// enhanced code removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code, when the server sends them (ENHANCEDSTATUSCODES).
    pub enhanced: Option<EnhancedCode>,
    /// Text of each line.
    pub lines: Vec<String>,
}

impl SmtpReply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (334 challenge, 354 data).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: do not retry as is.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The text of every line, joined with spaces.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// The first line's text.
    pub fn first_line(&self) -> &str {
        self.lines.first().map_or("", String::as_str)
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Why a line is not part of a valid reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyError(pub String);

/// Assembles a reply from lines (without CRLF): `250-first`, `250-second`, `250 last`.
#[derive(Debug, Default)]
pub(crate) struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
    enhanced: Option<EnhancedCode>,
}

/// More than this many lines in one reply is a hostile or broken server.
pub(crate) const MAX_REPLY_LINES: usize = 512;

impl ReplyParser {
    /// Feeds one line; returns the reply once its last line has arrived.
    pub(crate) fn push(&mut self, line: &[u8]) -> Result<Option<SmtpReply>, ReplyError> {
        let line = String::from_utf8_lossy(line);
        let bytes = line.as_bytes();
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(ReplyError(format!(
                "not an SMTP reply line: {:?}",
                truncate(&line)
            )));
        }
        let code: u16 = line[..3]
            .parse()
            .map_err(|_| ReplyError("bad reply code".into()))?;
        if !(200..600).contains(&code) {
            return Err(ReplyError(format!("reply code {code} out of range")));
        }
        if let Some(previous) = self.code
            && previous != code
        {
            return Err(ReplyError(format!(
                "reply code changed from {previous} to {code} within one reply"
            )));
        }
        self.code = Some(code);
        let last = match bytes.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => {
                return Err(ReplyError(format!(
                    "bad separator after the reply code: {:?}",
                    truncate(&line)
                )));
            }
        };
        let mut text = line.get(4..).unwrap_or("");
        // the enhanced code is repeated on every line of a multi-line reply; keep the first
        if matches!(code / 100, 2 | 4 | 5)
            && let Some((e, rest)) = EnhancedCode::parse_prefix(text)
            && u16::from(e.class) == code / 100
        {
            if self.enhanced.is_none() && self.lines.is_empty() {
                self.enhanced = Some(e);
            }
            if self.enhanced == Some(e) {
                text = rest;
            }
        }
        self.lines.push(text.to_owned());
        if self.lines.len() > MAX_REPLY_LINES {
            return Err(ReplyError(format!(
                "reply longer than {MAX_REPLY_LINES} lines"
            )));
        }
        if !last {
            return Ok(None);
        }
        let reply = SmtpReply {
            code,
            enhanced: self.enhanced.take(),
            lines: std::mem::take(&mut self.lines),
        };
        self.code = None;
        Ok(Some(reply))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The ESMTP extensions of an EHLO reply (RFC 5321 §4.1.1.1), keyword upper-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The server's name (first line).
    pub server_name: String,
    entries: Vec<(String, String)>,
}

impl Extensions {
    /// From an EHLO reply.
    pub fn from_ehlo(reply: &SmtpReply) -> Self {
        let mut lines = reply.lines.iter();
        let server_name = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("")
            .to_owned();
        let entries = lines
            .filter_map(|l| {
                let l = l.trim();
                let (k, v) = l.split_once([' ', '=']).unwrap_or((l, ""));
                (!k.is_empty()).then(|| (k.to_ascii_uppercase(), v.trim().to_owned()))
            })
            .collect();
        Extensions {
            server_name,
            entries,
        }
    }

    /// Whether the keyword is offered.
    pub fn has(&self, keyword: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(keyword))
    }

    /// The parameters of a keyword.
    pub fn params(&self, keyword: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, v)| v.as_str())
    }

    /// The SASL mechanisms of `AUTH`, upper-cased.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        self.params("AUTH")
            .map(|p| p.split_whitespace().map(str::to_ascii_uppercase).collect())
            .unwrap_or_default()
    }

    /// Whether `AUTH` lists the mechanism.
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.auth_mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// The `SIZE` limit; `None` when absent or 0 (no fixed limit).
    pub fn size_limit(&self) -> Option<u64> {
        self.params("SIZE")
            .and_then(|p| p.trim().parse().ok())
            .filter(|n| *n > 0)
    }

    /// Keywords in the server's order.
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
}

/// What the server said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientResult {
    /// The recipient.
    pub recipient: MailAddress,
    /// The reply to its RCPT TO.
    pub reply: SmtpReply,
}

impl RecipientResult {
    /// Accepted (2xx).
    pub fn accepted(&self) -> bool {
        self.reply.is_positive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(lines: &[&str]) -> Result<Vec<SmtpReply>, ReplyError> {
        let mut p = ReplyParser::default();
        let mut out = Vec::new();
        for l in lines {
            if let Some(r) = p.push(l.as_bytes())? {
                out.push(r);
            }
        }
        Ok(out)
    }

    #[test]
    fn multi_line_ehlo() {
        let r = parse_all(&[
            "250-mail.sante.test",
            "250-PIPELINING",
            "250-SIZE 26214400",
            "250-AUTH XOAUTH2 OAUTHBEARER",
            "250-AUTH=PLAIN",
            "250 DSN",
        ])
        .expect("valid");
        assert_eq!(r.len(), 1);
        let e = Extensions::from_ehlo(&r[0]);
        assert_eq!(e.server_name, "mail.sante.test");
        assert!(e.has("pipelining") && e.has("DSN"));
        assert_eq!(e.size_limit(), Some(26_214_400));
        assert!(e.has_auth("XOAUTH2"));
        assert!(!e.has("STARTTLS"));
    }

    #[test]
    fn enhanced_codes() {
        let r = parse_all(&["535 5.7.8 Error: authentication failed"]).expect("valid");
        assert_eq!(r[0].code, 535);
        assert_eq!(r[0].enhanced, Some(EnhancedCode::new(5, 7, 8)));
        assert_eq!(r[0].first_line(), "Error: authentication failed");
        assert_eq!(r[0].to_string(), "535 5.7.8 Error: authentication failed");
        // a 2xx reply whose text happens to start like a 5.x.x code keeps it as text
        let r = parse_all(&["250 5.0.0 odd"]).expect("valid");
        assert_eq!(r[0].enhanced, None);
        let r = parse_all(&["334 eyJzdGF0dXMiOiI0MDEifQ=="]).expect("valid");
        assert_eq!(r[0].first_line(), "eyJzdGF0dXMiOiI0MDEifQ==");
        let r = parse_all(&["220"]).expect("bare code");
        assert_eq!(r[0].lines, vec![String::new()]);
    }

    #[test]
    fn malformed_lines() {
        assert!(parse_all(&["hello"]).is_err());
        assert!(parse_all(&["250-a", "251 b"]).is_err());
        assert!(parse_all(&["250xa"]).is_err());
        assert!(parse_all(&["999 x"]).is_err());
    }

    fn reply_strategy() -> impl Strategy<Value = (u16, Option<(u8, u16, u16)>, Vec<String>)> {
        (
            200u16..600,
            proptest::option::of((0u16..1000, 0u16..1000)),
            proptest::collection::vec("[ -~]{0,40}", 1..6),
        )
            .prop_map(|(code, e, lines)| {
                let class = u8::try_from(code / 100).unwrap_or(5);
                let e = e.filter(|_| class != 3).map(|(s, d)| (class, s, d));
                (code, e, lines)
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..8)) {
            let mut p = ReplyParser::default();
            for l in &lines {
                let _ = p.push(l);
            }
        }

        #[test]
        fn generated_replies_round_trip((code, enhanced, lines) in reply_strategy()) {
            let n = lines.len();
            let wire: Vec<String> = lines.iter().enumerate().map(|(i, text)| {
                let sep = if i + 1 == n { ' ' } else { '-' };
                match enhanced {
                    Some((c, s, d)) => format!("{code}{sep}{c}.{s}.{d} {text}"),
                    None => format!("{code}{sep}{text}"),
                }
            }).collect();
            let mut p = ReplyParser::default();
            let mut got = None;
            for (i, l) in wire.iter().enumerate() {
                let r = p.push(l.as_bytes()).map_err(|e| TestCaseError::fail(e.0))?;
                prop_assert_eq!(r.is_some(), i + 1 == n);
                got = got.or(r);
            }
            let got = got.ok_or_else(|| TestCaseError::fail("no reply"))?;
            prop_assert_eq!(got.code, code);
            match enhanced {
                Some((c, s, d)) => {
                    prop_assert_eq!(got.enhanced, Some(EnhancedCode::new(c, s, d)));
                    prop_assert_eq!(got.lines, lines);
                }
                None => {
                    // text that itself starts like an enhanced code is read as one; otherwise kept whole
                    prop_assert_eq!(got.lines.len(), n);
                    if got.enhanced.is_none() {
                        prop_assert_eq!(got.lines, lines);
                    }
                }
            }
        }
    }
}
