//! The end of a connection is one rule: after `Closed`, `poll_timeout` gives the linger
//! deadline (the close timeout) until which the last bytes may be written; then
//! `handle_timeout` drops what is left and there is no deadline any more.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wsflow::frame::OpCode;
use wsflow::{CloseCode, Config, Connection, Event, State, Transmit};

mod support;
use support::{client_frame, closed, drain_events, drain_transmits, Pair};

#[test]
fn a_clean_close_lingers_for_the_close_timeout_then_has_no_deadline() {
    let mut pair = Pair::new(Config::default());
    pair.client.close(pair.now, CloseCode::NORMAL, "bye").unwrap();
    pair.drive();
    assert_eq!(pair.server.state(), State::Closed);
    assert!(matches!(pair.server_events.last(), Some(Event::Closed(_))));
    let linger = pair.server.poll_timeout().expect("a linger deadline after Closed");
    assert_eq!(linger, pair.now + Config::default().get_close_timeout());
    pair.server.handle_timeout(linger - Duration::from_millis(1));
    assert_eq!(pair.server.poll_timeout(), Some(linger), "early calls are harmless");
    pair.server.handle_timeout(linger);
    assert_eq!(pair.server.poll_timeout(), None);
}

#[test]
fn bytes_left_at_the_end_of_the_linger_are_dropped() {
    // A protocol violation (a reserved opcode): the server queues a 1002 close frame and
    // the shutdown, and reports Closed once the client's EOF comes. Nobody pulls the
    // transmits, as a driver whose peer stopped reading could not write them.
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(Config::default()), now);
    server.handle_data(now, &client_frame(OpCode::from_bits(0x3), true, b""));
    server.handle_eof(now);
    let events = drain_events(&mut server);
    assert!(matches!(events.last(), Some(Event::Closed(_))), "{events:?}");
    assert!(server.buffered_amount() > 0, "the close frame is still queued");
    let linger = server.poll_timeout().expect("a linger deadline");
    server.handle_timeout(linger);
    assert_eq!(server.poll_timeout(), None);
    assert!(
        server.poll_transmit().is_none(),
        "nothing is left to write after the linger"
    );
    assert_eq!(server.buffered_amount(), 0);
}

#[test]
fn a_keepalive_failure_ends_with_the_linger_too() {
    let mut config = Config::default();
    config.ping_interval(Some(Duration::from_secs(1)));
    config.pong_timeout(Duration::from_secs(1));
    let mut pair = Pair::new(config);
    // The client never answers: its bytes are never delivered.
    pair.now += Duration::from_secs(1);
    pair.server.handle_timeout(pair.now);
    pair.now += Duration::from_secs(1);
    pair.server.handle_timeout(pair.now);
    let events = drain_events(&mut pair.server);
    let closed = closed(&events);
    assert!(matches!(closed.reason, wsflow::CloseReason::TimedOut(_)), "{closed:?}");
    let linger = pair.server.poll_timeout().expect("a linger deadline");
    let out = drain_transmits(&mut pair.server);
    assert!(out.shutdown, "the close frame and the shutdown are still to be written");
    pair.server.handle_timeout(linger);
    assert_eq!(pair.server.poll_timeout(), None);
    assert!(!matches!(pair.server.poll_transmit(), Some(Transmit::Data(_))));
}
