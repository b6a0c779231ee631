//! MLLP (HL7 v2 Minimal Lower Layer Protocol, release 2): each message framed as `0x0B` message
//! `0x1C 0x0D`, one message at a time per connection, its acknowledgement awaited before the next.
//! The client reconnects and sends the same bytes again when a connection breaks or an answer does not
//! come (at-least-once; MSH-10 unchanged so that the receiver can recognise the message).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::ack::Ack;
use crate::{Error, Message, Result};

/// Start of a block.
pub const START: u8 = 0x0B;
/// End of a block: `0x1C` then `0x0D`.
pub const END: [u8; 2] = [0x1C, 0x0D];
/// Largest message read by default: a CDA with its PDF inside, base64 (Mon espace santé allows 25 MB
/// messages).
pub const DEFAULT_MAX_MESSAGE: usize = 48 << 20;

/// `message` framed.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message);
    out.extend_from_slice(&END);
    out
}

/// Cuts a byte stream into messages. Bytes between blocks may only be white space (some senders add a
/// line feed); anything else, or a block over the limit, is a framing error.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
    scanned: usize,
}

impl FrameDecoder {
    /// A decoder refusing messages over `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            max,
            scanned: 0,
        }
    }

    /// Adds bytes read; returns the messages now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let lead = self
                .buf
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            if lead > 0 {
                self.buf.drain(..lead);
                self.scanned = 0;
            }
            let Some(&first) = self.buf.first() else {
                break;
            };
            if first != START {
                return Err(Error::Framing(format!(
                    "byte 0x{first:02X} outside a block (a block starts with 0x0B)"
                )));
            }
            let from = self.scanned.max(1);
            let end = self.buf[from..]
                .windows(2)
                .position(|w| w == END)
                .map(|p| p + from);
            match end {
                Some(end) => {
                    let message = self.buf[1..end].to_vec();
                    self.buf.drain(..end + 2);
                    self.scanned = 0;
                    out.push(message);
                }
                None => {
                    if self.buf.len() > self.max + 3 {
                        return Err(Error::Framing(format!("message over {} bytes", self.max)));
                    }
                    // the end may straddle the next read
                    self.scanned = self.buf.len().saturating_sub(1).max(1);
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Bytes of an unfinished block are waiting.
    pub fn is_mid_block(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// How a client talks to its peer.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time for the acknowledgement to come after the message is sent.
    pub ack_timeout: Duration,
    /// Sends in all (first one included) before [`MllpClient::send`] gives up.
    pub attempts: u32,
    /// Wait before the second attempt, doubled each time up to 30 s.
    pub backoff: Duration,
    /// Largest acknowledgement read.
    pub max_message: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_message: 1 << 20,
        }
    }
}

/// An MLLP client: one connection, kept between messages, opened again when it breaks.
#[derive(Debug)]
pub struct MllpClient {
    peer: String,
    options: ClientOptions,
    stream: Option<TcpStream>,
    decoder: FrameDecoder,
}

impl MllpClient {
    /// A client of `peer` (`HOST:PORT`); nothing is connected before the first send.
    pub fn new(peer: impl Into<String>, options: ClientOptions) -> Self {
        let max = options.max_message;
        MllpClient {
            peer: peer.into(),
            options,
            stream: None,
            decoder: FrameDecoder::new(max),
        }
    }

    /// `HOST:PORT`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sends `message` and returns its acknowledgement (an MSA whose MSA-2 is the message's MSH-10).
    /// A broken connection or a missing answer makes it reconnect and send the same bytes again, up to
    /// [`ClientOptions::attempts`] times; the last error is returned.
    pub async fn send(&mut self, message: &Message) -> Result<(Message, Ack)> {
        let bytes = message.to_bytes();
        let id = message.control_id().into_owned();
        let mut wait = self.options.backoff;
        let mut attempt = 1;
        loop {
            match self.exchange(&bytes, &id).await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    self.stream = None;
                    if !e.is_transient() || attempt >= self.options.attempts {
                        return Err(e);
                    }
                    tracing::info!(peer = %self.peer, attempt, error = %e, "MLLP: sending again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                    attempt += 1;
                }
            }
        }
    }

    async fn exchange(&mut self, bytes: &[u8], id: &str) -> Result<(Message, Ack)> {
        let io = |source| Error::Io {
            peer: self.peer.clone(),
            source,
        };
        if self.stream.is_none() {
            let connect = TcpStream::connect(&self.peer);
            let stream = tokio::time::timeout(self.options.connect_timeout, connect)
                .await
                .map_err(|_| Error::Timeout {
                    peer: self.peer.clone(),
                    what: "connection",
                    after: self.options.connect_timeout,
                })?
                .map_err(io)?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
            self.decoder = FrameDecoder::new(self.options.max_message);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Error::Protocol {
                peer: self.peer.clone(),
                reason: "no connection".into(),
            });
        };
        stream.write_all(&frame(bytes)).await.map_err(io)?;
        let peer = self.peer.clone();
        let after = self.options.ack_timeout;
        let answer = tokio::time::timeout(after, read_one(stream, &mut self.decoder, &peer))
            .await
            .map_err(|_| Error::Timeout {
                peer: peer.clone(),
                what: "acknowledgement",
                after,
            })??;
        let m = Message::parse(&answer).map_err(|e| Error::Protocol {
            peer: peer.clone(),
            reason: format!("the answer is not an HL7 message: {e}"),
        })?;
        let ack = Ack::read(&m).map_err(|e| Error::Protocol {
            peer: peer.clone(),
            reason: format!("the answer is not an acknowledgement: {e}"),
        })?;
        if ack.acknowledged != id {
            return Err(Error::Protocol {
                peer,
                reason: format!(
                    "the acknowledgement is for message {:?}, not {id:?}",
                    ack.acknowledged
                ),
            });
        }
        Ok((m, ack))
    }
}

/// Reads the next whole message of `stream`.
async fn read_one(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    peer: &str,
) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(|source| Error::Io {
            peer: peer.to_owned(),
            source,
        })?;
        if n == 0 {
            return Err(Error::Io {
                peer: peer.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before the acknowledgement",
                ),
            });
        }
        let mut frames = decoder.push(&buf[..n])?;
        if !frames.is_empty() {
            // one message at a time: anything after the first answer is not ours
            return Ok(frames.swap_remove(0));
        }
    }
}

/// What answers the messages a server receives: given the bytes of one message, the acknowledgement's
/// bytes. Called once per message, one at a time per connection.
pub trait Handler: Send + Sync + 'static {
    /// The acknowledgement of `message`, received from `peer`.
    fn handle(&self, message: Vec<u8>, peer: SocketAddr) -> impl Future<Output = Vec<u8>> + Send;
}

/// How a server treats its connections.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Largest message accepted; a larger one closes the connection.
    pub max_message: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            idle_timeout: Duration::from_secs(300),
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

/// Serves MLLP on `listener` until `stop` turns true: each connection in its own task, each message
/// answered by `handler` before the next is read.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    options: ServerOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stopping = stop.clone();
    loop {
        tokio::select! {
            () = stopped(&mut stopping) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let handler = Arc::clone(&handler);
                    let options = options.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, peer, handler, options, stop).await {
                            tracing::info!(%peer, error = %e, "MLLP connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "MLLP: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone), holding no borrow across await points.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection<H: Handler>(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<H>,
    options: ServerOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let name = peer.to_string();
    let io = |source| Error::Io {
        peer: name.clone(),
        source,
    };
    let mut decoder = FrameDecoder::new(options.max_message);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            () = stopped(&mut stop) => return Ok(()),
            r = tokio::time::timeout(options.idle_timeout, stream.read(&mut buf)) => r,
        };
        let n = match read {
            Err(_) => return Ok(()),
            Ok(r) => r.map_err(io)?,
        };
        if n == 0 {
            return Ok(());
        }
        for message in decoder.push(&buf[..n])? {
            // the answer is written even if a stop comes meanwhile: what was queued is acknowledged
            let ack = handler.handle(message, peer).await;
            stream.write_all(&frame(&ack)).await.map_err(io)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_across_reads() {
        let mut d = FrameDecoder::new(100);
        let f = frame(b"MSH|a");
        let (a, b) = f.split_at(4);
        assert!(d.push(a).expect("ok").is_empty());
        assert!(d.is_mid_block());
        let mut two = b.to_vec();
        two.extend_from_slice(b"\n");
        two.extend_from_slice(&frame(b"MSH|b\x1c"));
        assert_eq!(
            d.push(&two).expect("ok"),
            vec![b"MSH|a".to_vec(), b"MSH|b\x1c".to_vec()]
        );
        assert!(!d.is_mid_block());
    }

    #[test]
    fn refuses_garbage_and_giants() {
        let mut d = FrameDecoder::new(10);
        let e = d.push(b"GET / HTTP/1.1").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("MLLP framing: byte 0x47 outside a block (a block starts with 0x0B)")
        );
        let mut d = FrameDecoder::new(10);
        let e = d.push(&[START; 20]).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("MLLP framing: message over 10 bytes"));
    }
}
