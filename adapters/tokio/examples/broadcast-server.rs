//! One room on a broadcast hub: every text or binary message from any connection goes,
//! unchanged, to every open connection, the sender included. Each message is framed once
//! (and with `--deflate`, compressed once: the server asks for `server_no_context_takeover`,
//! so every connection shares one compressed form) however many members there are. A member
//! too slow to take its queue (1,024 messages) is closed with 1008 "too slow".
//!
//! `cargo run --release -p wsflow-tokio --example broadcast-server -- [ADDR] [--deflate]`
//! (default 127.0.0.1:9002)

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use wsflow_tokio::hub::{Hub, HubConfig, SlowConsumer};
use wsflow_tokio::wsflow::DeflateConfig;
use wsflow_tokio::{Accept, Accepted, Config, Decision, Error};

const ROOM: &str = "room";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9002".to_owned();
    let mut deflate = false;
    for arg in args.by_ref() {
        match arg.as_str() {
            "--deflate" => deflate = true,
            other => addr = other.to_owned(),
        }
    }
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "broadcast-server: listening on {} (permessage-deflate {})",
        listener.local_addr()?,
        if deflate { "accepted" } else { "off" }
    );
    serve(listener, config(deflate)).await
}

/// permessage-deflate without server context takeover when `deflate`: compressed once per
/// publish for every member.
pub fn config(deflate: bool) -> Arc<Config> {
    let mut config = Config::default();
    if deflate {
        config.deflate(Some(DeflateConfig::default().server_no_context_takeover(true).clone()));
    }
    Arc::new(config)
}

/// Serves the room on `listener` until accepting fails.
pub async fn serve(listener: TcpListener, config: Arc<Config>) -> std::io::Result<()> {
    let hub = Hub::new(HubConfig {
        queue_len: 1024,
        slow_consumer: SlowConsumer::Close,
        ..HubConfig::default()
    });
    loop {
        let (tcp, peer) = listener.accept().await?;
        let (hub, config) = (hub.clone(), config.clone());
        tokio::spawn(async move {
            if let Err(error) = member(tcp, config, &hub).await {
                eprintln!("broadcast-server: {peer}: {error}");
            }
        });
    }
}

/// One member, in one task: it publishes what it receives and writes what the room delivers
/// meanwhile (`recv_forwarding`).
async fn member(tcp: TcpStream, config: Arc<Config>, hub: &Hub) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    // Taken apart where it is returned: the request is dropped at once.
    let Accepted::WebSocket(mut websocket, _) =
        wsflow_tokio::accept_with(tcp, config, |_| Decision::Accept(Accept::new())).await?
    else {
        return Ok(()); // a plain HTTP request, answered with 426
    };
    let subscriber = hub.subscriber();
    subscriber.subscribe(ROOM);
    let read = async {
        while let Some(message) = websocket.recv_forwarding(&subscriber, |_| None).await? {
            hub.publish(ROOM, message);
        }
        Ok::<(), Error>(())
    }
    .await;
    subscriber.close();
    read
}
