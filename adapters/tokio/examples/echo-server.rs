//! Echoes every text and binary message back unchanged, many connections at once (the
//! Autobahn server suite runs against it). A text message `stop-listening` stops accepting
//! new connections; the process exits when the current ones are done. permessage-deflate
//! is accepted when a client offers it.
//!
//! `cargo run -p wsflow-tokio --example echo-server -- [ADDR]` (default 127.0.0.1:9002)

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use wsflow_tokio::wsflow::DeflateConfig;
use wsflow_tokio::{Accept, Accepted, Config, Decision, Error, Message};

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
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = accepted?;
                let (stop_listening, config) = (stop_listening.clone(), config.clone());
                connections.spawn(async move {
                    if let Err(error) = echo(tcp, config, &stop_listening).await {
                        eprintln!("echo-server: {peer}: {error}");
                    }
                });
            }
            () = stop_listening.notified() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    println!(
        "echo-server: stopped listening, waiting for {} connection(s)",
        connections.len()
    );
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn echo(tcp: TcpStream, config: Arc<Config>, stop_listening: &Notify) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let accepted = wsflow_tokio::accept_with(tcp, config, |request| {
        Decision::Accept(Accept::new().subprotocol_from(request, SUBPROTOCOLS))
    })
    .await?;
    let Accepted::WebSocket(mut websocket, _) = accepted else {
        return Ok(()); // a plain HTTP request, answered with 426
    };
    while let Some(message) = websocket.recv_message().await? {
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            stop_listening.notify_one();
        }
        websocket.send(message).await?;
    }
    Ok(())
}
