//! ER7 messages: segments of fields, each kept as written (escaped), read through [`Value`] views.
//! Keeping the raw text makes writing back exact: what is parsed is written byte for byte (segment
//! ends normalised to `\r`), and a value is only unescaped when read.

use std::borrow::Cow;

use crate::charset::Charset;
use crate::delimiters::{Delimiters, unescape};
use crate::{Error, Result};

/// A view on part of a field: the field, one repetition, one component or one sub-component, as
/// written. Past the end of anything, a view is empty.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    raw: &'a str,
    d: Delimiters,
    depth: u8,
}

impl<'a> Value<'a> {
    fn new(raw: &'a str, d: Delimiters, depth: u8) -> Self {
        Value { raw, d, depth }
    }

    /// As written (escaped).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The text, escape sequences read.
    pub fn text(&self) -> Cow<'a, str> {
        unescape(self.raw, &self.d)
    }

    /// Nothing written.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The repetitions of a field (one, possibly empty, when it does not repeat).
    pub fn repetitions(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let d = self.d;
        let parts: Box<dyn Iterator<Item = &'a str>> = if self.depth == 0 {
            Box::new(self.raw.split(d.repetition))
        } else {
            Box::new(std::iter::once(self.raw))
        };
        parts.map(move |r| Value::new(r, d, 1))
    }

    /// Component `n` (from 1) of the first repetition.
    pub fn component(&self, n: usize) -> Value<'a> {
        let base = match self.depth {
            0 => self.raw.split(self.d.repetition).next().unwrap_or(""),
            1 => self.raw,
            _ => return self.only(n, 2),
        };
        let part = n
            .checked_sub(1)
            .and_then(|i| base.split(self.d.component).nth(i))
            .unwrap_or("");
        Value::new(part, self.d, 2)
    }

    /// Sub-component `n` (from 1) of the first component.
    pub fn sub(&self, n: usize) -> Value<'a> {
        let base = match self.depth {
            0 | 1 => self.component(1).raw,
            2 => self.raw,
            _ => return self.only(n, 3),
        };
        let part = n
            .checked_sub(1)
            .and_then(|i| base.split(self.d.subcomponent).nth(i))
            .unwrap_or("");
        Value::new(part, self.d, 3)
    }

    fn only(&self, n: usize, depth: u8) -> Value<'a> {
        Value::new(if n == 1 { self.raw } else { "" }, self.d, depth)
    }
}

/// One segment: its name and its fields as written (field 0 is the name; in MSH, field 1 is the field
/// separator and field 2 the encoding characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    d: Delimiters,
    fields: Vec<String>,
}

impl Segment {
    /// An empty segment called `name` (three letters or digits, e.g. `OBX`, `ZAM`).
    pub fn new(name: &str) -> Self {
        Segment {
            d: Delimiters::default(),
            fields: vec![name.to_owned()],
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.fields[0]
    }

    /// Number of fields, the name counted: the last field's number plus one.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Nothing but a name.
    pub fn is_empty(&self) -> bool {
        self.fields.len() <= 1
    }

    /// Field `n` (empty when absent).
    pub fn field(&self, n: usize) -> Value<'_> {
        Value::new(self.fields.get(n).map_or("", String::as_str), self.d, 0)
    }

    /// Sets field `n` to `raw` (already escaped: build it with [`Delimiters::components`]); missing
    /// fields before it become empty.
    pub fn set(&mut self, n: usize, raw: impl Into<String>) -> &mut Self {
        if n == 0 {
            return self;
        }
        if self.fields.len() <= n {
            self.fields.resize(n + 1, String::new());
        }
        self.fields[n] = raw.into();
        self
    }

    /// [`Segment::set`] by value, for building.
    pub fn with(mut self, n: usize, raw: impl Into<String>) -> Self {
        self.set(n, raw);
        self
    }

    fn write(&self, d: &Delimiters, out: &mut String) {
        let sep = d.field;
        if self.name() == "MSH" {
            out.push_str("MSH");
            out.push(sep);
            out.push_str(self.fields.get(2).map_or("", String::as_str));
            for f in self.fields.iter().skip(3) {
                out.push(sep);
                out.push_str(f);
            }
        } else {
            for (i, f) in self.fields.iter().enumerate() {
                if i > 0 {
                    out.push(sep);
                }
                out.push_str(f);
            }
        }
    }
}

/// A message: its delimiters, its character set and its segments, MSH first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    delimiters: Delimiters,
    charset: Charset,
    segments: Vec<Segment>,
}

impl Message {
    /// A message from its MSH (built with [`Message::msh`]) and other segments.
    pub fn new(charset: Charset, segments: Vec<Segment>) -> Self {
        Message {
            delimiters: Delimiters::default(),
            charset,
            segments,
        }
    }

    /// An MSH with the default delimiters and the fields given from MSH-3 on (`fields[0]` is MSH-3),
    /// each already written; MSH-18 set to `charset`.
    pub fn msh(charset: Charset, fields: &[&str]) -> Segment {
        let d = Delimiters::default();
        let mut s = Segment::new("MSH")
            .with(1, d.field.to_string())
            .with(2, d.encoding_characters());
        for (i, f) in fields.iter().enumerate() {
            s.set(i + 3, *f);
        }
        s.set(18, charset.msh18());
        s
    }

    /// Reads a message. Segments end with `\r` (the standard), `\n` or `\r\n` (files); empty lines are
    /// skipped. MSH-18 decides how the bytes are read.
    pub fn parse(bytes: &[u8]) -> Result<Message> {
        if !bytes.starts_with(b"MSH") || bytes.len() < 8 {
            return Err(Error::parse("MSH", "a message starts with an MSH segment"));
        }
        let sep = bytes[3];
        if !sep.is_ascii_graphic() || sep.is_ascii_alphanumeric() {
            return Err(Error::parse(
                "MSH-1",
                "the field separator must be a printable ASCII sign",
            ));
        }
        let header_end = bytes
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(bytes.len());
        let header = &bytes[..header_end];
        let enc_end = header[4..]
            .iter()
            .position(|&b| b == sep)
            .map_or(header.len(), |p| p + 4);
        let enc = &header[4..enc_end];
        let d = delimiters(sep, enc)?;
        // MSH-18 (split index 17: MSH-1 is the separator itself), first repetition
        let msh18 = header
            .split(|&b| b == sep)
            .nth(17)
            .unwrap_or(b"")
            .split(|&b| d.repetition.is_ascii() && b == d.repetition as u8)
            .next()
            .unwrap_or(b"");
        let charset = Charset::from_msh18(&String::from_utf8_lossy(msh18))?;
        let text = charset.decode(bytes)?;
        let mut segments = Vec::new();
        for (i, line) in text
            .split(['\r', '\n'])
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            segments.push(segment(line, &d, i)?);
        }
        Ok(Message {
            delimiters: d,
            charset,
            segments,
        })
    }

    /// The message as text, each segment ended by `\r`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            s.write(&self.delimiters, &mut out);
            out.push('\r');
        }
        out
    }

    /// The message's bytes in its character set.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.charset.encode(&self.to_text())
    }

    /// Its delimiters.
    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// Its character set (MSH-18).
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// All its segments, MSH first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Its segments, to add to or change.
    pub fn segments_mut(&mut self) -> &mut Vec<Segment> {
        &mut self.segments
    }

    /// The first segment called `name`.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name() == name)
    }

    /// Field `n` of the first segment `name` (empty when there is none).
    pub fn get(&self, name: &str, n: usize) -> Value<'_> {
        match self.segment(name) {
            Some(s) => s.field(n),
            None => Value::new("", self.delimiters, 0),
        }
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Cow<'_, str> {
        self.get("MSH", 10).text()
    }

    /// MSH-9 as (message code, trigger event, structure).
    pub fn message_type(&self) -> (Cow<'_, str>, Cow<'_, str>, Cow<'_, str>) {
        let f = self.get("MSH", 9);
        (
            f.component(1).text(),
            f.component(2).text(),
            f.component(3).text(),
        )
    }

    /// MSH-12.1, the version.
    pub fn version(&self) -> Cow<'_, str> {
        self.get("MSH", 12).component(1).text()
    }
}

fn delimiters(sep: u8, enc: &[u8]) -> Result<Delimiters> {
    let ok = |b: u8| b.is_ascii_graphic() && !b.is_ascii_alphanumeric();
    if !ok(sep) {
        return Err(Error::parse(
            "MSH-1",
            "the field separator must be a printable ASCII sign",
        ));
    }
    // 4 characters; HL7 2.7 adds a fifth (truncation), accepted and ignored
    if !(4..=5).contains(&enc.len()) || !enc.iter().all(|&b| ok(b)) {
        return Err(Error::parse(
            "MSH-2",
            "encoding characters: 4 printable ASCII signs (^~\\&)",
        ));
    }
    let all = [sep, enc[0], enc[1], enc[2], enc[3]];
    for (i, a) in all.iter().enumerate() {
        if all[i + 1..].contains(a) {
            return Err(Error::parse("MSH-2", "the delimiters must all differ"));
        }
    }
    Ok(Delimiters {
        field: char::from(sep),
        component: char::from(enc[0]),
        repetition: char::from(enc[1]),
        escape: char::from(enc[2]),
        subcomponent: char::from(enc[3]),
    })
}

fn segment(line: &str, d: &Delimiters, index: usize) -> Result<Segment> {
    let name: String = line.chars().take(3).collect();
    let name_ok = name.len() == 3
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let after = &line[name.len()..];
    if !name_ok || !(after.is_empty() || after.starts_with(d.field)) {
        return Err(Error::parse(
            format!("segment {}", index + 1),
            "a segment starts with a three-letter name and the field separator",
        ));
    }
    if index == 0 && name != "MSH" {
        return Err(Error::parse("MSH", "a message starts with an MSH segment"));
    }
    let mut fields = vec![name.clone()];
    if name == "MSH" {
        // a later segment named MSH may stop at its name
        let Some(rest) = after.get(d.field.len_utf8()..) else {
            return Err(Error::parse(
                format!("segment {}", index + 1),
                "MSH is followed by the field separator and the encoding characters",
            ));
        };
        let mut parts = rest.split(d.field);
        fields.push(d.field.to_string());
        fields.push(parts.next().unwrap_or("").to_owned());
        fields.extend(parts.map(str::to_owned));
    } else if !after.is_empty() {
        fields.extend(
            after[d.field.len_utf8()..]
                .split(d.field)
                .map(str::to_owned),
        );
    }
    Ok(Segment { d: *d, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MDM: &str = "MSH|^~\\&|RIS-Y|Organisation-Y|PFI-Y|Organisation-Y|202106060931||MDM^T02^MDM_T02|015|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r\
PID|||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS^^20101207~405660^^^X&1&M^PI||PAT-TROIS^DOMINIQUE\r\
OBX|12|ED|CORPSMAIL_PS^Corps du mail\\S\\PS^MetaDMPMSS||^text^^Base64^Q2hlcg==||||||F|\r";

    #[test]
    fn a_later_segment_that_is_only_msh_is_refused() {
        let e = Message::parse(b"MSH|^~\\&|A|B\rMSH\r").expect_err("refused");
        assert!(
            e.to_string().starts_with("segment 2: MSH is followed"),
            "{e}"
        );
    }

    #[test]
    fn reads_fields_components_and_escapes() {
        let m = Message::parse(MDM.as_bytes()).expect("parses");
        assert_eq!(m.control_id(), "015");
        let (code, event, structure) = m.message_type();
        assert_eq!((&*code, &*event, &*structure), ("MDM", "T02", "MDM_T02"));
        assert_eq!(m.version(), "2.6");
        let pid3 = m.get("PID", 3);
        let ids: Vec<_> = pid3.repetitions().map(|r| r.component(1).text()).collect();
        assert_eq!(ids, ["279035121518989", "405660"]);
        assert_eq!(pid3.component(4).sub(2).text(), "1.2.250.1.213.1.4.10");
        assert_eq!(m.get("OBX", 3).component(2).text(), "Corps du mail^PS");
        assert_eq!(m.get("OBX", 5).component(5).text(), "Q2hlcg==");
        assert_eq!(m.get("OBX", 99).text(), "");
        assert_eq!(m.get("MSH", 1).raw(), "|");
        assert_eq!(m.get("MSH", 2).raw(), "^~\\&");
        assert_eq!(m.get("MSH", 21).component(2).text(), "CISIS_CDA_HL7_V2");
        // written back byte for byte
        assert_eq!(m.to_text(), MDM);
    }

    #[test]
    fn line_feeds_are_segment_ends_too() {
        let m = Message::parse(MDM.replace('\r', "\n").as_bytes()).expect("parses");
        assert_eq!(m.segments().len(), 3);
        assert_eq!(m.to_text(), MDM);
    }

    #[test]
    fn latin9_messages() {
        let text = MDM
            .replace("UNICODE UTF-8", "8859/15")
            .replace("DOMINIQUE", "DOMINIQUE Œ €");
        let bytes = Charset::Latin9.encode(&text);
        let m = Message::parse(&bytes).expect("parses");
        assert_eq!(m.charset(), Charset::Latin9);
        assert_eq!(m.get("PID", 5).component(2).text(), "DOMINIQUE Œ €");
        assert_eq!(m.to_bytes(), bytes);
    }

    #[test]
    fn faults_are_located() {
        let e = |b: &[u8]| Message::parse(b).err().map(|e| e.to_string());
        assert_eq!(
            e(b"PID|1").as_deref(),
            Some("MSH: a message starts with an MSH segment")
        );
        // found by the fuzz target: a line end where the field separator goes
        assert_eq!(
            e(b"MSH\r\r\r\r\r\rE|x").as_deref(),
            Some("MSH-1: the field separator must be a printable ASCII sign")
        );
        assert_eq!(
            e(b"MSH|^~|A").as_deref(),
            Some("MSH-2: encoding characters: 4 printable ASCII signs (^~\\&)")
        );
        assert_eq!(
            e(b"MSH|^~\\&|A\rpid|x").as_deref(),
            Some("segment 2: a segment starts with a three-letter name and the field separator")
        );
        let bad = b"MSH|^~\\&|A||||||||||||||UNICODE UTF-8\r\xff\xfe";
        assert_eq!(
            e(bad).as_deref(),
            Some("MSH-18: UNICODE UTF-8, but byte 38 is not UTF-8")
        );
    }

    #[test]
    fn builds_segments() {
        let d = Delimiters::default();
        let msh = Message::msh(
            Charset::Utf8,
            &[
                "PFI",
                "ORG",
                "DPI",
                "ORG",
                "20260101",
                "",
                "ACK^T02^ACK",
                "1",
                "P",
                "2.6",
            ],
        );
        let msa = Segment::new("MSA")
            .with(1, "AE")
            .with(2, "015")
            .with(3, d.components(&["a|b", "", ""]));
        let m = Message::new(Charset::Utf8, vec![msh, msa]);
        assert_eq!(
            m.to_text(),
            "MSH|^~\\&|PFI|ORG|DPI|ORG|20260101||ACK^T02^ACK|1|P|2.6||||||UNICODE UTF-8\rMSA|AE|015|a\\F\\b\r"
        );
    }
}
