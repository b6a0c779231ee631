//! IMAP client for the API LPS: CAPABILITY, STARTTLS (mandatory), `AUTHENTICATE XOAUTH2` with SASL-IR (or
//! PLAIN after a client certificate), SELECT/EXAMINE, UID SEARCH/FETCH, APPEND, IDLE, UID STORE/EXPUNGE/MOVE/COPY
//! (retention), LOGOUT.
//!
//! Written on the protocol rather than on async-imap: async-imap has no SASL-IR, no TLS of its own, and folds
//! RFC 5530 response codes into strings, which the typed authentication errors need. Like SMTP, a typestate
//! (`connect` → [`ImapSecure`] → [`ImapSession`]) keeps credentials behind TLS.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub use crate::imap_response::{FetchedMessage, ImapStatus, ListEntry, ResponseCode, Status};
pub(crate) use crate::imap_response::{Response, Segment, Untagged};

use crate::auth::Login;
use crate::auth::{self, OAuthChallenge, Refusal, TokenPolicy};
use crate::conn::ConnectOptions;
use crate::conn::{self, Endpoint, LineConn, Redact, Timeouts};
use crate::error::{AuthFailure, Error, Protocol};
use crate::imap_response;
use crate::secret::{self, AccessToken};

type Tls = TlsStream<TcpStream>;

/// Largest literal accepted from a server (a message is at most 25 MB in MSSanté, docs/mssante.md M5).
const MAX_LITERAL: usize = 64 * 1024 * 1024;

/// Capabilities, as announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    /// Whether a capability is present (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.0.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Whether `AUTH=<mechanism>` is present.
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.has(&format!("AUTH={mechanism}"))
    }

    /// All of them, in the server's order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// What SELECT/EXAMINE tells about a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Name as given.
    pub name: String,
    /// Number of messages.
    pub exists: u32,
    /// Recent messages.
    pub recent: u32,
    /// UIDVALIDITY.
    pub uid_validity: Option<u32>,
    /// Predicted next UID.
    pub uid_next: Option<u32>,
    /// Opened read-only (EXAMINE).
    pub read_only: bool,
}

/// What happened to the copy of a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentCopy {
    /// The operator had already filed it (same Message-ID found).
    AlreadyFiled {
        /// Mailbox searched.
        mailbox: String,
    },
    /// mss appended it.
    Appended {
        /// Mailbox.
        mailbox: String,
        /// Its UID, when the server says (UIDPLUS).
        uid: Option<u32>,
    },
}

/// How a handled message leaves a folder (docs/mssante.md R5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposal {
    /// Flagged `\Deleted` and expunged by UID (UIDPLUS), never by a plain EXPUNGE.
    Delete,
    /// Moved to this folder (created when missing): UID MOVE when offered, else UID COPY then as
    /// [`Disposal::Delete`].
    Move(String),
}

/// What [`ImapSession::dispose`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposed {
    /// The messages are gone from the folder (expunged, or moved).
    Removed,
    /// Flagged `\Deleted` (copied first when moving) but not expunged: the server offers no UIDPLUS, and a
    /// plain EXPUNGE would also remove what other clients flagged. The next EXPUNGE of any client removes
    /// them.
    FlaggedOnly,
    /// The folder's UIDVALIDITY is not the one the UIDs belong to: nothing was done.
    ValidityChanged(Option<u32>),
}

/// What [`ImapSession::list_new`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The mailbox as EXAMINE saw it (UIDVALIDITY: a change means UIDs were renumbered).
    pub status: MailboxStatus,
    /// The UIDs above the mark and each message's size (RFC822.SIZE), oldest first.
    pub messages: Vec<(u32, u64)>,
    /// Every UID up to this one is listed or no longer exists (UIDNEXT - 1 when the server says it).
    pub upper: u32,
}

/// What [`ImapSession::fetch_new_with_header`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessages {
    /// The mailbox as EXAMINE saw it (UIDVALIDITY: a change means UIDs were renumbered).
    pub status: MailboxStatus,
    /// The matching messages, oldest first.
    pub messages: Vec<FetchedMessage>,
    /// Every UID up to this one was returned or does not match.
    pub scanned_to: u32,
}

/// What [`parse_server_stream`] made of a server's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Responses parsed.
    pub parsed: usize,
    /// Responses refused as malformed (a protocol error on a live connection).
    pub malformed: usize,
    /// The messages of the FETCH responses, in order.
    pub fetched: Vec<FetchedMessage>,
    /// The sequence numbers of the EXPUNGE responses, in order.
    pub expunged: Vec<u32>,
}

/// Reads `data` as a server's stream of responses, exactly as a session does (lines, `{n}` literals up
/// to the session's limit), and parses each. The parser's face for fuzzing and property tests
/// (`mss_testing::fuzzing::imap_stream`): whatever the bytes, it returns.
pub fn parse_server_stream(data: &[u8]) -> StreamSummary {
    let mut out = StreamSummary::default();
    for r in imap_response::parse_stream(data, MAX_LITERAL) {
        match r {
            Ok(Response::Untagged(Untagged::Fetch(m))) => {
                out.parsed += 1;
                out.fetched.push(m);
            }
            Ok(Response::Untagged(Untagged::Expunge(n))) => {
                out.parsed += 1;
                out.expunged.push(n);
            }
            Ok(_) => out.parsed += 1,
            Err(_) => out.malformed += 1,
        }
    }
    out
}

/// How IDLE ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleOutcome {
    /// The new message count, when the server announced one.
    pub exists: Option<u32>,
}

struct Conn<S> {
    line: LineConn<S>,
    next_tag: u32,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Conn<S> {
    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("A{}", self.next_tag)
    }

    /// Reads one complete response (lines and literals).
    async fn read_response_within(&mut self, timeout: Duration) -> Result<Response, Error> {
        let mut segments = Vec::new();
        let mut line = self.line.read_line_within(timeout).await?;
        loop {
            let lit = imap_response::literal_at_end(&line);
            segments.push(Segment::Text(line));
            match lit {
                Some(n) if n > MAX_LITERAL => {
                    return Err(self.line.protocol(format!("literal of {n} bytes")));
                }
                Some(n) => {
                    segments.push(Segment::Literal(self.line.read_exact_bytes(n).await?));
                    line = self.line.read_line_within(timeout).await?;
                }
                None => break,
            }
        }
        imap_response::parse(&segments).map_err(|e| self.line.protocol(e))
    }

    async fn read_response(&mut self) -> Result<Response, Error> {
        let t = self.line.timeout;
        self.read_response_within(t).await
    }

    /// Sends `tag command` and collects untagged data until the tagged status.
    async fn run(&mut self, command: &str) -> Result<(Vec<Untagged>, ImapStatus), Error> {
        let tag = self.tag();
        self.line
            .send(format!("{tag} {command}\r\n").as_bytes(), Redact::No)
            .await?;
        self.collect(&tag).await
    }

    async fn collect(&mut self, tag: &str) -> Result<(Vec<Untagged>, ImapStatus), Error> {
        let mut data = Vec::new();
        let mut bye: Option<ImapStatus> = None;
        loop {
            let r = match self.read_response().await {
                Ok(r) => r,
                Err(Error::ConnectionClosed { server }) => {
                    return Err(match bye {
                        Some(b) => Error::ServerShutdown {
                            server,
                            reply: b.to_string(),
                        },
                        None => Error::ConnectionClosed { server },
                    });
                }
                Err(e) => return Err(e),
            };
            match r {
                Response::Tagged { tag: t, status } if t == tag => return Ok((data, status)),
                Response::Tagged { tag: t, .. } => {
                    return Err(self.line.protocol(format!("unexpected tag {t}")));
                }
                Response::Untagged(Untagged::Status(s)) if s.status == Status::Bye => {
                    bye = Some(s);
                }
                Response::Untagged(u) => data.push(u),
                Response::Continuation(_) => {
                    return Err(self.line.protocol("unexpected continuation request"));
                }
            }
        }
    }

    async fn capability(&mut self) -> Result<Capabilities, Error> {
        let (data, status) = self.run("CAPABILITY").await?;
        self.expect_ok("CAPABILITY", status)?;
        Ok(Capabilities(
            data.into_iter()
                .filter_map(|u| match u {
                    Untagged::Capability(c) => Some(c),
                    _ => None,
                })
                .flatten()
                .collect(),
        ))
    }

    fn expect_ok(&self, command: &str, status: ImapStatus) -> Result<ImapStatus, Error> {
        if status.status == Status::Ok {
            Ok(status)
        } else {
            Err(Error::Imap {
                server: self.line.server.clone(),
                command: command.to_owned(),
                status: Box::new(status),
            })
        }
    }
}

/// Connects, reads the greeting, asks CAPABILITY, upgrades with STARTTLS (refusing to go on without it)
/// and asks CAPABILITY again. Nothing that authenticates has been sent when this returns.
pub async fn connect(endpoint: &Endpoint, opts: &ConnectOptions) -> Result<ImapSecure, Error> {
    let server = endpoint.label();
    let tcp = conn::connect_tcp(endpoint, opts.local_addr, opts.timeouts.connect).await?;
    let mut plain = Conn {
        line: LineConn::new(tcp, server.clone(), "imap", opts.timeouts.command),
        next_tag: 0,
    };
    let greeting = match plain.read_response().await? {
        Response::Untagged(Untagged::Status(s)) => s,
        _ => return Err(plain.line.protocol("no greeting")),
    };
    match greeting.status {
        Status::Ok => {}
        Status::PreAuth => {
            // an already authenticated session before TLS cannot be upgraded (RFC 3501 §6.2.1)
            return Err(Error::StartTlsUnavailable {
                server,
                protocol: Protocol::Imap,
            });
        }
        _ => {
            return Err(Error::ServerShutdown {
                server,
                reply: greeting.to_string(),
            });
        }
    }
    let caps = plain.capability().await?;
    if !caps.has("STARTTLS") {
        let _ = plain.run("LOGOUT").await;
        return Err(Error::StartTlsUnavailable {
            server,
            protocol: Protocol::Imap,
        });
    }
    let (_, status) = plain.run("STARTTLS").await?;
    if status.status != Status::Ok {
        return Err(Error::StartTlsRefused {
            server,
            reply: status.to_string(),
        });
    }
    let next_tag = plain.next_tag;
    let tcp = plain.line.into_inner_for_tls()?;
    let tls = opts
        .tls
        .handshake(tcp, &endpoint.host, &server, opts.timeouts.command)
        .await?;
    let mut conn = Conn {
        line: LineConn::new(tls, server, "imap", opts.timeouts.command),
        next_tag,
    };
    // capabilities from before TLS are forgotten (RFC 3501 §6.2.1)
    let caps = conn.capability().await?;
    Ok(ImapSecure {
        conn,
        caps,
        timeouts: opts.timeouts,
        has_client_cert: opts.tls.has_client_certificate(),
    })
}

/// A TLS-protected IMAP connection, not yet authenticated.
pub struct ImapSecure {
    conn: Conn<Tls>,
    caps: Capabilities,
    timeouts: Timeouts,
    has_client_cert: bool,
}

impl ImapSecure {
    /// The capabilities after STARTTLS.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// TLS version and cipher suite.
    pub fn tls_description(&self) -> String {
        crate::tls::describe(self.conn.line.get_ref())
    }

    /// `AUTHENTICATE XOAUTH2 <initial response>` (SASL-IR), or PLAIN with a client certificate. An error
    /// challenge (`+ <base64 JSON>`) is answered with an empty line and decoded.
    pub async fn authenticate(mut self, login: Login<'_>) -> Result<ImapSession, Error> {
        let server = self.conn.line.server.clone();
        let user = login.user().to_string();
        let (method, mechanism, ir, token, policy) = login.sasl(self.has_client_cert)?;
        if !self.caps.has_auth(mechanism) {
            let _ = self.conn.run("LOGOUT").await;
            return Err(Error::Auth {
                server,
                user,
                failure: AuthFailure::MechanismUnavailable,
                reply: format!("AUTH={mechanism} not among the capabilities"),
            });
        }
        let tag = self.conn.tag();
        let sasl_ir = self.caps.has("SASL-IR");
        if sasl_ir {
            let line = zeroize::Zeroizing::new(format!(
                "{tag} AUTHENTICATE {mechanism} {}\r\n",
                ir.expose()
            ));
            self.conn
                .line
                .send(line.as_bytes(), Redact::KeepWords(3))
                .await?;
        } else {
            self.conn
                .line
                .send(
                    format!("{tag} AUTHENTICATE {mechanism}\r\n").as_bytes(),
                    Redact::No,
                )
                .await?;
        }
        let mut ir_pending = !sasl_ir;
        let mut challenge = None;
        let status = loop {
            match self.conn.read_response().await? {
                Response::Continuation(text) => {
                    if ir_pending {
                        ir_pending = false;
                        let line = zeroize::Zeroizing::new(format!("{}\r\n", ir.expose()));
                        self.conn.line.send(line.as_bytes(), Redact::All).await?;
                    } else {
                        // an error challenge: the exchange ends with an empty response
                        challenge = challenge.or_else(|| OAuthChallenge::decode(&text));
                        self.conn.line.send(b"\r\n", Redact::No).await?;
                    }
                }
                Response::Tagged { tag: t, status } if t == tag => break status,
                Response::Tagged { tag: t, .. } => {
                    return Err(self.conn.line.protocol(format!("unexpected tag {t}")));
                }
                Response::Untagged(Untagged::Status(s)) if s.status == Status::Bye => {
                    return Err(Error::ServerShutdown {
                        server,
                        reply: s.to_string(),
                    });
                }
                Response::Untagged(_) => {}
            }
        };
        if status.status == Status::Ok {
            tracing::debug!(server, user, mechanism, "authenticated");
            let caps = match status.code {
                Some(ResponseCode::Capability(c)) if !c.is_empty() => Capabilities(c),
                _ => self.conn.capability().await?,
            };
            return Ok(ImapSession {
                conn: self.conn,
                caps,
                timeouts: self.timeouts,
                selected: None,
            });
        }
        let failure = auth::classify(
            method,
            Refusal::Imap(&status),
            challenge.as_ref(),
            token,
            &user,
            policy.unwrap_or(&TokenPolicy::default()),
        );
        let secrets = [ir.expose(), token.map_or("", AccessToken::expose)];
        Err(Error::Auth {
            server,
            user,
            failure,
            reply: secret::scrub(&status.to_string(), &secrets),
        })
    }

    /// LOGOUT without authenticating.
    pub async fn logout(mut self) -> Result<(), Error> {
        let _ = self.conn.run("LOGOUT").await?;
        Ok(())
    }
}

/// An authenticated IMAP session.
pub struct ImapSession {
    conn: Conn<Tls>,
    caps: Capabilities,
    timeouts: Timeouts,
    selected: Option<MailboxStatus>,
}

fn quoted(name: &str) -> Result<String, Error> {
    imap_response::quote(name).ok_or_else(|| Error::Config {
        reason: format!("mailbox name {name:?} must be ASCII (modified UTF-7) without line breaks"),
    })
}

impl ImapSession {
    /// Capabilities after authentication.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The mailbox currently selected.
    pub fn selected(&self) -> Option<&MailboxStatus> {
        self.selected.as_ref()
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.conn.line.get_ref().get_ref().0.local_addr().ok()
    }

    async fn open(&mut self, name: &str, read_only: bool) -> Result<MailboxStatus, Error> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let (data, status) = self.conn.run(&format!("{verb} {}", quoted(name)?)).await?;
        self.selected = None;
        let status = self.conn.expect_ok(verb, status)?;
        let mut m = MailboxStatus {
            name: name.to_owned(),
            read_only: read_only || status.code == Some(ResponseCode::ReadOnly),
            ..MailboxStatus::default()
        };
        for u in data {
            match u {
                Untagged::Exists(n) => m.exists = n,
                Untagged::Recent(n) => m.recent = n,
                Untagged::Status(s) => match s.code {
                    Some(ResponseCode::UidValidity(v)) => m.uid_validity = Some(v),
                    Some(ResponseCode::UidNext(v)) => m.uid_next = Some(v),
                    _ => {}
                },
                _ => {}
            }
        }
        self.selected = Some(m.clone());
        Ok(m)
    }

    /// SELECT (read-write).
    pub async fn select(&mut self, mailbox: &str) -> Result<MailboxStatus, Error> {
        self.open(mailbox, false).await
    }

    /// EXAMINE (read-only: fetching does not set `\Seen`).
    pub async fn examine(&mut self, mailbox: &str) -> Result<MailboxStatus, Error> {
        self.open(mailbox, true).await
    }

    /// `UID SEARCH <criteria>` in the selected mailbox. `criteria` is IMAP search syntax from the program,
    /// never from outside input.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, Error> {
        if criteria.contains(['\r', '\n']) {
            return Err(Error::Config {
                reason: "search criteria with a line break".into(),
            });
        }
        let (data, status) = self.conn.run(&format!("UID SEARCH {criteria}")).await?;
        self.conn.expect_ok("UID SEARCH", status)?;
        let mut uids: Vec<u32> = data
            .into_iter()
            .filter_map(|u| match u {
                Untagged::Search(v) => Some(v),
                _ => None,
            })
            .flatten()
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// `UID FETCH` of whole messages (`BODY.PEEK[]`: the `\Seen` flag is left alone), with UID, flags, size
    /// and internal date.
    pub async fn uid_fetch(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, Error> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = imap_response::uid_set(uids);
        let saved = self.conn.line.timeout;
        self.conn.line.timeout = self.timeouts.data;
        let result = self
            .conn
            .run(&format!(
                "UID FETCH {set} (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])"
            ))
            .await;
        self.conn.line.timeout = saved;
        let (data, status) = result?;
        self.conn.expect_ok("UID FETCH", status)?;
        let mut out: Vec<FetchedMessage> = data
            .into_iter()
            .filter_map(|u| match u {
                Untagged::Fetch(m) if m.uid.is_some() && m.body.is_some() => Some(m),
                _ => None,
            })
            .collect();
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    /// Messages of `mailbox` with a UID above `since_uid` (0: all), fetched whole, oldest first. The mailbox
    /// is opened with EXAMINE so nothing is marked as read.
    pub async fn fetch_new(
        &mut self,
        mailbox: &str,
        since_uid: u32,
    ) -> Result<Vec<FetchedMessage>, Error> {
        self.examine(mailbox).await?;
        let from = since_uid.saturating_add(1);
        // `n:*` always includes the last message even when its UID is below n: filter
        let uids: Vec<u32> = self
            .uid_search(&format!("UID {from}:*"))
            .await?
            .into_iter()
            .filter(|u| *u > since_uid)
            .collect();
        self.uid_fetch(&uids).await
    }

    /// Up to `max` messages of `mailbox` above `since_uid` whose header `name` contains `value`, fetched
    /// whole, oldest first, with how far the mailbox was looked at: every UID up to
    /// [`NewMessages::scanned_to`] was returned or does not match, so a reader that keeps it as its
    /// high-water mark never reads a message twice nor skips one. Opened with EXAMINE (nothing marked read).
    pub async fn fetch_new_with_header(
        &mut self,
        mailbox: &str,
        since_uid: u32,
        (name, value): (&str, &str),
        max: usize,
    ) -> Result<NewMessages, Error> {
        let (Some(name_q), Some(value_q)) =
            (imap_response::quote(name), imap_response::quote(value))
        else {
            return Err(Error::Config {
                reason: "header search: ASCII without line breaks only".into(),
            });
        };
        self.fetch_new_matching(
            mailbox,
            since_uid,
            Some(format!("HEADER {name_q} {value_q}")),
            max,
        )
        .await
    }

    /// The messages of `mailbox` above `since_uid` with their sizes (`UID FETCH from:last (RFC822.SIZE)`,
    /// no bytes), oldest first: what a reader that keeps every message plans its fetches on
    /// (docs/mssante.md R1). Opened with EXAMINE; a message that arrives later gets a UID above
    /// [`Listing::upper`] and is left for the next listing.
    pub async fn list_new(&mut self, mailbox: &str, since_uid: u32) -> Result<Listing, Error> {
        let status = self.examine(mailbox).await?;
        let from = since_uid.saturating_add(1);
        let set = match status.uid_next {
            // messages that arrive after EXAMINE get a UID >= UIDNEXT: the listing stops below it
            Some(next) if next.saturating_sub(1) <= since_uid => {
                return Ok(Listing {
                    status,
                    messages: Vec::new(),
                    upper: since_uid,
                });
            }
            Some(next) => format!("{from}:{}", next - 1),
            None => format!("{from}:*"),
        };
        let (data, st) = self
            .conn
            .run(&format!("UID FETCH {set} (UID RFC822.SIZE)"))
            .await?;
        self.conn.expect_ok("UID FETCH", st)?;
        // `n:*` always takes the last message even when its UID is below n: filtered
        let mut messages: Vec<(u32, u64)> = data
            .into_iter()
            .filter_map(|u| match u {
                Untagged::Fetch(FetchedMessage {
                    uid: Some(uid),
                    size,
                    ..
                }) if uid > since_uid => Some((uid, size.unwrap_or(0))),
                _ => None,
            })
            .collect();
        messages.sort_unstable();
        messages.dedup_by_key(|m| m.0);
        let upper = match status.uid_next {
            Some(next) => next - 1,
            None => messages.last().map_or(since_uid, |m| m.0),
        };
        Ok(Listing {
            status,
            messages,
            upper,
        })
    }

    /// The messages `uids` of `mailbox`, fetched whole (see [`ImapSession::uid_fetch`]), provided the
    /// folder's UIDVALIDITY is still `uid_validity` (else `None`, nothing fetched). The folder is opened
    /// again (EXAMINE) only when another one is selected (a new session, or another command in between).
    /// A UID expunged since it was listed is simply absent.
    pub async fn fetch_listed(
        &mut self,
        mailbox: &str,
        uid_validity: u32,
        uids: &[u32],
    ) -> Result<Option<Vec<FetchedMessage>>, Error> {
        let validity = match self.selected() {
            Some(m) if m.name == mailbox => m.uid_validity,
            _ => self.examine(mailbox).await?.uid_validity,
        };
        if validity != Some(uid_validity) {
            return Ok(None);
        }
        self.uid_fetch(uids).await.map(Some)
    }

    /// Up to `max` messages above `since_uid` matching the search `criteria` (all when `None`).
    async fn fetch_new_matching(
        &mut self,
        mailbox: &str,
        since_uid: u32,
        criteria: Option<String>,
        max: usize,
    ) -> Result<NewMessages, Error> {
        let status = self.examine(mailbox).await?;
        let from = since_uid.saturating_add(1);
        // messages that arrive after EXAMINE get a UID >= UIDNEXT: the scan stops below it
        let upper = match status.uid_next {
            Some(next) => next.saturating_sub(1),
            None => self
                .uid_search(&format!("UID {from}:*"))
                .await?
                .into_iter()
                .max()
                .unwrap_or(since_uid),
        };
        if upper <= since_uid {
            return Ok(NewMessages {
                status,
                messages: Vec::new(),
                scanned_to: since_uid,
            });
        }
        let search = match &criteria {
            Some(c) => format!("UID {from}:{upper} {c}"),
            None => format!("UID {from}:{upper}"),
        };
        let mut uids: Vec<u32> = self
            .uid_search(&search)
            .await?
            .into_iter()
            .filter(|u| *u > since_uid && *u <= upper)
            .collect();
        let scanned_to = if uids.len() > max {
            uids.truncate(max.max(1));
            uids.last().copied().unwrap_or(since_uid)
        } else {
            upper
        };
        let messages = self.uid_fetch(&uids).await?;
        // a message expunged between SEARCH and FETCH is simply absent: nothing to keep of it
        Ok(NewMessages {
            status,
            messages,
            scanned_to,
        })
    }

    /// Takes the messages `uids` of `folder` out of it as `how` says, provided the folder's UIDVALIDITY is
    /// still `uid_validity` (else nothing is done). UIDs no longer in the folder are ignored by the server.
    /// Opens the folder read-write (SELECT).
    pub async fn dispose(
        &mut self,
        folder: &str,
        uid_validity: u32,
        uids: &[u32],
        how: &Disposal,
    ) -> Result<Disposed, Error> {
        if let Disposal::Move(to) = how {
            // checked before anything is sent: a name that cannot be quoted must not half-move
            quoted(to)?;
        }
        let status = self.select(folder).await?;
        if status.uid_validity != Some(uid_validity) {
            return Ok(Disposed::ValidityChanged(status.uid_validity));
        }
        if uids.is_empty() {
            return Ok(Disposed::Removed);
        }
        let set = imap_response::uid_set(uids);
        if let Disposal::Move(to) = how {
            self.create(to).await?;
            let to = quoted(to)?;
            if self.caps.has("MOVE") {
                let (_, st) = self.conn.run(&format!("UID MOVE {set} {to}")).await?;
                self.conn.expect_ok("UID MOVE", st)?;
                return Ok(Disposed::Removed);
            }
            let (_, st) = self.conn.run(&format!("UID COPY {set} {to}")).await?;
            self.conn.expect_ok("UID COPY", st)?;
        }
        let (_, st) = self
            .conn
            .run(&format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"))
            .await?;
        self.conn.expect_ok("UID STORE", st)?;
        if !self.caps.has("UIDPLUS") {
            return Ok(Disposed::FlaggedOnly);
        }
        let (_, st) = self.conn.run(&format!("UID EXPUNGE {set}")).await?;
        self.conn.expect_ok("UID EXPUNGE", st)?;
        Ok(Disposed::Removed)
    }

    /// `LIST "" "*"`.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>, Error> {
        let (data, status) = self.conn.run(r#"LIST "" "*""#).await?;
        self.conn.expect_ok("LIST", status)?;
        Ok(data
            .into_iter()
            .filter_map(|u| match u {
                Untagged::List(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// The mailbox for sent messages: the one marked `\Sent` (RFC 6154), else a usual name, else `None`.
    pub async fn sent_mailbox(&mut self) -> Result<Option<String>, Error> {
        let list = self.list().await?;
        if let Some(e) = list.iter().find(|e| {
            e.attributes
                .iter()
                .any(|a| a.eq_ignore_ascii_case("\\Sent"))
        }) {
            return Ok(Some(e.name.clone()));
        }
        const USUAL: [&str; 6] = [
            "Sent",
            "INBOX.Sent",
            "INBOX/Sent",
            "Sent Items",
            "Sent Messages",
            "Envoy&AOk-s",
        ];
        Ok(USUAL
            .iter()
            .find_map(|u| list.iter().find(|e| e.name.eq_ignore_ascii_case(u)))
            .map(|e| e.name.clone()))
    }

    /// CREATE.
    pub async fn create(&mut self, mailbox: &str) -> Result<(), Error> {
        let (_, status) = self
            .conn
            .run(&format!("CREATE {}", quoted(mailbox)?))
            .await?;
        if status.status == Status::No && status.code == Some(ResponseCode::AlreadyExists) {
            return Ok(());
        }
        self.conn.expect_ok("CREATE", status).map(drop)
    }

    /// DELETE a mailbox (a folder recreated under the same name gets a new UIDVALIDITY).
    pub async fn delete(&mut self, mailbox: &str) -> Result<(), Error> {
        let (_, status) = self
            .conn
            .run(&format!("DELETE {}", quoted(mailbox)?))
            .await?;
        self.conn.expect_ok("DELETE", status).map(drop)
    }

    /// APPEND a message with flags; returns its UID when the server tells (UIDPLUS).
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<Option<u32>, Error> {
        if flags
            .iter()
            .any(|f| f.contains(|c: char| c.is_whitespace() || "()\"{".contains(c)))
        {
            return Err(Error::Config {
                reason: "bad flag".into(),
            });
        }
        let tag = self.conn.tag();
        let plus = self.caps.has("LITERAL+");
        let head = format!(
            "{tag} APPEND {} ({}) {{{}{}}}\r\n",
            quoted(mailbox)?,
            flags.join(" "),
            message.len(),
            if plus { "+" } else { "" }
        );
        self.conn.line.send(head.as_bytes(), Redact::No).await?;
        if !plus {
            match self.conn.read_response().await? {
                Response::Continuation(_) => {}
                Response::Tagged { status, .. } => {
                    return Err(Error::Imap {
                        server: self.conn.line.server.clone(),
                        command: "APPEND".into(),
                        status: Box::new(status),
                    });
                }
                _ => return Err(self.conn.line.protocol("APPEND: expected a continuation")),
            }
        }
        self.conn
            .line
            .send_payload(message, self.timeouts.data)
            .await?;
        self.conn.line.send(b"\r\n", Redact::No).await?;
        let (_, status) = self.conn.collect(&tag).await?;
        let status = self.conn.expect_ok("APPEND", status)?;
        Ok(match status.code {
            Some(ResponseCode::AppendUid { uid, .. }) => Some(uid),
            _ => None,
        })
    }

    /// Files a copy of a sent message in the Sent mailbox unless the operator already did (same
    /// Message-ID found there). Creates `Sent` when the server has no such mailbox.
    pub async fn file_sent_copy(
        &mut self,
        message: &[u8],
        message_id: Option<&str>,
    ) -> Result<SentCopy, Error> {
        let mailbox = match self.sent_mailbox().await? {
            Some(m) => m,
            None => {
                self.create("Sent").await?;
                "Sent".to_owned()
            }
        };
        if let Some(id) = message_id
            && let Some(q) = imap_response::quote(id)
        {
            self.examine(&mailbox).await?;
            if !self
                .uid_search(&format!("HEADER Message-ID {q}"))
                .await?
                .is_empty()
            {
                return Ok(SentCopy::AlreadyFiled { mailbox });
            }
        }
        let uid = self.append(&mailbox, &["\\Seen"], message).await?;
        Ok(SentCopy::Appended { mailbox, uid })
    }

    /// IDLE (RFC 2177) until the server announces a new message count or `max` elapses, then DONE.
    pub async fn idle(&mut self, max: Duration) -> Result<IdleOutcome, Error> {
        if !self.caps.has("IDLE") {
            return Err(Error::Unsupported {
                server: self.conn.line.server.clone(),
                what: "IDLE".into(),
            });
        }
        let tag = self.conn.tag();
        self.conn
            .line
            .send(format!("{tag} IDLE\r\n").as_bytes(), Redact::No)
            .await?;
        match self.conn.read_response().await? {
            Response::Continuation(_) => {}
            Response::Tagged { status, .. } => {
                return Err(Error::Imap {
                    server: self.conn.line.server.clone(),
                    command: "IDLE".into(),
                    status: Box::new(status),
                });
            }
            _ => return Err(self.conn.line.protocol("IDLE: expected a continuation")),
        }
        let deadline = tokio::time::Instant::now() + max;
        let mut exists = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match self.conn.read_response_within(left).await {
                Ok(Response::Untagged(Untagged::Exists(n))) => {
                    exists = Some(n);
                    break;
                }
                Ok(Response::Untagged(Untagged::Status(s))) if s.status == Status::Bye => {
                    return Err(Error::ServerShutdown {
                        server: self.conn.line.server.clone(),
                        reply: s.to_string(),
                    });
                }
                Ok(_) => {}
                Err(Error::Timeout { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        self.conn.line.send(b"DONE\r\n", Redact::No).await?;
        let (data, status) = self.conn.collect(&tag).await?;
        self.conn.expect_ok("IDLE", status)?;
        for u in data {
            if let Untagged::Exists(n) = u {
                exists = Some(n);
            }
        }
        Ok(IdleOutcome { exists })
    }

    /// NOOP: checks the session is alive.
    pub async fn noop(&mut self) -> Result<(), Error> {
        let (_, status) = self.conn.run("NOOP").await?;
        self.conn.expect_ok("NOOP", status).map(drop)
    }

    /// LOGOUT.
    pub async fn logout(mut self) -> Result<(), Error> {
        match self.conn.run("LOGOUT").await {
            Ok(_) | Err(Error::ServerShutdown { .. } | Error::ConnectionClosed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
