//! MSSanté → DPI (docs/mssante.md H2): each document of each IHE_XDM message received in the `[hl7]
//! sender` mailbox (the inbox) goes to the DPI as one `MDM^T02` (`T10` when the archive replaces an
//! earlier document, `T04` when it withdraws one) of the guide *Transmission au LPS de documents CDA provenant d'un courriel MSSanté*. The DPI's `AA` for
//! every document records the message *integrated*; an `AE`/`AR` records it in *error* with the ERR code
//! (`mss_outbox::inbox::ack`, which queues the MDN it asked for). The inbox outcome is the durable state:
//! a message without one is sent again at the next pass, with the same MSH-10 (`MSS<inbox id>D<n>`).

use base64::Engine;
use mss_message::xdm::ReadDocument;
use mss_outbox::Store;
use mss_outbox::inbox::ack::{Ack, Answering, acknowledge};
use mss_outbox::inbox::{InboxQuery, InboxStatus};

use super::sending::Action;
use crate::ack::AckCode;
use crate::mllp::MllpClient;
use crate::{Charset, Delimiters, Message, Result, Segment};

/// What the forwarder writes in MSH-3/4 (the PFI) and MSH-5/6 (the DPI).
#[derive(Debug, Clone)]
pub struct Sending {
    /// MSH-3.
    pub application: String,
    /// MSH-4.
    pub facility: String,
    /// MSH-5: the DPI's application.
    pub receiving_application: String,
    /// MSH-6: the DPI's facility.
    pub receiving_facility: String,
}

/// The LOINC OID: OBR-4.3 / OBX-3.3 `LN`; any other type system is the national `TRE_A05`.
const LOINC: &str = "2.16.840.1.113883.6.1";

/// The receiving guide's restriction OBX (OBX-3 code and label) and the TRE_A07 confidentialityCode
/// (scheme `1.2.250.1.213.1.1.4.13`) that sets each to `Y`.
const RESTRICTIONS: [(&str, &str, &str); 3] = [
    (
        "MASQUE_PS",
        "Masqué aux professionnels de Santé",
        "MASQUE_PS",
    ),
    (
        "INVISIBLE_PATIENT",
        "Document Non Visible par le patient",
        "INVISIBLE_PATIENT",
    ),
    (
        "INVISIBLE_REP_LEGAUX",
        "Non visible par les représentants Légaux du patient",
        "INVISIBLE_REPRESENTANTS_LEGAUX",
    ),
];

/// TXA-12/13 of a document id as the receiving guide writes it: `extension^^root^ISO`, or the OID.
fn document_number(d: &Delimiters, id: &mss_message::cda::InstanceId) -> String {
    match &id.extension {
        Some(x) => d.components(&[x, "", &id.root, "ISO"]),
        None => d.escape(&id.root).into_owned(),
    }
}

/// The same from an XDS uniqueId (`root^extension`, or an OID), when the CDA says nothing.
fn document_number_of_unique_id(d: &Delimiters, unique_id: &str) -> String {
    let (root, extension) = match unique_id.split_once('^') {
        Some((r, x)) => (r, Some(x.to_owned())),
        None => (unique_id, None),
    };
    document_number(
        d,
        &mss_message::cda::InstanceId {
            root: root.to_owned(),
            extension,
        },
    )
}

/// A `sourcePatientInfo` field (`PID-5|…`) of the entry, re-escaped for this message: the values are
/// HL7 v2 encoded by the sender, whom nothing obliges to stay within one field.
fn source_patient_field(
    d: &Delimiters,
    entry: &mss_message::metadata::DocumentEntry,
    field: &str,
) -> String {
    let prefix = format!("{field}|");
    entry
        .source_patient_info
        .iter()
        .find_map(|v| v.strip_prefix(&prefix))
        .map(|v| {
            let parts: Vec<String> = v
                .split('^')
                .map(|c| {
                    d.escape(&mss_message::metadata::hl7_unescape(c))
                        .into_owned()
                })
                .collect();
            d.raw_components(&parts.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .unwrap_or_default()
}

/// The MDM of one document of a received message, as the receiving guide writes it: `T02` (ORC-1 `NW`,
/// OBX-11 `F`), `T10` replacing the CDA's parent document (`RO`, `C`, TXA-13), `T04` when the sender
/// withdraws it (`CA`, `D`).
pub fn mdm(
    read: &mss_message::ReceivedMessage,
    mailbox: &str,
    doc: &ReadDocument,
    action: Action,
    control_id: &str,
    from: &Sending,
    now: &str,
) -> Message {
    let d = Delimiters::default();
    let e = |t: &str| d.escape(t).into_owned();
    let (event, order, status) = match action {
        Action::New => ("T02", "NW", "F"),
        Action::Replace => ("T10", "RO", "C"),
        Action::Delete => ("T04", "CA", "D"),
    };
    let mut msh = Message::msh(
        Charset::Utf8,
        &[
            &e(&from.application),
            &e(&from.facility),
            &e(&from.receiving_application),
            &e(&from.receiving_facility),
            now,
            "",
            &format!("MDM^{event}^MDM_T02"),
            &e(control_id),
            "P",
            "2.6",
        ],
    );
    msh.set(17, "FRA");
    msh.set(21, d.components(&["1.1", "CISIS_CDA_HL7_LPS"]));
    let cda = doc.cda.as_ref();
    // PID-3: the CDA's patient ids (extension^^^&root&ISO), the INS typed INS
    let ids: Vec<String> = cda
        .map(|h| {
            h.patient_ids
                .iter()
                .map(|id| {
                    let kind = if mss_message::InsAuthority::from_oid(&id.root).is_some() {
                        "INS"
                    } else {
                        "PI"
                    };
                    d.raw_components(&[
                        &e(id.extension.as_deref().unwrap_or("")),
                        "",
                        "",
                        &d.subcomponents(&["", &id.root, "ISO"]),
                        kind,
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    // PID-5, 7, 8: the sender's sourcePatientInfo
    let pid = Segment::new("PID")
        .with(3, ids.join(&d.repetition.to_string()))
        .with(5, source_patient_field(&d, &doc.entry, "PID-5"))
        .with(7, source_patient_field(&d, &doc.entry, "PID-7"))
        .with(8, source_patient_field(&d, &doc.entry, "PID-8"));
    let t = &doc.entry.type_code;
    let system = if t.scheme == LOINC { "LN" } else { "TRE_A05" };
    let type_code = d.components(&[&t.code, &t.display, system]);
    let number = cda
        .and_then(|h| h.id.as_ref())
        .map(|id| document_number(&d, id))
        .unwrap_or_else(|| document_number_of_unique_id(&d, &doc.entry.unique_id));
    let parent = match action {
        Action::Replace => cda
            .and_then(|h| h.replaces.as_ref())
            .map(|id| document_number(&d, id))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&doc.content);
    let subject = read.subject.clone();
    let body = read.text.as_ref().map(|t| t.0.clone()).unwrap_or_default();
    let prt = |role: &str, label: &str, address: &str| {
        Segment::new("PRT")
            .with(2, "UC")
            .with(4, d.components(&[role, label, "participation"]))
            .with(15, d.components(&["", "", "X.400", address]))
    };
    let mut segments = vec![
        msh,
        Segment::new("EVN").with(2, now),
        pid,
        Segment::new("PV1").with(1, "1").with(2, "N"),
        Segment::new("ORC").with(1, order),
        Segment::new("OBR").with(1, "1").with(4, type_code.clone()),
        Segment::new("TXA")
            .with(1, "1")
            .with(2, e(&t.code))
            .with(3, "TEXT")
            .with(4, e(&doc.entry.creation_time))
            .with(12, number)
            .with(13, parent)
            .with(17, "AU"),
        Segment::new("OBX")
            .with(1, "1")
            .with(2, "ED")
            .with(3, type_code)
            .with(5, d.raw_components(&["", "text", "XML", "Base64", &b64]))
            .with(11, status),
    ];
    if let Some(from) = &read.from {
        segments.push(prt("SB", "Send by", from));
    }
    segments.push(prt("RCT", "Result Copies To", mailbox));
    for reply in &read.reply_to {
        segments.push(prt("REPLY", "Reply To", reply));
    }
    let message_id = read.message_id.clone().unwrap_or_default();
    segments.push(
        Segment::new("OBX")
            .with(1, "2")
            .with(2, "ED")
            .with(3, d.components(&[&message_id, &subject]))
            .with(
                5,
                d.raw_components(&[
                    "",
                    "text",
                    "",
                    "Base64",
                    &base64::engine::general_purpose::STANDARD.encode(body.as_bytes()),
                ]),
            )
            .with(11, "F"),
    );
    // the restriction metadata the guide requires, in its order, from the entry's confidentialityCode;
    // whether the sender changed them (MODIF_CONF_CODE) no XDM field says: N
    let mut restrictions: Vec<(&str, &str, bool)> = RESTRICTIONS
        .iter()
        .map(|(obx, label, code)| {
            let on = doc.entry.confidentiality.iter().any(|c| {
                c.code.trim() == *code
                    && c.scheme.trim() == mss_message::metadata::VISIBILITY_SCHEME
            });
            (*obx, *label, on)
        })
        .collect();
    restrictions.push((
        "MODIF_CONF_CODE",
        "Modification Confidentiality Code",
        false,
    ));
    for (n, (code, label, on)) in restrictions.into_iter().enumerate() {
        segments.push(
            Segment::new("OBX")
                .with(1, (n + 3).to_string())
                .with(2, "CWE")
                .with(3, d.components(&[code, label, "MetaDMPMSS"]))
                .with(
                    5,
                    d.components(&[if on { "Y" } else { "N" }, "", "expandedYes-NoIndicator"]),
                )
                .with(11, "F"),
        );
    }
    Message::new(Charset::Utf8, segments)
}

/// The documents of a received message's IHE_XDM archives, each with what its sender asks: a withdrawal
/// (status Deleted), a replacement (the source of an `RPLC` association), else a new document.
pub fn documents(read: &mss_message::ReceivedMessage) -> Vec<(&ReadDocument, Action)> {
    let mut docs = Vec::new();
    for archive in read.xdm.iter().filter_map(|x| x.archive.as_ref()) {
        let replacing: Vec<&str> = archive
            .replacements()
            .map(|r| r.document.as_str())
            .collect();
        for doc in archive.documents() {
            let action = if doc.entry.is_deleted() {
                Action::Delete
            } else if replacing.contains(&doc.entry.entry_uuid.as_str()) {
                Action::Replace
            } else {
                Action::New
            };
            docs.push((doc, action));
        }
    }
    docs
}

/// One pass over the mailbox's inbox: every message without an outcome that carries IHE_XDM documents
/// goes to the DPI; returns how many got an outcome. A DPI that cannot be reached ends the pass (the
/// message is sent again at the next one); a message without documents is left to other consumers.
pub async fn pass(
    store: &dyn Store,
    mailbox: &str,
    dpi: &mut MllpClient,
    from: &Sending,
    answering: &Answering,
) -> Result<usize> {
    // every message without an outcome, page by page: those without documents stay for other consumers
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .inbox_list(&InboxQuery {
                status: Some(InboxStatus::New),
                mailbox: Some(mailbox.to_owned()),
                after,
                limit: 200,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let full = page.len() == 200;
        entries.extend(page.into_iter().map(|e| e.id));
        if !full {
            break;
        }
    }
    let mut done = 0;
    for entry in entries {
        let Some(raw) = store.inbox_raw(entry).await? else {
            continue;
        };
        let Ok(read) = mss_message::read_message(&raw) else {
            continue;
        };
        let docs = documents(&read);
        if docs.is_empty() {
            continue;
        }
        let mut outcome = Ack::Integrated;
        for (n, (doc, action)) in docs.iter().enumerate() {
            let id = format!("MSS{entry}D{}", n + 1);
            let m = mdm(
                &read,
                mailbox,
                doc,
                *action,
                &id,
                from,
                &super::listener::now(),
            );
            let (_, ack) = dpi.send(&m).await?;
            log_sent(store, entry, &m, &ack).await?;
            tracing::info!(inbox = entry, control_id = %id, ack = ack.code.as_str(), "HL7: document sent to the DPI");
            if ack.code != AckCode::AA {
                let (code, label) = ack
                    .error_code()
                    .unwrap_or_else(|| ("207".into(), "Application error".into()));
                let code: u16 = code.parse().unwrap_or(207);
                outcome = Ack::error(code, &label)
                    .or_else(|_| Ack::error(207, "Application error"))
                    .map_err(crate::Error::from)?;
                break;
            }
        }
        acknowledge(store, entry, &outcome, answering).await?;
        done += 1;
    }
    Ok(done)
}

/// The exchange log of an MDM sent for inbox message `entry` and the DPI's answer.
async fn log_sent(store: &dyn Store, entry: i64, m: &Message, ack: &crate::ack::Ack) -> Result<()> {
    use mss_outbox::exchanges::{Direction, Link, NewExchange};
    let (kind, event, _) = m.message_type();
    let exchange = NewExchange {
        link: Link::Inbox(entry),
        direction: Direction::Sent,
        kind: format!("{kind}^{event}"),
        control_id: m.control_id().into_owned(),
        answer: super::answer(ack),
        origin: None,
    };
    Ok(store.log_exchanges(&[exchange]).await?)
}
