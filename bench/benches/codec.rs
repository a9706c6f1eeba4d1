//! Codec micro-benchmarks: wsflow against tungstenite, fastwebsockets and tokio-websockets,
//! each through its normal message API over an in-memory transport, and a plain memcpy of
//! the same bytes as the floor. After criterion, prints a table computed from this run's
//! estimates.
//!
//! `cargo bench --manifest-path bench/Cargo.toml --bench codec [-- FILTER]`

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wsflow::{Config, Connection, Event, Message, Transmit};
use wsflow_bench::{frame_count, masked_frames};

const SIZES: [usize; 5] = [16, 125, 1024, 64 << 10, 1 << 20];
/// Bytes per read, as an adapter reading into a 64 KiB buffer gets them.
const READ_SIZE: usize = 64 << 10;
const ANCHORS: [&str; 3] = ["tungstenite", "fastwebsockets", "tokio-websockets"];
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Version: 13\r\nUser-Agent: bench/1.0\r\nAccept-Encoding: gzip, deflate\r\n\r\n";

/// An in-memory transport for every library: reads replay `data` from the shared position
/// (at most `READ_SIZE` bytes each), writes are counted and dropped.
struct Wire {
    data: Rc<[u8]>,
    position: Rc<Cell<usize>>,
    written: usize,
}

impl Wire {
    /// The transport and a handle that rewinds it.
    fn new(data: &[u8]) -> (Self, Rc<Cell<usize>>) {
        let position = Rc::new(Cell::new(0));
        let wire = Self {
            data: data.into(),
            position: position.clone(),
            written: 0,
        };
        (wire, position)
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.position.get();
        let len = buf.len().min(READ_SIZE).min(self.data.len() - start);
        buf[..len].copy_from_slice(&self.data[start..start + len]);
        self.position.set(start + len);
        Ok(len)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|buf| buf.len()).sum();
        self.written += len;
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let start = this.position.get();
        let len = buf.remaining().min(READ_SIZE).min(this.data.len() - start);
        buf.put_slice(&this.data[start..start + len]);
        this.position.set(start + len);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(buf))
    }

    fn poll_write_vectored(self: Pin<&mut Self>, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs a future over `Wire`, which is always ready: no runtime needed.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an in-memory future waited"),
    }
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in SIZES {
        let (wire, count) = (masked_frames(size), frame_count(size));
        let total = size * count;
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function(BenchmarkId::new("memcpy", size), |b| {
            let mut copy = Vec::with_capacity(wire.len());
            b.iter(|| {
                copy.clear();
                copy.extend_from_slice(black_box(&wire));
                black_box(&copy);
            });
        });
        // A second floor: what any message API that hands out a shared `Bytes` per message
        // pays at least, a slice of a shared buffer and its drop (two atomic updates).
        group.bench_function(BenchmarkId::new("bytes-slice", size), |b| {
            let shared = Bytes::from(wire.clone());
            b.iter(|| {
                let mut received = 0;
                for index in 0..count {
                    received += black_box(shared.slice(index..index + size)).len();
                }
                assert_eq!(received, total);
            });
        });
        group.bench_function(BenchmarkId::new("wsflow", size), |b| {
            let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
            let now = Instant::now();
            b.iter(|| {
                // As an adapter does: a read's worth at a time, events drained after each.
                let mut received = 0;
                for read in wire.chunks(READ_SIZE) {
                    server.handle_data(now, read);
                    while let Some(event) = server.poll_event() {
                        if let Event::Message(message) = event {
                            received += message.len();
                        }
                    }
                }
                assert_eq!(received, total);
            });
        });
        group.bench_function(BenchmarkId::new("tungstenite", size), |b| {
            let (stream, rewind) = Wire::new(&wire);
            let mut ws = tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Server, None);
            b.iter(|| {
                rewind.set(0);
                let received: usize = (0..count).map(|_| ws.read().unwrap().len()).sum();
                assert_eq!(received, total);
            });
        });
        group.bench_function(BenchmarkId::new("fastwebsockets", size), |b| {
            let (stream, rewind) = Wire::new(&wire);
            let mut ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
            b.iter(|| {
                rewind.set(0);
                let received: usize = (0..count)
                    .map(|_| block_on(ws.read_frame()).unwrap().payload.len())
                    .sum();
                assert_eq!(received, total);
            });
        });
        group.bench_function(BenchmarkId::new("tokio-websockets", size), |b| {
            let (stream, rewind) = Wire::new(&wire);
            let mut ws = tokio_websockets::ServerBuilder::new().serve(stream);
            b.iter(|| {
                rewind.set(0);
                let received: usize = (0..count)
                    .map(|_| block_on(ws.next()).unwrap().unwrap().as_payload().len())
                    .sum();
                assert_eq!(received, total);
            });
        });
    }
    group.finish();
}

/// Encoding as a server (`client: false`: unmasked, payloads shared where the library can)
/// or as a client (every payload masked, so copied at least once: memcpy is the floor).
fn encode(c: &mut Criterion, client: bool) {
    let mut group = c.benchmark_group(if client { "encode-client" } else { "encode" });
    let tungstenite_role = if client {
        tungstenite::protocol::Role::Client
    } else {
        tungstenite::protocol::Role::Server
    };
    let fastwebsockets_role = if client {
        fastwebsockets::Role::Client
    } else {
        fastwebsockets::Role::Server
    };
    for size in SIZES {
        let count = frame_count(size);
        let payload = Bytes::from(vec![0x5Au8; size]);
        group.throughput(Throughput::Bytes((size * count) as u64));
        if client {
            group.bench_function(BenchmarkId::new("memcpy", size), |b| {
                let mut copy = Vec::with_capacity(size * count);
                b.iter(|| {
                    copy.clear();
                    for _ in 0..count {
                        copy.extend_from_slice(black_box(&payload));
                    }
                    black_box(&copy);
                });
            });
        }
        encode_wsflow(&mut group, "wsflow", size, client, |connection| {
            connection.send(Message::binary(payload.clone())).unwrap()
        });
        // The payload borrowed, as fastwebsockets gets it: copied into the send buffer.
        encode_wsflow(&mut group, "wsflow-copied", size, client, |connection| {
            connection.send_copied(&payload[..]).unwrap()
        });
        group.bench_function(BenchmarkId::new("tungstenite", size), |b| {
            let (stream, _) = Wire::new(&[]);
            let mut ws = tungstenite::WebSocket::from_raw_socket(stream, tungstenite_role, None);
            b.iter(|| {
                for _ in 0..count {
                    ws.write(tungstenite::Message::Binary(payload.clone())).unwrap();
                }
                ws.flush().unwrap();
            });
        });
        group.bench_function(BenchmarkId::new("fastwebsockets", size), |b| {
            let (stream, _) = Wire::new(&[]);
            let mut ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets_role);
            b.iter(|| {
                for _ in 0..count {
                    let frame = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&payload));
                    block_on(ws.write_frame(frame)).unwrap();
                }
            });
        });
        group.bench_function(BenchmarkId::new("tokio-websockets", size), |b| {
            let (stream, _) = Wire::new(&[]);
            let mut ws = if client {
                tokio_websockets::ClientBuilder::new().take_over(stream)
            } else {
                tokio_websockets::ServerBuilder::new().serve(stream)
            };
            b.iter(|| {
                for _ in 0..count {
                    block_on(ws.feed(tokio_websockets::Message::binary(payload.clone()))).unwrap();
                }
                block_on(ws.flush()).unwrap();
            });
        });
    }
    group.finish();
}

/// wsflow's row of an encode group: `frame_count(size)` sends, then everything written out.
fn encode_wsflow(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    size: usize,
    client: bool,
    send: impl Fn(&mut Connection),
) {
    group.bench_function(BenchmarkId::new(name, size), |b| {
        let config = Arc::new(Config::default());
        let mut connection = if client {
            Connection::client(config, Instant::now(), [7; 32])
        } else {
            Connection::server(config, Instant::now())
        };
        b.iter(|| {
            for _ in 0..frame_count(size) {
                send(&mut connection);
            }
            let mut written = 0;
            while let Some(Transmit::Data(bytes)) = connection.poll_transmit() {
                written += bytes.len();
            }
            black_box(written);
        });
    });
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let text = "wsflow validates UTF-8 text: ünïcödé and ASCII alike. ".repeat(20_000);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("wsflow", |b| {
        b.iter(|| {
            let mut validator = wsflow::utf8::Utf8Validator::new();
            validator.feed(black_box(text.as_bytes())).unwrap();
            validator.finish().unwrap();
        });
    });
    group.bench_function("std", |b| {
        b.iter(|| std::str::from_utf8(black_box(text.as_bytes())).unwrap().len())
    });
    group.finish();
}

/// Server side of the opening handshake: parse the request, build the 101 response.
/// (fastwebsockets upgrades through hyper, which is not measured here.)
fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.bench_function("wsflow", |b| {
        let config = Arc::new(Config::default());
        b.iter(|| {
            let now = Instant::now();
            let mut server = wsflow::ServerHandshake::new(config.clone(), now);
            server.handle_data(now, black_box(REQUEST));
            let Some(wsflow::ServerEvent::Request(_)) = server.poll_event() else {
                panic!("no request")
            };
            let mut connection = server.accept(now, wsflow::Accept::new()).unwrap();
            while let Some(Transmit::Data(bytes)) = connection.poll_transmit() {
                black_box(bytes);
            }
        });
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| black_box(tungstenite::accept(Wire::new(REQUEST).0).unwrap()));
    });
    group.bench_function("tokio-websockets", |b| {
        let builder = tokio_websockets::ServerBuilder::new();
        b.iter(|| black_box(block_on(builder.accept(Wire::new(REQUEST).0)).unwrap()));
    });
    group.finish();
}

fn output_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

fn main() {
    let started = SystemTime::now();
    let mut criterion = Criterion::default()
        .output_directory(&output_directory())
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
        .configure_from_args();
    decode(&mut criterion);
    encode(&mut criterion, false);
    encode(&mut criterion, true);
    utf8(&mut criterion);
    handshake(&mut criterion);
    criterion.final_summary();
    print_tables(started);
}

/// The mean time per iteration in ns of `group/id` if it was measured in this run.
fn mean_ns(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = output_directory().join(group).join(id).join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    value[..value.find([',', '}'])?].trim().parse().ok()
}

fn print_tables(since: SystemTime) {
    print_size_table(
        "decode",
        "Decode + unmask of masked client frames (64 KiB reads)",
        since,
    );
    print_size_table("encode", "Encode (server, unmasked)", since);
    print_size_table("encode-client", "Encode (client, masked)", since);
    println!("\nUTF-8 validation and server handshake, this run:\n");
    println!("| benchmark | ns/iteration | time vs baseline |");
    println!("|---|---:|---:|");
    for (group, ids, baseline) in [
        ("utf8", &["wsflow", "std"][..], "std"),
        (
            "handshake",
            &["wsflow", "tungstenite", "tokio-websockets"][..],
            "tokio-websockets",
        ),
    ] {
        let base = mean_ns(group, baseline, since);
        for id in ids {
            if let Some(ns) = mean_ns(group, id, since) {
                println!("| {group}/{id} | {ns:.0} | {} |", ratio(ns, base));
            }
        }
    }
}

/// One row per size and library of `group`: time per frame, throughput, and ratios to the
/// memcpy floor (measured for decoding and client encoding) and to the fastest anchor.
fn print_size_table(group: &str, title: &str, since: SystemTime) {
    println!("\n{title}, this run:\n");
    println!("| size | library | ns/frame | GB/s | speed vs memcpy | time vs best anchor |");
    println!("|---:|---|---:|---:|---:|---:|");
    for size in SIZES {
        let memcpy = mean_ns(group, &format!("memcpy/{size}"), since);
        let best = best_anchor(group, size, since);
        for library in ["memcpy", "bytes-slice", "wsflow", "wsflow-copied"]
            .iter()
            .chain(&ANCHORS)
        {
            let Some(ns) = mean_ns(group, &format!("{library}/{size}"), since) else {
                continue;
            };
            println!(
                "| {} | {library} | {:.1} | {:.2} | {} | {} |",
                size_name(size),
                ns / frame_count(size) as f64,
                (size * frame_count(size)) as f64 / ns,
                memcpy.map_or("-".into(), |memcpy| format!("{:.0}%", memcpy / ns * 100.0)),
                ratio(ns, best),
            );
        }
    }
}

/// The fastest anchor's time for `size` in `group`.
fn best_anchor(group: &str, size: usize, since: SystemTime) -> Option<f64> {
    ANCHORS
        .iter()
        .filter_map(|anchor| mean_ns(group, &format!("{anchor}/{size}"), since))
        .reduce(f64::min)
}

fn ratio(ns: f64, best: Option<f64>) -> String {
    best.map_or("-".into(), |best| format!("{:.2}x", ns / best))
}

fn size_name(size: usize) -> String {
    match size {
        size if size >= 1 << 20 => format!("{} MiB", size >> 20),
        size if size >= 1 << 10 => format!("{} KiB", size >> 10),
        size => format!("{size} B"),
    }
}
