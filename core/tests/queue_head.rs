//! The event queue's head (an event queued alone takes no queue storage) and data frames
//! that are whole messages (no reassembly state), from a review of that change:
//! - an independent model of what RFC 6455 and the limits make of a stream of frames,
//!   against any chunking of the bytes and any mix of pulls and queries (poll_event,
//!   poll_message, io_state's events_waiting and next_is_data), and against a one-shot feed;
//! - event order around the head: a control event alone in the queue, then small messages;
//!   a run of small messages asked for between reads, then more reads;
//! - the heap: a drained queue holds nothing, whatever the pulls were;
//! - fail-fast text inside one big frame that spans many reads, and code points split
//!   across reads;
//! - the limits on a whole-message frame, from its header;
//! - the masking key applied from every offset.

mod support;

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use support::*;
use wsflow::frame::{apply_mask, extend_unmasked, OpCode};
use wsflow::{CloseCode, CloseFrame, CloseReason, Config, Connection, Event, Message, MessageKind, ProtocolError};

// ---------------------------------------------------------------------------------------
// A counting allocator: global, so every test of this binary takes `serial()`.

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bytes allocated on the heap now (compare two readings).
fn live() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

// ---------------------------------------------------------------------------------------
// Generating traffic.

/// One frame as the peer sends it.
#[derive(Clone, Debug)]
struct RawFrame {
    opcode: OpCode,
    fin: bool,
    payload: Vec<u8>,
}

/// A piece of the peer's traffic.
#[derive(Clone, Debug)]
enum Item {
    /// A data message, split at `splits` (positions taken modulo its length + 1) into
    /// fragments, with control frames between them (`between`: 0 none, 1 ping, 2 pong);
    /// `corrupt` 1..=3 makes text invalid; `unfinished` leaves out the final frame's FIN.
    Message {
        text: bool,
        len: usize,
        seed: u64,
        corrupt: u8,
        splits: Vec<usize>,
        between: Vec<u8>,
        unfinished: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// 0: empty, 1: 1000 "bye", 2: one byte, 3: code 1005 (may not be sent).
    Close(u8),
    /// A final continuation frame (unexpected, unless a message is unfinished).
    Continuation(Vec<u8>),
    /// 0: reserved opcode 3, 1: a ping of 126 bytes, 2: a ping without FIN.
    Bad(u8),
}

fn payload_of(text: bool, len: usize, seed: u64, corrupt: u8) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    if !text {
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut bytes = rng.text(len).into_bytes();
    match corrupt {
        // A byte that is never UTF-8.
        1 => {
            let at = rng.below(len + 1);
            bytes.insert(at, 0xFF);
        }
        // The message ends inside a code point: valid as a prefix, invalid as a whole.
        2 => bytes.extend_from_slice(&[0xF0, 0x9F, 0x98]),
        // A surrogate half (fails at its second byte).
        3 => {
            let at = rng.below(len + 1);
            bytes.splice(at..at, [0xED, 0xA0, 0x80]);
        }
        _ => {}
    }
    bytes
}

fn frames_of(items: &[Item]) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    let control = |opcode, payload: &[u8]| RawFrame {
        opcode,
        fin: true,
        payload: payload.to_vec(),
    };
    for item in items {
        match item {
            Item::Message {
                text,
                len,
                seed,
                corrupt,
                splits,
                between,
                unfinished,
            } => {
                let payload = payload_of(*text, *len, *seed, *corrupt);
                let mut cuts: Vec<usize> = splits.iter().map(|s| s % (payload.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.push(payload.len());
                let mut start = 0;
                for (index, &cut) in cuts.iter().enumerate() {
                    if index > 0 {
                        match between.get(index - 1) {
                            Some(1) => frames.push(control(OpCode::Ping, b"between")),
                            Some(2) => frames.push(control(OpCode::Pong, &[index as u8])),
                            _ => {}
                        }
                    }
                    let opcode = match (index, text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    };
                    frames.push(RawFrame {
                        opcode,
                        fin: index + 1 == cuts.len() && !unfinished,
                        payload: payload[start..cut].to_vec(),
                    });
                    start = cut;
                }
            }
            Item::Ping(payload) => frames.push(control(OpCode::Ping, payload)),
            Item::Pong(payload) => frames.push(control(OpCode::Pong, payload)),
            Item::Close(which) => {
                let payload: &[u8] = match which {
                    0 => b"",
                    1 => b"\x03\xE8bye",
                    2 => b"\x03",
                    _ => b"\x03\xED",
                };
                frames.push(control(OpCode::Close, payload));
            }
            Item::Continuation(payload) => frames.push(RawFrame {
                opcode: OpCode::Continuation,
                fin: true,
                payload: payload.clone(),
            }),
            Item::Bad(0) => frames.push(control(OpCode::Reserved(3), b"r")),
            Item::Bad(1) => frames.push(control(OpCode::Ping, &[b'p'; 126])),
            Item::Bad(_) => frames.push(RawFrame {
                opcode: OpCode::Ping,
                fin: false,
                payload: b"half".to_vec(),
            }),
        }
    }
    frames
}

/// The frames on the wire, as the peer of `client_role` sends them (masked towards a
/// server, each frame with its own key), the last one cut after `keep` payload bytes.
fn encode(frames: &[RawFrame], client_role: bool, keep: Option<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        let i = index as u8;
        let mask = (!client_role).then_some([0x11 ^ i, 0x22, 0x44 ^ i.wrapping_mul(3), 0x88]);
        let bytes = support::frame(frame.opcode, frame.fin, &frame.payload, mask);
        match keep {
            Some(keep) if index + 1 == frames.len() => {
                let header = bytes.len() - frame.payload.len();
                out.extend_from_slice(&bytes[..header + keep]);
            }
            _ => out.extend(bytes),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The model: what RFC 6455 and the configured limits make of the frames, written from the
// rules, not from the code (checks in the order the code documents: frame limit, message
// in progress, fragment count, message size; text fails at the first byte that no valid
// stream can have). The last frame may be cut (`keep`: its payload bytes that arrived).

fn model(config: &Config, frames: &[RawFrame], keep: Option<usize>) -> (Vec<Event>, CloseReason) {
    let mut events = Vec::new();
    // (text, bytes so far, fragments so far)
    let mut message: Option<(bool, Vec<u8>, usize)> = None;
    let failed = |events: Vec<Event>, error| (events, CloseReason::Failed(error));
    for (index, frame) in frames.iter().enumerate() {
        let cut = if index + 1 == frames.len() { keep } else { None };
        let complete = cut.is_none();
        let len = frame.payload.len();
        let arrived = &frame.payload[..cut.unwrap_or(len)];
        match frame.opcode {
            OpCode::Reserved(bits) => return failed(events, ProtocolError::ReservedOpcode(bits)),
            OpCode::Ping | OpCode::Pong | OpCode::Close => {
                if len > 125 {
                    return failed(events, ProtocolError::ControlFrameTooLong(len as u64));
                }
                if !frame.fin {
                    return failed(events, ProtocolError::FragmentedControlFrame);
                }
                if !complete {
                    break;
                }
                let payload = Bytes::from(frame.payload.clone());
                match (frame.opcode, &frame.payload[..]) {
                    (OpCode::Ping, _) => events.push(Event::Ping(payload)),
                    (OpCode::Pong, _) => events.push(Event::Pong(payload)),
                    (_, []) => {
                        events.push(Event::CloseReceived(None));
                        return (events, CloseReason::Clean);
                    }
                    (_, [_]) => return failed(events, ProtocolError::CloseFrameTooShort),
                    (_, [high, low, reason @ ..]) => {
                        let code = CloseCode::new(u16::from_be_bytes([*high, *low]));
                        if !code.is_sendable() {
                            return failed(events, ProtocolError::InvalidCloseCode(code.as_u16()));
                        }
                        let reason = std::str::from_utf8(reason).unwrap().to_owned();
                        events.push(Event::CloseReceived(Some(CloseFrame::new(code, reason))));
                        return (events, CloseReason::Clean);
                    }
                }
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if len > config.get_max_frame_size() {
                    let limit = config.get_max_frame_size();
                    return failed(
                        events,
                        ProtocolError::FrameTooBig {
                            size: len as u64,
                            limit,
                        },
                    );
                }
                let continuation = frame.opcode == OpCode::Continuation;
                match (continuation, message.is_some()) {
                    (true, false) => return failed(events, ProtocolError::UnexpectedContinuation),
                    (false, true) => return failed(events, ProtocolError::ExpectedContinuation),
                    _ => {}
                }
                let (text, mut bytes, fragments) =
                    message.take().unwrap_or((frame.opcode == OpCode::Text, Vec::new(), 0));
                let fragments = fragments + 1;
                if fragments > config.get_max_fragments() {
                    let limit = config.get_max_fragments();
                    return failed(events, ProtocolError::TooManyFragments { limit });
                }
                let size = bytes.len() + len;
                if size > config.get_max_message_size() {
                    let limit = config.get_max_message_size();
                    return failed(
                        events,
                        ProtocolError::MessageTooBig {
                            size: size as u64,
                            limit,
                        },
                    );
                }
                bytes.extend_from_slice(arrived);
                let ends = complete && frame.fin;
                if text {
                    let valid = std::str::from_utf8(&bytes).is_ok();
                    let valid_prefix = match std::str::from_utf8(&bytes) {
                        Ok(_) => true,
                        Err(error) => error.error_len().is_none(),
                    };
                    if (ends && !valid) || !valid_prefix {
                        return failed(events, ProtocolError::InvalidUtf8);
                    }
                }
                if ends {
                    events.push(Event::Message(if text {
                        Message::text(String::from_utf8(bytes).unwrap())
                    } else {
                        Message::binary(bytes)
                    }));
                } else {
                    message = Some((text, bytes, fragments));
                }
            }
        }
    }
    (events, CloseReason::Eof)
}

// ---------------------------------------------------------------------------------------
// Running a connection.

/// One pull of some kind, each checking what it can against the others.
fn pull(c: &mut Connection, kind: u8, events: &mut Vec<Event>) {
    match kind % 7 {
        0 => {
            let state = c.io_state();
            assert_eq!(c.io_state(), state, "two io_state calls disagree");
            assert!(
                state.events_waiting() || !state.next_is_data(),
                "data next with no event waiting"
            );
        }
        1 => events.extend(c.poll_event()),
        2 => events.extend(pull_message_first(c)),
        3 => events.extend(pull_checking_queries(c)),
        4 => {
            let next_is_data = c.io_state().next_is_data();
            let message = c.poll_message();
            // A message is data; data that is not a message (a fragment) is never taken.
            assert!(
                message.is_none() || next_is_data,
                "poll_message took {message:?}, not data"
            );
            events.extend(message.map(Event::Message));
        }
        5 => {
            let _ = drain_transmits(c);
        }
        _ => {
            // io_state, then poll_message: a message only when data was next; when none
            // is taken, nothing moved.
            let state = c.io_state();
            let message = c.poll_message();
            match message {
                Some(_) => assert!(state.next_is_data(), "poll_message took {message:?}, not data"),
                None => assert_eq!(c.io_state(), state, "poll_message moved a non-message"),
            }
            events.extend(message.map(Event::Message));
        }
    }
}

/// Feeds `input` cut at `cuts`, with pulls between reads as `ops` say; then drains
/// (checking the queries), reports EOF and drains again. Returns every event pulled.
fn chunked(config: &Config, client_role: bool, input: &[u8], cuts: &[usize], ops: &[u8]) -> Vec<Event> {
    let now = Instant::now();
    let mut c = connection_in_role(config, client_role);
    let mut events = Vec::new();
    let mut ops = ops.iter().copied().cycle();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        c.handle_data(now, &input[start..cut]);
        start = cut;
        let pulls = ops.next().unwrap_or(0) % 5;
        for _ in 0..pulls {
            pull(&mut c, ops.next().unwrap_or(0), &mut events);
        }
    }
    while let Some(event) = pull_checking_queries(&mut c) {
        events.push(event);
    }
    let _ = drain_transmits(&mut c);
    c.handle_eof(now);
    events.extend(drain_events(&mut c));
    assert!(!c.io_state().events_waiting() && c.poll_event().is_none());
    events
}

/// Feeds `input` in one read and pulls with poll_event alone, then reports EOF.
fn one_read_plain(config: &Config, client_role: bool, input: &[u8]) -> Vec<Event> {
    let now = Instant::now();
    let mut c = connection_in_role(config, client_role);
    c.handle_data(now, input);
    let mut events = drain_events(&mut c);
    let _ = drain_transmits(&mut c);
    c.handle_eof(now);
    events.extend(drain_events(&mut c));
    events
}

/// The events before `Closed`, and its reason (it must come last, exactly once).
fn split_closed(mut events: Vec<Event>) -> (Vec<Event>, CloseReason) {
    let reason = match events.pop() {
        Some(Event::Closed(closed)) => closed.reason,
        other => panic!("expected Closed last, got {other:?}"),
    };
    assert!(
        !events.iter().any(|event| matches!(event, Event::Closed(_))),
        "Closed twice"
    );
    (events, reason)
}

fn configs() -> Vec<Config> {
    let mut out = vec![Config::default()];
    let mut c = Config::default();
    c.max_message_size(100).max_frame_size(60).max_fragments(3);
    out.push(c);
    let mut c = Config::default();
    c.max_fragments(0);
    out.push(c);
    let mut c = Config::default();
    c.max_fragments(1);
    out.push(c);
    // Smaller than most frames, on and off the fast path.
    let mut c = Config::default();
    c.max_message_size(5);
    out.push(c);
    // Around the size of a small message (1024).
    let mut c = Config::default();
    c.max_frame_size(5000).max_message_size(1050);
    out.push(c);
    // Frames within the frame limit, big ones over the message limit.
    let mut c = Config::default();
    c.max_message_size(20_000).max_fragments(2);
    out.push(c);
    // Streaming (fragment events, merged into messages before comparing).
    let mut c = Config::default();
    c.streaming(true);
    out.push(c);
    let mut c = Config::default();
    c.streaming(true).max_fragments(1).max_message_size(2000);
    out.push(c);
    out
}

/// The events with each streamed message's fragments merged into the message, where its
/// last fragment was (a message left unfinished is dropped).
fn merged(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    let mut pending: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Fragment { kind, data, fin } => {
                let (pending_kind, bytes) = pending.get_or_insert_with(|| (kind, Vec::new()));
                assert_eq!(*pending_kind, kind, "fragments of one message change kind");
                bytes.extend_from_slice(&data);
                if fin {
                    let (kind, bytes) = pending.take().unwrap();
                    out.push(Event::Message(match kind {
                        MessageKind::Text => Message::text(String::from_utf8(bytes).expect("streamed text")),
                        MessageKind::Binary => Message::binary(bytes),
                    }));
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn len_class() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..=40,
        3 => 100usize..=140,
        2 => 1000usize..=1100,
        1 => 3000usize..=9000,
        1 => 20_000usize..=40_000,
    ]
}

/// A data message; `violations` lets it be invalid text or unfinished.
fn message_item(violations: bool) -> impl Strategy<Value = Item> {
    let (corrupt_weight, unfinished) = if violations { (1, 0.05) } else { (0, 0.0) };
    (
        any::<bool>(),
        len_class(),
        any::<u64>(),
        prop_oneof![10 => Just(0u8), corrupt_weight => 1u8..=3],
        prop_oneof![3 => Just(Vec::new()), 2 => proptest::collection::vec(any::<usize>(), 1..4)],
        proptest::collection::vec(0u8..3, 0..4),
        prop::bool::weighted(unfinished),
    )
        .prop_map(
            |(text, len, seed, corrupt, splits, between, unfinished)| Item::Message {
                text,
                len,
                seed,
                corrupt,
                splits,
                between,
                unfinished,
            },
        )
}

/// Valid traffic: messages, pings and pongs.
fn valid_item() -> impl Strategy<Value = Item> {
    prop_oneof![
        24 => message_item(false),
        4 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Item::Ping),
        2 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Item::Pong),
    ]
}

/// Any traffic, violations and close frames included.
fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        24 => message_item(true),
        4 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Item::Ping),
        2 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Item::Pong),
        1 => (0u8..4).prop_map(Item::Close),
        1 => proptest::collection::vec(any::<u8>(), 0..10).prop_map(Item::Continuation),
        1 => (0u8..3).prop_map(Item::Bad),
    ]
}

/// Invalid text, in one frame or several: with the stream cut inside it, only a check as
/// the bytes arrive can find it.
fn bad_text_item() -> impl Strategy<Value = Item> {
    (
        len_class(),
        any::<u64>(),
        prop_oneof![Just(1u8), Just(3u8)],
        prop_oneof![3 => Just(Vec::new()), 1 => proptest::collection::vec(any::<usize>(), 1..3)],
    )
        .prop_map(|(len, seed, corrupt, splits)| Item::Message {
            text: true,
            len,
            seed,
            corrupt,
            splits,
            between: vec![1],
            unfinished: false,
        })
}

/// A stream of traffic: valid all along (but for the limits) with an ending of any kind,
/// or anything at all.
fn items() -> impl Strategy<Value = Vec<Item>> {
    prop_oneof![
        (
            proptest::collection::vec(valid_item(), 0..20),
            proptest::option::of(prop_oneof![3 => item(), 1 => bad_text_item()])
        )
            .prop_map(|(mut items, last)| {
                items.extend(last);
                items
            }),
        proptest::collection::vec(item(), 0..12),
    ]
}

/// How the bytes are cut into reads: at random places, or every `step` bytes.
#[derive(Clone, Debug)]
enum Reads {
    At(Vec<usize>),
    Every(usize),
}

fn reads() -> impl Strategy<Value = Reads> {
    prop_oneof![
        3 => proptest::collection::vec(any::<usize>(), 0..12).prop_map(Reads::At),
        1 => (1usize..=9).prop_map(Reads::Every),
        1 => (10usize..=3000).prop_map(Reads::Every),
    ]
}

fn cuts_of(reads: &Reads, len: usize) -> Vec<usize> {
    match reads {
        Reads::At(at) => {
            let mut cuts: Vec<usize> = at.iter().map(|cut| cut % (len + 1)).collect();
            cuts.sort_unstable();
            cuts
        }
        Reads::Every(step) => (1..len.div_ceil(*step)).map(|i| i * step).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Any chunking and any mix of pulls give what the model says, as does a one-shot feed
    /// pulled with poll_event alone: the same events in the same order, and the same end.
    #[test]
    fn any_reads_and_pulls_give_what_the_model_says(
        items in items(),
        reads in reads(),
        ops in proptest::collection::vec(any::<u8>(), 1..16),
        keep in proptest::option::weighted(0.4, any::<usize>()),
        client_role in any::<bool>(),
        which in 0usize..12,
    ) {
        let _serial = serial();
        // The default limits a third of the time.
        let config = configs().swap_remove(which.saturating_sub(3));
        let frames = frames_of(&items);
        // Cut the last frame inside its payload (its header whole), if it has one.
        let keep = keep
            .zip(frames.last())
            .filter(|(_, last)| !last.payload.is_empty())
            .map(|(keep, last)| keep % last.payload.len());
        let input = encode(&frames, client_role, keep);
        let (expected, expected_reason) = model(&config, &frames, keep);
        if std::env::var_os("QUEUE_HEAD_STATS").is_some() {
            eprintln!("STAT frames={} input={} events={} reason={:?}", frames.len(), input.len(), expected.len(), expected_reason);
        }

        let (events, reason) = split_closed(one_read_plain(&config, client_role, &input));
        let events = merged(events);
        prop_assert_eq!(&events, &expected, "one read, poll_event only");
        prop_assert_eq!(&reason, &expected_reason, "one read, poll_event only");

        let cuts = cuts_of(&reads, input.len());
        let (events, reason) = split_closed(chunked(&config, client_role, &input, &cuts, &ops));
        let events = merged(events);
        prop_assert_eq!(&events, &expected, "chunked, mixed pulls");
        prop_assert_eq!(&reason, &expected_reason, "chunked, mixed pulls");
    }
}

// ---------------------------------------------------------------------------------------
// Order around the head.

fn text(s: &str) -> Event {
    Event::Message(Message::text(s.to_owned()))
}

/// A ping alone in the queue (the head), then a read of small messages (a run after it):
/// the ping stays first for every kind of pull, and the run follows in order.
#[test]
fn a_control_event_alone_in_the_queue_stays_before_small_messages_read_after_it() {
    let _serial = serial();
    let now = Instant::now();
    for client_role in [false, true] {
        let peer =
            |opcode, payload: &[u8]| support::frame(opcode, true, payload, (!client_role).then_some([9, 8, 7, 6]));
        let mut c = connection_in_role(&Config::default(), client_role);
        c.handle_data(now, &peer(OpCode::Ping, b"p"));
        let mut read = peer(OpCode::Text, b"a");
        read.extend(peer(OpCode::Text, b"b"));
        read.extend(peer(OpCode::Text, b"c"));
        c.handle_data(now, &read);
        assert!(c.io_state().events_waiting());
        assert!(!c.io_state().next_is_data(), "the ping is next");
        assert_eq!(
            c.poll_message(),
            None,
            "poll_message took a message from behind the ping"
        );
        assert!(!c.io_state().next_is_data(), "the ping is still next");
        assert_eq!(c.poll_message(), None);
        assert_eq!(c.poll_event(), Some(Event::Ping(Bytes::from_static(b"p"))));
        assert!(c.io_state().next_is_data());
        assert_eq!(c.poll_message(), Some(Message::text("a")));
        // A pong read now goes after the run.
        c.handle_data(now, &peer(OpCode::Pong, b"q"));
        assert_eq!(c.poll_event(), Some(text("b")));
        assert_eq!(c.poll_message(), Some(Message::text("c")));
        assert!(!c.io_state().next_is_data());
        assert_eq!(c.poll_message(), None);
        assert_eq!(c.poll_event(), Some(Event::Pong(Bytes::from_static(b"q"))));
        assert!(!c.io_state().events_waiting());
        assert_eq!(c.poll_event(), None);
    }
}

/// A big message alone in the queue (the head), then small messages and a ping: pulled
/// with poll_message first, then poll_event.
#[test]
fn a_big_message_alone_then_a_run_then_a_ping() {
    let _serial = serial();
    let now = Instant::now();
    let big = vec![0x5A; 3000];
    let mut c = connection_in_role(&Config::default(), false);
    let frame = client_frame(OpCode::Binary, true, &big);
    // Spanning reads: the general path, not the run of small messages.
    c.handle_data(now, &frame[..1000]);
    c.handle_data(now, &frame[1000..]);
    let mut read = client_frame(OpCode::Text, true, b"x");
    read.extend(client_frame(OpCode::Text, true, b"y"));
    read.extend(client_frame(OpCode::Ping, true, b"z"));
    c.handle_data(now, &read);
    assert!(c.io_state().next_is_data());
    assert_eq!(c.poll_message(), Some(Message::binary(big)));
    assert!(c.io_state().next_is_data());
    assert_eq!(c.poll_message(), Some(Message::text("x")));
    assert_eq!(c.poll_message(), Some(Message::text("y")));
    assert_eq!(c.poll_message(), None);
    assert_eq!(c.poll_event(), Some(Event::Ping(Bytes::from_static(b"z"))));
    assert_eq!(c.poll_event(), None);
}

/// A run of small messages asked for (not built) between reads while it waits; reads that
/// follow (a ping, a small message alone in its read) go after all of it.
#[test]
fn a_run_asked_for_between_reads_keeps_its_place() {
    let _serial = serial();
    let now = Instant::now();
    let mut c = connection_in_role(&Config::default(), false);
    let mut read = client_frame(OpCode::Text, true, b"a");
    read.extend(client_frame(OpCode::Text, true, b"b"));
    c.handle_data(now, &read);
    assert!(c.io_state().next_is_data());
    c.handle_data(now, &client_frame(OpCode::Ping, true, b"1"));
    assert!(c.io_state().next_is_data());
    c.handle_data(now, &client_frame(OpCode::Text, true, b"c"));
    assert!(c.io_state().next_is_data());
    assert_eq!(c.poll_event(), Some(text("a")));
    assert!(c.io_state().next_is_data());
    assert_eq!(c.poll_message(), Some(Message::text("b")));
    assert!(!c.io_state().next_is_data());
    assert_eq!(c.poll_message(), None);
    assert!(c.io_state().events_waiting());
    assert_eq!(c.poll_event(), Some(Event::Ping(Bytes::from_static(b"1"))));
    assert!(c.io_state().next_is_data());
    assert_eq!(c.poll_message(), Some(Message::text("c")));
    assert!(!c.io_state().events_waiting());
    // The last of a run asked for, then a ping and more small messages.
    let mut read = client_frame(OpCode::Text, true, b"d");
    read.extend(client_frame(OpCode::Text, true, b"e"));
    c.handle_data(now, &read);
    assert_eq!(c.poll_message(), Some(Message::text("d")));
    assert!(c.io_state().next_is_data());
    let mut read = client_frame(OpCode::Ping, true, b"2");
    read.extend(client_frame(OpCode::Text, true, b"f"));
    read.extend(client_frame(OpCode::Text, true, b"g"));
    c.handle_data(now, &read);
    assert_eq!(
        drain_events(&mut c),
        vec![text("e"), Event::Ping(Bytes::from_static(b"2")), text("f"), text("g")]
    );
}

// ---------------------------------------------------------------------------------------
// The heap: a drained queue holds nothing.

/// Drains every event, then every transmit, and returns the heap the connection still
/// held: what dropping it gives back. (Measured across the drop alone, a window too short
/// for the test harness's own allocations on other threads to fall in, but for rare
/// runs: `holds_nothing` tries three times.)
fn held_when_drained(mut c: Connection) -> isize {
    while c.poll_event().is_some() {}
    let _ = drain_transmits(&mut c);
    assert!(!c.io_state().events_waiting());
    let before = live();
    drop(c);
    before - live()
}

fn holds_nothing(what: &str, scenario: impl Fn() -> Connection) {
    let held: Vec<isize> = (0..3).map(|_| held_when_drained(scenario())).collect();
    assert!(
        held.contains(&0),
        "{what}: a drained connection still holds {held:?} bytes of heap"
    );
}

#[test]
fn a_drained_queue_holds_nothing_whatever_the_pulls() {
    let _serial = serial();
    let now = Instant::now();
    let config = std::sync::Arc::new(Config::default());
    let server = || Connection::server(config.clone(), now);
    let ping = client_frame(OpCode::Ping, true, b"p");
    let pong = client_frame(OpCode::Pong, true, b"q");
    let mut read = Vec::new();
    for i in 0..20u8 {
        read.extend(client_frame(OpCode::Binary, true, &[i; 30]));
    }

    holds_nothing("a message alone (the head only)", || {
        let mut c = server();
        c.handle_data(now, &client_frame(OpCode::Text, true, b"alone"));
        c
    });
    holds_nothing("a ping in the head, then a run, poll_message first", || {
        let mut c = server();
        c.handle_data(now, &ping);
        c.handle_data(now, &read);
        assert_eq!(c.poll_message(), None);
        assert!(c.poll_event().is_some());
        while c.poll_message().is_some() {}
        c
    });
    holds_nothing("the last of a run asked for, then pulled", || {
        let mut c = server();
        c.handle_data(now, &read);
        for _ in 0..19 {
            assert!(c.poll_message().is_some());
        }
        assert!(c.io_state().next_is_data());
        assert!(c.poll_message().is_some());
        assert!(!c.io_state().events_waiting());
        c
    });
    holds_nothing("a run asked for, more reads behind it", || {
        let mut c = server();
        c.handle_data(now, &read);
        assert!(c.io_state().next_is_data());
        c.handle_data(now, &pong);
        c.handle_data(now, &read);
        c
    });
    holds_nothing("a big message across reads, then a run", || {
        let mut c = server();
        let big = client_frame(OpCode::Binary, true, &[3; 5000]);
        c.handle_data(now, &big[..2500]);
        c.handle_data(now, &big[2500..]);
        c.handle_data(now, &read);
        c
    });
    holds_nothing("a fragmented message with a ping between, pulled read by read", || {
        let mut c = server();
        let mut fragmented = client_frame(OpCode::Text, false, b"frag");
        fragmented.extend(client_frame(OpCode::Ping, true, b"mid"));
        fragmented.extend(client_frame(OpCode::Continuation, true, b"ment"));
        for piece in fragmented.chunks(5) {
            c.handle_data(now, piece);
            while pull_checking_queries(&mut c).is_some() {}
        }
        c
    });
    holds_nothing("many reads, each drained asking io_state", || {
        let mut c = server();
        for round in 0..50 {
            c.handle_data(now, &read[..36 * (round % 20 + 1)]);
            if round % 3 == 0 {
                c.handle_data(now, &ping);
            }
            while c.io_state().events_waiting() {
                let _ = c.poll_message().map(Event::Message).or_else(|| c.poll_event());
            }
        }
        c
    });
}

// ---------------------------------------------------------------------------------------
// Text in one big frame.

/// Invalid text in one big frame fails the connection (1007) in the read that brings the
/// bad byte, before the rest of the frame arrives, wherever the byte is.
#[test]
fn invalid_text_in_one_big_frame_fails_in_the_read_that_brings_it() {
    let _serial = serial();
    let now = Instant::now();
    let len = 100_000;
    for (bad_at, bad) in [
        (0usize, &[0xFFu8][..]),
        (1, &[0xC0][..]),
        (4095, &[0xFF][..]),
        (50_001, &[0xED, 0xA0][..]),
        (99_990, &[0xF4, 0x90][..]),
    ] {
        for read_len in [997usize, 4096, 1] {
            // Valid text up to `bad_at` (ending on a character boundary), the bad bytes,
            // then valid text again.
            let mut rng = XorShift::new(bad_at as u64);
            let mut payload = rng.text(bad_at).into_bytes();
            payload.extend_from_slice(bad);
            payload.extend_from_slice(rng.text(len - payload.len()).as_bytes());
            let input = client_frame(OpCode::Text, true, &payload);
            let header = input.len() - len;
            // Where the first impossible byte is on the wire.
            let last_bad = header + bad_at + bad.len() - 1;
            let mut c = connection_in_role(&Config::default(), false);
            let mut failed_at = None;
            let mut start = 0;
            while start < input.len() {
                let end = (start + read_len).min(input.len());
                c.handle_data(now, &input[start..end]);
                if close_code(&drain_transmits(&mut c).bytes) == Some(1007) {
                    failed_at = Some(end);
                    break;
                }
                start = end;
            }
            let failed_at = failed_at.expect("never failed");
            assert!(
                failed_at > last_bad && failed_at - read_len <= last_bad,
                "bad byte at {bad_at} (wire {last_bad}), reads of {read_len}: failed after {failed_at} bytes"
            );
            assert!(drain_events(&mut c).is_empty());
            c.handle_eof(now);
            let (events, reason) = split_closed(drain_events(&mut c));
            assert!(events.is_empty());
            assert_eq!(reason, CloseReason::Failed(ProtocolError::InvalidUtf8));
        }
    }
}

fn close_code(out: &[u8]) -> Option<u16> {
    decode_frames(out)
        .iter()
        .find(|frame| frame.opcode == OpCode::Close)
        .and_then(|frame| frame.close_code())
}

/// Valid text in one big frame, its code points split across reads every way: delivered
/// whole, no failure.
#[test]
fn code_points_split_across_reads_in_one_big_frame() {
    let _serial = serial();
    let now = Instant::now();
    let mut payload = Vec::new();
    for _ in 0..700 {
        payload.extend_from_slice("😀€é".as_bytes());
    }
    let expected = Message::text(String::from_utf8(payload.clone()).unwrap());
    let input = client_frame(OpCode::Text, true, &payload);
    for read_len in 1..=9 {
        for first in 0..9 {
            let mut c = connection_in_role(&Config::default(), false);
            c.handle_data(now, &input[..first]);
            for piece in input[first..].chunks(read_len) {
                c.handle_data(now, piece);
                assert!(drain_transmits(&mut c).bytes.is_empty(), "failed on valid text");
            }
            assert_eq!(drain_events(&mut c), vec![Event::Message(expected.clone())]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Limits on a whole-message frame, from its header.

fn fails_on_header(config: &Config, frame: &[u8], payload_len: usize, error: ProtocolError) {
    let now = Instant::now();
    let mut c = connection_in_role(config, false);
    // Only the header and a byte of payload: the frame cannot be taken whole.
    c.handle_data(now, &frame[..frame.len() - payload_len + 1]);
    let code = error.close_code().as_u16();
    assert_eq!(close_code(&drain_transmits(&mut c).bytes), Some(code), "{error:?}");
    c.handle_eof(now);
    let (events, reason) = split_closed(drain_events(&mut c));
    assert!(events.is_empty());
    assert_eq!(reason, CloseReason::Failed(error));
}

#[test]
fn limits_hold_for_a_whole_message_frame_from_its_header() {
    let _serial = serial();
    let mut config = Config::default();
    config.max_message_size(1000);
    let frame = client_frame(OpCode::Binary, true, &[1; 1001]);
    fails_on_header(
        &config,
        &frame,
        1001,
        ProtocolError::MessageTooBig {
            size: 1001,
            limit: 1000,
        },
    );
    let frame = client_frame(OpCode::Text, true, &[b'a'; 70_000]);
    fails_on_header(
        &config,
        &frame,
        70_000,
        ProtocolError::MessageTooBig {
            size: 70_000,
            limit: 1000,
        },
    );
    let mut config = Config::default();
    config.max_fragments(0);
    let frame = client_frame(OpCode::Binary, true, &[1; 10]);
    fails_on_header(&config, &frame, 10, ProtocolError::TooManyFragments { limit: 0 });

    // One fragment allowed: a whole frame across reads arrives, two fragments do not.
    let now = Instant::now();
    let mut config = Config::default();
    config.max_fragments(1);
    let mut c = connection_in_role(&config, false);
    let frame = client_frame(OpCode::Binary, true, &[2; 3000]);
    for piece in frame.chunks(700) {
        c.handle_data(now, piece);
    }
    assert_eq!(c.poll_event(), Some(Event::Message(Message::binary(vec![2; 3000]))));
    let mut input = client_frame(OpCode::Text, false, b"one");
    input.extend(client_frame(OpCode::Ping, true, b""));
    input.extend(client_frame(OpCode::Continuation, true, b"two"));
    c.handle_data(now, &input);
    assert_eq!(c.poll_event(), Some(Event::Ping(Bytes::new())));
    assert_eq!(c.poll_event(), None);
    assert_eq!(close_code(&drain_transmits(&mut c).bytes), Some(1009));
}

/// A continuation after a whole-message frame that spanned reads is unexpected; a new
/// data frame inside a fragmented message (a ping between) is too.
#[test]
fn fragmentation_rules_around_a_whole_message_frame() {
    let _serial = serial();
    let now = Instant::now();
    let mut c = connection_in_role(&Config::default(), false);
    let frame = client_frame(OpCode::Text, true, &[b'w'; 2000]);
    c.handle_data(now, &frame[..10]);
    c.handle_data(now, &frame[10..]);
    c.handle_data(now, &client_frame(OpCode::Continuation, true, b"more"));
    c.handle_eof(now);
    let (events, reason) = split_closed(drain_events(&mut c));
    assert_eq!(events, vec![text(&"w".repeat(2000))]);
    assert_eq!(reason, CloseReason::Failed(ProtocolError::UnexpectedContinuation));

    let mut c = connection_in_role(&Config::default(), false);
    let mut input = client_frame(OpCode::Text, false, b"start");
    input.extend(client_frame(OpCode::Ping, true, b"mid"));
    input.extend(client_frame(OpCode::Binary, true, &[0; 2000]));
    for piece in input.chunks(3) {
        c.handle_data(now, piece);
    }
    c.handle_eof(now);
    let (events, reason) = split_closed(drain_events(&mut c));
    assert_eq!(events, vec![Event::Ping(Bytes::from_static(b"mid"))]);
    assert_eq!(reason, CloseReason::Failed(ProtocolError::ExpectedContinuation));
}

// ---------------------------------------------------------------------------------------
// The masking key from every offset.

/// `payload[i] ^ mask[(offset + i) % 4]`, byte by byte.
fn unmasked_bytewise(src: &[u8], mask: [u8; 4], offset: usize) -> Vec<u8> {
    src.iter()
        .enumerate()
        .map(|(i, byte)| byte ^ mask[(offset + i) % 4])
        .collect()
}

#[test]
fn the_mask_applies_from_every_offset() {
    let _serial = serial();
    let mut rng = XorShift::new(77);
    let src: Vec<u8> = (0..1100).map(|_| rng.next() as u8).collect();
    let masks = [[0x01, 0x23, 0x45, 0x67], [0xFF, 0x00, 0x80, 0x7F], [9, 9, 9, 1]];
    let lengths: Vec<usize> = (0..=140).chain([255, 256, 257, 1000, 1031, 1100]).collect();
    for mask in masks {
        for offset in 0..12 {
            for &len in &lengths {
                let expected = unmasked_bytewise(&src[..len], mask, offset);
                let mut dst = Vec::new();
                extend_unmasked(&mut dst, &src[..len], Some(mask), offset);
                assert!(
                    dst == expected,
                    "extend_unmasked: offset {offset} len {len} mask {mask:?}"
                );
                let mut buf = src[..len].to_vec();
                apply_mask(&mut buf, mask, offset);
                assert!(buf == expected, "apply_mask: offset {offset} len {len} mask {mask:?}");
            }
        }
    }
}

/// A masked frame of every length around the unmasking loops' boundaries, split into two
/// reads at every place in its first 12 payload bytes, and fed in reads of 1 to 9 bytes.
#[test]
fn a_masked_frame_split_at_every_offset_unmasks_exactly() {
    let _serial = serial();
    let now = Instant::now();
    let mut rng = XorShift::new(5);
    for len in [40usize, 133, 1030, 1500] {
        let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let frame = support::frame(OpCode::Binary, true, &payload, Some([0xA1, 0xB2, 0xC3, 0xD4]));
        let header = frame.len() - len;
        let expected = vec![Event::Message(Message::binary(payload.clone()))];
        for split in header..header + 12 {
            let mut c = connection_in_role(&Config::default(), false);
            c.handle_data(now, &frame[..split]);
            c.handle_data(now, &frame[split..]);
            assert_eq!(drain_events(&mut c), expected, "len {len}, split at {split}");
        }
        for read_len in 1..=9 {
            let mut c = connection_in_role(&Config::default(), false);
            for piece in frame.chunks(read_len) {
                c.handle_data(now, piece);
            }
            assert_eq!(drain_events(&mut c), expected, "len {len}, reads of {read_len}");
        }
    }
}
