//! A stream upgraded by someone else (an HTTP server that wrote the 101 itself) is adopted
//! with `WebSocket::from_upgraded`, and the bytes that server read past the request head
//! are processed first, never lost: on tokio (in memory) and on blocking (a socket pair).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsflow::{Config, Connection, Message};

/// A client's masked text frame (mask 0: the payload reads as is).
fn client_text(text: &str) -> Vec<u8> {
    let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(text.as_bytes());
    frame
}

fn server_connection() -> Connection {
    Connection::server(Arc::new(Config::default()), Instant::now())
}

#[test]
fn tokio_adopts_an_upgraded_stream_and_reads_what_was_read_past_the_head() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut peer, ours) = tokio::io::duplex(1 << 16);
        // What the HTTP server read after the head, and what comes later on the stream.
        let pipelined = client_text("read past the head");
        peer.write_all(&client_text("from the stream")).await.unwrap();
        let stream = wsflow_tokio::TokioIo::new(ours);
        let mut websocket = wsflow_tokio::WebSocket::from_upgraded(stream, server_connection(), &pipelined);
        let within = Duration::from_secs(5);
        let first = tokio::time::timeout(within, websocket.recv_message())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, Some(Message::text("read past the head")));
        let second = tokio::time::timeout(within, websocket.recv_message())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second, Some(Message::text("from the stream")));
        websocket.send_text("echo").await.unwrap();
        let mut echo = [0; 6];
        peer.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"\x81\x04echo");
    });
}

#[test]
fn blocking_adopts_an_upgraded_stream_and_reads_what_was_read_past_the_head() {
    let (mut peer, ours) = std::os::unix::net::UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let pipelined = client_text("read past the head");
    peer.write_all(&client_text("from the stream")).unwrap();
    let mut websocket = wsflow_blocking::WebSocket::from_upgraded(ours, server_connection(), &pipelined).unwrap();
    assert_eq!(
        websocket.recv_message().unwrap(),
        Some(Message::text("read past the head"))
    );
    assert_eq!(
        websocket.recv_message().unwrap(),
        Some(Message::text("from the stream"))
    );
    websocket.send_text("echo").unwrap();
    let mut echo = [0; 6];
    peer.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"\x81\x04echo");
}
