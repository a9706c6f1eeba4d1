//! A chat with rooms on one port: the page at `/`, the WebSocket at `/ws?room=NAME` (the
//! chat itself, with its protocol, is in `chat/room.rs`, shared with wsflow-axum's chat
//! example). With `--redis URL`, several instances behind one Redis share their rooms.
//!
//! `cargo run -p wsflow-tokio --example chat -- [ADDR] [--redis redis://127.0.0.1:6379/]`
//! (default 127.0.0.1:9002)

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use wsflow_tokio::{Accept, Accepted, Decision, Error, Request, Response};

#[path = "chat/room.rs"]
pub mod room;

use room::{Chat, CONFIG, PAGE};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (listener, chat) = room::start("wsflow chat").await?;
    serve(listener, chat).await
}

/// Serves the page and the chat on `listener` until accepting fails.
pub async fn serve(listener: TcpListener, chat: Arc<Chat>) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        let chat = chat.clone();
        tokio::spawn(async move {
            if let Err(error) = visit(tcp, &chat).await {
                eprintln!("chat: {peer}: {error}");
            }
        });
    }
}

fn route(request: &Request) -> Decision {
    match request.path() {
        "/ws" if request.is_websocket() && room::room_of(request.target()).is_some() => Decision::Accept(Accept::new()),
        "/ws" => Decision::Respond(Response::new(400).with_body("bad room: letters, digits, - and _, at most 32\n")),
        "/" => Decision::Respond(
            Response::new(200)
                .with_header("Content-Type", "text/html; charset=utf-8")
                .with_body(PAGE),
        ),
        _ => Decision::Respond(Response::new(404).with_body("not found\n")),
    }
}

/// One connection: the page, or a chat member from nickname to departure.
async fn visit(tcp: TcpStream, chat: &Arc<Chat>) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let Accepted::WebSocket(websocket, request) = wsflow_tokio::accept_with(tcp, CONFIG.clone(), route).await? else {
        return Ok(());
    };
    let room = room::room_of(request.target()).unwrap_or_default();
    room::member(websocket, chat, &room).await
}
