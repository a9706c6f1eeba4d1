//! Codec benchmarks: decoding masked client frames through the normal message API,
//! encoding, and a plain memcpy of the same bytes as the floor.
//!
//! `cargo bench -p wsflow --bench codec`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsflow::frame::{apply_mask, FrameHeader, OpCode, MAX_HEADER_LEN};
use wsflow::{Config, Connection, Event, Transmit};

const SIZES: [usize; 5] = [16, 125, 1024, 64 << 10, 1 << 20];
/// The read buffer size the adapters use.
const READ_SIZE: usize = 64 << 10;

/// About 1 MiB of masked binary frames of `size` payload bytes each (at least one frame).
fn masked_frames(size: usize) -> (Vec<u8>, usize) {
    let count = ((1 << 20) / size).clamp(1, 4096);
    let mut out = Vec::new();
    for index in 0..count {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some([0x11, 0x22, 0x33, index as u8]),
            payload_len: size as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let len = header.encode(&mut head);
        out.extend_from_slice(&head[..len]);
        let start = out.len();
        out.extend((0..size).map(|i| i as u8));
        apply_mask(&mut out[start..], header.mask.unwrap(), 0);
    }
    (out, count)
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in SIZES {
        let (wire, count) = masked_frames(size);
        group.throughput(Throughput::Bytes((size * count) as u64));
        group.bench_with_input(BenchmarkId::new("wsflow", size), &wire, |b, wire| {
            let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
            let now = Instant::now();
            b.iter(|| {
                // As an adapter does: one read buffer's worth at a time, events drained after each.
                let mut received = 0;
                for read in wire.chunks(READ_SIZE) {
                    server.handle_data(now, read);
                    while let Some(event) = server.poll_event() {
                        if let Event::Message(message) = event {
                            received += message.len();
                        }
                    }
                }
                assert_eq!(received, size * count);
            });
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &wire, |b, wire| {
            let mut copy = Vec::with_capacity(wire.len());
            b.iter(|| {
                copy.clear();
                copy.extend_from_slice(black_box(wire));
                black_box(&copy);
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in SIZES {
        let count = ((1 << 20) / size).clamp(1, 4096);
        let payload = bytes::Bytes::from(vec![0x5Au8; size]);
        group.throughput(Throughput::Bytes((size * count) as u64));
        for (name, client) in [("server", false), ("client-masked", true)] {
            group.bench_with_input(BenchmarkId::new(name, size), &payload, |b, payload| {
                let config = Arc::new(Config::default());
                let mut connection = if client {
                    Connection::client(config, Instant::now(), [1; 32])
                } else {
                    Connection::server(config, Instant::now())
                };
                b.iter(|| {
                    for _ in 0..count {
                        connection.send_binary(payload.clone()).unwrap();
                    }
                    let mut written = 0;
                    while let Some(Transmit::Data(bytes)) = connection.poll_transmit() {
                        written += bytes.len();
                    }
                    black_box(written);
                });
            });
        }
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let text = "wsflow validates UTF-8 text: ünïcödé and ASCII alike. ".repeat(20_000);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("validator", |b| {
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

// criterion_group! generates an undocumented function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, decode, encode, utf8);
}
use group::benches;
criterion_main!(benches);
