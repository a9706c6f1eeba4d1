//! Echoes every text and binary message back unchanged, on any path, as an axum app (the
//! Autobahn server suite runs against it). permessage-deflate is accepted when a client
//! offers it; the subprotocols `chat` and `superchat` are chosen when offered. A text
//! message `stop-listening` stops accepting new connections; the process exits when the
//! current ones are done.
//!
//! `cargo run -p wsflow-axum --example echo-server -- [ADDR]` (default 127.0.0.1:9002)

use std::sync::{Arc, LazyLock};

use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use wsflow_axum::wsflow::DeflateConfig;
use wsflow_axum::{Config, Message, WebSocket, WebSocketUpgrade};

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: [&str; 2] = ["chat", "superchat"];

static CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
});

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("echo-server (axum): listening on {}", listener.local_addr()?);
    let stop_listening = Arc::new(Notify::new());
    // Every connection holds a sender: `recv` returns `None` once all are done.
    let (open, mut all_done) = mpsc::channel::<()>(1);
    let app = Router::new().fallback({
        let stop_listening = stop_listening.clone();
        move |upgrade: WebSocketUpgrade| async move {
            let (stop_listening, open) = (stop_listening.clone(), open.clone());
            handle(upgrade, stop_listening, open)
        }
    });
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop_listening.notified().await })
        .await?;
    println!("echo-server (axum): stopped listening, waiting for the open connections");
    while all_done.recv().await.is_some() {}
    Ok(())
}

fn handle(upgrade: WebSocketUpgrade, stop_listening: Arc<Notify>, open: mpsc::Sender<()>) -> Response {
    upgrade
        .config(CONFIG.clone())
        .protocols(SUBPROTOCOLS)
        .on_upgrade(move |socket| async move {
            if let Err(error) = echo(socket, &stop_listening).await {
                eprintln!("echo-server (axum): {error}");
            }
            drop(open);
        })
}

async fn echo(mut socket: WebSocket, stop_listening: &Notify) -> Result<(), wsflow_axum::Error> {
    while let Some(message) = socket.recv_message().await? {
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            stop_listening.notify_one();
        }
        socket.send(message).await?;
    }
    Ok(())
}
