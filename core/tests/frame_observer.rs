//! `Config::frame_observer`: every frame read or queued is reported with its header, in
//! order, whatever the chunking and the kind (small messages that would take the fast path,
//! fragments, control frames, prepared messages); and the events are the same as without it.

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use wsflow::frame::{FrameHeader, OpCode};
use wsflow::{Config, FrameDirection, Message, MessageKind, PreparedMessage};

type Log = Arc<Mutex<Vec<(FrameDirection, OpCode, bool, u64)>>>;

fn observed(config: &mut Config) -> Log {
    let log: Log = Arc::default();
    let seen = log.clone();
    config.frame_observer(Some(Arc::new(move |direction, header: &FrameHeader| {
        seen.lock()
            .unwrap()
            .push((direction, header.opcode, header.fin, header.payload_len));
    })));
    log
}

#[test]
fn every_frame_is_reported_and_events_are_unchanged() {
    let mut server_config = Config::default();
    let log = observed(&mut server_config);
    let mut pair = Pair::with_configs(Config::default(), server_config);
    let mut plain = Pair::new(Config::default());
    for pair in [&mut pair, &mut plain] {
        for text in ["a", "b", "c"] {
            pair.client.send(Message::text(text)).unwrap();
        }
        pair.client
            .send_fragment(MessageKind::Binary, bytes::Bytes::from_static(b"12"), false)
            .unwrap();
        pair.client
            .send_fragment(MessageKind::Binary, bytes::Bytes::from_static(b"3"), true)
            .unwrap();
        pair.client.ping(bytes::Bytes::from_static(b"p")).unwrap();
        pair.server
            .send_prepared(&PreparedMessage::new(Message::text("shared")), usize::MAX)
            .unwrap();
        pair.drive();
    }
    assert_eq!(
        pair.server_events, plain.server_events,
        "the same events with and without"
    );
    use FrameDirection::{Received, Sent};
    let log = log.lock().unwrap().clone();
    let received: Vec<_> = log.iter().filter(|entry| entry.0 == Received).cloned().collect();
    assert_eq!(
        received,
        [
            (Received, OpCode::Text, true, 1),
            (Received, OpCode::Text, true, 1),
            (Received, OpCode::Text, true, 1),
            (Received, OpCode::Binary, false, 2),
            (Received, OpCode::Continuation, true, 1),
            (Received, OpCode::Ping, true, 1),
        ]
    );
    assert!(
        log.contains(&(Sent, OpCode::Text, true, 6)),
        "the prepared message: {log:?}"
    );
    assert!(
        log.contains(&(Sent, OpCode::Pong, true, 1)),
        "the automatic pong: {log:?}"
    );
}
