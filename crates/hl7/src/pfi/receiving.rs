//! MSSanté → DPI (docs/mssante.md H2): each document of each IHE_XDM message received in the `[hl7]
//! sender` mailbox (the inbox) goes to the DPI as one `MDM^T02` (`T10` when the archive replaces it) of
//! the guide *Transmission au LPS de documents CDA provenant d'un courriel MSSanté*. The DPI's `AA` for
//! every document records the message *integrated*; an `AE`/`AR` records it in *error* with the ERR code
//! (`mss_outbox::inbox::ack`, which queues the MDN it asked for). The inbox outcome is the durable state:
//! a message without one is sent again at the next pass, with the same MSH-10 (`MSS<inbox id>D<n>`).

use base64::Engine;
use mss_message::xdm::ReadDocument;
use mss_outbox::Store;
use mss_outbox::inbox::ack::{Ack, Answering, acknowledge};
use mss_outbox::inbox::{InboxQuery, InboxStatus};

use crate::ack::AckCode;
use crate::mllp::MllpClient;
use crate::{Charset, Delimiters, Message, Result, Segment};

/// What the forwarder writes in MSH-3/4 and where it sends.
#[derive(Debug, Clone)]
pub struct Sending {
    /// MSH-3.
    pub application: String,
    /// MSH-4.
    pub facility: String,
}

/// The MDM of document `n` (from 0) of a received message, as the receiving guide writes it.
pub fn mdm(
    read: &mss_message::ReceivedMessage,
    mailbox: &str,
    doc: &ReadDocument,
    replaces: bool,
    control_id: &str,
    from: &Sending,
    now: &str,
) -> Message {
    let d = Delimiters::default();
    let e = |t: &str| d.escape(t).into_owned();
    let event = if replaces { "T10" } else { "T02" };
    let mut msh = Message::msh(
        Charset::Utf8,
        &[
            &e(&from.application),
            &e(&from.facility),
            "",
            "",
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
    let pid = Segment::new("PID").with(3, ids.join(&d.repetition.to_string()));
    let t = &doc.entry.type_code;
    let type_code = d.components(&[&t.code, &t.display, "LN"]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&doc.content);
    let subject = read.subject.clone();
    let body = read.text.as_ref().map(|t| t.0.clone()).unwrap_or_default();
    let prt = |role: &str, address: &str| {
        Segment::new("PRT")
            .with(2, "UC")
            .with(4, d.components(&[role, "", "participation"]))
            .with(15, d.components(&["", "", "X.400", address]))
    };
    let mut segments = vec![
        msh,
        Segment::new("EVN").with(2, now),
        pid,
        Segment::new("PV1").with(1, "1").with(2, "N"),
        Segment::new("ORC").with(1, if replaces { "RO" } else { "NW" }),
        Segment::new("OBR").with(1, "1").with(4, type_code.clone()),
        Segment::new("TXA")
            .with(1, "1")
            .with(2, e(&t.code))
            .with(3, "TEXT")
            .with(4, e(&doc.entry.creation_time))
            .with(12, e(&doc.entry.unique_id))
            .with(17, "AU"),
        Segment::new("OBX")
            .with(1, "1")
            .with(2, "ED")
            .with(3, type_code)
            .with(5, d.raw_components(&["", "text", "XML", "Base64", &b64]))
            .with(11, "F"),
    ];
    if let Some(from) = &read.from {
        segments.push(prt("SB", from));
    }
    segments.push(prt("RCT", mailbox));
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
    Message::new(Charset::Utf8, segments)
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
        let mut docs = Vec::new();
        for x in &read.xdm {
            if let Some(archive) = &x.archive {
                let replaced: Vec<&str> = archive
                    .replacements()
                    .map(|r| r.document.as_str())
                    .collect();
                for doc in archive.documents() {
                    docs.push((doc, replaced.contains(&doc.entry.entry_uuid.as_str())));
                }
            }
        }
        if docs.is_empty() {
            continue;
        }
        let mut outcome = Ack::Integrated;
        for (n, (doc, replaces)) in docs.iter().enumerate() {
            let id = format!("MSS{entry}D{}", n + 1);
            let m = mdm(
                &read,
                mailbox,
                doc,
                *replaces,
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
