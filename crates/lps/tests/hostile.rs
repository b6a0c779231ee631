//! Deliberately hostile servers: the real operator treats loopback as secure and speaks only TLS ≥ 1.2, so
//! "never authenticate before STARTTLS" and "refuse TLS < 1.2" are proven against fakes: in-process servers
//! that offer AUTH without STARTTLS, and a Python server that negotiates only TLS 1.1.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mss_lps::{
    ConnectOptions, Endpoint, Error, Protocol, TlsFailure, TlsSettings, TrustRoots, imap, smtp,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Serves one connection with `respond(line) -> reply`, after `greeting`; returns the port and the lines
/// received.
async fn fake(
    greeting: &'static str,
    respond: fn(&str) -> Option<String>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        let _ = w.write_all(greeting.as_bytes()).await;
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().expect("lock").push(line.clone());
            match respond(&line) {
                Some(reply) => {
                    let _ = w.write_all(reply.as_bytes()).await;
                }
                None => return,
            }
        }
    });
    (port, seen)
}

fn options() -> ConnectOptions {
    let roots =
        TrustRoots::from_pem(include_bytes!("data/config-only-ca.pem"), "test").expect("roots");
    let mut o = ConnectOptions::new(TlsSettings::new(roots, None).expect("tls"));
    o.timeouts.command = Duration::from_secs(5);
    o
}

#[tokio::test]
async fn smtp_server_offering_auth_without_starttls_gets_no_credentials() {
    let (port, seen) = fake("220 hostile ESMTP\r\n", |l| {
        Some(
            match l
                .split(' ')
                .next()
                .unwrap_or("")
                .to_ascii_uppercase()
                .as_str()
            {
                "EHLO" => "250-hostile\r\n250-AUTH XOAUTH2 PLAIN LOGIN\r\n250 8BITMIME\r\n".into(),
                "QUIT" => "221 bye\r\n".into(),
                _ => "235 2.7.0 anything goes\r\n".into(),
            },
        )
    })
    .await;
    let e = smtp::connect(&Endpoint::new("127.0.0.1", port), &options())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            e,
            Error::StartTlsUnavailable {
                protocol: Protocol::Smtp,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_permanent());
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter()
            .all(|l| !l.to_ascii_uppercase().starts_with("AUTH")),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2, "EHLO and QUIT only: {seen:?}");
}

#[tokio::test]
async fn imap_server_without_starttls_gets_no_credentials() {
    let (port, seen) = fake(
        "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] hostile\r\n",
        |l| {
            let (tag, cmd) = l.split_once(' ').unwrap_or((l, ""));
            Some(match cmd.to_ascii_uppercase().as_str() {
                "CAPABILITY" => format!(
                    "* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN\r\n{tag} OK done\r\n"
                ),
                "LOGOUT" => format!("* BYE bye\r\n{tag} OK done\r\n"),
                _ => format!("{tag} OK whatever\r\n"),
            })
        },
    )
    .await;
    let e = imap::connect(&Endpoint::new("127.0.0.1", port), &options())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            e,
            Error::StartTlsUnavailable {
                protocol: Protocol::Imap,
                ..
            }
        ),
        "{e:?}"
    );
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter()
            .all(|l| !l.to_ascii_uppercase().contains("AUTHENTICATE")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn imap_preauth_before_tls_is_refused() {
    let (port, seen) = fake(
        "* PREAUTH [CAPABILITY IMAP4rev1] logged in already\r\n",
        |_| None,
    )
    .await;
    let e = imap::connect(&Endpoint::new("127.0.0.1", port), &options())
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, Error::StartTlsUnavailable { .. }), "{e:?}");
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn data_injected_after_the_starttls_reply_is_refused() {
    let (port, _) = fake("220 hostile ESMTP\r\n", |l| {
        Some(
            match l
                .split(' ')
                .next()
                .unwrap_or("")
                .to_ascii_uppercase()
                .as_str()
            {
                "EHLO" => "250-hostile\r\n250 STARTTLS\r\n".into(),
                // a plaintext reply smuggled in front of the handshake
                "STARTTLS" => "220 go ahead\r\n250 AUTH PLAIN\r\n".into(),
                _ => "502 no\r\n".into(),
            },
        )
    })
    .await;
    let e = smtp::connect(&Endpoint::new("127.0.0.1", port), &options())
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
}

struct Tls11Server {
    child: std::process::Child,
    port: u16,
    pki: PathBuf,
}

impl Drop for Tls11Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.pki);
    }
}

/// The Python TLS 1.1-only server, with a certificate from the test PKI (so only the version is wrong).
fn tls11_server(proto: &str) -> Option<Tls11Server> {
    let pki = std::env::temp_dir().join(format!("mss-lps-hostile-{}-{proto}", std::process::id()));
    let ok = Command::new("bash")
        .arg(common::repo_root().join("scripts/lps-operator.sh"))
        .args(["--pki-only", "--dir"])
        .arg(&pki)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::unavailable("openssl is needed for the test PKI");
        return None;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/tls11_server.py");
    let mut child = match Command::new("python3")
        .arg(script)
        .arg(proto)
        .arg(pki.join("pki/server.pem"))
        .arg(pki.join("pki/server.key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            common::unavailable(&format!("python3: {e}"));
            return None;
        }
    };
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("port");
    let port = line.trim().parse().expect("port number");
    Some(Tls11Server { child, port, pki })
}

#[tokio::test]
async fn server_speaking_only_tls_1_1_is_refused() {
    for proto in ["smtp", "imap"] {
        let Some(server) = tls11_server(proto) else {
            return;
        };
        // the server really negotiates TLS 1.1 with a client that allows it
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-starttls",
                proto,
                "-tls1_1",
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
                "-connect",
            ])
            .arg(format!("127.0.0.1:{}", server.port))
            .stdin(Stdio::null())
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Protocol  : TLSv1.1"),
            "the fake does not speak TLS 1.1:\n{text}"
        );

        let roots = TrustRoots::from_pem_file(&server.pki.join("pki/ca.pem")).expect("roots");
        let mut opts = ConnectOptions::new(TlsSettings::new(roots, None).expect("tls"));
        opts.timeouts.command = Duration::from_secs(5);
        let ep = Endpoint::new("localhost", server.port);
        let e = match proto {
            "smtp" => smtp::connect(&ep, &opts).await.err(),
            _ => imap::connect(&ep, &opts).await.err(),
        }
        .expect("refused");
        assert_eq!(
            e.tls_failure(),
            Some(TlsFailure::ProtocolVersion),
            "{proto}: {e:?}"
        );
        assert!(e.is_permanent());
    }
}
