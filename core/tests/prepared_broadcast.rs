//! `PreparedMessage` + `Connection::send_prepared`: the frames are byte for byte what
//! `send` writes; with permessage-deflate and no server context takeover every connection
//! with the same window and level shares one compressed form (compressed once), and the
//! peers decode it; with context takeover each connection compresses for itself and the
//! stream stays in step with ordinary sends; clients mask as usual; nothing is queued past
//! the high-water mark or after a close.

mod support;

use std::time::Instant;

use support::*;
use wsflow::{CloseCode, Config, Connection, Message, PreparedMessage, SendError};

fn messages() -> Vec<Message> {
    vec![
        Message::text(""),
        Message::text("hello, room ✓"),
        Message::binary(vec![7u8; 125]),
        Message::binary(vec![1u8; 126]),
        Message::text("x".repeat(4095)),
        Message::binary((0..70_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
        Message::binary(vec![0u8; 1 << 20]),
    ]
}

fn wire(connection: &mut Connection) -> Vec<u8> {
    drain_transmits(connection).bytes
}

#[test]
fn prepared_frames_are_byte_identical_to_sent_ones() {
    let config = Config::default();
    for message in messages() {
        let mut sent = connection_in_role(&config, false);
        let mut prepared = connection_in_role(&config, false);
        sent.send(message.clone()).unwrap();
        let shared = PreparedMessage::new(message.clone());
        prepared.send_prepared(&shared, usize::MAX).unwrap();
        assert_eq!(wire(&mut prepared), wire(&mut sent), "{} bytes", message.len());
    }
}

#[cfg(feature = "deflate")]
fn deflate(server_no_context_takeover: bool, window_bits: u8) -> Config {
    let mut deflate = wsflow::DeflateConfig::default();
    deflate
        .server_no_context_takeover(server_no_context_takeover)
        .window_bits(window_bits);
    let mut config = Config::default();
    config.deflate(Some(deflate));
    config
}

#[cfg(feature = "deflate")]
fn chat_line(i: usize) -> Message {
    Message::text(format!(
        r#"{{"room":"lobby","user":"alice","seq":{i},"text":"hello hello everyone"}}"#
    ))
}

#[cfg(feature = "deflate")]
#[test]
fn without_context_takeover_one_compressed_form_serves_every_connection() {
    let mut pairs: Vec<Pair> = (0..50).map(|_| Pair::new(deflate(true, 12))).collect();
    let mut reference = Pair::new(deflate(true, 12));
    let lines: Vec<Message> = (0..20).map(chat_line).collect();
    for line in &lines {
        let prepared = PreparedMessage::new(line.clone());
        for pair in &mut pairs {
            pair.server.send_prepared(&prepared, usize::MAX).unwrap();
        }
        assert_eq!(prepared.compressed_forms(), 1, "compressed once for 50 connections");
        reference.server.send(line.clone()).unwrap();
    }
    reference.collect();
    for pair in &mut pairs {
        pair.collect();
        assert_eq!(pair.to_client, reference.to_client, "byte for byte what `send` writes");
        let plain: usize = lines.iter().map(|line| line.len() + 2).sum();
        assert!(
            pair.to_client.len() < plain,
            "compressed: {} of {plain}",
            pair.to_client.len()
        );
        pair.drive();
        assert_eq!(pair.client_messages(), lines);
    }
}

#[cfg(feature = "deflate")]
#[test]
fn each_window_and_level_gets_its_own_form_and_plain_connections_the_plain_frame() {
    let mut small_window = Pair::new(deflate(true, 10));
    let mut default_window = Pair::new(deflate(true, 12));
    let mut plain = Pair::new(Config::default());
    let line = chat_line(1);
    let prepared = PreparedMessage::new(line.clone());
    for pair in [&mut small_window, &mut default_window, &mut plain] {
        pair.server.send_prepared(&prepared, usize::MAX).unwrap();
        pair.drive();
        assert_eq!(pair.client_messages(), vec![line.clone()]);
    }
    assert_eq!(prepared.compressed_forms(), 2);
}

#[cfg(feature = "deflate")]
#[test]
fn with_context_takeover_each_connection_compresses_in_step_with_its_own_sends() {
    let mut pair = Pair::new(deflate(false, 12));
    let mut expected = Vec::new();
    for i in 0..10 {
        let line = chat_line(i);
        if i % 2 == 0 {
            let prepared = PreparedMessage::new(line.clone());
            pair.server.send_prepared(&prepared, usize::MAX).unwrap();
            assert_eq!(
                prepared.compressed_forms(),
                0,
                "not shareable: compressed by the connection"
            );
        } else {
            pair.server.send(line.clone()).unwrap();
        }
        expected.push(line);
    }
    pair.drive();
    assert_eq!(pair.client_messages(), expected);
}

#[test]
fn a_client_masks_a_prepared_message_like_any_other() {
    let mut pair = Pair::new(Config::default());
    let line = Message::text("from a client");
    pair.client
        .send_prepared(&PreparedMessage::new(line.clone()), usize::MAX)
        .unwrap();
    pair.collect();
    assert!(decode_frames(&pair.to_server)[0].masked);
    pair.drive();
    assert_eq!(pair.server_messages(), vec![line]);
}

#[test]
fn nothing_is_queued_past_the_mark_or_after_a_close() {
    let config = Config::default();
    let mut server = connection_in_role(&config, false);
    let line = PreparedMessage::new(Message::binary(vec![0u8; 1000]));
    for _ in 0..5 {
        server.send_prepared(&line, 4096).unwrap();
    }
    assert_eq!(server.buffered_amount(), 5 * 1004);
    assert_eq!(
        server.send_prepared(&line, 4096),
        Err(SendError::OverHighWaterMark(5 * 1004))
    );
    assert_eq!(server.buffered_amount(), 5 * 1004, "nothing queued");
    server.close(Instant::now(), CloseCode::NORMAL, "").unwrap();
    assert_eq!(server.send_prepared(&line, usize::MAX), Err(SendError::Closed));
}
