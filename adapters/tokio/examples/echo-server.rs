//! Echoes every text and binary message back unchanged, many connections at once (the
//! Autobahn server suite runs against it). A text message `stop-listening` stops accepting
//! new connections; the process exits when the current ones are done. permessage-deflate
//! is accepted when a client offers it.
//!
//! `cargo run -p wsflow-tokio --example echo-server -- [ADDR]` (default 127.0.0.1:9002)
//!
//! Lean per connection (the load test measures this binary: `loadtest --only
//! example:wsflow-tokio,...`): the task is the connection's future itself (one async fn),
//! the request is not kept once accepted, and nothing is allocated per connection for the
//! bookkeeping of the shutdown (each task holds a clone of one channel's sender, and the
//! channel closes once every clone is gone).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use wsflow_tokio::wsflow::DeflateConfig;
use wsflow_tokio::{Accept, Accepted, Config, Decision, Error, Message, Request};

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: &[&str] = &["chat", "superchat"];

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("echo-server: listening on {}", listener.local_addr()?);
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    let config = Arc::new(config);
    let stop_listening = Arc::new(Notify::new());
    // Every connection's task holds a sender: `recv` answers `None` once all are dropped.
    let (open, mut all_done) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = accepted?;
                tokio::spawn(connection(tcp, peer, config.clone(), stop_listening.clone(), open.clone()));
            }
            () = stop_listening.notified() => break,
        }
    }
    drop(listener);
    drop(open);
    println!("echo-server: stopped listening, waiting for the open connections");
    let _ = all_done.recv().await;
    Ok(())
}

/// One connection's task: echoes until the peer closes, and reports an error. One async
/// fn without `?` (each error reported where it happens): a nested `echo(..).await` would
/// hold the arguments of both in the task for the connection's life (about 150 bytes).
/// `_open` is dropped when it ends.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
    stop_listening: Arc<Notify>,
    _open: mpsc::Sender<()>,
) {
    let report = |error: Error| eprintln!("echo-server: {peer}: {error}");
    if let Err(error) = tcp.set_nodelay(true) {
        return report(error.into());
    }
    let hook = |request: &Request| Decision::Accept(Accept::new().subprotocol_from(request, SUBPROTOCOLS));
    // Taken apart at once: kept in a variable, the `Accepted` (the request with it) would
    // stay in the task, beside the WebSocket moved out of it, for the connection's life.
    let mut websocket = match wsflow_tokio::accept_with(tcp, config, hook).await {
        Ok(Accepted::WebSocket(websocket, _request)) => websocket,
        Ok(Accepted::Responded(_)) => return, // a plain HTTP request, answered with 426
        Err(error) => return report(error),
    };
    loop {
        let message = match websocket.recv_message().await {
            Ok(Some(message)) => message,
            Ok(None) => return, // closed
            Err(error) => return report(error),
        };
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            stop_listening.notify_one();
        }
        if let Err(error) = websocket.send(message).await {
            return report(error);
        }
    }
}
