//! permessage-deflate (RFC 7692) end to end through the handshakes.
#![cfg(feature = "deflate")]

mod support;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use support::*;
use wsflow::frame::OpCode;
use wsflow::{
    Accept, ClientEvent, ClientHandshake, ClientRequest, Config, DeflateConfig, Event, Message, ProtocolError,
    ServerEvent, ServerHandshake, Transmit,
};

fn deflate_config(deflate: DeflateConfig) -> Config {
    let mut config = Config::default();
    config.deflate(Some(deflate));
    config
}

fn json_like(i: usize) -> String {
    format!(r#"{{"id":{i},"user":"alice","text":"hello hello hello world","tags":["a","b","c"],"ok":true}}"#).repeat(8)
}

#[test]
fn rfc7692_messages_are_compressed_on_the_wire_and_round_trip() {
    for (client, server) in [
        (DeflateConfig::default(), DeflateConfig::default()),
        (
            DeflateConfig::default()
                .client_no_context_takeover(true)
                .server_no_context_takeover(true)
                .clone(),
            DeflateConfig::default(),
        ),
        (
            DeflateConfig::default().server_max_window_bits(9).clone(),
            DeflateConfig::default().client_max_window_bits(8).clone(),
        ),
    ] {
        let mut pair = Pair::with_configs(deflate_config(client.clone()), deflate_config(server));
        assert!(pair.client.is_compressed() && pair.server.is_compressed());
        // Both ends report the same agreed parameters.
        let extensions = pair.server.extensions().expect("permessage-deflate");
        assert_eq!(pair.client.extensions().as_ref(), Some(&extensions));
        assert!(extensions.starts_with("permessage-deflate; "), "{extensions}");
        let sent: Vec<Message> = (0..5).map(|i| Message::text(json_like(i))).collect();
        for message in &sent {
            pair.client.send(message.clone()).unwrap();
            pair.server.send(message.clone()).unwrap();
        }
        pair.collect();
        let frames = decode_frames(&pair.to_client);
        assert!(frames.iter().all(|f| f.opcode == OpCode::Text), "{client:?}");
        let wire: usize = frames.iter().map(|f| f.payload.len()).sum();
        let plain: usize = sent.iter().map(Message::len).sum();
        assert!(wire * 3 < plain, "compressed {wire} of {plain} bytes");
        pair.drive();
        assert_eq!(pair.server_messages(), sent);
        assert_eq!(pair.client_messages(), sent);
    }
    let pair = Pair::with_configs(
        deflate_config(DeflateConfig::default().server_max_window_bits(9).clone()),
        deflate_config(DeflateConfig::default().client_max_window_bits(8).clone()),
    );
    assert_eq!(
        pair.server.extensions().as_deref(),
        Some("permessage-deflate; server_max_window_bits=9; client_max_window_bits=8")
    );
    let mut plain = Pair::with_configs(Config::default(), Config::default());
    plain.collect();
    assert_eq!(plain.server.extensions(), None);
}

#[test]
fn rfc7692_small_and_uncompressed_messages_go_out_plain_and_control_frames_never_compress() {
    let mut pair = Pair::new(deflate_config(DeflateConfig::default()));
    pair.server.send(Message::text("tiny")).unwrap();
    pair.server.send_uncompressed(Message::binary(vec![7u8; 1000])).unwrap();
    pair.server.ping(Bytes::from(vec![b'p'; 100])).unwrap();
    let out = drain_transmits(&mut pair.server);
    let raw: Vec<u8> = out.bytes.clone();
    // RSV1 is the 0x40 bit of the first header byte; none of these frames has it.
    let mut rest = &raw[..];
    while let Ok(Some((header, len))) = wsflow::frame::FrameHeader::decode(rest) {
        assert_eq!(header.rsv, 0, "{:?}", header.opcode);
        rest = &rest[len + header.payload_len as usize..];
    }
    pair.client.handle_data(pair.now, &raw);
    let events = drain_events(&mut pair.client);
    assert_eq!(
        messages(&events),
        vec![Message::text("tiny"), Message::binary(vec![7u8; 1000])]
    );
}

#[test]
fn rfc7692_a_small_frame_that_inflates_past_the_limit_fails_with_1009() {
    let mut client_config = deflate_config(DeflateConfig::default());
    client_config.max_message_size(1 << 30);
    let mut server_config = deflate_config(DeflateConfig::default());
    server_config.max_message_size(1 << 20);
    let mut pair = Pair::with_configs(client_config, server_config);
    pair.client.send(Message::binary(vec![0u8; 16 << 20])).unwrap();
    pair.collect();
    assert!(
        pair.to_server.len() < 200_000,
        "16 MiB of zeros deflate to {} bytes",
        pair.to_server.len()
    );
    pair.drive();
    let closed = closed(&pair.server_events);
    assert!(
        matches!(closed.reason, wsflow::CloseReason::Failed(ProtocolError::MessageTooBig { limit, .. }) if limit == 1 << 20)
    );
    assert_eq!(closed.sent.as_ref().unwrap().code.as_u16(), 1009);
}

#[test]
fn rfc7692_rsv1_rules() {
    // RSV1 on a continuation frame, or on any frame without negotiation, is a protocol error.
    let mut pair = Pair::new(deflate_config(DeflateConfig::default()));
    let mut input = frame_rsv(OpCode::Text, false, 0, b"a", Some([1, 2, 3, 4]));
    input.extend(frame_rsv(OpCode::Continuation, true, 0b100, b"b", Some([1, 2, 3, 4])));
    pair.server.handle_data(pair.now, &input);
    pair.collect();
    assert_eq!(decode_frames(&pair.to_client).last().unwrap().close_code(), Some(1002));

    let mut pair = Pair::new(deflate_config(DeflateConfig::default()));
    pair.server
        .handle_data(pair.now, &frame_rsv(OpCode::Ping, true, 0b100, b"", Some([1, 2, 3, 4])));
    pair.collect();
    assert_eq!(decode_frames(&pair.to_client).last().unwrap().close_code(), Some(1002));

    let (_, output, _) = server_fed(
        deflate_config(DeflateConfig::default()),
        &frame_rsv(OpCode::Text, true, 0b100, b"x", Some([1, 2, 3, 4])),
    );
    assert_eq!(
        decode_frames(&output.bytes)[0].close_code(),
        Some(1002),
        "not negotiated on a bare connection"
    );
}

#[test]
fn rfc7692_corrupt_compressed_data_fails_the_connection() {
    let mut pair = Pair::new(deflate_config(DeflateConfig::default()));
    pair.server.handle_data(
        pair.now,
        &frame_rsv(OpCode::Binary, true, 0b100, &[0xFF; 8], Some([9, 9, 9, 9])),
    );
    pair.collect();
    assert_eq!(decode_frames(&pair.to_client).last().unwrap().close_code(), Some(1007));
}

#[test]
fn rfc7692_chromium_offer_is_accepted() {
    let request = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    let mut server = ServerHandshake::new(Arc::new(deflate_config(DeflateConfig::default())), Instant::now());
    server.handle_data(Instant::now(), request.as_bytes());
    assert!(matches!(server.poll_event(), Some(ServerEvent::Request(_))));
    let mut connection = server.accept(Instant::now(), Accept::new()).unwrap();
    let Some(Transmit::Data(response)) = connection.poll_transmit() else {
        panic!()
    };
    assert!(String::from_utf8_lossy(&response).contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"));
    assert!(connection.is_compressed());
}

#[test]
fn rfc7692_client_fails_on_a_response_it_did_not_offer() {
    let request = ClientRequest::new("ws://h/").unwrap();
    let mut config = DeflateConfig::default();
    config.server_max_window_bits(10);
    let mut client = ClientHandshake::new(&request, Arc::new(deflate_config(config)), Instant::now(), [1; 32]).unwrap();
    let Some(Transmit::Data(sent)) = client.poll_transmit() else {
        panic!()
    };
    let sent = String::from_utf8(sent.to_vec()).unwrap();
    assert!(sent.contains(
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits\r\n"
    ));
    let key = sent
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15\r\n\r\n",
        wsflow::accept_key(key.as_bytes())
    );
    client.handle_data(Instant::now(), response.as_bytes());
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Failed(wsflow::HandshakeError::UnexpectedExtension(_)))
    ));
}

#[test]
fn rfc7692_streaming_mode_inflates_fragments() {
    let mut server_config = deflate_config(DeflateConfig::default());
    server_config.streaming(true);
    let mut pair = Pair::with_configs(deflate_config(DeflateConfig::default()), server_config);
    let text = json_like(3);
    pair.client.send(Message::text(text.clone())).unwrap();
    pair.drive();
    let streamed: Vec<u8> = pair
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::Fragment { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(streamed, text.as_bytes());
}
