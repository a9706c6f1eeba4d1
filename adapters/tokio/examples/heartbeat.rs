//! Keepalive in the core: both ends ping every second and give up after 3 s without a
//! pong. A client with `--silent-after SECS` stops reading then, like a dead peer, and the
//! server reports it.
//!
//! ```text
//! heartbeat server ADDR
//! heartbeat client URL [--silent-after SECS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use wsflow_tokio::wsflow::{CloseReason, Timeout};
use wsflow_tokio::{Config, Error, Event};

fn config() -> Arc<Config> {
    let mut config = Config::default();
    config
        .ping_interval(Some(Duration::from_secs(1)))
        .pong_timeout(Duration::from_secs(3));
    Arc::new(config)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["server", addr] => server(addr).await,
        ["client", url] => client(url, None).await,
        ["client", url, "--silent-after", secs] => {
            let secs: f64 = secs.parse().map_err(std::io::Error::other)?;
            client(url, Some(Duration::from_secs_f64(secs))).await
        }
        _ => {
            eprintln!("usage: heartbeat server ADDR | heartbeat client URL [--silent-after SECS]");
            std::process::exit(2);
        }
    }
}

async fn server(addr: &str) -> Result<(), Error> {
    let listener = TcpListener::bind(addr).await?;
    println!("heartbeat: listening on {}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(error) = watch(tcp).await {
                eprintln!("heartbeat: {peer}: {error}");
            }
        });
    }
}

/// Prints the peer's keepalive traffic until the connection ends, and how it ended.
async fn watch(tcp: tokio::net::TcpStream) -> Result<(), Error> {
    let accept = |_: &wsflow_tokio::Request| wsflow_tokio::Decision::Accept(wsflow_tokio::Accept::new());
    let wsflow_tokio::Accepted::WebSocket(mut websocket, _) = wsflow_tokio::accept_with(tcp, config(), accept).await?
    else {
        return Ok(());
    };
    let mut last_heard = Instant::now();
    while let Some(event) = websocket.recv().await? {
        match event {
            Event::Closed(closed) if closed.reason == CloseReason::TimedOut(Timeout::Keepalive) => {
                let silence = last_heard.elapsed().as_secs_f64();
                println!("heartbeat: peer unresponsive after {silence:.1}s ({:?})", closed.reason);
            }
            Event::Closed(closed) => println!("heartbeat: closed ({:?}, code {})", closed.reason, closed.code()),
            other => {
                last_heard = Instant::now();
                println!("heartbeat: {other:?}");
            }
        }
    }
    Ok(())
}

async fn client(url: &str, silent_after: Option<Duration>) -> Result<(), Error> {
    let (mut websocket, _) = wsflow_tokio::ClientBuilder::new(url).config(config()).connect().await?;
    println!("heartbeat: connected to {url}");
    let print_events = async {
        while let Some(event) = websocket.recv().await? {
            println!("heartbeat: {event:?}");
        }
        Ok::<_, Error>(())
    };
    match silent_after {
        None => print_events.await,
        Some(after) => {
            // Stop polling the connection for 10 s: no reads, no pongs, as if the process hung.
            let _ = tokio::time::timeout(after, print_events).await;
            println!("heartbeat: silent now");
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        }
    }
}
