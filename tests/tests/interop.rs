//! Our clients (every adapter) against real peers nobody here wrote: Python `websockets` and
//! Node `ws` echo servers (tests/peers/py_server.py, node_server.js); and wsflow's HTTP/2
//! client (`wsflow_io::Http2Client`, RFC 8441) against Hypercorn (tests/peers/hypercorn_echo.py),
//! over h2c and over TLS with ALPN `h2`.
//!
//! The peers are installed by `tests/peers/setup.sh`, so these tests are `#[ignore]`d in a
//! plain `cargo test`; `tests/peers/interop.sh` runs them with `--ignored`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::{blocking_client, smol_run, tokio_run};

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// A peer echo server on a free loopback port, killed on drop.
struct Peer {
    child: Child,
    url: String,
}

impl Peer {
    /// Starts the peer on port 0 and reads the port it got from its first line
    /// (`... listening on ws://127.0.0.1:PORT`): tests run in parallel, and a port picked
    /// here and released could be taken by another test's peer before this one binds it.
    fn start(kind: &str) -> Peer {
        Peer::start_with(kind, &[])
    }

    /// [`Peer::start`] with more arguments after the port.
    fn start_with(kind: &str, args: &[&Path]) -> Peer {
        let dir = peers_dir();
        let python = |script: &str| {
            let mut command = Command::new(dir.join(".venv/bin/python"));
            command.arg(dir.join(script));
            command
        };
        let mut command = match kind {
            "python" => python("py_server.py"),
            "hypercorn" => python("hypercorn_echo.py"),
            _ => {
                let mut command = Command::new("node");
                command.arg(dir.join("node_server.js"));
                command
            }
        };
        let mut child = command
            .arg("0")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start the {kind} peer (run tests/peers/setup.sh): {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = sender.send(first);
            lines.for_each(drop); // keep draining so the peer never blocks on stdout
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the {kind} peer did not say where it listens"));
        let port: u16 = line
            .rsplit(':')
            .next()
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected line from the {kind} peer: {line:?}"));
        Peer {
            child,
            url: format!("ws://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

macro_rules! interop_tests {
    ($($test:ident: $peer:literal, $run:expr;)*) => {$(
        #[test]
        #[ignore = "needs the peers of tests/peers/setup.sh; run by tests/peers/interop.sh"]
        fn $test() {
            let peer = Peer::start($peer);
            let run: fn(&str) = $run;
            run(&peer.url);
        }
    )*};
}

interop_tests! {
    blocking_client_against_python_websockets: "python", blocking_client::run;
    blocking_client_against_node_ws: "node", blocking_client::run;
    tokio_client_against_python_websockets: "python", tokio_run;
    tokio_client_against_node_ws: "node", tokio_run;
    smol_client_against_python_websockets: "python", smol_run;
    smol_client_against_node_ws: "node", smol_run;
}

/// wsflow's HTTP/2 client (`Http2Client::connect` from the builder) on one connection to
/// Hypercorn, which says how many WebSockets it accepted and over which HTTP version: three
/// WebSockets at once, permessage-deflate and a subprotocol agreed on each, messages of every
/// kind interleaved across them, a close from each side (with the code and reason arriving,
/// and the WebSocket ending within a second: Hypercorn does not end its stream after the
/// client's close, and over HTTP/2 nobody needs to wait for that), and the last WebSocket
/// still working after the others have ended.
async fn http2_client_checks(builder: wsflow_tokio::ClientBuilder) {
    use wsflow::{CloseCode, Message};
    let builder = builder.config(common::deflate_config()).subprotocol("chat");
    let (mut client, driver) = wsflow_io::Http2Client::connect(&builder)
        .await
        .expect("HTTP/2 with Hypercorn");
    tokio::spawn(driver);
    assert!(
        client.supports_websockets(),
        "Hypercorn advertises SETTINGS_ENABLE_CONNECT_PROTOCOL"
    );
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let (socket, response) = client.open(builder.clone()).await.expect("a WebSocket over HTTP/2");
        assert_eq!(response.status(), 200);
        assert_eq!(response.subprotocol(), Some("chat"));
        assert!(
            response
                .headers()
                .get("sec-websocket-extensions")
                .is_some_and(|value| value.starts_with("permessage-deflate")),
            "{:?}",
            response.headers()
        );
        sockets.push(socket);
    }
    sockets[2].send_text("streams").await.unwrap();
    let answer = sockets[2].recv_message().await.unwrap();
    assert_eq!(
        answer,
        Some(Message::text("streams:3:2")),
        "three WebSockets, all over HTTP/2"
    );

    // Small messages are interleaved across the three WebSockets; the large ones go round
    // one WebSocket at a time, because Hypercorn 0.18 stalls for good when several of its
    // streams each hold more to send than the client's window (three 2 MiB echoes queued
    // at once do it; hyper's server, in h2_websocket.rs, takes them).
    let text: String = (0..300_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let large = [
        Message::binary((0..(2u32 << 20)).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>()),
        Message::text(text),
    ];
    let small = [
        Message::text("hello over HTTP/2"),
        Message::binary(Vec::new()),
        Message::text("é ✓ 🎉"),
        Message::binary(vec![7u8; 60_000]),
    ];
    for message in &small {
        for socket in &mut sockets {
            socket.send(message.clone()).await.unwrap();
        }
        for socket in &mut sockets {
            assert_eq!(socket.recv_message().await.unwrap().as_ref(), Some(message));
        }
    }
    for message in &large {
        for socket in &mut sockets {
            socket.send(message.clone()).await.unwrap();
            assert_eq!(socket.recv_message().await.unwrap().as_ref(), Some(message));
        }
    }

    let started = std::time::Instant::now();
    sockets[0].send_text("close:4321:bye").await.unwrap();
    assert_eq!(sockets[0].recv_message().await.unwrap(), None);
    let closed = sockets[0].closed().unwrap();
    assert_eq!(closed.code(), CloseCode::new(4321));
    assert_eq!(closed.received.as_ref().map(|frame| frame.reason.as_str()), Some("bye"));
    assert!(closed.is_clean(), "{closed:?}");
    sockets[1].close(CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(sockets[1].recv_message().await.unwrap(), None);
    let closed = sockets[1].closed().unwrap();
    assert_eq!(closed.code(), CloseCode::NORMAL, "{closed:?}");
    assert!(closed.is_clean(), "{closed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "closes took {:?}",
        started.elapsed()
    );

    sockets[2].send_text("still here").await.unwrap();
    assert_eq!(
        sockets[2].recv_message().await.unwrap(),
        Some(Message::text("still here"))
    );
    sockets[2].close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(sockets[2].recv_message().await.unwrap(), None);
}

#[test]
#[ignore = "needs the peers of tests/peers/setup.sh; run by tests/peers/interop.sh"]
fn http2_client_against_hypercorn_over_h2c() {
    let peer = Peer::start("hypercorn");
    let builder = wsflow_tokio::ClientBuilder::new(&format!("{}echo", peer.url));
    common::tokio_block_on_multi(async move {
        tokio::time::timeout(Duration::from_secs(60), http2_client_checks(builder))
            .await
            .expect("within 60 s");
    });
}

#[test]
#[ignore = "needs the peers of tests/peers/setup.sh; run by tests/peers/interop.sh"]
fn http2_client_against_hypercorn_over_tls_with_alpn_h2() {
    let tls = common::tls::self_signed();
    let dir = std::env::temp_dir().join(format!("wsflow-hypercorn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &tls.cert_pem).unwrap();
    std::fs::write(&key, &tls.key_pem).unwrap();
    let peer = Peer::start_with("hypercorn", &[&cert, &key]);
    let port = peer.url.rsplit(':').next().unwrap().trim_end_matches('/').to_owned();
    let builder = wsflow_tokio::ClientBuilder::new(&format!("wss://localhost:{port}/echo")).tls_config(tls.client);
    common::tokio_block_on_multi(async move {
        tokio::time::timeout(Duration::from_secs(60), http2_client_checks(builder))
            .await
            .expect("within 60 s");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
