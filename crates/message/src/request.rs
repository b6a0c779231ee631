//! The compose request (JSON body of the REST call and of `mss compose --json`) and the service
//! configuration that goes with it.
//!
//! JSON conventions: field names are snake_case; unknown fields are refused; binary contents are
//! carried as a [`Content`] object, either `{"text": "..."}` (UTF-8, the natural choice for a CDA R2
//! document) or `{"base64": "..."}` (standard alphabet, padding required, line breaks allowed).

use crate::Error;
use crate::trust::Trust;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Everything needed to compose one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeRequest {
    /// The sending mailbox and the parts of its label (`From:` display name).
    pub sender: Sender,
    /// To, Cc and Bcc addresses; at least one in all.
    pub recipients: Recipients,
    /// Optional `Reply-To` address (Mon espace santé lets a patient reply to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The subject. With CDA documents it may be omitted and is then derived
    /// (`XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>`); if given it must start with
    /// `XDM/1.0/DDM+`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Text body and optional HTML alternative.
    #[serde(default)]
    pub body: Body,
    /// CDA R2 documents, carried in `IHE_XDM.zip`, each with an optional PDF rendering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    /// Other files, attached as they are (outside the XDM archive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The patient the documents are about (required with documents or a patient recipient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientRequest>,
    /// Delivery (DSN) and read (MDN) receipts wanted.
    #[serde(default)]
    pub receipts: Receipts,
    /// Ends the exchange with the patient: Mon espace santé then forbids the patient's reply.
    #[serde(default)]
    pub end_of_exchange: bool,
    /// Message-ID this message answers (`<id@domain>`), for `In-Reply-To`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first, for `References`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

/// The sender's mailbox and label parts (Ref#2 ECO.2.2.7, docs/mssante.md M4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// The BAL address.
    pub address: String,
    /// Mailbox type: PER, ORG, APP or CAB.
    #[serde(rename = "type")]
    pub kind: SenderKind,
    /// PER only, optional: `Dr`, `Pr`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// PER: required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// PER: required, written upper case in the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// PER: optional functional entity; ORG, APP, CAB: required (it is the whole label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
}

/// Mailbox types of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SenderKind {
    /// Personal mailbox of one professional.
    #[serde(rename = "PER")]
    Per,
    /// Organisational mailbox (a service).
    #[serde(rename = "ORG")]
    Org,
    /// Applicative mailbox (a machine sender).
    #[serde(rename = "APP")]
    App,
    /// Cabinet mailbox.
    #[serde(rename = "CAB")]
    Cab,
}

/// Recipients by header. Bcc addresses go to the envelope only, never into the message or the XDM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipients {
    /// `To:` addresses.
    #[serde(default)]
    pub to: Vec<String>,
    /// `Cc:` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// Blind copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
}

/// The message text (`Debug` shows sizes only).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Plain text (UTF-8).
    #[serde(default)]
    pub text: String,
    /// Optional HTML alternative (the body becomes `multipart/alternative`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("html", &self.html.as_ref().map(|h| h.len()))
            .finish()
    }
}

/// Binary or text content in JSON. Its `Debug` shows only the size: requests get logged, health
/// documents must not.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Content {
    /// UTF-8 text, taken as is.
    Text(String),
    /// Standard base64 (line breaks and spaces are ignored).
    Base64(String),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Text(t) => write!(f, "Text(<{} bytes>)", t.len()),
            Content::Base64(b) => write!(f, "Base64(<{} characters>)", b.len()),
        }
    }
}

impl Content {
    /// The bytes, or an error naming `field`.
    pub fn bytes(&self, field: &str) -> Result<Cow<'_, [u8]>, Error> {
        match self {
            Content::Text(t) => Ok(Cow::Borrowed(t.as_bytes())),
            Content::Base64(b) => base64::engine::general_purpose::STANDARD
                .decode(without_white_space(b).as_ref())
                .map(Cow::Owned)
                .map_err(|e| Error::invalid(format!("{field}.base64"), format!("not base64: {e}"))),
        }
    }
}

/// `text` without its white space (line breaks of wrapped base64), borrowed when it has none: a byte
/// scan, not a character one (base64 is ASCII; a stray multi-byte character is left for the decoder to
/// refuse).
fn without_white_space(text: &str) -> Cow<'_, [u8]> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect())
    } else {
        Cow::Borrowed(text.as_bytes())
    }
}

/// One CDA R2 document of the XDM archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The CDA R2 XML (UTF-8).
    pub cda: Content,
    /// XDS `classCode` (JDV_J06-XdsClassCode-CISIS, scheme `1.2.250.1.213.1.1.4.1`): not in the
    /// CDA header, so the sender gives it.
    pub class_code: ClassifiedCode,
    /// XDS `formatCode` (JDV_J10); default `urn:ihe:iti:xds:2017:mimeTypeSufficient`
    /// (`1.3.6.1.4.1.19376.1.2.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_code: Option<ClassifiedCode>,
    /// XDS `healthcareFacilityTypeCode`; overrides the CDA
    /// `componentOf/encompassingEncounter/location/healthCareFacility/code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcare_facility_type_code: Option<ClassifiedCode>,
    /// XDS `practiceSettingCode`; overrides the CDA `standardIndustryClassCode` of the performer
    /// or author organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice_setting_code: Option<ClassifiedCode>,
    /// Optional PDF rendering attached beside the archive (ECO.2.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendering: Option<Rendering>,
    /// The XDS uniqueId (`root^extension`, or an OID) of the earlier document this one replaces:
    /// an `RPLC` association in METADATA.XML. Default: the CDA's
    /// `relatedDocument[@typeCode='RPLC']/parentDocument/id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The author withdraws this document, sent earlier: the recipients are asked to delete it
    /// (availabilityStatus `urn:asip:ci-sis:2010:StatusType:Deleted`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdraw: bool,
    /// XDS `confidentialityCode` values beside the CDA's: the restrictions of the national table
    /// TRE_A07 (`MASQUE_PS`, `INVISIBLE_PATIENT`, `INVISIBLE_REPRESENTANTS_LEGAUX`, scheme
    /// `1.2.250.1.213.1.1.4.13`, [`crate::metadata::VISIBILITY_SCHEME`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confidentiality_codes: Vec<ClassifiedCode>,
}

/// A coded value as XDS classifications carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifiedCode {
    /// The code (`nodeRepresentation`).
    pub code: String,
    /// The code system OID (`codingScheme` slot).
    pub coding_scheme: String,
    /// The display name (`Name`).
    #[serde(default)]
    pub display_name: String,
}

/// The PDF rendering of a CDA document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rendering {
    /// The PDF bytes (base64).
    pub content: Content,
    /// File name; default `<date>_<type>_<NOM>_<prénom>[_<dossier>].pdf` (ECO.2.1.6) from the CDA
    /// header and the patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Case or file number, the last part of the default file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_number: Option<String>,
}

/// A plain attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// File name as the recipient sees it.
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The bytes.
    pub content: Content,
}

/// The patient's identity traits (INS qualified or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRequest {
    /// The 15-character INS matricule.
    pub ins: String,
    /// Which INS-NIR authority (OID) it belongs to.
    pub ins_authority: crate::InsAuthority,
    /// True once the INS was checked against the INSi teleservice.
    pub qualified: bool,
    /// Birth name (written upper case in the subject).
    pub birth_name: String,
    /// First given name at birth.
    pub first_given_name: String,
    /// Birth date `YYYYMMDD`.
    pub birth_date: String,
    /// Administrative sex.
    pub sex: Sex,
}

/// Administrative sex as INS and XDS (`PID-8`) code it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sex {
    /// Male.
    M,
    /// Female.
    F,
    /// Unknown.
    U,
}

impl Sex {
    /// The one-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Sex::M => "M",
            Sex::F => "F",
            Sex::U => "U",
        }
    }
}

/// Receipts asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipts {
    /// Delivery status notification (SMTP DSN: NOTIFY=SUCCESS,FAILURE,DELAY).
    #[serde(default)]
    pub dsn: bool,
    /// Read receipt (`Disposition-Notification-To:` the sender).
    #[serde(default)]
    pub mdn: bool,
}

/// How "end of exchange" is told to Mon espace santé (ENS MES V1.3 §7 lists both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndOfExchangeStyle {
    /// `X-MSS-MES: FIN`, the preferred method (Ref#2 ECO.2.2.8).
    #[default]
    Header,
    /// Subject exactly `[FIN]` (the esante.gouv.fr FAQ method).
    Subject,
}

/// Service-side settings of composition.
#[derive(Debug, Clone)]
pub struct ComposeConfig {
    /// The product reference (NIL) given at the software's declaration: `X-MSS-NIL` on every message.
    pub product_reference: String,
    /// Separator of a multi-valued `X-MSS-CODECDA`. Not public (docs/mssante.md M3 open point): `,` as
    /// the one implementation seen.
    pub codecda_separator: String,
    /// How end of exchange is written.
    pub end_of_exchange: EndOfExchangeStyle,
    /// The espace de confiance (docs/mssante.md M8): the sender and every recipient must be inside it.
    /// By default `mssante.fr` and its sub-domains only; the national whitelist once installed.
    pub trust: Trust,
    /// Size limit of a message to a patient. ENS MES says "25 Mo"; the decimal reading (25 000 000)
    /// is the stricter one.
    pub patient_max_bytes: usize,
    /// XDS `sourceId` of submission sets; default: a `2.25` OID derived from the product reference,
    /// stable for one product.
    pub source_id: Option<String>,
}

impl ComposeConfig {
    /// Defaults with the given product reference.
    pub fn new(product_reference: impl Into<String>) -> Self {
        ComposeConfig {
            product_reference: product_reference.into(),
            codecda_separator: ",".into(),
            end_of_exchange: EndOfExchangeStyle::Header,
            trust: Trust::default(),
            patient_max_bytes: 25_000_000,
            source_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decodes_base64_with_line_breaks() {
        let c = Content::Base64("aGVs\r\nbG8=".into());
        assert_eq!(c.bytes("x").ok().as_deref(), Some(&b"hello"[..]));
        let bad = Content::Base64("aGVs*G8=".into());
        let err = bad.bytes("documents[0].cda").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("documents[0].cda.base64: not base64: Invalid symbol 42, offset 4.")
        );
    }

    #[test]
    fn debug_never_shows_contents() {
        let c = Content::Text("<ClinicalDocument>secret</ClinicalDocument>".into());
        assert_eq!(format!("{c:?}"), "Text(<43 bytes>)");
        assert_eq!(
            format!("{:?}", Content::Base64("aGVsbG8=".into())),
            "Base64(<8 characters>)"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = r#"{"sender":{"address":"a@b.fr","type":"ORG","entity":"X","colour":1},
                       "recipients":{"to":["c@d.fr"]}}"#;
        let err = serde_json::from_str::<ComposeRequest>(json)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("unknown field `colour`")),
            "{err:?}"
        );
    }

    #[test]
    fn minimal_request_parses_with_defaults() {
        let json = r#"{"sender":{"address":"a@b.fr","type":"ORG","entity":"X"},
                       "recipients":{"to":["c@d.fr"]}}"#;
        let req: ComposeRequest = serde_json::from_str(json).expect("parses");
        assert_eq!(req.sender.kind, SenderKind::Org);
        assert_eq!(req.receipts, Receipts::default());
        assert!(!req.end_of_exchange);
        assert_eq!(req.body, Body::default());
    }
}
