//! DPI → MSSanté (docs/mssante.md H1): what an `MDM^T02/T10/T04` (HL7 2.6) or `ORU^R01` (2.5) of the
//! guide *Transmission de documents CDA en HL7v2* asks, as compose requests, or the fault that refuses
//! it (with the ERR location and the 0357 code).

use base64::Engine;
use mss_message::{
    Body, ComposeRequest, Content, Document, PatientRequest, Receipts, Recipients, Sender,
    SenderKind, Sex,
};

use crate::ack::{AckCode, Fault};
use crate::{Message, Segment};

/// The OBX flags of the guide (table MetaDMPMSS).
pub const FLAGS: [&str; 10] = [
    "MASQUE_PS",
    "INVISIBLE_PATIENT",
    "INVISIBLE_REP_LEGAUX",
    "CONNEXION_SECRETE",
    "MODIF_CONF_CODE",
    "DESTDMP",
    "DESTMSSANTEPS",
    "DESTMSSANTEPAT",
    "ACK_RECEPTION",
    "ACK_LECTURE_MSS",
];

/// The restriction flags and the TRE_A07 code (XDS confidentialityCode) each stands for.
pub const RESTRICTIONS: [(&str, &str, &str); 3] = [
    (
        "MASQUE_PS",
        "MASQUE_PS",
        "Masqué aux professionnels de santé",
    ),
    (
        "INVISIBLE_PATIENT",
        "INVISIBLE_PATIENT",
        "Non visible par le patient",
    ),
    (
        "INVISIBLE_REP_LEGAUX",
        "INVISIBLE_REPRESENTANTS_LEGAUX",
        "Non visible par les représentants légaux du patient",
    ),
];

/// Why a message is refused: the acknowledgement code and the fault it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `AE` (the message is wrong) or `AR` (not handled here).
    pub code: AckCode,
    /// What and where.
    pub fault: Fault,
}

fn ae(code: u16, location: impl Into<String>, text: impl Into<String>) -> Refusal {
    Refusal {
        code: AckCode::AE,
        fault: Fault::new(code, location, text),
    }
}

fn ar(code: u16, location: impl Into<String>, text: impl Into<String>) -> Refusal {
    Refusal {
        code: AckCode::AR,
        fault: Fault::new(code, location, text),
    }
}

/// Who a composed message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Professionals, organisations, applicative mailboxes (DESTMSSANTEPS).
    Professionals,
    /// The patient's Mon espace santé mailbox (DESTMSSANTEPAT).
    Patient,
}

impl Audience {
    /// Suffix of the idempotency key and label.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Professionals => "ps",
            Audience::Patient => "patient",
        }
    }
}

/// One message to compose.
#[derive(Debug, Clone)]
pub struct Part {
    /// Who it goes to.
    pub audience: Audience,
    /// The request.
    pub request: ComposeRequest,
    /// For each `recipients.to[i]`, the PRT it came from (`PRT^n^15`), to name it in a refusal.
    pub to_locations: Vec<String>,
}

/// What a DPI message asks.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `MDM^T02`, `MDM^T10`, `MDM^T04`, `ORU^R01`.
    pub kind: String,
    /// One message per audience: professionals and the patient get their own body (CORPSMAIL_PS,
    /// CORPSMAIL_PATIENT) and the patient's own rules (Mon espace santé).
    pub parts: Vec<Part>,
}

/// What the mapping needs besides the message.
#[derive(Debug, Clone)]
pub struct Context {
    /// The sending mailbox (the `[hl7] sender`).
    pub sender_address: String,
    /// Its `From:` label; none: the sender's PRT-8, else MSH-4.
    pub entity: Option<String>,
    /// classCode of every document.
    pub class_code: mss_message::ClassifiedCode,
}

/// The location `SEG^n^field` of segment number `index` (from 0) of `m`: `n` counts segments of that
/// name (1 for the first OBX).
fn at(m: &Message, index: usize, field: usize) -> String {
    let name = m.segments()[index].name();
    let n = m.segments()[..=index]
        .iter()
        .filter(|s| s.name() == name)
        .count();
    format!("{name}^{n}^{field}")
}

/// Reads a DPI message.
pub fn read(m: &Message, ctx: &Context) -> Result<Outgoing, Refusal> {
    let (code, event, _) = m.message_type();
    let version = m.version();
    let kind = format!("{code}^{event}");
    // the event says what to do with the document (MDM); an ORU says it in the document's OBX-11
    let action = match (&*code, &*event) {
        ("MDM", "T02") => Some(Action::New),
        ("MDM", "T10") => Some(Action::Replace),
        ("MDM", "T04") => Some(Action::Delete),
        ("ORU", "R01") => None,
        ("MDM", _) => {
            return Err(ar(
                201,
                "MSH^1^9",
                format!("event {event:?}: T02, T10 or T04"),
            ));
        }
        _ => {
            return Err(ar(
                200,
                "MSH^1^9",
                format!("message type {kind:?}: MDM^T02/T10/T04 or ORU^R01"),
            ));
        }
    };
    let wanted = if code == "ORU" { "2.5" } else { "2.6" };
    if version != wanted {
        return Err(ae(
            203,
            "MSH^1^12",
            format!("{kind} is HL7 {wanted} in this guide, not {version:?}"),
        ));
    }
    match &*m.get("MSH", 11).component(1).text() {
        "P" | "T" | "D" => {}
        other => {
            return Err(ar(
                202,
                "MSH^1^11",
                format!("processing id {other:?}: P, T or D"),
            ));
        }
    }
    let patient = patient(m)?;
    let segments = m.segments();

    // documents: the ED OBX that are not bodies; flags; bodies; PRT; the FIN note after DESTMSSANTEPAT
    let mut documents = Vec::new();
    let mut flags: Vec<(&'static str, bool, usize)> = Vec::new();
    let mut body_ps = None;
    let mut body_patient = None;
    let mut end_of_exchange = false;
    let mut last_obx = String::new();
    let mut to = Vec::new();
    let mut reply_to = None;
    let mut sender_org = None;
    for (i, s) in segments.iter().enumerate() {
        match s.name() {
            "OBX" => {
                let id = s.field(3).component(1).text().trim().to_owned();
                if let Some(flag) = FLAGS.iter().find(|f| **f == id) {
                    let v = s.field(5).component(1).text();
                    let yes = match v.trim() {
                        "Y" => true,
                        "N" => false,
                        other => {
                            return Err(ae(
                                103,
                                at(m, i, 5),
                                format!("{id}: {other:?} is not Y or N (expandedYes-NoIndicator)"),
                            ));
                        }
                    };
                    if flags.iter().any(|(f, _, _)| f == flag) {
                        return Err(ae(198, at(m, i, 3), format!("{id} given twice")));
                    }
                    flags.push((flag, yes, i));
                } else if id == "CORPSMAIL_PS" || id == "CORPSMAIL_PATIENT" {
                    let text = body_text(m, s, i)?;
                    if id == "CORPSMAIL_PS" {
                        body_ps = Some(text);
                    } else {
                        body_patient = Some(text);
                    }
                } else if s.field(2).text() == "ED" {
                    let status = s.field(11).text().trim().to_owned();
                    documents.push((i, ed_base64(m, s, i)?, status));
                }
                last_obx = id;
            }
            "PRT" => {
                let role = s.field(4).component(1).text();
                let address = s
                    .field(15)
                    .repetitions()
                    .map(|r| r.component(4).text().trim().to_owned())
                    .find(|a| !a.is_empty());
                match &*role {
                    "RCT" => match address {
                        Some(a) => to.push((a, at(m, i, 15))),
                        None => {
                            return Err(ae(
                                101,
                                at(m, i, 15),
                                "a recipient (RCT) needs its MSSanté address in PRT-15.4",
                            ));
                        }
                    },
                    "REPLY" => reply_to = address.map(|a| (a, at(m, i, 15))),
                    "SB" => {
                        let org = s.field(8).component(1).text().trim().to_owned();
                        sender_org = (!org.is_empty()).then_some(org);
                    }
                    _ => {}
                }
            }
            "NTE"
                if last_obx == "DESTMSSANTEPAT"
                    && s.field(4).component(1).text().trim() == "FIN" =>
            {
                end_of_exchange = true;
            }
            _ => {}
        }
    }
    let max_docs = if code == "ORU" { 2 } else { 1 };
    match documents.len() {
        0 => {
            return Err(ae(
                101,
                "OBX^1^5",
                "no document: the first OBX carries the CDA (ED, Base64)",
            ));
        }
        n if n > max_docs => {
            return Err(ae(
                198,
                at(m, documents[max_docs].0, 5),
                format!("{kind} carries at most {max_docs} document(s), not {n}"),
            ));
        }
        _ => {}
    }
    let action = document_action(m, &kind, action, &documents)?;
    let replaces = match action {
        Action::Replace => replaced_document(m, &documents)?,
        _ => None,
    };
    let flag = |name: &str| {
        flags
            .iter()
            .find(|(f, _, _)| *f == name)
            .map(|f| (f.1, f.2))
    };
    let yes = |name: &str| flag(name).is_some_and(|f| f.0);
    check_matrix(m, &flag)?;
    let to_ps = yes("DESTMSSANTEPS");
    let to_patient = yes("DESTMSSANTEPAT");

    let (patient_to, ps_to): (Vec<_>, Vec<_>) = to
        .into_iter()
        .partition(|(a, _)| mss_message::patient::is_patient_address(a));
    if !to_patient && let Some((a, loc)) = patient_to.first() {
        return Err(ae(
            207,
            loc.clone(),
            format!("{a} is a patient's mailbox but DESTMSSANTEPAT is N"),
        ));
    }
    if to_ps && ps_to.is_empty() {
        return Err(ae(
            101,
            "PRT^1^15",
            "DESTMSSANTEPS is Y but no recipient (PRT with RCT and an address) is given",
        ));
    }
    if !to_ps && let Some((a, loc)) = ps_to.first() {
        return Err(ae(
            207,
            loc.clone(),
            format!("{a} is a recipient but DESTMSSANTEPS is N"),
        ));
    }
    let patient_to = if to_patient && patient_to.is_empty() {
        // the guide lets the PFI write to the patient's own address, made from the qualified INS
        if !patient.qualified {
            return Err(ae(
                207,
                "PID^1^32",
                "DESTMSSANTEPAT is Y: writing to the patient needs a qualified INS (PID-32 VALI)",
            ));
        }
        vec![(
            format!("{}@{}", patient.ins, mss_message::PATIENT_DOMAIN),
            "PID^1^3".to_owned(),
        )]
    } else {
        patient_to
    };

    let entity = ctx
        .entity
        .clone()
        .or(sender_org)
        .unwrap_or_else(|| m.get("MSH", 4).component(1).text().into_owned());
    let receipts = Receipts {
        dsn: yes("ACK_RECEPTION"),
        mdn: yes("ACK_LECTURE_MSS"),
    };
    // the restriction flags, as the XDS confidentialityCode of TRE_A07 (read back by the receiving PFI)
    let restrictions: Vec<mss_message::ClassifiedCode> = RESTRICTIONS
        .iter()
        .filter(|(flag, _, _)| yes(flag))
        .map(|(_, code, label)| mss_message::ClassifiedCode {
            code: (*code).to_owned(),
            coding_scheme: mss_message::metadata::VISIBILITY_SCHEME.to_owned(),
            display_name: (*label).to_owned(),
        })
        .collect();
    let docs: Vec<Document> = documents
        .into_iter()
        .map(|(_, b64, _)| Document {
            cda: Content::Base64(b64),
            class_code: ctx.class_code.clone(),
            format_code: None,
            healthcare_facility_type_code: None,
            practice_setting_code: None,
            rendering: None,
            replaces: replaces.clone(),
            withdraw: action == Action::Delete,
            confidentiality_codes: restrictions.clone(),
        })
        .collect();
    // the guide: the recipients are told in the body that the document is to be deleted
    let body_of = |body: Option<String>| match (action, body) {
        (Action::Delete, None) => Some(WITHDRAWAL_BODY.to_owned()),
        (Action::Delete, Some(b)) if b.trim().is_empty() => Some(WITHDRAWAL_BODY.to_owned()),
        (_, b) => b,
    };
    let (body_ps, body_patient) = (body_of(body_ps), body_of(body_patient));
    let part = |audience, to: Vec<(String, String)>, body: Option<String>, fin: bool| {
        let (addresses, locations) = to.into_iter().unzip();
        Part {
            audience,
            to_locations: locations,
            request: ComposeRequest {
                sender: Sender {
                    address: ctx.sender_address.clone(),
                    kind: SenderKind::App,
                    title: None,
                    first_name: None,
                    last_name: None,
                    entity: Some(entity.clone()),
                },
                recipients: Recipients {
                    to: addresses,
                    cc: Vec::new(),
                    bcc: Vec::new(),
                },
                reply_to: reply_to.as_ref().map(|(a, _)| a.clone()),
                subject: None,
                body: Body {
                    text: body.unwrap_or_default(),
                    html: None,
                },
                documents: docs.clone(),
                attachments: Vec::new(),
                patient: Some(patient.clone()),
                receipts,
                end_of_exchange: fin,
                in_reply_to: None,
                references: Vec::new(),
            },
        }
    };
    let mut parts = Vec::new();
    if to_ps {
        parts.push(part(Audience::Professionals, ps_to, body_ps, false));
    }
    if to_patient {
        parts.push(part(
            Audience::Patient,
            patient_to,
            body_patient,
            end_of_exchange,
        ));
    }
    Ok(Outgoing { kind, parts })
}

/// What the DPI asks for the document (`TransmissionDocuments` of the guide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `MDM^T02`, OBX-11 `F`: send it.
    New,
    /// `MDM^T10`, OBX-11 `C`: send it as the replacement of an earlier one (`RPLC`).
    Replace,
    /// `MDM^T04`, OBX-11 `D`: ask the recipients to delete it (sent earlier).
    Delete,
}

impl Action {
    fn describe(self) -> &'static str {
        match self {
            Action::New => "a new document",
            Action::Replace => "a replacement",
            Action::Delete => "a deletion",
        }
    }

    fn obx11(self) -> &'static str {
        match self {
            Action::New => "F",
            Action::Replace => "C",
            Action::Delete => "D",
        }
    }
}

/// The body of a withdrawal when the DPI gives none: the sending guide wants the recipients told in
/// the mail that the document is to be deleted.
pub const WITHDRAWAL_BODY: &str = "Le document joint, envoyé précédemment par MSSanté, est retiré \
par son auteur : merci de le supprimer de vos dossiers.";

/// The action of the message: the MDM event, checked against each document's OBX-11 (F, C, D); an
/// ORU's from OBX-11, the same for every document (empty: a new document).
fn document_action(
    m: &Message,
    kind: &str,
    by_event: Option<Action>,
    documents: &[(usize, String, String)],
) -> Result<Action, Refusal> {
    let mut action = by_event;
    for (i, _, status) in documents {
        let this = match status.as_str() {
            "F" => Action::New,
            "C" => Action::Replace,
            "D" => Action::Delete,
            "" => continue,
            other => {
                return Err(ae(
                    103,
                    at(m, *i, 11),
                    format!("OBX-11 {other:?}: F (new document), C (replacement) or D (deletion)"),
                ));
            }
        };
        match action {
            Some(a) if a != this => {
                return Err(ae(
                    207,
                    at(m, *i, 11),
                    format!(
                        "OBX-11 is {:?} but {kind} asks {}: the document's OBX-11 must be {}",
                        this.obx11(),
                        a.describe(),
                        a.obx11()
                    ),
                ));
            }
            _ => action = Some(this),
        }
    }
    Ok(action.unwrap_or(Action::New))
}

/// The uniqueId of the document a replacement replaces: TXA-13 (the parent document: `extension^^root^ISO`,
/// or an OID), else each CDA's `relatedDocument[@typeCode='RPLC']` (then `None`: the composer reads it).
fn replaced_document(
    m: &Message,
    documents: &[(usize, String, String)],
) -> Result<Option<String>, Refusal> {
    let parent = m.get("TXA", 13);
    let (id, root) = (
        parent.component(1).text().trim().to_owned(),
        parent.component(3).text().trim().to_owned(),
    );
    if !id.is_empty() {
        return Ok(Some(if root.is_empty() {
            id
        } else {
            format!("{root}^{id}")
        }));
    }
    for (i, b64, _) in documents {
        let header = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .ok()
            .and_then(|cda| mss_message::cda::parse_header(&cda).ok());
        if header.is_none_or(|h| h.replaces.is_none()) {
            let location = if m.segment("TXA").is_some() {
                "TXA^1^13".to_owned()
            } else {
                at(m, *i, 5)
            };
            return Err(ae(
                101,
                location,
                "a replacement names the document it replaces: TXA-13 (parent document) or the \
                 CDA's relatedDocument typeCode RPLC",
            ));
        }
    }
    Ok(None)
}

/// The guide's matrix (*Règles de gestion MSSanté*): the only flag combinations allowed; any other is
/// refused, naming the first flag out of place.
fn check_matrix(m: &Message, flag: &dyn Fn(&str) -> Option<(bool, usize)>) -> Result<(), Refusal> {
    let value = |f: &str| flag(f).is_some_and(|v| v.0);
    let (ps, pat) = (value("DESTMSSANTEPS"), value("DESTMSSANTEPAT"));
    // (flag, required value); flags not named are free
    let (row, rule): (&[(&str, bool)], &str) = match (ps, pat) {
        (true, true) => (
            &[
                ("MASQUE_PS", false),
                ("INVISIBLE_PATIENT", false),
                ("INVISIBLE_REP_LEGAUX", false),
            ],
            "to professionals and the patient",
        ),
        (true, false) => (
            &[
                ("MASQUE_PS", false),
                ("INVISIBLE_PATIENT", true),
                ("INVISIBLE_REP_LEGAUX", false),
            ],
            "to professionals only",
        ),
        (false, true) => (
            &[
                ("INVISIBLE_PATIENT", false),
                ("CONNEXION_SECRETE", false),
                ("DESTDMP", false),
            ],
            "to the patient only",
        ),
        (false, false) => {
            return Err(ae(
                207,
                flag("DESTMSSANTEPS").map_or("OBX^1^3".to_owned(), |(_, i)| at(m, i, 5)),
                "DESTMSSANTEPS and DESTMSSANTEPAT are both N (or absent): nothing to send by \
                 MSSanté (DMP publication is not done here)",
            ));
        }
    };
    for (name, required) in row {
        if value(name) != *required {
            let location = flag(name).map_or("OBX^1^3".to_owned(), |(_, i)| at(m, i, 5));
            let yn = |b: bool| if b { "Y" } else { "N" };
            let wanted: Vec<String> = row
                .iter()
                .map(|(n, r)| format!("{n} = {}", yn(*r)))
                .collect();
            return Err(ae(
                207,
                location,
                format!(
                    "{name} = {} is not allowed when sending {rule}: the guide's matrix wants {}",
                    yn(!required),
                    wanted.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// OBX-5 of an ED document: base64, checked, returned as written (the CDA is decoded only by the
/// composer, byte for byte).
fn ed_base64(m: &Message, s: &Segment, i: usize) -> Result<String, Refusal> {
    let v = s.field(5);
    let encoding = v.component(4).text();
    if !encoding.eq_ignore_ascii_case("Base64") {
        return Err(ae(
            102,
            at(m, i, 5),
            format!("ED encoding {encoding:?}: Base64 (OBX-5.4)"),
        ));
    }
    let mut data = v.component(5).text().into_owned();
    // a byte scan: the document is tens of kilobytes, base64 is ASCII
    if data.bytes().any(|b| b.is_ascii_whitespace()) {
        data.retain(|c| !c.is_ascii_whitespace());
    }
    if data.is_empty() {
        return Err(ae(101, at(m, i, 5), "the document (OBX-5.5) is empty"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| ae(102, at(m, i, 5), format!("OBX-5.5 is not base64: {e}")))?;
    Ok(data)
}

/// A body OBX: ED base64 of UTF-8 text, or plain text (TX, ST, FT).
fn body_text(m: &Message, s: &Segment, i: usize) -> Result<String, Refusal> {
    if s.field(2).text() == "ED" {
        let b64 = ed_base64(m, s, i)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| ae(102, at(m, i, 5), format!("not base64: {e}")))?;
        String::from_utf8(bytes).map_err(|_| ae(102, at(m, i, 5), "the body is not UTF-8 text"))
    } else {
        Ok(s.field(5).text().into_owned())
    }
}

/// The patient of PID: the INS (PID-3 with an INS-NIR authority), qualified when PID-32 is `VALI`, the
/// birth name and first given name (PID-5 of type L, else the first), birth date, sex.
fn patient(m: &Message) -> Result<PatientRequest, Refusal> {
    let Some(pid) = m.segment("PID") else {
        return Err(ae(100, "PID", "no PID segment"));
    };
    let ins = pid.field(3).repetitions().find_map(|r| {
        let oid = r.component(4).sub(2).text();
        mss_message::InsAuthority::from_oid(oid.trim())
            .map(|a| (r.component(1).text().trim().to_owned(), a))
    });
    let Some((ins, ins_authority)) = ins else {
        return Err(ae(
            101,
            "PID^1^3",
            "no INS: a PID-3 identifier of authority 1.2.250.1.213.1.4.8 (or .10 test, .11 demo)",
        ));
    };
    let names: Vec<_> = pid.field(5).repetitions().collect();
    let name = names
        .iter()
        .find(|n| n.component(7).text() == "L")
        .or(names.first())
        .copied();
    let (birth_name, first_given_name) = name.map_or((String::new(), String::new()), |n| {
        (
            n.component(1).text().trim().to_owned(),
            n.component(2).text().trim().to_owned(),
        )
    });
    if birth_name.is_empty() {
        return Err(ae(101, "PID^1^5", "no patient name (PID-5.1)"));
    }
    let birth_date: String = pid.field(7).component(1).text().chars().take(8).collect();
    let sex = match &*pid.field(8).text() {
        "M" => Sex::M,
        "F" => Sex::F,
        _ => Sex::U,
    };
    Ok(PatientRequest {
        ins,
        ins_authority,
        qualified: pid.field(32).text() == "VALI",
        birth_name,
        first_given_name,
        birth_date,
        sex,
    })
}
