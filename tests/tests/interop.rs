//! Our clients (every adapter) against real peers nobody here wrote: Python `websockets` and
//! Node `ws` echo servers (tests/peers/py_server.py, node_server.js).
//!
//! The peers are installed by `tests/peers/setup.sh`, so these tests are `#[ignore]`d in a
//! plain `cargo test`; `tests/peers/interop.sh` runs them with `--ignored`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsflow::{CloseCode, Config, DeflateConfig, Event, Message, MessageKind};

const TEXT: &str = "héllo wörld ✓ 🦀";

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// A peer echo server on a free loopback port, killed on drop.
struct Peer {
    child: Child,
    url: String,
}

impl Peer {
    fn start(kind: &str) -> Peer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = peers_dir();
        let mut command = match kind {
            "python" => {
                let mut command = Command::new(dir.join(".venv/bin/python"));
                command.arg(dir.join("py_server.py"));
                command
            }
            _ => {
                let mut command = Command::new("node");
                command.arg(dir.join("node_server.js"));
                command
            }
        };
        let child = command
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start the {kind} peer (run tests/peers/setup.sh): {error}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the {kind} peer did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// Offer permessage-deflate, as browsers do; both peers accept it.
fn deflate_config() -> Arc<Config> {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
}

fn big_binary() -> Bytes {
    Bytes::from((0..(1 << 20)).map(|i: u32| (i * 31 % 251) as u8).collect::<Vec<_>>())
}

/// The checks, written once for the blocking adapter and once (as a macro over the crate)
/// for the async ones.
mod blocking_client {
    use super::*;
    use wsflow_blocking::ClientBuilder;

    pub fn run(url: &str) {
        let (mut ws, response) = ClientBuilder::new(url)
            .config(deflate_config())
            .subprotocol("superchat")
            .subprotocol("chat")
            .connect()
            .unwrap();
        assert_eq!(response.subprotocol(), Some("superchat"), "the first offered protocol");
        let extensions = response.headers().get("sec-websocket-extensions").unwrap_or_default();
        assert!(
            extensions.starts_with("permessage-deflate"),
            "deflate negotiated: {extensions:?}"
        );

        ws.send_text(TEXT).unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(Message::text(TEXT)));
        ws.send_binary(big_binary()).unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(Message::Binary(big_binary())));
        for (i, part) in ["frag", "men", "ted ✓"].iter().enumerate() {
            ws.send_fragment(MessageKind::Text, Bytes::from(part.to_string()), i == 2)
                .unwrap();
        }
        assert_eq!(ws.recv_message().unwrap(), Some(Message::text("fragmented ✓")));
        ws.ping(Bytes::from_static(b"are you there")).unwrap();
        loop {
            match ws.recv().unwrap() {
                Some(Event::Pong(payload)) => break assert_eq!(payload.as_ref(), b"are you there"),
                Some(Event::Ping(_)) => {}
                other => panic!("expected a pong, got {other:?}"),
            }
        }
        // The peer closes with the code and reason we ask for.
        ws.send_text("close:4001:bye").unwrap();
        while ws.recv().unwrap().is_some() {}
        let closed = ws.closed().unwrap();
        assert!(closed.is_clean(), "{closed:?}");
        assert_eq!(
            (closed.code(), closed.received.as_ref().unwrap().reason.as_str()),
            (CloseCode::new(4001), "bye")
        );

        // And we close: 1000 both ways.
        let (mut ws, _) = ClientBuilder::new(url).config(deflate_config()).connect().unwrap();
        ws.close(CloseCode::NORMAL, "done").unwrap();
        while ws.recv().unwrap().is_some() {}
        let closed = ws.closed().unwrap();
        assert!(closed.is_clean() && closed.code() == CloseCode::NORMAL, "{closed:?}");
    }
}

macro_rules! async_client {
    ($name:ident, $krate:ident) => {
        mod $name {
            use super::*;
            use $krate::ClientBuilder;

            pub async fn run(url: &str) {
                let (mut ws, response) = ClientBuilder::new(url)
                    .config(deflate_config())
                    .subprotocol("superchat")
                    .subprotocol("chat")
                    .connect()
                    .await
                    .unwrap();
                assert_eq!(
                    response.subprotocol(),
                    Some("superchat"),
                    "the first offered protocol"
                );
                let extensions = response
                    .headers()
                    .get("sec-websocket-extensions")
                    .unwrap_or_default();
                assert!(
                    extensions.starts_with("permessage-deflate"),
                    "deflate negotiated: {extensions:?}"
                );

                ws.send_text(TEXT).await.unwrap();
                assert_eq!(ws.recv_message().await.unwrap(), Some(Message::text(TEXT)));
                ws.send_binary(big_binary()).await.unwrap();
                assert_eq!(
                    ws.recv_message().await.unwrap(),
                    Some(Message::Binary(big_binary()))
                );
                for (i, part) in ["frag", "men", "ted ✓"].iter().enumerate() {
                    ws.send_fragment(MessageKind::Text, Bytes::from(part.to_string()), i == 2)
                        .await
                        .unwrap();
                }
                assert_eq!(
                    ws.recv_message().await.unwrap(),
                    Some(Message::text("fragmented ✓"))
                );
                ws.ping(Bytes::from_static(b"are you there")).await.unwrap();
                loop {
                    match ws.recv().await.unwrap() {
                        Some(Event::Pong(payload)) => break assert_eq!(payload.as_ref(), b"are you there"),
                        Some(Event::Ping(_)) => {}
                        other => panic!("expected a pong, got {other:?}"),
                    }
                }
                ws.send_text("close:4001:bye").await.unwrap();
                while ws.recv().await.unwrap().is_some() {}
                let closed = ws.closed().unwrap();
                assert!(closed.is_clean(), "{closed:?}");
                assert_eq!(
                    (closed.code(), closed.received.as_ref().unwrap().reason.as_str()),
                    (CloseCode::new(4001), "bye")
                );

                let (mut ws, _) = ClientBuilder::new(url)
                    .config(deflate_config())
                    .connect()
                    .await
                    .unwrap();
                ws.close(CloseCode::NORMAL, "done").await.unwrap();
                while ws.recv().await.unwrap().is_some() {}
                let closed = ws.closed().unwrap();
                assert!(
                    closed.is_clean() && closed.code() == CloseCode::NORMAL,
                    "{closed:?}"
                );
            }
        }
    };
}

async_client!(tokio_client, wsflow_tokio);
async_client!(smol_client, wsflow_smol);

fn tokio_run(url: &str) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(tokio_client::run(url));
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
    smol_client_against_python_websockets: "python", |url| smol::block_on(smol_client::run(url));
    smol_client_against_node_ws: "node", |url| smol::block_on(smol_client::run(url));
}
