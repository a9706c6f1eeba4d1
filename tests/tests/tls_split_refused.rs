//! wsflow-blocking cannot split a TLS connection (rustls state cannot be shared between two
//! handles of the stream): `split` fails with `Unsupported`, and the peer sees the
//! connection dropped without a close frame. Over loopback TCP with a self-signed
//! certificate.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::thread;

use wsflow::CloseReason;
use wsflow_blocking::{accept, tls_accept, ClientBuilder, Error};

mod common;

#[test]
fn tls_connection_refuses_to_split() {
    common::within("blocking", || {
        let tls = common::tls::self_signed();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            let mut ws = accept(tls_accept(tcp, tls.server).unwrap()).unwrap();
            while ws.recv().unwrap().is_some() {}
            ws.closed().cloned().unwrap()
        });
        let (ws, _) = ClientBuilder::new(&format!("wss://localhost:{port}/"))
            .tls_config(tls.client)
            .connect()
            .unwrap();
        let Err(Error::Transport(error)) = ws.split().map(|_| ()) else {
            panic!("a TLS stream cannot be split")
        };
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        // The failed split dropped the connection without a close frame.
        assert_eq!(server.join().unwrap().reason, CloseReason::Eof);
    });
}
