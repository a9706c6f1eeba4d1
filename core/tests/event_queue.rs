//! The event queue (core/src/queue.rs) and the small-message fast path
//! (Connection::take_small_messages / deliver_whole) under hostile use: interleaved pulls and reads,
//! runs and blocks, invalid text in a run, limits, masks, and the heap held.

mod support;

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use support::*;
use wsflow::frame::OpCode;
use wsflow::{CloseReason, Config, Connection, Event, Message, ProtocolError};

// ---------------------------------------------------------------------------------------
// A counting allocator (global: every test of this binary takes `serial()` so that the
// memory tests measure only themselves; the workspace denies unsafe code, here too).

static ALLOCATOR_LOCK: Mutex<()> = Mutex::new(());

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn serial() -> MutexGuard<'static, ()> {
    ALLOCATOR_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bytes allocated on the heap now (relative: compare two readings).
fn live() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// A frame as the peer of `client_role` sends it (masked towards a server).
fn peer_frame(client_role: bool, opcode: OpCode, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    frame(opcode, fin, payload, (!client_role).then_some(mask))
}

fn close_codes(out: &[u8]) -> Vec<u16> {
    decode_frames(out)
        .iter()
        .filter(|f| f.opcode == OpCode::Close)
        .map(|f| f.close_code().unwrap_or(0))
        .collect()
}

fn data_events(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::Closed(_) | Event::CloseReceived(_)))
        .cloned()
        .collect()
}

fn closed_reason(events: &[Event]) -> Option<CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed(closed) => Some(closed.reason.clone()),
        _ => None,
    })
}

/// Random reads and random pulls between them (poll_event, poll_message, io_state and the
/// checks of its answers), with every pulled event kept.
fn chaotic(config: &Config, client_role: bool, input: &[u8], rng: &mut XorShift) -> (Vec<Event>, Vec<u8>) {
    let now = Instant::now();
    let mut c = connection_in_role(config, client_role);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    let max_chunk = [1usize, 7, 64, 700, 5000, 40_000, 200_000, 0, 0, 0][rng.below(10)];
    // max_chunk 0: reads of one to three whole frames, so the queue stays short and often
    // gets down to its last message (runs end and start around pulls).
    let ends = frame_ends(input);
    let mut next_end = 0;
    while start < input.len() {
        let end = if max_chunk == 0 {
            next_end = (next_end + 1 + rng.below(3)).min(ends.len());
            ends.get(next_end - 1).copied().unwrap_or(input.len())
        } else {
            (start + 1 + rng.below(max_chunk)).min(input.len())
        };
        c.handle_data(now, &input[start..end]);
        start = end;
        let pulls = if max_chunk == 0 { rng.below(5) } else { rng.below(6) };
        for _ in 0..pulls {
            pull_one(&mut c, rng, &mut events);
        }
        if rng.chance(10) {
            out.extend(drain_transmits(&mut c).bytes);
        }
    }
    loop {
        let before = events.len();
        pull_one(&mut c, rng, &mut events);
        if events.len() == before && !c.io_state().events_waiting() {
            break;
        }
    }
    assert!(c.poll_event().is_none());
    out.extend(drain_transmits(&mut c).bytes);
    c.handle_eof(now);
    events.extend(drain_events(&mut c));
    out.extend(drain_transmits(&mut c).bytes);
    (events, out)
}

/// Where each frame of `input` ends (as far as headers decode).
fn frame_ends(input: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while let Ok(Some((header, len))) = wsflow::frame::FrameHeader::decode(&input[at..]) {
        at = (at + len + header.payload_len as usize).min(input.len());
        ends.push(at);
        if at == input.len() {
            break;
        }
    }
    ends.push(input.len());
    ends
}

fn pull_one(c: &mut Connection, rng: &mut XorShift, events: &mut Vec<Event>) {
    match rng.below(6) {
        0 => {
            // Asking what the connection is ready for changes nothing.
            let state = c.io_state();
            assert_eq!(c.io_state(), state, "two io_state calls disagree");
        }
        1 => events.extend(c.poll_event()),
        2 | 3 => events.extend(pull_message_first(c)),
        _ => events.extend(pull_checking_queries(c)),
    }
}

/// A whole text or binary message (even odds) of `len` random bytes (characters for text).
fn text_or_binary_frame(rng: &mut XorShift, client_role: bool, len: usize, mask: [u8; 4]) -> Vec<u8> {
    if rng.chance(50) {
        peer_frame(client_role, OpCode::Text, true, rng.text(len).as_bytes(), mask)
    } else {
        peer_frame(client_role, OpCode::Binary, true, &rng.bytes(len), mask)
    }
}

/// A random stream of frames, mostly small whole messages, for `client_role`'s peer.
fn random_stream(rng: &mut XorShift, client_role: bool, frames: usize, allow_bad_text: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..frames {
        let mask = rng.mask();
        match rng.below(100) {
            // Small whole messages, around the word boundaries of the unmask paths.
            0..=59 => {
                let len = match rng.below(6) {
                    0 => 0,
                    1..=3 => rng.below(41),
                    4 => rng.below(126),
                    _ => 120 + rng.below(10),
                };
                out.extend(text_or_binary_frame(rng, client_role, len, mask));
            }
            // Bigger whole messages: 126..=1024 still go into blocks, beyond do not.
            60..=74 => {
                let len = 126 + rng.below(1100);
                out.extend(text_or_binary_frame(rng, client_role, len, mask));
            }
            75..=79 => {
                let len = 1025 + rng.below(20_000);
                out.extend(peer_frame(client_role, OpCode::Binary, true, &rng.bytes(len), mask));
            }
            // Control frames between data.
            80..=89 => {
                let op = if rng.chance(50) { OpCode::Ping } else { OpCode::Pong };
                let len = rng.below(126);
                out.extend(peer_frame(client_role, op, true, &rng.bytes(len), mask));
            }
            // A fragmented message with a ping in the middle.
            _ => {
                let text = {
                    let n = rng.below(300);
                    rng.text(n)
                };
                let split = (0..=text.len())
                    .filter(|&i| text.is_char_boundary(i))
                    .nth(rng.below(3))
                    .unwrap_or(0);
                out.extend(peer_frame(
                    client_role,
                    OpCode::Text,
                    false,
                    &text.as_bytes()[..split],
                    mask,
                ));
                out.extend(peer_frame(client_role, OpCode::Ping, true, b"mid", rng.mask()));
                out.extend(peer_frame(
                    client_role,
                    OpCode::Continuation,
                    true,
                    &text.as_bytes()[split..],
                    rng.mask(),
                ));
            }
        }
    }
    if allow_bad_text && rng.chance(60) {
        // A violation after a long queue: the failure is deferred until it is drained.
        let mask = rng.mask();
        match rng.below(7) {
            0 | 1 => {
                let mut bad = {
                    let n = rng.below(60);
                    rng.text(n)
                }
                .into_bytes();
                let at = rng.below(bad.len() + 1);
                bad.insert(at, 0xFF);
                out.extend(peer_frame(client_role, OpCode::Text, true, &bad, mask));
            }
            2 => {
                // Invalid text of 126..=1024 bytes: the general path into the blocks.
                let n = 126 + rng.below(890);
                let mut bad = rng.text(n).into_bytes();
                let at = rng.below(bad.len());
                bad[at] = 0xC0;
                out.extend(peer_frame(client_role, OpCode::Text, true, &bad, mask));
            }
            3 => out.extend(peer_frame(client_role, OpCode::Reserved(3), true, b"xx", mask)),
            4 => out.extend(frame_rsv(
                OpCode::Binary,
                true,
                0b010,
                b"rsv",
                (!client_role).then_some(mask),
            )),
            5 => out.extend(peer_frame(client_role, OpCode::Continuation, true, b"cont", mask)),
            _ => out.extend(peer_frame(client_role, OpCode::Close, true, &[0x03, 0xEC], mask)), // 1004
        }
        out.extend(peer_frame(
            client_role,
            OpCode::Text,
            true,
            b"after the bad one",
            rng.mask(),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Differential: chaotic reads and pulls against byte by byte, big enough to cross blocks.

#[test]
fn chaotic_reads_and_pulls_match_byte_by_byte_in_both_roles() {
    let _serial = serial();
    let mut configs = vec![Config::default()];
    let mut c = Config::default();
    c.max_message_size(40);
    configs.push(c);
    let mut c = Config::default();
    c.max_frame_size(17).max_message_size(2000);
    configs.push(c);
    // QUEUE_REVIEW_SEEDS=n runs more seeds (160 by default).
    let seeds = std::env::var("QUEUE_REVIEW_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(160u64);
    let first = std::env::var("QUEUE_REVIEW_FIRST_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0u64);
    for seed in first..first + seeds {
        let mut rng = XorShift::new(seed + 1);
        let client_role = seed % 2 == 1;
        let config = &configs[(seed as usize / 2) % configs.len()];
        let frames = 20 + rng.below(400);
        let input = random_stream(&mut rng, client_role, frames, true);
        let (ref_events, ref_out) = byte_by_byte(config, client_role, &input);
        let (events, out) = chaotic(config, client_role, &input, &mut rng);
        assert_eq!(
            data_events(&events).len(),
            data_events(&ref_events).len(),
            "seed {seed}: event count"
        );
        assert!(
            data_events(&events) == data_events(&ref_events),
            "seed {seed}: events differ"
        );
        assert_eq!(
            closed_reason(&events),
            closed_reason(&ref_events),
            "seed {seed}: reason"
        );
        let (codes, ref_codes) = (close_codes(&out), close_codes(&ref_out));
        if matches!(closed_reason(&ref_events), Some(CloseReason::Failed(_))) {
            assert_eq!(codes, ref_codes, "seed {seed}: close codes");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tiny unmask path: every length 0..=40 (and a few past 128), random masks, each alone
// and all in one read.

#[test]
fn every_short_length_with_random_masks_unmasks_exactly() {
    let _serial = serial();
    let mut rng = XorShift::new(42);
    for round in 0..50 {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let lengths: Vec<usize> = (0..=40)
            .chain([63, 64, 65, 120, 125, 126, 127, 128, 129, 131])
            .collect();
        for &len in &lengths {
            let mask = rng.mask();
            if round % 2 == 0 {
                let payload = rng.bytes(len);
                input.extend(frame(OpCode::Binary, true, &payload, Some(mask)));
                expected.push(Event::Message(Message::binary(payload)));
            } else {
                let text = rng.text(len);
                input.extend(frame(OpCode::Text, true, text.as_bytes(), Some(mask)));
                expected.push(Event::Message(Message::text(text)));
            }
        }
        // All in one read.
        let (events, _, _) = server_fed(Config::default(), &input);
        assert_eq!(events, expected);
        // One frame a read, pulled one behind.
        let mut server = connection_in_role(&Config::default(), false);
        let mut got = Vec::new();
        let mut rest = &input[..];
        while let Ok(Some((header, len))) = wsflow::frame::FrameHeader::decode(rest) {
            let end = len + header.payload_len as usize;
            server.handle_data(Instant::now(), &rest[..end]);
            rest = &rest[end..];
            // Pulled now and then: one frame a read, so each message opens its own block.
            if server.io_state().events_waiting() && rng.chance(70) {
                got.extend(server.poll_event());
            }
        }
        got.extend(drain_events(&mut server));
        assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------------------
// Runs: what waits is asked for between reads, then more small messages arrive.

#[test]
fn queries_between_reads_then_more_small_messages_arrive() {
    let _serial = serial();
    let now = Instant::now();
    let mut server = connection_in_role(&Config::default(), false);
    server.handle_data(now, &client_frame(OpCode::Text, true, b"one"));
    let state = server.io_state();
    assert!(state.events_waiting() && state.next_is_data());
    // A run opens behind the lone message, then a ping ends it.
    let mut input = client_frame(OpCode::Text, true, b"two");
    input.extend(client_frame(OpCode::Binary, true, b"three"));
    input.extend(client_frame(OpCode::Ping, true, b"p"));
    input.extend(client_frame(OpCode::Text, true, b"four"));
    server.handle_data(now, &input);
    assert!(server.io_state().next_is_data());
    assert_eq!(server.poll_message(), Some(Message::text("one")));
    assert!(server.io_state().next_is_data());
    server.handle_data(now, &client_frame(OpCode::Text, true, b"five"));
    assert_eq!(
        drain_events(&mut server),
        vec![
            Event::Message(Message::text("two")),
            Event::Message(Message::binary(&b"three"[..])),
            Event::Ping(Bytes::from_static(b"p")),
            Event::Message(Message::text("four")),
            Event::Message(Message::text("five")),
        ]
    );
    assert!(!server.io_state().events_waiting());
}

/// The last message of a run that a ping already ended, then the ping, then more
/// messages, pulled and asked for in turn: the runs stay apart and in order.
#[test]
fn queries_across_ended_runs_keep_the_order() {
    let _serial = serial();
    let now = Instant::now();
    let mut server = connection_in_role(&Config::default(), false);
    let mut input = client_frame(OpCode::Text, true, b"a");
    input.extend(client_frame(OpCode::Ping, true, b"1"));
    input.extend(client_frame(OpCode::Text, true, b"b"));
    input.extend(client_frame(OpCode::Text, true, b""));
    input.extend(client_frame(OpCode::Text, true, b"c"));
    server.handle_data(now, &input);
    assert!(server.io_state().next_is_data());
    assert_eq!(server.poll_event(), Some(Event::Message(Message::text("a"))));
    assert!(!server.io_state().next_is_data());
    assert_eq!(server.poll_message(), None);
    server.handle_data(now, &client_frame(OpCode::Text, true, b"d"));
    assert_eq!(server.poll_event(), Some(Event::Ping(Bytes::from_static(b"1"))));
    assert!(server.io_state().next_is_data());
    server.handle_data(now, &client_frame(OpCode::Pong, true, b"2"));
    server.handle_data(now, &client_frame(OpCode::Text, true, b"e"));
    assert_eq!(
        drain_events(&mut server),
        vec![
            Event::Message(Message::text("b")),
            Event::Message(Message::text("")),
            Event::Message(Message::text("c")),
            Event::Message(Message::text("d")),
            Event::Pong(Bytes::from_static(b"2")),
            Event::Message(Message::text("e")),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Invalid text in the middle of a run (also as the first message of a new block).

fn bad_text_in_a_run(client_role: bool, before: usize, len_before: usize, pulls: usize) {
    let now = Instant::now();
    let mut rng = XorShift::new((before * 1000 + len_before) as u64);
    let mut c = connection_in_role(&Config::default(), client_role);
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..before {
        let text = rng.text(len_before);
        input.extend(peer_frame(client_role, OpCode::Text, true, text.as_bytes(), rng.mask()));
        expected.push(Event::Message(Message::text(text)));
        if i % 17 == 5 {
            input.extend(peer_frame(client_role, OpCode::Ping, true, b"x", rng.mask()));
            expected.push(Event::Ping(Bytes::from_static(b"x")));
        }
    }
    // Valid start, a lone continuation byte in the middle.
    input.extend(peer_frame(
        client_role,
        OpCode::Text,
        true,
        b"ok so far \x80 not ok",
        rng.mask(),
    ));
    input.extend(peer_frame(
        client_role,
        OpCode::Text,
        true,
        b"must not arrive",
        rng.mask(),
    ));
    input.extend(peer_frame(client_role, OpCode::Binary, true, b"nor this", rng.mask()));
    c.handle_data(now, &input);
    let mut got = Vec::new();
    for _ in 0..pulls {
        got.extend(c.poll_event());
    }
    // More bytes after the failure are ignored.
    c.handle_data(now, &peer_frame(client_role, OpCode::Text, true, b"late", rng.mask()));
    got.extend(drain_events(&mut c));
    let out = drain_transmits(&mut c).bytes;
    assert_eq!(got.len(), expected.len(), "before {before} x {len_before}");
    assert!(got == expected, "before {before} x {len_before}: wrong messages");
    assert_eq!(close_codes(&out), vec![1007], "before {before} x {len_before}");
    c.handle_eof(now);
    assert_eq!(
        closed(&drain_events(&mut c)).reason,
        CloseReason::Failed(ProtocolError::InvalidUtf8)
    );
}

#[test]
fn invalid_text_in_a_run_fails_with_1007_after_the_messages_before_it() {
    let _serial = serial();
    for client_role in [false, true] {
        for (before, len) in [
            (0, 0),
            (1, 5),
            (3, 0),
            (10, 125),
            (129, 125),
            (130, 125),
            (20, 1000),
            (17, 1000),
        ] {
            for pulls in [0, 1, 2] {
                bad_text_in_a_run(client_role, before, len, pulls);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Blocks: messages that fill a block exactly, straddle it, and reads whose rest is short.

#[test]
fn messages_around_block_boundaries_with_every_pull_pattern() {
    let _serial = serial();
    let now = Instant::now();
    // 16 KiB / 1024 = 16 messages a block; 15 of 1024 then lengths that straddle.
    for straddle in [1usize, 100, 1023, 1024] {
        for pattern in 0..4 {
            let mut rng = XorShift::new(straddle as u64 * 10 + pattern);
            let mut server = connection_in_role(&Config::default(), false);
            let mut expected = Vec::new();
            let mut got = Vec::new();
            let mut input = Vec::new();
            let mut lengths = vec![1024usize; 15];
            lengths.extend([1023, straddle, 1024, 1, 0, 5, 1024, 1024]);
            lengths.extend(std::iter::repeat_n(1000, 40));
            for (i, &len) in lengths.iter().enumerate() {
                let payload = rng.bytes(len);
                input.extend(client_frame(OpCode::Binary, true, &payload));
                expected.push(Event::Message(Message::binary(payload)));
                if i % 13 == 12 {
                    input.extend(client_frame(OpCode::Pong, true, &[i as u8]));
                    expected.push(Event::Pong(Bytes::from(vec![i as u8])));
                }
            }
            let cut = match pattern {
                0 => input.len(),
                1 => 1,
                2 => 16 * 1030 + 3,
                _ => 777,
            };
            for chunk in input.chunks(cut) {
                server.handle_data(now, chunk);
                match pattern {
                    1 | 3 => got.extend(server.poll_message().map(Event::Message)),
                    2 => got.extend(server.poll_event()),
                    _ => {}
                }
            }
            got.extend(drain_events(&mut server));
            assert_eq!(got.len(), expected.len(), "straddle {straddle} pattern {pattern}");
            assert!(got == expected, "straddle {straddle} pattern {pattern}");
        }
    }
}

/// A read that ends with a few small messages (a small block) and then a big frame, then
/// more small ones: the small block is outgrown, and nothing is lost.
#[test]
fn short_read_left_then_a_big_frame_then_more() {
    let _serial = serial();
    let now = Instant::now();
    for client_role in [false, true] {
        let mut c = connection_in_role(&Config::default(), client_role);
        let mut rng = XorShift::new(9);
        let mut expected = Vec::new();
        let mut got = Vec::new();
        for round in 0..200 {
            let mut read = Vec::new();
            for _ in 0..(round % 4) {
                let payload = {
                    let n = rng.below(40);
                    rng.bytes(n)
                };
                read.extend(peer_frame(client_role, OpCode::Binary, true, &payload, rng.mask()));
                expected.push(Event::Message(Message::binary(payload)));
            }
            // A read of exactly the small messages: read_left is tiny.
            c.handle_data(now, &read);
            if round % 3 == 0 {
                got.extend(c.poll_event());
            }
            let big = {
                let n = 200 + rng.below(3000);
                rng.bytes(n)
            };
            let big_frame = peer_frame(client_role, OpCode::Binary, true, &big, rng.mask());
            expected.push(Event::Message(Message::binary(big)));
            let tail = {
                let n = rng.below(100);
                rng.text(n)
            };
            let mut rest = big_frame;
            rest.extend(peer_frame(client_role, OpCode::Text, true, tail.as_bytes(), rng.mask()));
            expected.push(Event::Message(Message::text(tail)));
            let split = rng.below(rest.len());
            c.handle_data(now, &rest[..split]);
            if round % 5 == 0 {
                got.extend(c.poll_event());
            }
            c.handle_data(now, &rest[split..]);
        }
        got.extend(drain_events(&mut c));
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
    }
}

// ---------------------------------------------------------------------------------------
// Limits below 125 on the fast path.

#[test]
fn limits_below_125_hold_on_the_fast_path_in_both_roles() {
    let _serial = serial();
    for client_role in [false, true] {
        for (frame_max, message_max) in [
            (0usize, 1000usize),
            (1000, 0),
            (5, 1000),
            (1000, 5),
            (124, 124),
            (125, 126),
        ] {
            let mut config = Config::default();
            config.max_frame_size(frame_max).max_message_size(message_max);
            let limit = frame_max.min(message_max);
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for len in 0..=limit.min(125) {
                let payload = vec![b'a' + (len % 26) as u8; len];
                input.extend(peer_frame(client_role, OpCode::Text, true, &payload, [1, 2, 3, 4]));
                expected.push(Event::Message(Message::text(String::from_utf8(payload).unwrap())));
            }
            input.extend(peer_frame(
                client_role,
                OpCode::Binary,
                true,
                &vec![0; limit + 1],
                [5, 6, 7, 8],
            ));
            input.extend(peer_frame(client_role, OpCode::Binary, true, b"", [5, 6, 7, 8]));
            let mut c = connection_in_role(&config, client_role);
            c.handle_data(Instant::now(), &input);
            let events = drain_events(&mut c);
            let out = drain_transmits(&mut c).bytes;
            assert_eq!(events, expected, "limits {frame_max}/{message_max}");
            assert_eq!(close_codes(&out), vec![1009], "limits {frame_max}/{message_max}");
        }
    }
}

/// Wrong masking in the middle of a run fails with 1002, after the messages before it.
#[test]
fn wrong_masking_in_a_run_fails_with_1002() {
    let _serial = serial();
    for client_role in [false, true] {
        let mut input = Vec::new();
        for i in 0..5u8 {
            input.extend(peer_frame(client_role, OpCode::Binary, true, &[i; 3], [9, 9, 9, 9]));
        }
        // Masked as the other role would.
        input.extend(peer_frame(!client_role, OpCode::Binary, true, b"bad", [1, 1, 1, 1]));
        input.extend(peer_frame(client_role, OpCode::Binary, true, b"after", [9, 9, 9, 9]));
        let mut c = connection_in_role(&Config::default(), client_role);
        c.handle_data(Instant::now(), &input);
        let events = drain_events(&mut c);
        assert_eq!(events.len(), 5);
        assert_eq!(close_codes(&drain_transmits(&mut c).bytes), vec![1002]);
    }
}

// ---------------------------------------------------------------------------------------
// Close between small messages.

#[test]
fn close_between_small_messages_stops_the_run() {
    let _serial = serial();
    for client_role in [false, true] {
        let mut input = Vec::new();
        for i in 0..10u8 {
            input.extend(peer_frame(
                client_role,
                OpCode::Text,
                true,
                &[b'a' + i; 7],
                [i, 1, 2, 3],
            ));
        }
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend(b"bye");
        input.extend(peer_frame(client_role, OpCode::Close, true, &close, [4, 4, 4, 4]));
        input.extend(peer_frame(
            client_role,
            OpCode::Text,
            true,
            b"after close",
            [4, 4, 4, 4],
        ));
        let now = Instant::now();
        let mut c = connection_in_role(&Config::default(), client_role);
        c.handle_data(now, &input);
        // Nothing answers the close before the messages are pulled.
        let mut got = Vec::new();
        for _ in 0..3 {
            got.extend(c.poll_message().map(Event::Message));
        }
        assert!(close_codes(&drain_transmits(&mut c).bytes).is_empty());
        got.extend(drain_events(&mut c));
        assert_eq!(got.len(), 11);
        assert!(matches!(got[10], Event::CloseReceived(Some(_))));
        assert_eq!(close_codes(&drain_transmits(&mut c).bytes), vec![1000]);
    }
}

// ---------------------------------------------------------------------------------------
// Memory.

/// The reader is always one event behind, asking `io_state` first as adapters do: the queue
/// never empties, so nothing is released wholesale; what it holds must still stay bounded.
#[test]
fn one_behind_with_queries_stays_bounded_for_100k_messages() {
    let _serial = serial();
    let now = Instant::now();
    for client_role in [false, true] {
        for len in [1usize, 17, 125, 700, 1024] {
            let mut c = connection_in_role(&Config::default(), client_role);
            let frame = peer_frame(client_role, OpCode::Text, true, &vec![b'q'; len], [1, 2, 3, 4]);
            c.handle_data(now, &frame);
            let step = |reads: usize, c: &mut Connection| {
                for _ in 0..reads {
                    c.handle_data(now, &frame);
                    assert!(c.io_state().events_waiting() && c.io_state().next_is_data());
                    assert!(matches!(c.poll_event(), Some(Event::Message(_))));
                }
                live()
            };
            let after_1k = step(1_000, &mut c);
            let after_101k = step(100_000, &mut c);
            let growth = after_101k - after_1k;
            assert!(
                growth < 64 << 10,
                "len {len}: grew by {growth} bytes over 100k messages"
            );
        }
    }
}

/// One behind, but the reads mix small messages with pings and empty messages (runs end
/// and start all the time).
#[test]
fn one_behind_with_runs_that_keep_ending_stays_bounded() {
    let _serial = serial();
    let now = Instant::now();
    let mut c = connection_in_role(&Config::default(), false);
    let mut read = client_frame(OpCode::Binary, true, b"abc");
    read.extend(client_frame(OpCode::Ping, true, b""));
    read.extend(client_frame(OpCode::Text, true, b""));
    read.extend(client_frame(OpCode::Text, true, b"xyz"));
    c.handle_data(now, &read);
    let step = |reads: usize, c: &mut Connection| {
        for _ in 0..reads {
            c.handle_data(now, &read);
            for _ in 0..4 {
                assert!(c.poll_event().is_some());
            }
        }
        live()
    };
    let after_1k = step(1_000, &mut c);
    let after_51k = step(50_000, &mut c);
    let growth = after_51k - after_1k;
    assert!(growth < 64 << 10, "grew by {growth} bytes over 200k events");
}

/// Every pulled message is kept (a history): the heap held stays proportional to the
/// payload bytes kept, whatever the reads look like.
#[test]
fn kept_messages_hold_memory_proportional_to_their_payload() {
    let _serial = serial();
    let now = Instant::now();
    // (message length, messages a read, a big frame's start at the end of each read)
    for (len, per_read, big_tail) in [
        (1usize, 1usize, false),
        (1, 1, true),
        (8, 3, true),
        (100, 1, true),
        (1, 50, false),
    ] {
        let mut c = connection_in_role(&Config::default(), false);
        let big = client_frame(OpCode::Binary, true, &vec![7u8; 60_000]);
        let small = client_frame(OpCode::Binary, true, &vec![3u8; len]);
        let mut kept: Vec<Event> = Vec::with_capacity(20_000);
        let before = live();
        let mut payload_bytes = 0usize;
        for _ in 0..(2_000 / per_read) {
            let mut read = Vec::new();
            for _ in 0..per_read {
                read.extend_from_slice(&small);
                payload_bytes += len;
            }
            if big_tail {
                // The read ends with the first 20 KB of a big frame (read_left is large).
                read.extend_from_slice(&big[..20_000]);
            }
            c.handle_data(now, &read);
            while let Some(message) = c.poll_message() {
                kept.push(Event::Message(message));
            }
            if big_tail {
                // Its rest: the big message, which is dropped.
                c.handle_data(now, &big[20_000..]);
                assert!(matches!(c.poll_event(), Some(Event::Message(m)) if m.len() == 60_000));
            }
        }
        assert!(!c.io_state().events_waiting());
        let held = live() - before;
        // Each kept message: its payload and a share of its block's handle (the Vec slot
        // is reserved); allow twice the payload, 64 bytes a message and 16 KiB.
        let allowed = 2 * payload_bytes as isize + 64 * kept.len() as isize + (16 << 10);
        assert!(
            held <= allowed,
            "len {len} x {per_read} (big tail {big_tail}): {} kept messages of {payload_bytes} bytes hold {held} bytes",
            kept.len()
        );
    }
}

/// `write_may_wait`: true only while events of the read wait and the bytes queued, the
/// connection's and the driver's, stay within the mark.
#[test]
fn a_write_may_wait_only_for_waiting_events_and_within_the_mark() {
    let _serial = serial();
    let now = Instant::now();
    let mut server = connection_in_role(&Config::default(), false);
    let mut input = client_frame(OpCode::Text, true, b"one");
    input.extend(client_frame(OpCode::Text, true, b"two"));
    server.handle_data(now, &input);
    assert_eq!(server.poll_message(), Some(Message::text("one")));
    server.send(Message::text("one")).unwrap();
    let queued = server.buffered_amount();
    assert!(queued > 0);
    // "two" waits: the answer may wait while everything queued is within the mark.
    assert!(server.io_state().write_may_wait(0, queued));
    assert!(server.io_state().write_may_wait(100, queued + 100));
    assert!(!server.io_state().write_may_wait(0, queued - 1));
    assert!(!server.io_state().write_may_wait(100, queued + 99));
    // Nothing left to pull: the write may not wait, whatever the mark.
    assert_eq!(server.poll_message(), Some(Message::text("two")));
    assert!(!server.io_state().write_may_wait(0, usize::MAX / 2));
}
