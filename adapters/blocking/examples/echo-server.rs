//! Echoes every message back, a thread per connection (the Autobahn test server).
//!
//! `echo-server [ADDR]` (default 127.0.0.1:9002). A text message `stop-listening` stops
//! accepting new connections; the process exits when the current ones are done.
//! permessage-deflate is accepted when a client offers it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use wsflow_blocking::wsflow::DeflateConfig;
use wsflow_blocking::{accept_with, Accept, Accepted, Config, Decision, Error, Message};

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: &[&str] = &["chat", "superchat"];

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    println!("echo-server listening on ws://{local}/");
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    let config = Arc::new(config);
    let stopping = Arc::new(AtomicBool::new(false));
    let mut connections = Vec::new();
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        let (stopping, config) = (stopping.clone(), config.clone());
        connections.retain(|connection: &thread::JoinHandle<()>| !connection.is_finished());
        connections.push(thread::spawn(move || {
            if let Err(error) = echo(stream, config, &stopping, local) {
                eprintln!("connection failed: {error}");
            }
        }));
    }
    // Closing the listening socket refuses new connections at once (a listener kept
    // open would let the kernel take them into its backlog, unanswered).
    drop(listener);
    println!("stopped listening; waiting for {} connection(s)", connections.len());
    for connection in connections {
        let _ = connection.join();
    }
    Ok(())
}

fn echo(stream: TcpStream, config: Arc<Config>, stopping: &AtomicBool, local: SocketAddr) -> Result<(), Error> {
    stream.set_nodelay(true)?;
    let Accepted::WebSocket(mut ws, _) = accept_with(stream, config, |request| {
        Decision::Accept(Accept::new().subprotocol_from(request, SUBPROTOCOLS))
    })?
    else {
        return Ok(()); // a plain HTTP request, answered with 426
    };
    while let Some(message) = ws.recv_message()? {
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            println!("stop-listening received");
            stopping.store(true, Ordering::SeqCst);
            wake_listener(local);
        }
        ws.send(message)?;
    }
    Ok(())
}

/// Unblocks `accept` with a connection of our own, so the loop sees the flag.
fn wake_listener(mut local: SocketAddr) {
    if local.ip().is_unspecified() {
        local.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    let _ = TcpStream::connect(local);
}
