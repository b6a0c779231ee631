//! A line-oriented connection with deadlines, shared by the SMTP and IMAP clients and the proof tool.
//!
//! Every byte written goes through [`LineConn::send`], which logs the command at `trace` level unless it is
//! marked [`Redact`]: the AUTH/AUTHENTICATE lines carry credentials and are logged as their verb only.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::Error;
use crate::tls::TlsSettings;

/// Deadlines for network operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connection (each address tried).
    pub connect: Duration,
    /// One command and its reply, the greeting, the TLS handshake.
    pub command: Duration,
    /// Sending a message's content and waiting for the final reply (servers may scan it).
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(20),
            command: Duration::from_secs(60),
            data: Duration::from_secs(600),
        }
    }
}

/// How a written line may be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redact {
    /// Log the line as is.
    No,
    /// Log only the first `n` words (the verb and mechanism), never the credentials after them.
    KeepWords(usize),
    /// Log nothing of it.
    All,
}

/// Longest line accepted from a server before calling it hostile.
pub(crate) const MAX_LINE: usize = 8 * 1024 * 1024;

pub(crate) struct LineConn<S> {
    io: S,
    buf: Vec<u8>,
    pos: usize,
    pub(crate) server: String,
    proto: &'static str,
    pub(crate) timeout: Duration,
    transcript: Option<Vec<String>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineConn<S> {
    pub(crate) fn new(io: S, server: String, proto: &'static str, timeout: Duration) -> Self {
        LineConn {
            io,
            buf: Vec::with_capacity(8192),
            pos: 0,
            server,
            proto,
            timeout,
            transcript: None,
        }
    }

    /// Records every line read and written, as text, for the proof of deployment.
    pub(crate) fn record(&mut self) {
        self.transcript = Some(Vec::new());
    }

    pub(crate) fn take_transcript(&mut self) -> Vec<String> {
        self.transcript.take().unwrap_or_default()
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// The stream, for STARTTLS. Bytes the server sent after its STARTTLS reply and before the handshake
    /// would be read as if protected by TLS (the "STARTTLS command injection" of CVE-2011-0411's family):
    /// refuse them.
    pub(crate) fn into_inner_for_tls(self) -> Result<S, Error> {
        if self.pos < self.buf.len() {
            return Err(Error::Protocol {
                server: self.server,
                reason: "the server sent data after its STARTTLS reply, before the TLS handshake"
                    .into(),
            });
        }
        Ok(self.io)
    }

    /// Reads one line, without its CRLF (a bare LF is accepted).
    pub(crate) async fn read_line(&mut self) -> Result<Vec<u8>, Error> {
        let timeout = self.timeout;
        self.read_line_within(timeout).await
    }

    pub(crate) async fn read_line_within(&mut self, timeout: Duration) -> Result<Vec<u8>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let end = self.pos + i;
                let mut line = self.buf[self.pos..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.pos = end + 1;
                self.compact();
                tracing::trace!(proto = self.proto, server = %self.server, "S: {}", String::from_utf8_lossy(&line));
                if let Some(t) = &mut self.transcript {
                    t.push(String::from_utf8_lossy(&line).into_owned());
                }
                return Ok(line);
            }
            if self.buf.len() - self.pos > MAX_LINE {
                return Err(self.protocol(format!("line longer than {MAX_LINE} bytes")));
            }
            self.fill(deadline, "reading a reply").await?;
        }
    }

    /// Reads exactly `n` bytes (an IMAP literal).
    pub(crate) async fn read_exact_bytes(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let deadline = tokio::time::Instant::now() + self.timeout.max(Duration::from_secs(1));
        while self.buf.len() - self.pos < n {
            self.fill(deadline, "reading a literal").await?;
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        self.compact();
        tracing::trace!(proto = self.proto, server = %self.server, "S: <{n} bytes of literal>");
        Ok(out)
    }

    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    async fn fill(
        &mut self,
        deadline: tokio::time::Instant,
        during: &'static str,
    ) -> Result<(), Error> {
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await;
        match read {
            Err(_) => Err(Error::Timeout {
                server: self.server.clone(),
                during,
                after: self.timeout,
            }),
            Ok(Err(e)) => Err(crate::tls::io_error(&self.server, e)),
            Ok(Ok(0)) => Err(Error::ConnectionClosed {
                server: self.server.clone(),
            }),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// Writes `bytes` (complete lines) and flushes.
    pub(crate) async fn send(&mut self, bytes: &[u8], redact: Redact) -> Result<(), Error> {
        let timeout = self.timeout;
        self.send_within(bytes, redact, timeout).await
    }

    pub(crate) async fn send_within(
        &mut self,
        bytes: &[u8],
        redact: Redact,
        timeout: Duration,
    ) -> Result<(), Error> {
        if tracing::enabled!(tracing::Level::TRACE) || self.transcript.is_some() {
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
                let shown = match redact {
                    Redact::No => line.into_owned(),
                    Redact::KeepWords(n) => {
                        let words: Vec<&str> = line.split(' ').take(n).collect();
                        format!("{} [redacted]", words.join(" "))
                    }
                    Redact::All => "[redacted]".to_owned(),
                };
                tracing::trace!(proto = self.proto, server = %self.server, "C: {shown}");
                if let Some(t) = &mut self.transcript {
                    t.push(shown);
                }
            }
        }
        self.write_within(bytes, timeout, "sending").await
    }

    /// Writes a large payload without logging it.
    pub(crate) async fn send_payload(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(), Error> {
        tracing::trace!(proto = self.proto, server = %self.server, "C: <{} bytes of message>", bytes.len());
        self.write_within(bytes, timeout, "sending the message")
            .await
    }

    /// Writes and flushes `bytes`, failing with a timeout naming `during` when it takes longer than `timeout`.
    async fn write_within(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
        during: &'static str,
    ) -> Result<(), Error> {
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Err(_) => Err(Error::Timeout {
                server: self.server.clone(),
                during,
                after: timeout,
            }),
            Ok(Err(e)) => Err(crate::tls::io_error(&self.server, e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    pub(crate) fn protocol(&self, reason: impl Into<String>) -> Error {
        Error::Protocol {
            server: self.server.clone(),
            reason: reason.into(),
        }
    }

    /// Waits for the server to close the connection (after QUIT/LOGOUT), reading what it still sends.
    pub(crate) async fn read_until_eof(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self
                .read_line_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            {
                Ok(_) => {}
                Err(Error::ConnectionClosed { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// An address to reach: host name (for TLS verification) and port, optionally with addresses already resolved
/// (SRV discovery resolves them through the configured resolver).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// DNS name (or IP literal) the server certificate must match.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Addresses to connect to; empty means resolve `host` with the system resolver.
    pub addrs: Vec<IpAddr>,
}

impl Endpoint {
    /// `host:port`, resolved at connection time.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
            addrs: Vec::new(),
        }
    }

    /// Parses `HOST:PORT`, `HOST` (then `default_port`), or `[IPv6]:PORT`.
    pub fn parse(s: &str, default_port: u16) -> Result<Self, Error> {
        let bad = || Error::Config {
            reason: format!("`{s}` is not HOST or HOST:PORT"),
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(bad());
        }
        if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            return Ok(Endpoint::new(host, port));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => {
                Ok(Endpoint::new(host, port.parse().map_err(|_| bad())?))
            }
            Some(_) => Ok(Endpoint::new(s, default_port)), // bare IPv6
            None => Ok(Endpoint::new(s, default_port)),
        }
    }

    /// `host:port` for messages.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// Opens a TCP connection, trying each address in turn; `local` picks the source address.
pub(crate) async fn connect_tcp(
    endpoint: &Endpoint,
    local: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    let server = endpoint.label();
    let addrs: Vec<SocketAddr> = if endpoint.addrs.is_empty() {
        let host = endpoint.host.clone();
        match tokio::time::timeout(
            timeout,
            tokio::net::lookup_host((host.as_str(), endpoint.port)),
        )
        .await
        {
            Err(_) => {
                return Err(Error::Timeout {
                    server,
                    during: "resolving the host name",
                    after: timeout,
                });
            }
            Ok(Err(e)) => {
                return Err(Error::Dns {
                    name: endpoint.host.clone(),
                    reason: e.to_string(),
                    transient: true,
                });
            }
            Ok(Ok(a)) => a.collect(),
        }
    } else {
        endpoint
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, endpoint.port))
            .collect()
    };
    let mut last = None;
    for addr in addrs {
        let attempt = async {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(ip) = local.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            socket.connect(addr).await
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer from {addr} within {timeout:?}"),
                ));
            }
        }
    }
    Err(Error::Connect {
        server,
        source: last
            .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")),
    })
}

/// What every connection needs.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Trust roots and, for APP mailboxes, the client certificate.
    pub tls: TlsSettings,
    /// Deadlines.
    pub timeouts: Timeouts,
    /// Source address (multi-homed hosts; the tests use 127.0.0.x).
    pub local_addr: Option<IpAddr>,
    /// Name given in EHLO; default: the address literal of the local end (`[192.0.2.1]`).
    pub client_name: Option<String>,
}

impl ConnectOptions {
    /// Defaults around `tls`.
    pub fn new(tls: TlsSettings) -> Self {
        ConnectOptions {
            tls,
            timeouts: Timeouts::default(),
            local_addr: None,
            client_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("mail.sante.test:587", 25).expect("ok");
        assert_eq!((e.host.as_str(), e.port), ("mail.sante.test", 587));
        let e = Endpoint::parse("mail.sante.test", 143).expect("ok");
        assert_eq!(e.port, 143);
        let e = Endpoint::parse("[::1]:10143", 143).expect("ok");
        assert_eq!((e.host.as_str(), e.port), ("::1", 10143));
        assert_eq!(e.label(), "[::1]:10143");
        assert!(Endpoint::parse("host:notaport", 1).is_err());
        assert!(Endpoint::parse("", 1).is_err());
    }

    #[tokio::test]
    async fn lines_literals_and_injection_guard() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut conn = LineConn::new(client, "test".into(), "imap", Duration::from_secs(5));
        server
            .write_all(b"* OK hi\r\nbare lf\n{3}abcrest\r\n")
            .await
            .expect("write");
        assert_eq!(conn.read_line().await.expect("line"), b"* OK hi");
        assert_eq!(conn.read_line().await.expect("line"), b"bare lf");
        assert_eq!(conn.read_line().await.expect("line"), b"{3}abcrest");
        server.write_all(b"extra").await.expect("write");
        tokio::task::yield_now().await;
        // pull the stray bytes into the buffer, then the TLS hand-over must refuse
        let r = tokio::time::timeout(Duration::from_millis(50), conn.read_line()).await;
        assert!(r.is_err());
        assert!(matches!(
            conn.into_inner_for_tls(),
            Err(Error::Protocol { .. })
        ));
    }

    #[tokio::test]
    async fn eof_is_connection_closed() {
        let (client, server) = tokio::io::duplex(64);
        drop(server);
        let mut conn = LineConn::new(client, "test".into(), "smtp", Duration::from_secs(5));
        assert!(matches!(
            conn.read_line().await,
            Err(Error::ConnectionClosed { .. })
        ));
    }
}
