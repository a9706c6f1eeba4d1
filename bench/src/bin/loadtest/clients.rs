//! `loadtest --clients`: the client side. Each client library drives the same server (the
//! `floor` echo, the cheapest here, so the server's share is the same for all) from a
//! process of its own, single-threaded (the blocking client: a thread per connection),
//! and that process's CPU per message is measured: 64 connections x 16 in flight of 16 B,
//! and 16 connections x 1 in flight of 64 KiB (where masking is most of a client's work).
//! Every echo is compared with what was sent. `loadtest --drive NAME PORT CONNS INFLIGHT
//! SIZE SECS` is one such process: it connects, warms up for a quarter of SECS, then prints
//! `MESSAGES USER_US SYSTEM_US` for the measured SECS.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Cpu, Result};

/// The client libraries, in the order of the table.
pub const CLIENTS: [&str; 6] = [
    "wsflow-tokio",
    "wsflow-smol",
    "wsflow-blocking",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];

const CLIENT_ANCHORS: [&str; 3] = ["tokio-tungstenite", "fastwebsockets", "tokio-websockets"];

/// What one drive measured.
#[derive(Clone, Copy, Debug)]
pub struct Drive {
    pub messages: u64,
    pub cpu: Cpu,
}

impl Drive {
    pub fn us_per_message(&self) -> f64 {
        (self.cpu.user + self.cpu.system).as_secs_f64() * 1e6 / self.messages.max(1) as f64
    }
}

/// Runs one client library in a child process against `port`. `NAME@PATH` runs NAME's
/// client as built into another `loadtest` binary at PATH (e.g. a copy built from another
/// commit), to compare both in the same rounds.
pub fn drive(name: &str, port: u16, connections: usize, in_flight: usize, size: usize, secs: f64) -> Result<Drive> {
    let (name, exe) = match name.split_once('@') {
        Some((name, path)) => (name, std::path::PathBuf::from(path)),
        None => (name, std::env::current_exe()?),
    };
    let output = std::process::Command::new(exe)
        .args(["--drive", name])
        .args([
            port.to_string(),
            connections.to_string(),
            in_flight.to_string(),
            size.to_string(),
        ])
        .arg(secs.to_string())
        .output()?;
    if !output.status.success() {
        return Err(format!("{name}: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let text = String::from_utf8(output.stdout)?;
    let numbers: Vec<u64> = text.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let [messages, user, system] = numbers[..] else {
        return Err(format!("{name}: unexpected output {text:?}").into());
    };
    Ok(Drive {
        messages,
        cpu: Cpu {
            user: Duration::from_micros(user),
            system: Duration::from_micros(system),
        },
    })
}

/// The child process: `--drive NAME PORT CONNS INFLIGHT SIZE SECS`.
pub fn drive_main(args: &[String]) {
    let [name, port, connections, in_flight, size, secs] = args else {
        panic!("--drive NAME PORT CONNS INFLIGHT SIZE SECS")
    };
    let url = format!("ws://127.0.0.1:{port}/");
    let connections: usize = connections.parse().unwrap();
    let in_flight: usize = in_flight.parse().unwrap();
    let size: usize = size.parse().unwrap();
    let window = Duration::from_secs_f64(secs.parse().unwrap());
    let payload = Bytes::from((0..size).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let measure = {
        let (stop, count) = (stop.clone(), count.clone());
        move || {
            std::thread::sleep(window / 4);
            let (before, messages_before) = (self_cpu(), count.load(Ordering::Relaxed));
            std::thread::sleep(window);
            let (after, messages) = (self_cpu(), count.load(Ordering::Relaxed) - messages_before);
            stop.store(true, Ordering::Relaxed);
            let cpu = after - before;
            println!("{messages} {} {}", cpu.user.as_micros(), cpu.system.as_micros());
        }
    };
    let watcher = std::thread::spawn(measure);
    let load = Load {
        url,
        payload,
        in_flight,
        stop,
        count,
    };
    match name.as_str() {
        "wsflow-tokio" => on_tokio(connections, load, wsflow_tokio_client),
        "tokio-tungstenite" => on_tokio(connections, load, tokio_tungstenite_client),
        "fastwebsockets" => on_tokio(connections, load, fastwebsockets_client),
        "tokio-websockets" => on_tokio(connections, load, tokio_websockets_client),
        "wsflow-smol" => {
            let executor = smol::LocalExecutor::new();
            let load = Arc::new(load);
            let tasks: Vec<_> = (0..connections)
                .map(|_| executor.spawn(wsflow_smol_client(load.clone())))
                .collect();
            smol::block_on(executor.run(async {
                for task in tasks {
                    task.await.expect("wsflow-smol client");
                }
            }));
        }
        "wsflow-blocking" => {
            let load = Arc::new(load);
            let threads: Vec<_> = (0..connections)
                .map(|_| {
                    let load = load.clone();
                    std::thread::spawn(move || wsflow_blocking_client(&load).expect("wsflow-blocking client"))
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
        }
        other => panic!("unknown client {other}; one of {CLIENTS:?}"),
    }
    watcher.join().unwrap();
}

/// What every connection of a drive shares.
struct Load {
    url: String,
    payload: Bytes,
    in_flight: usize,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
}

impl Load {
    fn check(&self, echo: &[u8]) -> Result {
        if echo != &self.payload[..] {
            return Err("echo differs".into());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn on_tokio<F, Fut>(connections: usize, load: Load, client: F)
where
    F: Fn(Arc<Load>) -> Fut,
    Fut: std::future::Future<Output = Result> + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let load = Arc::new(load);
    local.block_on(&runtime, async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::task::spawn_local(client(load.clone())))
            .collect();
        for task in tasks {
            task.await.unwrap().expect("client");
        }
    });
}

/// The client process's own CPU time.
fn self_cpu() -> Cpu {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks = |field: &str| Duration::from_millis(field.parse::<u64>().unwrap() * 10);
    Cpu {
        user: ticks(fields[11]),
        system: ticks(fields[12]),
    }
}

/// The echo loop of a wsflow async client, on the adapter `$adapter` (tokio or smol: the
/// same `wsflow-io` WebSocket under each).
macro_rules! wsflow_async_client {
    ($name:ident, $adapter:ident) => {
        async fn $name(load: Arc<Load>) -> Result {
            let (mut websocket, _) = $adapter::ClientBuilder::new(&load.url).connect().await?;
            for _ in 0..load.in_flight {
                websocket.send_binary(load.payload.clone()).await?;
            }
            while !load.stopped() {
                let echo = websocket.recv_message().await?.ok_or("closed")?;
                load.check(echo.payload())?;
                websocket.send_binary(load.payload.clone()).await?;
            }
            Ok(())
        }
    };
}

wsflow_async_client!(wsflow_tokio_client, wsflow_tokio);
wsflow_async_client!(wsflow_smol_client, wsflow_smol);

fn wsflow_blocking_client(load: &Load) -> Result {
    let (mut websocket, _) = wsflow_blocking::ClientBuilder::new(&load.url).connect()?;
    for _ in 0..load.in_flight {
        websocket.send_binary(load.payload.clone())?;
    }
    while !load.stopped() {
        let echo = websocket.recv_message()?.ok_or("closed")?;
        load.check(echo.payload())?;
        websocket.send_binary(load.payload.clone())?;
    }
    Ok(())
}

async fn tokio_tungstenite_client(load: Arc<Load>) -> Result {
    use tokio_tungstenite::tungstenite::Message;
    let tcp = connect(&load.url).await?;
    let (mut websocket, _) = tokio_tungstenite::client_async(load.url.as_str(), tcp).await?;
    for _ in 0..load.in_flight {
        websocket.feed(Message::Binary(load.payload.clone())).await?;
    }
    websocket.flush().await?;
    while !load.stopped() {
        match websocket.next().await.ok_or("closed")?? {
            Message::Binary(echo) => load.check(&echo)?,
            _ => continue,
        }
        websocket.send(Message::Binary(load.payload.clone())).await?;
    }
    Ok(())
}

async fn tokio_websockets_client(load: Arc<Load>) -> Result {
    let tcp = connect(&load.url).await?;
    let (mut websocket, _) = tokio_websockets::ClientBuilder::new()
        .uri(&load.url)?
        .connect_on(tcp)
        .await?;
    for _ in 0..load.in_flight {
        websocket
            .feed(tokio_websockets::Message::binary(load.payload.clone()))
            .await?;
    }
    websocket.flush().await?;
    while !load.stopped() {
        let echo = websocket.next().await.ok_or("closed")??;
        if !echo.is_binary() {
            continue;
        }
        load.check(&echo.into_payload())?;
        websocket
            .send(tokio_websockets::Message::binary(load.payload.clone()))
            .await?;
    }
    Ok(())
}

async fn fastwebsockets_client(load: Arc<Load>) -> Result {
    use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
    // fastwebsockets' client handshake goes through hyper; this one is by hand, as the
    // server side's is (the handshake is not measured).
    let mut tcp = connect(&load.url).await?;
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await?;
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        if tcp.read_buf(&mut response).await? == 0 {
            return Err("closed during the handshake".into());
        }
    }
    let mut websocket = WebSocket::after_handshake(tcp, Role::Client);
    for _ in 0..load.in_flight {
        websocket
            .write_frame(Frame::binary(Payload::Borrowed(&load.payload)))
            .await?;
    }
    while !load.stopped() {
        let frame = websocket.read_frame().await?;
        if frame.opcode != OpCode::Binary {
            continue;
        }
        load.check(&frame.payload)?;
        websocket
            .write_frame(Frame::binary(Payload::Borrowed(&load.payload)))
            .await?;
    }
    Ok(())
}

async fn connect(url: &str) -> Result<TcpStream> {
    let address = url.trim_start_matches("ws://").trim_end_matches('/');
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Prints the table of a `--clients` run: CPU per message for each scenario, and the ratio
/// to the best anchor client.
pub fn print(rows: &[(String, Drive, Drive)], seconds: f64) {
    let best = |pick: fn(&(String, Drive, Drive)) -> f64| {
        rows.iter()
            .filter(|row| CLIENT_ANCHORS.contains(&row.0.as_str()))
            .map(pick)
            .fold(f64::INFINITY, f64::min)
    };
    let (best_small, best_large) = (best(|row| row.1.us_per_message()), best(|row| row.2.us_per_message()));
    println!();
    println!("client CPU per message against the floor server (ratios: against the best anchor client)");
    println!("| client | 64x16 16 B: msg/s | µs per message | 16 x 64 KiB: msg/s | µs per message |");
    println!("|---|---:|---:|---:|---:|");
    for (name, small, large) in rows {
        println!(
            "| {name} | {:.0} | {:.2} ({:.2}x) | {:.0} | {:.1} ({:.2}x) |",
            small.messages as f64 / seconds,
            small.us_per_message(),
            small.us_per_message() / best_small,
            large.messages as f64 / seconds,
            large.us_per_message(),
            large.us_per_message() / best_large
        );
    }
}
