//! What both fronts share: the connection (plain, then TLS), lines, the TLS handshake, SASL parsing and
//! the relay to the server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Connection, Front, Shared};

/// A byte stream, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The client connection, buffered.
pub type Io = BufReader<Box<dyn Stream>>;

/// Longest command line accepted (a PSC token is a few kilobytes).
const MAX_LINE: usize = 64 * 1024;

/// Reads one line without its CRLF; `None` at end of stream or for an overlong line.
pub async fn read_line(io: &mut Io) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *io)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 || (n == MAX_LINE && !buf.ends_with(b"\n")) {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Writes `text` and flushes.
pub async fn send(io: &mut Io, text: &str) -> std::io::Result<()> {
    io.get_mut().write_all(text.as_bytes()).await?;
    io.get_mut().flush().await
}

/// The TLS handshake after STARTTLS; records the version and client certificate, or why it failed.
/// Refuses a client that pipelined bytes after STARTTLS (they would cross into the TLS session).
pub async fn handshake(
    io: Io,
    front: Front,
    shared: &Shared,
    record: &mut Connection,
) -> Option<Io> {
    record.starttls = true;
    if !io.buffer().is_empty() {
        record.tls_error =
            Some("the client sent data after STARTTLS before the TLS handshake".into());
        return None;
    }
    let config = if front.is_app() {
        shared.app_tls.clone()
    } else {
        shared.tls.clone()
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match acceptor.accept(io.into_inner()).await {
        Ok(tls) => {
            let (_, conn) = tls.get_ref();
            record.tls_version = conn.protocol_version().map(|v| format!("{v:?}"));
            record.client_certificate = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| mss_lps::certificate_subject(c.as_ref()));
            let boxed: Box<dyn Stream> = Box::new(tls);
            Some(BufReader::new(boxed))
        }
        Err(e) => {
            record.tls_error = Some(tls_reason(&e));
            None
        }
    }
}

fn tls_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("PeerIncompatible") || text.contains("ProtocolVersion") {
        format!("TLS handshake failed: the client offers no TLS 1.2 or 1.3 ({text})")
    } else if text.contains("UnknownIssuer")
        || text.contains("BadEncoding")
        || text.contains("certificate")
    {
        format!(
            "TLS handshake failed: client certificate refused, not issued by the sandbox's CA ({text})"
        )
    } else {
        format!("TLS handshake failed: {text}")
    }
}

/// The mailbox and bearer token of an XOAUTH2 or OAUTHBEARER initial response.
pub fn parse_bearer(mechanism: &str, b64: &str) -> Result<(String, String), String> {
    let raw = STANDARD
        .decode(b64.trim())
        .map_err(|_| format!("{mechanism} response is not base64"))?;
    let text = String::from_utf8(raw).map_err(|_| format!("{mechanism} response is not UTF-8"))?;
    let mut user = None;
    let mut token = None;
    for field in text.split('\x01') {
        if let Some(u) = field.strip_prefix("user=") {
            user = Some(u.to_owned());
        } else if let Some(a) = field.strip_prefix("auth=") {
            let t = a
                .strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
                .ok_or_else(|| format!("{mechanism}: auth= is not `Bearer <token>`"))?;
            token = Some(t.trim().to_owned());
        } else if let Some(gs2) = field.strip_prefix("n,") {
            // OAUTHBEARER (RFC 7628): n,a=<user>,
            user = gs2
                .split(',')
                .find_map(|p| p.strip_prefix("a="))
                .map(str::to_owned);
        }
    }
    match (user, token) {
        (Some(u), Some(t)) if !u.is_empty() => Ok((u, t)),
        _ => Err(format!(
            "{mechanism} response without the mailbox (user= or a=) or auth=Bearer <token>"
        )),
    }
}

/// The mailbox of a PLAIN response (`authzid NUL authcid NUL password`): the authzid, else the authcid.
pub fn parse_plain(b64: &str) -> Result<String, String> {
    let raw = STANDARD
        .decode(b64.trim())
        .map_err(|_| "PLAIN response is not base64".to_owned())?;
    let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    if parts.len() != 3 {
        return Err("PLAIN response is not authzid NUL authcid NUL password".into());
    }
    let pick = if parts[0].is_empty() {
        parts[1]
    } else {
        parts[0]
    };
    let user = String::from_utf8_lossy(pick).into_owned();
    if user.is_empty() {
        return Err("PLAIN response names no mailbox".into());
    }
    Ok(user)
}

/// Checks credentials once parsed: the token against the stand-in (PER/ORG), the certificate (APP).
pub fn check(
    front: Front,
    shared: &Shared,
    record: &mut Connection,
    user: &str,
    token: Option<&str>,
) -> bool {
    record.user = Some(user.to_ascii_lowercase());
    let verdict = if front.is_app() {
        match &record.client_certificate {
            Some(_) => Ok(()),
            None => Err("no client certificate presented: an APP mailbox authenticates with its IGC Santé AUTH_CLI certificate".to_owned()),
        }
    } else {
        match token {
            Some(t) => shared.tokens.validate(t, user).map(|_| ()),
            None => Err("no token".to_owned()),
        }
    };
    match verdict {
        Ok(()) => {
            record.authenticated = true;
            true
        }
        Err(reason) => {
            record.refused = Some(reason);
            false
        }
    }
}

/// The XOAUTH2 error challenge of RFC 7628 / Google's XOAUTH2 (`{"status":"401",...}`), base64.
pub fn oauth_challenge() -> String {
    STANDARD.encode(r#"{"status":"401","schemes":"bearer","scope":"openid scope_all"}"#)
}

/// Relays bytes both ways until either side closes; what the client had already sent goes first.
pub async fn relay(client: Io, mut server: BufReader<TcpStream>) -> std::io::Result<()> {
    let pending = client.buffer().to_vec();
    let mut client = client.into_inner();
    if !pending.is_empty() {
        server.get_mut().write_all(&pending).await?;
    }
    let leftover = server.buffer().to_vec();
    if !leftover.is_empty() {
        client.write_all(&leftover).await?;
    }
    let mut server = server.into_inner();
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// Connects to a server of the sandbox on loopback.
pub async fn connect(port: u16) -> std::io::Result<BufReader<TcpStream>> {
    Ok(BufReader::new(
        TcpStream::connect(("127.0.0.1", port)).await?,
    ))
}

/// Reads one line from a server.
pub async fn server_line(server: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if server.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    Ok(line.trim_end().to_owned())
}

/// The plain client stream, boxed.
pub fn plain(stream: TcpStream) -> Io {
    let boxed: Box<dyn Stream> = Box::new(stream);
    BufReader::new(boxed)
}
