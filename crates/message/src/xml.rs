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
pub(crate) fn walk<F>(xml: &str, mut f: F) -> Result<(), String>
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

fn open(path: &mut String, lens: &mut Vec<usize>, start: &BytesStart<'_>) -> Result<(), String> {
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
    fn escapes_markup() {
        assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
