//! Heap held by idle connections (and, without context takeover, between compressed
//! messages), measured with a counting allocator (this test binary only).

mod support;

use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use support::*;
use wsflow::frame::OpCode;
use wsflow::{Config, Connection, Message};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes currently allocated on the heap.
fn live() -> isize {
    let stats = ALLOCATOR.stats();
    // Reallocations are already counted in both totals.
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// A plain `main` (no test harness): the counter is global, so nothing else may run beside it.
fn main() {
    let config = Arc::new(Config::default());
    let now = Instant::now();

    // A burst of traffic, to be fully drained before the connection idles.
    let mut input = Vec::new();
    for i in 0..1000u32 {
        input.extend(client_frame(OpCode::Binary, true, &i.to_be_bytes()));
        input.extend(client_frame(OpCode::Ping, true, b"p"));
    }
    input.extend(client_frame(OpCode::Text, false, &[b'a'; 3000]));
    let end = client_frame(OpCode::Continuation, true, b"end");

    let before = live();
    let mut server = Connection::server(config.clone(), now);
    assert_eq!(live() - before, 0, "a new server connection allocates nothing");
    server.handle_data(now, &input);
    for _ in 0..10 {
        server.send(Message::binary(vec![1u8; 100])).unwrap();
    }
    drop(drain_events(&mut server));
    drop(drain_transmits(&mut server));
    let server_idle = live() - before;
    // The unfinished text message (3000 bytes, and its boxed reassembly state) is the only
    // thing legitimately held.
    assert!(server_idle <= 3000 + 128, "idle server holds {server_idle} bytes");
    server.handle_data(now, &end);
    drop(drain_events(&mut server));
    let server_idle = live() - before;
    // Drained queues are freed: nothing remains.
    assert_eq!(
        server_idle, 0,
        "idle server holds {server_idle} bytes after the message completed"
    );

    let before = live();
    let mut client = Connection::client(config, now, [5; 32]);
    client.send(Message::text("hello")).unwrap();
    drop(drain_transmits(&mut client));
    let client_idle = live() - before;
    assert!(
        client_idle <= 400,
        "idle client holds {client_idle} bytes (the mask generator)"
    );
    println!(
        "heap held while idle: server {server_idle} B, client {client_idle} B; Connection struct {} B",
        std::mem::size_of::<Connection>()
    );
    drop(server);
    drop(client);

    a_queue_that_never_empties_stays_bounded(&config_default());
    kept_tiny_messages_hold_little_more_than_themselves(&config_default());
    bytes_waiting_for_a_slow_peer_hold_little_more_than_themselves(&config_default());
    #[cfg(feature = "deflate")]
    no_context_takeover_holds_no_compressor();
    println!("memory: all passed");
}

fn config_default() -> Arc<Config> {
    Arc::new(Config::default())
}

/// One event always waits (the reader pulls one per read, one behind), so the queue never
/// empties: what it holds per message must still be released.
fn a_queue_that_never_empties_stays_bounded(config: &Arc<Config>) {
    let now = Instant::now();
    let mut server = Connection::server(config.clone(), now);
    let frame = client_frame(OpCode::Binary, true, b"x");
    server.handle_data(now, &frame);
    let mut after = |reads| {
        for _ in 0..reads {
            server.handle_data(now, &frame);
            assert!(matches!(server.poll_event(), Some(wsflow::Event::Message(_))));
        }
        live()
    };
    let after_1k = after(1_000);
    let after_201k = after(200_000);
    let growth = after_201k - after_1k;
    assert!(
        growth < 64 << 10,
        "a queue of at most 2 events grew by {growth} bytes over 200k messages"
    );
}

/// One small message per read, each kept by the application (a chat history): each must
/// not pin a whole block.
fn kept_tiny_messages_hold_little_more_than_themselves(config: &Arc<Config>) {
    let now = Instant::now();
    let mut server = Connection::server(config.clone(), now);
    let frame = client_frame(OpCode::Binary, true, b"x");
    let before = live();
    let mut kept = Vec::with_capacity(1000);
    for _ in 0..1000 {
        server.handle_data(now, &frame);
        kept.extend(server.poll_event());
    }
    let held = live() - before;
    assert!(held < 1 << 20, "1000 kept 1-byte messages hold {held} bytes");
}

/// A peer that does not read: every small message sent goes out in a transmit of its own
/// that waits in the adapter's queue. The transmits must not keep the spare room of the
/// send buffer they came from.
fn bytes_waiting_for_a_slow_peer_hold_little_more_than_themselves(config: &Arc<Config>) {
    let now = Instant::now();
    let mut server = Connection::server(config.clone(), now);
    let before = live();
    let mut waiting = Vec::new();
    for _ in 0..10_000 {
        server.send(Message::binary(vec![7u8; 16])).unwrap();
        while let Some(wsflow::Transmit::Data(bytes)) = server.poll_transmit() {
            waiting.push(bytes);
        }
    }
    let written: usize = waiting.iter().map(|bytes| bytes.len()).sum();
    assert_eq!(written, 10_000 * 18);
    let held = live() - before - (waiting.capacity() * std::mem::size_of::<bytes::Bytes>()) as isize;
    assert!(
        held <= 2 * written as isize,
        "{written} bytes waiting to be written hold {held} bytes of heap"
    );
}

/// A server that does not keep its compression context (`server_no_context_takeover`)
/// holds no compressor between messages: its connections compress with one their thread
/// shares. With context takeover each holds one (about 256 KiB of heap in zlib-rs).
#[cfg(feature = "deflate")]
fn no_context_takeover_holds_no_compressor() {
    use wsflow::DeflateConfig;

    let held_per_connection = |no_takeover: bool| {
        let mut deflate = DeflateConfig::default();
        deflate.server_no_context_takeover(no_takeover);
        let mut server_config = Config::default();
        server_config.deflate(Some(deflate));
        let mut client_config = Config::default();
        client_config.deflate(Some(DeflateConfig::default()));
        let mut pairs: Vec<Pair> = (0..20)
            .map(|_| Pair::with_configs(client_config.clone(), server_config.clone()))
            .collect();
        // One message first: the thread's shared compressor is made once, outside the count.
        pairs[0].server.send(Message::text("x".repeat(200))).unwrap();
        pairs[0].collect();
        let before = live();
        for pair in &mut pairs[1..] {
            pair.server.send(Message::text("y".repeat(200))).unwrap();
            pair.collect();
            pair.to_client.clear();
        }
        (live() - before) / 19
    };
    let keeping = held_per_connection(false);
    let fresh = held_per_connection(true);
    assert!(keeping > 100 << 10, "a compressor with context: {keeping} bytes");
    assert!(
        fresh < 4 << 10,
        "without context takeover a connection held {fresh} bytes"
    );
}
