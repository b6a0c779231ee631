//! RFC 4515 search filters, built from typed parts only.
//!
//! A [`Filter`] is a tree; its text form ([`std::fmt::Display`]) escapes every assertion value (`*`, `(`,
//! `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`), so text typed by a user can only ever be a
//! value: it cannot close a parenthesis, add a wildcard or start another component. Attribute names are
//! checked against the RFC 4512 grammar when the [`Attribute`] is made, so a misconfigured mapping cannot
//! inject filter syntax either. [`Filter::parse`] reads the text form back (for `--filter` arguments).

use std::fmt::{self, Write as _};

use crate::{Error, Result};

/// An attribute description: a name (`ALPHA *(ALPHA / DIGIT / "-")`) or a numeric OID, with optional
/// `;options` (RFC 4512 §2.5). Compared case-insensitively, as LDAP does.
#[derive(Debug, Clone, Eq)]
pub struct Attribute {
    name: String,
    /// `name` in lower case.
    key: String,
}

impl Attribute {
    /// Checks `name` against RFC 4512.
    pub fn new(name: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::LdapConfig(format!("`{name}` is not an LDAP attribute name: {why}"));
        let mut parts = name.split(';');
        let base = parts.next().unwrap_or("");
        let is_descr = base.starts_with(|c: char| c.is_ascii_alphabetic())
            && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let is_oid = !base.is_empty()
            && base.split('.').all(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (n.len() == 1 || !n.starts_with('0'))
            });
        if !is_descr && !is_oid {
            return Err(bad(
                "expected a name (letter, then letters, digits, -) or a numeric OID",
            ));
        }
        if base.len() > 128 {
            return Err(bad("longer than 128 characters"));
        }
        for option in parts {
            if option.is_empty()
                || !option
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(bad("options after `;` are letters, digits and -"));
            }
        }
        Ok(Attribute {
            name: name.to_string(),
            key: name.to_ascii_lowercase(),
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The name in lower case: the key under which entries' values are looked up.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for Attribute {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A search filter (RFC 4511 §4.5.1), without extensible matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every sub-filter matches (`(&)` is always true, RFC 4526).
    And(Vec<Filter>),
    /// Some sub-filter matches (`(|)` is always false).
    Or(Vec<Filter>),
    /// The sub-filter does not match.
    Not(Box<Filter>),
    /// `(attr=value)`.
    Equal(Attribute, String),
    /// `(attr=initial*any*...*final)`: at least one part is set and no part is empty (see
    /// [`Filter::substrings`]).
    Substrings {
        /// The attribute.
        attr: Attribute,
        /// What the value starts with.
        initial: Option<String>,
        /// What it contains, in order.
        any: Vec<String>,
        /// What it ends with.
        last: Option<String>,
    },
    /// `(attr=*)`.
    Present(Attribute),
    /// `(attr>=value)`.
    GreaterOrEqual(Attribute, String),
    /// `(attr<=value)`.
    LessOrEqual(Attribute, String),
    /// `(attr~=value)`.
    Approx(Attribute, String),
}

impl Filter {
    /// `(attr=value)`: `value` is taken literally.
    pub fn equal(attr: &Attribute, value: impl Into<String>) -> Filter {
        Filter::Equal(attr.clone(), value.into())
    }

    /// Values starting with `prefix` (taken literally); an empty prefix is [`Filter::Present`].
    pub fn prefix(attr: &Attribute, prefix: impl Into<String>) -> Filter {
        Filter::substrings(attr, Some(prefix.into()), Vec::new(), None)
    }

    /// Values containing `part` (taken literally); an empty part is [`Filter::Present`].
    pub fn contains(attr: &Attribute, part: impl Into<String>) -> Filter {
        Filter::substrings(attr, None, vec![part.into()], None)
    }

    /// A substring filter; empty parts are dropped (they would match anything), and a filter left with no
    /// part is [`Filter::Present`], which is what `attr=*` means.
    pub fn substrings(
        attr: &Attribute,
        initial: Option<String>,
        any: Vec<String>,
        last: Option<String>,
    ) -> Filter {
        let initial = initial.filter(|s| !s.is_empty());
        let any: Vec<String> = any.into_iter().filter(|s| !s.is_empty()).collect();
        let last = last.filter(|s| !s.is_empty());
        if initial.is_none() && any.is_empty() && last.is_none() {
            return Filter::Present(attr.clone());
        }
        Filter::Substrings {
            attr: attr.clone(),
            initial,
            any,
            last,
        }
    }

    /// `(attr=*)`.
    pub fn present(attr: &Attribute) -> Filter {
        Filter::Present(attr.clone())
    }

    /// All of `filters`; a single filter is returned as is.
    pub fn and(filters: impl IntoIterator<Item = Filter>) -> Filter {
        let mut v: Vec<Filter> = filters.into_iter().collect();
        if v.len() == 1 {
            return v.remove(0);
        }
        Filter::And(v)
    }

    /// Any of `filters`; a single filter is returned as is.
    pub fn or(filters: impl IntoIterator<Item = Filter>) -> Filter {
        let mut v: Vec<Filter> = filters.into_iter().collect();
        if v.len() == 1 {
            return v.remove(0);
        }
        Filter::Or(v)
    }

    /// The negation of `filter`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(filter: Filter) -> Filter {
        Filter::Not(Box::new(filter))
    }

    /// Reads the RFC 4515 text form (for filters given by an operator, e.g. `mss ldap-sync --filter`).
    /// Extensible matches (`:=`) are refused.
    pub fn parse(text: &str) -> Result<Filter> {
        let mut p = Parser {
            s: text.trim().as_bytes(),
            at: 0,
            depth: 0,
        };
        let f = p.filter()?;
        if p.at != p.s.len() {
            return Err(p.error("unexpected text after the filter"));
        }
        Ok(f)
    }
}

/// Escapes an assertion value per RFC 4515 §3: `*`, `(`, `)`, `\` and NUL as `\XX`; everything else,
/// UTF-8 included, as is.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(v) | Filter::Or(v) => {
                f.write_str(if matches!(self, Filter::And(_)) {
                    "(&"
                } else {
                    "(|"
                })?;
                for sub in v {
                    write!(f, "{sub}")?;
                }
                f.write_char(')')
            }
            Filter::Not(sub) => write!(f, "(!{sub})"),
            Filter::Equal(a, v) => write!(f, "({a}={})", escape_value(v)),
            Filter::GreaterOrEqual(a, v) => write!(f, "({a}>={})", escape_value(v)),
            Filter::LessOrEqual(a, v) => write!(f, "({a}<={})", escape_value(v)),
            Filter::Approx(a, v) => write!(f, "({a}~={})", escape_value(v)),
            Filter::Present(a) => write!(f, "({a}=*)"),
            Filter::Substrings {
                attr,
                initial,
                any,
                last,
            } => {
                write!(f, "({attr}=")?;
                if let Some(i) = initial {
                    f.write_str(&escape_value(i))?;
                }
                f.write_char('*')?;
                for a in any {
                    f.write_str(&escape_value(a))?;
                    f.write_char('*')?;
                }
                if let Some(l) = last {
                    f.write_str(&escape_value(l))?;
                }
                f.write_char(')')
            }
        }
    }
}

/// Nesting deeper than this is refused (a hostile `((((…` must not exhaust the stack).
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, why: &str) -> Error {
        Error::LdapFilter(format!("{why} at byte {}", self.at))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, b: u8) -> Result<()> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", b as char)))
        }
    }

    fn filter(&mut self) -> Result<Filter> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("filter nested too deeply"));
        }
        self.expect(b'(')?;
        let f = match self.peek() {
            Some(b'&') => {
                self.at += 1;
                Filter::And(self.list()?)
            }
            Some(b'|') => {
                self.at += 1;
                Filter::Or(self.list()?)
            }
            Some(b'!') => {
                self.at += 1;
                Filter::Not(Box::new(self.filter()?))
            }
            _ => self.item()?,
        };
        self.expect(b')')?;
        self.depth -= 1;
        Ok(f)
    }

    fn list(&mut self) -> Result<Vec<Filter>> {
        let mut v = Vec::new();
        while self.peek() == Some(b'(') {
            v.push(self.filter()?);
        }
        Ok(v)
    }

    fn item(&mut self) -> Result<Filter> {
        let start = self.at;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b';' {
                self.at += 1;
            } else {
                break;
            }
        }
        let name = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
        if name.is_empty() {
            return Err(self.error("expected an attribute name"));
        }
        let attr = Attribute::new(name).map_err(|e| Error::LdapFilter(e.to_string()))?;
        let op = match (self.peek(), self.s.get(self.at + 1).copied()) {
            (Some(b'='), _) => 1,
            (Some(b'>'), Some(b'=')) => 2,
            (Some(b'<'), Some(b'=')) => 2,
            (Some(b'~'), Some(b'=')) => 2,
            (Some(b':'), _) => {
                return Err(self.error("extensible matches (`:=`) are not supported"));
            }
            _ => return Err(self.error("expected `=`, `>=`, `<=` or `~=`")),
        };
        let kind = self.s[self.at];
        self.at += op;
        // the value: pieces separated by unescaped `*`
        let mut pieces = vec![Vec::new()];
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated filter")),
                Some(b')') => break,
                Some(b'(') => return Err(self.error("`(` must be escaped as \\28 in a value")),
                Some(b'*') => {
                    self.at += 1;
                    pieces.push(Vec::new());
                }
                Some(b'\\') => {
                    let hex = self
                        .s
                        .get(self.at + 1..self.at + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| self.error("`\\` must be followed by two hex digits"))?;
                    self.at += 3;
                    pieces.last_mut().expect("never empty").push(hex);
                }
                Some(0) => return Err(self.error("NUL must be escaped as \\00")),
                Some(b) => {
                    self.at += 1;
                    pieces.last_mut().expect("never empty").push(b);
                }
            }
        }
        let mut text = Vec::with_capacity(pieces.len());
        for p in pieces {
            text.push(String::from_utf8(p).map_err(|_| self.error("a value is not UTF-8"))?);
        }
        if kind != b'=' {
            if text.len() != 1 {
                return Err(self.error("`*` must be escaped as \\2a in this value"));
            }
            let v = text.remove(0);
            return Ok(match kind {
                b'>' => Filter::GreaterOrEqual(attr, v),
                b'<' => Filter::LessOrEqual(attr, v),
                _ => Filter::Approx(attr, v),
            });
        }
        match text.len() {
            1 => Ok(Filter::Equal(attr, text.remove(0))),
            2 if text[0].is_empty() && text[1].is_empty() => Ok(Filter::Present(attr)),
            n => {
                let last = text.pop().filter(|s| !s.is_empty());
                let initial = Some(text.remove(0)).filter(|s| !s.is_empty());
                if text.iter().any(String::is_empty) {
                    return Err(self.error("`**` is not a valid substring filter"));
                }
                debug_assert!(n >= 2);
                Ok(Filter::Substrings {
                    attr,
                    initial,
                    any: text,
                    last,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: &str) -> Attribute {
        Attribute::new(n).unwrap()
    }

    #[test]
    fn values_are_escaped() {
        let f = Filter::equal(&a("cn"), "*)(|(mail=*))\\\0é");
        assert_eq!(
            f.to_string(),
            "(cn=\\2a\\29\\28|\\28mail=\\2a\\29\\29\\5c\\00é)"
        );
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
        let f = Filter::and([
            Filter::prefix(&a("sn"), "du*"),
            Filter::not(Filter::or([
                Filter::contains(&a("cn"), "a"),
                Filter::present(&a("mail")),
            ])),
        ]);
        assert_eq!(f.to_string(), "(&(sn=du\\2a*)(!(|(cn=*a*)(mail=*))))");
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
        assert_eq!(Filter::prefix(&a("sn"), ""), Filter::present(&a("sn")));
    }

    #[test]
    fn attribute_names_are_checked() {
        for ok in ["cn", "givenName", "x-1", "2.5.4.3", "cn;lang-fr"] {
            Attribute::new(ok).unwrap();
        }
        for bad in ["", "1cn", "c n", "cn=", "cn)(x", "01.2", "cn;", "é"] {
            assert!(Attribute::new(bad).is_err(), "{bad}");
        }
        assert_eq!(a("CN"), a("cn"));
    }

    #[test]
    fn parse_reads_rfc4515_and_refuses_the_rest() {
        let f = Filter::parse("(&(objectClass=*)(sn=a*b*c)(cn>=m)(!(x~=y)))").unwrap();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::present(&a("objectClass")),
                Filter::Substrings {
                    attr: a("sn"),
                    initial: Some("a".into()),
                    any: vec!["b".into()],
                    last: Some("c".into())
                },
                Filter::GreaterOrEqual(a("cn"), "m".into()),
                Filter::not(Filter::Approx(a("x"), "y".into())),
            ])
        );
        assert_eq!(Filter::parse("(&)").unwrap(), Filter::And(vec![]));
        for bad in [
            "",
            "cn=a",
            "(cn=a",
            "(cn=a))",
            "(cn=(a)",
            "(cn=\\zz)",
            "(cn=a**b)",
            "(cn:dn:=x)",
            "(=x)",
            "(cn>=a*)",
            "(cn=\\ff)",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = "(!".repeat(100) + "(cn=a)" + &")".repeat(100);
        assert!(Filter::parse(&deep).is_err());
    }
}
