//! Negotiating from an HTTP head that another library parsed (`ServerNegotiation`) or
//! received (`ClientNegotiation`): the same answers as `ServerHandshake` and
//! `ClientHandshake` give for the same bytes.

mod support;

use std::sync::Arc;
use std::time::Instant;

use support::*;
use wsflow::{
    accept_key, Accept, ClientEvent, ClientHandshake, ClientNegotiation, ClientRequest, Config, Connection, Event,
    HandshakeError, HttpVersion, Message, Rejection, Request, Response, ServerEvent, ServerHandshake,
    ServerNegotiation, Transmit,
};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_head(extra: &str) -> String {
    format!(
        "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Parses a request head as another HTTP server would, into `Request::from_parts`.
fn parsed_elsewhere(head: &[u8]) -> Request {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut fields);
    assert!(parsed.parse(head).unwrap().is_complete());
    let version = match parsed.version {
        Some(0) => HttpVersion::Http10,
        _ => HttpVersion::Http11,
    };
    let headers: Vec<(String, Vec<u8>)> = parsed
        .headers
        .iter()
        .map(|header| (header.name.to_owned(), header.value.to_vec()))
        .collect();
    Request::from_parts(parsed.method.unwrap(), parsed.path.unwrap(), version, headers)
}

/// Parses a response head (and its body, up to the end of `bytes`).
fn parse_response(bytes: &[u8]) -> (Response, Vec<u8>) {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut fields);
    let httparse::Status::Complete(head_len) = parsed.parse(bytes).unwrap() else {
        panic!("incomplete response {bytes:?}")
    };
    let headers: Vec<(&str, &[u8])> = parsed.headers.iter().map(|h| (h.name, h.value)).collect();
    (
        Response::from_parts(parsed.code.unwrap(), headers),
        bytes[head_len..].to_vec(),
    )
}

/// The 101 as `ServerHandshake` writes it, rebuilt from a negotiated response.
fn serialize_101(response: &Response) -> Vec<u8> {
    let mut out = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
    for (name, value) in response.headers().iter() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A config with permessage-deflate on (without the `deflate` feature: the default config,
/// and the tests expect no compression).
fn deflate_config() -> Config {
    #[allow(unused_mut)]
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    config.deflate(Some(wsflow::DeflateConfig::default()));
    config
}

fn deflate_enabled(config: &Config) -> bool {
    #[cfg(feature = "deflate")]
    return config.get_deflate().is_some();
    #[cfg(not(feature = "deflate"))]
    {
        let _ = config;
        false
    }
}

/// The reference: `ServerHandshake` reads `head` and accepts; returns the 101 bytes and
/// the connection (with the 101 drained).
fn reference_accept(config: &Config, head: &[u8], accept: Accept) -> (Vec<u8>, Connection) {
    let now = Instant::now();
    let mut server = ServerHandshake::new(Arc::new(config.clone()), now);
    server.handle_data(now, head);
    let Some(ServerEvent::Request(request)) = server.poll_event() else {
        panic!("no request")
    };
    assert!(request.is_websocket());
    let mut connection = server.accept(now, accept).unwrap();
    let out = drain_transmits(&mut connection);
    (out.bytes, connection)
}

fn negotiated_accept(config: &Config, head: &[u8], accept: Accept) -> (Vec<u8>, Connection, Option<String>) {
    let negotiation = ServerNegotiation::new(Arc::new(config.clone()), parsed_elsewhere(head)).unwrap();
    assert!(negotiation.request().is_websocket());
    let negotiated = negotiation.accept(Instant::now(), accept).unwrap();
    let subprotocol = negotiated.subprotocol().map(str::to_owned);
    let (response, mut connection) = negotiated.into_parts();
    assert_eq!(response.status(), 101);
    assert!(
        drain_transmits(&mut connection).bytes.is_empty(),
        "the HTTP server sends the 101"
    );
    (serialize_101(&response), connection, subprotocol)
}

/// Client messages, compressed or not as the client agreed, that both servers must decode.
fn client_bytes(client: &mut Connection) -> Vec<u8> {
    client.send(Message::text("hello ".repeat(50))).unwrap();
    client.send(Message::binary(vec![7u8; 3000])).unwrap();
    client.send(Message::text("short")).unwrap();
    drain_transmits(client).bytes
}

/// A client connection that completed its handshake against `server_101`.
fn client_for(config: &Config, server_101: &[u8], protocols: &[&str]) -> Connection {
    let now = Instant::now();
    let mut request = ClientRequest::new("ws://server.example.com/chat").unwrap();
    for protocol in protocols {
        request = request.subprotocol(*protocol);
    }
    // The client's own key differs from KEY: rewrite the 101's accept to its key.
    let negotiation = ClientNegotiation::new(&request, Arc::new(config.clone()), [9; 32]).unwrap();
    let (response, _) = parse_response(server_101);
    let accept = accept_key(negotiation.key().as_bytes());
    let headers = response.headers().iter().map(|(name, value)| {
        if name.eq_ignore_ascii_case("sec-websocket-accept") {
            (name.to_owned(), accept.as_bytes().to_vec())
        } else {
            (name.to_owned(), value.to_vec())
        }
    });
    let response = Response::from_parts(101, headers.collect::<Vec<_>>());
    negotiation.into_connection(now, &response).unwrap()
}

#[test]
fn negotiation_answers_byte_for_byte_as_server_handshake() {
    let cases: Vec<(Config, String, Accept, &[&str])> = vec![
        (Config::default(), upgrade_head(""), Accept::new(), &[]),
        (
            Config::default(),
            upgrade_head("Sec-WebSocket-Protocol: chat, superchat\r\n"),
            Accept::new().subprotocol("superchat").header("Set-Cookie", "a=1"),
            &["chat", "superchat"],
        ),
        (
            Config::default(),
            upgrade_head("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            Accept::new(),
            &[],
        ),
        (
            deflate_config(),
            upgrade_head("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
            Accept::new(),
            &[],
        ),
        (
            deflate_config(),
            upgrade_head(
                "Sec-WebSocket-Extensions: x-unknown, permessage-deflate; server_no_context_takeover; \
                 server_max_window_bits=10\r\nSec-WebSocket-Protocol: chat\r\n",
            ),
            Accept::new().subprotocol("chat").header("X-Extra", "1"),
            &["chat"],
        ),
        (deflate_config(), upgrade_head(""), Accept::new(), &[]),
    ];
    for (config, head, accept, protocols) in cases {
        let (reference, mut reference_conn) = reference_accept(&config, head.as_bytes(), accept.clone());
        let (negotiated, mut negotiated_conn, subprotocol) = negotiated_accept(&config, head.as_bytes(), accept);
        assert_eq!(
            String::from_utf8_lossy(&negotiated),
            String::from_utf8_lossy(&reference),
            "for {head:?}"
        );
        let offered_deflate = head.contains("permessage-deflate");
        let deflate_on = offered_deflate && deflate_enabled(&config);
        assert_eq!(negotiated_conn.is_compressed(), deflate_on, "{head:?}");
        assert_eq!(reference_conn.is_compressed(), deflate_on, "{head:?}");
        assert_eq!(negotiated.windows(18).any(|w| w == b"permessage-deflate"), deflate_on);
        assert_eq!(subprotocol.as_deref(), parse_response(&reference).0.subprotocol());

        // Both connections decode the client's frames alike and answer with the same bytes.
        let mut client = client_for(&config, &reference, protocols);
        assert_eq!(client.is_compressed(), deflate_on);
        let wire = client_bytes(&mut client);
        let now = Instant::now();
        reference_conn.handle_data(now, &wire);
        negotiated_conn.handle_data(now, &wire);
        let events = drain_events(&mut negotiated_conn);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events, drain_events(&mut reference_conn));
        for connection in [&mut reference_conn, &mut negotiated_conn] {
            connection.send(Message::text("reply ".repeat(40))).unwrap();
        }
        let reply = drain_transmits(&mut negotiated_conn).bytes;
        assert_eq!(reply, drain_transmits(&mut reference_conn).bytes);
        client.handle_data(now, &reply);
        assert_eq!(
            drain_events(&mut client),
            vec![Event::Message(Message::text("reply ".repeat(40)))]
        );
    }
}

#[test]
fn request_from_parts_is_websocket_exactly_when_server_handshake_says_so() {
    let heads = [
        upgrade_head(""),
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_owned(),
        "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".to_owned(),
        "GET / HTTP/1.0\r\n\r\n".to_owned(),
    ];
    for head in heads {
        let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
        server.handle_data(Instant::now(), head.as_bytes());
        let Some(ServerEvent::Request(reference)) = server.poll_event() else {
            panic!("{head:?}")
        };
        assert_eq!(parsed_elsewhere(head.as_bytes()), reference, "{head:?}");
    }
}

/// Every way an upgrade is refused: the status, headers and body are those of
/// `ServerHandshake` for the same head (less the framing headers it adds when writing).
#[test]
fn every_rejection_matches_server_handshake() {
    let valid = upgrade_head("");
    let cases: Vec<(String, u16, HandshakeError)> = vec![
        (
            valid.replace("Upgrade: websocket\r\n", ""),
            400,
            HandshakeError::BadHeader("Upgrade: websocket"),
        ),
        (
            valid.replace("Connection: Upgrade\r\n", "Connection: keep-alive\r\n"),
            400,
            HandshakeError::BadHeader("Connection: Upgrade"),
        ),
        (
            valid.replace(KEY, "c2hvcnQ="),
            400,
            HandshakeError::BadHeader("Sec-WebSocket-Key"),
        ),
        (
            valid.replace(KEY, "not base64!"),
            400,
            HandshakeError::BadHeader("Sec-WebSocket-Key"),
        ),
        (
            upgrade_head(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
            400,
            HandshakeError::BadHeader("Sec-WebSocket-Key"),
        ),
        (
            valid.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            400,
            HandshakeError::BadHeader("Sec-WebSocket-Key"),
        ),
        (
            valid.replace("Version: 13", "Version: 12"),
            426,
            HandshakeError::UnsupportedVersion("12".into()),
        ),
        (
            valid.replace("GET", "POST"),
            405,
            HandshakeError::MethodNotAllowed("POST".into()),
        ),
        (
            valid.replace("Host: server.example.com\r\n", ""),
            400,
            HandshakeError::BadHeader("Host"),
        ),
        (
            valid.replace("HTTP/1.1", "HTTP/1.0"),
            400,
            HandshakeError::UnsupportedHttpVersion,
        ),
    ];
    for (head, status, error) in cases {
        let rejection =
            ServerNegotiation::new(Arc::new(Config::default()), parsed_elsewhere(head.as_bytes())).expect_err(&head);
        assert_eq!((rejection.status(), rejection.error()), (status, &error), "{head:?}");
        assert_eq!(rejection, Rejection::new(error.clone()));

        let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
        server.handle_data(Instant::now(), head.as_bytes());
        assert_eq!(server.poll_event(), Some(ServerEvent::Failed(error)));
        let Some(Transmit::Data(bytes)) = server.poll_transmit() else {
            panic!()
        };
        let (reference, body) = parse_response(&bytes);
        let framing = ["content-length", "connection"];
        let reference_headers: Vec<_> = reference
            .headers()
            .iter()
            .filter(|(name, _)| !framing.iter().any(|f| name.eq_ignore_ascii_case(f)))
            .collect();
        let response = rejection.response();
        assert_eq!(response.status(), reference.status());
        assert_eq!(
            response.headers().iter().collect::<Vec<_>>(),
            reference_headers,
            "{head:?}"
        );
        assert_eq!(&response.body()[..], &body[..]);
    }
}

#[test]
fn wrong_version_rejection_names_version_13_and_post_allows_get() {
    let head = upgrade_head("").replace("Version: 13", "Version: 12");
    let rejection = ServerNegotiation::new(Arc::new(Config::default()), parsed_elsewhere(head.as_bytes())).unwrap_err();
    assert_eq!(rejection.status(), 426);
    assert_eq!(rejection.response().headers().get("sec-websocket-version"), Some("13"));

    let head = upgrade_head("").replace("GET", "POST");
    let rejection = ServerNegotiation::new(Arc::new(Config::default()), parsed_elsewhere(head.as_bytes())).unwrap_err();
    assert_eq!(rejection.status(), 405);
    assert_eq!(rejection.response().headers().get("allow"), Some("GET"));
}

/// `ServerHandshake` hands a plain request to the application; a negotiation is for an
/// upgrade, so a plain request is refused (405 unless GET, else 400 for the missing upgrade).
#[test]
fn plain_requests_are_refused_by_a_negotiation() {
    let config = Arc::new(Config::default());
    let plain = |method: &str| Request::from_parts(method, "/", HttpVersion::Http11, [("Host", "a")]);
    let get = ServerNegotiation::new(config.clone(), plain("GET")).unwrap_err();
    assert_eq!(
        (get.status(), get.error()),
        (400, &HandshakeError::BadHeader("Upgrade: websocket"))
    );
    let post = ServerNegotiation::new(config, plain("POST")).unwrap_err();
    assert_eq!(post.status(), 405);
}

#[test]
fn http2_and_http3_heads_are_refused() {
    // HTTP/2 takes an extended CONNECT instead (core/tests/negotiate_h2.rs).
    let request = parsed_elsewhere(upgrade_head("").as_bytes());
    let request = Request::from_parts(
        "GET",
        "/",
        HttpVersion::Http2,
        request.headers().iter().collect::<Vec<_>>(),
    );
    assert!(!request.is_websocket());
    let rejection = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap_err();
    assert_eq!(rejection.error(), &HandshakeError::MethodNotAllowed("GET".into()));
    for version in [HttpVersion::Http3, HttpVersion::Http09] {
        let request = parsed_elsewhere(upgrade_head("").as_bytes());
        let request = Request::from_parts(
            request.method(),
            request.target(),
            version,
            request.headers().iter().collect::<Vec<_>>(),
        );
        assert!(!request.is_websocket());
        let rejection = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap_err();
        assert_eq!(rejection.error(), &HandshakeError::UnsupportedHttpVersion);
    }
}

#[test]
fn header_count_and_head_size_limits_apply_as_on_server_handshake() {
    let mut config = Config::default();
    config.max_headers(6);
    let head = upgrade_head("X-One: 1\r\nX-Two: 2\r\n");
    let rejection = ServerNegotiation::new(Arc::new(config.clone()), parsed_elsewhere(head.as_bytes())).unwrap_err();
    assert_eq!(
        (rejection.status(), rejection.error()),
        (431, &HandshakeError::TooLarge)
    );
    let mut server = ServerHandshake::new(Arc::new(config.clone()), Instant::now());
    server.handle_data(Instant::now(), head.as_bytes());
    assert_eq!(server.poll_event(), Some(ServerEvent::Failed(HandshakeError::TooLarge)));
    assert!(ServerNegotiation::new(
        Arc::new(config),
        parsed_elsewhere(upgrade_head("X-One: 1\r\n").as_bytes())
    )
    .is_ok());

    // The size is counted as the head's HTTP/1.1 text: exactly at the limit passes.
    let head = upgrade_head("");
    let mut config = Config::default();
    config.max_handshake_size(head.len());
    assert!(ServerNegotiation::new(Arc::new(config.clone()), parsed_elsewhere(head.as_bytes())).is_ok());
    config.max_handshake_size(head.len() - 1);
    let rejection = ServerNegotiation::new(Arc::new(config.clone()), parsed_elsewhere(head.as_bytes())).unwrap_err();
    assert_eq!(rejection.status(), 431);
    let mut server = ServerHandshake::new(Arc::new(config), Instant::now());
    server.handle_data(Instant::now(), head.as_bytes());
    assert_eq!(server.poll_event(), Some(ServerEvent::Failed(HandshakeError::TooLarge)));
}

#[test]
fn accept_errors_leave_the_negotiation_usable() {
    let negotiation = ServerNegotiation::new(
        Arc::new(Config::default()),
        parsed_elsewhere(upgrade_head("Sec-WebSocket-Protocol: chat\r\n").as_bytes()),
    )
    .unwrap();
    let now = Instant::now();
    assert_eq!(
        negotiation.accept(now, Accept::new().subprotocol("other")).unwrap_err(),
        wsflow::SendError::SubprotocolNotOffered("other".into())
    );
    assert!(matches!(
        negotiation.accept(now, Accept::new().header("X-Bad", "a\r\nInjected: 1")),
        Err(wsflow::SendError::InvalidHeader(_))
    ));
    let negotiated = negotiation.accept(now, Accept::new().subprotocol("chat")).unwrap();
    assert_eq!(negotiated.subprotocol(), Some("chat"));
}

/// The request a `ClientNegotiation` asks to send, written as HTTP/1.1.
fn client_request_bytes(negotiation: &ClientNegotiation) -> Vec<u8> {
    let mut out = format!("GET {} HTTP/1.1\r\n", negotiation.target()).into_bytes();
    for (name, value) in negotiation.headers().iter() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn client_negotiation_sends_what_client_handshake_sends() {
    for config in [Config::default(), deflate_config()] {
        let request = ClientRequest::new("ws://example.com:8080/chat?room=1")
            .unwrap()
            .origin("https://example.com")
            .subprotocol("chat")
            .subprotocol("superchat")
            .header("Authorization", "Bearer x");
        let negotiation = ClientNegotiation::new(&request, Arc::new(config.clone()), [5; 32]).unwrap();
        let mut handshake = ClientHandshake::new(&request, Arc::new(config), Instant::now(), [5; 32]).unwrap();
        let Some(Transmit::Data(bytes)) = handshake.poll_transmit() else {
            panic!()
        };
        assert_eq!(
            String::from_utf8_lossy(&client_request_bytes(&negotiation)),
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(negotiation.headers().get("sec-websocket-key"), Some(negotiation.key()));
    }
}

#[test]
fn client_negotiation_connects_to_a_real_server_handshake() {
    let now = Instant::now();
    let config = deflate_config();
    let request = ClientRequest::new("ws://localhost/chat")
        .unwrap()
        .subprotocol("chat")
        .subprotocol("superchat");
    let negotiation = ClientNegotiation::new(&request, Arc::new(config.clone()), [3; 32]).unwrap();
    let mut server = ServerHandshake::new(Arc::new(config), now);
    server.handle_data(now, &client_request_bytes(&negotiation));
    let Some(ServerEvent::Request(received)) = server.poll_event() else {
        panic!()
    };
    let accept = Accept::new().subprotocol_from(&received, &["superchat"]);
    let mut server = server.accept(now, accept).unwrap();
    // The server's first frame arrives with its 101.
    server.send(Message::text("welcome ".repeat(20))).unwrap();
    let wire = drain_transmits(&mut server).bytes;
    let (response, leftover) = parse_response(&wire);
    assert_eq!(response.subprotocol(), Some("superchat"));
    let mut client = negotiation.into_connection(now, &response).unwrap();
    assert_eq!(client.is_compressed(), cfg!(feature = "deflate"));
    client.handle_data(now, &leftover);
    assert_eq!(
        drain_events(&mut client),
        vec![Event::Message(Message::text("welcome ".repeat(20)))]
    );
    client.send(Message::text("hello ".repeat(30))).unwrap();
    server.handle_data(now, &drain_transmits(&mut client).bytes);
    assert_eq!(
        drain_events(&mut server),
        vec![Event::Message(Message::text("hello ".repeat(30)))]
    );
}

#[test]
fn client_negotiation_refuses_what_client_handshake_refuses() {
    let request = ClientRequest::new("ws://localhost/").unwrap().subprotocol("chat");
    let fresh = || ClientNegotiation::new(&request, Arc::new(Config::default()), [1; 32]).unwrap();
    let key = accept_key(fresh().key().as_bytes());
    let good = || {
        vec![
            ("Upgrade", "websocket".to_owned()),
            ("Connection", "Upgrade".to_owned()),
            ("Sec-WebSocket-Accept", key.clone()),
        ]
    };
    let with = |extra: (&'static str, &str)| {
        let mut headers = good();
        headers.push((extra.0, extra.1.to_owned()));
        headers
    };
    let cases: Vec<(Response, HandshakeError)> = vec![
        (Response::from_parts(200, good()), HandshakeError::UnexpectedStatus(200)),
        (
            Response::from_parts(101, good()[1..].to_vec()),
            HandshakeError::BadHeader("Upgrade: websocket"),
        ),
        (
            Response::from_parts(101, [good()[0].clone(), good()[2].clone()]),
            HandshakeError::BadHeader("Connection: Upgrade"),
        ),
        (
            Response::from_parts(
                101,
                [
                    good()[0].clone(),
                    good()[1].clone(),
                    ("Sec-WebSocket-Accept", accept_key(KEY.as_bytes())),
                ],
            ),
            HandshakeError::BadAccept,
        ),
        (
            Response::from_parts(101, with(("Sec-WebSocket-Protocol", "other"))),
            HandshakeError::UnexpectedSubprotocol("other".into()),
        ),
        (
            Response::from_parts(101, with(("Sec-WebSocket-Extensions", "permessage-deflate"))),
            HandshakeError::UnexpectedExtension("permessage-deflate".into()),
        ),
    ];
    for (response, error) in cases {
        assert_eq!(fresh().into_connection(Instant::now(), &response).unwrap_err(), error);
        // ClientHandshake says the same of the same response (the status aside, which it
        // reports as a rejection with the body).
        if response.status() == 101 {
            let mut handshake =
                ClientHandshake::new(&request, Arc::new(Config::default()), Instant::now(), [1; 32]).unwrap();
            let mut bytes = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
            for (name, value) in response.headers().iter() {
                bytes.extend_from_slice(format!("{name}: ").as_bytes());
                bytes.extend_from_slice(value);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"\r\n");
            handshake.handle_data(Instant::now(), &bytes);
            assert_eq!(handshake.poll_event(), Some(ClientEvent::Failed(error)));
        }
    }
    let accepted = fresh()
        .into_connection(
            Instant::now(),
            &Response::from_parts(101, with(("Sec-WebSocket-Protocol", "chat"))),
        )
        .unwrap();
    assert!(!accepted.is_compressed());
}

#[cfg(feature = "http")]
mod http_conversions {
    use super::*;

    fn http_upgrade(extra: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::get("/chat?x=1")
            .header("Host", "server.example.com")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", KEY)
            .header("Sec-WebSocket-Version", "13");
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn request_parts_negotiate_into_the_101_that_server_handshake_sends() {
        let config = deflate_config();
        let extra = [
            ("Sec-WebSocket-Protocol", "chat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ];
        let request = http_upgrade(&extra);
        let (parts, ()) = request.clone().into_parts();
        assert_eq!(Request::from(&parts), Request::from(&request));
        let request = Request::from(&parts);
        assert_eq!(
            (request.path(), request.query(), request.version()),
            ("/chat", Some("x=1"), HttpVersion::Http11)
        );

        let negotiation = ServerNegotiation::new(Arc::new(config.clone()), request).unwrap();
        let accept = Accept::new().subprotocol("chat");
        let negotiated = negotiation.accept(Instant::now(), accept.clone()).unwrap();
        let response: http::Response<()> = negotiated.to_http();
        assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);

        let head = upgrade_head(
            "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        );
        let (reference, _) = reference_accept(&config, head.as_bytes(), accept);
        let (reference, _) = parse_response(&reference);
        let ours: Vec<(String, Vec<u8>)> = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        let theirs: Vec<(String, Vec<u8>)> = reference
            .headers()
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_vec()))
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(negotiated.connection().is_compressed(), cfg!(feature = "deflate"));
    }

    #[test]
    fn rejections_become_http_responses_with_their_body() {
        let cases = [
            (http_upgrade(&[]), None, 200),
            (
                {
                    let mut request = http_upgrade(&[]);
                    request
                        .headers_mut()
                        .insert("sec-websocket-version", "12".parse().unwrap());
                    request
                },
                Some(("sec-websocket-version", "13")),
                426,
            ),
            (
                {
                    let mut request = http_upgrade(&[]);
                    *request.method_mut() = http::Method::POST;
                    request
                },
                Some(("allow", "GET")),
                405,
            ),
            (
                {
                    let mut request = http_upgrade(&[]);
                    request
                        .headers_mut()
                        .insert("sec-websocket-key", "short".parse().unwrap());
                    request
                },
                None,
                400,
            ),
            (
                {
                    let mut request = http_upgrade(&[]);
                    *request.version_mut() = http::Version::HTTP_2;
                    request
                },
                // HTTP/2 wants an extended CONNECT (RFC 8441).
                Some(("allow", "CONNECT")),
                405,
            ),
        ];
        for (request, header, status) in cases {
            let result = ServerNegotiation::new(Arc::new(Config::default()), Request::from(&request));
            if status == 200 {
                assert!(result.is_ok());
                continue;
            }
            let rejection = result.unwrap_err();
            let response: http::Response<String> = rejection.to_http();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.body(), &format!("{}\n", rejection.error()));
            assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
            if let Some((name, value)) = header {
                assert_eq!(response.headers()[name], value);
            }
        }
    }

    #[test]
    fn client_http_request_and_response_parts_connect_to_a_server_handshake() {
        let now = Instant::now();
        let config = deflate_config();
        let request = ClientRequest::new("ws://localhost:9002/echo")
            .unwrap()
            .subprotocol("chat");
        let negotiation = ClientNegotiation::new(&request, Arc::new(config.clone()), [4; 32]).unwrap();
        let http_request = negotiation.http_request().body(()).unwrap();
        assert_eq!(http_request.version(), http::Version::HTTP_11);
        assert_eq!(http_request.uri(), "/echo");

        // Written out as an HTTP/1.1 client would, then read by a real ServerHandshake.
        let mut bytes = format!("GET {} HTTP/1.1\r\n", http_request.uri()).into_bytes();
        for (name, value) in http_request.headers() {
            bytes.extend_from_slice(format!("{name}: ").as_bytes());
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        let mut server = ServerHandshake::new(Arc::new(config), now);
        server.handle_data(now, &bytes);
        let Some(ServerEvent::Request(received)) = server.poll_event() else {
            panic!()
        };
        let mut server = server
            .accept(now, Accept::new().subprotocol_from(&received, &["chat"]))
            .unwrap();
        let (response, _) = parse_response(&drain_transmits(&mut server).bytes);

        // As the HTTP client hands it back.
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers().iter() {
            builder = builder.header(name, value);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        let mut client = negotiation.into_connection(now, &Response::from(&parts)).unwrap();
        assert_eq!(client.is_compressed(), cfg!(feature = "deflate"));
        client.send(Message::text("over http ".repeat(10))).unwrap();
        server.handle_data(now, &drain_transmits(&mut client).bytes);
        assert_eq!(
            drain_events(&mut server),
            vec![Event::Message(Message::text("over http ".repeat(10)))]
        );
    }

    #[test]
    fn a_response_converts_to_http_with_its_body() {
        let response = Response::new(403).with_header("X-Why", "origin").with_body("no");
        let converted = response.to_http(response.body().clone()).unwrap();
        assert_eq!((converted.status().as_u16(), &converted.body()[..]), (403, &b"no"[..]));
        assert_eq!(Response::from(&converted).headers().get("x-why"), Some("origin"));
    }
}
