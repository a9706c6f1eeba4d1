//! Keepalive in the core: both ends ping every second and give up after 3 s without a pong.
//!
//! `heartbeat server [ADDR]` (default 127.0.0.1:9002) reports each connection's end, e.g.
//! "peer unresponsive after 3.9s". `heartbeat client [URL] [--silent-after SECS]` stops
//! reading after SECS (a dead peer: no pongs), so the server notices.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wsflow_blocking::wsflow::Timeout;
use wsflow_blocking::{accept_with, Accept, Accepted, ClientBuilder, CloseReason, Config, Decision, Error, Event};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => server(args.get(1).map_or("127.0.0.1:9002", String::as_str)),
        Some("client") => {
            let silent_after = args
                .iter()
                .position(|arg| arg == "--silent-after")
                .map(|at| Duration::from_secs_f64(args[at + 1].parse().expect("--silent-after SECS")));
            client(args.get(1).map_or("ws://127.0.0.1:9002/", String::as_str), silent_after)
        }
        _ => {
            eprintln!("usage: heartbeat server [ADDR] | heartbeat client [URL] [--silent-after SECS]");
            std::process::exit(2);
        }
    }
}

fn keepalive() -> Arc<Config> {
    let mut config = Config::default();
    config
        .ping_interval(Some(Duration::from_secs(1)))
        .pong_timeout(Duration::from_secs(3));
    Arc::new(config)
}

fn server(addr: &str) -> Result<(), Error> {
    let listener = TcpListener::bind(addr)?;
    println!("heartbeat server on ws://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        thread::spawn(move || {
            if let Err(error) = watch(stream) {
                eprintln!("connection failed: {error}");
            }
        });
    }
    Ok(())
}

fn watch(stream: std::net::TcpStream) -> Result<(), Error> {
    let peer = stream.peer_addr()?;
    let Accepted::WebSocket(mut ws, _) = accept_with(stream, keepalive(), |_| Decision::Accept(Accept::new()))? else {
        return Ok(());
    };
    println!("{peer}: connected");
    let mut last_heard = Instant::now();
    while let Some(event) = ws.recv()? {
        match event {
            Event::Closed(closed) if closed.reason == CloseReason::TimedOut(Timeout::Keepalive) => {
                let silence = last_heard.elapsed().as_secs_f64();
                println!("{peer}: peer unresponsive after {silence:.1}s ({:?})", closed.reason);
            }
            Event::Closed(closed) => println!("{peer}: closed ({:?})", closed.reason),
            Event::Pong(_) => {
                println!("{peer}: pong");
                last_heard = Instant::now();
            }
            _ => last_heard = Instant::now(),
        }
    }
    Ok(())
}

fn client(url: &str, silent_after: Option<Duration>) -> Result<(), Error> {
    let (mut ws, _) = ClientBuilder::new(url).config(keepalive()).connect()?;
    println!("connected to {url}");
    let started = Instant::now();
    while let Some(event) = ws.recv()? {
        match event {
            Event::Ping(_) => println!("ping (answered)"),
            Event::Pong(_) => println!("pong"),
            Event::Closed(closed) => println!("closed ({:?})", closed.reason),
            _ => {}
        }
        if silent_after.is_some_and(|after| started.elapsed() >= after) {
            println!("going silent: no more reads, so no more pongs");
            thread::sleep(Duration::from_secs(10));
            break;
        }
    }
    Ok(())
}
