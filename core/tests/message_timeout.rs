//! `Config::message_timeout`: a message whose first frame arrived but whose end does not
//! come in time fails the connection with 1008 and `Timeout::Message`; off by default.

mod support;

use std::time::Duration;

use support::*;
use wsflow::frame::OpCode;
use wsflow::{CloseReason, Config, Event, Timeout};

fn with_timeout(timeout: Option<Duration>) -> Config {
    let mut config = Config::default();
    config.message_timeout(timeout);
    config
}

/// A fragmented message that never ends, and a single frame whose payload stops halfway.
fn unfinished_inputs() -> [Vec<u8>; 2] {
    let mut one_frame = client_frame(OpCode::Binary, true, &[1; 1000]);
    one_frame.truncate(500);
    [client_frame(OpCode::Text, false, b"start of a long story"), one_frame]
}

#[test]
fn an_unfinished_message_fails_the_connection_with_1008_at_its_deadline() {
    for input in unfinished_inputs() {
        let mut pair = Pair::new(with_timeout(Some(Duration::from_secs(5))));
        pair.server.handle_data(pair.now, &input);
        assert_eq!(pair.server.poll_timeout(), Some(pair.now + Duration::from_secs(5)));
        // Pings in the meantime do not extend the deadline.
        pair.advance(Duration::from_secs(3));
        pair.server
            .handle_data(pair.now, &client_frame(OpCode::Ping, true, b"still here"));
        pair.advance(Duration::from_millis(1999));
        assert!(pair.server_events.iter().all(|e| !matches!(e, Event::Closed(_))));
        pair.advance(Duration::from_millis(1));
        let out = drain_transmits(&mut pair.server);
        let frames = decode_frames(&pair.to_client);
        let close = frames
            .iter()
            .find(|f| f.opcode == OpCode::Close)
            .expect("a close frame");
        assert_eq!(close.close_code(), Some(1008));
        assert!(pair.server_shut || out.shutdown);
        pair.drive();
        let closed = closed(&pair.server_events);
        assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Message));
    }
}

#[test]
fn messages_that_finish_in_time_clear_the_deadline() {
    let mut pair = Pair::new(with_timeout(Some(Duration::from_secs(5))));
    let [first, _] = unfinished_inputs();
    pair.server.handle_data(pair.now, &first);
    pair.advance(Duration::from_secs(4));
    pair.server
        .handle_data(pair.now, &client_frame(OpCode::Continuation, true, b", the end"));
    assert_eq!(pair.server.poll_timeout(), None);
    pair.advance(Duration::from_secs(60));
    pair.collect();
    assert!(pair.server_events.iter().all(|e| !matches!(e, Event::Closed(_))));
    assert_eq!(messages(&pair.server_events).len(), 1);
    // Whole messages in one read never arm it.
    pair.server
        .handle_data(pair.now, &client_frame(OpCode::Text, true, b"whole"));
    assert_eq!(pair.server.poll_timeout(), None);
}

#[test]
fn without_a_message_timeout_an_unfinished_message_waits_forever() {
    for input in unfinished_inputs() {
        let mut pair = Pair::new(Config::default());
        pair.server.handle_data(pair.now, &input);
        assert_eq!(pair.server.poll_timeout(), None);
        pair.advance(Duration::from_secs(24 * 3600));
        assert!(pair.server_events.iter().all(|e| !matches!(e, Event::Closed(_))));
    }
}
