//! The chat example (adapters/tokio/examples/chat.rs on the shared chat/room.rs) over
//! loopback TCP: it serves its page; members of a room get joins, lines (JSON, with
//! timestamps), who is online and the room's history, and nothing from other rooms; a bad
//! room name is refused; and two chat servers bridged through a real `redis-server` share
//! their rooms (skipped without redis-server, except under CI).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsflow_tokio::{CloseCode, Message, WebSocket};

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../adapters/tokio/examples/chat.rs"]
mod chat;

type Socket = WebSocket<wsflow_tokio::MaybeTlsStream>;

async fn start(redis: Option<&str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let room = chat::room::Chat::new(redis).unwrap();
    if redis.is_some() {
        assert_eq!(room.describe().await, "rooms shared through Redis");
    }
    tokio::spawn(chat::serve(listener, room));
    addr
}

async fn join(addr: &str, room: &str, nick: &str) -> Socket {
    let url = format!("ws://{addr}/ws?room={room}");
    let (mut socket, response) = wsflow_tokio::ClientBuilder::new(&url)
        .config(common::deflate_config())
        .connect()
        .await
        .unwrap();
    let extensions = response.headers().get("sec-websocket-extensions").unwrap_or_default();
    assert!(extensions.contains("server_no_context_takeover"), "{extensions:?}");
    socket.send_text(nick).await.unwrap();
    let hello = next_event(&mut socket).await;
    assert!(
        hello.starts_with(&format!(r#"{{"type":"hello","room":"{room}","nick":"{nick}""#)),
        "{hello}"
    );
    socket
}

async fn next_event(socket: &mut Socket) -> String {
    let message = tokio::time::timeout(Duration::from_secs(10), socket.recv_message()).await;
    match message.expect("an event within 10 s").unwrap() {
        Some(Message::Text(text)) => text.as_str().to_owned(),
        other => panic!("expected a JSON event, got {other:?}"),
    }
}

/// Reads events until one contains every fragment of `expected`; returns it.
async fn wait_for(socket: &mut Socket, expected: &[&str]) -> String {
    loop {
        let event = next_event(socket).await;
        if expected.iter().all(|fragment| event.contains(fragment)) {
            return event;
        }
    }
}

/// Sends a line and writes it at once (not split, a send while received events wait is
/// otherwise written by the next `recv`, and the tests wait on another socket next).
async fn say(socket: &mut Socket, text: &str) {
    socket.send_text(text).await.unwrap();
    socket.flush().await.unwrap();
}

async fn close_cleanly(socket: &mut Socket) {
    socket.close(CloseCode::NORMAL, "").await.unwrap();
    while socket.recv().await.unwrap().is_some() {}
    assert!(socket.closed().unwrap().is_clean());
}

#[test]
fn chat_example_serves_its_page_and_rooms() {
    common::within("chat", || common::tokio_block_on_multi(serves_its_page_and_rooms()));
}

async fn serves_its_page_and_rooms() {
    let addr = start(None).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/html") && page.contains("<html"),
        "{page}"
    );

    let bad = wsflow_tokio::connect(&format!("ws://{addr}/ws?room=no%20spaces")).await;
    assert!(
        matches!(bad, Err(wsflow_tokio::Error::Rejected(ref response)) if response.status() == 400),
        "{bad:?}"
    );

    let mut alice = join(&addr, "lobby", "alice").await;
    wait_for(&mut alice, &[r#""type":"online","nicks":["alice"]"#]).await;
    let mut bob = join(&addr, "lobby", "bob").await;
    let mut carol = join(&addr, "games", "carol").await;
    wait_for(&mut alice, &[r#""type":"join","nick":"bob","ts":"#]).await;
    wait_for(&mut alice, &[r#""type":"online","nicks":["alice","bob"]"#]).await;
    say(&mut alice, "hi \"bob\" ✓").await;
    let line = wait_for(
        &mut bob,
        &[r#""type":"line","nick":"alice","text":"hi \"bob\" ✓","ts":"#],
    )
    .await;
    assert!(line.ends_with('}'), "{line}");

    // A newcomer gets the room's history after its hello.
    let mut dave = join(&addr, "lobby", "dave").await;
    wait_for(&mut dave, &[r#""text":"hi \"bob\" ✓""#]).await;

    // Nothing crosses rooms.
    say(&mut carol, "only games").await;
    wait_for(&mut carol, &["only games"]).await;
    say(&mut alice, "after carol").await;
    let next = wait_for(&mut bob, &[r#""type":"line""#]).await;
    assert!(next.contains("after carol"), "{next}");

    close_cleanly(&mut bob).await;
    wait_for(&mut alice, &[r#""type":"leave","nick":"bob""#]).await;
    wait_for(&mut alice, &[r#""type":"online","nicks":["alice","dave"]"#]).await;
    for socket in [&mut alice, &mut carol, &mut dave] {
        close_cleanly(socket).await;
    }
}

#[test]
fn two_chat_servers_share_their_rooms_through_redis() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(server) = common::redis::RedisServer::start(port) else {
        return;
    };
    let url = Arc::new(format!("redis://127.0.0.1:{port}/"));
    let result = std::panic::catch_unwind(move || {
        common::within("chat redis", move || {
            common::tokio_block_on_multi(async move {
                let (one, two) = (start(Some(&url)).await, start(Some(&url)).await);
                let mut alice = join(&one, "lobby", "alice").await;
                let mut bob = join(&two, "lobby", "bob").await;
                wait_for(&mut alice, &[r#""type":"join","nick":"bob""#]).await;
                wait_for(&mut alice, &[r#""nicks":["alice","bob"]"#]).await;
                say(&mut alice, "across processes").await;
                wait_for(&mut bob, &[r#""nick":"alice","text":"across processes""#]).await;
                say(&mut bob, "and back").await;
                wait_for(&mut alice, &[r#""nick":"bob","text":"and back""#]).await;
                close_cleanly(&mut bob).await;
                wait_for(&mut alice, &[r#""type":"leave","nick":"bob""#]).await;
                close_cleanly(&mut alice).await;
            });
        });
    });
    drop(server);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
