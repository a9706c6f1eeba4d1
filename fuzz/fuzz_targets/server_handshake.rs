//! `ServerHandshake` fed an arbitrary request in arbitrary chunks, then decided, then
//! optionally EOF or its timeout: at most one event, bounded memory while undecided, a
//! 4xx response and a shutdown for every failure, and a working accept for every upgrade.
#![no_main]

use std::sync::Arc;
use std::time::Instant;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsflow::{
    accept_key, Accept, Event, HandshakeError, Request, Response, Role, SendError, ServerEvent, ServerHandshake,
};
use wsflow_fuzz::{
    check_events, chunks, decode_output, deflate_config, handshake_config, pump, Wire, MAX_HANDSHAKE_INPUT,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Selects `max_handshake_size`.
    limit: u8,
    /// Bit 0: EOF at the end; bit 1: the handshake timer fires at the end; bit 2: accept
    /// with the first subprotocol offered; bit 3: accept permessage-deflate offers.
    flags: u8,
    /// The server's permessage-deflate settings (see `deflate_config`).
    deflate: u8,
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    data: &'a [u8],
}

/// Splits an HTTP message into its head (with the blank line) and what follows.
fn split_head(bytes: &[u8]) -> (&str, &[u8]) {
    let end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a whole head")
        + 4;
    let head = std::str::from_utf8(&bytes[..end]).expect("an ASCII head");
    (head, &bytes[end..])
}

/// A failure was answered with the error's 4xx status and a body of the announced length
/// (nothing on EOF: the peer is gone), then a shutdown.
fn check_failure(error: &HandshakeError, wire: &Wire) {
    assert!(wire.shutdown, "{error:?} without a shutdown");
    if *error == HandshakeError::UnexpectedEof {
        return assert!(wire.bytes.is_empty(), "answered a peer that left");
    }
    let status = error.status().expect("a server-side error has a status");
    let (head, body) = split_head(&wire.bytes);
    assert!(
        head.starts_with("HTTP/1.1 4") && head.starts_with(&format!("HTTP/1.1 {status} ")),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{head}"
    );
}

/// Accepts an upgrade: refuses a subprotocol that was not offered and leaves the handshake
/// as it was, then answers 101 with the right accept key; the connection takes over.
fn accept(handshake: &mut ServerHandshake, request: &Request, now: Instant, with_subprotocol: bool) {
    let offered: Vec<&str> = request.subprotocols().collect();
    // Longer than any offer, so not one of them.
    let unoffered = format!("{}x", offered.concat());
    assert_eq!(
        handshake.accept(now, Accept::new().subprotocol(&unoffered)).err(),
        Some(SendError::SubprotocolNotOffered(unoffered))
    );
    let mut selected = offered.first().copied().filter(|_| with_subprotocol);
    let mut connection = match selected.map(|name| handshake.accept(now, Accept::new().subprotocol(name))) {
        Some(Ok(connection)) => connection,
        // An offer that cannot be written back in a header: the handshake is left as it was.
        None | Some(Err(SendError::InvalidHeader(_))) => {
            selected = None;
            handshake.accept(now, Accept::new()).expect("accepting an upgrade")
        }
        Some(Err(error)) => panic!("accepting {selected:?}: {error}"),
    };
    assert!(matches!(
        handshake.accept(now, Accept::new()),
        Err(SendError::InvalidState(_))
    ));
    // The pipelined bytes were fed to the connection; end it and check what it did.
    connection.handle_eof(now);
    let (mut wire, mut events) = (Wire::default(), Vec::new());
    pump(&mut connection, &mut wire, &mut events);
    check_events(&events, connection.config().get_max_message_size());
    assert!(matches!(events.last(), Some(Event::Closed(_))));
    let (head, frames) = split_head(&wire.bytes);
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
    let key = request.headers().get("sec-websocket-key").expect("a key").trim();
    assert!(head.contains(&format!("\r\nSec-WebSocket-Accept: {}\r\n", accept_key(key.as_bytes()))));
    // Compressed exactly when the response says so.
    let extension = head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate");
    assert_eq!(connection.is_compressed(), extension, "{head}");
    assert!(!extension || connection.config().get_deflate().is_some());
    if let Some(name) = selected {
        assert!(
            head.contains(&format!("\r\nSec-WebSocket-Protocol: {name}\r\n")),
            "{head}"
        );
    }
    decode_output(frames, Role::Server);
}

fuzz_target!(|input: Input<'_>| {
    if input.data.len() > MAX_HANDSHAKE_INPUT {
        return;
    }
    let now = Instant::now();
    let mut config = handshake_config(input.limit);
    config.deflate((input.flags & 8 != 0).then(|| deflate_config(input.deflate)));
    let config = Arc::new(config);
    let max = config.get_max_handshake_size();
    let mut handshake = ServerHandshake::new(config.clone(), now);
    let mut wire = Wire::default();
    let mut events = Vec::new();
    let mut fed_undecided = 0;
    for chunk in chunks(input.data, &input.sizes) {
        let undecided = events.is_empty();
        handshake.handle_data(now, chunk);
        wire.drain(|| handshake.poll_transmit());
        events.extend(std::iter::from_fn(|| handshake.poll_event()));
        if undecided {
            // Bounded memory: undecided, it never holds more than the limit, so the bytes
            // accepted before deciding never exceed the limit plus the last chunk.
            fed_undecided += chunk.len();
            assert!(
                fed_undecided <= max || !events.is_empty(),
                "holds {fed_undecided} > {max} bytes"
            );
        }
    }

    if let Some(ServerEvent::Request(request)) = events.first() {
        assert!(wire.bytes.is_empty() && !wire.shutdown, "wrote before the decision");
        if request.is_websocket() {
            accept(&mut handshake, request, now, input.flags & 4 != 0);
        } else {
            assert!(matches!(
                handshake.accept(now, Accept::new()),
                Err(SendError::InvalidState(_))
            ));
            handshake
                .respond(&Response::new(404).with_body("no"))
                .expect("answering a request");
            assert!(matches!(
                handshake.respond(&Response::new(404)),
                Err(SendError::InvalidState(_))
            ));
            wire.drain(|| handshake.poll_transmit());
            assert!(wire.bytes.starts_with(b"HTTP/1.1 404 Not Found\r\n") && wire.bytes.ends_with(b"\r\n\r\nno"));
            assert!(wire.shutdown);
        }
    }
    let (eof, timeout) = (input.flags & 1 != 0, input.flags & 2 != 0);
    if eof {
        handshake.handle_eof(now);
    }
    if timeout {
        handshake.handle_timeout(now + config.get_handshake_timeout());
        assert_eq!(handshake.poll_timeout(), None);
    }
    wire.drain(|| handshake.poll_transmit());
    events.extend(std::iter::from_fn(|| handshake.poll_event()));

    assert!(events.len() <= 1, "more than one event: {events:?}");
    match events.first() {
        None => {
            assert!(!eof && !timeout, "no event after EOF or the timeout");
            assert!(wire.bytes.is_empty() && !wire.shutdown, "wrote before the decision");
        }
        Some(ServerEvent::Failed(error)) => {
            match error {
                HandshakeError::UnexpectedEof => assert!(eof),
                HandshakeError::TimedOut => assert!(timeout),
                _ => {}
            }
            check_failure(error, &wire);
        }
        Some(ServerEvent::Request(_)) => {}
    }
});
