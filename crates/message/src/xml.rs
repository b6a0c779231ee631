//! A small well-formedness-checking XML walker over quick-xml, shared by the CDA header reader,
//! the METADATA.XML reader and the whitelist loader, plus escaping for the writers.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use std::borrow::Cow;

/// Deeper nesting than this is refused: no real CDA, METADATA.XML or whitelist comes close, and
/// it bounds the path kept for hostile input.
const MAX_DEPTH: usize = 256;

/// One step of the walk. `path` is the `/`-joined local names from the root to the element
/// (for `Text`, to the enclosing element).
pub(crate) enum Step<'e, 'a> {
    Open(&'e Element<'a>),
    Close,
    Text(&'e str),
}

/// An opening tag, with attribute access by local name.
pub(crate) struct Element<'a> {
    start: BytesStart<'a>,
}

impl Element<'_> {
    /// The attribute whose local name is `name` (prefix ignored), unescaped.
    pub(crate) fn attr(&self, name: &str) -> Result<Option<String>, String> {
        for a in self.start.attributes() {
            let a = a.map_err(|e| format!("bad attribute: {e}"))?;
            if a.key.local_name().as_ref() == name {
                let v = a
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| format!("bad attribute value: {e}"))?;
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    }

    /// The namespace declared for this element's own prefix (or the default one), if declared here.
    pub(crate) fn own_namespace(&self) -> Result<Option<String>, String> {
        let wanted: Cow<'_, str> = match self.start.name().prefix() {
            Some(p) => Cow::Owned(format!("xmlns:{}", p.as_ref())),
            None => Cow::Borrowed("xmlns"),
        };
        for a in self.start.attributes() {
            let a = a.map_err(|e| format!("bad attribute: {e}"))?;
            if a.key.as_ref() == wanted.as_ref() {
                let v = a
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| format!("bad attribute value: {e}"))?;
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    }
}

/// Walks a whole document, calling `f` for each element and text run, and fails on anything that is
/// not well-formed XML 1.0 (unbalanced tags, several roots, undefined entities, a DOCTYPE).
pub(crate) fn walk<F>(xml: &str, f: F) -> Result<(), String>
where
    F: FnMut(&str, Step<'_, '_>) -> Result<(), String>,
{
    walk_until(xml, None, f)
}

/// [`walk`], but from the opening of the element at path `stop` to the end of the document
/// nothing is reported, only checked for well-formedness by [`check_rest`] (a byte scanner, much
/// cheaper than producing events): a CDA body is most of the document, comes last, and holds no
/// header field.
pub(crate) fn walk_until<F>(xml: &str, stop: Option<&str>, mut f: F) -> Result<(), String>
where
    F: FnMut(&str, Step<'_, '_>) -> Result<(), String>,
{
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut path = String::with_capacity(128);
    let mut lens: Vec<usize> = Vec::with_capacity(16);
    let mut root_done = false;
    let mut text = String::new();
    // Qualified names of the open elements, for the end tags `check_rest` will meet.
    let mut open_names: Vec<String> = Vec::with_capacity(16);
    loop {
        let ev = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        // Text comes in runs split by entity references; flush it before any other event.
        match &ev {
            Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {}
            _ => {
                if !text.is_empty() {
                    if !lens.is_empty() {
                        f(&path, Step::Text(&text))?;
                    } else if !text.trim().is_empty() {
                        return Err("text outside the root element".into());
                    }
                    text.clear();
                }
            }
        }
        match ev {
            Event::Start(start) | Event::Empty(start) if root_done => {
                let _ = start;
                return Err("content after the root element".into());
            }
            Event::Start(start) => {
                open(&mut path, &mut lens, &start)?;
                open_names.push(start.name().as_ref().to_string());
                if stop == Some(path.as_str()) {
                    let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
                    return check_rest(xml, at, open_names);
                }
                f(&path, Step::Open(&Element { start }))?;
            }
            Event::Empty(start) => {
                open(&mut path, &mut lens, &start)?;
                f(&path, Step::Open(&Element { start }))?;
                f(&path, Step::Close)?;
                close(&mut path, &mut lens);
                root_done = lens.is_empty();
            }
            Event::End(_) => {
                f(&path, Step::Close)?;
                close(&mut path, &mut lens);
                open_names.pop();
                root_done = lens.is_empty();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                Ok(None) => match resolve_predefined_entity(&r) {
                    Some(s) => text.push_str(s),
                    None => return Err(format!("undefined entity &{};", &*r)),
                },
                Err(e) => return Err(format!("bad character reference: {e}")),
            },
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Decl(d) => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| format!("bad XML declaration: {e}"))?;
                    if !enc.eq_ignore_ascii_case("utf-8") {
                        return Err(format!("encoding {enc} is not supported: send UTF-8"));
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                if !lens.is_empty() {
                    return Err("unexpected end of document: unclosed elements".into());
                }
                if !root_done {
                    return Err("no root element".into());
                }
                return Ok(());
            }
        }
    }
}

/// Checks that `xml[at..]` well-formedly closes the elements of `open` (outermost first) and ends
/// the document: balanced and matching tags, quoted and unique attributes, defined entity and
/// character references, terminated comments, CDATA sections and processing instructions, no
/// DOCTYPE, nothing but markup and white space after the root. Input is already UTF-8 (`&str`).
pub(crate) fn check_rest(xml: &str, at: usize, mut open: Vec<String>) -> Result<(), String> {
    let b = xml.as_bytes();
    let bad = |pos: usize, what: &str| Err(format!("not well-formed XML at byte {pos}: {what}"));
    let mut i = at.min(b.len());
    loop {
        // Text up to the next markup or reference.
        let Some(off) = memchr::memchr2(b'<', b'&', &b[i..]) else {
            if !open.is_empty() {
                return Err("unexpected end of document: unclosed elements".into());
            }
            if !b[i..].iter().all(u8::is_ascii_whitespace) {
                return Err("text outside the root element".into());
            }
            return Ok(());
        };
        if open.is_empty() && !b[i..i + off].iter().all(u8::is_ascii_whitespace) {
            return Err("text outside the root element".into());
        }
        i += off;
        if b[i] == b'&' {
            if open.is_empty() {
                return Err("text outside the root element".into());
            }
            i = check_reference(xml, i)?;
            continue;
        }
        let rest = &b[i + 1..];
        match rest.first() {
            Some(b'/') => {
                let start = i + 2;
                let end = start + name_len(&b[start..]);
                let name = &xml[start..end];
                let mut j = end;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if b.get(j) != Some(&b'>') {
                    return bad(i, "unterminated end tag");
                }
                match open.pop() {
                    Some(o) if o == name => {}
                    Some(o) => return bad(i, &format!("end tag </{name}> does not match <{o}>")),
                    None => return bad(i, &format!("end tag </{name}> without a start tag")),
                }
                i = j + 1;
            }
            Some(b'!') if rest.starts_with(b"!--") => {
                i = find(b, i + 4, b"-->").ok_or_else(|| {
                    format!("not well-formed XML at byte {i}: unterminated comment")
                })? + 3;
            }
            Some(b'!') if rest.starts_with(b"![CDATA[") => {
                if open.is_empty() {
                    return Err("text outside the root element".into());
                }
                i = find(b, i + 9, b"]]>").ok_or_else(|| {
                    format!("not well-formed XML at byte {i}: unterminated CDATA section")
                })? + 3;
            }
            Some(b'!') if rest.starts_with(b"!DOCTYPE") => {
                return Err("a DOCTYPE is not allowed".into());
            }
            Some(b'?') => {
                // `<?target ...?>`: the target is a name, and not `xml` (the declaration comes first).
                let start = i + 2;
                let end = start + name_len(&b[start..]);
                let target = &xml[start..end];
                let after = b.get(end).copied();
                if end == start
                    || !name_starts_well(b[start])
                    || target.eq_ignore_ascii_case("xml")
                    || !(after.is_some_and(|c| c.is_ascii_whitespace())
                        || b[end..].starts_with(b"?>"))
                {
                    return bad(i, "bad processing instruction");
                }
                i = find(b, end, b"?>").ok_or_else(|| {
                    format!("not well-formed XML at byte {i}: unterminated processing instruction")
                })? + 2;
            }
            Some(_) => {
                if open.is_empty() {
                    return Err("content after the root element".into());
                }
                let start = i + 1;
                let end = start + name_len(&b[start..]);
                if end == start || !name_starts_well(b[start]) {
                    return bad(i, "bad element name");
                }
                let (j, empty) = check_attributes(xml, end, i)?;
                if !empty {
                    if open.len() >= MAX_DEPTH {
                        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                    }
                    open.push(xml[start..end].to_string());
                }
                i = j;
            }
            None => return Err("unexpected end of document: unclosed elements".into()),
        }
    }
}

/// Bytes of an XML name at the start of `b` (stops at white space and markup delimiters).
fn name_len(b: &[u8]) -> usize {
    b.iter()
        .position(|&c| {
            c.is_ascii_whitespace()
                || matches!(c, b'>' | b'/' | b'=' | b'<' | b'"' | b'\'' | b'&' | b';')
        })
        .unwrap_or(b.len())
}

fn name_starts_well(c: u8) -> bool {
    !(c.is_ascii_digit() || matches!(c, b'-' | b'.'))
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(b.get(from..)?, needle).map(|p| from + p)
}

/// Checks `&...;` at `i`; returns the position after `;`.
fn check_reference(xml: &str, i: usize) -> Result<usize, String> {
    let b = xml.as_bytes();
    let end = b[i..]
        .iter()
        .take(32)
        .position(|&c| c == b';')
        .map(|p| i + p);
    let Some(end) = end else {
        return Err(format!(
            "not well-formed XML at byte {i}: unterminated reference"
        ));
    };
    let name = &xml[i + 1..end];
    let ok = match name.strip_prefix('#') {
        Some(num) => {
            let value = match num.strip_prefix('x') {
                Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16).ok(),
                Some(_) => None,
                None if !num.is_empty() && num.bytes().all(|c| c.is_ascii_digit()) => {
                    num.parse().ok()
                }
                None => None,
            };
            if value
                .and_then(char::from_u32)
                .filter(|&c| c != '\0')
                .is_none()
            {
                return Err(format!("bad character reference: &{name};"));
            }
            true
        }
        None => resolve_predefined_entity(name).is_some(),
    };
    if !ok {
        return Err(format!("undefined entity &{name};"));
    }
    Ok(end + 1)
}

/// Checks the attributes of a start tag whose name ends at `i` (the tag opened at `tag`); returns
/// the position after the tag and whether it was empty (`/>`).
fn check_attributes(xml: &str, mut i: usize, tag: usize) -> Result<(usize, bool), String> {
    let b = xml.as_bytes();
    let bad = |what: &str| Err(format!("not well-formed XML at byte {tag}: {what}"));
    let mut names: Vec<&str> = Vec::new();
    loop {
        let ws = i;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i) {
            None => return Err("unexpected end of document: unclosed elements".into()),
            Some(b'>') => return Ok((i + 1, false)),
            Some(b'/') if b.get(i + 1) == Some(&b'>') => return Ok((i + 2, true)),
            Some(_) if i == ws => return bad("attributes must be separated by white space"),
            Some(_) => {}
        }
        let start = i;
        i += name_len(&b[i..]);
        if i == start || !name_starts_well(b[start]) {
            return bad("bad attribute name");
        }
        let name = &xml[start..i];
        if names.contains(&name) {
            return bad(&format!("duplicate attribute {name}"));
        }
        names.push(name);
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return bad(&format!("attribute {name} has no value"));
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&quote) = b.get(i).filter(|&&q| q == b'"' || q == b'\'') else {
            return bad(&format!("attribute {name}: value not quoted"));
        };
        i += 1;
        loop {
            match b.get(i) {
                None => return Err("unexpected end of document: unclosed elements".into()),
                Some(&c) if c == quote => {
                    i += 1;
                    break;
                }
                Some(b'<') => return bad(&format!("attribute {name}: '<' in a value")),
                Some(b'&') => i = check_reference(xml, i)?,
                Some(_) => i += 1,
            }
        }
    }
}

fn open(path: &mut String, lens: &mut Vec<usize>, start: &BytesStart<'_>) -> Result<(), String> {
    // quick-xml reads attributes lazily: check their syntax (quotes, duplicates) here.
    for a in start.attributes() {
        a.map_err(|e| format!("not well-formed XML: {e}"))?;
    }
    if lens.len() >= MAX_DEPTH {
        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
    }
    lens.push(path.len());
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(start.local_name().as_ref());
    Ok(())
}

fn close(path: &mut String, lens: &mut Vec<usize>) {
    if let Some(len) = lens.pop() {
        path.truncate(len);
    }
}

/// Escapes text or an attribute value (`&`, `<`, `>`, `"`, `'`).
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(xml: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        walk(xml, |p, s| {
            match s {
                Step::Open(e) => out.push(format!("+{p} a={:?}", e.attr("a")?)),
                Step::Close => out.push(format!("-{p}")),
                Step::Text(t) => out.push(format!("{p}={t}")),
            }
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn walks_paths_text_and_entities() {
        let got = paths(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><r><x:b a=\"1&amp;2\">t &lt;&#233;</x:b><c/></r>",
        );
        assert_eq!(
            got,
            Ok(vec![
                "+r a=None".to_string(),
                "+r/b a=Some(\"1&2\")".into(),
                "r/b=t <é".into(),
                "-r/b".into(),
                "+r/c a=None".into(),
                "-r/c".into(),
                "-r".into(),
            ])
        );
    }

    #[test]
    fn refuses_what_is_not_well_formed() {
        for (xml, reason) in [
            ("not xml", "text outside the root element"),
            ("<a><b></a>", "not well-formed XML at byte"),
            ("<a>", "unexpected end of document: unclosed elements"),
            ("<a/><b/>", "content after the root element"),
            ("<a>&foo;</a>", "undefined entity &foo;"),
            ("<!DOCTYPE a><a/>", "a DOCTYPE is not allowed"),
            (
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
                "encoding ISO-8859-1 is not supported: send UTF-8",
            ),
            ("", "no root element"),
        ] {
            let got = paths(xml).err().unwrap_or_default();
            assert!(got.starts_with(reason), "{xml}: {got}");
        }
    }

    #[test]
    fn the_rest_after_stop_is_checked_not_reported() {
        let mut seen = Vec::new();
        let ok = walk_until(
            "<x:r xmlns:x=\"u\"><h/><x:s a='1' b=\"&amp;\"><!-- c --><a>x &#233;<![CDATA[<>]]></a><?p q?><b/></x:s>\n</x:r>\n<!-- end -->",
            Some("r/s"),
            |p, s| {
                if let Step::Open(_) = s {
                    seen.push(p.to_string());
                }
                Ok(())
            },
        );
        assert_eq!(ok, Ok(()));
        assert_eq!(seen, ["r", "r/h"]);
        for (xml, reason) in [
            (
                "<r><s><a></b></s></r>",
                "not well-formed XML at byte 9: end tag </b> does not match <a>",
            ),
            ("<r><s>&nope;</s></r>", "undefined entity &nope;"),
            ("<r><s>&#0;</s></r>", "bad character reference: &#0;"),
            ("<r><s><a>", "unexpected end of document: unclosed elements"),
            ("<r><s></s></r><r/>", "content after the root element"),
            ("<r><s></s></r>x", "text outside the root element"),
            (
                "<r><s><t a=1/></s></r>",
                "not well-formed XML at byte 6: attribute a: value not quoted",
            ),
            (
                "<r><s><t a='1'a='2'/></s></r>",
                "not well-formed XML at byte 6: attributes must be separated by white space",
            ),
            (
                "<r><s><t a='1' a='2'/></s></r>",
                "not well-formed XML at byte 6: duplicate attribute a",
            ),
            (
                "<r><s><t a='<'/></s></r>",
                "not well-formed XML at byte 6: attribute a: '<' in a value",
            ),
            ("<r><s><t a='&x;'/></s></r>", "undefined entity &x;"),
            (
                "<r><s><!-- x </s></r>",
                "not well-formed XML at byte 6: unterminated comment",
            ),
            ("<r><s><!DOCTYPE x></s></r>", "a DOCTYPE is not allowed"),
            (
                "<r><s><1a/></s></r>",
                "not well-formed XML at byte 6: bad element name",
            ),
            (
                "<r><s><?>?pi?></s></r>",
                "not well-formed XML at byte 6: bad processing instruction",
            ),
            (
                "<r><s><?xml version='1.0'?></s></r>",
                "not well-formed XML at byte 6: bad processing instruction",
            ),
        ] {
            let got = walk_until(xml, Some("r/s"), |_, _| Ok(()))
                .err()
                .unwrap_or_default();
            assert_eq!(got, reason, "{xml}");
        }
        // Attributes of the elements quick-xml reads are checked too, stop element included.
        for xml in [
            "<r><s a=1></s></r>",
            "<r a='1' a='2'><s/></r>",
            "<r><h b=\"x/></r>",
        ] {
            let got = walk_until(xml, Some("r/s"), |_, _| Ok(()))
                .err()
                .unwrap_or_default();
            assert!(got.starts_with("not well-formed XML"), "{xml}: {got}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    mod differential {
        use super::super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Zéà0-9 ,.;:!?()\\[\\]\n\t-]{0,12}",
                Just("&amp;".to_string()),
                Just("&lt;&gt;&quot;&apos;".to_string()),
                Just("&#233;&#x20AC;".to_string()),
                Just("<!-- note -->".to_string()),
                Just("<![CDATA[ <raw> & ]]>".to_string()),
                Just("<?pi data?>".to_string()),
                Just("a > b".to_string()),
            ]
        }

        fn attrs() -> impl Strategy<Value = String> {
            proptest::collection::btree_set("[a-z]{1,3}", 0..3)
                .prop_flat_map(|names| {
                    let n = names.len();
                    (
                        Just(names),
                        proptest::collection::vec(
                            (any::<bool>(), "[a-z0-9 ]{0,4}", any::<bool>()),
                            n,
                        ),
                    )
                })
                .prop_map(|(names, vals)| {
                    names
                        .iter()
                        .zip(vals)
                        .map(|(k, (dq, v, ent))| {
                            let v = if ent { format!("{v}&amp;") } else { v };
                            if dq {
                                format!(" {k}=\"{v}\"")
                            } else {
                                format!(" {k} = '{v}'")
                            }
                        })
                        .collect()
                })
        }

        fn element() -> impl Strategy<Value = String> {
            let leaf = ("[a-z]{1,4}", attrs(), any::<bool>()).prop_map(|(n, a, p)| {
                let n = if p { format!("p:{n}") } else { n };
                format!("<{n}{a}/>")
            });
            leaf.prop_recursive(4, 40, 5, |inner| {
                (
                    "[a-z]{1,4}",
                    attrs(),
                    any::<bool>(),
                    proptest::collection::vec(prop_oneof![inner, text()], 0..5),
                )
                    .prop_map(|(n, a, p, kids)| {
                        let n = if p { format!("p:{n}") } else { n };
                        format!("<{n}{a}>{}</{n} >", kids.concat())
                    })
            })
        }

        fn document() -> impl Strategy<Value = String> {
            (proptest::collection::vec(element(), 0..3), element()).prop_map(|(head, body)| {
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r xmlns:p=\"urn:p\">{}<s>{body}</s>\n</r>\n<!-- tail -->\n", head.concat())
            })
        }

        fn full(xml: &str) -> Result<(), String> {
            walk(xml, |_, _| Ok(()))
        }

        fn split(xml: &str) -> Result<(), String> {
            walk_until(xml, Some("r/s"), |_, _| Ok(()))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

            /// The scanner accepts every well-formed document quick-xml accepts.
            #[test]
            fn well_formed_documents_pass_both(doc in document()) {
                prop_assert_eq!(full(&doc), Ok(()));
                prop_assert_eq!(split(&doc), Ok(()));
            }

            /// And refuses at least what quick-xml refuses, after random damage.
            #[test]
            fn damage_refused_by_quick_xml_is_refused_by_the_scanner(
                doc in document(),
                edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![
                    Just(""), Just("<"), Just(">"), Just("&"), Just("/"), Just("'"), Just("\""), Just("</x>"), Just("<x>"), Just("="), Just("&bad;"), Just("]]>"), Just("<!--"), Just("?>"),
                ]), 1..4),
            ) {
                let mut d = doc.clone();
                for (at, ins) in edits {
                    let mut pos = at.index(d.len() + 1);
                    while !d.is_char_boundary(pos) { pos -= 1; }
                    if ins.is_empty() {
                        if pos < d.len() {
                            let next = d[pos..].chars().next().map_or(1, char::len_utf8);
                            d.replace_range(pos..pos + next, "");
                        }
                    } else {
                        d.insert_str(pos, ins);
                    }
                }
                if full(&d).is_err() {
                    prop_assert!(split(&d).is_err(), "scanner accepted what quick-xml refuses:\n{}\nquick-xml: {:?}", d, full(&d));
                }
            }
        }
    }
}
