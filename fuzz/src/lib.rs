//! Helpers shared by the wsflow fuzz targets: input chunking, transmit collection and the
//! invariants every target checks on events and on the bytes a connection writes.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wsflow::frame::{apply_mask, FrameHeader, OpCode};
use wsflow::{
    Accept, ClientEvent, ClientHandshake, ClientRequest, CloseCode, Config, Connection, DeflateConfig, Event, Message,
    MessageKind, Role, ServerEvent, ServerHandshake, Transmit, Utf8Bytes,
};

/// Entropy for every client: fixed, so runs are reproducible and the seed corpus can carry
/// the matching `Sec-WebSocket-Accept`.
pub const ENTROPY: [u8; 32] = [7; 32];

/// The subprotocol the fuzzed client offers.
pub const SUBPROTOCOL: &str = "chat";

/// The request every fuzzed client sends.
pub fn client_request() -> ClientRequest {
    ClientRequest::new("ws://example.com/chat")
        .expect("a valid URL")
        .subprotocol(SUBPROTOCOL)
}

/// Small limits so that the fuzzer reaches them: 4 KiB messages, 2 KiB frames, 64 fragments.
pub fn small_config(streaming: bool, auto_pong: bool) -> Config {
    let mut config = Config::default();
    config
        .max_message_size(4096)
        .max_frame_size(2048)
        .max_fragments(64)
        .streaming(streaming)
        .auto_pong(auto_pong);
    config
}

/// Handshake targets skip longer inputs: once decided, a handshake fails (a second event,
/// by design) when more than 64 KiB (or `max_handshake_size`) follow the head.
pub const MAX_HANDSHAKE_INPUT: usize = 64 << 10;

/// A handshake configuration whose size limit (64 to 4,144 bytes) comes from the input.
pub fn handshake_config(limit: u8) -> Config {
    let mut config = Config::default();
    config.max_handshake_size(64 + usize::from(limit) * 16).max_headers(16);
    config
}

/// permessage-deflate settings from one input byte: bits 0-2 and 3-5 the server's and the
/// client's window (8 to 15 bits), bits 6 and 7 no context takeover for each.
pub fn deflate_config(byte: u8) -> DeflateConfig {
    let mut deflate = DeflateConfig::default();
    deflate
        .server_max_window_bits(8 + (byte & 7))
        .client_max_window_bits(8 + ((byte >> 3) & 7))
        .server_no_context_takeover(byte & 0x40 != 0)
        .client_no_context_takeover(byte & 0x80 != 0)
        .threshold(16);
    deflate
}

/// A client and a server connected through the real handshakes (the client offers
/// [`SUBPROTOCOL`], the server selects it), with the 101 response already delivered.
pub fn connect(client_config: Config, server_config: Config, now: Instant) -> (Connection, Connection) {
    let mut client =
        ClientHandshake::new(&client_request(), Arc::new(client_config), now, ENTROPY).expect("a client handshake");
    let mut server = ServerHandshake::new(Arc::new(server_config), now);
    let mut wire = Wire::default();
    wire.drain(|| client.poll_transmit());
    server.handle_data(now, &wire.bytes);
    let Some(ServerEvent::Request(request)) = server.poll_event() else {
        panic!("the server did not take the client's request")
    };
    assert!(request.is_websocket());
    let mut server = server
        .accept(now, Accept::new().subprotocol(SUBPROTOCOL))
        .expect("accepting the client's request");
    let mut wire = Wire::default();
    wire.drain(|| server.poll_transmit());
    client.handle_data(now, &wire.bytes);
    let Some(ClientEvent::Accepted(response)) = client.poll_event() else {
        panic!("the client did not accept the server's response")
    };
    assert_eq!(response.subprotocol(), Some(SUBPROTOCOL));
    let client = client.into_connection(now).expect("a client connection");
    assert_eq!(
        client.is_compressed(),
        server.is_compressed(),
        "deflate negotiated on one side only"
    );
    (client, server)
}

/// Splits `data` into pieces whose lengths cycle through `sizes` (a zero gives an empty
/// piece); all-zero or no sizes give one piece. Empty data gives no piece.
pub fn chunks<'a>(data: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let progresses = sizes.iter().any(|&size| size > 0);
    let mut sizes = sizes.iter().cycle();
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = match sizes.next() {
            Some(&size) if progresses => usize::from(size),
            _ => rest.len(),
        };
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(piece)
    })
}

/// What one side wrote: bytes (not yet delivered, for a pair) and whether it shut down.
#[derive(Debug, Default)]
pub struct Wire {
    /// Bytes written.
    pub bytes: Vec<u8>,
    /// Whether [`Transmit::Shutdown`] was written.
    pub shutdown: bool,
}

impl Wire {
    /// Pulls every transmit from `next`, asserting that nothing follows a shutdown.
    /// Returns whether anything was written.
    pub fn drain(&mut self, mut next: impl FnMut() -> Option<Transmit>) -> bool {
        let mut wrote = false;
        while let Some(transmit) = next() {
            assert!(!self.shutdown, "{transmit:?} after Transmit::Shutdown");
            match transmit {
                Transmit::Data(bytes) => self.bytes.extend_from_slice(&bytes),
                Transmit::Shutdown => self.shutdown = true,
            }
            wrote = true;
        }
        wrote
    }
}

/// Drains `connection` as its contract asks, transmits and events until both are empty,
/// asserting that nothing is written once `Closed` was reported and that nothing stays
/// buffered.
pub fn pump(connection: &mut Connection, wire: &mut Wire, events: &mut Vec<Event>) {
    pump_answering(connection, wire, events, |_, _| {});
}

/// As [`pump`], handing each event to `answer` as it is pulled, before the next one: an
/// application may issue commands while draining (e.g. answer a message before the close
/// frame that followed it).
pub fn pump_answering(
    connection: &mut Connection,
    wire: &mut Wire,
    events: &mut Vec<Event>,
    mut answer: impl FnMut(&mut Connection, &Event),
) {
    loop {
        let closed = matches!(events.last(), Some(Event::Closed(_)));
        let wrote = wire.drain(|| connection.poll_transmit());
        assert!(!(closed && wrote), "wrote after Closed");
        let known = events.len();
        loop {
            // What io_state says of the next event is what poll_event returns.
            let state = connection.io_state();
            assert_eq!(state.buffered(), connection.buffered_amount(), "io_state's buffered");
            let Some(event) = connection.poll_event() else {
                assert!(
                    !state.events_waiting() && !state.next_is_data(),
                    "an event was announced but not pulled"
                );
                break;
            };
            assert!(state.events_waiting(), "events_waiting missed {event:?}");
            let is_data = matches!(event, Event::Message(_) | Event::Fragment { .. });
            assert_eq!(state.next_is_data(), is_data, "next_is_data was wrong about {event:?}");
            answer(connection, &event);
            events.push(event);
        }
        if !wrote && events.len() == known {
            assert_eq!(connection.buffered_amount(), 0, "bytes left after draining");
            return;
        }
    }
}

/// Checks an event sequence: `Closed` at most once and last; messages within
/// `max_message_size` and text valid UTF-8; streamed fragments well-formed (one kind per
/// message, bounded, text a valid UTF-8 prefix as far as it arrived); control payloads and
/// close frames as RFC 6455 allows them.
pub fn check_events(events: &[Event], max_message_size: usize) {
    let closed = events.iter().filter(|event| matches!(event, Event::Closed(_))).count();
    assert!(closed <= 1, "Closed {closed} times: {events:?}");
    if closed == 1 {
        assert!(
            matches!(events.last(), Some(Event::Closed(_))),
            "Closed is not last: {events:?}"
        );
    }
    let mut streamed: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Message(message) => {
                assert!(streamed.is_none(), "a whole message inside a streamed one");
                check_message(message.kind(), message.payload(), max_message_size);
            }
            Event::Fragment { kind, data, fin } => {
                let (first_kind, buffer) = streamed.get_or_insert_with(|| (*kind, Vec::new()));
                assert_eq!(first_kind, kind, "message changed kind between fragments");
                buffer.extend_from_slice(data);
                assert!(buffer.len() <= max_message_size, "streamed message over the limit");
                if *kind == MessageKind::Text {
                    let valid_prefix = std::str::from_utf8(buffer).map_or_else(|e| e.error_len().is_none(), |_| true);
                    assert!(valid_prefix, "streamed text is not a UTF-8 prefix");
                }
                if *fin {
                    check_message(*kind, buffer, max_message_size);
                    streamed = None;
                }
            }
            Event::Ping(payload) | Event::Pong(payload) => assert!(payload.len() <= 125),
            Event::CloseReceived(Some(frame)) => {
                assert!(frame.code.is_sendable(), "received close code {:?}", frame.code);
                assert!(frame.reason.len() <= 123);
            }
            Event::CloseReceived(None) | Event::Closed(_) => {}
            other => panic!("unknown event {other:?}"),
        }
    }
}

fn check_message(kind: MessageKind, payload: &[u8], max_message_size: usize) {
    assert!(payload.len() <= max_message_size, "message of {} bytes", payload.len());
    if kind == MessageKind::Text {
        assert!(std::str::from_utf8(payload).is_ok(), "text message is not UTF-8");
    }
}

/// Replaces each streamed message by the whole message (where its last part arrived) and
/// drops streamed messages that never finished, so that runs compare whatever their read
/// sizes (a streamed message that fails shows as much of its valid start as had arrived).
pub fn reassembled(events: &[Event]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut streamed: Option<Vec<u8>> = None;
    for event in events {
        match event {
            Event::Fragment { kind, data, fin } => {
                let buffer = streamed.get_or_insert_with(Vec::new);
                buffer.extend_from_slice(data);
                if *fin {
                    let payload = Bytes::from(streamed.take().unwrap_or_default());
                    out.push(Event::Message(match kind {
                        MessageKind::Text => {
                            Message::Text(Utf8Bytes::try_from(payload).expect("streamed text is UTF-8"))
                        }
                        MessageKind::Binary => Message::Binary(payload),
                    }));
                }
            }
            other => out.push(other.clone()),
        }
    }
    out
}

/// The data messages among `events`.
pub fn messages(events: &[Event]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// A frame a connection wrote, payload unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    /// The opcode.
    pub opcode: OpCode,
    /// FIN.
    pub fin: bool,
    /// The unmasked payload.
    pub payload: Vec<u8>,
}

/// Decodes what a connection with `role` wrote, asserting it is a well-formed frame stream:
/// whole frames only, masked exactly when a client sent them, no RSV bits or reserved
/// opcodes, control frames short and unfragmented, valid close payloads, continuations only
/// inside a fragmented message, and nothing after a close frame.
pub fn decode_output(mut bytes: &[u8], role: Role) -> Vec<WireFrame> {
    let mut frames: Vec<WireFrame> = Vec::new();
    let mut in_message = false;
    while !bytes.is_empty() {
        let (header, header_len) = FrameHeader::decode(bytes)
            .expect("a valid header")
            .expect("a whole header");
        let end = header_len + usize::try_from(header.payload_len).expect("a length that fits");
        assert!(end <= bytes.len(), "truncated frame in the output");
        assert_eq!(
            header.mask.is_some(),
            role == Role::Client,
            "masking does not match the role"
        );
        assert_eq!(header.rsv, 0, "RSV bits in the output");
        assert!(
            !matches!(frames.last(), Some(frame) if frame.opcode == OpCode::Close),
            "a frame after the close frame"
        );
        let mut payload = bytes[header_len..end].to_vec();
        if let Some(mask) = header.mask {
            apply_mask(&mut payload, mask, 0);
        }
        match header.opcode {
            OpCode::Reserved(bits) => panic!("reserved opcode {bits:#x} in the output"),
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                assert!(header.fin && payload.len() <= 125, "bad control frame in the output");
                if header.opcode == OpCode::Close {
                    check_close_payload(&payload);
                }
            }
            OpCode::Continuation => {
                assert!(in_message, "continuation without a message in the output");
                in_message = !header.fin;
            }
            OpCode::Text | OpCode::Binary => {
                assert!(!in_message, "new message inside a fragmented one in the output");
                in_message = !header.fin;
            }
        }
        frames.push(WireFrame {
            opcode: header.opcode,
            fin: header.fin,
            payload,
        });
        bytes = &bytes[end..];
    }
    frames
}

fn check_close_payload(payload: &[u8]) {
    if let [high, low, reason @ ..] = payload {
        let code = CloseCode::new(u16::from_be_bytes([*high, *low]));
        assert!(code.is_sendable(), "close code {code:?} in the output");
        assert!(std::str::from_utf8(reason).is_ok(), "close reason is not UTF-8");
    } else {
        assert!(payload.is_empty(), "one-byte close payload in the output");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_input_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        for sizes in [&[][..], &[0, 0], &[1], &[0, 3, 250], &[255, 255]] {
            let pieces: Vec<&[u8]> = chunks(&data, sizes).collect();
            assert_eq!(pieces.concat(), data, "sizes {sizes:?}");
        }
        assert_eq!(chunks(&[], &[1]).count(), 0);
        assert_eq!(chunks(&data, &[0, 128]).count(), 4);
    }
}
