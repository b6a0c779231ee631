//! The MLLP client and server over real loopback sockets: one message at a time with its ACK, a lost
//! answer sent again with the same bytes (same MSH-10), a silent peer timed out, a down peer retried.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mss_hl7::ack::{AckCode, acknowledge};
use mss_hl7::mllp::{ClientOptions, Handler, MllpClient, ServerOptions, serve};
use mss_hl7::{Error, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MDM: &[u8] = b"MSH|^~\\&|RIS|ORG|PFI|ORG|20260101||MDM^T02^MDM_T02|M1|P|2.6|||||FRA|UNICODE UTF-8\rPID|||1^^^X\r";

/// Answers AA, and records every message received.
struct Recorder(std::sync::Mutex<Vec<Vec<u8>>>);

impl Handler for Recorder {
    async fn handle(&self, message: Vec<u8>, _peer: SocketAddr) -> Vec<u8> {
        self.0.lock().unwrap().push(message.clone());
        let m = Message::parse(&message).unwrap();
        acknowledge(&m, AckCode::AA, &[], "A1", "20260101").to_bytes()
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        ack_timeout: Duration::from_millis(500),
        attempts: 3,
        backoff: Duration::from_millis(20),
        max_message: 1 << 20,
    }
}

#[tokio::test]
async fn messages_and_acks_over_one_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorder = Arc::new(Recorder(Default::default()));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve(
        listener,
        Arc::clone(&recorder),
        ServerOptions::default(),
        stop,
    ));
    let mut client = MllpClient::new(addr.to_string(), options());
    let m = Message::parse(MDM).unwrap();
    for _ in 0..3 {
        let (ack, read) = client.send(&m).await.unwrap();
        assert_eq!(read.code, AckCode::AA);
        assert_eq!(read.acknowledged, "M1");
        assert_eq!(ack.message_type().0, "ACK");
    }
    assert_eq!(recorder.0.lock().unwrap().len(), 3);
    assert!(recorder.0.lock().unwrap().iter().all(|b| b == MDM));
    stop_tx.send(true).unwrap();
    server.await.unwrap();
}

/// A peer that reads the first message and closes without answering, then answers the next ones: the
/// client sends the same bytes again on a new connection.
#[tokio::test]
async fn a_lost_answer_is_sent_again_with_the_same_control_id() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let conns = Arc::new(AtomicUsize::new(0));
    let (s, c) = (Arc::clone(&seen), Arc::clone(&conns));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let n = c.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.ends_with(&[0x1C, 0x0D]) {
                let k = stream.read(&mut buf).await.unwrap();
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
            }
            s.lock().unwrap().push(got.clone());
            if n == 0 {
                continue; // dropped: the answer is lost
            }
            let m = Message::parse(&got[1..got.len() - 2]).unwrap();
            let ack = acknowledge(&m, AckCode::AA, &[], "A", "2026").to_bytes();
            stream.write_all(&mss_hl7::mllp::frame(&ack)).await.unwrap();
        }
    });
    let mut client = MllpClient::new(addr.to_string(), options());
    let (_, read) = client.send(&Message::parse(MDM).unwrap()).await.unwrap();
    assert_eq!(read.acknowledged, "M1");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the same bytes, the same MSH-10");
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_silent_or_absent_peer_is_an_error_after_the_attempts() {
    // silent: accepts, never answers
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    let mut client = MllpClient::new(addr.to_string(), options());
    let e = client
        .send(&Message::parse(MDM).unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            Error::Timeout {
                what: "acknowledgement",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_transient());
    // absent: nothing listens
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = free.local_addr().unwrap();
    drop(free);
    let mut client = MllpClient::new(gone.to_string(), options());
    let e = client
        .send(&Message::parse(MDM).unwrap())
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[tokio::test]
async fn an_answer_for_another_message_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = stream.read(&mut buf).await.unwrap();
        let ack = b"MSH|^~\\&|PFI|O|RIS|O|2026||ACK^T02^ACK|A|P|2.6\rMSA|AA|OTHER\r";
        stream.write_all(&mss_hl7::mllp::frame(ack)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let mut client = MllpClient::new(
        addr.to_string(),
        ClientOptions {
            attempts: 1,
            ..options()
        },
    );
    let e = client
        .send(&Message::parse(MDM).unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        format!("{addr}: the acknowledgement is for message \"OTHER\", not \"M1\"")
    );
    assert!(e.is_permanent());
}
