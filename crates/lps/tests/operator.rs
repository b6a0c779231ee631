//! Against the local operator (scripts/lps-operator.sh): Dovecot IMAP + submission with XOAUTH2 validated
//! by Dovecot's oauth2 passdb, an APP front requiring a client certificate, and (as root) Postfix
//! submission with Dovecot SASL delivering into the Dovecot mailboxes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TokenKind, addr, message, next_source, operator};
use mss_lps::imap::SentCopy;
use mss_lps::smtp::{self, Login};
use mss_lps::{
    AuthFailure, ConnectOptions, Credentials, DnsResolver, DsnNotify, DsnRequest, DsnReturn,
    Endpoint, Envelope, Error, LpsClient, MailboxConfig, ServerSource, SessionPolicy, SharedToken,
    TlsFailure, TlsSettings, TrustRoots, imap,
};
use mss_types::BalType;

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        from: addr(from),
        recipients: to.iter().map(|t| addr(t)).collect(),
        dsn: None,
    }
}

/// Polls the recipient's INBOX over IMAP until the message with `id` arrives (Postfix delivers
/// asynchronously); returns its bytes.
async fn read_back(client: &LpsClient, id: &str) -> Vec<u8> {
    for _ in 0..100 {
        let msgs = client.fetch_new("INBOX", 0).await.expect("fetch");
        if let Some(m) = msgs.into_iter().find(|m| {
            m.body
                .as_ref()
                .is_some_and(|b| String::from_utf8_lossy(b).contains(id))
        }) {
            return m.body.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("message {id} never arrived");
}

#[tokio::test]
async fn per_mailbox_sends_with_xoauth2_and_the_recipient_reads_it_back() {
    let Some(op) = operator() else { return };
    let alice = op.per_client("alice@sante.test");
    let (id, msg) = message("alice@sante.test", "bob@sante.test", "CR de biologie");
    let mut env = envelope("alice@sante.test", &["bob@sante.test", "carol@sante.test"]);
    env.dsn = Some(DsnRequest {
        ret: Some(DsnReturn::Headers),
        envid: Some("mss-test+1".into()),
        notify: vec![DsnNotify::Failure, DsnNotify::Delay],
        orcpt: true,
    });
    let report = alice.send(&env, &msg).await.expect("send");
    assert_eq!(report.accepted().count(), 2, "{report:?}");
    assert!(report.reply.is_positive());
    // Postfix offers DSN, Dovecot's submission server does not
    assert_eq!(report.dsn_ignored, !op.delivers());

    // the sender files its copy; the second time it finds it there
    let first = alice
        .file_sent_copy(&msg, Some(&id))
        .await
        .expect("sent copy");
    assert!(matches!(first, SentCopy::Appended { .. }), "{first:?}");
    let again = alice
        .file_sent_copy(&msg, Some(&id))
        .await
        .expect("sent copy");
    assert!(matches!(again, SentCopy::AlreadyFiled { .. }), "{again:?}");

    if !op.delivers() {
        common::unavailable("no Postfix (not root): the message was accepted but not delivered");
        return;
    }
    let bob = op.per_client("bob@sante.test");
    let body = read_back(&bob, &id).await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("Subject: CR de biologie"), "{text}");
    // dot-stuffing undone by the server, 8-bit text intact
    assert!(
        text.contains("\r\n.ligne qui commence par un point\r\n"),
        "{text}"
    );
    assert!(text.contains("résultat joint."), "{text}");
    assert!(
        op.maildir_files("bob@sante.test")
            .iter()
            .any(|p| std::fs::read_to_string(p).is_ok_and(|s| s.contains(&id))),
        "not in bob's maildir"
    );
    let carol = op.per_client("carol@sante.test");
    read_back(&carol, &id).await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn app_mailbox_sends_with_a_client_certificate() {
    let Some(op) = operator() else { return };
    let labo = op.app_client("labo@sante.test");
    let (id, msg) = message("labo@sante.test", "bob@sante.test", "Résultats");
    let report = labo
        .send(&envelope("labo@sante.test", &["bob@sante.test"]), &msg)
        .await
        .expect("send");
    assert_eq!(report.accepted().count(), 1);
    // the APP front also serves IMAP with the certificate
    let inbox = labo.fetch_new("INBOX", 0).await.expect("imap");
    drop(inbox);
    if op.delivers() {
        let bob = op.per_client("bob@sante.test");
        read_back(&bob, &id).await;
    }
}

#[tokio::test]
async fn one_session_carries_several_messages_and_reopens_after_the_server_closes_it() {
    let Some(op) = operator() else { return };
    // a mailbox of its own: the kick below ends every IMAP session of the user, other tests' too
    let henri = op.per_client("henri@sante.test");
    let env = envelope("henri@sante.test", &["dave@sante.test"]);
    for i in 0..3 {
        let (_, msg) = message("henri@sante.test", "dave@sante.test", &format!("n°{i}"));
        henri.send(&env, &msg).await.expect("send");
    }
    assert_eq!(henri.stats().await.smtp_logins, 1, "connection reused");

    // the server side of our connection goes away (process killed, as on a server restart)
    kill_server_side(op.port("SUBMISSION_PORT"), &henri).await;
    let (_, msg) = message("henri@sante.test", "dave@sante.test", "after restart");
    henri.send(&env, &msg).await.expect("send after reconnect");
    assert_eq!(henri.stats().await.smtp_logins, 2, "reconnected once");

    // IMAP: the operator kicks the user
    henri.fetch_new("INBOX", 0).await.expect("imap");
    let out = std::process::Command::new("doveadm")
        .args([
            "-c",
            &format!("{}/psc.conf", op.var("DIR")),
            "kick",
            "henri@sante.test",
        ])
        .output()
        .expect("doveadm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    henri.fetch_new("INBOX", 0).await.expect("imap after kick");
    assert_eq!(henri.stats().await.imap_logins, 2);
}

/// Kills the server process holding the other end of the client's SMTP connection.
async fn kill_server_side(port: u16, client: &LpsClient) {
    let local = client.smtp_local_addr().await.expect("open session");
    let out = std::process::Command::new("ss")
        .args([
            "-Htnp",
            "state",
            "established",
            &format!("( sport = :{port} and dport = :{} )", local.port()),
        ])
        .output()
        .expect("ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let pid: u32 = text
        .split("pid=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("server process not found: {text}"));
    let status = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn sessions_close_when_idle_and_when_the_psc_session_ends() {
    let Some(op) = operator() else { return };
    let token = op.psc().token("erin@sante.test", TokenKind::Valid);
    let shared = Arc::new(SharedToken::new(token));
    let policy = SessionPolicy {
        idle_timeout: Duration::from_millis(400),
        max_age: Duration::from_secs(3600),
    };
    let erin = op.per_client_with("erin@sante.test", shared.clone(), policy);
    let env = envelope("erin@sante.test", &["bob@sante.test"]);
    let (_, msg) = message("erin@sante.test", "bob@sante.test", "1");
    erin.send(&env, &msg).await.expect("send");
    tokio::time::sleep(Duration::from_millis(600)).await;
    erin.maintain().await.expect("maintain");
    assert!(!erin.stats().await.smtp_open, "closed when idle");
    erin.send(&env, &msg).await.expect("send");
    assert_eq!(
        erin.stats().await.smtp_logins,
        2,
        "reopened with the same PSC session"
    );

    shared.end();
    let err = erin.send(&env, &msg).await.expect_err("session ended");
    assert!(matches!(err, Error::SessionEnded), "{err:?}");
    assert!(err.needs_credentials());
    let stats = erin.stats().await;
    assert!(!stats.smtp_open && !stats.imap_open);
}

/// Connects with a token of the given kind and returns the SMTP and IMAP errors.
async fn refused(kind: TokenKind) -> Option<(Error, Error)> {
    let op = operator()?;
    let user = addr("alice@sante.test");
    let token = op.psc().token(user.as_str(), kind);
    let policy = op.policy();
    let login = Login::XOAuth2 {
        user: &user,
        token: &token,
        policy: &policy,
    };
    let opts = op.options(op.tls());
    let ep = op.per_endpoints();
    let s = smtp::connect(&ep.submission, &opts).await.expect("tls");
    let smtp_err = s.authenticate(login).await.err().expect("smtp refused");
    let opts = op.options(op.tls());
    let i = imap::connect(&ep.imap, &opts).await.expect("tls");
    let imap_err = i.authenticate(login).await.err().expect("imap refused");
    Some((smtp_err, imap_err))
}

fn assert_auth(e: &Error, want: AuthFailure) {
    assert_eq!(e.auth_failure(), Some(want), "{e}");
    assert!(e.needs_credentials() && !e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn expired_token_is_reported_as_expired() {
    let Some((s, i)) = refused(TokenKind::Expired).await else {
        return;
    };
    assert_auth(&s, AuthFailure::TokenExpired);
    assert_auth(&i, AuthFailure::TokenExpired);
    // the server's own words are kept: 535 5.7.8 / NO [AUTHENTICATIONFAILED]
    assert!(s.to_string().contains("535"), "{s}");
    assert!(i.to_string().contains("AUTHENTICATIONFAILED"), "{i}");
}

#[tokio::test]
async fn token_of_another_user_is_reported_as_wrong_user() {
    let Some((s, i)) = refused(TokenKind::OtherUser).await else {
        return;
    };
    assert_auth(&s, AuthFailure::WrongUser);
    assert_auth(&i, AuthFailure::WrongUser);
}

#[tokio::test]
async fn token_not_issued_by_psc_is_reported_as_untrusted_issuer() {
    let Some((s, i)) = refused(TokenKind::OtherIssuer).await else {
        return;
    };
    assert_auth(&s, AuthFailure::UntrustedIssuer);
    assert_auth(&i, AuthFailure::UntrustedIssuer);
}

#[tokio::test]
async fn untrusted_server_certificate_is_refused() {
    let Some(op) = operator() else { return };
    let rogue = TrustRoots::from_pem_file(&op.path("ROGUE_CA")).expect("rogue CA");
    let opts = op.options(TlsSettings::new(rogue, None).expect("tls"));
    let ep = op.per_endpoints();
    let e = smtp::connect(&ep.submission, &opts)
        .await
        .err()
        .expect("refused");
    assert_eq!(
        e.tls_failure(),
        Some(TlsFailure::UntrustedCertificate),
        "{e}"
    );
    assert!(e.is_permanent());
    let e = imap::connect(&ep.imap, &opts).await.err().expect("refused");
    assert_eq!(
        e.tls_failure(),
        Some(TlsFailure::UntrustedCertificate),
        "{e}"
    );
    // right CA, wrong name
    let opts = op.options(op.tls());
    let mut wrong = Endpoint::new("mail.other.test", op.port("IMAP_PORT"));
    wrong.addrs = vec!["127.0.0.1".parse().expect("ip")];
    let e = imap::connect(&wrong, &opts).await.err().expect("refused");
    assert_eq!(e.tls_failure(), Some(TlsFailure::NameMismatch), "{e}");
}

#[tokio::test]
async fn wrong_client_certificate_is_refused() {
    let Some(op) = operator() else { return };
    let rogue = mss_lps::ClientIdentity::from_pkcs12_file(
        &op.path("ROGUE_APP_P12"),
        &mss_lps::Secret::new(op.var("P12_PASSWORD")),
    )
    .expect("p12");
    let user = addr("labo@sante.test");
    let login = Login::Certificate {
        user: &user,
        password: None,
    };
    let ep = op.app_endpoints();
    let opts = op.options(TlsSettings::new(op.roots(), Some(rogue.clone())).expect("tls"));
    let e = smtp::connect(&ep.submission, &opts)
        .await
        .expect("tls")
        .authenticate(login)
        .await
        .err()
        .expect("refused");
    assert_auth(&e, AuthFailure::CertificateRejected);
    let opts = op.options(TlsSettings::new(op.roots(), Some(rogue)).expect("tls"));
    let e = imap::connect(&ep.imap, &opts)
        .await
        .expect("tls")
        .authenticate(login)
        .await
        .err()
        .expect("refused");
    assert_auth(&e, AuthFailure::CertificateRejected);
    // no certificate at all: refused before anything is sent
    let opts = op.options(op.tls());
    let e = smtp::connect(&ep.submission, &opts)
        .await
        .expect("tls")
        .authenticate(login)
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, Error::Config { .. }), "{e}");
}

#[tokio::test]
async fn srv_records_of_the_domain_configure_both_fronts() {
    let Some(op) = operator() else { return };
    let zone = format!(
        "; sante.test, as an operator publishes it (docs/mssante.md L4)\n\
         _submission._tcp.sante.test. SRV 10 1 {} psc.sante.test.\n\
         _submission._tcp.sante.test. SRV 20 1 {} authcli.sante.test.\n\
         _imap._tcp.sante.test. SRV 10 1 {} psc.sante.test.\n\
         _imap._tcp.sante.test. SRV 20 1 {} authcli.sante.test.\n\
         psc.sante.test. A 127.0.0.1\n\
         authcli.sante.test. A 127.0.0.1\n",
        op.port("SUBMISSION_PORT"),
        op.port("SUBMISSION_APP_PORT"),
        op.port("IMAP_PORT"),
        op.port("IMAP_APP_PORT"),
    );
    let dns = common::ZoneServer::start(&zone);
    let resolver: Arc<dyn mss_lps::SrvResolver> =
        Arc::new(DnsResolver::with_server(dns.addr).expect("resolver"));

    let token = op.psc().token("alice@sante.test", TokenKind::Valid);
    let per = LpsClient::new(MailboxConfig {
        address: addr("alice@sante.test"),
        bal_type: BalType::Per,
        credentials: Credentials::Psc {
            provider: Arc::new(mss_lps::StaticToken::new(token)),
            policy: op.policy(),
        },
        servers: ServerSource::Srv(resolver.clone()),
        connect: op.options(op.tls()),
        session: SessionPolicy::default(),
    })
    .expect("client");
    let ep = per.endpoints().await.expect("discovered");
    assert_eq!(ep.submission.host, "psc.sante.test");
    assert_eq!(ep.imap.port, op.port("IMAP_PORT"));
    let (_, msg) = message("alice@sante.test", "bob@sante.test", "via SRV");
    per.send(&envelope("alice@sante.test", &["bob@sante.test"]), &msg)
        .await
        .expect("send through the discovered PER/ORG front");

    let app = LpsClient::new(MailboxConfig {
        address: addr("labo@sante.test"),
        bal_type: BalType::App,
        credentials: Credentials::Certificate { password: None },
        servers: ServerSource::Srv(resolver.clone()),
        connect: op.options(op.app_tls()),
        session: SessionPolicy::default(),
    })
    .expect("client");
    let ep = app.endpoints().await.expect("discovered");
    assert_eq!(ep.submission.host, "authcli.sante.test");
    assert_eq!(ep.submission.port, op.port("SUBMISSION_APP_PORT"));
    let (_, msg) = message("labo@sante.test", "bob@sante.test", "via SRV");
    app.send(&envelope("labo@sante.test", &["bob@sante.test"]), &msg)
        .await
        .expect("send through the discovered APP front");

    let e = mss_lps::discovery::discover(resolver.as_ref(), "nowhere.test", BalType::Per)
        .await
        .expect_err("no records");
    assert!(matches!(e, Error::NoService { priority: 10, .. }), "{e}");
}

#[tokio::test]
async fn refused_recipients_are_reported_one_by_one() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        common::unavailable("recipient checks need Postfix (root)");
        return;
    }
    let alice = op.per_client("alice@sante.test");
    let (_, msg) = message("alice@sante.test", "bob@sante.test", "partial");
    // Postfix refuses a domain it does not serve (relay denied) and accepts the others
    let report = alice
        .send(
            &envelope("alice@sante.test", &["bob@sante.test", "x@elsewhere.test"]),
            &msg,
        )
        .await
        .expect("partially accepted");
    let refused: Vec<_> = report.refused().collect();
    assert_eq!(refused.len(), 1, "{report:?}");
    assert_eq!(refused[0].recipient.as_str(), "x@elsewhere.test");
    let e = alice
        .send(&envelope("alice@sante.test", &["x@elsewhere.test"]), &msg)
        .await
        .expect_err("all refused");
    assert!(matches!(e, Error::RecipientsRefused { .. }), "{e}");
    assert!(e.is_permanent());
    // the session survives refusals
    alice
        .send(&envelope("alice@sante.test", &["bob@sante.test"]), &msg)
        .await
        .expect("still usable");
    assert_eq!(alice.stats().await.smtp_logins, 1);
    // SIZE is checked before DATA
    let big = vec![b'a'; 26 * 1024 * 1024];
    let e = alice
        .send(&envelope("alice@sante.test", &["bob@sante.test"]), &big)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            e,
            Error::MessageTooLarge {
                limit: 26_214_400,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn idle_wakes_up_on_new_mail() {
    let Some(op) = operator() else { return };
    if !op.delivers() {
        common::unavailable("delivery needs Postfix (root)");
        return;
    }
    let frank = op.per_client("frank@sante.test");
    // make sure the mailbox exists, then wait while a message is sent
    let _ = frank.fetch_new("INBOX", 0).await;
    let alice = op.per_client("alice@sante.test");
    let (_, msg) = message("alice@sante.test", "frank@sante.test", "idle");
    let sender = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        alice
            .send(&envelope("alice@sante.test", &["frank@sante.test"]), &msg)
            .await
            .expect("send");
    };
    let (outcome, ()) = tokio::join!(
        frank.wait_for_mail("INBOX", Duration::from_secs(20)),
        sender
    );
    let outcome = outcome.expect("idle");
    assert!(outcome.exists.is_some_and(|n| n >= 1), "{outcome:?}");
}

#[tokio::test]
async fn proof_of_deployment_has_the_agency_form() {
    let Some(op) = operator() else { return };
    let mut connect = ConnectOptions::new(op.tls());
    connect.local_addr = Some(next_source());
    let proof = mss_lps::proof::run(&mss_lps::proof::ProofOptions {
        host: "localhost".into(),
        imap_port: op.port("IMAP_PORT"),
        smtp_port: op.port("SUBMISSION_PORT"),
        ehlo_name: None,
        connect,
    })
    .await
    .expect("proof");
    for c in &proof.checks {
        assert_eq!(c.verdict, mss_lps::proof::Verdict::Pass, "{c:?}");
    }
    assert!(proof.passed());
    let t = &proof.transcript;
    let imap_start = t.find("LISTING IMAP").expect("IMAP section");
    let smtp_start = t.find("LISTING SMTP").expect("SMTP section");
    assert!(imap_start < smtp_start);
    // the IMAP listing of the ANS proof-of-deployment procedure, line by line (docs/mssante.md L6)
    let imap: Vec<&str> = t[imap_start..smtp_start]
        .lines()
        .skip(2)
        .filter(|l| !l.is_empty())
        .collect();
    let port = op.port("IMAP_PORT");
    let expect_imap: [&dyn Fn(&str) -> bool; 11] = [
        &|l| l == format!("telnet localhost {port}"),
        &|l| l.starts_with("Trying ") && l.ends_with("..."),
        &|l| l == "Connected to localhost.",
        &|l| l == "Escape character is '^]'.",
        &|l| l.starts_with("* OK"),
        &|l| l == "C01 CAPABILITY",
        &|l| l.starts_with("* CAPABILITY ") && l.contains("STARTTLS"),
        &|l| l.starts_with("C01 OK"),
        &|l| l == "C02 LOGOUT",
        &|l| l.starts_with("* BYE"),
        &|l| l.starts_with("C02 OK"),
    ];
    for (i, check) in expect_imap.iter().enumerate() {
        assert!(
            check(imap.get(i).copied().unwrap_or("")),
            "IMAP line {i}: {:?}\n{t}",
            imap.get(i)
        );
    }
    assert_eq!(
        imap.get(11).copied(),
        Some("Connection closed by foreign host."),
        "{t}"
    );
    // its SMTP listing (docs/mssante.md L6)
    let smtp: Vec<&str> = t[smtp_start..]
        .lines()
        .skip(2)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        smtp[0],
        format!("telnet localhost {}", op.port("SUBMISSION_PORT"))
    );
    assert_eq!(smtp[2], "Connected to localhost.");
    assert_eq!(smtp[3], "Escape character is '^]'.");
    assert!(smtp[4].starts_with("220 "), "{t}");
    assert_eq!(smtp[5], "EHLO localhost");
    let quit = smtp.iter().position(|l| *l == "QUIT").expect("QUIT");
    assert!(
        smtp[6..quit - 1].iter().all(|l| l.starts_with("250-")),
        "{t}"
    );
    assert!(smtp[quit - 1].starts_with("250 "), "{t}");
    assert!(smtp[6..quit].iter().any(|l| l.ends_with("STARTTLS")), "{t}");
    assert!(smtp[quit + 1].starts_with("221 "), "{t}");
    assert_eq!(smtp[quit + 2], "Connection closed by foreign host.");
    // an APP front offers AUTH PLAIN after STARTTLS
    let mut connect = ConnectOptions::new(op.tls());
    connect.local_addr = Some(next_source());
    let app = mss_lps::proof::run(&mss_lps::proof::ProofOptions {
        host: "localhost".into(),
        imap_port: op.port("IMAP_APP_PORT"),
        smtp_port: op.port("SUBMISSION_APP_PORT"),
        ehlo_name: None,
        connect,
    })
    .await
    .expect("proof");
    let smtp_auth = app
        .checks
        .iter()
        .find(|c| c.point.starts_with("SMTP after STARTTLS"))
        .expect("check");
    assert_eq!(smtp_auth.verdict, mss_lps::proof::Verdict::Pass);
    assert!(smtp_auth.detail.contains("PLAIN"));
    // the APP IMAP front has no XOAUTH2: that point fails, and says so
    assert!(!app.passed());
}

#[tokio::test]
async fn a_closed_port_fails_the_proof_without_an_error() {
    let port = mss_testing::free_ports(1, 11);
    let tls = TlsSettings::new(
        TrustRoots::from_pem(CA_FOR_CONFIG, "test").expect("roots"),
        None,
    )
    .expect("tls");
    let proof = mss_lps::proof::run(&mss_lps::proof::ProofOptions {
        host: "127.0.0.1".into(),
        imap_port: port,
        smtp_port: port,
        ehlo_name: None,
        connect: ConnectOptions::new(tls),
    })
    .await
    .expect("proof");
    assert!(!proof.passed());
    assert!(
        proof
            .transcript
            .contains("telnet: Unable to connect to remote host")
    );
}

/// Any valid certificate will do to build a configuration that never gets used.
const CA_FOR_CONFIG: &[u8] = include_bytes!("data/config-only-ca.pem");

/// Retention's fallbacks (docs/mssante.md R5) on a server without UIDPLUS nor MOVE (the operator's
/// Dovecot, as it answers clients from 127.0.0.254): a deleted message is only flagged, a moved one
/// copied then flagged, and nothing is expunged, least of all a message another client flagged.
#[tokio::test]
async fn without_uidplus_nor_move_retention_flags_and_never_expunges() {
    let Some(op) = operator() else { return };
    let user = format!(
        "lean{}.{}@sante.test",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let mut full = op.imap_session(&user).await;
    let mut uids = Vec::new();
    for (subject, flags) in [
        ("ours-1", &[][..]),
        ("theirs", &["\\Deleted"][..]),
        ("ours-2", &[]),
    ] {
        let (_, m) = message("alice@sante.test", &user, subject);
        let uid = full.append("INBOX", flags, &m).await.expect("append");
        uids.push(uid.expect("the full server has UIDPLUS"));
    }
    let [ours_1, theirs, ours_2] = uids[..] else {
        panic!("three appended")
    };
    let validity = full
        .examine("INBOX")
        .await
        .expect("examine")
        .uid_validity
        .expect("uidvalidity");

    let mut o = op.options(op.tls());
    o.local_addr = Some("127.0.0.254".parse().expect("ip"));
    let token = op.psc().token(&user, TokenKind::Valid);
    let policy = op.policy();
    let mut lean = imap::connect(&op.per_endpoints().imap, &o)
        .await
        .expect("imap")
        .authenticate(Login::XOAuth2 {
            user: &addr(&user),
            token: &token,
            policy: &policy,
        })
        .await
        .expect("login");
    assert!(full.capabilities().has("UIDPLUS") && full.capabilities().has("MOVE"));
    assert!(!lean.capabilities().has("UIDPLUS") && !lean.capabilities().has("MOVE"));
    assert_eq!(
        lean.dispose("INBOX", validity, &[ours_1], &imap::Disposal::Delete)
            .await
            .expect("delete"),
        imap::Disposed::FlaggedOnly
    );
    assert_eq!(
        lean.dispose(
            "INBOX",
            validity,
            &[ours_2],
            &imap::Disposal::Move("Handled".into())
        )
        .await
        .expect("move"),
        imap::Disposed::FlaggedOnly
    );
    lean.logout().await.expect("logout");

    // all three still there, each flagged \Deleted (the other client's message untouched otherwise)
    full.examine("INBOX").await.expect("examine");
    let flags: Vec<(u32, bool)> = full
        .uid_fetch(&[ours_1, theirs, ours_2])
        .await
        .expect("fetch")
        .iter()
        .map(|m| {
            (
                m.uid.unwrap_or(0),
                m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted")),
            )
        })
        .collect();
    assert_eq!(flags, [(ours_1, true), (theirs, true), (ours_2, true)]);
    // the moved one was copied first
    full.examine("Handled").await.expect("examine");
    let copied = full.uid_search("ALL").await.expect("search");
    let copied = full.uid_fetch(&copied).await.expect("fetch");
    assert_eq!(copied.len(), 1);
    assert!(
        String::from_utf8_lossy(copied[0].body.as_deref().unwrap_or_default()).contains("ours-2")
    );
    full.logout().await.expect("logout");
}
