//! Faults injected into a recorded client-server exchange, each direction replayed into a
//! fresh connection of the receiving role: the stream cut at every offset, every byte
//! corrupted (three ways), every byte duplicated, and the whole exchange delivered in random
//! chunks with time passing between them. Each replay must end in exactly one `Closed`, last
//! of the events, for a reason the fault explains: a cut before the end of the close frame is
//! `Eof` (1006, never clean); a corrupted or duplicated byte is a protocol failure with the
//! close code of its kind, the end of the stream, or (a payload byte changed) a clean close;
//! and the messages before the fault are those of the intact exchange. Never a panic, never
//! a hang (a replay that does not end within the close timeout fails).

mod support;

use std::time::Duration;

use support::*;
use wsflow::frame::FrameHeader;
use wsflow::{
    CloseCode, CloseReason, Config, Connection, DeflateConfig, Event, Message, MessageKind, ProtocolError, Timeout,
};

/// The bytes each side sent in a conversation after the handshake: a text, a binary, a
/// fragmented text, a ping, each message echoed by the server, then the client's close
/// and the server's answer.
struct Recording {
    config: Config,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

fn record(config: Config) -> Recording {
    let mut pair = Pair::new(config.clone());
    pair.client.send(Message::text("héllo wörld")).unwrap();
    pair.client
        .send(Message::binary((0..=255u8).cycle().take(700).collect::<Vec<u8>>()))
        .unwrap();
    pair.client
        .send_fragment(MessageKind::Text, payload("frag"), false)
        .unwrap();
    pair.client
        .send_fragment(MessageKind::Text, payload("men"), false)
        .unwrap();
    pair.client
        .send_fragment(MessageKind::Text, payload("ted ✓"), true)
        .unwrap();
    pair.client.ping(payload("are you there")).unwrap();
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let mut closing = false;
    for _ in 0..100 {
        pair.collect();
        for event in std::mem::take(&mut pair.server_events) {
            if let Event::Message(message) = event {
                pair.server.send(message).unwrap();
            }
        }
        pair.collect();
        if pair.to_server.is_empty() && pair.to_client.is_empty() {
            if closing {
                break;
            }
            pair.client.close(pair.now, CloseCode::NORMAL, "bye").unwrap();
            closing = true;
            continue;
        }
        to_server.extend_from_slice(&pair.to_server);
        to_client.extend_from_slice(&pair.to_client);
        pair.step();
    }
    assert!(
        closing && pair.client_shut || pair.server_shut,
        "the exchange did not finish"
    );
    Recording {
        config,
        to_server,
        to_client,
    }
}

/// A fresh connection of the role that receives `to_server` (the server) or `to_client`,
/// negotiated as in the recording.
fn receiver(config: &Config, server: bool) -> Connection {
    let pair = Pair::new(config.clone());
    if server {
        pair.server
    } else {
        pair.client
    }
}

/// Feeds `chunks` (with `pause` between them), then the end of the stream, pulling events
/// as an application does; then lets the close timeout pass. Returns every event; fails if
/// `Closed` is not the last and only one, or never comes.
fn replay(config: &Config, server: bool, chunks: &[&[u8]], pause: &mut dyn FnMut() -> Duration) -> Vec<Event> {
    let mut connection = receiver(config, server);
    let mut now = std::time::Instant::now();
    let mut events = Vec::new();
    for chunk in chunks {
        now += pause();
        connection.handle_timeout(now);
        connection.handle_data(now, chunk);
        events.extend(drain_events(&mut connection));
        drain_transmits(&mut connection);
    }
    connection.handle_eof(now);
    events.extend(drain_events(&mut connection));
    now += config.get_close_timeout() + Duration::from_secs(1);
    connection.handle_timeout(now);
    events.extend(drain_events(&mut connection));
    let closes = events.iter().filter(|event| matches!(event, Event::Closed(_))).count();
    assert_eq!(closes, 1, "{events:?}");
    assert!(matches!(events.last(), Some(Event::Closed(_))), "{events:?}");
    assert!(connection.poll_event().is_none());
    events
}

fn whole(config: &Config, server: bool, input: &[u8]) -> Vec<Event> {
    replay(config, server, &[input], &mut || Duration::ZERO)
}

fn closed(events: &[Event]) -> &wsflow::Closed {
    match events.last() {
        Some(Event::Closed(closed)) => closed,
        _ => unreachable!("replay checked it"),
    }
}

/// The messages, pings and pongs before the end (what the application saw of the peer).
fn data_events(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|event| {
            matches!(
                event,
                Event::Message(_) | Event::Fragment { .. } | Event::Ping(_) | Event::Pong(_)
            )
        })
        .collect()
}

fn configs() -> Vec<(&'static str, Config)> {
    let mut deflate = Config::default();
    deflate.deflate(Some(DeflateConfig::default()));
    let mut holding = deflate.clone();
    holding.max_waiting_size(0);
    let mut streaming = Config::default();
    streaming.streaming(true).message_timeout(Some(Duration::from_secs(30)));
    vec![
        ("default", Config::default()),
        ("deflate", deflate),
        ("deflate, nothing may wait", holding),
        ("streaming, message timeout", streaming),
    ]
}

/// One direction of a recording: (what, config, whether the receiver is the server, the
/// bytes, the events of the intact replay).
type Direction = (String, Config, bool, Vec<u8>, Vec<Event>);

/// Both directions of every configuration's recording.
fn directions() -> Vec<Direction> {
    let mut all = Vec::new();
    for (name, config) in configs() {
        let recording = record(config);
        for (server, bytes) in [(true, recording.to_server), (false, recording.to_client)] {
            let events = whole(&recording.config, server, &bytes);
            assert!(closed(&events).is_clean(), "{name}: intact replay {events:?}");
            let side = if server { "server" } else { "client" };
            all.push((
                format!("{name}, {side} receiving"),
                recording.config.clone(),
                server,
                bytes,
                events,
            ));
        }
    }
    all
}

#[test]
fn a_cut_at_every_offset_ends_in_one_abnormal_close_after_the_messages_before_it() {
    for (what, config, server, bytes, intact) in directions() {
        let expected = data_events(&intact);
        for cut in 0..bytes.len() {
            let events = whole(&config, server, &bytes[..cut]);
            let closed = closed(&events);
            assert_eq!(&closed.reason, &CloseReason::Eof, "{what}, cut at {cut}: {events:?}");
            assert!(!closed.is_clean());
            let seen = data_events(&events);
            // Streaming hands over part of a message: compare up to the last whole event.
            let whole_events = seen.len().saturating_sub(usize::from(config.get_streaming()));
            assert_eq!(seen[..whole_events], expected[..whole_events], "{what}, cut at {cut}");
        }
    }
}

/// Where each frame of a recorded stream starts.
fn frame_starts(mut bytes: &[u8]) -> Vec<usize> {
    let (mut starts, mut at) = (Vec::new(), 0);
    while let Ok(Some((header, len))) = FrameHeader::decode(bytes) {
        starts.push(at);
        let end = len + header.payload_len as usize;
        at += end;
        bytes = &bytes[end..];
    }
    starts
}

#[test]
fn a_corrupted_or_duplicated_byte_at_every_offset_ends_in_one_close_with_a_code_of_its_kind() {
    for (what, config, server, bytes, _) in directions() {
        let starts = frame_starts(&bytes);
        let last_start = *starts.last().unwrap();
        let mut faulty = Vec::with_capacity(bytes.len() + 1);
        for at in 0..bytes.len() {
            let header_start = starts.contains(&at);
            for fault in 0..6 {
                faulty.clear();
                faulty.extend_from_slice(&bytes);
                match fault {
                    0 => faulty[at] ^= 0xFF,
                    1 => faulty[at] ^= 0x80,
                    2 => faulty[at] ^= 0x01,
                    3 => faulty.insert(at, bytes[at]),
                    // At a frame's first byte: a reserved opcode (RSV bits clear); at its second: the mask
                    // bit flipped.
                    4 if header_start => faulty[at] = (bytes[at] & 0x80) | 0x3,
                    5 if header_start => faulty[at + 1] ^= 0x80,
                    _ => continue,
                }
                let events = whole(&config, server, &faulty);
                let reason = &closed(&events).reason;
                let context = format!("{what}, fault {fault} at {at}: {reason:?}");
                match (fault, reason) {
                    // RSV bits inverted (RSV1 alone is allowed only with deflate, on a
                    // message's first frame; never two or three of them).
                    (0, CloseReason::Failed(ProtocolError::ReservedBits(_))) if header_start => {}
                    (0, _) if header_start => panic!("{context}"),
                    (4, CloseReason::Failed(ProtocolError::ReservedOpcode(3))) => {}
                    (5, CloseReason::Failed(ProtocolError::UnmaskedFrame)) if server => {}
                    (5, CloseReason::Failed(ProtocolError::MaskedFrame)) if !server => {}
                    // A masked frame needs 4 more bytes: the last frame may end short.
                    (5, CloseReason::Eof) if !server && at >= last_start => {}
                    (4 | 5, _) => panic!("{context}"),
                    (_, CloseReason::Clean | CloseReason::Eof | CloseReason::TimedOut(Timeout::Close)) => {}
                    (_, CloseReason::Failed(error)) => {
                        assert!(
                            [
                                CloseCode::PROTOCOL_ERROR,
                                CloseCode::INVALID_PAYLOAD,
                                CloseCode::MESSAGE_TOO_BIG
                            ]
                            .contains(&error.close_code()),
                            "{context}"
                        );
                        if let ProtocolError::MessageTooBig { limit, .. } | ProtocolError::FrameTooBig { limit, .. } =
                            error
                        {
                            assert_eq!(*limit, config.get_max_message_size(), "{context}");
                        }
                    }
                    (_, other) => panic!("{context}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn any_chunking_with_time_passing_between_chunks_gives_the_intact_events() {
    let mut rng = XorShift::new(0x5eed);
    for (what, config, server, bytes, intact) in directions() {
        for round in 0..200 {
            let mut chunks = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let most = if rng.chance(50) { 8 } else { 400 };
                let take = 1 + rng.below(rest.len().min(most));
                let (chunk, after) = rest.split_at(take);
                chunks.push(chunk);
                rest = after;
            }
            // Up to 20 s between chunks: within the 30 s message timeout, past none of the
            // other timers (no keepalive or idle timeout is configured).
            let events = replay(&config, server, &chunks, &mut || {
                Duration::from_millis(rng.below(20_000 / chunks.len().max(1) + 1) as u64)
            });
            if config.get_streaming() {
                assert_eq!(
                    merged_messages(&events),
                    merged_messages(&intact),
                    "{what}, round {round}"
                );
            } else {
                assert_eq!(events, intact, "{what}, round {round}");
            }
        }
    }
}

/// Messages with streamed fragments joined (how a chunking splits fragments may differ).
fn merged_messages(events: &[Event]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current = Vec::new();
    for event in events {
        match event {
            Event::Message(message) => messages.push(message.payload().to_vec()),
            Event::Fragment { data, fin, .. } => {
                current.extend_from_slice(data);
                if *fin {
                    messages.push(std::mem::take(&mut current));
                }
            }
            _ => {}
        }
    }
    messages
}
