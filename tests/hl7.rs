//! The PFI's DPI listener end to end (docs/mssante.md H1, H3): `mss hl7 listen` started for real, a DPI
//! played by python-hl7 (tests/hl7/dpi.py, an HL7 implementation nobody here wrote) sending the agency's
//! example messages, the outbox read back to check what was queued.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use mss_outbox::{Exchanges, Inbox, SqliteStore, Store};

const SENDER: &str = "pfi@hopital.mssante.fr";

/// python-hl7 playing the DPI sends `file` (with `extra` options of tests/hl7/dpi.py) to the listener on
/// `port`, and returns the acknowledgement it read.
fn dpi_send_to(port: u16, file: &str, extra: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hl7/dpi.py"))
        .args(["send", "127.0.0.1", &port.to_string()])
        .arg(fixture(file))
        .args(extra)
        .output()
        .expect("running python3 tests/hl7/dpi.py (scripts/install-deps.sh installs python-hl7)");
    assert!(
        out.status.success(),
        "dpi.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/hl7/tests/fixtures")
        .join(name)
}

/// `mss hl7 listen --queue-only` on an ephemeral port, and its data.
struct Pfi {
    child: Child,
    port: u16,
    data: PathBuf,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pfi {
    fn start() -> Pfi {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mss.toml");
        std::fs::write(
            &config,
            format!(
                "[send]\nproduct_reference = \"MSS-TEST\"\n\n[[senders]]\nname = \"pfi\"\naddress = \
                 \"{SENDER}\"\ntoken_file = \"{}\"\n\n[hl7]\nlisten = \"127.0.0.1:0\"\nsender = \"pfi\"\n",
                dir.path().join("token").display()
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        let (child, port) = Self::spawn(&data, &config, "127.0.0.1:0");
        Pfi {
            child,
            port,
            data,
            config,
            _dir: dir,
        }
    }

    fn spawn(data: &Path, config: &Path, listen: &str) -> (Child, u16) {
        let mut child = common::mss()
            .args([
                "--data",
                data.to_str().unwrap(),
                "hl7",
                "listen",
                "--queue-only",
            ])
            .args(["--config", config.to_str().unwrap(), "--listen", listen])
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mss hl7 listen");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening for the DPI on 127.0.0.1:").nth(1) {
                    let port: u16 = rest.split(' ').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("mss hl7 listen did not start");
        (child, port)
    }

    /// Kills the process at once (SIGKILL) and starts it again on the same port and data.
    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let listen = format!("127.0.0.1:{}", self.port);
        let (child, port) = Self::spawn(&self.data, &self.config, &listen);
        self.child = child;
        self.port = port;
    }

    /// python-hl7 sends `file` (edited by `extra` arguments) and returns its JSON summary of the ACK.
    fn dpi_send(&self, file: &str, extra: &[&str]) -> serde_json::Value {
        dpi_send_to(self.port, file, extra)
    }

    /// Every message queued in the HL7 batch: label, recipients and the composed bytes.
    fn queued(&self) -> Vec<(String, Vec<String>, Vec<u8>)> {
        let store = SqliteStore::open(&self.data.join("outbox.sqlite")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Some(batch) = store.batch("hl7:pfi", 0, 100).await.unwrap() else {
                return Vec::new();
            };
            // the content: leased by the test (nobody delivers in --queue-only), then given back
            let leased = store
                .lease("test", None, 100, Duration::from_secs(60))
                .await
                .unwrap();
            store.release("test").await.unwrap();
            batch
                .items
                .iter()
                .map(|m| {
                    let content = leased
                        .iter()
                        .find(|l| l.key == m.id)
                        .map(|l| l.content.clone())
                        .unwrap_or_default();
                    (
                        m.label.clone(),
                        m.recipients.iter().map(|r| r.address.to_string()).collect(),
                        content,
                    )
                })
                .collect()
        })
    }
}

impl Drop for Pfi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CDA of a fixture's first OBX, decoded.
fn obx_cda(file: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture(file)).unwrap();
    let m = mss_hl7::Message::parse(&bytes).unwrap();
    let b64 = m.get("OBX", 5).component(5).text().into_owned();
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .unwrap()
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

const ORU_BODY: &str =
    "Q2hlciBjb25mcsOocmUsIHZvdXMgdHJvdXZlcmV6IGNpLWpvaW50IGxlIENSIGTigJlpbWFnZXJpZSBkZSBNLkR1cG9ud";

#[test]
fn dpi_documents_are_queued_once_and_refusals_name_the_fault() {
    let mut pfi = Pfi::start();

    // 1. The agency's MDM^T02 as published: INVISIBLE_REP_LEGAUX = Y beside a professionals-only
    //    exchange is outside the guide's matrix: AE naming that OBX, nothing queued.
    let ack = pfi.dpi_send("sending-mdm-t02.hl7", &[]);
    assert_eq!(ack["msh9"], "ACK^T02");
    assert_eq!(ack["msa1"], "AE");
    assert_eq!(ack["msa2"], "015");
    assert_eq!(ack["err2"], "OBX^4^5");
    assert_eq!(ack["err3"], "207");
    assert!(
        ack["err8"].as_str().unwrap().starts_with(
            "INVISIBLE_REP_LEGAUX = Y is not allowed when sending to professionals only"
        ),
        "{ack}"
    );
    assert!(pfi.queued().is_empty());

    // 2. The same with the flag the matrix wants: AA, one message to the PRT recipient, the CDA byte
    //    for byte in the IHE_XDM, no receipts asked (ACK_RECEPTION, ACK_LECTURE_MSS = N).
    let fixed = ["--flag", "INVISIBLE_REP_LEGAUX=N"];
    let ack = pfi.dpi_send("sending-mdm-t02.hl7", &fixed);
    assert_eq!(
        (ack["msa1"].as_str(), ack["msa2"].as_str()),
        (Some("AA"), Some("015")),
        "{ack}"
    );
    let queued = pfi.queued();
    assert_eq!(queued.len(), 1);
    let (label, to, content) = &queued[0];
    assert_eq!(label, "hl7 MDM^T02 015 from RIS-Y/Organisation-Y (ps)");
    assert_eq!(to, &["adam.hoda@test-ci-sis.mssante.fr"]);
    let read = mss_message::read_message(content).unwrap();
    assert_eq!(read.from.as_deref(), Some(SENDER));
    assert!(read.subject.starts_with("XDM/1.0/DDM+"), "{}", read.subject);
    let docs: Vec<_> = read.xdm[0].archive.as_ref().unwrap().documents().collect();
    assert_eq!(docs.len(), 1);
    assert!(docs[0].verified());
    assert_eq!(docs[0].content, obx_cda("sending-mdm-t02.hl7"));
    let raw = String::from_utf8_lossy(content);
    assert_eq!(header(&raw, "X-MSS-CODECDA"), Some("18748-4"));
    assert_eq!(header(&raw, "Disposition-Notification-To"), None);
    assert_eq!(
        read.text.as_ref().map(|t| t.0.trim().to_owned()).as_deref(),
        Some("Cher confrère, vous trouverez ci-joint le CR d’imagerie de M.Dupont")
    );

    // 3. A lost ACK: the DPI sends, the connection drops before the answer, the DPI sends the same
    //    MSH-10 again: AA again, still one message. Then the PFI is killed at once after a send and
    //    restarted; the DPI sends again: still one message.
    let ack = pfi.dpi_send(
        "sending-mdm-t02.hl7",
        &[&fixed[..], &["--drop-ack"]].concat(),
    );
    assert_eq!(ack["dropped"], "015");
    let ack = pfi.dpi_send("sending-mdm-t02.hl7", &fixed);
    assert_eq!(ack["msa1"], "AA");
    assert_eq!(pfi.queued().len(), 1);
    let ack = pfi.dpi_send(
        "sending-mdm-t02.hl7",
        &[&fixed[..], &["--drop-ack", "--control-id", "016"]].concat(),
    );
    assert_eq!(ack["dropped"], "016");
    std::thread::sleep(Duration::from_millis(common::jitter(150)));
    pfi.kill_and_restart();
    let ack = pfi.dpi_send(
        "sending-mdm-t02.hl7",
        &[&fixed[..], &["--control-id", "016"]].concat(),
    );
    assert_eq!(
        (ack["msa1"].as_str(), ack["msa2"].as_str()),
        (Some("AA"), Some("016")),
        "{ack}"
    );
    assert_eq!(pfi.queued().len(), 2);

    // 4. The agency's ORU^R01 to a professional and the patient: its patient address (20 digits) is
    //    not an INS and its body is cut base64; fixed, two messages, each with its receipts.
    let ack = pfi.dpi_send("sending-oru-r01.hl7", &[]);
    assert_eq!(
        (ack["msa1"].as_str(), ack["err2"].as_str()),
        (Some("AE"), Some("OBX^12^5")),
        "{ack}"
    );
    let body = format!(
        "{ORU_BODY}={}",
        base64::engine::general_purpose::STANDARD.encode("Bonjour, voici votre compte rendu.")
    );
    let ack = pfi.dpi_send("sending-oru-r01.hl7", &["--replace", &body]);
    assert_eq!(
        (ack["msa1"].as_str(), ack["err2"].as_str()),
        (Some("AE"), Some("PRT^3^15")),
        "{ack}"
    );
    assert!(
        ack["err8"]
            .as_str()
            .unwrap()
            .contains("an INS has 15 characters"),
        "{ack}"
    );
    let patient = "27707279035121518989@patient=279035121518989@patient";
    let ack = pfi.dpi_send(
        "sending-oru-r01.hl7",
        &["--replace", &body, "--replace", patient],
    );
    assert_eq!(ack["msa1"], "AA", "{ack}");
    let queued = pfi.queued();
    assert_eq!(queued.len(), 4);
    let ps = &queued[2];
    let pat = &queued[3];
    assert_eq!(ps.0, "hl7 ORU^R01 015 from SIL-Y/labo (ps)");
    assert_eq!(ps.1, ["adam.hoda@test-ci-sis.mssante.fr"]);
    assert_eq!(pat.0, "hl7 ORU^R01 015 from SIL-Y/labo (patient)");
    assert_eq!(pat.1, ["279035121518989@patient.mssante.fr"]);
    for (_, _, content) in [ps, pat] {
        let raw = String::from_utf8_lossy(content);
        assert_eq!(
            header(&raw, "Disposition-Notification-To"),
            Some("<pfi@hopital.mssante.fr>")
        );
        assert_eq!(
            header(&raw, "Reply-To"),
            Some("<adam.hoda@test-ci-sis.mssante.fr>")
        );
        let read = mss_message::read_message(content).unwrap();
        let docs: Vec<_> = read.xdm[0].archive.as_ref().unwrap().documents().collect();
        assert_eq!(docs[0].content, obx_cda("sending-oru-r01.hl7"));
    }

    // 5. The agency's replacement (T10: v2 of the T02's report, TXA-13 naming v1) and deletion (T04 of
    //    v2), the matrix's flag fixed and their own MSH-10: the T10's archive replaces v1's entry by
    //    an RPLC association, the T04's withdraws v2's entry (status Deleted) and says so in the body.
    let first = pfi.queued()[0].2.clone();
    let entry = |content: &[u8]| {
        let read = mss_message::read_message(content).unwrap();
        let archive = read.xdm[0].archive.clone().unwrap();
        let doc = archive.documents().next().unwrap().entry.clone();
        let replaced: Vec<String> = archive.replacements().map(|r| r.replaced.clone()).collect();
        (doc, replaced, read.text.map(|t| t.0).unwrap_or_default())
    };
    let visible = ["--flag", "INVISIBLE_PATIENT=Y"];
    let ack = pfi.dpi_send(
        "sending-mdm-t10.hl7",
        &[&visible[..], &["--control-id", "017"]].concat(),
    );
    assert_eq!(
        (ack["msh9"].as_str(), ack["msa1"].as_str()),
        (Some("ACK^T10"), Some("AA")),
        "{ack}"
    );
    // the published T04's CDA base64 lacks its padding: refused as it is, then fixed
    let t04 = [&visible[..], &["--control-id", "018"]].concat();
    let ack = pfi.dpi_send("sending-mdm-t04.hl7", &t04);
    assert_eq!(
        (
            ack["msa1"].as_str(),
            ack["err2"].as_str(),
            ack["err3"].as_str()
        ),
        (Some("AE"), Some("OBX^1^5"), Some("102")),
        "{ack}"
    );
    let ack = pfi.dpi_send(
        "sending-mdm-t04.hl7",
        &[&t04[..], &["--replace", "DQo||||||D|=DQo=||||||D|"]].concat(),
    );
    assert_eq!(
        (ack["msh9"].as_str(), ack["msa1"].as_str()),
        (Some("ACK^T04"), Some("AA")),
        "{ack}"
    );
    let queued = pfi.queued();
    assert_eq!(queued.len(), 6);
    assert_eq!(
        queued[4].0,
        "hl7 MDM^T10 017 from RIS-Y/Organisation-Y (ps)"
    );
    assert_eq!(
        queued[5].0,
        "hl7 MDM^T04 018 from RIS-Y/Organisation-Y (ps)"
    );
    let (v1, _, _) = entry(&first);
    let (v2, replaced, _) = entry(&queued[4].2);
    assert_eq!(v1.unique_id, "1.2.250.1.71.4.2.2.120456789.71024000081");
    assert_eq!(v2.unique_id, "1.2.250.1.71.4.2.2.120456789.71024000082");
    // INVISIBLE_PATIENT = Y travels as the TRE_A07 confidentialityCode, beside the CDA's
    assert!(
        v2.confidentiality
            .iter()
            .any(|c| c.code == "INVISIBLE_PATIENT" && c.scheme == "1.2.250.1.213.1.1.4.13"),
        "{:?}",
        v2.confidentiality
    );
    assert_eq!(replaced, std::slice::from_ref(&v1.entry_uuid));
    assert!(!v2.is_deleted());
    let (withdrawn, replaced, body) = entry(&queued[5].2);
    assert_eq!(withdrawn.entry_uuid, v2.entry_uuid);
    assert!(withdrawn.is_deleted());
    assert!(replaced.is_empty());
    assert_eq!(
        body.trim(),
        "Cher confrère, vous trouverez ci-joint le CR d’imagerie de M.Dupont",
        "the DPI's own body is kept"
    );

    // 6. An ADT is not handled.
    let ack = pfi.dpi_send(
        "sending-ack.hl7",
        &["--replace", "ACK^T10^ACK=ADT^A01^ADT_A01"],
    );
    assert_eq!(
        (ack["msa1"].as_str(), ack["err3"].as_str()),
        (Some("AR"), Some("200")),
        "{ack}"
    );
    assert_eq!(pfi.queued().len(), 6);
}

/// python-hl7's MLLP server playing the DPI (tests/hl7/dpi.py serve): messages written to `out`.
struct Dpi {
    child: Child,
    port: u16,
    out: PathBuf,
    answer: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dpi {
    fn start() -> Dpi {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received");
        std::fs::create_dir_all(&out).unwrap();
        let port_file = dir.path().join("port");
        let answer = dir.path().join("answer");
        let child = std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hl7/dpi.py"))
            .arg("serve")
            .args([&port_file, &out])
            .arg("--answer-file")
            .arg(&answer)
            .spawn()
            .expect("python3 tests/hl7/dpi.py serve");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the DPI did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Dpi {
            child,
            port,
            out,
            answer,
            _dir: dir,
        }
    }

    /// What python-hl7 read of the `n`-th message received (from 1).
    fn received(&self, n: usize) -> serde_json::Value {
        let path = self.out.join(format!("{n}.json"));
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }
}

impl Drop for Dpi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn hl7_send_prints_the_acknowledgement_of_an_independent_peer() {
    let dpi = Dpi::start();
    let to = format!("127.0.0.1:{}", dpi.port);
    let file = fixture("receiving-mdm-t02.hl7");
    let out = common::run(&["hl7", "send", file.to_str().unwrap(), "--to", &to]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("MSH|^~\\&|DPI|HOP|PFI-Y|Organisation-Y|"),
        "{text}"
    );
    assert_eq!(lines[1], "MSA|AA|015");
    // python-hl7 read what mss framed and sent
    let got = dpi.received(1);
    assert_eq!(got["type"], "MDM^T02");
    assert_eq!(got["profile"], "CISIS_CDA_HL7_LPS");
    assert_eq!(got["pv1_2"], "N");
    // an AE makes the exit status 3
    std::fs::write(&dpi.answer, "AE:902").unwrap();
    let out = common::run(&["hl7", "send", file.to_str().unwrap(), "--to", &to]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        common::stdout(&out).contains(
            "ERR||PID^1^3|207^Application error^HL70357|E|902^Identifiant patient inconnu^HL70533"
        ),
        "{}",
        common::stdout(&out)
    );
}

/// A letter from a professional to the PFI's mailbox withdrawing the example's report, with a Reply-To.
fn withdrawal_letter() -> Vec<u8> {
    let mut req: mss_message::ComposeRequest = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose/cda-to-professional.json"),
        )
        .unwrap(),
    )
    .unwrap();
    req.recipients.to = vec![SENDER.into()];
    req.recipients.cc.clear();
    req.reply_to = Some("secretariat.cardio@chu-exemple.mssante.fr".into());
    req.documents[0].withdraw = true;
    mss_message::compose(&req, &mss_message::ComposeConfig::new("DEV935997"))
        .unwrap()
        .raw
}

/// A letter of two CDA documents from a professional to the PFI's mailbox, asking a read receipt.
fn two_document_letter() -> Vec<u8> {
    let mut req: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose/cda-to-professional.json"),
        )
        .unwrap(),
    )
    .unwrap();
    req["recipients"] = serde_json::json!({ "to": [SENDER] });
    let mut second = req["documents"][0].clone();
    let cda = second["cda"]["text"]
        .as_str()
        .unwrap()
        .replace("CR-2026-004217", "CR-2026-004218");
    second["cda"]["text"] = cda.into();
    req["documents"].as_array_mut().unwrap().push(second);
    let req: mss_message::ComposeRequest = serde_json::from_value(req).unwrap();
    mss_message::compose(&req, &mss_message::ComposeConfig::new("DEV935997"))
        .unwrap()
        .raw
}

#[test]
fn received_documents_go_to_the_dpi_and_its_answer_decides_the_mdn() {
    let dpi = Dpi::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mss.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[send]\nproduct_reference = \"MSS-TEST\"\n\n[[senders]]\nname = \"pfi\"\naddress = \
             \"{SENDER}\"\ntoken_file = \"{}\"\nreceive = true\n\n[hl7]\nsender = \"pfi\"\ndpi = \
             \"127.0.0.1:{}\"\napplication = \"PFI\"\nfacility = \"CH\"\n",
            dir.path().join("token").display(),
            dpi.port
        ),
    )
    .unwrap();
    let store = SqliteStore::open(&{
        std::fs::create_dir_all(&data).unwrap();
        data.join("outbox.sqlite")
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // a received message in the inbox, as the mailbox's reader keeps it
    let receive = |uid: u32, raw: Vec<u8>| {
        let incoming = mss_outbox::inbox::Incoming {
            uid,
            message_id: mss_lps::message_id(&raw).map(|m| m.trim_matches(['<', '>']).to_owned()),
            raw,
            from: Some("marie.martin@medecin.mssante.fr".into()),
            subject: Some("CR".into()),
            summary: serde_json::json!({"problems": []}),
        };
        rt.block_on(store.keep(SENDER, "INBOX", 1, uid, vec![incoming]))
            .unwrap();
    };
    let forward = || {
        let out = common::mss()
            .args(["--data", data.to_str().unwrap(), "hl7", "forward", "--once"])
            .args(["--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out).trim().to_owned()
    };
    let statuses = || {
        rt.block_on(store.inbox_list(&mss_outbox::inbox::InboxQuery {
            status: None,
            mailbox: None,
            after: 0,
            limit: 0,
        }))
        .unwrap()
    };

    // 0. the DPI is down: the pass fails, the message waits without an outcome
    receive(1, two_document_letter());
    let down = mss_testing::free_ports(1, 10);
    let live = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        live.replace(&dpi.port.to_string(), &down.to_string()),
    )
    .unwrap();
    let out = common::mss()
        .args(["--data", data.to_str().unwrap(), "hl7", "forward", "--once"])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains(&format!("127.0.0.1:{down}")),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(statuses()[0].status, mss_outbox::inbox::InboxStatus::New);
    std::fs::write(&config, live).unwrap();

    // 1. the DPI is back and integrates both documents: two MDMs read by python-hl7, the message
    //    integrated
    assert_eq!(forward(), "1 message(s) sent to the DPI");
    for n in 1..=2 {
        let got = dpi.received(n);
        assert_eq!(got["type"], "MDM^T02", "{got}");
        assert_eq!(got["control_id"], format!("MSS1D{n}"));
        assert_eq!(got["profile"], "CISIS_CDA_HL7_LPS");
        assert_eq!(got["pv1_2"], "N");
        assert_eq!(got["orc1"], "NW");
        assert_eq!(got["obr4"], "11488-4");
        assert_eq!(got["pid3"], "279037505612309");
        assert_eq!(
            got["prt"],
            serde_json::json!([["SB", "marie.martin@medecin.mssante.fr"], ["RCT", SENDER]])
        );
    }
    let text = std::fs::read_to_string(dpi.out.join("1.hl7")).unwrap();
    let mdm = mss_hl7::Message::parse(text.as_bytes()).unwrap();
    assert_eq!(
        mdm.segments()
            .iter()
            .map(mss_hl7::Segment::name)
            .collect::<Vec<_>>(),
        [
            "MSH", "EVN", "PID", "PV1", "ORC", "OBR", "TXA", "OBX", "PRT", "PRT", "OBX", "OBX",
            "OBX", "OBX", "OBX"
        ]
    );
    assert_eq!(
        statuses()[0].status,
        mss_outbox::inbox::InboxStatus::Integrated
    );
    assert_eq!(forward(), "0 message(s) sent to the DPI");

    // 2. the DPI answers AE with ERR-5 902 (unknown patient): the message is in error 902, and the
    //    MDN it asked for is queued with `processed/Error: 902`
    std::fs::write(&dpi.answer, "AE:902").unwrap();
    receive(2, two_document_letter());
    assert_eq!(forward(), "1 message(s) sent to the DPI");
    assert_eq!(dpi.received(3)["control_id"], "MSS2D1");
    assert!(
        !dpi.out.join("4.json").exists(),
        "the second document waits"
    );
    let entry = &statuses()[1];
    assert_eq!(entry.status, mss_outbox::inbox::InboxStatus::Error);
    let outcome = entry.outcome.as_ref().unwrap();
    assert_eq!(outcome.code, Some(902));
    assert_eq!(
        outcome.label.as_deref(),
        Some("Identifiant patient inconnu")
    );
    let queued = rt
        .block_on(store.lease("test", None, 10, Duration::from_secs(60)))
        .unwrap();
    let mdns: Vec<String> = queued
        .iter()
        .map(|m| String::from_utf8_lossy(&m.content).into_owned())
        .collect();
    assert_eq!(mdns.len(), 2, "one MDN per received message");
    assert!(
        mdns.iter()
            .any(|m| m.contains("processed/Error: 902^Identifiant patient inconnu"))
    );
    assert!(mdns.iter().any(|m| {
        m.contains("Disposition: automatic-action/MDN-sent-automatically; processed\r\n")
            || m.contains("; processed\r\n")
    }));

    // 3. the sender withdraws the report: python-hl7 reads an MDM^T04 cancelling it, with the mail's
    //    Reply-To as the REPLY participation
    std::fs::write(&dpi.answer, "AA").unwrap();
    receive(3, withdrawal_letter());
    assert_eq!(forward(), "1 message(s) sent to the DPI");
    let got = dpi.received(4);
    assert_eq!(got["type"], "MDM^T04", "{got}");
    assert_eq!(got["control_id"], "MSS3D1");
    assert_eq!(got["orc1"], "CA");
    assert_eq!(
        got["prt"],
        serde_json::json!([
            ["SB", "marie.martin@medecin.mssante.fr"],
            ["RCT", SENDER],
            ["REPLY", "secretariat.cardio@chu-exemple.mssante.fr"]
        ])
    );
    assert_eq!(
        statuses()[2].status,
        mss_outbox::inbox::InboxStatus::Integrated
    );

    // 4. every exchange with the DPI in `mss inbox show` (the DPI down left none: nothing was answered)
    let show = |id: &str, json: bool| {
        let mut args = vec!["--data", data.to_str().unwrap(), "inbox", "show", id];
        if json {
            args.push("--json");
        }
        let out = common::run(&args);
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out)
    };
    let shown: serde_json::Value = serde_json::from_str(&show("1", true)).unwrap();
    let hl7 = shown["hl7"].as_array().unwrap();
    assert_eq!(hl7.len(), 2, "{shown}");
    for (n, e) in hl7.iter().enumerate() {
        assert_eq!(e["direction"], "sent");
        assert_eq!(e["type"], "MDM^T02");
        assert_eq!(e["control_id"], format!("MSS1D{}", n + 1));
        assert_eq!(e["ack"], "AA");
    }
    let text = show("2", false);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("hl7: ")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].ends_with(" sent MDM^T02 MSS2D1 -> AE 902 Identifiant patient inconnu"),
        "{text}"
    );
}

/// The whole H2 loop with the real operator (scripts/lps-operator.sh) and `mss serve`: a letter asking a
/// read receipt arrives in the PFI's mailbox, the service's reader keeps it, its forwarder sends the
/// document to the DPI (python-hl7), which answers `AE` with ERR-5 902; the MDN `processed/Error: 902`
/// is queued and the service's outbox worker sends it through the operator into the sender's mailbox,
/// read back over IMAP.
#[test]
fn a_dpi_902_reaches_the_senders_mailbox_as_an_mdn() {
    let Some(op) = mss_testing::lps::operator() else {
        return;
    };
    if !op.delivers() {
        mss_testing::unavailable("the MDN is read in the sender's mailbox: needs Postfix (root)");
        return;
    }
    let dpi = Dpi::start();
    std::fs::write(&dpi.answer, "AE:902").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let labo = format!("{}@sante.test", common::unique("labo"));
    let pfi = format!("{}@sante.test", common::unique("pfi"));
    let token_file = dir.path().join("pfi.token");
    let token = op.psc().token(&pfi, mss_testing::lps::TokenKind::Valid);
    std::fs::write(&token_file, token.expose()).unwrap();
    let data = dir.path().join("data");
    common::install_whitelist(&data, mss_testing::TEST_DOMAINS);
    let conf = dir.path().join("mss.toml");
    // the service's own MLLP listener too: what it answers the DPI is counted in /metrics
    let listen = mss_testing::free_ports(1, 3);
    std::fs::write(
        &conf,
        format!(
            "[send]\nproduct_reference = \"MSS-TEST-NIL\"\nca_file = {:?}\nsubmission = \"localhost:{}\"\n\n\
             [outbox]\nworker = \"pfi\"\n\n\
             [[senders]]\nname = \"pfi\"\naddress = {pfi:?}\ntoken_file = {token_file:?}\n\
             imap = \"localhost:{}\"\nreceive = true\n\n\
             [hl7]\nsender = \"pfi\"\ndpi = \"127.0.0.1:{}\"\napplication = \"PFI\"\nfacility = \"CH\"\n\
             listen = \"127.0.0.1:{listen}\"\n",
            op.path("CA"),
            op.port("SUBMISSION_PORT"),
            op.port("IMAP_PORT"),
            dpi.port
        ),
    )
    .unwrap();
    let clients = dir.path().join("clients.toml");
    let key = common::add_client(&clients, "ops", &["metrics:read"]);
    // a seed of this run: the letter's Message-ID is unique in the shared operator
    let seed = u64::from(std::process::id()) << 20 | common::jitter(1 << 20);
    let (letter, _) = common::xdm_letter(&labo, &pfi, seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = op.imap_session(&pfi).await;
        s.append("INBOX", &[], &letter.raw).await.unwrap();
        s.logout().await.unwrap();
    });
    let mut server = common::Server::start_keyed(&data, &conf, &clients, &key);
    // the agency's MDM^T02 as published is outside the guide's matrix: AE 207, nothing queued
    let ack = dpi_send_to(listen, "sending-mdm-t02.hl7", &[]);
    assert_eq!(
        (ack["msa1"].as_str(), ack["err3"].as_str()),
        (Some("AE"), Some("207")),
        "{ack}"
    );

    // the MDN in the sender's mailbox, over IMAP
    let subject = format!("[KO Intégration système !][902] {}", letter.subject);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mdn = loop {
        let found = rt.block_on(async {
            let mut s = op.imap_session(&labo).await;
            s.examine("INBOX").await.unwrap();
            let uids = s.uid_search("ALL").await.unwrap();
            let fetched = if uids.is_empty() {
                Vec::new()
            } else {
                s.uid_fetch(&uids).await.unwrap()
            };
            s.logout().await.unwrap();
            fetched
                .into_iter()
                .filter_map(|f| f.body)
                .find(|b| mss_message::read_message(b).is_ok_and(|m| m.subject == subject))
        });
        if let Some(m) = found {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no MDN {subject:?} in {labo}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = String::from_utf8_lossy(&mdn).into_owned();
    let label = "Identifiant patient inconnu";
    for field in [
        format!(
            "\r\nDisposition: automatic-action/MDN-sent-automatically; processed/Error: 902^{label}\r\n"
        ),
        format!("\r\nFinal-Recipient: rfc822;{pfi}\r\n"),
        format!("\r\nOriginal-Message-ID: <{}>\r\n", letter.message_id),
    ] {
        assert!(
            text.contains(&field),
            "{field:?} missing from the MDN: {}",
            &text[..text.len().min(2500)]
        );
    }
    // what python-hl7 received: the document's MDM, answered AE 902
    let got = dpi.received(1);
    assert_eq!(got["type"], "MDM^T02", "{got}");
    assert_eq!(got["control_id"], "MSS1D1");
    // the refusal counted, and the business acks of the DPI's mailbox at zero
    let metrics = server.text("/metrics");
    for line in [
        r#"mss_hl7_received_total{type="MDM^T02",ack="AE",code="207"} 1"#.to_owned(),
        format!(r#"mss_hl7_business_acks{{sender="{pfi}",type="ZAM^Z02",state="pending"}} 0"#),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(server.terminate().success());
}

/// A DSN as Postfix writes it about `envid` for one recipient.
fn dsn(envid: &str, recipient: &str, action: &str, status: &str, diagnostic: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@test-ci-sis.mssante.fr (Mail Delivery System)\r\n\
Subject: Delivery Status Notification\r\nTo: {SENDER}\r\nAuto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\
\tboundary=\"B1\"\r\nMessage-Id: <{action}.{status}@test-ci-sis.mssante.fr>\r\n\r\n--B1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\r\nThe mail system.\r\n\r\n--B1\r\n\
Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test-ci-sis.mssante.fr\r\n\
Original-Envelope-Id: {envid}\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\n\
Original-Recipient: rfc822;{recipient}\r\nAction: {action}\r\nStatus: {status}\r\n\
Diagnostic-Code: smtp; {diagnostic}\r\n\r\n--B1--\r\n"
    )
    .into_bytes()
}

#[test]
fn receipts_go_back_to_the_dpi_as_business_acks_once_each() {
    let pfi = Pfi::start();
    let dpi = Dpi::start();
    const TO: &str = "adam.hoda@test-ci-sis.mssante.fr";
    // two letters asking both business acks
    let asks = [
        "--flag",
        "INVISIBLE_REP_LEGAUX=N",
        "--flag",
        "ACK_RECEPTION=Y",
        "--flag",
        "ACK_LECTURE_MSS=Y",
    ];
    for id in ["Z-1", "Z-2"] {
        let ack = pfi.dpi_send(
            "sending-mdm-t02.hl7",
            &[&asks[..], &["--control-id", id]].concat(),
        );
        assert_eq!(ack["msa1"], "AA", "{ack}");
    }
    let queued = pfi.queued();
    assert_eq!(queued.len(), 2);
    let message_id = |content: &[u8]| {
        header(&String::from_utf8_lossy(content), "Message-ID")
            .unwrap()
            .to_owned()
    };
    let (first, second) = (message_id(&queued[0].2), message_id(&queued[1].2));

    let store = SqliteStore::open(&pfi.data.join("outbox.sqlite")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // the receipts, through the outbox's matching: the first delivered, the second refused (550)
    for raw in [
        dsn(&first, TO, "delivered", "2.0.0", "250 2.0.0 Ok: queued"),
        dsn(
            &second,
            TO,
            "failed",
            "5.1.1",
            "550 5.1.1 <adam.hoda@test-ci-sis.mssante.fr>: Recipient address rejected",
        ),
    ] {
        let r = rt
            .block_on(mss_outbox::receipts::record(&store, &raw))
            .unwrap();
        assert_eq!(r.delivered + r.failed, 1, "{r:?}");
    }

    // the forwarder's configuration: the same mailbox, the DPI first down
    let config = pfi.config.with_file_name("forward.toml");
    let live = std::fs::read_to_string(&pfi.config)
        .unwrap()
        .replace("listen = \"127.0.0.1:0\"\n", "")
        + &format!(
            "dpi = \"127.0.0.1:{}\"\napplication = \"PFI\"\nfacility = \"CH\"\n",
            dpi.port
        );
    let down = mss_testing::free_ports(1, 10);
    std::fs::write(
        &config,
        live.replace(&dpi.port.to_string(), &down.to_string()),
    )
    .unwrap();
    let forward = || {
        common::mss()
            .args([
                "--data",
                pfi.data.to_str().unwrap(),
                "hl7",
                "forward",
                "--once",
            ])
            .args(["--config", config.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = forward();
    assert!(!out.status.success());
    let log = |key: i64| {
        rt.block_on(store.exchanges(mss_outbox::exchanges::Link::Message(key)))
            .unwrap()
    };
    let keys = || -> Vec<i64> {
        rt.block_on(store.batch("hl7:pfi", 0, 10))
            .unwrap()
            .unwrap()
            .items
            .iter()
            .map(|m| m.id)
            .collect()
    };
    let waiting = log(keys()[0]);
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert_eq!(waiting[1].kind, "ZAM^Z02");
    assert_eq!(
        waiting[1].state,
        mss_outbox::exchanges::ExchangeState::Pending
    );
    assert!(
        waiting[1]
            .last_error
            .as_deref()
            .unwrap()
            .contains(&down.to_string()),
        "{waiting:?}"
    );
    assert!(!dpi.out.join("1.json").exists());

    // the DPI is back: both acks delivered, read by python-hl7
    std::fs::write(&config, &live).unwrap();
    let out = forward();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        common::stdout(&out).trim(),
        "0 message(s) sent to the DPI\n2 business ack(s) sent to the DPI"
    );
    let z02 = dpi.received(1);
    assert_eq!(z02["type"], "ZAM^Z02", "{z02}");
    assert_eq!(
        z02["receiver"],
        serde_json::json!(["RIS-Y", "Organisation-Y"])
    );
    assert_eq!(
        z02["obx"],
        serde_json::json!([
            [
                "CWE",
                "ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM",
                "Z-1",
                ["Y", "", "expandedYes-NoIndicator"],
                "F"
            ],
            [
                "XTN",
                "DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM",
                "",
                ["", "", "X.400", TO],
                "F"
            ]
        ])
    );
    assert_eq!(z02["err"], serde_json::json!([]));
    assert_eq!(z02["evn2"].as_str().unwrap().len(), 19, "{z02}");
    let failed = dpi.received(2);
    assert_eq!(failed["type"], "ZAM^Z02");
    assert_eq!(failed["obx"][0][2], "Z-2");
    assert_eq!(failed["obx"][0][3][0], "N");
    assert_eq!(
        failed["err"],
        serde_json::json!([[
            "207^Application error^messageErrorCondition",
            "E",
            "550^Action non effectuée : boîte aux lettres non disponible^SMTPERRORCODE"
        ]])
    );

    // the first recipient reads it (the MDN mss-message writes): one ZAM^Z03, and nothing twice
    let read = mss_message::read_message(&queued[0].2).unwrap();
    let mdn = mss_message::mdn::build_mdn(
        &read,
        &mss_message::mdn::MdnRequest {
            final_recipient: TO.to_owned(),
            label: None,
            disposition: mss_message::mdn::MdnDisposition::Displayed,
        },
        &mss_message::ComposeConfig::new("MSS-TEST-NIL"),
        &mut mss_message::Env::system(),
    )
    .unwrap()
    .raw;
    let r = rt
        .block_on(mss_outbox::receipts::record(&store, &mdn))
        .unwrap();
    assert_eq!(r.read, 1, "{r:?}");
    let out = forward();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        common::stdout(&out).trim(),
        "0 message(s) sent to the DPI\n1 business ack(s) sent to the DPI"
    );
    let z03 = dpi.received(3);
    assert_eq!(z03["type"], "ZAM^Z03");
    assert_eq!(
        z03["obx"][0][1],
        "ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM"
    );
    assert_eq!(z03["obx"][0][3][0], "Y");
    assert_eq!(
        z03["obx"][1][1],
        "LECTEUR_MSS^Lecteur du courriel MSSanté^AckMetierZAM"
    );
    assert_eq!(z03["obx"][1][3][3], TO);
    assert_eq!(
        common::stdout(&forward()).trim(),
        "0 message(s) sent to the DPI"
    );
    assert!(!dpi.out.join("4.json").exists(), "each ack once");

    // a third letter delivered: the DPI answers AR (sent again later, the same MSH-10), then AE
    // (refused: never sent again)
    let ack = pfi.dpi_send(
        "sending-mdm-t02.hl7",
        &[&asks[..], &["--control-id", "Z-3"]].concat(),
    );
    assert_eq!(ack["msa1"], "AA", "{ack}");
    let third = message_id(&pfi.queued()[2].2);
    rt.block_on(mss_outbox::receipts::record(
        &store,
        &dsn(&third, TO, "delivered", "2.0.0", "250 2.0.0 Ok"),
    ))
    .unwrap();
    std::fs::write(&dpi.answer, "AR").unwrap();
    assert!(forward().status.success());
    std::fs::write(&dpi.answer, "AE:902").unwrap();
    assert!(forward().status.success());
    let (again, refused) = (dpi.received(4), dpi.received(5));
    assert_eq!(again["type"], "ZAM^Z02");
    assert_eq!(again["obx"][0][2], "Z-3");
    assert_eq!(
        again["control_id"], refused["control_id"],
        "the same MSH-10"
    );
    assert_eq!(
        common::stdout(&forward()).trim(),
        "0 message(s) sent to the DPI"
    );
    assert!(!dpi.out.join("6.json").exists(), "AE is final");
    let z = log(keys()[2]).pop().unwrap();
    assert_eq!(z.state, mss_outbox::exchanges::ExchangeState::Refused);
    assert_eq!((z.ack.as_deref(), z.attempts), (Some("AE"), 2));
    assert_eq!(z.error_code.as_deref(), Some("902"));

    // the log: the MDM received and answered, each ZAM sent and the DPI's AA
    let shown: Vec<(String, String, Option<String>)> = log(keys()[0])
        .into_iter()
        .map(|e| (e.direction.as_str().to_owned(), e.kind, e.ack))
        .collect();
    assert_eq!(
        shown,
        [
            ("received".into(), "MDM^T02".into(), Some("AA".into())),
            ("sent".into(), "ZAM^Z02".into(), Some("AA".into())),
            ("sent".into(), "ZAM^Z03".into(), Some("AA".into())),
        ]
    );
    assert_eq!(
        log(keys()[0])[1].attempts,
        2,
        "one send without answer, one answered"
    );
}
