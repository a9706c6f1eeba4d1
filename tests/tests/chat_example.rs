//! wsflow-tokio's chat example (adapters/tokio/examples/chat.rs) over loopback TCP: it
//! serves its page to a plain HTTP request, and broadcasts joins, lines and departures.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsflow_tokio::{CloseCode, Message, WebSocket};

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../adapters/tokio/examples/chat.rs"]
mod chat;

#[test]
fn chat_example_serves_the_page_and_broadcasts() {
    common::within("chat", || common::tokio_block_on(serves_the_page_and_broadcasts()));
}

async fn serves_the_page_and_broadcasts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(chat::serve(listener));

    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html"), "{page}");
    assert!(page.contains("<html"), "{page}");

    let url = format!("ws://{addr}/ws");
    let (mut alice, _) = wsflow_tokio::connect(&url).await.unwrap();
    alice.send_text("alice").await.unwrap();
    let (mut bob, _) = wsflow_tokio::connect(&url).await.unwrap();
    bob.send_text("bob").await.unwrap();
    // Alice speaks once she has seen Bob join, so both are in the room.
    wait_for_line(&mut alice, "* bob joined").await;
    alice.send_text("hi bob").await.unwrap();
    wait_for_line(&mut alice, "alice: hi bob").await;
    wait_for_line(&mut bob, "alice: hi bob").await;

    close_cleanly(&mut bob).await;
    wait_for_line(&mut alice, "* bob left").await;
    close_cleanly(&mut alice).await;
}

/// Receives chat lines until `expected` arrives.
async fn wait_for_line(websocket: &mut WebSocket<wsflow_tokio::MaybeTlsStream>, expected: &str) {
    loop {
        match websocket.recv_message().await.unwrap() {
            Some(Message::Text(line)) if line.as_str() == expected => return,
            Some(_) => {}
            None => panic!("closed before {expected:?}"),
        }
    }
}

async fn close_cleanly(websocket: &mut WebSocket<wsflow_tokio::MaybeTlsStream>) {
    websocket.close(CloseCode::NORMAL, "").await.unwrap();
    while websocket.recv().await.unwrap().is_some() {}
    assert!(websocket.closed().unwrap().is_clean());
}
