//! The delimiters of a message and the escape sequences (HL7 v2 §2.5, §2.7): `\F\ \S\ \T\ \R\ \E\` for the delimiters, `\Xhh…\` for bytes.
//! Other sequences (`\H\`, `\N\`, `\.br\`, `\Z…\`) are formatting, kept as they are in the text.

use std::borrow::Cow;

/// The delimiters of a message (MSH-1 and MSH-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    /// Field separator, `|`.
    pub field: char,
    /// Component separator, `^`.
    pub component: char,
    /// Repetition separator, `~`.
    pub repetition: char,
    /// Escape character, `\`.
    pub escape: char,
    /// Sub-component separator, `&`.
    pub subcomponent: char,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
        }
    }
}

impl Delimiters {
    /// MSH-2 as written.
    pub fn encoding_characters(&self) -> String {
        [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]
        .into_iter()
        .collect()
    }

    /// A field (or component) from texts: each escaped, joined with `^`, trailing empty ones dropped.
    pub fn components(&self, parts: &[&str]) -> String {
        self.join(parts, self.component)
    }

    /// A component from texts: each escaped, joined with `&`, trailing empty ones dropped.
    pub fn subcomponents(&self, parts: &[&str]) -> String {
        self.join(parts, self.subcomponent)
    }

    /// Parts already written (escaped) joined with `^`, trailing empty ones dropped.
    pub fn raw_components(&self, parts: &[&str]) -> String {
        let n = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        parts[..n].join(&self.component.to_string())
    }

    /// `text` escaped.
    pub fn escape<'a>(&self, text: &'a str) -> Cow<'a, str> {
        escape(text, self)
    }

    fn join(&self, parts: &[&str], sep: char) -> String {
        let n = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        let mut out = String::new();
        for (i, p) in parts[..n].iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            out.push_str(&escape(p, self));
        }
        out
    }
}

/// `text` with every delimiter written as its escape sequence.
pub fn escape<'a>(text: &'a str, d: &Delimiters) -> Cow<'a, str> {
    let special = |c: char| {
        c == d.field
            || c == d.component
            || c == d.repetition
            || c == d.escape
            || c == d.subcomponent
            || c == '\r'
            || c == '\n'
    };
    if !text.chars().any(special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        let code = match c {
            c if c == d.field => Some("F"),
            c if c == d.component => Some("S"),
            c if c == d.repetition => Some("R"),
            c if c == d.escape => Some("E"),
            c if c == d.subcomponent => Some("T"),
            '\r' => Some("X0D"),
            '\n' => Some("X0A"),
            _ => None,
        };
        match code {
            Some(code) => {
                out.push(d.escape);
                out.push_str(code);
                out.push(d.escape);
            }
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The text of an escaped value: delimiter escapes and `\Xhh\` (as Latin-1 / ASCII characters) read,
/// anything else, and a lone escape character, kept as written.
pub fn unescape<'a>(raw: &'a str, d: &Delimiters) -> Cow<'a, str> {
    if !raw.contains(d.escape) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(d.escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + d.escape.len_utf8()..];
        let Some(end) = after.find(d.escape) else {
            // a lone escape character: literal
            out.push_str(&rest[start..]);
            return Cow::Owned(out);
        };
        let seq = &after[..end];
        let read = match seq {
            "F" => Some(d.field.to_string()),
            "S" => Some(d.component.to_string()),
            "R" => Some(d.repetition.to_string()),
            "E" => Some(d.escape.to_string()),
            "T" => Some(d.subcomponent.to_string()),
            _ => seq.strip_prefix('X').and_then(hex_chars),
        };
        match read {
            Some(text) => out.push_str(&text),
            None => {
                // formatting or unknown: as written, delimiters included
                out.push(d.escape);
                out.push_str(seq);
                out.push(d.escape);
            }
        }
        rest = &after[end + d.escape.len_utf8()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `\Xhh…\`: pairs of hex digits, each a character code below 256.
fn hex_chars(hex: &str) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = hex.as_bytes();
    let mut out = String::with_capacity(hex.len() / 2);
    for pair in bytes.chunks(2) {
        let s = std::str::from_utf8(pair).ok()?;
        let b = u8::from_str_radix(s, 16).ok()?;
        out.push(char::from(b));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_round_trip() {
        let d = Delimiters::default();
        let text = r"a|b^c~d\e&f";
        let esc = escape(text, &d);
        assert_eq!(esc, r"a\F\b\S\c\R\d\E\e\T\f");
        assert_eq!(unescape(&esc, &d), text);
    }

    #[test]
    fn formatting_and_hex() {
        let d = Delimiters::default();
        assert_eq!(unescape(r"x\.br\y", &d), r"x\.br\y");
        assert_eq!(unescape(r"\X0D0A\", &d), "\r\n");
        assert_eq!(unescape(r"half\", &d), r"half\");
        assert_eq!(escape("l1\r\nl2", &d), r"l1\X0D\\X0A\l2");
    }
}
