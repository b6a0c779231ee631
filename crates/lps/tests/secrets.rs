//! No token, key or password in any log line, error message or debug output, at the most verbose level,
//! through a successful session and refused logins.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TokenKind, addr, message, operator};
use mss_lps::smtp::{self, Login};
use mss_lps::{Envelope, Secret, imap};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every string a leak could show up as: the token, its parts, the XOAUTH2 initial response and a long
/// prefix of it.
fn forms(token: &str, user: &str) -> Vec<String> {
    let ir = STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
    let mut v = vec![token.to_owned(), ir.clone(), ir[..24].to_owned()];
    v.extend(token.split('.').filter(|p| p.len() > 16).map(str::to_owned));
    v
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_logs_errors_or_debug_output() {
    let Some(op) = operator() else { return };
    let buf = Captured::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let user = "alice@sante.test";
    let good = op.psc().token(user, TokenKind::Valid);
    let expired = op.psc().token(user, TokenKind::Expired);
    let mut secrets = forms(good.expose(), user);
    secrets.extend(forms(expired.expose(), user));
    let p12_password = Secret::new(op.var("P12_PASSWORD").to_owned() + "-wrong");

    // a full session: send, file the copy, read
    let client = op.per_client(user);
    let (id, msg) = message(user, "bob@sante.test", "secret check");
    let env = Envelope {
        from: addr(user),
        recipients: vec![addr("bob@sante.test")],
        dsn: None,
    };
    client.send(&env, &msg).await.expect("send");
    client
        .file_sent_copy(&msg, Some(&id))
        .await
        .expect("sent copy");
    client.fetch_new("INBOX", 0).await.expect("fetch");
    client.close().await;

    // refused logins on both protocols
    let mut reports = Vec::new();
    let policy = op.policy();
    let bal = addr(user);
    let login = Login::XOAuth2 {
        user: &bal,
        token: &expired,
        policy: &policy,
    };
    let ep = op.per_endpoints();
    let e = smtp::connect(&ep.submission, &op.options(op.tls()))
        .await
        .expect("tls")
        .authenticate(login)
        .await
        .err()
        .expect("refused");
    reports.push(format!("{e} {e:?}"));
    let e = imap::connect(&ep.imap, &op.options(op.tls()))
        .await
        .expect("tls")
        .authenticate(login)
        .await
        .err()
        .expect("refused");
    reports.push(format!("{e} {e:?}"));
    let e = mss_lps::ClientIdentity::from_pkcs12_file(&op.path("APP_P12"), &p12_password)
        .expect_err("wrong password");
    reports.push(format!("{e} {e:?}"));
    reports.push(format!("{good:?} {good} {p12_password:?} {p12_password}"));
    let id = op.app_identity();
    reports.push(format!("{id:?}"));

    let logs = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        logs.contains("AUTH XOAUTH2 [redacted]"),
        "the AUTH line is logged, redacted:\n{logs}"
    );
    assert!(logs.contains("AUTHENTICATE XOAUTH2 [redacted]"), "{logs}");
    assert!(
        logs.contains("MAIL FROM:<alice@sante.test>"),
        "protocol lines are logged:\n{logs}"
    );
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "secret in the logs: {s}");
        for r in &reports {
            assert!(!r.contains(s.as_str()), "secret in {r}");
        }
    }
    for r in &reports {
        assert!(!r.contains(p12_password.expose()), "password in {r}");
    }
}
