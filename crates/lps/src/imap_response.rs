//! IMAP4rev1 responses (RFC 3501 §7, RFC 5530 codes), parsed from lines and literals.
//!
//! The connection assembles a response as segments: text up to a `{n}` literal marker, the literal's bytes,
//! more text. Parsing never panics on server input; anything unexpected is an error or `Untagged::Other`.

use std::fmt;

/// A piece of one response: text (one line's worth, without CRLF) or a literal's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Text(Vec<u8>),
    Literal(Vec<u8>),
}

/// The size announced by a `{n}` or `{n+}` at the end of a line.
pub(crate) fn literal_at_end(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Splits a server's bytes into responses the way the connection reads them (lines ended by LF, a CR before
/// it dropped; a `{n}` marker at a line's end taking the next `n` bytes as a literal) and parses each; stops at a response cut
/// short. What the fuzz targets and property tests feed outside input to.
pub(crate) fn parse_stream(mut data: &[u8], max_literal: usize) -> Vec<Result<Response, String>> {
    let mut out = Vec::new();
    'responses: while !data.is_empty() {
        let mut segments = Vec::new();
        loop {
            let Some(end) = data.iter().position(|&b| b == b'\n') else {
                break 'responses;
            };
            let line = data[..end]
                .strip_suffix(b"\r")
                .unwrap_or(&data[..end])
                .to_vec();
            data = &data[end + 1..];
            let lit = literal_at_end(&line);
            segments.push(Segment::Text(line));
            match lit {
                Some(n) if n > max_literal || n > data.len() => break 'responses,
                Some(n) => {
                    segments.push(Segment::Literal(data[..n].to_vec()));
                    data = &data[n..];
                }
                None => break,
            }
        }
        out.push(parse(&segments));
    }
    out
}

/// Status of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// OK.
    Ok,
    /// NO: the command failed.
    No,
    /// BAD: the command was not understood.
    Bad,
    /// BYE: the server closes the connection.
    Bye,
    /// PREAUTH: already authenticated.
    PreAuth,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::PreAuth => "PREAUTH",
        })
    }
}

/// A response code (`[...]` after the status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseCode {
    /// ALERT: show the text to the user.
    Alert,
    /// AUTHENTICATIONFAILED (RFC 5530).
    AuthenticationFailed,
    /// AUTHORIZATIONFAILED (RFC 5530): authenticated, but not as this user.
    AuthorizationFailed,
    /// EXPIRED (RFC 5530).
    Expired,
    /// UNAVAILABLE (RFC 5530): temporary failure.
    Unavailable,
    /// PRIVACYREQUIRED (RFC 5530).
    PrivacyRequired,
    /// CONTACTADMIN (RFC 5530).
    ContactAdmin,
    /// INUSE (RFC 5530).
    InUse,
    /// LIMIT (RFC 5530).
    Limit,
    /// SERVERBUG (RFC 5530).
    ServerBug,
    /// NONEXISTENT (RFC 5530).
    NonExistent,
    /// ALREADYEXISTS (RFC 5530).
    AlreadyExists,
    /// TRYCREATE.
    TryCreate,
    /// CAPABILITY list.
    Capability(Vec<String>),
    /// UIDVALIDITY.
    UidValidity(u32),
    /// UIDNEXT.
    UidNext(u32),
    /// UNSEEN.
    Unseen(u32),
    /// APPENDUID (RFC 4315).
    AppendUid {
        /// UIDVALIDITY of the mailbox.
        validity: u32,
        /// UID of the appended message.
        uid: u32,
    },
    /// READ-ONLY.
    ReadOnly,
    /// READ-WRITE.
    ReadWrite,
    /// Any other code, with its arguments.
    Other(String, String),
}

impl ResponseCode {
    fn parse(inner: &str) -> Self {
        let (name, args) = inner.split_once(' ').unwrap_or((inner, ""));
        let args = args.trim();
        let num = |s: &str| s.parse::<u32>().ok();
        match name.to_ascii_uppercase().as_str() {
            "ALERT" => ResponseCode::Alert,
            "AUTHENTICATIONFAILED" => ResponseCode::AuthenticationFailed,
            "AUTHORIZATIONFAILED" => ResponseCode::AuthorizationFailed,
            "EXPIRED" => ResponseCode::Expired,
            "UNAVAILABLE" => ResponseCode::Unavailable,
            "PRIVACYREQUIRED" => ResponseCode::PrivacyRequired,
            "CONTACTADMIN" => ResponseCode::ContactAdmin,
            "INUSE" => ResponseCode::InUse,
            "LIMIT" => ResponseCode::Limit,
            "SERVERBUG" => ResponseCode::ServerBug,
            "NONEXISTENT" => ResponseCode::NonExistent,
            "ALREADYEXISTS" => ResponseCode::AlreadyExists,
            "TRYCREATE" => ResponseCode::TryCreate,
            "READ-ONLY" => ResponseCode::ReadOnly,
            "READ-WRITE" => ResponseCode::ReadWrite,
            "CAPABILITY" => {
                ResponseCode::Capability(args.split_whitespace().map(str::to_owned).collect())
            }
            "UIDVALIDITY" if num(args).is_some() => {
                ResponseCode::UidValidity(num(args).unwrap_or(0))
            }
            "UIDNEXT" if num(args).is_some() => ResponseCode::UidNext(num(args).unwrap_or(0)),
            "UNSEEN" if num(args).is_some() => ResponseCode::Unseen(num(args).unwrap_or(0)),
            "APPENDUID" => {
                let mut it = args.split_whitespace().map(num);
                match (it.next().flatten(), it.next().flatten()) {
                    (Some(validity), Some(uid)) => ResponseCode::AppendUid { validity, uid },
                    _ => ResponseCode::Other(name.to_owned(), args.to_owned()),
                }
            }
            _ => ResponseCode::Other(name.to_owned(), args.to_owned()),
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseCode::Alert => f.write_str("ALERT"),
            ResponseCode::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            ResponseCode::AuthorizationFailed => f.write_str("AUTHORIZATIONFAILED"),
            ResponseCode::Expired => f.write_str("EXPIRED"),
            ResponseCode::Unavailable => f.write_str("UNAVAILABLE"),
            ResponseCode::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            ResponseCode::ContactAdmin => f.write_str("CONTACTADMIN"),
            ResponseCode::InUse => f.write_str("INUSE"),
            ResponseCode::Limit => f.write_str("LIMIT"),
            ResponseCode::ServerBug => f.write_str("SERVERBUG"),
            ResponseCode::NonExistent => f.write_str("NONEXISTENT"),
            ResponseCode::AlreadyExists => f.write_str("ALREADYEXISTS"),
            ResponseCode::TryCreate => f.write_str("TRYCREATE"),
            ResponseCode::ReadOnly => f.write_str("READ-ONLY"),
            ResponseCode::ReadWrite => f.write_str("READ-WRITE"),
            ResponseCode::Capability(c) if c.is_empty() => f.write_str("CAPABILITY"),
            ResponseCode::Capability(c) => write!(f, "CAPABILITY {}", c.join(" ")),
            ResponseCode::UidValidity(n) => write!(f, "UIDVALIDITY {n}"),
            ResponseCode::UidNext(n) => write!(f, "UIDNEXT {n}"),
            ResponseCode::Unseen(n) => write!(f, "UNSEEN {n}"),
            ResponseCode::AppendUid { validity, uid } => write!(f, "APPENDUID {validity} {uid}"),
            ResponseCode::Other(n, a) if a.is_empty() => f.write_str(n),
            ResponseCode::Other(n, a) => write!(f, "{n} {a}"),
        }
    }
}

/// A status response: `OK`/`NO`/`BAD`/`BYE`/`PREAUTH`, optional code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapStatus {
    /// The status.
    pub status: Status,
    /// The response code.
    pub code: Option<ResponseCode>,
    /// Human-readable text.
    pub text: String,
}

impl ImapStatus {
    /// A temporary condition (RFC 5530 UNAVAILABLE, INUSE, LIMIT, SERVERBUG).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code,
            Some(
                ResponseCode::Unavailable
                    | ResponseCode::InUse
                    | ResponseCode::Limit
                    | ResponseCode::ServerBug
            )
        )
    }

    fn parse(status: Status, rest: &str) -> Self {
        let rest = rest.trim_start();
        if let Some(inner) = rest.strip_prefix('[')
            && let Some(end) = inner.find(']')
        {
            return ImapStatus {
                status,
                code: Some(ResponseCode::parse(&inner[..end])),
                text: inner[end + 1..].trim().to_owned(),
            };
        }
        ImapStatus {
            status,
            code: None,
            text: rest.trim_end().to_owned(),
        }
    }
}

impl fmt::Display for ImapStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(c) = &self.code {
            write!(f, " [{c}]")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// One message from a FETCH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchedMessage {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: Option<u32>,
    /// Flags (`\Seen`, ...).
    pub flags: Vec<String>,
    /// RFC822.SIZE.
    pub size: Option<u64>,
    /// INTERNALDATE as sent.
    pub internal_date: Option<String>,
    /// The whole message (`BODY[]`).
    pub body: Option<Vec<u8>>,
}

/// A LIST entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Attributes (`\HasNoChildren`, `\Sent`, ...).
    pub attributes: Vec<String>,
    /// Hierarchy delimiter.
    pub delimiter: Option<String>,
    /// Name as the server sent it (modified UTF-7): pass it back unchanged.
    pub name: String,
}

/// Untagged data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Untagged {
    Status(ImapStatus),
    Capability(Vec<String>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    Flags(Vec<String>),
    Search(Vec<u32>),
    Fetch(FetchedMessage),
    List(ListEntry),
    Other(String),
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    Tagged { tag: String, status: ImapStatus },
    Untagged(Untagged),
    Continuation(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Atom(String),
    Str(Vec<u8>),
    Open,
    Close,
}

/// Splits segments into tokens; a literal marker at the end of a text segment takes the next literal.
fn tokenize(segments: &[Segment]) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut it = segments.iter().peekable();
    while let Some(seg) = it.next() {
        let text = match seg {
            Segment::Text(t) => t,
            Segment::Literal(_) => return Err("literal without a marker".into()),
        };
        let mut text: &[u8] = text;
        if literal_at_end(text).is_some() {
            let open = text.iter().rposition(|&b| b == b'{').unwrap_or(text.len());
            text = &text[..open];
            tokenize_text(text, &mut toks)?;
            match it.next() {
                Some(Segment::Literal(l)) => toks.push(Tok::Str(l.clone())),
                _ => return Err("literal marker without its bytes".into()),
            }
        } else {
            tokenize_text(text, &mut toks)?;
        }
    }
    Ok(toks)
}

fn tokenize_text(text: &[u8], toks: &mut Vec<Tok>) -> Result<(), String> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b' ' => i += 1,
            b'(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            b')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match text.get(i) {
                        None => return Err("unterminated quoted string".into()),
                        Some(b'\\') => {
                            s.push(*text.get(i + 1).ok_or("bad escape")?);
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(&b) => {
                            s.push(b);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Str(s));
            }
            _ => {
                let start = i;
                let mut depth = 0usize;
                while i < text.len() {
                    match text[i] {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b' ' | b'(' | b')' | b'"' if depth == 0 => break,
                        _ => {}
                    }
                    i += 1;
                }
                toks.push(Tok::Atom(
                    String::from_utf8_lossy(&text[start..i]).into_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// Parses one assembled response.
pub(crate) fn parse(segments: &[Segment]) -> Result<Response, String> {
    let first = match segments.first() {
        Some(Segment::Text(t)) => t,
        _ => return Err("empty response".into()),
    };
    if first.first() == Some(&b'+') {
        let rest = String::from_utf8_lossy(&first[1..]);
        return Ok(Response::Continuation(rest.trim_start().to_owned()));
    }
    let line = String::from_utf8_lossy(first).into_owned();
    let (tag, rest) = line
        .split_once(' ')
        .ok_or_else(|| format!("no space in {:?}", short(&line)))?;
    if tag != "*" {
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let status =
            status_word(word).ok_or_else(|| format!("bad tagged status {:?}", short(word)))?;
        return Ok(Response::Tagged {
            tag: tag.to_owned(),
            status: ImapStatus::parse(status, after),
        });
    }
    let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
    if let Some(status) = status_word(word) {
        return Ok(Response::Untagged(Untagged::Status(ImapStatus::parse(
            status, after,
        ))));
    }
    if let Ok(n) = word.parse::<u32>() {
        let (kind, _) = after.split_once(' ').unwrap_or((after, ""));
        return Ok(Response::Untagged(
            match kind.to_ascii_uppercase().as_str() {
                "EXISTS" => Untagged::Exists(n),
                "RECENT" => Untagged::Recent(n),
                "EXPUNGE" => Untagged::Expunge(n),
                "FETCH" => Untagged::Fetch(parse_fetch(n, segments)?),
                _ => Untagged::Other(short(&line)),
            },
        ));
    }
    Ok(Response::Untagged(
        match word.to_ascii_uppercase().as_str() {
            "CAPABILITY" => {
                Untagged::Capability(after.split_whitespace().map(str::to_owned).collect())
            }
            "SEARCH" => Untagged::Search(
                after
                    .split_whitespace()
                    .map(|n| {
                        n.parse()
                            .map_err(|_| format!("bad SEARCH number {:?}", short(n)))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "FLAGS" => {
                let toks = tokenize(segments)?;
                Untagged::Flags(atoms_in_parens(toks.get(2..).unwrap_or(&[]))?)
            }
            "LIST" | "LSUB" => Untagged::List(parse_list(segments)?),
            _ => Untagged::Other(short(&line)),
        },
    ))
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

fn status_word(w: &str) -> Option<Status> {
    Some(match w.to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        "BYE" => Status::Bye,
        "PREAUTH" => Status::PreAuth,
        _ => return None,
    })
}

fn atoms_in_parens(toks: &[Tok]) -> Result<Vec<String>, String> {
    if toks.first() != Some(&Tok::Open) {
        return Err("expected a parenthesised list".into());
    }
    let mut out = Vec::new();
    for t in &toks[1..] {
        match t {
            Tok::Atom(a) => out.push(a.clone()),
            Tok::Close => return Ok(out),
            _ => return Err("unexpected item in a flag list".into()),
        }
    }
    Err("unterminated list".into())
}

/// Skips one value (atom, string, or nested list) starting at `i`; returns the index after it.
fn skip_value(toks: &[Tok], i: usize) -> Result<usize, String> {
    match toks.get(i) {
        Some(Tok::Open) => {
            let mut depth = 0usize;
            let mut j = i;
            while j < toks.len() {
                match toks[j] {
                    Tok::Open => depth += 1,
                    Tok::Close => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err("unterminated list".into())
        }
        Some(Tok::Close) | None => Err("missing value".into()),
        Some(_) => Ok(i + 1),
    }
}

fn parse_fetch(seq: u32, segments: &[Segment]) -> Result<FetchedMessage, String> {
    let toks = tokenize(segments)?;
    // "*" n "FETCH" "(" ... ")"
    if toks.get(3) != Some(&Tok::Open) {
        return Err("FETCH without its list".into());
    }
    let mut msg = FetchedMessage {
        seq,
        ..FetchedMessage::default()
    };
    let mut i = 4;
    loop {
        let name = match toks.get(i) {
            Some(Tok::Close) => return Ok(msg),
            Some(Tok::Atom(a)) => a.to_ascii_uppercase(),
            _ => return Err("bad FETCH item".into()),
        };
        let value = i + 1;
        let next = skip_value(&toks, value)?;
        let number = || match toks.get(value) {
            Some(Tok::Atom(a)) => a
                .parse::<u64>()
                .map_err(|_| format!("bad number in {name}")),
            _ => Err(format!("bad value of {name}")),
        };
        match name.as_str() {
            "UID" => msg.uid = Some(u32::try_from(number()?).map_err(|_| "UID out of range")?),
            "RFC822.SIZE" => msg.size = Some(number()?),
            "FLAGS" => msg.flags = atoms_in_parens(&toks[value..next])?,
            "INTERNALDATE" => {
                if let Some(Tok::Str(s)) = toks.get(value) {
                    msg.internal_date = Some(String::from_utf8_lossy(s).into_owned());
                }
            }
            n if n == "RFC822" || n == "BODY[]" || n.starts_with("BODY[]<") => {
                match toks.get(value) {
                    Some(Tok::Str(s)) => msg.body = Some(s.clone()),
                    Some(Tok::Atom(a)) if a.eq_ignore_ascii_case("NIL") => {}
                    _ => return Err(format!("bad value of {name}")),
                }
            }
            _ => {}
        }
        i = next;
    }
}

fn parse_list(segments: &[Segment]) -> Result<ListEntry, String> {
    let toks = tokenize(segments)?;
    // "*" "LIST" "(" attrs ")" delimiter name
    let after_attrs = skip_value(&toks, 2)?;
    let attributes = atoms_in_parens(&toks[2..after_attrs])?;
    let delimiter = match toks.get(after_attrs) {
        Some(Tok::Str(s)) => Some(String::from_utf8_lossy(s).into_owned()),
        Some(Tok::Atom(a)) if a.eq_ignore_ascii_case("NIL") => None,
        _ => return Err("bad LIST delimiter".into()),
    };
    let name = match toks.get(after_attrs + 1) {
        Some(Tok::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        Some(Tok::Atom(a)) => a.clone(),
        _ => return Err("bad LIST name".into()),
    };
    Ok(ListEntry {
        attributes,
        delimiter,
        name,
    })
}

/// A quoted string for a command; refuses what cannot be quoted safely.
pub(crate) fn quote(s: &str) -> Option<String> {
    if s.bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// `1:3,7` from sorted or unsorted UIDs.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(s: &str) -> Segment {
        Segment::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn statuses_and_codes() {
        let r = parse(&[text("A3 NO [AUTHENTICATIONFAILED] Authentication failed.")]).expect("ok");
        assert_eq!(
            r,
            Response::Tagged {
                tag: "A3".into(),
                status: ImapStatus {
                    status: Status::No,
                    code: Some(ResponseCode::AuthenticationFailed),
                    text: "Authentication failed.".into()
                }
            }
        );
        let r = parse(&[text(
            "* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=XOAUTH2] Dovecot ready.",
        )])
        .expect("ok");
        match r {
            Response::Untagged(Untagged::Status(s)) => {
                assert_eq!(
                    s.code,
                    Some(ResponseCode::Capability(vec![
                        "IMAP4rev1".into(),
                        "SASL-IR".into(),
                        "STARTTLS".into(),
                        "AUTH=XOAUTH2".into()
                    ]))
                );
            }
            other => panic!("{other:?}"),
        }
        let r = parse(&[text("A9 OK [APPENDUID 1700000000 12] Append completed.")]).expect("ok");
        assert!(matches!(
            r,
            Response::Tagged {
                status: ImapStatus {
                    code: Some(ResponseCode::AppendUid {
                        validity: 1_700_000_000,
                        uid: 12
                    }),
                    ..
                },
                ..
            }
        ));
        let r = parse(&[text("+ eyJzdGF0dXMiOiI0MDEifQ==")]).expect("ok");
        assert_eq!(r, Response::Continuation("eyJzdGF0dXMiOiI0MDEifQ==".into()));
        assert!(parse(&[text("garbage")]).is_err());
    }

    #[test]
    fn fetch_with_literal() {
        let body = b"Subject: x\r\n\r\n) tricky ( \"body\r\n".to_vec();
        let segs = vec![
            text(&format!(
                "* 3 FETCH (UID 42 FLAGS (\\Seen $Label) RFC822.SIZE {} INTERNALDATE \"23-Nov-2026 10:00:00 +0100\" BODY[] {{{}}}",
                body.len(),
                body.len()
            )),
            Segment::Literal(body.clone()),
            text(")"),
        ];
        match parse(&segs).expect("ok") {
            Response::Untagged(Untagged::Fetch(m)) => {
                assert_eq!(m.seq, 3);
                assert_eq!(m.uid, Some(42));
                assert_eq!(m.flags, vec!["\\Seen".to_owned(), "$Label".to_owned()]);
                assert_eq!(m.size, Some(body.len() as u64));
                assert_eq!(m.body, Some(body));
                assert_eq!(
                    m.internal_date.as_deref(),
                    Some("23-Nov-2026 10:00:00 +0100")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_search_exists() {
        let r = parse(&[text(r#"* LIST (\HasNoChildren \Sent) "." "Envoy&AOk-s""#)]).expect("ok");
        assert_eq!(
            r,
            Response::Untagged(Untagged::List(ListEntry {
                attributes: vec!["\\HasNoChildren".into(), "\\Sent".into()],
                delimiter: Some(".".into()),
                name: "Envoy&AOk-s".into()
            }))
        );
        assert_eq!(
            parse(&[text("* SEARCH 1 5 9")]).expect("ok"),
            Response::Untagged(Untagged::Search(vec![1, 5, 9]))
        );
        assert_eq!(
            parse(&[text("* SEARCH")]).expect("ok"),
            Response::Untagged(Untagged::Search(vec![]))
        );
        assert_eq!(
            parse(&[text("* 7 EXISTS")]).expect("ok"),
            Response::Untagged(Untagged::Exists(7))
        );
        assert_eq!(literal_at_end(b"A1 APPEND x {12}"), Some(12));
        assert_eq!(literal_at_end(b"x {12+}"), Some(12));
        assert_eq!(literal_at_end(b"x {}"), None);
    }

    #[test]
    fn helpers() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        assert_eq!(quote(r#"a"b\c"#).as_deref(), Some(r#""a\"b\\c""#));
        assert_eq!(quote("a\r\nb"), None);
    }

    proptest! {
        #[test]
        fn arbitrary_segments_never_panic(
            first in proptest::collection::vec(any::<u8>(), 0..80),
            lit in proptest::collection::vec(any::<u8>(), 0..40),
            last in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let _ = parse(&[Segment::Text(first.clone())]);
            let _ = parse(&[Segment::Text(first), Segment::Literal(lit), Segment::Text(last)]);
        }

        #[test]
        fn fetch_bodies_round_trip(body in proptest::collection::vec(any::<u8>(), 0..300), uid in 1u32.., seq in 1u32..) {
            let segs = vec![
                Segment::Text(format!("* {seq} FETCH (UID {uid} BODY[] {{{}}}", body.len()).into_bytes()),
                Segment::Literal(body.clone()),
                Segment::Text(b")".to_vec()),
            ];
            match parse(&segs) {
                Ok(Response::Untagged(Untagged::Fetch(m))) => {
                    prop_assert_eq!(m.uid, Some(uid));
                    prop_assert_eq!(m.seq, seq);
                    prop_assert_eq!(m.body, Some(body));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn tagged_statuses_round_trip(tag in "[A-Z][0-9]{1,4}", st in 0usize..3, code in proptest::option::of("[A-Z]{3,12}"), text in "[ -~]{0,40}") {
            let word = ["OK", "NO", "BAD"][st];
            let text = text.trim().to_owned();
            let code_s = code.as_ref().map(|c| format!("[{c}] ")).unwrap_or_default();
            let line = format!("{tag} {word} {code_s}{text}");
            prop_assume!(code.is_some() || !text.starts_with('['));
            match parse(&[Segment::Text(line.into_bytes())]) {
                Ok(Response::Tagged { tag: t, status }) => {
                    prop_assert_eq!(t, tag);
                    prop_assert_eq!(status.status.to_string(), word);
                    prop_assert_eq!(status.code.map(|c| c.to_string()), code);
                    prop_assert_eq!(status.text, text);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
