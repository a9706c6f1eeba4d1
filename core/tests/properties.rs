//! Properties: chunking never changes what happens, and what one side sends the other receives.

mod support;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use support::*;
use wsflow::frame::OpCode;
use wsflow::{Config, Connection, Event, Message, MessageKind};

/// A piece of client traffic.
#[derive(Clone, Debug)]
enum Piece {
    Message {
        text: bool,
        data: Vec<u8>,
        fragments: usize,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Vec<u8>),
    Garbage(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    let data = prop_oneof![
        4 => any::<String>().prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
    ];
    prop_oneof![
        8 => (any::<bool>(), data, 1usize..5).prop_map(|(text, data, fragments)| Piece::Message { text, data, fragments }),
        2 => proptest::collection::vec(any::<u8>(), 0..130).prop_map(Piece::Ping),
        1 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Piece::Pong),
        1 => proptest::collection::vec(any::<u8>(), 0..6).prop_map(Piece::Close),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Piece::Garbage),
    ]
}

fn encode(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Message { text, data, fragments } => {
                let size = data.len().div_ceil(*fragments).max(1);
                let chunks: Vec<&[u8]> = if data.is_empty() {
                    vec![&[][..]]
                } else {
                    data.chunks(size).collect()
                };
                for (index, chunk) in chunks.iter().enumerate() {
                    let opcode = match (index, text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    };
                    out.extend(client_frame(opcode, index + 1 == chunks.len(), chunk));
                }
            }
            Piece::Ping(data) => out.extend(client_frame(OpCode::Ping, true, data)),
            Piece::Pong(data) => out.extend(client_frame(OpCode::Pong, true, data)),
            Piece::Close(data) => out.extend(client_frame(OpCode::Close, true, data)),
            Piece::Garbage(data) => out.extend_from_slice(data),
        }
    }
    out
}

/// Feeds `input` to a fresh server cut at `cuts`, then EOF; returns events and output.
fn run_server(config: &Config, input: &[u8], cuts: &[usize]) -> (Vec<Event>, Vec<u8>, bool) {
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(config.clone()), now);
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut shutdown = false;
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        server.handle_data(now, &input[start..cut]);
        start = cut;
        events.extend(drain_events(&mut server));
        let out = drain_transmits(&mut server);
        output.extend(out.bytes);
        shutdown |= out.shutdown;
    }
    server.handle_eof(now);
    let out = drain_transmits(&mut server);
    output.extend(out.bytes);
    shutdown |= out.shutdown;
    events.extend(drain_events(&mut server));
    (events, output, shutdown)
}

/// Merges consecutive fragments into whole messages so streaming and reassembly compare.
fn merged_fragments(events: Vec<Event>) -> Vec<Event> {
    let mut merged = Vec::new();
    let mut partial: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Fragment { kind, data, fin } => {
                let (_, buffer) = partial.get_or_insert((kind, Vec::new()));
                buffer.extend_from_slice(&data);
                if fin {
                    let (kind, buffer) = partial.take().unwrap();
                    merged.push(Event::Message(match kind {
                        MessageKind::Text => Message::text(String::from_utf8(buffer).unwrap()),
                        MessageKind::Binary => Message::binary(buffer),
                    }));
                }
            }
            other => merged.push(other),
        }
    }
    merged
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_chunking_gives_the_same_events(pieces in proptest::collection::vec(piece(), 0..8), mut cuts in proptest::collection::vec(0usize..4000, 0..12)) {
        let input = encode(&pieces);
        cuts.sort_unstable();
        let config = Config::default();
        let whole = run_server(&config, &input, &[]);
        let chunked = run_server(&config, &input, &cuts);
        let bytewise: Vec<usize> = (1..input.len()).collect();
        let byte_by_byte = run_server(&config, &input, &bytewise);
        // Holding input back after every message that waits changes nothing either.
        let mut holding = Config::default();
        holding.max_waiting_size(0);
        let held = run_server(&holding, &input, &cuts);
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(&whole, &byte_by_byte);
        prop_assert_eq!(&whole, &held);
        // Closed exactly once, and last.
        prop_assert_eq!(whole.0.iter().filter(|e| matches!(e, Event::Closed(_))).count(), 1);
        prop_assert!(matches!(whole.0.last(), Some(Event::Closed(_))));
    }

    #[test]
    fn streaming_mode_reassembles_to_the_same_messages(pieces in proptest::collection::vec(piece(), 0..8), mut cuts in proptest::collection::vec(0usize..4000, 0..12)) {
        let input = encode(&pieces);
        cuts.sort_unstable();
        let (events, output, shutdown) = run_server(&Config::default(), &input, &[]);
        let mut streaming = Config::default();
        streaming.streaming(true);
        let (streamed, streamed_output, streamed_shutdown) = run_server(&streaming, &input, &cuts);
        // Streaming may deliver the valid start of a message that later fails; compare clean runs.
        if matches!(events.last(), Some(Event::Closed(c)) if !matches!(c.reason, wsflow::CloseReason::Failed(_))) {
            prop_assert_eq!(merged_fragments(streamed), events);
            prop_assert_eq!((streamed_output, streamed_shutdown), (output, shutdown));
        }
    }

    #[test]
    fn what_one_side_sends_the_other_receives(
        // (text, length, sent with `send_*_copied`)
        messages in proptest::collection::vec((any::<bool>(), prop_oneof![Just(0usize), 1usize..200, 3_900usize..4_200, 60_000usize..70_000], any::<bool>()), 0..6),
        frame_size in proptest::option::of(1usize..5000),
        deflate in any::<bool>(),
        max_waiting_size in prop_oneof![Just(0usize), Just(1usize << 20)],
        streaming in any::<bool>(),
    ) {
        let mut config = Config::default();
        config.outgoing_frame_size(frame_size).max_waiting_size(max_waiting_size).streaming(streaming);
        if deflate {
            config.deflate(Some(wsflow::DeflateConfig::default()));
        }
        let mut pair = Pair::new(config);
        let sent: Vec<Message> = messages.iter().enumerate().map(|(i, &(text, len, _))| {
            if text {
                Message::text("é".repeat(len / 2) + &i.to_string())
            } else {
                Message::binary(Bytes::from((0..len).map(|b| (b * 7 + i) as u8).collect::<Vec<_>>()))
            }
        }).collect();
        for (message, &(_, _, copied)) in sent.iter().zip(&messages) {
            for connection in [&mut pair.client, &mut pair.server] {
                match message {
                    Message::Text(text) if copied => connection.send_copied(text.as_str()).unwrap(),
                    Message::Binary(data) if copied => connection.send_copied(&data[..]).unwrap(),
                    _ => connection.send(message.clone()).unwrap(),
                }
            }
        }
        pair.drive();
        let (server_events, client_events) = (std::mem::take(&mut pair.server_events), std::mem::take(&mut pair.client_events));
        prop_assert_eq!(support::messages(&merged_fragments(server_events)), sent.clone());
        prop_assert_eq!(support::messages(&merged_fragments(client_events)), sent);
    }

    /// A server (no masks, so the same bytes) writes the same frames for a message sent
    /// copied from a borrowed slice as for the message itself.
    #[test]
    fn copied_sends_write_the_same_frames(
        text in any::<bool>(),
        len in prop_oneof![0usize..200, 4_090usize..4_100, 60_000usize..70_000],
        frame_size in proptest::option::of(0usize..5000),
    ) {
        let mut config = Config::default();
        config.outgoing_frame_size(frame_size);
        let data = "ab€".repeat(len / 5);
        let mut owned = connection_in_role(&config, false);
        let mut copied = connection_in_role(&config, false);
        if text {
            owned.send(Message::text(data.clone())).unwrap();
            copied.send_copied(&data).unwrap();
        } else {
            owned.send(Message::binary(data.clone())).unwrap();
            copied.send_copied(data.as_bytes()).unwrap();
        }
        prop_assert_eq!(owned.buffered_amount(), copied.buffered_amount());
        prop_assert_eq!(drain_transmits(&mut owned).bytes, drain_transmits(&mut copied).bytes);
    }
}

#[test]
fn copied_sends_are_refused_as_sends_are() {
    let mut pair = Pair::new(Config::default());
    pair.client
        .send_fragment(MessageKind::Text, Bytes::from_static(b"part"), false)
        .unwrap();
    assert_eq!(
        pair.client.send_copied("whole"),
        Err(wsflow::SendError::FragmentInProgress)
    );
    assert_eq!(
        pair.client.send_copied(b"whole"),
        Err(wsflow::SendError::FragmentInProgress)
    );
    pair.server.close(pair.now, wsflow::CloseCode::NORMAL, "").unwrap();
    assert_eq!(pair.server.send_copied("late"), Err(wsflow::SendError::Closed));
    assert_eq!(pair.server.send_copied(b"late"), Err(wsflow::SendError::Closed));
}

#[test]
fn copied_sends_are_compressed_when_negotiated() {
    let mut config = Config::default();
    config.deflate(Some(wsflow::DeflateConfig::default()));
    let mut pair = Pair::new(config);
    let text = "compressible ".repeat(80);
    pair.server.send_copied(&text).unwrap();
    pair.server.send_copied(text.as_bytes()).unwrap();
    let written = drain_transmits(&mut pair.server).bytes;
    assert!(
        written.len() < text.len() / 4,
        "{} bytes written for two messages of {}",
        written.len(),
        text.len()
    );
    pair.client.handle_data(pair.now, &written);
    assert_eq!(
        messages(&drain_events(&mut pair.client)),
        vec![Message::text(text.clone()), Message::binary(Bytes::from(text))]
    );
}
