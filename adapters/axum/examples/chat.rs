//! The chat of wsflow-tokio's chat example on axum routes: the page at `/`, the WebSocket at
//! `/ws?room=NAME`. The chat is the same code (`adapters/tokio/examples/chat/room.rs`); only
//! the way a connection becomes a member differs. With `--redis URL`, several instances
//! behind one Redis share their rooms.
//!
//! `cargo run -p wsflow-axum --example chat -- [ADDR] [--redis redis://127.0.0.1:6379/]`
//! (default 127.0.0.1:9002)

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use wsflow_axum::WebSocketUpgrade;

#[path = "../../tokio/examples/chat/room.rs"]
pub mod room;

use room::{Chat, CONFIG, PAGE};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (listener, chat) = room::start("wsflow chat (axum)").await?;
    serve(listener, chat).await
}

/// Serves the page and the chat on `listener`.
pub async fn serve(listener: TcpListener, chat: Arc<Chat>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        // `any`: GET over HTTP/1.1, CONNECT over HTTP/2.
        .route("/ws", any(move |upgrade: WebSocketUpgrade| join(upgrade, chat.clone())));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn join(upgrade: WebSocketUpgrade, chat: Arc<Chat>) -> Response {
    let Some(room) = room::room_of(upgrade.request().target()) else {
        return (
            StatusCode::BAD_REQUEST,
            "bad room: letters, digits, - and _, at most 32\n",
        )
            .into_response();
    };
    upgrade.config(CONFIG.clone()).on_upgrade(move |socket| async move {
        if let Err(error) = room::member(socket, &chat, &room).await {
            eprintln!("chat (axum): {error}");
        }
    })
}
