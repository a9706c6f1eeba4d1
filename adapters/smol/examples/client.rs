//! Sends each line of stdin as a text message and prints what arrives; EOF on stdin
//! closes the connection with 1000.
//!
//! `cargo run -p wsflow-smol --example client -- [URL]` (default ws://127.0.0.1:9002/)

use smol::io::{AsyncBufReadExt, BufReader};
use smol::stream::StreamExt;
use wsflow_smol::{CloseCode, Error, Event, Message};

fn main() -> Result<(), Error> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9002/".into());
    smol::block_on(async {
        let (socket, _) = wsflow_smol::connect(&url).await?;
        eprintln!("connected to {url}");
        let (mut sender, mut receiver) = socket.split();
        let printer = smol::spawn(async move {
            while let Some(event) = receiver.recv().await? {
                match event {
                    Event::Message(Message::Text(text)) => println!("{text}"),
                    Event::Message(Message::Binary(bytes)) => println!("{}", describe_binary(&bytes)),
                    Event::Closed(closed) => eprintln!("closed: {} ({:?})", closed.code(), closed.reason),
                    other => eprintln!("{other:?}"),
                }
            }
            Ok::<(), Error>(())
        });
        let mut lines = BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
        while let Some(line) = lines.next().await {
            sender.send_text(line?).await?;
        }
        sender.close(CloseCode::NORMAL, "").await?;
        printer.await
    })
}

/// `<binary N bytes: hex of the first 16>`
fn describe_binary(bytes: &[u8]) -> String {
    let preview: Vec<String> = bytes.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    format!("<binary {} bytes: {}>", bytes.len(), preview.join(" "))
}
