//! Echoes every text and binary message back unchanged, many connections at once (the
//! Autobahn server suite runs against it). A text message `stop-listening` stops accepting
//! new connections; the process exits when the current ones are done.
//!
//! `cargo run -p wsflow-tokio --example echo-server -- [ADDR]` (default 127.0.0.1:9002)

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use wsflow_tokio::{Error, Message};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("echo-server: listening on {}", listener.local_addr()?);
    let stop_listening = Arc::new(Notify::new());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = accepted?;
                let stop_listening = stop_listening.clone();
                connections.spawn(async move {
                    if let Err(error) = echo(tcp, &stop_listening).await {
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

async fn echo(tcp: TcpStream, stop_listening: &Notify) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let mut websocket = wsflow_tokio::accept(tcp).await?;
    while let Some(message) = websocket.recv_message().await? {
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            stop_listening.notify_one();
        }
        websocket.send(message).await?;
    }
    Ok(())
}
