//! The chat room of wsflow-tokio's chat example on axum routes: the page at `/`, the
//! WebSocket at `/ws` (permessage-deflate accepted when offered: browsers offer it). The room
//! is the same code (`adapters/tokio/examples/chat/room.rs`); only the way a connection
//! becomes a member differs.
//!
//! `cargo run -p wsflow-axum --example chat -- [ADDR]` (default 127.0.0.1:9002)

use std::sync::{Arc, LazyLock};

use axum::response::{Html, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use wsflow_axum::wsflow::DeflateConfig;
use wsflow_axum::{Config, WebSocketUpgrade};

#[path = "../../tokio/examples/chat/room.rs"]
mod room;

use room::{Room, PAGE};

/// Browsers offer permessage-deflate, and chat text compresses well.
static CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
});

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "wsflow chat (axum): open http://{}/ in two browser tabs",
        listener.local_addr()?
    );
    serve(listener).await
}

/// Serves the page and the chat room on `listener`.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let room = Arc::new(Room::default());
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", get(move |upgrade: WebSocketUpgrade| join(upgrade, room.clone())));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn join(upgrade: WebSocketUpgrade, room: Arc<Room>) -> Response {
    upgrade.config(CONFIG.clone()).on_upgrade(move |socket| async move {
        if let Err(error) = room::member(socket, &room).await {
            eprintln!("chat (axum): {error}");
        }
    })
}
