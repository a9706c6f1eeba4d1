//! Echo with permessage-deflate (`loadtest --deflate-echo`): 64 connections x 16 in
//! flight, chat-like JSON messages of about 1.1 KiB, compressed both ways with context
//! takeover (the client offers plain `permessage-deflate`; each server answers with its
//! library's defaults); every echo is inflated and compared with what was sent. Figures:
//! messages per second and server CPU per message, against Node `ws` and Python
//! `websockets` with deflate on (their echo servers of tests/peers/, which
//! tests/peers/setup.sh installs).
//!
//! Servers:
//! - `deflate:wsflow-tokio`: wsflow-tokio's echo loop, `Config::deflate(DeflateConfig::default())`
//!   (12-bit server window, level 1, context takeover);
//! - `deflate:node-ws`: tests/peers/node_server.js (`perMessageDeflate: true`: `ws`'s
//!   defaults, 15-bit windows, zlib's default level, a 1,024-byte threshold that the
//!   messages pass);
//! - `deflate:python-websockets`: tests/peers/py_server.py (`websockets`' default
//!   compression: 12-bit windows, memLevel 5, level 6).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Result, Server};

pub const SERVERS: [&str; 3] = ["deflate:wsflow-tokio", "deflate:node-ws", "deflate:python-websockets"];
const ANCHORS: [&str; 2] = ["deflate:node-ws", "deflate:python-websockets"];
const CONNECTIONS: usize = 64;
const IN_FLIGHT: usize = 16;
/// Distinct messages; message `n` of a connection is `MESSAGES[n % len]`.
const PATTERNS: usize = 16;

/// The wsflow server (`--serve deflate:wsflow-tokio`).
pub fn serve(listener: std::net::TcpListener) {
    let mut config = wsflow_tokio::Config::default();
    config.deflate(Some(wsflow::DeflateConfig::default()));
    let config = Arc::new(config);
    crate::servers::serve_tokio(listener, move |tcp| {
        let config = config.clone();
        async move {
            let accepted = wsflow_tokio::accept_with(tcp, config, |_| {
                wsflow_tokio::Decision::Accept(wsflow_tokio::Accept::new())
            });
            let wsflow_tokio::Accepted::WebSocket(mut websocket, _) = accepted.await? else {
                return Ok(());
            };
            while let Some(message) = websocket.recv_message().await? {
                websocket.send(message).await?;
            }
            Ok(())
        }
    });
}

/// The command that starts a Node or Python echo server (it prints `... :PORT` first).
pub fn peer_command(name: &str) -> Option<std::process::Command> {
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers");
    let mut command = match name {
        "deflate:node-ws" => {
            let mut command = std::process::Command::new("node");
            command.arg(peers.join("node_server.js"));
            command
        }
        "deflate:python-websockets" => {
            let mut command = std::process::Command::new(peers.join(".venv/bin/python"));
            command.arg(peers.join("py_server.py"));
            command
        }
        _ => return None,
    };
    command.arg("0");
    Some(command)
}

/// Chat-like JSON lines of 1,100 to 1,200 bytes, each different (over `ws`'s 1,024-byte
/// threshold, so every server compresses every echo).
fn messages() -> Vec<Vec<u8>> {
    (0..PATTERNS)
        .map(|n| {
            let mut text = format!(
                r#"{{"type":"message","room":"general","seq":{n},"user":{{"id":{},"name":"user-{n}","status":"online"}},"text":""#,
                1000 + n * 7
            );
            let words = ["the", "deploy", "finished", "and", "metrics", "look", "fine", "on", "every", "node"];
            let mut i = n;
            while text.len() < 1100 + n * 6 {
                text.push_str(words[i % words.len()]);
                text.push(' ');
                i = i * 31 + 7;
            }
            text.push_str(r#"","ts":1765000000}"#);
            text.into_bytes()
        })
        .collect()
}

/// One connection's codecs: what it sends compressed with its context, what it gets
/// inflated with the server's.
struct Codec {
    compress: Compress,
    decompress: Decompress,
}

impl Codec {
    fn new() -> Self {
        Self {
            compress: Compress::new(Compression::new(6), false),
            decompress: Decompress::new(false),
        }
    }

    /// A masked, compressed text frame of `message`.
    fn frame(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        let mut payload = Vec::with_capacity(message.len() + 64);
        let start = self.compress.total_in();
        loop {
            let consumed = (self.compress.total_in() - start) as usize;
            self.compress
                .compress_vec(&message[consumed..], &mut payload, FlushCompress::Sync)?;
            let done = (self.compress.total_in() - start) as usize == message.len();
            if done && payload.len() < payload.capacity() {
                break;
            }
            payload.reserve(256);
        }
        payload.truncate(payload.len().saturating_sub(4)); // 00 00 ff ff
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0xc1]; // FIN, RSV1, text
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend((payload.len() as u16).to_be_bytes());
        }
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
        Ok(frame)
    }

    fn inflate(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result {
        out.clear();
        let input = [payload, &[0, 0, 0xff, 0xff]].concat();
        let mut consumed = 0;
        loop {
            out.reserve(2048);
            let before = self.decompress.total_in();
            self.decompress
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)?;
            consumed += (self.decompress.total_in() - before) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// The first byte and payload range of the unmasked frame at the start of `bytes`.
fn server_frame(bytes: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)? & 0x7f);
    let (len, head) = match second {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize, 10),
        len => (len as usize, 2),
    };
    let payload = head..head + len;
    (bytes.len() >= payload.end).then_some((first, payload))
}

/// One connection: 16 in flight, each echo inflated and checked, until `stop`.
async fn drive(
    mut tcp: tokio::net::TcpStream,
    messages: Arc<Vec<Vec<u8>>>,
    echoed: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result {
    let mut codec = Codec::new();
    let (mut sent, mut received) = (0usize, 0usize);
    let mut out = Vec::new();
    for _ in 0..IN_FLIGHT {
        out.extend(codec.frame(&messages[sent % PATTERNS])?);
        sent += 1;
    }
    tcp.write_all(&out).await?;
    let mut buf = Vec::with_capacity(64 << 10);
    let mut inflated = Vec::with_capacity(2048);
    loop {
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err("the server closed".into());
        }
        let mut start = 0;
        let mut count = 0;
        out.clear();
        while let Some((first, payload)) = server_frame(&buf[start..]) {
            let body = &buf[start + payload.start..start + payload.end];
            let expected = &messages[received % PATTERNS];
            if first & 0x40 != 0 {
                codec.inflate(body, &mut inflated)?;
                if inflated != *expected {
                    return Err(format!("echo {received} differs").into());
                }
            } else {
                return Err(format!("echo {received} came uncompressed").into());
            }
            received += 1;
            count += 1;
            start += payload.end;
            if !stop.load(Ordering::Relaxed) {
                out.extend(codec.frame(&messages[sent % PATTERNS])?);
                sent += 1;
            }
        }
        buf.drain(..start);
        echoed.fetch_add(count, Ordering::Relaxed);
        if !out.is_empty() {
            tcp.write_all(&out).await?;
        }
        if received == sent {
            return Ok(());
        }
    }
}

/// Server CPU µs per message and messages per second, on a fresh server process.
pub async fn measure(name: &str, window: Duration) -> Result<(f64, f64)> {
    let server = Server::start(name)?;
    let messages = Arc::new(messages());
    let echoed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let tcp = server.connect_offering(true).await?;
        tasks.push(tokio::spawn(drive(tcp, messages.clone(), echoed.clone(), stop.clone())));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu_at, count_at, time_at) = (server.cpu()?, echoed.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(window).await;
    let (cpu, count, elapsed) = (
        server.cpu()? - cpu_at,
        echoed.load(Ordering::Relaxed) - count_at,
        time_at.elapsed(),
    );
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task).await???;
    }
    let seconds = (cpu.user + cpu.system).as_secs_f64();
    Ok((seconds * 1e6 / count as f64, count as f64 / elapsed.as_secs_f64()))
}

/// Prints the medians and the ratios to the best anchor.
pub fn print(rows: &[(String, (f64, f64))]) {
    let best = rows
        .iter()
        .filter(|(name, _)| ANCHORS.contains(&name.as_str()))
        .map(|(_, (cpu, _))| *cpu)
        .fold(f64::NAN, f64::min);
    println!();
    println!(
        "Echo with permessage-deflate, {CONNECTIONS} connections x {IN_FLIGHT} in flight, ~1.1 KiB JSON, context takeover both ways:"
    );
    println!();
    println!("| server | msg/s | server CPU µs/msg | vs best anchor |");
    println!("|---|---:|---:|---:|");
    for (name, (cpu, rate)) in rows {
        let ratio = if best.is_nan() {
            "n/a".to_owned()
        } else {
            format!("{:.2}x", cpu / best)
        };
        println!(
            "| {} | {rate:.0} | {cpu:.2} | {ratio} |",
            name.trim_start_matches("deflate:")
        );
    }
}
