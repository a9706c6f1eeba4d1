//! Keepalive from the core: both ends ping every second and give up 3 s after an
//! unanswered ping.
//!
//! `heartbeat server [ADDR]` serves (default 127.0.0.1:9002) and reports peers that stop
//! answering; `heartbeat client [URL] [--silent-after SECS]` connects and, with
//! `--silent-after`, stops reading after SECS seconds, like a peer that hung.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::future::FutureExt;
use smol::net::{TcpListener, TcpStream};
use wsflow_smol::wsflow::{CloseReason, Timeout};
use wsflow_smol::{Accept, Accepted, Config, Decision, Error, Event, WebSocket};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize, default: &str| args.get(index).cloned().unwrap_or_else(|| default.into());
    let mut config = Config::default();
    config
        .ping_interval(Some(Duration::from_secs(1)))
        .pong_timeout(Duration::from_secs(3));
    let config = Arc::new(config);
    smol::block_on(async {
        match args.first().map(String::as_str) {
            Some("server") => server(&arg(1, "127.0.0.1:9002"), config).await,
            Some("client") => {
                let silent_after = args
                    .iter()
                    .position(|arg| arg == "--silent-after")
                    .map(|index| Duration::from_secs_f64(arg(index + 1, "").parse().expect("--silent-after SECS")));
                client(&arg(1, "ws://127.0.0.1:9002/"), config, silent_after).await
            }
            _ => {
                eprintln!("usage: heartbeat server [ADDR] | heartbeat client [URL] [--silent-after SECS]");
                std::process::exit(2);
            }
        }
    })
}

async fn server(addr: &str, config: Arc<Config>) -> Result<(), Error> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!("heartbeat server on {}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        let config = config.clone();
        smol::spawn(async move {
            if let Err(error) = watch(stream, config).await {
                eprintln!("{peer}: {error}");
            }
        })
        .detach();
    }
}

/// Reads until the connection ends and says how it ended.
async fn watch(stream: TcpStream, config: Arc<Config>) -> Result<(), Error> {
    let Accepted::WebSocket(mut socket, _) =
        wsflow_smol::accept_with(stream, config, |_| Decision::Accept(Accept::new())).await?
    else {
        return Ok(());
    };
    let last_heard = log_events(&mut socket).await?;
    match socket.closed() {
        Some(closed) if closed.reason == CloseReason::TimedOut(Timeout::Keepalive) => println!(
            "peer unresponsive after {:.1}s: {:?}",
            last_heard.elapsed().as_secs_f64(),
            closed.reason
        ),
        Some(closed) => println!("peer left: {} {:?}", closed.code(), closed.reason),
        None => {}
    }
    Ok(())
}

async fn client(url: &str, config: Arc<Config>, silent_after: Option<Duration>) -> Result<(), Error> {
    let (mut socket, _) = wsflow_smol::ClientBuilder::new(url).config(config).connect().await?;
    eprintln!("connected to {url}");
    let Some(silent_after) = silent_after else {
        log_events(&mut socket).await?;
        return Ok(());
    };
    let reading = async { log_events(&mut socket).await.map(drop) };
    let silence = async {
        smol::Timer::after(silent_after).await;
        Ok(())
    };
    reading.or(silence).await?;
    eprintln!("going silent (no longer reading)");
    smol::Timer::after(Duration::from_secs(3600)).await;
    Ok(())
}

/// Prints every event until the connection ends; returns when the peer was last heard from.
async fn log_events<S>(socket: &mut WebSocket<S>) -> Result<Instant, Error>
where
    S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin,
{
    let mut last_heard = Instant::now();
    while let Some(event) = socket.recv().await? {
        if !matches!(event, Event::Closed(_)) {
            last_heard = Instant::now();
        }
        eprintln!("{event:?}");
    }
    Ok(last_heard)
}
