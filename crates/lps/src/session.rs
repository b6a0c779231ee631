//! Sessions of one mailbox (docs/mssante.md L5): the token comes from a [`TokenProvider`] and lives in memory only;
//! connections are reused for several messages, closed after 15 minutes idle or 4 hours of age or when the
//! provider says the PSC session ended, and reopened automatically while the provider still gives a token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mss_types::{BalType, Envelope, MailAddress};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::auth::TokenPolicy;
use crate::discovery::{self, BoxFuture, ServerEndpoints, ServerSource};
use crate::error::Error;
use crate::imap::{
    self, Disposal, Disposed, FetchedMessage, IdleOutcome, ImapSession, Listing, NewMessages,
    SentCopy,
};
use crate::secret::{AccessToken, Secret};
use crate::smtp::{self, ConnectOptions, Login, SendReport, SmtpSession};

/// Why a provider has no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The user's PSC session is over (logout, refresh token invalid): close everything.
    #[error("the PSC session has ended")]
    SessionEnded,
    /// No token right now (intermediate server unreachable, ...).
    #[error("{0}")]
    Unavailable(String),
}

/// Gives the current PSC access token. Implementations keep it in memory only; the refresh is the
/// intermediate server's job (it holds the client secret).
pub trait TokenProvider: Send + Sync {
    /// The token to authenticate with now.
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, TokenError>>;
}

/// One token, given once (a CLI call, a REST request).
#[derive(Debug, Clone)]
pub struct StaticToken(AccessToken);

impl StaticToken {
    /// Wraps the token.
    pub fn new(token: AccessToken) -> Self {
        StaticToken(token)
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, TokenError>> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
}

/// A token the application replaces as the intermediate server refreshes it, and ends at PSC logout.
#[derive(Debug)]
pub struct SharedToken(std::sync::RwLock<Option<AccessToken>>);

impl SharedToken {
    /// Starts with a token.
    pub fn new(token: AccessToken) -> Self {
        SharedToken(std::sync::RwLock::new(Some(token)))
    }

    /// Replaces the token (after a refresh).
    pub fn replace(&self, token: AccessToken) {
        if let Ok(mut g) = self.0.write() {
            *g = Some(token);
        }
    }

    /// The PSC session ended: the next operation closes the sessions and fails with
    /// [`Error::SessionEnded`].
    pub fn end(&self) {
        if let Ok(mut g) = self.0.write() {
            *g = None;
        }
    }
}

impl TokenProvider for SharedToken {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, TokenError>> {
        let t = self
            .0
            .read()
            .map_err(|_| TokenError::Unavailable("token store poisoned".into()))
            .and_then(|g| g.clone().ok_or(TokenError::SessionEnded));
        Box::pin(async move { t })
    }
}

/// How the mailbox authenticates.
#[derive(Clone)]
pub enum Credentials {
    /// PER/ORG: XOAUTH2 with a PSC token.
    Psc {
        /// Where the token comes from.
        provider: Arc<dyn TokenProvider>,
        /// To explain refusals.
        policy: TokenPolicy,
    },
    /// APP: the client certificate of the TLS settings, then AUTH PLAIN with the BAL.
    Certificate {
        /// Password for PLAIN, when the operator wants one.
        password: Option<Secret>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Psc { policy, .. } => f
                .debug_struct("Psc")
                .field("policy", policy)
                .finish_non_exhaustive(),
            Credentials::Certificate { password } => f
                .debug_struct("Certificate")
                .field("password", &password.as_ref().map(|_| "[redacted]"))
                .finish(),
        }
    }
}

/// When sessions close by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Closed after this long unused (PSC: 15 minutes).
    pub idle_timeout: Duration,
    /// Closed after this long open (PSC: 4 hours).
    pub max_age: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: Duration::from_secs(15 * 60),
            max_age: Duration::from_secs(4 * 3600),
        }
    }
}

/// Everything about one mailbox.
#[derive(Debug, Clone)]
pub struct MailboxConfig {
    /// The BAL.
    pub address: MailAddress,
    /// Its type (APP authenticates by certificate, others by PSC token).
    pub bal_type: BalType,
    /// How it authenticates.
    pub credentials: Credentials,
    /// Where its servers are.
    pub servers: ServerSource,
    /// TLS, deadlines, source address.
    pub connect: ConnectOptions,
    /// Idle and age limits.
    pub session: SessionPolicy,
}

struct Slot<T> {
    session: T,
    opened: Instant,
    last_used: Instant,
}

impl<T> Slot<T> {
    fn new(session: T) -> Self {
        let now = Instant::now();
        Slot {
            session,
            opened: now,
            last_used: now,
        }
    }

    fn expired(&self, policy: &SessionPolicy) -> Option<&'static str> {
        if self.opened.elapsed() >= policy.max_age {
            Some("maximum age reached")
        } else if self.last_used.elapsed() >= policy.idle_timeout {
            Some("idle too long")
        } else {
            None
        }
    }
}

/// Counters, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// SMTP sessions opened (authenticated) so far.
    pub smtp_logins: u64,
    /// IMAP sessions opened so far.
    pub imap_logins: u64,
    /// Whether an SMTP session is open now.
    pub smtp_open: bool,
    /// Whether an IMAP session is open now.
    pub imap_open: bool,
}

/// The API LPS client of one mailbox: sends over a reused SMTP session and reads over a reused IMAP
/// session, within the session rules.
pub struct LpsClient {
    cfg: MailboxConfig,
    endpoints: Mutex<Option<ServerEndpoints>>,
    smtp: Mutex<Option<Slot<SmtpSession>>>,
    imap: Mutex<Option<Slot<ImapSession>>>,
    smtp_logins: AtomicU64,
    imap_logins: AtomicU64,
}

/// A token, or the certificate path: what one login needs.
enum LoginMaterial {
    Token(AccessToken),
    Certificate,
}

impl LpsClient {
    /// Checks that the credentials fit the mailbox type (APP: certificate; PER/ORG/CAB: PSC).
    pub fn new(cfg: MailboxConfig) -> Result<Self, Error> {
        match (&cfg.credentials, cfg.bal_type) {
            (Credentials::Certificate { .. }, BalType::App) => {
                if !cfg.connect.tls.has_client_certificate() {
                    return Err(Error::Config {
                        reason: format!(
                            "the APP mailbox {} needs a client certificate",
                            cfg.address
                        ),
                    });
                }
            }
            (Credentials::Psc { .. }, t) if t != BalType::App => {}
            (Credentials::Certificate { .. }, t) => {
                return Err(Error::Config {
                    reason: format!(
                        "a {t} mailbox authenticates with a Pro Santé Connect token, not a certificate"
                    ),
                });
            }
            (Credentials::Psc { .. }, _) => {
                return Err(Error::Config {
                    reason:
                        "an APP mailbox authenticates with a client certificate, not a PSC token"
                            .into(),
                });
            }
        }
        Ok(LpsClient {
            cfg,
            endpoints: Mutex::new(None),
            smtp: Mutex::new(None),
            imap: Mutex::new(None),
            smtp_logins: AtomicU64::new(0),
            imap_logins: AtomicU64::new(0),
        })
    }

    /// The mailbox.
    pub fn address(&self) -> &MailAddress {
        &self.cfg.address
    }

    /// The servers, discovered once from SRV when not given.
    pub async fn endpoints(&self) -> Result<ServerEndpoints, Error> {
        let mut guard = self.endpoints.lock().await;
        if let Some(e) = guard.as_ref() {
            return Ok(e.clone());
        }
        let e = match &self.cfg.servers {
            ServerSource::Explicit(e) => e.clone(),
            ServerSource::Srv(r) => {
                discovery::discover(r.as_ref(), self.cfg.address.domain(), self.cfg.bal_type)
                    .await?
            }
        };
        *guard = Some(e.clone());
        Ok(e)
    }

    /// Counters and state.
    pub async fn stats(&self) -> SessionStats {
        SessionStats {
            smtp_logins: self.smtp_logins.load(Ordering::Relaxed),
            imap_logins: self.imap_logins.load(Ordering::Relaxed),
            smtp_open: self.smtp.lock().await.is_some(),
            imap_open: self.imap.lock().await.is_some(),
        }
    }

    /// The local address of the open SMTP session, if any (diagnostics, tests).
    pub async fn smtp_local_addr(&self) -> Option<std::net::SocketAddr> {
        self.smtp
            .lock()
            .await
            .as_ref()
            .and_then(|s| s.session.local_addr())
    }

    /// Asks the provider; closes everything when the PSC session has ended.
    async fn material(&self) -> Result<LoginMaterial, Error> {
        match &self.cfg.credentials {
            Credentials::Certificate { .. } => Ok(LoginMaterial::Certificate),
            Credentials::Psc { provider, .. } => match provider.token().await {
                Ok(t) => Ok(LoginMaterial::Token(t)),
                Err(TokenError::SessionEnded) => {
                    self.close().await;
                    Err(Error::SessionEnded)
                }
                Err(TokenError::Unavailable(reason)) => Err(Error::TokenUnavailable { reason }),
            },
        }
    }

    fn login<'a>(&'a self, material: &'a LoginMaterial) -> Login<'a> {
        match (material, &self.cfg.credentials) {
            (LoginMaterial::Token(token), Credentials::Psc { policy, .. }) => Login::XOAuth2 {
                user: &self.cfg.address,
                token,
                policy,
            },
            (_, Credentials::Certificate { password }) => Login::Certificate {
                user: &self.cfg.address,
                password: password.as_ref(),
            },
            // material() only builds a token for PSC credentials
            (LoginMaterial::Certificate, Credentials::Psc { .. }) => Login::Certificate {
                user: &self.cfg.address,
                password: None,
            },
        }
    }

    async fn open_smtp(&self, material: &LoginMaterial) -> Result<SmtpSession, Error> {
        let endpoints = self.endpoints().await?;
        let secure = smtp::connect(&endpoints.submission, &self.cfg.connect).await?;
        let session = secure.authenticate(self.login(material)).await?;
        self.smtp_logins.fetch_add(1, Ordering::Relaxed);
        Ok(session)
    }

    async fn open_imap(&self, material: &LoginMaterial) -> Result<ImapSession, Error> {
        let endpoints = self.endpoints().await?;
        let secure = imap::connect(&endpoints.imap, &self.cfg.connect).await?;
        let session = secure.authenticate(self.login(material)).await?;
        self.imap_logins.fetch_add(1, Ordering::Relaxed);
        Ok(session)
    }

    /// Submits a message over the mailbox's SMTP session, opening or reopening it as needed. When a reused
    /// session turns out to be closed by the server before the message content was sent, a new session is
    /// opened (with a fresh token) and the message sent once more.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<SendReport, Error> {
        if envelope.from != self.cfg.address {
            return Err(Error::InvalidMessage {
                reason: format!(
                    "the sender {} is not the mailbox {}",
                    envelope.from, self.cfg.address
                ),
            });
        }
        let material = self.material().await?;
        let mut guard = self.smtp.lock().await;
        self.retire_smtp(&mut guard).await;
        let reused = guard.is_some();
        if guard.is_none() {
            *guard = Some(Slot::new(self.open_smtp(&material).await?));
        }
        let Some(slot) = guard.as_mut() else {
            return Err(Error::ConnectionClosed {
                server: "smtp".into(),
            });
        };
        match slot.session.send_tracked(envelope, message).await {
            Ok(r) => {
                slot.last_used = Instant::now();
                Ok(r)
            }
            Err(f) if reused && f.error.is_connection_lost() && !f.payload_sent => {
                tracing::info!(error = %f.error, "SMTP session lost; reconnecting");
                *guard = None;
                let material = self.material().await?;
                let mut slot = Slot::new(self.open_smtp(&material).await?);
                let r = slot.session.send(envelope, message).await;
                if !slot.session.is_broken() {
                    *guard = Some(slot);
                }
                r
            }
            Err(f) => {
                if slot.session.is_broken() {
                    *guard = None;
                }
                Err(f.error)
            }
        }
    }

    async fn retire_smtp(&self, guard: &mut Option<Slot<SmtpSession>>) {
        let why = match guard.as_ref() {
            Some(s) if s.session.is_broken() => "connection lost",
            Some(s) => match s.expired(&self.cfg.session) {
                Some(why) => why,
                None => return,
            },
            None => return,
        };
        if let Some(s) = guard.take() {
            tracing::debug!(why, "closing the SMTP session");
            let _ = s.session.quit().await;
        }
    }

    async fn retire_imap(&self, guard: &mut Option<Slot<ImapSession>>) {
        let Some(why) = guard.as_ref().and_then(|s| s.expired(&self.cfg.session)) else {
            return;
        };
        if let Some(s) = guard.take() {
            tracing::debug!(why, "closing the IMAP session");
            let _ = s.session.logout().await;
        }
    }

    /// Runs an operation on the IMAP session, opening it as needed and retrying once on a fresh session
    /// when a reused one was closed by the server.
    async fn with_imap<T>(
        &self,
        op: impl for<'s> Fn(&'s mut ImapSession) -> BoxFuture<'s, Result<T, Error>>,
    ) -> Result<T, Error> {
        let material = self.material().await?;
        let mut guard = self.imap.lock().await;
        self.retire_imap(&mut guard).await;
        let reused = guard.is_some();
        if guard.is_none() {
            *guard = Some(Slot::new(self.open_imap(&material).await?));
        }
        let Some(slot) = guard.as_mut() else {
            return Err(Error::ConnectionClosed {
                server: "imap".into(),
            });
        };
        match op(&mut slot.session).await {
            Ok(v) => {
                slot.last_used = Instant::now();
                Ok(v)
            }
            Err(e) if e.is_connection_lost() => {
                *guard = None;
                if !reused {
                    return Err(e);
                }
                tracing::info!(error = %e, "IMAP session lost; reconnecting");
                let material = self.material().await?;
                let mut slot = Slot::new(self.open_imap(&material).await?);
                let r = op(&mut slot.session).await;
                if r.is_ok() {
                    *guard = Some(slot);
                }
                r
            }
            Err(e) => Err(e),
        }
    }

    /// Messages of `mailbox` with a UID above `since_uid`, whole, oldest first (nothing marked read).
    pub async fn fetch_new(
        &self,
        mailbox: &str,
        since_uid: u32,
    ) -> Result<Vec<FetchedMessage>, Error> {
        let mailbox = mailbox.to_owned();
        self.with_imap(move |s| {
            let mailbox = mailbox.clone();
            Box::pin(async move { s.fetch_new(&mailbox, since_uid).await })
        })
        .await
    }

    /// Up to `max` messages of `mailbox` above `since_uid` whose header `name` contains `value` (see
    /// [`ImapSession::fetch_new_with_header`]).
    pub async fn fetch_new_with_header(
        &self,
        mailbox: &str,
        since_uid: u32,
        header: (&str, &str),
        max: usize,
    ) -> Result<NewMessages, Error> {
        let (mailbox, name, value) = (mailbox.to_owned(), header.0.to_owned(), header.1.to_owned());
        self.with_imap(move |s| {
            let (mailbox, name, value) = (mailbox.clone(), name.clone(), value.clone());
            Box::pin(async move {
                s.fetch_new_with_header(&mailbox, since_uid, (&name, &value), max)
                    .await
            })
        })
        .await
    }

    /// The messages of `mailbox` above `since_uid` with their sizes (see [`ImapSession::list_new`]).
    pub async fn list_new(&self, mailbox: &str, since_uid: u32) -> Result<Listing, Error> {
        let mailbox = mailbox.to_owned();
        self.with_imap(move |s| {
            let mailbox = mailbox.clone();
            Box::pin(async move { s.list_new(&mailbox, since_uid).await })
        })
        .await
    }

    /// The listed messages `uids` of `mailbox`, whole, unless its UIDVALIDITY changed (see
    /// [`ImapSession::fetch_listed`]).
    pub async fn fetch_listed(
        &self,
        mailbox: &str,
        uid_validity: u32,
        uids: &[u32],
    ) -> Result<Option<Vec<FetchedMessage>>, Error> {
        let (mailbox, uids) = (mailbox.to_owned(), Arc::new(uids.to_vec()));
        self.with_imap(move |s| {
            let (mailbox, uids) = (mailbox.clone(), Arc::clone(&uids));
            Box::pin(async move { s.fetch_listed(&mailbox, uid_validity, &uids).await })
        })
        .await
    }

    /// Takes handled messages out of `folder` (see [`ImapSession::dispose`]).
    pub async fn dispose(
        &self,
        folder: &str,
        uid_validity: u32,
        uids: &[u32],
        how: &Disposal,
    ) -> Result<Disposed, Error> {
        let (folder, uids, how) = (folder.to_owned(), uids.to_vec(), how.clone());
        self.with_imap(move |s| {
            let (folder, uids, how) = (folder.clone(), uids.clone(), how.clone());
            Box::pin(async move { s.dispose(&folder, uid_validity, &uids, &how).await })
        })
        .await
    }

    /// Files a sent message in the Sent mailbox unless the operator already did.
    pub async fn file_sent_copy(
        &self,
        message: &[u8],
        message_id: Option<&str>,
    ) -> Result<SentCopy, Error> {
        let message = Arc::new(message.to_vec());
        let id = message_id.map(str::to_owned);
        self.with_imap(move |s| {
            let message = Arc::clone(&message);
            let id = id.clone();
            Box::pin(async move { s.file_sent_copy(&message, id.as_deref()).await })
        })
        .await
    }

    /// Waits (IDLE) up to `max` for new messages in `mailbox`.
    pub async fn wait_for_mail(&self, mailbox: &str, max: Duration) -> Result<IdleOutcome, Error> {
        let mailbox = mailbox.to_owned();
        self.with_imap(move |s| {
            let mailbox = mailbox.clone();
            Box::pin(async move {
                if s.selected().is_none_or(|m| m.name != mailbox) {
                    s.examine(&mailbox).await?;
                }
                s.idle(max).await
            })
        })
        .await
    }

    /// Applies the session rules now: closes sessions idle or aged out, and everything when the PSC session
    /// has ended (then returns [`Error::SessionEnded`]). Call it periodically from a service.
    pub async fn maintain(&self) -> Result<(), Error> {
        if let Credentials::Psc { provider, .. } = &self.cfg.credentials
            && let Err(TokenError::SessionEnded) = provider.token().await
        {
            self.close().await;
            return Err(Error::SessionEnded);
        }
        let mut smtp = self.smtp.lock().await;
        self.retire_smtp(&mut smtp).await;
        drop(smtp);
        let mut imap = self.imap.lock().await;
        self.retire_imap(&mut imap).await;
        Ok(())
    }

    /// Closes both sessions (QUIT, LOGOUT).
    pub async fn close(&self) {
        if let Some(s) = self.smtp.lock().await.take() {
            let _ = s.session.quit().await;
        }
        if let Some(s) = self.imap.lock().await.take() {
            let _ = s.session.logout().await;
        }
    }
}
