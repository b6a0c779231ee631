//! The business acks back to the DPI (docs/mssante.md H1, the sending guide's `ZAM_Z01`): when receipts
//! come back for a message the DPI sent, `ZAM^Z02^ZAM_Z01` reports the delivery to each recipient (from
//! the DSN, or a refusal at submission) and `ZAM^Z03^ZAM_Z01` its reading (from the MDN), each only when
//! the DPI's flags asked for it (`ACK_RECEPTION`, `ACK_LECTURE_MSS`). The outbox queues them durably as
//! the receipts are recorded ([`mss_outbox::Exchanges`]); [`pass`] sends what is due and records the
//! DPI's answer: `AA` done, `AE` refused (not sent again), `AR` or no answer sent again later with
//! backoff, with the same MSH-10.

use std::time::Duration;

use mss_outbox::Store;
use mss_outbox::exchanges::{BusinessAck, BusinessAckKind};

use super::receiving::Sending;
use crate::mllp::MllpClient;
use crate::{Charset, Delimiters, Message, Result, Segment};

/// Business acks sent in one pass at most.
const PER_PASS: usize = 500;

/// The ZAM of `ack`: MSH (MSH-5/6 the DPI's application and facility, MSH-21 `2.1^CISIS_CDA_HL7_V2`),
/// EVN (EVN-2 when the receipt was recorded), OBX 1 the status (OBX-4 the DPI message's MSH-10), OBX 2
/// the recipient (`DESTINATAIRE_MSS`) or reader (`LECTEUR_MSS`) as an X.400 address, and on `N` an ERR
/// (207, ERR-5 the SMTP code of table SMTPERRORCODE, or the reader's code).
pub fn zam(ack: &BusinessAck, from: &Sending, now: &str) -> Message {
    let d = Delimiters::default();
    let e = |t: &str| d.escape(t).into_owned();
    let (event, status, status_label, who, who_label, error_system) = match ack.report.kind {
        BusinessAckKind::Delivery => (
            "Z02",
            "ACK_RECEPTION_MSS",
            "Accusé de réception MSSanté",
            "DESTINATAIRE_MSS",
            "Destinataire MSSanté",
            "SMTPERRORCODE",
        ),
        BusinessAckKind::Reading => (
            "Z03",
            "ACK_LECTURE_MSS",
            "Accusé de lecture",
            "LECTEUR_MSS",
            "Lecteur du courriel MSSanté",
            "applicationErrorCondition",
        ),
    };
    let processing = match ack.origin.processing.as_str() {
        "" => "P",
        p => p,
    };
    // in the DPI's own character set
    let charset = Charset::from_msh18(&ack.origin.charset).unwrap_or(Charset::Utf8);
    let mut msh = Message::msh(
        charset,
        &[
            &e(&from.application),
            &e(&from.facility),
            &e(&ack.origin.application),
            &e(&ack.origin.facility),
            now,
            "",
            &format!("ZAM^{event}^ZAM_Z01"),
            &e(&ack.control_id),
            &e(processing),
            "2.6",
        ],
    );
    msh.set(17, "FRA");
    msh.set(21, d.components(&["2.1", "CISIS_CDA_HL7_V2"]));
    let mut segments = vec![
        msh,
        Segment::new("EVN").with(2, timestamp(ack.event_ms)),
        Segment::new("OBX")
            .with(1, "1")
            .with(2, "CWE")
            .with(3, d.components(&[status, status_label, "AckMetierZAM"]))
            .with(4, e(&ack.refers_to))
            .with(
                5,
                d.components(&[
                    if ack.report.ok { "Y" } else { "N" },
                    "",
                    "expandedYes-NoIndicator",
                ]),
            )
            .with(11, "F"),
        Segment::new("OBX")
            .with(1, "2")
            .with(2, "XTN")
            .with(3, d.components(&[who, who_label, "AckMetierZAM"]))
            .with(5, d.components(&["", "", "X.400", &ack.recipient]))
            .with(11, "F"),
    ];
    if let Some((code, label)) = ack.report.error.as_ref().filter(|_| !ack.report.ok) {
        segments.push(
            Segment::new("ERR")
                .with(
                    3,
                    d.components(&["207", "Application error", "messageErrorCondition"]),
                )
                .with(4, "E")
                .with(5, d.components(&[code, label, error_system])),
        );
    }
    Message::new(charset, segments)
}

/// `YYYYMMDDHHMMSS+0000` of a time in ms since the epoch.
fn timestamp(ms: i64) -> String {
    super::listener::timestamp(
        time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

/// When a business ack goes again after `attempts` sends without `AA`: 30 s doubled each time, at most
/// an hour.
pub fn retry_after(attempts: u32) -> Duration {
    Duration::from_secs(30u64.saturating_mul(1 << attempts.min(7)).min(3600))
}

/// Queues the business acks the receipts recorded so far call for, then sends those due (every pending
/// one when `all`: a pass by hand); returns how many the DPI answered. A DPI that cannot be reached ends
/// the pass (the ack goes again later).
pub async fn pass(
    store: &dyn Store,
    dpi: &mut MllpClient,
    from: &Sending,
    all: bool,
) -> Result<usize> {
    store.plan_business_acks().await?;
    let now = store.now_ms();
    let due = store
        .due_business_acks((!all).then_some(now), PER_PASS)
        .await?;
    let mut answered = 0;
    for z in due {
        let m = zam(&z, from, &super::listener::now());
        let retry = store.now_ms() + millis(retry_after(z.attempts));
        match dpi.send(&m).await {
            Ok((_, ack)) => {
                store
                    .business_ack_answered(z.id, &super::answer(&ack), retry)
                    .await?;
                tracing::info!(
                    message = z.message, control_id = %z.control_id,
                    r#type = z.report.kind.message_type(), ack = ack.code.as_str(),
                    "HL7: business ack sent to the DPI"
                );
                answered += 1;
            }
            Err(e) => {
                store
                    .business_ack_unanswered(z.id, &e.to_string(), retry)
                    .await?;
                return Err(e);
            }
        }
    }
    Ok(answered)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use mss_outbox::exchanges::{Report, Requester};

    use super::*;

    fn ack(kind: BusinessAckKind, ok: bool, error: Option<(&str, &str)>) -> BusinessAck {
        BusinessAck {
            id: 4,
            message: 9,
            control_id: "MSSZ4".into(),
            recipient: "dr.b@hopital-b.mssante.fr".into(),
            report: Report {
                kind,
                ok,
                error: error.map(|(c, l)| (c.into(), l.into())),
            },
            refers_to: "015".into(),
            origin: Requester {
                application: "RIS-Y".into(),
                facility: "Org-Y".into(),
                processing: "P".into(),
                charset: "UNICODE UTF-8".into(),
                delivery: true,
                reading: true,
            },
            event_ms: 1_780_000_000_000,
            attempts: 0,
        }
    }

    fn from() -> Sending {
        Sending {
            application: "PFI".into(),
            facility: "CH".into(),
            // the ZAM answers the DPI's own MSH-3/4, not these
            receiving_application: "DPI".into(),
            receiving_facility: "CH".into(),
        }
    }

    #[test]
    fn a_delivery_is_reported_as_the_guide_writes_z02() {
        let m = zam(
            &ack(BusinessAckKind::Delivery, true, None),
            &from(),
            "20260601120000+0000",
        );
        assert_eq!(
            m.to_text(),
            "MSH|^~\\&|PFI|CH|RIS-Y|Org-Y|20260601120000+0000||ZAM^Z02^ZAM_Z01|MSSZ4|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r\
             EVN||20260528202640+0000\r\
             OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|015|Y^^expandedYes-NoIndicator||||||F\r\
             OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM||^^X.400^dr.b@hopital-b.mssante.fr||||||F\r"
        );
    }

    #[test]
    fn a_failed_delivery_carries_the_smtp_code() {
        let m = zam(
            &ack(
                BusinessAckKind::Delivery,
                false,
                Some((
                    "550",
                    "Action non effectuée : boîte aux lettres non disponible",
                )),
            ),
            &from(),
            "20260601120000+0000",
        );
        let text = m.to_text();
        assert!(
            text.contains("|N^^expandedYes-NoIndicator||||||F\r"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "ERR|||207^Application error^messageErrorCondition|E|550^Action non effectuée : boîte aux lettres non disponible^SMTPERRORCODE\r"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_reading_in_error_carries_the_readers_code() {
        let m = zam(
            &ack(
                BusinessAckKind::Reading,
                false,
                Some(("902", "Identifiant patient inconnu")),
            ),
            &from(),
            "20260601120000+0000",
        );
        let segments: Vec<String> = m
            .to_text()
            .split('\r')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        assert!(segments[0].contains("|ZAM^Z03^ZAM_Z01|MSSZ4|"));
        assert_eq!(
            segments[2],
            "OBX|1|CWE|ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM|015|N^^expandedYes-NoIndicator||||||F"
        );
        assert_eq!(
            segments[3],
            "OBX|2|XTN|LECTEUR_MSS^Lecteur du courriel MSSanté^AckMetierZAM||^^X.400^dr.b@hopital-b.mssante.fr||||||F"
        );
        assert_eq!(
            segments[4],
            "ERR|||207^Application error^messageErrorCondition|E|902^Identifiant patient inconnu^applicationErrorCondition"
        );
        // it reads back as itself
        assert_eq!(Message::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn a_dpi_writing_latin_9_is_answered_in_latin_9() {
        let mut z = ack(BusinessAckKind::Delivery, true, None);
        z.origin.charset = "8859/15".into();
        let m = zam(&z, &from(), "20260601120000+0000");
        let bytes = m.to_bytes();
        assert!(bytes.windows(10).any(|w| w == b"|FRA|8859/"), "MSH-18");
        // é is one byte (0xE9) in ISO 8859-15
        assert!(bytes.windows(6).any(|w| w == b"Accus\xe9"));
        assert_eq!(Message::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_after(0), Duration::from_secs(30));
        assert_eq!(retry_after(1), Duration::from_secs(60));
        assert_eq!(retry_after(20), Duration::from_secs(3600));
    }
}
