//! Echoes every message back. A text message `stop-listening` stops accepting new
//! connections; the process exits once the current ones are done. permessage-deflate is
//! accepted when a client offers it.
//!
//! `cargo run -p wsflow-smol --example echo-server -- [ADDR]` (default 127.0.0.1:9002)

use std::sync::Arc;

use smol::channel;
use smol::future::FutureExt;
use smol::net::{TcpListener, TcpStream};
use wsflow_smol::wsflow::DeflateConfig;
use wsflow_smol::{Accept, Accepted, Config, Decision, Message};

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: &[&str] = &["chat", "superchat"];

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    smol::block_on(async {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("echo-server listening on {}", listener.local_addr()?);
        let mut config = Config::default();
        config.deflate(Some(DeflateConfig::default()));
        let config = Arc::new(config);
        let (stop, stop_requested) = channel::bounded::<()>(1);
        // Every connection holds a clone of `alive`: `all_done` ends when the last one is dropped.
        let (alive, all_done) = channel::bounded::<()>(1);
        loop {
            let accepted = async { Some(listener.accept().await) }
                .or(async {
                    stop_requested.recv().await.ok();
                    None
                })
                .await;
            let Some(accepted) = accepted else { break };
            let (stream, peer) = accepted?;
            let (stop, alive, config) = (stop.clone(), alive.clone(), config.clone());
            smol::spawn(async move {
                if let Err(error) = echo(stream, config, &stop).await {
                    eprintln!("{peer}: {error}");
                }
                drop(alive);
            })
            .detach();
        }
        // Closing the listening socket refuses new connections at once (a listener kept
        // open would let the kernel take them into its backlog, unanswered).
        drop(listener);
        eprintln!("stopped listening; waiting for open connections");
        drop(alive);
        all_done.recv().await.ok();
        Ok(())
    })
}

async fn echo(stream: TcpStream, config: Arc<Config>, stop: &channel::Sender<()>) -> Result<(), wsflow_smol::Error> {
    stream.set_nodelay(true)?;
    let accepted = wsflow_smol::accept_with(stream, config, |request| {
        Decision::Accept(Accept::new().subprotocol_from(request, SUBPROTOCOLS))
    });
    // Taken apart where it is returned: the request is dropped at once.
    let Accepted::WebSocket(mut socket, _) = accepted.await? else {
        return Ok(()); // a plain HTTP request, answered with 426
    };
    while let Some(message) = socket.recv_message().await? {
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            stop.try_send(()).ok();
        }
        socket.send(message).await?;
    }
    Ok(())
}
