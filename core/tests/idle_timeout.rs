//! The idle timeout counts data only: keepalive's pings and pongs do not keep an idle
//! peer open, while messages and the bytes of a long message do.

use std::time::Duration;

use wsflow::{Config, Event, Message};

mod support;
use support::Pair;

/// A server with a 5 s idle timeout and (optionally) keepalive pings every second.
fn pair(ping_interval: Option<Duration>) -> Pair {
    let mut server = Config::default();
    server.idle_timeout(Some(Duration::from_secs(5)));
    server.ping_interval(ping_interval);
    Pair::with_configs(Config::default(), server)
}

/// The close code the client received, if any.
fn close_received(pair: &Pair) -> Option<u16> {
    pair.client_events.iter().find_map(|event| match event {
        Event::CloseReceived(frame) => Some(frame.as_ref().map_or(1005, |frame| frame.code.as_u16())),
        _ => None,
    })
}

/// Advances a second at a time for `seconds`, delivering everything after each.
fn run(pair: &mut Pair, seconds: u64, mut each_second: impl FnMut(&mut Pair, u64)) {
    for second in 1..=seconds {
        pair.advance(Duration::from_secs(1));
        each_second(pair, second);
        pair.drive();
    }
}

#[test]
fn keepalive_pongs_do_not_hold_off_the_idle_timeout() {
    let mut pair = pair(Some(Duration::from_secs(1)));
    run(&mut pair, 7, |_, _| {});
    let pongs = pair
        .server_events
        .iter()
        .filter(|event| matches!(event, Event::Pong(_)))
        .count();
    assert!(pongs >= 3, "keepalive ran: {pongs} pongs");
    assert_eq!(
        close_received(&pair),
        Some(1001),
        "the idle server closes: {:?}",
        pair.client_events
    );
}

#[test]
fn the_idle_timeout_fires_without_keepalive() {
    let mut pair = pair(None);
    run(&mut pair, 4, |_, _| {});
    assert_eq!(close_received(&pair), None);
    run(&mut pair, 2, |_, _| {});
    assert_eq!(close_received(&pair), Some(1001));
}

#[test]
fn messages_reset_the_idle_timeout() {
    let mut pair = pair(Some(Duration::from_secs(1)));
    run(&mut pair, 12, |pair, second| {
        if second % 3 == 0 {
            pair.client.send(Message::text("still here")).unwrap();
        }
    });
    assert_eq!(close_received(&pair), None, "{:?}", pair.client_events);
    assert_eq!(pair.server_messages().len(), 4);
}

#[test]
fn the_bytes_of_a_slow_message_reset_the_idle_timeout() {
    let mut pair = pair(None);
    // A fragmented message whose fragments come every 3 s: no message completes within
    // the 5 s timeout, but data keeps arriving.
    run(&mut pair, 12, |pair, second| {
        if second % 3 == 0 {
            let fin = second == 12;
            let data = bytes::Bytes::from_static(b"part");
            pair.client
                .send_fragment(wsflow::MessageKind::Binary, data, fin)
                .unwrap();
        }
    });
    assert_eq!(close_received(&pair), None, "{:?}", pair.client_events);
    assert_eq!(
        pair.server_messages(),
        vec![Message::binary(b"partpartpartpart".to_vec())]
    );
}
