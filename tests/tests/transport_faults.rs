//! What every adapter's server does when the transport under it fails or crawls, over real
//! loopback TCP and TLS: a peer that shuts its side down without a close frame, a peer that
//! resets the connection in the middle of a message, a TLS peer that cuts TCP without
//! `close_notify` — each ends in one `Closed` that says the end was abnormal (`Eof`, 1006),
//! never clean and never an error or a hang — and a peer that reads one byte every 100 ms:
//! the server never holds more than its high-water mark plus one message, and its close
//! ends by the close timeout although the close frame can never reach the peer.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wsflow::{CloseReason, Config};

mod common;
#[path = "adapter_conformance/mod.rs"]
#[allow(dead_code)]
mod harness;

use harness::{client_frame, Adapter, Clock, Serve, RAW_UPGRADE, TEXT};

/// A raw client over TCP, with or without TLS (a rustls client that trusts the test
/// certificate).
enum RawPeer {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl RawPeer {
    /// Connects and upgrades (reads the 101 head, and nothing after it).
    fn upgraded(port: u16, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut peer = match tls {
            Some(config) => {
                let name = "localhost".try_into().unwrap();
                let connection = rustls::ClientConnection::new(config, name).unwrap();
                Self::Tls(Box::new(rustls::StreamOwned::new(connection, tcp)))
            }
            None => Self::Plain(tcp),
        };
        peer.write_all(RAW_UPGRADE).unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            peer.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
        peer
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => &tls.sock,
        }
    }
}

impl Read for RawPeer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for RawPeer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}

/// How the raw peer leaves.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// After a whole message and its echo: shut down the TCP write side (FIN; under TLS
    /// without `close_notify`).
    Fin,
    /// With a message and half of the next frame sent, and the echo left unread: close the
    /// socket, which makes the kernel send a reset.
    Reset,
}

fn config() -> Arc<Config> {
    let mut config = Config::default();
    config.close_timeout(Duration::from_secs(1));
    Arc::new(config)
}

/// The server's `Closed` when the peer leaves as `cut` says.
fn peer_cut<A: Adapter>(tls: bool, cut: Cut) {
    A::run(Clock::Real, async move {
        let certificate = common::tls::self_signed();
        let (port, server) = A::tcp_server(tls.then(|| certificate.server.clone()), config(), Serve::Echo);
        let client = tls.then(|| certificate.client.clone());
        let peer = thread::spawn(move || {
            let mut peer = RawPeer::upgraded(port, client);
            let hello = client_frame(TEXT, b"hello");
            peer.write_all(&hello).unwrap();
            match cut {
                Cut::Fin => {
                    let mut echo = [0; 7];
                    peer.read_exact(&mut echo).unwrap();
                    assert_eq!(&echo[2..], b"hello");
                    peer.tcp().shutdown(Shutdown::Write).unwrap();
                    // The server may answer with a close frame; then it closes TCP.
                    let _ = std::io::copy(&mut peer, &mut std::io::sink());
                }
                Cut::Reset => {
                    let next = client_frame(TEXT, &[b'x'; 100]);
                    peer.write_all(&next[..50]).unwrap();
                    peer.flush().unwrap();
                    // Let the echo arrive unread: closing with unread bytes resets.
                    thread::sleep(Duration::from_millis(200));
                    drop(peer);
                }
            }
        });
        let served = server.await;
        peer.join().unwrap();
        let closed = served.closed;
        assert_eq!(closed.reason, CloseReason::Eof, "{closed:?}");
        assert!(!closed.is_clean());
        assert_eq!(closed.code(), wsflow::CloseCode::ABNORMAL);
    });
}

/// A peer that reads a byte every 100 ms while the server floods it, until the server is
/// done; returns what the server saw.
fn slow_reader<A: Adapter>(tls: bool) {
    const MESSAGE: usize = 64 << 10;
    const MARK: usize = 256 << 10;
    A::run(Clock::Real, async move {
        let certificate = common::tls::self_signed();
        let how = Serve::Flood {
            message_size: MESSAGE,
            high_water_mark: MARK,
        };
        let (port, server) = A::tcp_server(tls.then(|| certificate.server.clone()), config(), how);
        let client = tls.then(|| certificate.client.clone());
        let done = Arc::new(AtomicBool::new(false));
        let reading = done.clone();
        let peer = thread::spawn(move || {
            let mut peer = RawPeer::upgraded(port, client);
            let mut byte = [0];
            while !reading.load(Ordering::Relaxed) {
                if peer.read(&mut byte).unwrap_or(0) == 0 {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        let served = server.await;
        done.store(true, Ordering::Relaxed);
        peer.join().unwrap();
        assert!(
            served.most_buffered <= MARK + MESSAGE + 64,
            "the server held {} bytes (high-water mark {MARK})",
            served.most_buffered
        );
        // The close timeout, then as long again for the last bytes (the core's linger).
        assert!(
            served.closing_took < Duration::from_millis(3000),
            "the close took {:?} with a 1 s close timeout",
            served.closing_took
        );
        assert!(!served.closed.is_clean(), "{:?}", served.closed);
    });
}

macro_rules! on_every_adapter {
    ($($adapter:ident: $ty:ty;)*) => {$(
        mod $adapter {
            use super::*;

            #[test]
            fn fin_without_a_close_frame_is_abnormal() {
                peer_cut::<$ty>(false, Cut::Fin);
            }

            #[test]
            fn tls_cut_without_close_notify_is_abnormal() {
                peer_cut::<$ty>(true, Cut::Fin);
            }

            #[test]
            fn reset_mid_message_is_abnormal() {
                peer_cut::<$ty>(false, Cut::Reset);
            }

            #[test]
            fn reset_mid_message_under_tls_is_abnormal() {
                peer_cut::<$ty>(true, Cut::Reset);
            }

            #[test]
            fn a_slow_reader_holds_the_server_to_its_high_water_mark_and_the_close_to_its_timeout() {
                slow_reader::<$ty>(false);
            }

            #[test]
            fn a_slow_reader_under_tls_holds_the_server_to_its_high_water_mark_and_the_close_to_its_timeout() {
                slow_reader::<$ty>(true);
            }
        }
    )*};
}

on_every_adapter! {
    tokio: harness::tokio::Tokio;
    smol: harness::smol::Smol;
    blocking: harness::blocking::Blocking;
}
