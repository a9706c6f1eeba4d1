//! Sends each line of stdin as a text message and prints what arrives; on end of input,
//! closes with 1000 and waits for the closing handshake.
//!
//! `cargo run -p wsflow-tokio --example client -- [URL]` (default ws://127.0.0.1:9002/)

use tokio::io::{AsyncBufReadExt, BufReader};
use wsflow_tokio::{CloseCode, Error, Event, Message};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9002/".into());
    let (websocket, _) = wsflow_tokio::connect(&url).await?;
    eprintln!("client: connected to {url}");
    let (mut sender, mut receiver) = websocket.split();
    let printer = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await? {
            match event {
                Event::Message(Message::Text(text)) => println!("{text}"),
                Event::Message(Message::Binary(data)) => println!("{}", binary_preview(&data)),
                Event::Closed(closed) => eprintln!("client: closed: {closed:?}"),
                _ => {}
            }
        }
        Ok::<_, Error>(())
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        sender.send_text(line).await?;
    }
    sender.close(CloseCode::NORMAL, "").await?;
    printer.await.map_err(std::io::Error::other)?
}

/// `<binary N bytes: hex of the first 16 bytes>`.
fn binary_preview(data: &[u8]) -> String {
    let hex: Vec<String> = data.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    let more = if data.len() > 16 { " ..." } else { "" };
    format!("<binary {} bytes: {}{more}>", data.len(), hex.join(" "))
}
