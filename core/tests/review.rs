//! Regressions for the findings of an adversarial review of the core.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use wsflow::frame::OpCode;
use wsflow::{
    Accept, ClientEvent, ClientHandshake, ClientRequest, CloseCode, CloseReason, Config, Connection, Event, Message,
    ProtocolError, Response, SendError, ServerEvent, ServerHandshake, State, Transmit,
};

const REQUEST: &str = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn close_while_a_failure_is_deferred_keeps_the_failure() {
    let mut input = client_frame(OpCode::Text, true, b"a");
    input.extend(&client_frame(OpCode::Reserved(3), true, b"xxxx")[..6]);
    let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    server.handle_data(Instant::now(), &input);
    assert_eq!(server.poll_event(), Some(Event::Message(Message::text("a"))));
    assert_eq!(
        server.close(Instant::now(), CloseCode::NORMAL, ""),
        Err(SendError::Closed)
    );
    // The rest of the rejected frame is not parsed as a new frame.
    server.handle_data(Instant::now(), &client_frame(OpCode::Text, true, b"x"));
    assert!(drain_events(&mut server).is_empty());
    let frames = decode_frames(&drain_transmits(&mut server).bytes);
    assert_eq!(frames.last().unwrap().close_code(), Some(1002));
    server.handle_eof(Instant::now());
    assert_eq!(
        closed(&drain_events(&mut server)).reason,
        CloseReason::Failed(ProtocolError::ReservedOpcode(3))
    );
}

#[test]
fn the_101_response_goes_out_before_a_pong_for_a_pipelined_ping() {
    let mut input = REQUEST.as_bytes().to_vec();
    input.extend(client_frame(OpCode::Ping, true, b"p"));
    let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
    server.handle_data(Instant::now(), &input);
    assert!(matches!(server.poll_event(), Some(ServerEvent::Request(_))));
    let mut connection = server.accept(Instant::now(), Accept::new()).unwrap();
    let _ = drain_events(&mut connection);
    let Some(Transmit::Data(first)) = connection.poll_transmit() else {
        panic!()
    };
    assert!(first.starts_with(b"HTTP/1.1 101 "));
}

#[test]
fn eof_before_the_connection_exists_is_passed_on() {
    let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
    server.handle_data(Instant::now(), REQUEST.as_bytes());
    assert!(matches!(server.poll_event(), Some(ServerEvent::Request(_))));
    server.handle_eof(Instant::now());
    let mut connection = server.accept(Instant::now(), Accept::new()).unwrap();
    assert_eq!(closed(&drain_events(&mut connection)).reason, CloseReason::Eof);
    assert_eq!(connection.state(), State::Closed);
}

#[test]
fn huge_timeouts_do_not_overflow_and_a_zero_ping_interval_is_off() {
    let mut config = Config::default();
    config
        .close_timeout(Duration::MAX)
        .idle_timeout(Some(Duration::MAX))
        .pong_timeout(Duration::MAX)
        .handshake_timeout(Duration::MAX)
        .ping_interval(Some(Duration::ZERO));
    let mut pair = Pair::new(config);
    assert!(pair
        .client
        .poll_timeout()
        .is_some_and(|at| at > pair.now + Duration::from_secs(1 << 30)));
    pair.client.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.drive();
    assert!(closed(&pair.server_events).is_clean());
}

#[test]
fn pongs_still_answer_pings_after_our_close_frame() {
    let mut server = Connection::server(Arc::new(Config::default()), Instant::now());
    server.close(Instant::now(), CloseCode::NORMAL, "").unwrap();
    server.handle_data(Instant::now(), &client_frame(OpCode::Ping, true, b"still there?"));
    let _ = drain_events(&mut server);
    let frames = decode_frames(&drain_transmits(&mut server).bytes);
    assert!(frames
        .iter()
        .any(|f| f.opcode == OpCode::Pong && f.payload == b"still there?"));
    assert!(server.pong(bytes::Bytes::new()).is_ok(), "manual pongs too");
    assert_eq!(server.ping(bytes::Bytes::new()), Err(SendError::Closed));
}

#[test]
fn a_rejection_without_length_survives_the_handshake_timeout() {
    let now = Instant::now();
    let request = ClientRequest::new("ws://h/").unwrap();
    let mut client = ClientHandshake::new(&request, Arc::new(Config::default()), now, [1; 32]).unwrap();
    client.handle_data(
        now,
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\nlog in",
    );
    client.handle_timeout(client.poll_timeout().unwrap());
    let Some(ClientEvent::Rejected(response)) = client.poll_event() else {
        panic!()
    };
    assert_eq!((response.status(), response.body().as_ref()), (401, &b"log in"[..]));
}

#[test]
fn bytes_pipelined_while_the_application_decides_are_bounded() {
    let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
    server.handle_data(Instant::now(), REQUEST.as_bytes());
    assert!(matches!(server.poll_event(), Some(ServerEvent::Request(_))));
    for _ in 0..100 {
        server.handle_data(Instant::now(), &[0u8; 64 << 10]);
    }
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Failed(wsflow::HandshakeError::TooLarge))
    ));
    assert!(server.accept(Instant::now(), Accept::new()).is_err());
}

#[test]
fn responses_refuse_headers_that_would_duplicate_the_framing() {
    let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
    server.handle_data(Instant::now(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(matches!(server.poll_event(), Some(ServerEvent::Request(_))));
    let response = Response::new(200)
        .with_header("Content-Length", "1000")
        .with_body("short");
    assert_eq!(
        server.respond(&response),
        Err(SendError::InvalidHeader("Content-Length".into()))
    );
}

#[cfg(feature = "deflate")]
#[test]
fn streaming_a_compressed_message_delivers_it_in_bounded_pieces() {
    let mut deflate = Config::default();
    deflate.deflate(Some(wsflow::DeflateConfig::default()));
    let mut streaming = deflate.clone();
    streaming.streaming(true).max_message_size(1 << 30);
    let mut pair = Pair::with_configs(deflate, streaming);
    pair.client.send(Message::binary(vec![0u8; 8 << 20])).unwrap();
    pair.drive();
    let pieces: Vec<usize> = pair
        .server_events
        .iter()
        .filter_map(|event| match event {
            Event::Fragment { data, .. } => Some(data.len()),
            _ => None,
        })
        .collect();
    assert_eq!(pieces.iter().sum::<usize>(), 8 << 20);
    assert!(
        pieces.iter().all(|&len| len <= 64 << 10),
        "largest piece {:?}",
        pieces.iter().max()
    );
}
