//! permessage-deflate: memory per connection, compression ratio and throughput for
//! JSON-like text and random binary, at several window sizes and levels.
//!
//! `cargo bench -p wsflow --bench deflate`
//!
//! For comparison, Python websockets defaults to 12-bit windows and memLevel 5 to save
//! memory (its documentation's compression guide tabulates memory and ratio per setting);
//! zlib's memLevel is not exposed by flate2, so wsflow runs at memLevel 8.

use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use wsflow::{
    Accept, ClientHandshake, ClientRequest, Config, Connection, DeflateConfig, Event, Message, ServerHandshake,
    Transmit,
};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// A client and a server connection through the real handshake.
fn pair(config: Config) -> (Connection, Connection) {
    let config = Arc::new(config);
    let now = Instant::now();
    let request = ClientRequest::new("ws://bench/").unwrap();
    let mut client = ClientHandshake::new(&request, config.clone(), now, [3; 32]).unwrap();
    let mut server = ServerHandshake::new(config, now);
    while let Some(Transmit::Data(bytes)) = client.poll_transmit() {
        server.handle_data(now, &bytes);
    }
    let _ = server.poll_event();
    let mut server = server.accept(now, Accept::new()).unwrap();
    while let Some(Transmit::Data(bytes)) = server.poll_transmit() {
        client.handle_data(now, &bytes);
    }
    let _ = client.poll_event();
    (client.into_connection(now).unwrap(), server)
}

/// Sends every message from `from` to `to`; returns (wire bytes, seconds).
fn transfer(from: &mut Connection, to: &mut Connection, messages: &[Vec<u8>], text: bool) -> (usize, f64) {
    let started = Instant::now();
    let mut wire = 0;
    for message in messages {
        if text {
            from.send(Message::text(String::from_utf8(message.clone()).unwrap()))
                .unwrap();
        } else {
            from.send(Message::binary(message.clone())).unwrap();
        }
        while let Some(Transmit::Data(bytes)) = from.poll_transmit() {
            wire += bytes.len();
            to.handle_data(Instant::now(), &bytes);
        }
        while let Some(event) = to.poll_event() {
            assert!(matches!(event, Event::Message(_)));
        }
    }
    (wire, started.elapsed().as_secs_f64())
}

fn json_messages() -> Vec<Vec<u8>> {
    (0..2000)
        .map(|i| {
            format!(
                r#"{{"type":"chat","id":{i},"room":"general","user":{{"name":"user{}","online":true}},"text":"message number {i} about the weather and the {} game","ts":{}}}"#,
                i % 37,
                ["football", "chess", "go", "tennis"][i % 4],
                1_700_000_000 + i * 7
            )
            .into_bytes()
        })
        .collect()
}

fn random_messages() -> Vec<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..200)
        .map(|_| {
            (0..4096)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect()
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` probes bench binaries this way
    }
    let json = json_messages();
    let random = random_messages();
    let json_bytes: usize = json.iter().map(Vec::len).sum();
    let random_bytes: usize = random.iter().map(Vec::len).sum();
    println!("permessage-deflate, wsflow (flate2 + zlib-rs, memLevel 8), context takeover on");
    println!(
        "{:>11} {:>5} | {:>12} | {:>10} {:>9} {:>9} | {:>10} {:>9}",
        "window bits", "level", "heap/conn", "JSON ratio", "comp MB/s", "both MB/s", "rand ratio", "both MB/s"
    );
    for (bits, level) in [(15, 6), (15, 1), (12, 6), (12, 1), (10, 6), (9, 1)] {
        let mut deflate = DeflateConfig::default();
        deflate
            .server_max_window_bits(bits)
            .client_max_window_bits(bits)
            .window_bits(bits)
            .level(level);
        let mut config = Config::default();
        config.deflate(Some(deflate));
        let before = live();
        let (mut client, mut server) = pair(config);
        // One message each way so both ends hold a compressor and a decompressor.
        let (_, _) = transfer(&mut client, &mut server, &json[..1], true);
        let (_, _) = transfer(&mut server, &mut client, &json[..1], true);
        let per_connection = (live() - before) / 2;
        let (json_wire, json_secs) = transfer(&mut client, &mut server, &json, true);
        let compress_started = Instant::now();
        let mut probe = DeflateProbe::new(bits, level);
        for message in &json {
            probe.compress(message);
        }
        let compress_secs = compress_started.elapsed().as_secs_f64();
        let (random_wire, random_secs) = transfer(&mut client, &mut server, &random, false);
        println!(
            "{:>11} {:>5} | {:>9} KiB | {:>9.1}% {:>9.0} {:>9.0} | {:>9.1}% {:>9.0}",
            bits,
            level,
            per_connection / 1024,
            100.0 * json_wire as f64 / json_bytes as f64,
            json_bytes as f64 / compress_secs / 1e6,
            json_bytes as f64 / json_secs / 1e6,
            100.0 * random_wire as f64 / random_bytes as f64,
            random_bytes as f64 / random_secs / 1e6,
        );
    }
    // The defaults: compress with a 12-bit window, accept whatever the peer uses (15).
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    let before = live();
    let (mut client, mut server) = pair(config);
    transfer(&mut client, &mut server, &json[..1], true);
    transfer(&mut server, &mut client, &json[..1], true);
    let (json_wire, _) = transfer(&mut client, &mut server, &json, true);
    println!(
        "defaults (compress with 12 bits, level 1; negotiated 15): {} KiB/connection, JSON {:.1}%",
        (live() - before) / 2 / 1024,
        100.0 * json_wire as f64 / json_bytes as f64
    );
    // No context takeover either way: no compressor is held per connection (the thread's
    // shared one compresses each message from a fresh context); each message alone.
    let mut deflate = DeflateConfig::default();
    deflate
        .server_no_context_takeover(true)
        .client_no_context_takeover(true);
    let mut config = Config::default();
    config.deflate(Some(deflate));
    let (mut client, mut server) = pair(config);
    transfer(&mut client, &mut server, &json[..1], true);
    transfer(&mut server, &mut client, &json[..1], true);
    let before = live();
    let (mut client, mut server) = (client, server);
    let (json_wire, _) = transfer(&mut client, &mut server, &json, true);
    let (mut client_2, mut server_2) = pair({
        let mut config = Config::default();
        let mut deflate = DeflateConfig::default();
        deflate
            .server_no_context_takeover(true)
            .client_no_context_takeover(true);
        config.deflate(Some(deflate));
        config
    });
    let connection_before = live();
    transfer(&mut client_2, &mut server_2, &json[..1], true);
    transfer(&mut server_2, &mut client_2, &json[..1], true);
    println!(
        "no context takeover (both ways): {} KiB/connection after a message each way, JSON {:.1}% (heap after the run: {} KiB)",
        (live() - connection_before) / 2 / 1024,
        100.0 * json_wire as f64 / json_bytes as f64,
        (live() - before) / 1024
    );
    println!("ratio = bytes on the wire (frames included) / message bytes; 'both' = compress + inflate + framing");
}

/// Compression alone, through a bare flate2 compressor as the codec configures it.
struct DeflateProbe(flate2::Compress);

impl DeflateProbe {
    fn new(bits: u8, level: u32) -> Self {
        Self(flate2::Compress::new_with_window_bits(
            flate2::Compression::new(level),
            false,
            bits.max(9),
        ))
    }

    fn compress(&mut self, input: &[u8]) {
        let mut out = Vec::with_capacity(input.len() + 64);
        self.0
            .compress_vec(input, &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        std::hint::black_box(out);
    }
}
