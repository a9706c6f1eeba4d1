//! A split sender blocked in a write to a peer that stopped reading gives up once the
//! connection has ended on the receiving half (the peer's close frame answered, the close
//! timeout and the linger over), instead of holding its thread and the socket forever.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use wsflow_blocking::{Config, Message};

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn a_blocked_split_sender_returns_after_the_connection_ends() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The peer upgrades, sends a close frame (1000, masked with zeros) and never reads.
    let peer = thread::spawn(move || {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.write_all(UPGRADE).unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            tcp.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        thread::sleep(Duration::from_millis(300));
        tcp.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]).unwrap();
        thread::sleep(Duration::from_secs(15));
    });
    let (tcp, _) = listener.accept().unwrap();
    let mut config = Config::default();
    config.close_timeout(Duration::from_secs(1));
    let wsflow_blocking::Accepted::WebSocket(websocket, _) =
        wsflow_blocking::accept_with(tcp, Arc::new(config), |_| {
            wsflow_blocking::Decision::Accept(wsflow_blocking::Accept::new())
        })
        .unwrap()
    else {
        panic!("not upgraded")
    };
    let (mut sender, mut receiver) = websocket.split().unwrap();
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        // Far more than the socket buffers hold: this write blocks on the peer.
        let sent = sender.send(Message::binary(vec![0u8; 64 << 20]));
        let _ = done.send((sent.is_ok(), started.elapsed()));
    });
    while receiver.recv().unwrap().is_some() {}
    let closed = receiver.closed().expect("closed");
    assert_eq!(closed.code(), wsflow_blocking::CloseCode::NORMAL);
    let (_, took) = finished
        .recv_timeout(Duration::from_secs(8))
        .expect("the sender is still blocked 8 s after it started");
    // The close timeout (1 s) and the linger (1 s), each noticed within a second.
    assert!(took < Duration::from_secs(6), "the sender gave up after {took:?}");
    drop(peer);
}
