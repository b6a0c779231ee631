//! Acknowledgements: `ACK` with `MSA` and `ERR` (HL7 v2.5/2.6 §2.14–2.15, original mode, as the CI-SIS
//! guides use it): made for what the PFI receives, read from what the DPI answers.

use std::borrow::Cow;

use crate::{Charset, Error, Result};
use crate::{Delimiters, Message, Segment};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Accepted: the receiver took responsibility for the message.
    AA,
    /// Error: the message is wrong; sending it again as it is will fail again.
    AE,
    /// Reject: refused for a circumstance (unsupported type, a store down); it may be sent again later.
    AR,
}

impl AckCode {
    /// Its MSA-1 value.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
        }
    }
}

/// The labels of HL7 table 0357 (messageErrorCondition) the guides use.
pub fn condition_label(code: u16) -> &'static str {
    match code {
        0 => "Message accepted",
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        103 => "Table value not found",
        198 => "Non-conformant cardinality",
        199 => "Other HL7 Error",
        200 => "Unsupported message type",
        201 => "Unsupported event code",
        202 => "Unsupported processing id",
        203 => "Unsupported version id",
        204 => "Unknown key identifier",
        205 => "Duplicate key identifier",
        206 => "Application record locked",
        207 => "Application error",
        _ => "Other error",
    }
}

/// One fault named in an ERR segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// ERR-3: HL7 table 0357 code.
    pub code: u16,
    /// ERR-2: where, as `SEG^sequence^field` (e.g. `PID^1^3`); empty: the message as a whole.
    pub location: String,
    /// ERR-5: application error code and label (guide tables such as 900–906), if any.
    pub application: Option<(String, String)>,
    /// ERR-8: what a person reads (never health content).
    pub text: String,
}

impl Fault {
    /// A fault with code `code` at `location`, explained by `text`.
    pub fn new(code: u16, location: impl Into<String>, text: impl Into<String>) -> Self {
        Fault {
            code,
            location: location.into(),
            application: None,
            text: text.into(),
        }
    }

    /// The same with an ERR-5 application code.
    pub fn with_application(mut self, code: &str, label: &str) -> Self {
        self.application = Some((code.to_owned(), label.to_owned()));
        self
    }

    fn segment(&self, d: &Delimiters) -> Segment {
        let code = self.code.to_string();
        let mut s = Segment::new("ERR")
            .with(2, location_field(&self.location, d))
            .with(
                3,
                d.components(&[&code, condition_label(self.code), "HL70357"]),
            )
            .with(4, "E");
        if let Some((code, label)) = &self.application {
            s.set(5, d.components(&[code, label, "HL70533"]));
        }
        if !self.text.is_empty() {
            s.set(8, d.escape(&self.text).into_owned());
        }
        s
    }
}

/// `PID^1^3` written as an ERL field (its parts are plain tokens).
fn location_field(location: &str, d: &Delimiters) -> String {
    let parts: Vec<&str> = location.split('^').collect();
    d.components(&parts)
}

/// The acknowledgement of `original`: MSH with sender and receiver swapped, `ACK^<event>^ACK`, MSA, one
/// ERR per fault. `control_id` is the ACK's own MSH-10, `now` its MSH-7 (`YYYYMMDDHHMMSS`).
pub fn acknowledge(
    original: &Message,
    code: AckCode,
    faults: &[Fault],
    control_id: &str,
    now: &str,
) -> Message {
    let msh = original.segment("MSH");
    let get = |n: usize| msh.map_or("", |s| s.field(n).raw());
    let d = Delimiters::default();
    let (_, event, _) = original.message_type();
    let kind = d.raw_components(&[
        "ACK",
        &d.escape(&event),
        if event.is_empty() { "" } else { "ACK" },
    ]);
    let version = if get(12).is_empty() { "2.6" } else { get(12) };
    let processing = if get(11).is_empty() { "P" } else { get(11) };
    let charset = original.charset();
    let mut header = Message::msh(
        charset,
        &[
            get(5),
            get(6),
            get(3),
            get(4),
            now,
            "",
            &kind,
            &d.escape(control_id),
            processing,
            version,
        ],
    );
    header.set(17, "FRA");
    let mut segments = vec![
        header,
        Segment::new("MSA")
            .with(1, code.as_str())
            .with(2, original.get("MSH", 10).raw()),
    ];
    segments.extend(faults.iter().map(|f| f.segment(&d)));
    Message::new(charset, segments)
}

/// An acknowledgement as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// MSA-1 (enhanced-mode `CA`/`CE`/`CR` read as `AA`/`AE`/`AR`).
    pub code: AckCode,
    /// MSA-2: the acknowledged message's MSH-10.
    pub acknowledged: String,
    /// Its ERR segments.
    pub faults: Vec<Fault>,
}

impl Ack {
    /// Reads an ACK (any message with an MSA).
    pub fn read(m: &Message) -> Result<Ack> {
        let msa = m
            .segment("MSA")
            .ok_or_else(|| Error::parse("MSA", "an acknowledgement has an MSA segment"))?;
        let code = match &*msa.field(1).text() {
            "AA" | "CA" => AckCode::AA,
            "AE" | "CE" => AckCode::AE,
            "AR" | "CR" => AckCode::AR,
            other => {
                return Err(Error::parse(
                    "MSA-1",
                    format!("{other:?} is not AA, AE, AR (or CA, CE, CR)"),
                ));
            }
        };
        let faults = m
            .segments()
            .iter()
            .filter(|s| s.name() == "ERR")
            .map(|s| {
                let err3 = s.field(3).component(1).text();
                let app = s.field(5);
                Fault {
                    code: err3.trim().parse().unwrap_or(207),
                    location: s
                        .field(2)
                        .repetitions()
                        .next()
                        .map(|r| r.raw().to_owned())
                        .unwrap_or_default(),
                    application: (!app.component(1).is_empty()).then(|| {
                        (
                            app.component(1).text().into_owned(),
                            app.component(2).text().into_owned(),
                        )
                    }),
                    text: s.field(8).text().into_owned(),
                }
            })
            .collect();
        Ok(Ack {
            code,
            acknowledged: msa.field(2).text().into_owned(),
            faults,
        })
    }

    /// The error code an MDN carries for this answer (docs/mssante.md R4): ERR-5's application code when
    /// given, else ERR-3's; with its label.
    pub fn error_code(&self) -> Option<(String, Cow<'static, str>)> {
        let f = self.faults.first()?;
        Some(match &f.application {
            Some((code, label)) => (code.clone(), Cow::Owned(label.clone())),
            None => (f.code.to_string(), Cow::Borrowed(condition_label(f.code))),
        })
    }
}

/// An AR for bytes that are not even a message (no MSH to answer to): MSA-2 empty.
pub fn reject_unreadable(fault: &Fault, control_id: &str, now: &str) -> Message {
    let d = Delimiters::default();
    let mut header = Message::msh(
        Charset::Utf8,
        &[
            "",
            "",
            "",
            "",
            now,
            "",
            "ACK",
            &d.escape(control_id),
            "P",
            "2.6",
        ],
    );
    header.set(17, "FRA");
    Message::new(
        Charset::Utf8,
        vec![
            header,
            Segment::new("MSA")
                .with(1, AckCode::AR.as_str())
                .with(2, ""),
            fault.segment(&d),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledges_with_faults_and_reads_back() {
        let m = Message::parse(
            b"MSH|^~\\&|RIS-Y|Org-Y|PFI-Y|Org-Y|202106060931||MDM^T02^MDM_T02|015|P|2.6|||||FRA|UNICODE UTF-8\r",
        )
        .expect("parses");
        let fault = Fault::new(207, "OBX^4^5", "INVISIBLE_REP_LEGAUX: Y not allowed here");
        let ack = acknowledge(
            &m,
            AckCode::AE,
            std::slice::from_ref(&fault),
            "A1",
            "20260101120000",
        );
        assert_eq!(
            ack.to_text(),
            "MSH|^~\\&|PFI-Y|Org-Y|RIS-Y|Org-Y|20260101120000||ACK^T02^ACK|A1|P|2.6|||||FRA|UNICODE UTF-8\r\
             MSA|AE|015\r\
             ERR||OBX^4^5|207^Application error^HL70357|E||||INVISIBLE_REP_LEGAUX: Y not allowed here\r"
        );
        let read = Ack::read(&ack).expect("reads");
        assert_eq!(read.code, AckCode::AE);
        assert_eq!(read.acknowledged, "015");
        assert_eq!(read.faults, vec![fault]);
    }

    #[test]
    fn application_codes_win() {
        let m = Message::parse(
            b"MSH|^~\\&|DPI|X|PFI|X|1||ACK^T02^ACK|9|P|2.6\rMSA|AE|5\rERR||PID^1^3|207^Application error^HL70357|E|902^Identifiant patient inconnu^HL70533\r",
        )
        .expect("parses");
        let ack = Ack::read(&m).expect("reads");
        assert_eq!(
            ack.error_code(),
            Some((
                "902".into(),
                Cow::Owned("Identifiant patient inconnu".into())
            ))
        );
    }
}
