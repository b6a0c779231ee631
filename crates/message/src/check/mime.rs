//! What the checker takes from the parsed MIME tree besides what the reader keeps: the root's
//! header fields as written, the report type, the root's children, each body text part's charset
//! and each attachment's transfer encoding.

use mail_parser::{Encoding, Message, MessagePart, MimeHeaders, PartType};

/// The MIME facts of a message (empty when the parser failed on it).
#[derive(Debug, Default)]
pub(crate) struct Mime {
    /// The root's header fields: lower-case name, value as written (trimmed).
    pub headers: Vec<(String, String)>,
    /// The root's `type/subtype`, lower case (`text/plain` when absent, as RFC 2045 says).
    pub root_type: String,
    /// The root's `report-type`, lower case, for a `multipart/report`.
    pub report_type: Option<String>,
    /// The `type/subtype` of the root's direct children, in order.
    pub children: Vec<String>,
    /// The body's text parts (not attachments).
    pub texts: Vec<TextPart>,
    /// Each attachment's `Content-Transfer-Encoding` (lower case), in the reader's order.
    pub attachment_encodings: Vec<Option<String>>,
    /// Whether the whole tree was read (false when the parser failed).
    pub parsed: bool,
}

/// A text part of the body.
#[derive(Debug)]
pub(crate) struct TextPart {
    /// Its index among the message's parts (1 is the root).
    pub part: usize,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// The declared charset, lower case.
    pub charset: Option<String>,
    /// Its bytes are not valid UTF-8 (declared UTF-8, or undeclared 8-bit).
    pub invalid_utf8: bool,
    /// It holds other than ASCII characters.
    pub non_ascii: bool,
}

pub(crate) fn type_of(part: &MessagePart<'_>) -> String {
    part.content_type()
        .map(|c| match c.subtype() {
            Some(s) => format!("{}/{}", c.ctype(), s),
            None => c.ctype().to_string(),
        })
        .unwrap_or_else(|| "text/plain".to_string())
        .to_ascii_lowercase()
}

impl Mime {
    pub(crate) fn of(msg: &Message<'_>) -> Mime {
        let headers = msg
            .headers_raw()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let Some(root) = msg.parts.first() else {
            return Mime {
                headers,
                ..Mime::default()
            };
        };
        let report_type = root
            .content_type()
            .filter(|c| c.ctype().eq_ignore_ascii_case("multipart"))
            .and_then(|c| c.attribute("report-type"))
            .map(str::to_ascii_lowercase);
        let children = match &root.body {
            PartType::Multipart(ids) => ids
                .iter()
                .filter_map(|&i| msg.parts.get(i as usize))
                .map(type_of)
                .collect(),
            _ => Vec::new(),
        };
        let mut ids: Vec<u32> = msg
            .text_body
            .iter()
            .chain(&msg.html_body)
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let texts = ids
            .into_iter()
            .filter_map(|i| Some((i as usize, msg.parts.get(i as usize)?)))
            .filter(|(_, p)| matches!(p.body, PartType::Text(_) | PartType::Html(_)))
            .map(|(i, p)| text_part(msg, i, p))
            .collect();
        let attachment_encodings = msg
            .attachments()
            .map(|p| {
                p.content_transfer_encoding()
                    .map(|e| e.trim().to_ascii_lowercase())
            })
            .collect();
        Mime {
            headers,
            root_type: type_of(root),
            report_type,
            children,
            texts,
            attachment_encodings,
            parsed: true,
        }
    }

    /// The values of a header field (name in lower case), in order.
    pub(crate) fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn text_part(msg: &Message<'_>, index: usize, part: &MessagePart<'_>) -> TextPart {
    let charset = part
        .content_type()
        .and_then(|c| c.attribute("charset"))
        .map(|c| c.trim().to_ascii_lowercase());
    let (invalid_utf8, non_ascii) = if part.encoding == Encoding::None {
        // 7bit/8bit: the bytes as sent.
        let bytes = msg
            .raw_message
            .get(part.offset_body as usize..part.offset_end as usize)
            .unwrap_or_default();
        (
            std::str::from_utf8(bytes).is_err(),
            bytes.iter().any(|b| !b.is_ascii()),
        )
    } else {
        // Base64 or quoted-printable: the parser decoded them, replacing bytes that are not UTF-8.
        let text = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.as_ref(),
            _ => "",
        };
        (text.contains('\u{FFFD}'), !text.is_ascii())
    };
    TextPart {
        part: index + 1,
        content_type: type_of(part),
        charset,
        invalid_utf8,
        non_ascii,
    }
}
