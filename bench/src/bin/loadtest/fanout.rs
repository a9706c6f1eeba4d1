//! The fan-out scenario (`loadtest --fanout`): N members in one room, one of them
//! publishing 100-byte text lines with 16 in flight per member on average; every message
//! goes to every member, the publisher included, and every delivery is checked (in order,
//! byte for byte, inflated first when compressed). Figures: deliveries per second, server
//! CPU per delivery, server RSS per member.
//!
//! Servers, each its library's natural broadcast idiom:
//! - `fanout:wsflow-tokio` / `fanout:wsflow-tokio-deflate`: the hub (`wsflow_io::hub`),
//!   each member one task that publishes what it receives and writes what its subscriber
//!   gets meanwhile (`recv_forwarding`, a batch per write); with deflate the
//!   server asks for `server_no_context_takeover`, so a line is compressed once;
//! - `fanout:wsflow-tokio-split`: the same hub, each member split into a reading task and a
//!   writing task that `forward`s its subscriber;
//! - `fanout:tokio-websockets`, `fanout:tokio-tungstenite`: split, a bounded channel per
//!   member, a writer that feeds what is queued and flushes once (the `forward` idiom);
//! - `fanout:floor`: no library: the frame built once as shared bytes, a channel per member,
//!   one write per member per batch;
//! - `fanout:node-ws[-deflate]`: Node `ws`, `wss.clients.forEach(client => client.send(data))`
//!   (bench/peers/fanout_server.js; with deflate, `threshold: 0` so that 100-byte lines are
//!   compressed, each for its own client);
//! - `fanout:python-websockets[-deflate]`: Python `websockets`, `broadcast(server.connections,
//!   message)` (bench/peers/fanout_server.py; with deflate, its default `compression`).
//!
//! The Node and Python servers run from `tests/peers/` (installed by its `setup.sh`); without
//! them they are left out of the default run, with a note.

use std::collections::HashMap;
use std::future::Future;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use crate::servers::{floor_frame, serve_tokio};
use crate::{Result, Server};

/// Bytes of each line.
const LINE: usize = 100;
/// Messages in flight per member, on average.
const IN_FLIGHT: u64 = 16;
/// Each member's queue in the anchors' servers (and the hub's).
const QUEUE: usize = 1024;

pub const SERVERS: [&str; 10] = [
    "fanout:wsflow-tokio",
    "fanout:wsflow-tokio-split",
    "fanout:wsflow-tokio-deflate",
    "fanout:tokio-websockets",
    "fanout:tokio-tungstenite",
    "fanout:node-ws",
    "fanout:node-ws-deflate",
    "fanout:python-websockets",
    "fanout:python-websockets-deflate",
    "fanout:floor",
];

/// The anchors of this scenario: a row is compared with the best anchor of its kind
/// (deflate on or off).
const ANCHORS: [&str; 6] = [
    "fanout:tokio-websockets",
    "fanout:tokio-tungstenite",
    "fanout:node-ws",
    "fanout:python-websockets",
    "fanout:node-ws-deflate",
    "fanout:python-websockets-deflate",
];

/// Whether `name` is one of the Node or Python servers.
pub fn is_peer(name: &str) -> bool {
    name.starts_with("fanout:node-ws") || name.starts_with("fanout:python-websockets")
}

/// tests/peers/, where Node `ws` and Python `websockets` are installed.
fn peers_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers")
}

/// Whether the Node and Python peers are installed (tests/peers/setup.sh).
pub fn peers_installed() -> bool {
    let dir = peers_dir();
    dir.join("node_modules/ws").is_dir() && dir.join(".venv/bin/python").is_file()
}

/// The command that starts the Node or Python server `name` (it prints its port first).
pub fn peer_command(name: &str) -> Result<std::process::Command> {
    if !peers_installed() {
        return Err(format!("{name}: run tests/peers/setup.sh first").into());
    }
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
    let mut command = if name.starts_with("fanout:node-ws") {
        let mut command = std::process::Command::new("node");
        command.arg(scripts.join("fanout_server.js"));
        command
    } else {
        let mut command = std::process::Command::new(peers_dir().join(".venv/bin/python"));
        command.arg(scripts.join("fanout_server.py"));
        command
    };
    if name.ends_with("-deflate") {
        command.arg("--deflate");
    }
    Ok(command)
}

pub fn serve(name: &str, listener: StdListener) {
    match name {
        "fanout:wsflow-tokio" => serve_tokio(listener, wsflow_member(false)),
        "fanout:wsflow-tokio-split" => serve_tokio(listener, wsflow_split_member()),
        "fanout:wsflow-tokio-deflate" => serve_tokio(listener, wsflow_member(true)),
        "fanout:tokio-websockets" => serve_tokio(listener, channel_member(tokio_websockets_pair)),
        "fanout:tokio-tungstenite" => serve_tokio(listener, channel_member(tokio_tungstenite_pair)),
        "fanout:floor" => serve_tokio(listener, floor_member()),
        other => panic!("unknown server {other}; one of {SERVERS:?}"),
    }
}

/// The room of the wsflow servers: a queue of `QUEUE` messages per member, too slow members
/// closed.
fn room_hub() -> wsflow_tokio::hub::Hub {
    use wsflow_tokio::hub::{Hub, HubConfig, SlowConsumer};
    Hub::new(HubConfig {
        queue_len: QUEUE,
        slow_consumer: SlowConsumer::Close,
        ..HubConfig::default()
    })
}

fn wsflow_member(deflate: bool) -> impl Fn(TcpStream) -> std::pin::Pin<Box<dyn Future<Output = Result> + Send>> {
    let hub = room_hub();
    let mut config = wsflow_tokio::Config::default();
    if deflate {
        config.deflate(Some(
            wsflow::DeflateConfig::default()
                .server_no_context_takeover(true)
                .clone(),
        ));
    }
    let config = Arc::new(config);
    move |tcp| {
        let (hub, config) = (hub.clone(), config.clone());
        Box::pin(async move {
            let accepted = wsflow_tokio::accept_with(tcp, config, |_| {
                wsflow_tokio::Decision::Accept(wsflow_tokio::Accept::new())
            });
            let wsflow_tokio::Accepted::WebSocket(mut websocket, _) = accepted.await? else {
                return Ok(());
            };
            let subscriber = hub.subscriber();
            subscriber.subscribe("room");
            while let Some(message) = websocket.recv_forwarding(&subscriber, |_| None).await? {
                hub.publish("room", message);
            }
            subscriber.close();
            Ok(())
        })
    }
}

/// A member split in two tasks: the reader publishes, the writer `forward`s its subscriber
/// (what `recv_forwarding` does in one task).
fn wsflow_split_member() -> impl Fn(TcpStream) -> std::pin::Pin<Box<dyn Future<Output = Result> + Send>> {
    let hub = room_hub();
    move |tcp| {
        let hub = hub.clone();
        Box::pin(async move {
            let websocket = wsflow_tokio::accept(tcp).await?;
            let (mut sender, mut receiver) = websocket.split();
            let subscriber = hub.subscriber();
            subscriber.subscribe("room");
            let writer = {
                let subscriber = subscriber.clone();
                tokio::spawn(async move { sender.forward(&subscriber, |_| None).await })
            };
            while let Some(message) = receiver.recv_message().await? {
                hub.publish("room", message);
            }
            subscriber.close();
            let _ = writer.await;
            Ok(())
        })
    }
}

/// The members' senders, for the anchors' and the floor's servers.
struct Registry<T> {
    members: Mutex<HashMap<usize, mpsc::Sender<T>>>,
    next: AtomicUsize,
}

impl<T: Clone> Registry<T> {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            members: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        })
    }

    fn join(&self) -> (usize, mpsc::Receiver<T>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.members.lock().unwrap().insert(id, sender);
        (id, receiver)
    }

    fn broadcast(&self, item: &T) {
        for sender in self.members.lock().unwrap().values() {
            let _ = sender.try_send(item.clone());
        }
    }

    fn leave(&self, id: usize) {
        self.members.lock().unwrap().remove(&id);
    }
}

type Pair<M, Si, St> = (Si, St, std::marker::PhantomData<M>);

/// A member on an anchor: split, a channel, a writer that feeds what is queued and flushes
/// once.
fn channel_member<M, Si, St, E, Fut>(
    accept: fn(TcpStream) -> Fut,
) -> impl Fn(TcpStream) -> std::pin::Pin<Box<dyn Future<Output = Result> + Send>>
where
    M: Clone + Send + 'static + Message,
    Si: futures_util::Sink<M, Error = E> + Unpin + Send + 'static,
    St: futures_util::Stream<Item = std::result::Result<M, E>> + Unpin + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
    Fut: Future<Output = Result<Pair<M, Si, St>>> + Send + 'static,
{
    let registry = Registry::<M>::new();
    move |tcp| {
        let registry = registry.clone();
        Box::pin(async move {
            let (mut sink, mut stream, _) = accept(tcp).await?;
            let (id, mut queue) = registry.join();
            let writer = tokio::spawn(async move {
                while let Some(message) = queue.recv().await {
                    sink.feed(message).await?;
                    while let Ok(message) = queue.try_recv() {
                        sink.feed(message).await?;
                    }
                    sink.flush().await?;
                }
                Ok::<_, E>(())
            });
            while let Some(message) = stream.next().await {
                let message = message?;
                if message.is_data() {
                    registry.broadcast(&message);
                }
            }
            registry.leave(id);
            writer.abort();
            Ok(())
        })
    }
}

trait Message {
    fn is_data(&self) -> bool;
}

impl Message for tokio_websockets::Message {
    fn is_data(&self) -> bool {
        self.is_text() || self.is_binary()
    }
}

impl Message for tungstenite::Message {
    fn is_data(&self) -> bool {
        self.is_text() || self.is_binary()
    }
}

type TwsStream = tokio_websockets::WebSocketStream<TcpStream>;

async fn tokio_websockets_pair(
    tcp: TcpStream,
) -> Result<
    Pair<
        tokio_websockets::Message,
        futures_util::stream::SplitSink<TwsStream, tokio_websockets::Message>,
        futures_util::stream::SplitStream<TwsStream>,
    >,
> {
    let (_request, websocket) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
    let (sink, stream) = websocket.split();
    Ok((sink, stream, std::marker::PhantomData))
}

type TtStream = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn tokio_tungstenite_pair(
    tcp: TcpStream,
) -> Result<
    Pair<
        tungstenite::Message,
        futures_util::stream::SplitSink<TtStream, tungstenite::Message>,
        futures_util::stream::SplitStream<TtStream>,
    >,
> {
    let websocket = tokio_tungstenite::accept_async(tcp).await?;
    let (sink, stream) = websocket.split();
    Ok((sink, stream, std::marker::PhantomData))
}

/// No library: the frame built once as shared bytes, one write per member per batch.
fn floor_member() -> impl Fn(TcpStream) -> std::pin::Pin<Box<dyn Future<Output = Result> + Send>> {
    let registry = Registry::<Bytes>::new();
    move |mut tcp| {
        let registry = registry.clone();
        Box::pin(async move {
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                if tcp.read_buf(&mut request).await? == 0 {
                    return Ok(());
                }
            }
            tcp.write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").await?;
            let (mut read, mut write) = tcp.into_split();
            let (id, mut queue) = registry.join();
            let writer = tokio::spawn(async move {
                let mut batch = Vec::new();
                while let Some(frame) = queue.recv().await {
                    batch.extend_from_slice(&frame);
                    while let Ok(frame) = queue.try_recv() {
                        batch.extend_from_slice(&frame);
                    }
                    write.write_all(&batch).await?;
                    batch.clear();
                }
                Ok::<_, std::io::Error>(())
            });
            let mut rx = Vec::with_capacity(64 << 10);
            'read: loop {
                if read.read_buf(&mut rx).await? == 0 {
                    break;
                }
                let mut start = 0;
                while let Some((opcode, mask, payload)) = floor_frame(&rx[start..]) {
                    if opcode == 8 {
                        break 'read;
                    }
                    let payload = start + payload.start..start + payload.end;
                    let mut frame = Vec::with_capacity(payload.len() + 10);
                    frame.push(0x80 | opcode);
                    let len = payload.len();
                    match len {
                        0..=125 => frame.push(len as u8),
                        126..=0xFFFF => frame.extend([126, (len >> 8) as u8, len as u8]),
                        _ => frame.extend([127].into_iter().chain((len as u64).to_be_bytes())),
                    }
                    frame.extend(
                        rx[payload.clone()]
                            .iter()
                            .enumerate()
                            .map(|(i, byte)| byte ^ mask[i % 4]),
                    );
                    registry.broadcast(&Bytes::from(frame));
                    start = payload.end;
                }
                rx.drain(..start);
            }
            registry.leave(id);
            writer.abort();
            Ok(())
        })
    }
}

// ---- the load generator ----

/// One server's fan-out figures.
#[derive(Clone, Copy, Debug)]
pub struct FanoutRow {
    pub deliveries_per_s: f64,
    pub cpu_us_per_delivery: f64,
    pub rss_kib_per_member: f64,
}

/// Line `seq`: `seq:NNNNNNNNNN ` then filler, `LINE` bytes in all.
fn line(seq: u64) -> Vec<u8> {
    let mut text = format!("seq:{seq:010} ").into_bytes();
    text.resize(LINE, b'x');
    text
}

/// Runs the scenario on a fresh server process: `members` members, measured for `window`.
pub async fn measure(name: &str, members: usize, window: Duration) -> Result<FanoutRow> {
    let deflate = name.ends_with("-deflate");
    let server = Server::start(name)?;
    // As the idle scenario measures an echo server's connections: anonymous resident
    // memory (not the binary's code pages faulted in), the baseline once the process has
    // settled, the figure once the members have.
    // What a server sets up once (threads' buffers and arenas) is not a member's cost: 16
    // members come and go first, as in the idle scenario.
    for _ in 0..16 {
        drop(server.connect_offering(deflate).await?);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline = server.anonymous_rss()?;
    let total = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    // The first line each member got: the server subscribes a member some time after its
    // handshake, so lines are sent one at a time until every member has one.
    let started = Arc::new(Mutex::new(Vec::with_capacity(members)));
    let mut publisher = None;
    let mut readers = Vec::new();
    // Dropping a write half would shut the member's sending side down: kept until the end.
    let mut write_halves = Vec::new();
    for index in 0..members {
        let tcp = server.connect_offering(deflate).await?;
        let (read, write) = tcp.into_split();
        if index == 0 {
            publisher = Some(write);
        } else {
            write_halves.push(write);
        }
        let (total, progress, started) = (total.clone(), progress.clone(), started.clone());
        readers.push(tokio::spawn(async move {
            let read = read_member(read, deflate, total, progress, started).await;
            if let Err(error) = &read {
                eprintln!("loadtest: member {index}: {error}");
            }
            read
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_per_member = (server.anonymous_rss()? - baseline) / members as f64 / 1024.0;
    let mut publisher = publisher.ok_or("no members")?;
    let members_u64 = members as u64;
    let mut sent = 0u64;
    // A line, then up to a second for it to reach every member (a server that is slow to
    // go round is not flooded meanwhile: Node with deflate takes 0.4 s for 10,000).
    let ready_by = Instant::now() + Duration::from_secs(60);
    while started.lock().unwrap().len() < members {
        if Instant::now() > ready_by {
            return Err("members not all subscribed within 60 s".into());
        }
        publisher.write_all(&masked_line(sent)).await?;
        sent += 1;
        let line_by = Instant::now() + Duration::from_secs(1);
        while started.lock().unwrap().len() < members && Instant::now() < line_by {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // Deliveries due so far: every member gets every line from its first one on.
    let skipped: u64 = started.lock().unwrap().iter().sum();
    let due = |sent: u64| sent * members_u64 - skipped;
    let mut measured_from = None;
    let start = Instant::now();
    let warmup = Duration::from_millis(500);
    let (mut cpu_at, mut delivered_at, mut time_at) = (server.cpu()?, 0, Instant::now());
    let mut frames = Vec::new();
    loop {
        let now = Instant::now();
        if measured_from.is_none() && now - start >= warmup {
            measured_from = Some(now);
            (cpu_at, delivered_at, time_at) = (server.cpu()?, total.load(Ordering::Relaxed), now);
        }
        if measured_from.is_some_and(|from| now - from >= window) {
            break;
        }
        let delivered = total.load(Ordering::Relaxed);
        let allowed = (IN_FLIGHT * members_u64).saturating_sub(due(sent) - delivered) / members_u64;
        if allowed == 0 {
            tokio::select! {
                () = progress.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(10)) => return Err("no progress for 10 s".into()),
            }
            continue;
        }
        frames.clear();
        for _ in 0..allowed {
            frames.extend(masked_line(sent));
            sent += 1;
        }
        publisher.write_all(&frames).await?;
    }
    let (cpu, delivered, elapsed) = (
        server.cpu()? - cpu_at,
        total.load(Ordering::Relaxed) - delivered_at,
        time_at.elapsed(),
    );
    // Every member gets everything sent, in order (checked as it reads).
    let deadline = Instant::now() + Duration::from_secs(30);
    while total.load(Ordering::Relaxed) < due(sent) {
        if Instant::now() > deadline {
            return Err(format!("{name}: {} of {} deliveries", total.load(Ordering::Relaxed), due(sent)).into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for reader in &readers {
        reader.abort();
    }
    let seconds = (cpu.user + cpu.system).as_secs_f64();
    Ok(FanoutRow {
        deliveries_per_s: delivered as f64 / elapsed.as_secs_f64(),
        cpu_us_per_delivery: seconds * 1e6 / delivered as f64,
        rss_kib_per_member: rss_per_member,
    })
}

/// A client's masked text frame of line `seq`.
fn masked_line(seq: u64) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | LINE as u8];
    frame.extend(mask);
    frame.extend(line(seq).iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
    frame
}

/// Reads one member's frames, checking each line's sequence number and bytes (from the
/// first one it gets, recorded in `started`, on).
async fn read_member(
    mut read: tokio::net::tcp::OwnedReadHalf,
    deflate: bool,
    total: Arc<AtomicU64>,
    progress: Arc<Notify>,
    started: Arc<Mutex<Vec<u64>>>,
) -> Result {
    let mut inflater = flate2::Decompress::new(false);
    let mut buf = Vec::with_capacity(16 << 10);
    let mut inflated = Vec::with_capacity(LINE * 2);
    let mut expected = None;
    loop {
        if read.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut start = 0;
        let mut count = 0;
        while let Some((first, payload)) = server_frame(&buf[start..]) {
            let body = &buf[start + payload.start..start + payload.end];
            let text = if first & 0x40 != 0 {
                if !deflate {
                    return Err("a compressed frame without deflate".into());
                }
                inflated.clear();
                let input = [body, &[0, 0, 0xff, 0xff]].concat();
                inflated.reserve(LINE * 2);
                inflater.decompress_vec(&input, &mut inflated, flate2::FlushDecompress::Sync)?;
                &inflated[..]
            } else {
                body
            };
            let seq = match expected {
                Some(seq) => seq,
                None => {
                    let first = std::str::from_utf8(&text[4..14.min(text.len())])?.parse::<u64>()?;
                    started.lock().unwrap().push(first);
                    first
                }
            };
            if text != line(seq).as_slice() {
                return Err(format!("expected line {seq}, got {:?}", String::from_utf8_lossy(text)).into());
            }
            expected = Some(seq + 1);
            count += 1;
            start += payload.end;
        }
        buf.drain(..start);
        if count > 0 {
            total.fetch_add(count, Ordering::Relaxed);
            progress.notify_one();
        }
    }
}

/// The first byte and payload range of the unmasked frame at the start of `bytes`.
fn server_frame(bytes: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)? & 0x7f);
    let (len, head) = match second {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().unwrap()) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().unwrap()) as usize, 10),
        len => (len as usize, 2),
    };
    let payload = head..head + len;
    (bytes.len() >= payload.end).then_some((first, payload))
}

/// Prints the table and the ratios to the best anchor (deliveries per server CPU-second).
pub fn print(rows: &[(String, FanoutRow)], members: usize) {
    println!();
    println!("Fan-out, {members} members, {LINE}-byte lines, {IN_FLIGHT} in flight per member:");
    println!();
    println!(
        "| server | deliveries/s | server CPU µs/delivery | RSS KiB/member | deliveries per CPU-s vs best anchor (same deflate) |"
    );
    println!("|---|---:|---:|---:|---:|");
    let best = |deflate: bool| {
        rows.iter()
            .filter(|(name, _)| ANCHORS.contains(&name.as_str()) && name.ends_with("-deflate") == deflate)
            .map(|(_, row)| row.cpu_us_per_delivery)
            .fold(f64::NAN, f64::min)
    };
    for (name, row) in rows {
        let best = best(name.ends_with("-deflate"));
        let ratio = if best.is_nan() {
            "n/a (no anchor in the run)".to_owned()
        } else {
            format!("{:.2}x", best / row.cpu_us_per_delivery)
        };
        println!(
            "| {} | {:.0} | {:.2} | {:.1} | {ratio} |",
            name.trim_start_matches("fanout:"),
            row.deliveries_per_s,
            row.cpu_us_per_delivery,
            row.rss_kib_per_member,
        );
    }
}
