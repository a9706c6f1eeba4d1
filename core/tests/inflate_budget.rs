//! Inflated bytes waiting to be pulled are bounded (`Config::max_waiting_size`): one read of
//! many small compressed messages that each inflate to 1 MiB, or one compressed frame that
//! inflates to 32 MiB in streaming mode, does not become hundreds of MiB on the heap before
//! the application pulls anything. Measured with a counting allocator (this binary only).
#![cfg(feature = "deflate")]

mod support;

use std::alloc::System;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use support::*;
use wsflow::{CloseReason, Config, DeflateConfig, Event, Message};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes currently allocated on the heap.
fn live() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

const MIB: usize = 1 << 20;

/// A pair with permessage-deflate (context takeover both ways, as a hostile client would
/// choose) and the client's compressed bytes for `messages`, not yet delivered.
fn compressed_burst(server_config: Config, messages: &[Message]) -> (Pair, Vec<u8>) {
    let mut client_config = Config::default();
    client_config.deflate(Some(DeflateConfig::default()));
    let mut pair = Pair::with_configs(client_config, server_config);
    for message in messages {
        pair.client.send(message.clone()).unwrap();
    }
    pair.collect();
    let wire = std::mem::take(&mut pair.to_server);
    (pair, wire)
}

fn deflating(config: &mut Config) -> Config {
    config.deflate(Some(DeflateConfig::default()));
    config.clone()
}

/// 200 messages of 1 MiB of zeros, about 1 KiB each on the wire, in one read.
fn many_bombs_in_one_read() {
    let bomb = Message::binary(vec![0u8; MIB]);
    let (mut pair, wire) = compressed_burst(deflating(&mut Config::default()), &vec![bomb; 200]);
    assert!(
        wire.len() * 50 < 200 * MIB,
        "the burst is small on the wire: {} bytes",
        wire.len()
    );
    // The default budget (1 MiB) plus one message, each with the slack of a grown buffer
    // (up to as much again), plus the read set aside; without the budget it is 200 MiB.
    let bound = (4 * MIB + wire.len()) as isize;

    let before = live();
    pair.server.handle_data(pair.now, &wire);
    let held = live() - before;
    assert!(held < bound, "one read holds {held} bytes before anything is pulled");
    assert!(pair.server.io_state().events_waiting());

    let mut count = 0;
    let mut peak = held;
    while let Some(event) = pair.server.poll_event() {
        let Event::Message(message) = event else {
            panic!("unexpected {event:?}")
        };
        assert_eq!(message.len(), MIB);
        assert!(message.payload().iter().all(|&b| b == 0));
        count += 1;
        drop(message);
        peak = peak.max(live() - before);
    }
    assert_eq!(count, 200);
    assert!(peak < bound, "pulling one by one peaks at {peak} bytes");
    assert!(!pair.server.io_state().events_waiting());
}

/// The end of the stream reported while input is held comes after every message in it.
fn eof_after_held_input_comes_last() {
    let mut config = Config::default();
    config.max_waiting_size(0);
    let messages: Vec<Message> = (0..20).map(|i| Message::text(format!("{i}").repeat(5000))).collect();
    let (mut pair, wire) = compressed_burst(deflating(&mut config), &messages);
    pair.server.handle_data(pair.now, &wire);
    pair.server.handle_eof(pair.now);
    let events = drain_events(&mut pair.server);
    assert_eq!(support::messages(&events), messages);
    assert!(matches!(closed(&events).reason, CloseReason::Eof));
}

/// Streaming mode: one frame that inflates to 32 MiB is inflated as its fragments are pulled.
fn streamed_bomb_inflates_as_it_is_pulled() {
    let mut config = Config::default();
    config.streaming(true);
    let (mut pair, wire) = compressed_burst(deflating(&mut config), &[Message::binary(vec![0u8; 32 * MIB])]);
    let before = live();
    pair.server.handle_data(pair.now, &wire);
    let held = live() - before;
    assert!(
        held < (2 * MIB) as isize,
        "one read holds {held} bytes before anything is pulled"
    );

    let mut total = 0;
    let mut peak = held;
    let mut last_fin = false;
    while let Some(event) = pair.server.poll_event() {
        let Event::Fragment { data, fin, .. } = event else {
            panic!("unexpected {event:?}")
        };
        assert!(data.iter().all(|&b| b == 0));
        total += data.len();
        last_fin = fin;
        drop(data);
        peak = peak.max(live() - before);
    }
    assert_eq!(total, 32 * MIB);
    assert!(last_fin);
    assert!(peak < (2 * MIB) as isize, "pulling fragments peaks at {peak} bytes");
}

/// A plain `main` (no test harness): the counter is global, so nothing else may run beside it.
fn main() {
    many_bombs_in_one_read();
    eof_after_held_input_comes_last();
    streamed_bomb_inflates_as_it_is_pulled();
    println!("inflate_budget: 3 checks passed");
}
