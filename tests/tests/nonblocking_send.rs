//! wsflow-blocking on a non-blocking socket: a send queues its message, writes what the
//! socket takes, and returns `WouldBlock` once the queue passes the high-water mark (the
//! message queued all the same); `flush` in blocking mode then writes the rest. Over
//! loopback TCP, through `connect` and `MaybeTlsStream::tcp`.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use bytes::Bytes;
use wsflow_blocking::{accept, connect, CloseCode, Error};

mod common;

#[test]
fn non_blocking_send_stops_at_the_high_water_mark() {
    common::within("blocking", || {
        const MARK: usize = 256 << 10;
        const MESSAGE: usize = 16 << 10;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let (release, released) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let mut ws = accept(listener.accept().unwrap().0).unwrap();
            // Reads nothing until the client's socket is full.
            released.recv().unwrap();
            let mut received = 0;
            while let Some(message) = ws.recv_message().unwrap() {
                assert_eq!(message.len(), MESSAGE);
                received += 1;
            }
            received
        });
        let (mut ws, _) = connect(&url).unwrap();
        ws.get_ref().tcp().set_nonblocking(true).unwrap();
        ws.set_high_water_mark(MARK);
        let payload = Bytes::from(vec![7; MESSAGE]);
        let mut sent = 0;
        loop {
            match ws.send_binary(payload.clone()) {
                Ok(()) => sent += 1,
                Err(Error::Transport(error)) if error.kind() == ErrorKind::WouldBlock => {
                    sent += 1; // queued all the same
                    break;
                }
                Err(error) => panic!("{error}"),
            }
            assert!(ws.buffered_amount() <= MARK, "{} queued", ws.buffered_amount());
            assert!(sent < 100_000, "the socket never filled up");
        }
        assert!(ws.buffered_amount() > MARK);
        assert!(ws.buffered_amount() <= MARK + MESSAGE + 14);
        release.send(()).unwrap();
        ws.get_ref().tcp().set_nonblocking(false).unwrap();
        ws.flush().unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        ws.close(CloseCode::NORMAL, "done").unwrap();
        while ws.recv().unwrap().is_some() {}
        assert!(ws.closed().unwrap().is_clean());
        assert_eq!(server.join().unwrap(), sent);
    });
}
