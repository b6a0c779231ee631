//! The local API LPS operator of mss's client tests (`scripts/lps-operator.sh`: Dovecot fronts validating
//! tokens themselves, Postfix when root), clients of it, the PSC stand-in (the sandbox's,
//! `mss_sandbox::Psc`, whose key the operator's Dovecot trusts), and distinct source addresses for failure
//! tests (Dovecot delays repeated failures per source IP).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mss_lps::{
    AccessToken, ClientIdentity, ConnectOptions, Credentials, Endpoint, LpsClient, MailboxConfig,
    Secret, ServerEndpoints, ServerSource, SessionPolicy, StaticToken, TlsSettings, TokenPolicy,
    TokenProvider, TrustRoots,
};
use mss_types::{BalType, MailAddress};

use crate::{fixture_script, spawn_ready, unavailable};

/// A running test operator; its processes stop when this process exits.
pub struct Operator {
    _child: Child,
    /// The `KEY=VALUE` lines the script printed (ports, paths, mode).
    pub vars: HashMap<String, String>,
}

impl Operator {
    /// A `KEY=VALUE` line of the script (`""` when absent).
    pub fn var(&self, k: &str) -> &str {
        self.vars.get(k).map_or("", String::as_str)
    }
    /// A port the script printed.
    pub fn port(&self, k: &str) -> u16 {
        self.var(k).parse().unwrap_or_else(|_| panic!("port {k}"))
    }
    /// A path the script printed.
    pub fn path(&self, k: &str) -> PathBuf {
        PathBuf::from(self.var(k))
    }
    /// Postfix delivers into the mailboxes (root); otherwise messages are accepted and dropped.
    pub fn delivers(&self) -> bool {
        self.var("MODE") == "postfix"
    }
    /// The test CA.
    pub fn roots(&self) -> TrustRoots {
        TrustRoots::from_pem_file(&self.path("CA")).expect("test CA")
    }
    /// TLS trusting the test CA, without a client certificate (PER boxes).
    pub fn tls(&self) -> TlsSettings {
        TlsSettings::new(self.roots(), None).expect("tls")
    }
    /// The client certificate of the APP box.
    pub fn app_identity(&self) -> ClientIdentity {
        ClientIdentity::from_pkcs12_file(
            &self.path("APP_P12"),
            &Secret::new(self.var("P12_PASSWORD")),
        )
        .expect("p12")
    }
    /// TLS with the APP client certificate.
    pub fn app_tls(&self) -> TlsSettings {
        TlsSettings::new(self.roots(), Some(self.app_identity())).expect("tls")
    }
    /// Submission and IMAP ports of PER boxes (XOAUTH2).
    pub fn per_endpoints(&self) -> ServerEndpoints {
        ServerEndpoints {
            submission: Endpoint::new("localhost", self.port("SUBMISSION_PORT")),
            imap: Endpoint::new("localhost", self.port("IMAP_PORT")),
        }
    }
    /// Submission and IMAP ports of APP boxes (client certificates).
    pub fn app_endpoints(&self) -> ServerEndpoints {
        ServerEndpoints {
            submission: Endpoint::new("localhost", self.port("SUBMISSION_APP_PORT")),
            imap: Endpoint::new("localhost", self.port("IMAP_APP_PORT")),
        }
    }
    /// Connection options: a fresh source address (see [`next_source`]) and a 30 s command timeout.
    pub fn options(&self, tls: TlsSettings) -> ConnectOptions {
        let mut o = ConnectOptions::new(tls);
        o.local_addr = Some(next_source());
        o.timeouts.command = Duration::from_secs(30);
        o
    }
    /// The PSC stand-in, with the key the operator checks tokens against.
    pub fn psc(&self) -> Psc {
        Psc {
            inner: mss_sandbox::Psc::open_or_create(&self.path("PSC_DIR")).expect("PSC stand-in"),
        }
    }
    /// The token policy of the operator's PSC stand-in.
    pub fn policy(&self) -> TokenPolicy {
        TokenPolicy {
            issuers: vec![self.var("PSC_ISSUER").to_owned()],
            user_claim: Some("email".into()),
        }
    }
    /// A PER client for `user` with a valid token, explicit servers, a fresh source address.
    pub fn per_client(&self, user: &str) -> LpsClient {
        let token = self.psc().token(user, TokenKind::Valid);
        self.per_client_with(
            user,
            std::sync::Arc::new(StaticToken::new(token)),
            SessionPolicy::default(),
        )
    }
    /// A PER client for `user` with the given token provider and session policy.
    pub fn per_client_with(
        &self,
        user: &str,
        provider: std::sync::Arc<dyn TokenProvider>,
        session: SessionPolicy,
    ) -> LpsClient {
        LpsClient::new(MailboxConfig {
            address: addr(user),
            bal_type: BalType::Per,
            credentials: Credentials::Psc {
                provider,
                policy: self.policy(),
            },
            servers: ServerSource::Explicit(self.per_endpoints()),
            connect: self.options(self.tls()),
            session,
        })
        .expect("client")
    }
    /// An APP client for `user`, with the client certificate.
    pub fn app_client(&self, user: &str) -> LpsClient {
        LpsClient::new(MailboxConfig {
            address: addr(user),
            bal_type: BalType::App,
            credentials: Credentials::Certificate { password: None },
            servers: ServerSource::Explicit(self.app_endpoints()),
            connect: self.options(self.app_tls()),
            session: SessionPolicy::default(),
        })
        .expect("client")
    }
    /// An IMAP session of a PER mailbox, logged in with a valid token (to put messages in it, look at it).
    pub async fn imap_session(&self, user: &str) -> mss_lps::imap::ImapSession {
        let address = addr(user);
        let token = self.psc().token(user, TokenKind::Valid);
        let policy = self.policy();
        mss_lps::imap::connect(&self.per_endpoints().imap, &self.options(self.tls()))
            .await
            .expect("imap")
            .authenticate(mss_lps::Login::XOAuth2 {
                user: &address,
                token: &token,
                policy: &policy,
            })
            .await
            .expect("login")
    }

    /// Files of a mailbox's maildir INBOX.
    pub fn maildir_files(&self, user: &str) -> Vec<PathBuf> {
        let base = self.path("MAILDIR").join(user);
        ["new", "cur"]
            .iter()
            .flat_map(|d| std::fs::read_dir(base.join(d)).into_iter().flatten())
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect()
    }

    /// The Message-IDs in a mailbox's maildir INBOX with how many copies of each, once `expected` distinct
    /// ones are there or after `wait` (Postfix delivers asynchronously; a duplicate does not end the wait).
    pub fn message_ids(
        &self,
        user: &str,
        expected: usize,
        wait: Duration,
    ) -> HashMap<String, usize> {
        let start = std::time::Instant::now();
        loop {
            let mut ids: HashMap<String, usize> = HashMap::new();
            for f in self.maildir_files(user) {
                if let Some(id) = std::fs::read(&f).ok().and_then(|b| mss_lps::message_id(&b)) {
                    *ids.entry(id).or_default() += 1;
                }
            }
            if ids.len() >= expected || start.elapsed() > wait {
                return ids;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Parses an address (panics on a bad one).
pub fn addr(s: &str) -> MailAddress {
    MailAddress::parse(s).expect("address")
}

static OPERATOR: OnceLock<Option<Operator>> = OnceLock::new();

/// The operator of this test binary, started once; `None` (after printing why) when it cannot run here.
pub fn operator() -> Option<&'static Operator> {
    OPERATOR.get_or_init(start_operator).as_ref()
}

fn free_base() -> u16 {
    crate::free_ports(8, 0)
}

fn start_operator() -> Option<Operator> {
    for bin in ["dovecot", "openssl"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {bin}"))
            .output()
            .map_or(true, |o| !o.status.success())
        {
            unavailable(&format!("{bin} is not installed"));
            return None;
        }
    }
    let mut last = String::new();
    for _ in 0..3 {
        let dir = std::env::temp_dir().join(format!(
            "mss-lps-operator-{}-{}",
            std::process::id(),
            free_base()
        ));
        // the stand-in's key, which the script installs into Dovecot
        if let Err(e) = mss_sandbox::Psc::open_or_create(&dir) {
            last = e.to_string();
            continue;
        }
        match spawn_ready(
            fixture_script("lps-operator.sh")
                .arg("--dir")
                .arg(&dir)
                .arg("--base")
                .arg(free_base().to_string())
                .arg("--cleanup"),
        ) {
            Ok((child, vars)) => {
                return Some(Operator {
                    _child: child,
                    vars,
                });
            }
            Err((_, err)) => last = err,
        }
    }
    unavailable(&format!("the test operator did not start: {last}"));
    None
}

static NEXT_SOURCE: AtomicU8 = AtomicU8::new(0);

/// 127.0.0.x, a new one per call: Dovecot delays logins from an address after failures.
pub fn next_source() -> IpAddr {
    let n = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed);
    let pid_part = (std::process::id() % 50) as u8;
    IpAddr::V4(Ipv4Addr::new(127, 0, 1 + pid_part, 10 + n % 240))
}

/// What kind of token the PSC stand-in issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Valid for five minutes.
    Valid,
    /// Expired five minutes ago.
    Expired,
    /// Signed with the right key by an issuer that is not PSC.
    OtherIssuer,
    /// Valid, but issued for another mailbox.
    OtherUser,
}

/// The PSC stand-in of the operator's directory (the sandbox's RS256 tokens).
pub struct Psc {
    inner: mss_sandbox::Psc,
}

impl Psc {
    /// A token for `user`.
    pub fn token(&self, user: &str, kind: TokenKind) -> AccessToken {
        use mss_sandbox::TokenKind as Kind;
        let valid = Kind::Valid { lifetime: 300 };
        let (user, kind) = match kind {
            TokenKind::Valid => (user, valid),
            TokenKind::Expired => (user, Kind::Expired),
            TokenKind::OtherIssuer => (
                user,
                Kind::Issuer("https://idp.not-psc.test/realms/x".into()),
            ),
            TokenKind::OtherUser => ("someone.else@sante.test", valid),
        };
        AccessToken::new(self.inner.token(user, &kind).expect("token"))
    }
}

/// A message with a unique Message-ID: (Message-ID, bytes).
pub fn message(from: &str, to: &str, subject: &str) -> (String, Vec<u8>) {
    let id = format!(
        "<{}.{}@mss.test>",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::process::id()
    );
    let body = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBonjour,\r\n.ligne qui commence par un point\r\nrésultat joint.\r\n"
    );
    (id, body.into_bytes())
}
