//! Regressions found by fuzzing (`fuzz/`): each test replays a minimized finding.

mod support;

use std::sync::Arc;
use std::time::Instant;

use support::*;
use wsflow::{
    Accept, ClientEvent, ClientHandshake, ClientRequest, CloseReason, Config, Connection, Event, Message, ServerEvent,
    ServerHandshake, Transmit,
};

/// Feeds `input` to `connection` in pieces of `piece` bytes, then EOF, draining transmits
/// and events after each until both are empty; returns the events and what was written.
fn feed(connection: &mut Connection, input: &[u8], piece: usize) -> (Vec<Event>, Vec<u8>) {
    let (mut events, mut written) = (Vec::new(), Vec::new());
    let mut drain = |connection: &mut Connection| loop {
        let output = drain_transmits(connection);
        let new = drain_events(connection);
        if output.bytes.is_empty() && !output.shutdown && new.is_empty() {
            break;
        }
        written.extend(output.bytes);
        events.extend(new);
    };
    for chunk in input.chunks(piece) {
        connection.handle_data(Instant::now(), chunk);
        drain(connection);
    }
    connection.handle_eof(Instant::now());
    drain(connection);
    (events, written)
}

/// fuzz/client_handshake: a 101 whose `Sec-WebSocket-Protocol` selects nothing (empty) or
/// is padded was accepted, but `Response::subprotocol` returned the raw header value
/// (`Some("")`, `Some("chat ,")`) instead of what the client had checked.
#[test]
fn accepted_response_reports_the_subprotocol_the_client_checked() {
    for (header, expected) in [("", None), (" chat , ", Some("chat")), (",chat", Some("chat"))] {
        let now = Instant::now();
        let config = Arc::new(Config::default());
        let request = ClientRequest::new("ws://example.com/").unwrap().subprotocol("chat");
        let mut client = ClientHandshake::new(&request, config.clone(), now, [9; 32]).unwrap();
        let mut server = ServerHandshake::new(config, now);
        while let Some(Transmit::Data(bytes)) = client.poll_transmit() {
            server.handle_data(now, &bytes);
        }
        assert!(matches!(server.poll_event(), Some(ServerEvent::Request(_))));
        let accept = Accept::new().header("Sec-WebSocket-Protocol", header);
        let mut server = server.accept(now, accept).unwrap();
        while let Some(Transmit::Data(bytes)) = server.poll_transmit() {
            client.handle_data(now, &bytes);
        }
        let Some(ClientEvent::Accepted(response)) = client.poll_event() else {
            panic!("{header:?} was not accepted")
        };
        assert_eq!(response.subprotocol(), expected, "{header:?}");
    }
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use wsflow::frame::OpCode;
    use wsflow::{DeflateConfig, ProtocolError};

    fn deflating(max_message_size: usize, streaming: bool) -> Config {
        let mut config = Config::default();
        config
            .deflate(Some(DeflateConfig::default()))
            .max_message_size(max_message_size)
            .streaming(streaming);
        config
    }

    /// The payload of a compressed text message of `len` times `a` (fresh context).
    fn compressed_text(len: usize) -> Vec<u8> {
        let mut sender = Pair::new(deflating(1 << 20, false));
        sender.client.send(Message::text("a".repeat(len))).unwrap();
        let frames = decode_frames(&drain_transmits(&mut sender.client).bytes);
        assert_eq!(frames.len(), 1);
        frames[0].payload.clone()
    }

    /// Feeds `input` to fresh servers (`config`) in the whole and cut two ways: each must
    /// report the same, and fail with `expected`.
    fn fails_the_same_however_read(config: &Config, input: &[u8], expected: &ProtocolError) {
        let mut runs = Vec::new();
        for piece in [input.len(), 1, input.len() - 1] {
            let mut pair = Pair::with_configs(config.clone(), config.clone());
            assert!(pair.server.is_compressed());
            let (events, written) = feed(&mut pair.server, input, piece);
            assert_eq!(
                closed(&events).reason,
                CloseReason::Failed(expected.clone()),
                "{piece}-byte reads"
            );
            runs.push((without_parts(events), written));
        }
        assert!(runs.windows(2).all(|pair| pair[0] == pair[1]), "{runs:?}");
    }

    /// Streamed parts differ with the reads; what follows them must not.
    fn without_parts(events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|event| !matches!(event, Event::Fragment { .. }))
            .collect()
    }

    /// fuzz/connection: a compressed text message whose inflated start is not UTF-8 and
    /// whose deflate data then breaks failed with 1007 "invalid UTF-8" when read in pieces
    /// but with "does not inflate" when read whole. The first error in the stream wins.
    #[test]
    fn bad_text_before_a_broken_deflate_stream_fails_the_same_however_read() {
        // A stored block holding 0xFF, then a block of the reserved type 3.
        let payload = [0x00, 0x01, 0x00, 0xFE, 0xFF, 0xFF, 0x06];
        let input = frame_rsv(OpCode::Text, true, 0b100, &payload, Some([1, 2, 3, 4]));
        fails_the_same_however_read(&deflating(1 << 20, false), &input, &ProtocolError::InvalidUtf8);
    }

    /// Streaming counted the limit from what had been delivered, so a message inflating
    /// past `max_message_size` reported the room left (and a size) depending on the reads.
    #[test]
    fn inflating_past_the_limit_reports_the_configured_limit_however_read() {
        let input = frame_rsv(OpCode::Text, true, 0b100, &compressed_text(1000), Some([1, 2, 3, 4]));
        let too_big = ProtocolError::MessageTooBig { size: 101, limit: 100 };
        fails_the_same_however_read(&deflating(100, true), &input, &too_big);
        fails_the_same_however_read(&deflating(100, false), &input, &too_big);
    }

    /// Read whole, inflation ran on past the limit into a later break in the deflate data
    /// and reported "does not inflate"; read in pieces, the limit was passed first.
    #[test]
    fn passing_the_limit_wins_over_a_later_inflate_error() {
        let mut payload = compressed_text(30_000);
        // The data ends inside the header of an empty stored block: give it lengths that
        // do not match.
        payload.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
        let input = frame_rsv(OpCode::Text, true, 0b100, &payload, Some([1, 2, 3, 4]));
        let too_big = ProtocolError::MessageTooBig {
            size: 20_001,
            limit: 20_000,
        };
        fails_the_same_however_read(&deflating(20_000, false), &input, &too_big);
    }
}
