//! Sends each line of stdin as a text message and prints what arrives:
//! `client [URL]` (default ws://127.0.0.1:9002/). EOF on stdin closes with 1000.
//!
//! One thread reads the socket while the main thread reads stdin, through
//! [`WebSocket::split`](wsflow_blocking::WebSocket::split): plain `ws://` only, as TLS
//! streams cannot be split.

use std::io::BufRead;
use std::thread;

use wsflow_blocking::{connect, CloseCode, Error, Event, Message};

fn main() -> Result<(), Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9002/".to_owned());
    let (ws, _) = connect(&url)?;
    eprintln!("connected to {url}; type lines to send them, EOF to close");
    let (mut sender, mut receiver) = ws.split()?;
    let printer = thread::spawn(move || -> Result<(), Error> {
        while let Some(event) = receiver.recv()? {
            match event {
                Event::Message(Message::Text(text)) => println!("{text}"),
                Event::Message(Message::Binary(data)) => println!("{}", describe_binary(&data)),
                Event::Closed(closed) => eprintln!("closed: {} ({:?})", closed.code(), closed.reason),
                _ => {}
            }
        }
        Ok(())
    });
    for line in std::io::stdin().lock().lines() {
        if sender.send_text(line?).is_err() {
            break; // the connection closed; the printer says how
        }
    }
    let _ = sender.close(CloseCode::NORMAL, "");
    printer.join().expect("the printer thread panicked")
}

fn describe_binary(data: &[u8]) -> String {
    let preview: String = data.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    format!("<binary {} bytes: {preview}>", data.len())
}
