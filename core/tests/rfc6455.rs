//! One test per MUST of RFC 6455 §5-§7 (each names its section), driven through the public API.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::*;
use wsflow::frame::OpCode;
use wsflow::{
    CloseCode, CloseReason, Config, Connection, Event, Message, MessageKind, ProtocolError, SendError, State, Timeout,
};

/// Feeds `input` to a server and checks that it failed with `code` and `error`, closing with
/// a close frame carrying that code and shutting down.
fn assert_server_fails(input: &[u8], code: u16, error: ProtocolError) {
    assert_fails_with(Config::default(), input, code, error);
}

fn assert_fails_with(config: Config, input: &[u8], code: u16, error: ProtocolError) {
    let (events, output, server) = server_fed(config, input);
    let frames = decode_frames(&output.bytes);
    let last = frames.last().expect("a close frame");
    assert_eq!(last.close_code(), Some(code), "close code on the wire for {error:?}");
    assert!(output.shutdown, "transport shut down");
    assert_eq!(server.state(), State::Closing, "draining until EOF");
    let mut server = server;
    server.handle_eof(Instant::now());
    let mut events = events;
    events.extend(drain_events(&mut server));
    assert_eq!(closed(&events).reason, CloseReason::Failed(error));
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn s5_1_server_fails_on_unmasked_frame() {
    assert_server_fails(
        &frame(OpCode::Text, true, b"hi", None),
        1002,
        ProtocolError::UnmaskedFrame,
    );
}

#[test]
fn s5_1_client_fails_on_masked_frame() {
    let mut client = Connection::client(Arc::new(Config::default()), Instant::now(), [1; 32]);
    client.handle_data(Instant::now(), &client_frame(OpCode::Text, true, b"hi"));
    let output = drain_transmits(&mut client);
    let frames = decode_frames(&output.bytes);
    assert_eq!(frames[0].close_code(), Some(1002));
    assert!(frames[0].masked, "client frames are masked");
    client.handle_eof(Instant::now());
    assert_eq!(
        closed(&drain_events(&mut client)).reason,
        CloseReason::Failed(ProtocolError::MaskedFrame)
    );
}

#[test]
fn s5_2_reserved_bits_without_extension() {
    for rsv in 1..8 {
        let input = frame_rsv(OpCode::Binary, true, rsv, b"x", Some([1, 2, 3, 4]));
        assert_server_fails(&input, 1002, ProtocolError::ReservedBits(rsv));
    }
}

#[test]
fn s5_2_reserved_opcodes() {
    for bits in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let input = client_frame(OpCode::Reserved(bits), true, b"");
        assert_server_fails(&input, 1002, ProtocolError::ReservedOpcode(bits));
    }
}

#[test]
fn s5_2_length_with_top_bit_set() {
    let mut input = vec![0x82, 0xFF];
    input.extend_from_slice(&(1u64 << 63).to_be_bytes());
    input.extend_from_slice(&[1, 2, 3, 4]);
    assert_server_fails(&input, 1002, ProtocolError::InvalidLength);
}

#[test]
fn s5_4_continuation_without_message() {
    assert_server_fails(
        &client_frame(OpCode::Continuation, true, b"x"),
        1002,
        ProtocolError::UnexpectedContinuation,
    );
}

#[test]
fn s5_4_new_message_inside_fragmented_message() {
    let mut input = client_frame(OpCode::Text, false, b"a");
    input.extend(client_frame(OpCode::Binary, true, b"b"));
    assert_server_fails(&input, 1002, ProtocolError::ExpectedContinuation);
}

#[test]
fn s5_4_control_frames_interleaved_in_fragmented_message() {
    let mut input = client_frame(OpCode::Text, false, "Hé".as_bytes());
    input.extend(client_frame(OpCode::Ping, true, b"p1"));
    input.extend(client_frame(OpCode::Continuation, false, b"l"));
    input.extend(client_frame(OpCode::Pong, true, b"p2"));
    input.extend(client_frame(OpCode::Continuation, true, "lo€".as_bytes()));
    let (events, output, _) = server_fed(Config::default(), &input);
    assert_eq!(
        events,
        vec![
            Event::Ping(payload("p1")),
            Event::Pong(payload("p2")),
            Event::Message(Message::text("Héllo€")),
        ]
    );
    let frames = decode_frames(&output.bytes);
    assert_eq!(
        (frames[0].opcode, frames[0].payload.as_slice()),
        (OpCode::Pong, &b"p1"[..])
    );
}

#[test]
fn s5_5_control_frame_over_125_bytes() {
    assert_server_fails(
        &client_frame(OpCode::Ping, true, &[0; 126]),
        1002,
        ProtocolError::ControlFrameTooLong(126),
    );
}

#[test]
fn s5_5_fragmented_control_frame() {
    assert_server_fails(
        &client_frame(OpCode::Ping, false, b"x"),
        1002,
        ProtocolError::FragmentedControlFrame,
    );
}

#[test]
fn s5_5_1_close_with_one_byte_payload() {
    assert_server_fails(
        &client_frame(OpCode::Close, true, &[3]),
        1002,
        ProtocolError::CloseFrameTooShort,
    );
}

#[test]
fn s7_4_invalid_close_codes_are_protocol_errors() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        let input = client_frame(OpCode::Close, true, &code.to_be_bytes());
        assert_server_fails(&input, 1002, ProtocolError::InvalidCloseCode(code));
    }
}

#[test]
fn s7_4_valid_close_codes_are_echoed() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
    ] {
        let (events, output, _) = server_fed(
            Config::default(),
            &client_frame(OpCode::Close, true, &code.to_be_bytes()),
        );
        let frames = decode_frames(&output.bytes);
        assert_eq!(frames[0].close_code(), Some(code));
        assert!(output.shutdown, "§7.1.1: the server closes TCP first");
        assert!(matches!(&events[0], Event::CloseReceived(Some(frame)) if frame.code.as_u16() == code));
    }
}

#[test]
fn s5_5_1_empty_close_is_answered_with_empty_close() {
    let (events, output, mut server) = server_fed(Config::default(), &client_frame(OpCode::Close, true, b""));
    assert_eq!(events, vec![Event::CloseReceived(None)]);
    let frames = decode_frames(&output.bytes);
    assert_eq!((frames[0].opcode, frames[0].payload.len()), (OpCode::Close, 0));
    server.handle_eof(Instant::now());
    let closed_event = drain_events(&mut server);
    let closed = closed(&closed_event);
    assert_eq!(
        (closed.reason.clone(), closed.code()),
        (CloseReason::Clean, CloseCode::NO_STATUS)
    );
}

#[test]
fn s8_1_invalid_utf8_text_and_close_reason() {
    assert_server_fails(
        &client_frame(OpCode::Text, true, &[0xC3, 0x28]),
        1007,
        ProtocolError::InvalidUtf8,
    );
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(&[0xFF]);
    assert_server_fails(
        &client_frame(OpCode::Close, true, &close),
        1007,
        ProtocolError::InvalidUtf8,
    );
    // A message that ends inside a code point.
    let mut input = client_frame(OpCode::Text, false, "€".as_bytes().get(..2).unwrap());
    input.extend(client_frame(OpCode::Continuation, true, b""));
    assert_server_fails(&input, 1007, ProtocolError::InvalidUtf8);
}

#[test]
fn s8_1_invalid_utf8_fails_fast_before_the_frame_completes() {
    // Only the first 6 of 20 payload bytes arrive; the 4th is invalid.
    let whole = client_frame(OpCode::Text, true, b"abc\xFFdefghijklmnopqrs");
    let (events, output, _) = server_fed(Config::default(), &whole[..6 + 6]);
    assert_eq!(decode_frames(&output.bytes)[0].close_code(), Some(1007));
    assert!(events.is_empty(), "Closed only after EOF or the drain timeout");
}

#[test]
fn limits_message_frame_and_fragment_count_give_1009_before_buffering() {
    let mut config = Config::default();
    config.max_message_size(100).max_frame_size(60).max_fragments(3);
    // A frame header announcing more than the frame limit fails at once, payload not sent.
    let header_only = &client_frame(OpCode::Binary, true, &[0; 61])[..8];
    assert_fails_with(
        config.clone(),
        header_only,
        1009,
        ProtocolError::FrameTooBig { size: 61, limit: 60 },
    );
    let mut input = client_frame(OpCode::Binary, false, &[0; 60]);
    input.extend(&client_frame(OpCode::Continuation, false, &[0; 41])[..8]);
    assert_fails_with(
        config.clone(),
        &input,
        1009,
        ProtocolError::MessageTooBig { size: 101, limit: 100 },
    );
    let mut input = Vec::new();
    input.extend(client_frame(OpCode::Binary, false, b"a"));
    input.extend(client_frame(OpCode::Continuation, false, b"b"));
    input.extend(client_frame(OpCode::Continuation, false, b"c"));
    input.extend(client_frame(OpCode::Continuation, true, b"d"));
    assert_fails_with(
        config.clone(),
        &input,
        1009,
        ProtocolError::TooManyFragments { limit: 3 },
    );
    // Whole small frames in one read (the fast path for runs of small messages): the one
    // within the limit is delivered, the next one, over it, fails the connection.
    let mut input = client_frame(OpCode::Binary, true, &[7; 60]);
    input.extend(client_frame(OpCode::Binary, true, &[7; 61]));
    let (events, output, _) = server_fed(config, &input);
    assert_eq!(messages(&events), [Message::Binary(Bytes::from(vec![7; 60]))]);
    assert_eq!(decode_frames(&output.bytes)[0].close_code(), Some(1009));
}

#[test]
fn s5_5_2_ping_is_answered_with_same_payload_and_bursts_answer_the_latest() {
    let mut input = Vec::new();
    for i in 0..40u8 {
        input.extend(client_frame(OpCode::Ping, true, &[i]));
    }
    let (events, output, _) = server_fed(Config::default(), &input);
    assert_eq!(events.len(), 40);
    let pongs = decode_frames(&output.bytes);
    assert!(pongs.len() <= 16, "bounded pending pongs");
    assert!(pongs.iter().all(|f| f.opcode == OpCode::Pong && !f.masked));
    assert_eq!(pongs.last().unwrap().payload, vec![39], "the latest ping is answered");
}

#[test]
fn auto_pong_can_be_disabled() {
    let mut config = Config::default();
    config.auto_pong(false);
    let (events, output, mut server) = server_fed(config, &client_frame(OpCode::Ping, true, b"x"));
    assert_eq!(events, vec![Event::Ping(payload("x"))]);
    assert!(output.bytes.is_empty());
    server.pong(payload("x")).unwrap();
    assert_eq!(
        decode_frames(&drain_transmits(&mut server).bytes)[0].opcode,
        OpCode::Pong
    );
}

#[test]
fn unsolicited_pong_is_reported() {
    let (events, output, _) = server_fed(Config::default(), &client_frame(OpCode::Pong, true, b"u"));
    assert_eq!(events, vec![Event::Pong(payload("u"))]);
    assert!(output.bytes.is_empty());
}

#[test]
fn s7_1_closing_handshake_initiated_by_client() {
    let mut pair = Pair::new(Config::default());
    pair.client.send(Message::text("last")).unwrap();
    pair.client.close(pair.now, CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(
        pair.client.send(Message::text("more")),
        Err(SendError::Closed),
        "§5.5.1: no data after close"
    );
    pair.drive();
    assert_eq!(pair.server_messages(), vec![Message::text("last")]);
    let server_closed = closed(&pair.server_events);
    assert!(server_closed.is_clean());
    assert_eq!(server_closed.code(), CloseCode::NORMAL);
    assert_eq!(server_closed.received.as_ref().unwrap().reason, "bye");
    let client_closed = closed(&pair.client_events);
    assert!(client_closed.is_clean());
    assert_eq!(client_closed.sent.as_ref().unwrap().code, CloseCode::NORMAL);
    assert!(pair.server_shut, "server shuts TCP down first");
}

#[test]
fn s7_1_closing_handshake_initiated_by_server() {
    let mut pair = Pair::new(Config::default());
    pair.server.close(pair.now, CloseCode::new(4001), "custom").unwrap();
    pair.drive();
    assert!(matches!(&pair.client_events[0], Event::CloseReceived(Some(f)) if f.code.as_u16() == 4001));
    assert_eq!(closed(&pair.client_events).code(), CloseCode::new(4001));
    assert!(closed(&pair.server_events).is_clean());
}

#[test]
fn s7_1_1_client_waits_for_tcp_close_then_times_out() {
    let mut pair = Pair::new(Config::default());
    pair.server.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.collect();
    let to_client = std::mem::take(&mut pair.to_client);
    pair.client.handle_data(pair.now, &to_client);
    pair.collect();
    // The server never closes TCP: the client gives up after the close timeout.
    assert_eq!(pair.client.state(), State::Closing);
    let deadline = pair.client.poll_timeout().unwrap();
    assert_eq!(deadline, pair.now + Duration::from_secs(10));
    pair.advance(Duration::from_secs(10));
    assert!(pair.client_shut);
    assert!(closed(&pair.client_events).is_clean(), "the handshake itself completed");
}

#[test]
fn s7_1_close_timeout_when_peer_never_answers() {
    let mut pair = Pair::new(Config::default());
    pair.client.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.collect();
    pair.to_server.clear(); // lost
    pair.advance(Duration::from_secs(9));
    assert_eq!(pair.client.state(), State::Closing);
    pair.advance(Duration::from_secs(1));
    assert_eq!(
        closed(&pair.client_events).reason,
        CloseReason::TimedOut(Timeout::Close)
    );
    assert!(pair.client_shut);
}

#[test]
fn s7_1_5_eof_without_close_is_abnormal() {
    let mut pair = Pair::new(Config::default());
    pair.client.handle_eof(pair.now);
    pair.collect();
    let closed = closed(&pair.client_events);
    assert_eq!(
        (closed.reason.clone(), closed.code()),
        (CloseReason::Eof, CloseCode::ABNORMAL)
    );
    assert_eq!(pair.client.poll_event(), None, "Closed exactly once");
    pair.client.handle_eof(pair.now);
    pair.client.handle_data(pair.now, b"late");
    assert!(drain_events(&mut pair.client).is_empty());
}

#[test]
fn keepalive_pings_and_detects_a_silent_peer() {
    let mut config = Config::default();
    config
        .ping_interval(Some(Duration::from_secs(5)))
        .pong_timeout(Duration::from_secs(3));
    let mut pair = Pair::with_configs(config, Config::default());
    assert_eq!(pair.client.poll_timeout(), Some(pair.now + Duration::from_secs(5)));
    pair.advance(Duration::from_secs(5));
    pair.drive();
    assert!(
        pair.client_events.iter().any(|e| matches!(e, Event::Pong(_))),
        "peer answered"
    );
    pair.advance(Duration::from_secs(5));
    pair.collect();
    pair.to_server.clear(); // the peer went silent: ping lost
    pair.advance(Duration::from_secs(2));
    assert_eq!(pair.client.state(), State::Open);
    pair.advance(Duration::from_secs(1));
    assert_eq!(
        closed(&pair.client_events).reason,
        CloseReason::TimedOut(Timeout::Keepalive)
    );
    assert_eq!(
        closed(&pair.client_events).sent.as_ref().unwrap().code,
        CloseCode::INTERNAL_ERROR
    );
}

#[test]
fn idle_timeout_starts_a_closing_handshake() {
    let mut config = Config::default();
    config.idle_timeout(Some(Duration::from_secs(30)));
    let mut pair = Pair::with_configs(Config::default(), config);
    pair.advance(Duration::from_secs(20));
    pair.client.send(Message::text("activity")).unwrap();
    pair.drive();
    pair.advance(Duration::from_secs(20));
    assert_eq!(pair.server.state(), State::Open, "activity reset the idle timer");
    pair.advance(Duration::from_secs(10));
    pair.drive();
    let closed = closed(&pair.client_events);
    assert_eq!(closed.code(), CloseCode::GOING_AWAY);
    assert!(closed.is_clean());
}

#[test]
fn local_misuse_is_an_immediate_error_and_leaves_the_connection_intact() {
    let mut pair = Pair::new(Config::default());
    let c = &mut pair.client;
    assert_eq!(
        c.ping(Bytes::from(vec![0; 126])),
        Err(SendError::ControlPayloadTooLong(126))
    );
    assert_eq!(
        c.close(pair.now, CloseCode::NO_STATUS, ""),
        Err(SendError::InvalidCloseCode(1005))
    );
    assert_eq!(
        c.close(pair.now, CloseCode::NORMAL, &"x".repeat(124)),
        Err(SendError::CloseReasonTooLong(124))
    );
    c.send_fragment(MessageKind::Text, payload("a"), false).unwrap();
    assert_eq!(c.send(Message::text("b")), Err(SendError::FragmentInProgress));
    assert_eq!(
        c.send_fragment(MessageKind::Binary, payload("b"), true),
        Err(SendError::FragmentInProgress)
    );
    assert_eq!(
        c.send_fragment(MessageKind::Text, Bytes::from_static(&[0xFF]), true),
        Err(SendError::InvalidUtf8)
    );
    c.send_fragment(MessageKind::Text, payload("b"), true).unwrap();
    assert_eq!(c.state(), State::Open);
    pair.drive();
    assert_eq!(pair.server_messages(), vec![Message::text("ab")]);
}

#[test]
fn outgoing_fragments_may_split_code_points_and_interleave_pings() {
    let mut pair = Pair::new(Config::default());
    let euro = "€".as_bytes();
    pair.client
        .send_fragment(MessageKind::Text, Bytes::copy_from_slice(&euro[..1]), false)
        .unwrap();
    pair.client.ping(payload("between")).unwrap();
    pair.client
        .send_fragment(MessageKind::Text, Bytes::copy_from_slice(&euro[1..]), true)
        .unwrap();
    pair.drive();
    assert_eq!(pair.server_messages(), vec![Message::text("€")]);
    assert!(pair.client_events.contains(&Event::Pong(payload("between"))));
}

#[test]
fn auto_fragmentation_at_configured_frame_size() {
    let mut config = Config::default();
    config.outgoing_frame_size(Some(1000));
    let mut server = Connection::server(Arc::new(config), Instant::now());
    server.send(Message::binary(vec![7u8; 2500])).unwrap();
    let frames = decode_frames(&drain_transmits(&mut server).bytes);
    let shape: Vec<_> = frames.iter().map(|f| (f.opcode, f.fin, f.payload.len())).collect();
    assert_eq!(
        shape,
        vec![
            (OpCode::Binary, false, 1000),
            (OpCode::Continuation, false, 1000),
            (OpCode::Continuation, true, 500)
        ]
    );
}

#[test]
fn streaming_mode_delivers_bytes_as_they_arrive() {
    let mut config = Config::default();
    config.streaming(true);
    let mut server = Connection::server(Arc::new(config), Instant::now());
    let now = Instant::now();
    let first = client_frame(OpCode::Binary, false, &[1; 1000]);
    server.handle_data(now, &first[..508]); // header (8) + 500 payload bytes
    assert_eq!(
        drain_events(&mut server),
        vec![Event::Fragment {
            kind: MessageKind::Binary,
            data: Bytes::from(vec![1; 500]),
            fin: false
        }]
    );
    server.handle_data(now, &first[508..]);
    server.handle_data(now, &client_frame(OpCode::Continuation, true, &[2; 3]));
    assert_eq!(
        drain_events(&mut server),
        vec![
            Event::Fragment {
                kind: MessageKind::Binary,
                data: Bytes::from(vec![1; 500]),
                fin: false
            },
            Event::Fragment {
                kind: MessageKind::Binary,
                data: Bytes::from(vec![2; 3]),
                fin: true
            },
        ]
    );
}

#[test]
fn large_messages_arrive_whole_in_both_directions() {
    let mut pair = Pair::new(Config::default());
    let big = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<_>>());
    pair.client.send(Message::binary(big.clone())).unwrap();
    pair.server.send(Message::binary(big.clone())).unwrap();
    pair.drive();
    assert_eq!(pair.server_messages(), vec![Message::Binary(big.clone())]);
    assert_eq!(pair.client_messages(), vec![Message::Binary(big)]);
}

#[test]
fn buffered_amount_counts_queued_bytes() {
    let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    assert_eq!(server.buffered_amount(), 0);
    server.send(Message::binary(vec![0u8; 10_000])).unwrap();
    assert_eq!(server.buffered_amount(), 10_004);
    let _ = drain_transmits(&mut server);
    assert_eq!(server.buffered_amount(), 0);
}

#[test]
fn s5_5_1_messages_before_a_close_can_still_be_answered() {
    let mut input = client_frame(OpCode::Text, true, b"question");
    input.extend(client_frame(OpCode::Close, true, &1000u16.to_be_bytes()));
    let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    server.handle_data(Instant::now(), &input);
    assert_eq!(server.poll_event(), Some(Event::Message(Message::text("question"))));
    server.send(Message::text("answer")).unwrap();
    assert!(matches!(server.poll_event(), Some(Event::CloseReceived(Some(_)))));
    assert_eq!(
        server.send(Message::text("too late")),
        Err(SendError::Closed),
        "the echo is queued now"
    );
    let frames = decode_frames(&drain_transmits(&mut server).bytes);
    let shape: Vec<_> = frames.iter().map(|f| (f.opcode, f.close_code())).collect();
    assert_eq!(shape, vec![(OpCode::Text, None), (OpCode::Close, Some(1000))]);
}

#[test]
fn s5_5_1_application_may_answer_a_close_with_its_own_code() {
    let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    server.handle_data(
        Instant::now(),
        &client_frame(OpCode::Close, true, &1001u16.to_be_bytes()),
    );
    // Before pulling CloseReceived, the application closes with its own code.
    server.close(Instant::now(), CloseCode::new(4000), "done").unwrap();
    let frames = decode_frames(&drain_transmits(&mut server).bytes);
    assert_eq!(
        frames.iter().filter(|f| f.opcode == OpCode::Close).count(),
        1,
        "one close frame only"
    );
    assert_eq!(frames[0].close_code(), Some(4000));
    assert!(matches!(server.poll_event(), Some(Event::CloseReceived(_))));
}

#[test]
fn s7_1_7_messages_before_a_violation_can_be_answered_before_the_failure() {
    // Autobahn 4.1.3: a message, a reserved opcode and a ping in one read.
    let mut input = client_frame(OpCode::Text, true, b"echo me");
    input.extend(client_frame(OpCode::Reserved(5), true, b""));
    input.extend(client_frame(OpCode::Ping, true, b""));
    let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    server.handle_data(Instant::now(), &input);
    assert_eq!(server.poll_event(), Some(Event::Message(Message::text("echo me"))));
    server.send(Message::text("echo me")).unwrap();
    assert_eq!(server.poll_event(), None);
    let output = drain_transmits(&mut server);
    let frames = decode_frames(&output.bytes);
    let shape: Vec<_> = frames.iter().map(|f| (f.opcode, f.close_code())).collect();
    assert_eq!(
        shape,
        vec![(OpCode::Text, None), (OpCode::Close, Some(1002))],
        "the ping after the violation is ignored"
    );
    assert!(output.shutdown);
    assert_eq!(server.send(Message::text("late")), Err(SendError::Closed));
}
