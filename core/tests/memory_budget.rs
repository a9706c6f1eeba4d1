//! `Config::memory_budget`: connections sharing a `MemoryBudget` together hold at most its
//! limit in unfinished incoming messages; the one that would pass it is failed with 1013
//! and `MemoryBudgetExceeded` while the others go on; every charge is given back when its
//! message completes, when its connection fails or is dropped; messages that arrive whole
//! in one read never touch it.

mod support;

use std::sync::Arc;
use std::time::Instant;

use support::*;
use wsflow::frame::OpCode;
use wsflow::{CloseCode, CloseReason, Config, Connection, DeflateConfig, Event, MemoryBudget, Message, ProtocolError};

const KIB: usize = 1 << 10;

fn budgeted(limit: usize) -> (MemoryBudget, Arc<Config>) {
    let budget = MemoryBudget::new(limit);
    let mut config = Config::default();
    config.memory_budget(Some(budget.clone()));
    (budget, Arc::new(config))
}

/// A client frame of `len` bytes of which only `sent` have arrived.
fn frame_start(len: usize, sent: usize) -> Vec<u8> {
    let mut frame = client_frame(OpCode::Binary, true, &vec![7; len]);
    frame.truncate(frame.len() - (len - sent));
    frame
}

/// How the connection ended, if it failed (the close code sent, and the reason): its
/// events pulled, then the peer's end of stream.
fn closed_with(connection: &mut Connection) -> Option<(CloseCode, CloseReason)> {
    let mut events = drain_events(connection);
    if connection.state() != wsflow::State::Open {
        connection.handle_eof(Instant::now());
        events.extend(drain_events(connection));
    }
    events.into_iter().find_map(|event| match event {
        Event::Closed(closed) => Some(match &closed.reason {
            CloseReason::Failed(error) => (error.close_code(), closed.reason.clone()),
            _ => (closed.code(), closed.reason.clone()),
        }),
        _ => None,
    })
}

/// A pair with permessage-deflate, the server on `budget`, the client compressing at
/// `level` in frames of at most `frame_size` bytes.
fn deflate_pair(budget: &MemoryBudget, level: u32, frame_size: usize) -> Pair {
    let mut server_config = Config::default();
    server_config
        .deflate(Some(DeflateConfig::default()))
        .memory_budget(Some(budget.clone()));
    let mut client_config = Config::default();
    client_config
        .deflate(Some(DeflateConfig::default().level(level).clone()))
        .outgoing_frame_size(Some(frame_size));
    Pair::with_configs(client_config, server_config)
}

#[test]
fn the_connection_that_would_pass_the_budget_is_failed_with_1013_and_the_others_go_on() {
    let (budget, config) = budgeted(4 << 20);
    let now = Instant::now();
    // Eight peers each start a 2 MiB message and send 900 KiB of it: four fit.
    let mut connections: Vec<Connection> = (0..8).map(|_| Connection::server(config.clone(), now)).collect();
    let start = frame_start(2 << 20, 900 * KIB);
    let mut failed = Vec::new();
    for (index, connection) in connections.iter_mut().enumerate() {
        connection.handle_data(now, &start);
        if let Some((code, reason)) = closed_with(connection) {
            assert_eq!(code, CloseCode::TRY_AGAIN_LATER);
            assert!(
                matches!(reason, CloseReason::Failed(ProtocolError::MemoryBudgetExceeded { limit, .. }) if limit == 4 << 20),
                "{reason:?}"
            );
            let frames = decode_frames(&drain_transmits(connection).bytes);
            assert_eq!(frames.last().and_then(WireFrame::close_code), Some(1013));
            failed.push(index);
        }
    }
    assert_eq!(failed, [4, 5, 6, 7], "the first four fit, the rest do not");
    assert!(budget.used() <= 4 << 20 && budget.used() >= 4 * 900 * KIB, "{budget:?}");

    // The four that fit finish their messages: each gets it whole, and the budget is free.
    let rest = client_frame(OpCode::Binary, true, &vec![7; 2 << 20])[start.len()..].to_vec();
    for connection in &mut connections[..4] {
        connection.handle_data(now, &rest);
        let events = drain_events(connection);
        assert!(
            matches!(&events[..], [Event::Message(message)] if message.len() == 2 << 20),
            "{events:?}"
        );
    }
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_fragmented_message_is_charged_while_unfinished_and_released_when_complete() {
    let (budget, config) = budgeted(1 << 20);
    let now = Instant::now();
    let mut server = Connection::server(config, now);
    server.handle_data(now, &client_frame(OpCode::Text, false, &[b'a'; 300 * KIB]));
    assert!(budget.used() >= 300 * KIB);
    server.handle_data(now, &client_frame(OpCode::Continuation, false, &[b'b'; 300 * KIB]));
    assert!(budget.used() >= 600 * KIB);
    server.handle_data(now, &client_frame(OpCode::Continuation, true, b"end"));
    assert_eq!(budget.used(), 0);
    let messages = messages(&drain_events(&mut server));
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].len(), 600 * KIB + 3);
    // A message past the budget for this connection alone fails it.
    server.handle_data(now, &client_frame(OpCode::Binary, false, &vec![1; 700 * KIB]));
    server.handle_data(now, &client_frame(OpCode::Continuation, false, &vec![1; 700 * KIB]));
    assert_eq!(
        closed_with(&mut server).map(|(code, _)| code),
        Some(CloseCode::TRY_AGAIN_LATER)
    );
    assert_eq!(budget.used(), 0, "a failed connection gives its charge back");
}

#[test]
fn a_compressed_message_spanning_reads_is_charged_for_what_it_inflated() {
    let budget = MemoryBudget::new(8 << 20);
    let mut pair = deflate_pair(&budget, 1, 256);
    // 4 MiB of zeros in 256-byte compressed frames: the first half inflates to megabytes.
    pair.client.send(Message::binary(vec![0u8; 4 << 20])).unwrap();
    pair.collect();
    let wire = std::mem::take(&mut pair.to_server);
    let (first, second) = wire.split_at(wire.len() / 2);
    pair.server.handle_data(pair.now, first);
    assert!(budget.used() >= 1 << 20, "{budget:?}");
    pair.server.handle_data(pair.now, second);
    assert_eq!(budget.used(), 0);
    let messages = messages(&drain_events(&mut pair.server));
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].len(), 4 << 20);
}

#[test]
fn messages_whole_in_one_read_never_touch_the_budget_and_a_dropped_connection_gives_back() {
    // A budget of zero bytes: only messages that never wait between reads get through.
    let (budget, config) = budgeted(0);
    let now = Instant::now();
    let mut server = Connection::server(config.clone(), now);
    let mut input = client_frame(OpCode::Binary, true, &vec![1; 1 << 20]);
    for _ in 0..100 {
        input.extend(client_frame(OpCode::Text, true, b"small"));
    }
    server.handle_data(now, &input);
    assert_eq!(messages(&drain_events(&mut server)).len(), 101);
    assert_eq!(server.state(), wsflow::State::Open);

    let (budget_2, config) = budgeted(1 << 20);
    let mut trickling = Connection::server(config, now);
    trickling.handle_data(now, &frame_start(512 * KIB, 100 * KIB));
    assert!(budget_2.used() >= 100 * KIB);
    drop(trickling);
    assert_eq!(budget_2.used(), 0);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_protocol_error_mid_message_gives_the_charge_back() {
    let (budget, config) = budgeted(1 << 20);
    let now = Instant::now();
    let mut server = Connection::server(config, now);
    server.handle_data(now, &client_frame(OpCode::Binary, false, &[1; 200 * KIB]));
    assert!(budget.used() > 0);
    // A new message inside the fragmented one (§5.4).
    server.handle_data(now, &client_frame(OpCode::Text, true, b"interleaved"));
    assert_eq!(
        closed_with(&mut server).map(|(code, _)| code),
        Some(CloseCode::PROTOCOL_ERROR)
    );
    assert_eq!(budget.used(), 0);
}

#[test]
fn what_a_header_announces_is_not_charged_only_what_arrived() {
    // Sixteen peers each announce a 1 MiB message and send one byte of it: they hold 16
    // bytes, not 16 MiB, and an honest connection still fits.
    let (budget, config) = budgeted(16 << 20);
    let now = Instant::now();
    let mut squatters: Vec<Connection> = (0..16).map(|_| Connection::server(config.clone(), now)).collect();
    for squatter in &mut squatters {
        squatter.handle_data(now, &frame_start(1 << 20, 1));
    }
    assert!(budget.used() <= 16, "{budget:?}");
    let mut honest = Connection::server(config, now);
    let message = client_frame(OpCode::Binary, true, &vec![3; 200 * KIB]);
    let (first, second) = message.split_at(message.len() / 2);
    honest.handle_data(now, first);
    honest.handle_data(now, second);
    assert_eq!(messages(&drain_events(&mut honest)).len(), 1);
}

#[test]
fn small_partial_messages_are_charged_what_they_hold() {
    // 100 connections each hold 10 bytes of a 200-byte frame: 1,000 bytes, well within a
    // 1 MiB budget (a charge rounded up to 64 KiB each would refuse the 17th).
    let (budget, config) = budgeted(1 << 20);
    let now = Instant::now();
    let mut connections: Vec<Connection> = (0..100).map(|_| Connection::server(config.clone(), now)).collect();
    for connection in &mut connections {
        connection.handle_data(now, &frame_start(200, 10));
        assert_eq!(closed_with(connection), None);
    }
    assert_eq!(budget.used(), 1000);
}

#[test]
fn a_compressed_message_inflates_no_further_than_the_budget_has_room_for() {
    let budget = MemoryBudget::new(1 << 20);
    let mut pair = deflate_pair(&budget, 9, 16 << 10);
    // 60 MiB of zeros in 16 KiB compressed frames: the first frame alone inflates to far
    // more than the budget.
    pair.client.send(Message::binary(vec![0u8; 60 << 20])).unwrap();
    pair.collect();
    let wire = std::mem::take(&mut pair.to_server);
    let first_frame = &wire[..(16 << 10) + 14];
    pair.server.handle_data(pair.now, first_frame);
    let (code, reason) = closed_with(&mut pair.server).expect("failed");
    assert_eq!(code, CloseCode::TRY_AGAIN_LATER);
    let CloseReason::Failed(ProtocolError::MemoryBudgetExceeded { held, limit }) = reason else {
        panic!("{reason:?}")
    };
    assert_eq!(limit, 1 << 20);
    assert!(
        held <= (1 << 20) + 1,
        "inflated {held} bytes before the budget stopped it"
    );
    assert_eq!(budget.used(), 0);
}
