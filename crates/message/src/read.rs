//! Reading an incoming message: headers, `X-MSS-*`, patient sender, bodies, XDM archives,
//! reports (docs/mssante.md R2, R3).
//!
//! A faulty message is read as far as it goes and flagged: [`ReceivedMessage::problems`] names
//! each fault in plain words (`not MIME: …`, `hash mismatch: DOC00001.XML`…), so that the message
//! is kept and answered, never dropped. A panic of the MIME parser is contained: the headers are
//! read again on their own and the message is flagged. Only bytes without any header field are
//! an error ([`read_message`]). The panic's message still goes to the panic hook: a process that
//! reads outside mail should install one that prints no payload.

use crate::patient::{PatientIdentity, PatientSender, SenderClass, classify_sender};
use crate::receipt::{self, Report, normalize_id};
use crate::xdm::{self, XdmArchive};
use crate::{Error, Result};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use time::OffsetDateTime;

mod view;
pub use view::{AttachmentView, MessageView, PatientView, XdmDocumentView, XdmView, header_fields};

/// The problem of a message the MIME parser failed on (its panic contained).
pub const PARSER_FAILURE: &str = "not MIME: the parser failed on its structure";

/// The `X-MSS-*` headers of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MssHeaders {
    /// `X-MSS-NIL`.
    pub nil: Option<String>,
    /// `X-MSS-CODECDA` values, split on `,` or `;` (the separator is not public) and across
    /// repeated headers.
    pub codecda: Vec<String>,
    /// `X-MSS-INS`: `Some(true)` for `O`, `Some(false)` for `N`.
    pub ins_qualified: Option<bool>,
    /// `X-MSS-MES` as written (e.g. `FIN`).
    pub mes: Option<String>,
}

/// An attachment of a received message (`Debug` shows its size, not its bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedAttachment {
    /// File name (`filename` or `name`), empty when none.
    pub filename: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Decoded bytes.
    pub content: Vec<u8>,
}

impl std::fmt::Debug for ReceivedAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedAttachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .finish()
    }
}

/// An `IHE_XDM.zip` attachment and what reading it gave ([`xdm::inspect_archive`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdmAttachment {
    /// Index in [`ReceivedMessage::attachments`].
    pub attachment: usize,
    /// What could be read; `None` when the bytes are not a zip or hold no METADATA.XML.
    pub archive: Option<XdmArchive>,
    /// The archive's faults in plain words; empty when every document was verified.
    pub problems: Vec<String>,
}

/// A received message, read. `Debug` leaves out the raw bytes and the body text.
#[derive(Debug)]
pub struct ReceivedMessage {
    /// The raw bytes (kept to re-attach in an MDN).
    pub raw: Redacted,
    /// Message-ID without brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids without brackets.
    pub in_reply_to: Vec<String>,
    /// References ids without brackets.
    pub references: Vec<String>,
    /// `From:` address.
    pub from: Option<String>,
    /// `From:` display name.
    pub from_name: Option<String>,
    /// Professional, patient (MES) or unverified patient domain.
    pub sender: SenderClass,
    /// `To:` addresses.
    pub to: Vec<String>,
    /// `Cc:` addresses.
    pub cc: Vec<String>,
    /// `Reply-To:` addresses.
    pub reply_to: Vec<String>,
    /// Decoded subject (empty when none); [`ReceivedMessage::display_subject`] is what users see.
    pub subject: String,
    /// `Date:`, when present and valid.
    pub date: Option<OffsetDateTime>,
    /// First text/plain body.
    pub text: Option<Redacted<String>>,
    /// First text/html body (never made up from the text body).
    pub html: Option<Redacted<String>>,
    /// Ségur headers.
    pub mss: MssHeaders,
    /// `X-MSS-MES: FIN` or subject exactly `[FIN]`.
    pub end_of_exchange: bool,
    /// `Disposition-Notification-To` address (an MDN is asked).
    pub disposition_notification_to: Option<String>,
    /// `Original-Recipient` header, if any (echoed in an MDN).
    pub original_recipient: Option<String>,
    /// `Return-Path` address.
    pub return_path: Option<String>,
    /// Attachments in order.
    pub attachments: Vec<ReceivedAttachment>,
    /// The `IHE_XDM.zip` attachments (name matched case-insensitively).
    pub xdm: Vec<XdmAttachment>,
    /// A DSN or MDN, when the message is a report.
    pub report: Option<Report>,
    /// Every fault found, in plain words: the message's own (broken MIME, parser failure), then
    /// each archive's ([`XdmAttachment::problems`]). Empty for a sound message; missing optional
    /// fields are not faults.
    pub problems: Vec<String>,
}

impl ReceivedMessage {
    /// The patient the message is about, from the first readable XDM archive.
    pub fn patient(&self) -> Option<PatientIdentity> {
        self.xdm.iter().find_map(|x| {
            let a = x.archive.as_ref()?;
            let s = a.subsets.first()?;
            let info = s
                .metadata
                .documents
                .first()
                .map(|d| d.source_patient_info.as_slice())
                .unwrap_or(&[]);
            PatientIdentity::from_metadata(&s.metadata.submission_set.patient_id, info)
        })
    }

    /// The subject without the `XDM/1.0/DDM+` prefix, as users should see it (ECO.3.1.3).
    pub fn display_subject(&self) -> &str {
        self.subject
            .strip_prefix("XDM/1.0/DDM+")
            .unwrap_or(&self.subject)
    }

    /// The patient who wrote the message from Mon espace santé (INS and name), if it is one.
    pub fn patient_sender(&self) -> Option<&PatientSender> {
        match &self.sender {
            SenderClass::Patient(p) => Some(p),
            _ => None,
        }
    }

    /// The ids this message answers, nearest first: `In-Reply-To`, then `References` from the
    /// last, without repeats (to find the outbox message it replies to).
    pub fn thread_ids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for id in self.in_reply_to.iter().chain(self.references.iter().rev()) {
            if !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        out
    }

    /// The documents found in the XDM archives (verified or not).
    pub fn documents(&self) -> impl Iterator<Item = &xdm::ReadDocument> {
        self.xdm
            .iter()
            .filter_map(|x| x.archive.as_ref())
            .flat_map(|a| a.documents())
    }

    /// True when an MDN may only be sent after the user agrees: RFC 8098 §2.1 when the
    /// notification address differs from the Return-Path.
    pub fn mdn_needs_confirmation(&self) -> bool {
        match (&self.disposition_notification_to, &self.return_path) {
            (Some(d), Some(r)) => !d.eq_ignore_ascii_case(r),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Data kept whole but shown by size only in `Debug` (message bytes, body text).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted<T = Vec<u8>>(pub T);

impl<T: AsRef<[u8]>> std::fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.as_ref().len())
    }
}

impl<T> std::ops::Deref for Redacted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// First `<addr>` of a header value, or the trimmed value.
fn header_address(v: &str) -> Option<String> {
    let v = v.trim();
    let a = match (v.rfind('<'), v.rfind('>')) {
        (Some(s), Some(e)) if s < e => &v[s + 1..e],
        _ => v,
    };
    let a = a.trim();
    (!a.is_empty()).then(|| a.to_string())
}

fn ids(v: &str) -> Vec<String> {
    v.split_whitespace()
        .map(normalize_id)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Reads a message. Bytes without any header field are not a mail message and the only error
/// ([`Error::Malformed`] on `message`); the caller keeps them anyway. Any other fault — broken
/// MIME, a parser panic, a bad archive — yields the message with [`ReceivedMessage::problems`].
pub fn read_message(raw: &[u8]) -> Result<ReceivedMessage> {
    read_inspecting(raw, |_| ()).map(|(m, _)| m)
}

/// [`read_message`], and `inspect` run on the parsed MIME tree too (the conformance checker looks at
/// what the reader does not keep: raw header fields, each part's charset): one parse serves both.
/// After a parser panic `inspect` sees the header-only reading (the message then starts its
/// problems with [`PARSER_FAILURE`]); `None` when even that failed.
pub(crate) fn read_inspecting<T>(
    raw: &[u8],
    inspect: impl Fn(&Message<'_>) -> T,
) -> Result<(ReceivedMessage, Option<T>)> {
    let not_mail = || Error::malformed("message", "not a mail message: no header field");
    // A panic of mail-parser on hostile input must not stop a reader (issue 19, item 6).
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let msg = MessageParser::default().parse(raw)?;
        (!msg.headers().is_empty()).then(|| (from_parsed(raw, &msg, true), inspect(&msg)))
    })) {
        Ok(Some((m, t))) => Ok((m, Some(t))),
        Ok(None) => Err(not_mail()),
        Err(_) => {
            let headers_only = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let msg = MessageParser::default().parse_headers(raw)?;
                (!msg.headers().is_empty()).then(|| (from_parsed(raw, &msg, false), inspect(&msg)))
            }));
            let (mut m, t) = match headers_only {
                Ok(Some((m, t))) => (m, Some(t)),
                Ok(None) | Err(_) => (unread(raw), None),
            };
            m.problems.insert(0, PARSER_FAILURE.to_string());
            Ok((m, t))
        }
    }
}

/// A message of which nothing could be read but its bytes.
fn unread(raw: &[u8]) -> ReceivedMessage {
    ReceivedMessage {
        raw: Redacted(raw.to_vec()),
        message_id: None,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        from: None,
        from_name: None,
        sender: SenderClass::Professional,
        to: Vec::new(),
        cc: Vec::new(),
        reply_to: Vec::new(),
        subject: String::new(),
        date: None,
        text: None,
        html: None,
        mss: MssHeaders::default(),
        end_of_exchange: false,
        disposition_notification_to: None,
        original_recipient: None,
        return_path: None,
        attachments: Vec::new(),
        xdm: Vec::new(),
        report: None,
        problems: Vec::new(),
    }
}

/// Everything but the bytes from a parsed message; `whole` is false when only its header was
/// parsed (the MIME structure is then not checked).
fn from_parsed(raw: &[u8], msg: &Message<'_>, whole: bool) -> ReceivedMessage {
    let mut mss = MssHeaders::default();
    let mut dnt = None;
    let mut original_recipient = None;
    // Only the header: mail-parser's return_address() falls back to From, which would defeat the
    // RFC 8098 comparison.
    let mut return_path = None;
    let mut in_reply_to = Vec::new();
    let mut references = Vec::new();
    for (name, value) in msg.headers_raw() {
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "x-mss-nil" => mss.nil = Some(value.to_string()),
            "x-mss-codecda" => mss.codecda.extend(
                value
                    .split([',', ';'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "x-mss-ins" => {
                mss.ins_qualified = match value.to_ascii_uppercase().as_str() {
                    "O" => Some(true),
                    "N" => Some(false),
                    _ => None,
                }
            }
            "x-mss-mes" => mss.mes = Some(value.to_string()),
            "disposition-notification-to" => dnt = header_address(value),
            "original-recipient" => original_recipient = Some(receipt::address_value(value)),
            "return-path" => return_path = header_address(value),
            "in-reply-to" => in_reply_to.extend(ids(value)),
            "references" => references.extend(ids(value)),
            _ => {}
        }
    }
    let from = msg.from().and_then(|a| a.first());
    let from_address = from.and_then(|a| a.address()).map(str::to_string);
    let from_name = from.and_then(|a| a.name()).map(str::to_string);
    let sender = match &from_address {
        Some(a) => classify_sender(a, from_name.as_deref()),
        None => SenderClass::Professional,
    };
    let list = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    };
    let subject = msg.subject().unwrap_or("").to_string();
    let end_of_exchange = mss
        .mes
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("FIN"))
        || subject.trim() == "[FIN]";

    let mut attachments = Vec::new();
    let mut xdm = Vec::new();
    // One inflating budget for all the archives of the message, not one each.
    let mut xdm_budget = xdm::ReadLimits::default().max_total_bytes;
    for part in msg.attachments() {
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_string(),
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        let filename = part.attachment_name().unwrap_or("").to_string();
        let content = part.contents().to_vec();
        if filename.trim().eq_ignore_ascii_case(xdm::ATTACHMENT_NAME) {
            let limits = xdm::ReadLimits {
                max_total_bytes: xdm_budget,
                ..xdm::ReadLimits::default()
            };
            let reading = xdm::inspect_archive_with(&content, limits);
            xdm_budget -= reading.inflated;
            xdm.push(XdmAttachment {
                attachment: attachments.len(),
                archive: reading.archive,
                problems: reading.problems,
            });
        }
        attachments.push(ReceivedAttachment {
            filename,
            content_type,
            content,
        });
    }

    let mut problems = Vec::new();
    if from_address.is_none() {
        problems.push("no sender address (From:)".to_string());
    }
    if whole {
        problems.extend(mime_problems(raw, msg));
    }
    problems.extend(xdm.iter().flat_map(|x| x.problems.iter().cloned()));
    let report = read_report(msg);
    ReceivedMessage {
        raw: Redacted(raw.to_vec()),
        message_id: msg.message_id().map(normalize_id),
        in_reply_to,
        references,
        from: from_address,
        from_name,
        sender,
        to: list(msg.to()),
        cc: list(msg.cc()),
        reply_to: list(msg.reply_to()),
        subject,
        date: msg.date().and_then(|d| {
            OffsetDateTime::parse(
                &d.to_rfc3339(),
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
        }),
        text: msg.body_text(0).map(|t| Redacted(t.into_owned())),
        html: msg.html_bodies().find_map(|p| match &p.body {
            PartType::Html(h) => Some(Redacted(h.to_string())),
            _ => None,
        }),
        mss,
        end_of_exchange,
        disposition_notification_to: dnt,
        original_recipient,
        return_path,
        attachments,
        xdm,
        report,
        problems,
    }
}

/// Faults of the MIME structure: a multipart without a boundary, without any part, or, for the
/// root, cut before its closing delimiter (a truncated message). Only the root's delimiter is
/// searched: one scan of the bytes, however many parts a hostile message has.
fn mime_problems(raw: &[u8], msg: &Message<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, part) in msg.parts.iter().enumerate() {
        let Some(ct) = part
            .content_type()
            .filter(|c| c.ctype().eq_ignore_ascii_case("multipart"))
        else {
            continue;
        };
        let Some(boundary) = ct.attribute("boundary").filter(|b| !b.is_empty()) else {
            problems.push("not MIME: multipart without boundary".to_string());
            continue;
        };
        if !matches!(&part.body, PartType::Multipart(children) if !children.is_empty()) {
            problems.push("not MIME: multipart without any part".to_string());
            continue;
        }
        let close = format!("--{boundary}--");
        if index == 0 && memchr::memmem::find(raw, close.as_bytes()).is_none() {
            problems.push("truncated MIME: no closing boundary".to_string());
        }
    }
    problems
}

fn read_report(msg: &Message<'_>) -> Option<Report> {
    let root = msg.parts.first()?.content_type()?;
    if !root.ctype().eq_ignore_ascii_case("multipart")
        || !root
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        return None;
    }
    let kind = root.attribute("report-type")?.to_ascii_lowercase();
    let mut fields = None;
    let mut original_id = None;
    for part in &msg.parts[1..] {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        let ctype = ct.ctype().to_ascii_lowercase();
        match (ctype.as_str(), sub.as_str()) {
            (
                "message",
                "delivery-status"
                | "global-delivery-status"
                | "disposition-notification"
                | "global-disposition-notification",
            ) => {
                fields = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "rfc822" | "global") => {
                if let PartType::Message(m) = &part.body {
                    original_id = original_id.or_else(|| m.message_id().map(normalize_id));
                }
            }
            ("text", "rfc822-headers") => {
                let text = String::from_utf8_lossy(part.contents());
                original_id = original_id.or_else(|| {
                    MessageParser::default()
                        .parse_headers(text.as_bytes())
                        .and_then(|h| h.message_id().map(normalize_id))
                });
            }
            _ => {}
        }
    }
    let fields = fields?;
    match kind.as_str() {
        "delivery-status" => Some(Report::Dsn(receipt::parse_dsn(&fields, original_id))),
        "disposition-notification" => Some(Report::Mdn(receipt::parse_mdn(&fields))),
        _ => None,
    }
}
