//! The small-message fast path and the block queue against the general path: the same
//! bytes fed in one read (fast path) and byte by byte (never the fast path), with queries,
//! partial drains and new reads before draining, in both roles and under tight limits.
//! (From an adversarial review; its memory findings are checked in memory.rs.)

mod support;

use std::sync::Arc;
use std::time::Instant;

use proptest::prelude::*;
use support::*;
use wsflow::frame::OpCode;
use wsflow::{Config, Connection, Event, Message};

#[derive(Clone, Debug)]
enum Raw {
    /// fin, rsv, opcode bits, payload, masked
    Frame(bool, u8, u8, Vec<u8>, bool),
    Garbage(Vec<u8>),
}

fn raw() -> impl Strategy<Value = Raw> {
    let payload = prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..20),
        3 => "[a-zé€😀]{0,40}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 100..140),
        1 => proptest::collection::vec(any::<u8>(), 1000..1100),
    ];
    let opcode = prop_oneof![8 => Just(1u8), 8 => Just(2u8), 2 => Just(0u8), 1 => Just(9u8), 1 => Just(10u8), 1 => Just(8u8), 1 => Just(3u8)];
    prop_oneof![
        20 => (prop::bool::weighted(0.85), prop_oneof![10 => Just(0u8), 1 => Just(4u8), 1 => Just(2u8)], opcode, payload, prop::bool::weighted(0.93))
            .prop_map(|(fin, rsv, op, p, m)| Raw::Frame(fin, rsv, op, p, m)),
        1 => proptest::collection::vec(any::<u8>(), 0..8).prop_map(Raw::Garbage),
    ]
}

fn opcode(bits: u8) -> OpCode {
    match bits {
        0 => OpCode::Continuation,
        1 => OpCode::Text,
        2 => OpCode::Binary,
        8 => OpCode::Close,
        9 => OpCode::Ping,
        10 => OpCode::Pong,
        b => OpCode::Reserved(b),
    }
}

fn encode(pieces: &[Raw], client_role: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Raw::Frame(fin, rsv, op, payload, masked) => {
                // `masked` = as the role requires
                let mask_it = if client_role { !masked } else { *masked };
                let mask = mask_it.then_some([i as u8, 0x34, 0x56 ^ i as u8, 0x78]);
                out.extend(frame_rsv(opcode(*op), *fin, *rsv, payload, mask));
            }
            Raw::Garbage(g) => out.extend_from_slice(g),
        }
    }
    out
}

/// Chunked, with queries and polls interleaved between reads (not draining).
fn interleaved(config: &Config, client_role: bool, input: &[u8], cuts: &[usize], ops: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let now = Instant::now();
    let mut c = connection_in_role(config, client_role);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut ops = ops.iter().cycle();
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        c.handle_data(now, &input[start..cut]);
        start = cut;
        let op = *ops.next().unwrap();
        for k in 0..(op % 5) {
            if k % 2 == 0 || op & 0x10 != 0 {
                // Asking what the connection is ready for changes nothing.
                let state = c.io_state();
                assert_eq!(c.io_state(), state);
                if op & 0x20 != 0 {
                    continue;
                }
                let polled = c.poll_event();
                assert_eq!(state.events_waiting(), polled.is_some());
                events.extend(polled);
            } else if op & 0x40 != 0 {
                events.extend(pull_message_first(&mut c));
            } else {
                events.extend(pull_checking_queries(&mut c));
            }
        }
        // We keep what was pulled in `events`, so the blocks stay pinned, too.
    }
    while let Some(e) = pull_checking_queries(&mut c) {
        events.push(e);
    }
    out.extend(drain_transmits(&mut c).bytes);
    c.handle_eof(now);
    events.extend(drain_events(&mut c));
    out.extend(drain_transmits(&mut c).bytes);
    (events, out)
}

fn configs() -> Vec<Config> {
    let mut out = vec![Config::default()];
    let mut c = Config::default();
    c.max_message_size(10);
    out.push(c);
    let mut c = Config::default();
    c.max_frame_size(7).max_message_size(30);
    out.push(c);
    let mut c = Config::default();
    c.max_frame_size(200).max_message_size(124);
    out.push(c);
    let mut c = Config::default();
    c.max_fragments(1);
    out.push(c);
    out
}

fn messages_only(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::Closed(_)))
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_path_matches_byte_by_byte(
        pieces in proptest::collection::vec(raw(), 0..14),
        mut cuts in proptest::collection::vec(0usize..3000, 0..6),
        ops in proptest::collection::vec(any::<u8>(), 1..8),
        client_role in any::<bool>(),
        which in 0usize..5,
    ) {
        let config = configs().swap_remove(which);
        let input = encode(&pieces, client_role);
        cuts.sort_unstable();
        let (ref_events, ref_out) = byte_by_byte(&config, client_role, &input);
        let (events, out) = interleaved(&config, client_role, &input, &[], &ops);
        prop_assert_eq!(&events, &ref_events);
        prop_assert_eq!(decode_frames(&out), decode_frames(&ref_out));
        let (events, out) = interleaved(&config, client_role, &input, &cuts, &ops);
        // Pulling CloseReceived at a different time can change only the close exchange.
        prop_assert_eq!(messages_only(&events), messages_only(&ref_events));
        let _ = out;
    }
}

/// Many blocks, partial drains between reads, events kept: bytes and order intact.
#[test]
fn many_blocks_with_partial_drains() {
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(Config::default()), now);
    let mut expected = Vec::new();
    let mut got = Vec::new();
    let mut n = 0u32;
    for round in 0..3000u32 {
        let mut input = Vec::new();
        for _ in 0..(round % 37) {
            let len = (n as usize * 13) % 126;
            let payload: Vec<u8> = (0..len).map(|i| (i as u32 ^ n) as u8 & 0x7f).collect();
            if n.is_multiple_of(3) {
                input.extend(client_frame(OpCode::Text, true, &payload));
                expected.push(Event::Message(Message::text(String::from_utf8(payload).unwrap())));
            } else if n.is_multiple_of(11) {
                let big = vec![n as u8; 1024];
                input.extend(client_frame(OpCode::Binary, true, &big));
                expected.push(Event::Message(Message::binary(big)));
            } else {
                input.extend(client_frame(OpCode::Binary, true, &payload));
                expected.push(Event::Message(Message::binary(payload)));
            }
            n += 1;
        }
        server.handle_data(now, &input);
        for _ in 0..(round % 29) {
            if round % 2 == 0 {
                got.extend(pull_checking_queries(&mut server));
            } else {
                got.extend(server.poll_event());
            }
        }
    }
    got.extend(drain_events(&mut server));
    assert_eq!(got.len(), expected.len());
    assert!(got == expected);
}

/// max_fragments(0): every data frame is refused, on both paths.
#[test]
fn max_fragments_zero_same_on_both_paths() {
    let mut config = Config::default();
    config.max_fragments(0);
    let input = client_frame(OpCode::Text, true, b"hi");
    let (ref_events, _) = byte_by_byte(&config, false, &input);
    let (events, _) = interleaved(&config, false, &input, &[], &[0]);
    assert_eq!(events, ref_events);
}

/// With permessage-deflate negotiated, a small RSV1 frame is inflated, not taken raw.
#[cfg(feature = "deflate")]
#[test]
fn small_compressed_frames_are_inflated() {
    let mut config = Config::default();
    config.deflate(Some(wsflow::DeflateConfig::default()));
    let mut pair = Pair::new(config);
    assert!(pair.server.is_compressed());
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(100);
    c.compress_vec(b"hello hello hello", &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    let mut input = Vec::new();
    input.extend(frame_rsv(OpCode::Text, true, 0b100, &out, Some([1, 2, 3, 4])));
    input.extend(client_frame(OpCode::Binary, true, b"plain"));
    input.extend(client_frame(OpCode::Text, true, b"tail"));
    pair.server.handle_data(pair.now, &input);
    let events = drain_events(&mut pair.server);
    assert_eq!(
        events,
        vec![
            Event::Message(Message::text("hello hello hello")),
            Event::Message(Message::binary(&b"plain"[..])),
            Event::Message(Message::text("tail")),
        ]
    );
}

/// CloseSent: messages that arrive after our close frame, in one read vs byte by byte.
#[test]
fn close_sent_phase_same_on_both_paths() {
    for client_role in [false, true] {
        let mut input = Vec::new();
        let mask = (!client_role).then_some([9, 8, 7, 6]);
        for i in 0..50u8 {
            input.extend(frame(OpCode::Text, true, &vec![b'a' + i % 26; i as usize], mask));
            input.extend(frame(OpCode::Binary, true, &[i; 3], mask));
        }
        input.extend(frame(OpCode::Text, true, &[0xff], mask));
        input.extend(frame(OpCode::Text, true, b"after", mask));
        let run = |bytewise: bool| {
            let now = Instant::now();
            let mut c = connection_in_role(&Config::default(), client_role);
            c.close(now, wsflow::CloseCode::NORMAL, "bye").unwrap();
            let mut out = drain_transmits(&mut c).bytes;
            if bytewise {
                for b in &input {
                    c.handle_data(now, std::slice::from_ref(b));
                }
            } else {
                c.handle_data(now, &input);
            }
            let mut events = drain_events(&mut c);
            out.extend(drain_transmits(&mut c).bytes);
            c.handle_eof(now);
            events.extend(drain_events(&mut c));
            (events, decode_frames(&out))
        };
        let (a, b) = (run(false), run(true));
        assert_eq!(a, b);
        assert_eq!(messages(&a.0).len(), 100);
    }
}
