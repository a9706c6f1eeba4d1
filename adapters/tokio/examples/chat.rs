//! A chat room on one port: the page at `/`, the WebSocket at `/ws` (the room itself, with its
//! protocol, is in `chat/room.rs`, shared with wsflow-axum's chat example).
//!
//! `cargo run -p wsflow-tokio --example chat -- [ADDR]` (default 127.0.0.1:9002)

use std::sync::{Arc, LazyLock};

use tokio::net::{TcpListener, TcpStream};
use wsflow_tokio::wsflow::DeflateConfig;
use wsflow_tokio::{Accept, Accepted, Config, Decision, Error, Request, Response};

#[path = "chat/room.rs"]
mod room;

use room::{Room, PAGE};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "wsflow chat: open http://{}/ in two browser tabs",
        listener.local_addr()?
    );
    serve(listener).await
}

/// Serves the page and the chat room on `listener` until accepting fails.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let room = Arc::new(Room::default());
    loop {
        let (tcp, peer) = listener.accept().await?;
        let room = room.clone();
        tokio::spawn(async move {
            if let Err(error) = visit(tcp, &room).await {
                eprintln!("chat: {peer}: {error}");
            }
        });
    }
}

fn route(request: &Request) -> Decision {
    match request.path() {
        "/ws" if request.is_websocket() => Decision::Accept(Accept::new()),
        "/" => Decision::Respond(
            Response::new(200)
                .with_header("Content-Type", "text/html; charset=utf-8")
                .with_body(PAGE),
        ),
        _ => Decision::Respond(Response::new(404).with_body("not found\n")),
    }
}

/// Browsers offer permessage-deflate, and chat text compresses well.
static CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
});

/// One connection: the page, or a chat member from nickname to departure.
async fn visit(tcp: TcpStream, room: &Room) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let Accepted::WebSocket(websocket, _) = wsflow_tokio::accept_with(tcp, CONFIG.clone(), route).await? else {
        return Ok(());
    };
    room::member(websocket, room).await
}
