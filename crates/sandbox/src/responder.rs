//! The auto-responder (docs/mssante.md K4): two mailboxes of the sandbox that answer every message they
//! receive, to its sender, with an IHE_XDM message holding a test patient's document, composed by mss's own
//! composition (`mss_message::compose`): a *volet de synthèse médicale* (VSM) or a biology report (CR-BIO).
//! The answer asks for a read receipt (MDN), so that a vendor tests its reception, its integration and its
//! MDN.
//!
//! It reads the two maildirs (Dovecot delivers them) and hands answers to Postfix's `sendmail`, so they take
//! the same path as any message. Reports (DSN, MDN), automatic messages and messages without a sender are
//! not answered: two responders never loop.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mail_parser::MimeHeaders;
use mss_message::{ComposeConfig, ComposeRequest, ComposedMessage};
use serde_json::json;

use crate::{Error, Layout, Result, TEST_INS};

/// Which document a responder answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Volet de synthèse médicale (code SYNTH, formatCode `urn:asip:ci-sis:vsm:2012`).
    Vsm,
    /// Compte rendu d'examens de biologie (LOINC 11502-2, formatCode `urn:ihe:lab:xd-lab:2008`).
    CrBio,
}

const VSM_CDA: &str = include_str!("../data/vsm.xml");
const CRBIO_CDA: &str = include_str!("../data/cr-bio.xml");
/// The product reference the responder writes in `X-MSS-NIL`.
pub const RESPONDER_NIL: &str = "MSS-SANDBOX-REPONDEUR";

/// The answer of responder `kind` to a message from `to` whose Message-ID was `in_reply_to`.
pub fn compose_answer(
    kind: Answer,
    to: &str,
    in_reply_to: Option<&str>,
) -> Result<ComposedMessage> {
    let responders = crate::responders();
    let (from, entity, cda, class, format, text) = match kind {
        Answer::Vsm => (
            responders.vsm,
            "Répondeur VSM du bac à sable MSSanté",
            VSM_CDA,
            json!({"code": "11", "coding_scheme": "1.2.250.1.213.1.1.4.1", "display_name": "Synthèse"}),
            json!({"code": "urn:asip:ci-sis:vsm:2012", "coding_scheme": "1.2.250.1.213.1.1.4.2.282", "display_name": "VSM"}),
            "Bonjour,\n\nEn réponse à votre message, voici le volet de synthèse médicale d'une patiente de test (INS de test), dans une archive IHE_XDM.\n\nCe message est envoyé automatiquement par le bac à sable MSSanté de mss.\n",
        ),
        Answer::CrBio => (
            responders.crbio,
            "Répondeur CR-BIO du bac à sable MSSanté",
            CRBIO_CDA,
            json!({"code": "10", "coding_scheme": "1.2.250.1.213.1.1.4.1", "display_name": "Compte rendu"}),
            json!({"code": "urn:ihe:lab:xd-lab:2008", "coding_scheme": "1.3.6.1.4.1.19376.1.2.3", "display_name": "CR de biologie"}),
            "Bonjour,\n\nEn réponse à votre message, voici le compte rendu d'examens biologiques d'une patiente de test (INS de test), dans une archive IHE_XDM.\n\nCe message est envoyé automatiquement par le bac à sable MSSanté de mss.\n",
        ),
    };
    let mut req = json!({
        "sender": { "address": from, "type": "APP", "entity": entity },
        "recipients": { "to": [to] },
        "body": { "text": text },
        "documents": [{ "cda": { "text": cda }, "class_code": class, "format_code": format }],
        "patient": {
            "ins": TEST_INS, "ins_authority": "test", "qualified": true, "birth_name": "DURAND",
            "first_given_name": "Camille", "birth_date": "19790315", "sex": "F"
        },
        "receipts": { "mdn": true },
    });
    if let Some(id) = in_reply_to {
        let id = format!("<{}>", id.trim_matches(['<', '>']));
        req["in_reply_to"] = json!(id);
        req["references"] = json!([id]);
    }
    let req: ComposeRequest = serde_json::from_value(req)
        .map_err(|e| Error::Invalid(format!("the responder's request: {e}")))?;
    mss_message::compose(&req, &ComposeConfig::new(RESPONDER_NIL))
        .map_err(|e| Error::Invalid(format!("composing the answer to {to}: {e}")))
}

/// Answers the responder's mailboxes until the task is dropped.
pub async fn run(layout: Layout) {
    let responders = crate::responders();
    let boxes = [
        (responders.vsm, Answer::Vsm),
        (responders.crbio, Answer::CrBio),
    ];
    loop {
        for (address, kind) in &boxes {
            let new = layout.maildir(address).join("new");
            let Ok(entries) = std::fs::read_dir(&new) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let layout = layout.clone();
                let kind = *kind;
                let done =
                    tokio::task::spawn_blocking(move || answer_file(&layout, &path, kind)).await;
                if let Ok(Err(e)) = done {
                    tracing::warn!(error = %e, "the responder could not answer a message");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Answers one delivered message, then files it in `cur/` (read), answered or not.
fn answer_file(layout: &Layout, path: &Path, kind: Answer) -> Result<()> {
    let bytes = std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))?;
    let result = match should_answer(&bytes) {
        Some((sender, message_id)) => compose_answer(kind, &sender, message_id.as_deref())
            .and_then(|answer| submit(layout, &answer)),
        None => Ok(()),
    };
    if let (Some(dir), Some(name)) = (path.parent().and_then(Path::parent), path.file_name()) {
        let cur = dir
            .join("cur")
            .join(format!("{}:2,S", name.to_string_lossy()));
        let _ = std::fs::rename(path, cur);
    }
    result
}

/// The sender to answer and the Message-ID answered; `None` for what must not be answered.
fn should_answer(bytes: &[u8]) -> Option<(String, Option<String>)> {
    let msg = mail_parser::MessageParser::default().parse(bytes)?;
    // the envelope sender Dovecot wrote at delivery: empty for bounces and reports
    let return_path = msg
        .header_raw("Return-Path")
        .map(|r| r.trim().trim_matches(['<', '>']).to_owned())
        .unwrap_or_default();
    if return_path.is_empty() {
        return None;
    }
    if msg
        .header_raw("Auto-Submitted")
        .is_some_and(|a| !a.trim().eq_ignore_ascii_case("no"))
    {
        return None;
    }
    if msg.content_type().is_some_and(|c| {
        c.c_type.eq_ignore_ascii_case("multipart")
            && c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    }) {
        return None;
    }
    let responders = crate::responders();
    if [responders.vsm, responders.crbio]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&return_path))
    {
        return None;
    }
    Some((return_path, msg.message_id().map(str::to_owned)))
}

/// Hands the answer to Postfix (`sendmail` of the sandbox's configuration).
fn submit(layout: &Layout, answer: &ComposedMessage) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("/usr/sbin/sendmail")
        .arg("-C")
        .arg(layout.path("postfix"))
        .arg("-f")
        .arg(answer.envelope.from.as_str())
        .arg("-i")
        .arg("--")
        .args(
            answer
                .envelope
                .recipients
                .iter()
                .map(|r| r.as_str().to_owned()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io("starting Postfix's sendmail"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&answer.raw)
            .map_err(Error::io("writing to sendmail"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(Error::io("waiting for sendmail"))?;
    if !out.status.success() {
        return Err(Error::Start(format!(
            "sendmail refused the answer: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answers_are_composed_for_the_test_patient() {
        for kind in [Answer::Vsm, Answer::CrBio] {
            let m = compose_answer(
                kind,
                "marie.martin@sandbox.mssante.fr",
                Some("q.1@sandbox.mssante.fr"),
            )
            .unwrap();
            let text = String::from_utf8_lossy(&m.raw);
            assert!(
                text.contains("In-Reply-To: <q.1@sandbox.mssante.fr>"),
                "{kind:?}"
            );
            assert!(text.contains("IHE_XDM.zip"), "{kind:?}");
            assert!(m.subject.starts_with("XDM/1.0/DDM+"), "{}", m.subject);
            assert_eq!(
                m.envelope.recipients[0].as_str(),
                "marie.martin@sandbox.mssante.fr"
            );
        }
    }

    #[test]
    fn reports_bounces_and_automatic_messages_are_not_answered() {
        let plain = b"Return-Path: <a@sandbox.mssante.fr>\r\nFrom: a@sandbox.mssante.fr\r\nMessage-ID: <x@y>\r\nSubject: s\r\n\r\nhi\r\n";
        assert_eq!(
            should_answer(plain),
            Some(("a@sandbox.mssante.fr".into(), Some("x@y".into())))
        );
        let bounce = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@x\r\nSubject: s\r\n\r\nhi\r\n";
        assert_eq!(should_answer(bounce), None);
        let auto = b"Return-Path: <a@sandbox.mssante.fr>\r\nAuto-Submitted: auto-replied\r\nSubject: s\r\n\r\nhi\r\n";
        assert_eq!(should_answer(auto), None);
        let mdn = b"Return-Path: <a@sandbox.mssante.fr>\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b--\r\n";
        assert_eq!(should_answer(mdn), None);
    }
}
