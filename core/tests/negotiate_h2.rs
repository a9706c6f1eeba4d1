//! WebSockets over HTTP/2 (RFC 8441): the extended CONNECT head that an HTTP/2 library
//! received, validated and answered with `200` by `ServerNegotiation`, and the client's
//! side with `ClientNegotiation::new_http2`. Subprotocols and permessage-deflate are
//! negotiated exactly as over HTTP/1.1; the connection is the same (the client masks).

mod support;

use std::sync::Arc;
use std::time::Instant;

use support::*;
use wsflow::{
    Accept, ClientNegotiation, ClientRequest, CloseCode, Config, Event, HandshakeError, HttpVersion, Message, Request,
    Response, ServerNegotiation,
};

/// A config with permessage-deflate on (without the `deflate` feature: the default).
fn deflate_config() -> Arc<Config> {
    #[allow(unused_mut)]
    let mut config = Config::default();
    #[cfg(feature = "deflate")]
    config.deflate(Some(wsflow::DeflateConfig::default()));
    Arc::new(config)
}

fn h2_request(headers: &[(&str, &str)]) -> Request {
    Request::extended_connect(
        Some("websocket"),
        Some("server.example.com"),
        "/chat?x=1",
        headers.to_vec(),
    )
}

fn h1_request(headers: &[(&str, &str)]) -> Request {
    let mut all = vec![
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    all.extend_from_slice(headers);
    Request::from_parts("GET", "/chat?x=1", HttpVersion::Http11, all)
}

const OFFER: &[(&str, &str)] = &[
    ("sec-websocket-version", "13"),
    ("sec-websocket-protocol", "chat, superchat"),
    (
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits, x-unknown",
    ),
    ("origin", "https://server.example.com"),
];

fn rejection(request: Request) -> wsflow::Rejection {
    ServerNegotiation::new(Arc::new(Config::default()), request).unwrap_err()
}

#[test]
fn extended_connect_is_accepted_with_200_and_the_http1_negotiation() {
    let config = deflate_config();
    let request = h2_request(OFFER);
    assert!(request.is_websocket());
    assert_eq!(
        (request.path(), request.query(), request.host()),
        ("/chat", Some("x=1"), Some("server.example.com"))
    );
    let negotiation = ServerNegotiation::new(config.clone(), request).unwrap();
    assert!(negotiation.is_http2());
    assert_eq!(negotiation.request().origin(), Some("https://server.example.com"));
    let accept = Accept::new()
        .subprotocol_from(negotiation.request(), &["superchat"])
        .header("set-cookie", "a=1");
    let negotiated = negotiation.accept(Instant::now(), accept.clone()).unwrap();
    let response = negotiated.response();
    assert_eq!(response.status(), 200);
    for absent in ["upgrade", "connection", "sec-websocket-accept"] {
        assert_eq!(response.headers().get(absent), None, "{absent}");
    }
    assert_eq!(negotiated.subprotocol(), Some("superchat"));

    // The same offer over HTTP/1.1: the same headers after the three of the 101.
    let h1 = ServerNegotiation::new(config.clone(), h1_request(OFFER)).unwrap();
    assert!(!h1.is_http2());
    let h1 = h1.accept(Instant::now(), accept).unwrap();
    assert_eq!(h1.response().status(), 101);
    let h1_rest: Vec<_> = h1.response().headers().iter().skip(3).collect();
    let h2_all: Vec<_> = response.headers().iter().collect();
    assert_eq!(h1_rest, h2_all);
    assert_eq!(negotiated.connection().is_compressed(), h1.connection().is_compressed());
    #[cfg(feature = "deflate")]
    assert!(negotiated.connection().is_compressed());
}

#[test]
fn client_and_server_talk_over_an_http2_stream() {
    let config = deflate_config();
    let client_request = ClientRequest::new("wss://server.example.com:8443/chat?x=1")
        .unwrap()
        .subprotocol("superchat")
        .origin("https://server.example.com")
        .header("authorization", "Bearer t");
    let negotiation = ClientNegotiation::new_http2(&client_request, config.clone(), [3; 32]).unwrap();
    assert!(negotiation.is_http2());
    assert_eq!(negotiation.key(), "");
    assert_eq!(
        (negotiation.scheme(), negotiation.authority(), negotiation.target()),
        ("https", "server.example.com:8443", "/chat?x=1")
    );
    let names: Vec<String> = negotiation
        .headers()
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    for forbidden in ["host", "upgrade", "connection", "sec-websocket-key"] {
        assert!(!names.iter().any(|name| name == forbidden), "{forbidden} in {names:?}");
    }

    // What an HTTP/2 server library hands over: the pseudo-headers and the fields.
    let request = Request::extended_connect(
        Some("websocket"),
        Some(negotiation.authority()),
        negotiation.target(),
        negotiation.headers().iter().collect::<Vec<_>>(),
    );
    assert_eq!(request.headers().get("authorization"), Some("Bearer t"));
    let server_negotiation = ServerNegotiation::new(config.clone(), request).unwrap();
    let accept = Accept::new().subprotocol_from(server_negotiation.request(), &["superchat"]);
    let (response, mut server) = server_negotiation.accept(Instant::now(), accept).unwrap().into_parts();
    let mut client = negotiation.into_connection(Instant::now(), &response).unwrap();
    assert_eq!(client.is_compressed(), server.is_compressed());
    assert_eq!(response.subprotocol(), Some("superchat"));

    let now = Instant::now();
    client.send(Message::text("hello ".repeat(100))).unwrap();
    client.send(Message::binary(vec![9u8; 5000])).unwrap();
    let wire = drain_transmits(&mut client).bytes;
    // Masked (RFC 8441 §5 keeps RFC 6455's masking): the server refuses unmasked frames.
    assert!(decode_frames(&wire).iter().all(|frame| frame.masked));
    server.handle_data(now, &wire);
    let got = messages(&drain_events(&mut server));
    assert_eq!(
        got,
        vec![Message::text("hello ".repeat(100)), Message::binary(vec![9u8; 5000])]
    );

    server.send(Message::text("back")).unwrap();
    server.close(now, CloseCode::GOING_AWAY, "bye").unwrap();
    let wire = drain_transmits(&mut server).bytes;
    client.handle_data(now, &wire);
    let events = drain_events(&mut client);
    assert_eq!(messages(&events), vec![Message::text("back")]);
    assert!(events
        .iter()
        .any(|event| matches!(event, Event::CloseReceived(Some(frame)) if frame.code == CloseCode::GOING_AWAY)));

    // The end of the stream stands in for TCP's close. The client does not wait for the
    // server's end once the close frames have crossed; the server waits for the client's,
    // as over TCP.
    let closed = |events: &[Event]| {
        events.iter().find_map(|event| match event {
            Event::Closed(closed) => Some(closed.clone()),
            _ => None,
        })
    };
    let client_closed = closed(&events).or_else(|| closed(&drain_events(&mut client)));
    assert!(
        client_closed.is_some_and(|closed| closed.is_clean()),
        "the client waits for the server's end"
    );
    let echo = drain_transmits(&mut client);
    assert!(echo.shutdown, "the client ends its stream after its close echo");
    server.handle_data(now, &echo.bytes);
    assert_eq!(
        closed(&drain_events(&mut server)),
        None,
        "the server waits for the client's end"
    );
    assert!(drain_transmits(&mut server).shutdown, "the server ends its stream");
    server.handle_eof(now);
    let server_closed = closed(&drain_events(&mut server));
    assert!(server_closed.is_some_and(|closed| closed.is_clean() && closed.code() == CloseCode::GOING_AWAY));
}

fn expect(rejection: wsflow::Rejection, status: u16, error: HandshakeError) {
    assert_eq!(rejection.error(), &error);
    assert_eq!(rejection.status(), status, "{error}");
}

#[test]
fn rejections_use_http2_statuses() {
    let version = [("sec-websocket-version", "13")];
    // Another method: 405, allowing CONNECT.
    let get = Request::from_parts("GET", "/", HttpVersion::Http2, version).with_authority(Some("a"));
    assert!(!get.is_websocket());
    let refused = rejection(get);
    expect(refused.clone(), 405, HandshakeError::MethodNotAllowed("GET".into()));
    assert_eq!(refused.response().headers().get("allow"), Some("CONNECT"));

    // No `:protocol`, or another protocol.
    let none = Request::extended_connect(None, Some("a"), "/", version);
    expect(rejection(none), 400, HandshakeError::BadHeader(":protocol: websocket"));
    let other = Request::extended_connect(Some("connect-udp"), Some("a"), "/", [("x", "y")]);
    assert!(!other.is_websocket(), "another protocol is not a WebSocket attempt");
    expect(rejection(other), 400, HandshakeError::BadHeader(":protocol: websocket"));
    // The token compares case-insensitively.
    let upper = Request::extended_connect(Some("WebSocket"), Some("a"), "/", version);
    assert!(ServerNegotiation::new(Arc::new(Config::default()), upper).is_ok());

    // No authority (a `Host` field stands in for it), a path that is not origin-form.
    let no_authority = Request::extended_connect(Some("websocket"), None, "/", version);
    expect(rejection(no_authority), 400, HandshakeError::BadHeader(":authority"));
    let empty_authority = Request::extended_connect(Some("websocket"), Some(""), "/", version);
    expect(rejection(empty_authority), 400, HandshakeError::BadHeader(":authority"));
    let host = Request::extended_connect(
        Some("websocket"),
        None,
        "/",
        [("sec-websocket-version", "13"), ("host", "a")],
    );
    assert!(ServerNegotiation::new(Arc::new(Config::default()), host).is_ok());
    for path in ["", "*", "chat", "http://a/"] {
        let request = Request::extended_connect(Some("websocket"), Some("a"), path, version);
        expect(rejection(request), 400, HandshakeError::BadHeader(":path"));
    }

    // A bad version: 400 (HTTP/2 has no upgrade to require), naming version 13.
    for bad in ["12", "", "13, 8"] {
        let request = Request::extended_connect(Some("websocket"), Some("a"), "/", [("sec-websocket-version", bad)]);
        let refused = rejection(request);
        expect(refused.clone(), 400, HandshakeError::UnsupportedVersion(bad.into()));
        assert_eq!(refused.response().headers().get("sec-websocket-version"), Some("13"));
    }
    let missing = Request::extended_connect(Some("websocket"), Some("a"), "/", [("x", "y")]);
    expect(
        rejection(missing),
        400,
        HandshakeError::UnsupportedVersion(String::new()),
    );

    // HTTP/1.1's connection-specific fields are malformed in HTTP/2.
    for name in [
        "connection",
        "Upgrade",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
    ] {
        let request = Request::extended_connect(
            Some("websocket"),
            Some("a"),
            "/",
            [("sec-websocket-version", "13"), (name, "x")],
        );
        let refused = rejection(request);
        assert_eq!(refused.status(), 400);
        assert!(matches!(refused.error(), HandshakeError::MalformedHttp(_)), "{name}");
    }

    // A `Sec-WebSocket-Key` is not used over HTTP/2 (RFC 8441 §5): ignored, whatever it is.
    let keyed = Request::extended_connect(
        Some("websocket"),
        Some("a"),
        "/",
        [("sec-websocket-version", "13"), ("sec-websocket-key", "not base64!")],
    );
    let negotiated = ServerNegotiation::new(Arc::new(Config::default()), keyed)
        .unwrap()
        .accept(Instant::now(), Accept::new())
        .unwrap();
    assert_eq!(negotiated.response().headers().get("sec-websocket-accept"), None);
}

#[test]
fn limits_apply_over_http2() {
    let mut strict = Config::default();
    strict.max_headers(2);
    let negotiation = ServerNegotiation::new(Arc::new(Config::default()), h2_request(OFFER)).unwrap();
    let refused = negotiation.with_config(Arc::new(strict)).unwrap_err();
    expect(refused, 431, HandshakeError::TooLarge);
    let mut small = Config::default();
    small.max_handshake_size(64);
    let refused = ServerNegotiation::new(Arc::new(small), h2_request(OFFER)).unwrap_err();
    expect(refused, 431, HandshakeError::TooLarge);
}

#[test]
fn http1_rules_are_unchanged() {
    // HTTP/1.1 still wants GET and answers a bad version with 426; HTTP/3 is refused.
    let refused = rejection(h1_request(&[("Sec-WebSocket-Version", "8")]));
    assert_eq!(refused.status(), 426);
    let connect = Request::from_parts("CONNECT", "/", HttpVersion::Http11, [("Sec-WebSocket-Version", "13")]);
    let refused = rejection(connect.with_protocol(Some("websocket")));
    assert_eq!(refused.status(), 405);
    assert_eq!(refused.response().headers().get("allow"), Some("GET"));
    let h3 = Request::from_parts("GET", "/", HttpVersion::Http3, [("Sec-WebSocket-Version", "13")])
        .with_protocol(Some("websocket"))
        .with_authority(Some("a"));
    expect(rejection(h3), 400, HandshakeError::UnsupportedHttpVersion);
}

fn client_negotiation(config: &Arc<Config>, protocols: &[&str]) -> ClientNegotiation {
    let mut request = ClientRequest::new("ws://a/").unwrap();
    for protocol in protocols {
        request = request.subprotocol(*protocol);
    }
    ClientNegotiation::new_http2(&request, config.clone(), [5; 32]).unwrap()
}

#[test]
fn client_checks_the_http2_response() {
    let config = Arc::new(Config::default());
    let now = Instant::now();
    // Any 2xx opens the stream; 101 (impossible in HTTP/2) and errors do not.
    for status in [200, 204] {
        let response = Response::from_parts(status, [("x", "y")]);
        assert!(client_negotiation(&config, &[]).into_connection(now, &response).is_ok());
    }
    for status in [101, 400, 403, 426, 501] {
        let response = Response::from_parts(status, [("x", "y")]);
        let error = client_negotiation(&config, &[])
            .into_connection(now, &response)
            .unwrap_err();
        assert_eq!(error, HandshakeError::UnexpectedStatus(status));
    }
    // Subprotocols and extensions are checked as over HTTP/1.1.
    let response = Response::from_parts(200, [("sec-websocket-protocol", "other")]);
    let error = client_negotiation(&config, &["chat"])
        .into_connection(now, &response)
        .unwrap_err();
    assert_eq!(error, HandshakeError::UnexpectedSubprotocol("other".into()));
    let response = Response::from_parts(200, [("sec-websocket-protocol", "chat, chat")]);
    assert!(client_negotiation(&config, &["chat"])
        .into_connection(now, &response)
        .is_err());
    let response = Response::from_parts(200, [("sec-websocket-extensions", "permessage-deflate")]);
    let error = client_negotiation(&config, &[])
        .into_connection(now, &response)
        .unwrap_err();
    assert!(matches!(error, HandshakeError::UnexpectedExtension(_)));
    #[cfg(feature = "deflate")]
    {
        let deflate = deflate_config();
        let negotiation = client_negotiation(&deflate, &[]);
        assert!(negotiation.headers().get("sec-websocket-extensions").is_some());
        let response = Response::from_parts(200, [("sec-websocket-extensions", "permessage-deflate; bogus")]);
        assert!(negotiation.into_connection(now, &response).is_err());
        let response = Response::from_parts(200, [("sec-websocket-extensions", "permessage-deflate")]);
        let connection: wsflow::Connection = client_negotiation(&deflate, &[])
            .into_connection(now, &response)
            .unwrap();
        assert!(connection.is_compressed());
    }
}

/// Hostile heads never panic: random pseudo-headers and fields, each either refused or
/// answered with 200.
#[test]
fn random_heads_never_panic() {
    let mut rng = XorShift::new(8441);
    let pick = |rng: &mut XorShift, choices: &[&str]| choices[rng.below(choices.len())].to_owned();
    for _ in 0..3000 {
        let method = pick(&mut rng, &["CONNECT", "GET", "connect", "", "POST"]);
        let protocol = [None, Some("websocket"), Some(""), Some("WEBSOCKET"), Some("\u{0}ws")][rng.below(5)];
        let authority = [None, Some(""), Some("a:1"), Some("[::1]"), Some("\r\n")][rng.below(5)];
        let path = pick(&mut rng, &["/", "", "*", "/a?b", "/\u{7f}", "?"]);
        let mut headers = Vec::new();
        for _ in 0..rng.below(6) {
            let name = pick(
                &mut rng,
                &[
                    "sec-websocket-version",
                    "sec-websocket-protocol",
                    "sec-websocket-extensions",
                    "sec-websocket-key",
                    "connection",
                    "host",
                    "",
                ],
            );
            let len = rng.below(12);
            let value = String::from_utf8_lossy(&rng.bytes(len)).into_owned();
            let value = if rng.chance(50) { "13".to_owned() } else { value };
            headers.push((name, value));
        }
        let request = Request::from_parts(&method, &path, HttpVersion::Http2, headers)
            .with_protocol(protocol)
            .with_authority(authority);
        let websocket = request.is_websocket();
        match ServerNegotiation::new(deflate_config(), request) {
            Ok(negotiation) => {
                assert!(websocket);
                let accept = Accept::new().subprotocol_from(negotiation.request(), &["chat"]);
                if let Ok(negotiated) = negotiation.accept(Instant::now(), accept) {
                    assert_eq!(negotiated.response().status(), 200);
                }
            }
            Err(refused) => {
                assert!(matches!(refused.status(), 400 | 405 | 431), "{refused}");
                let _ = refused.response();
            }
        }
    }
}

#[cfg(feature = "http")]
#[test]
fn http_types_carry_the_authority_and_take_the_protocol() {
    let (parts, ()) = http::Request::connect("https://example.com:8443/chat?room=2")
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap()
        .into_parts();
    let request = Request::from(&parts);
    assert_eq!(request.host(), Some("example.com:8443"));
    assert_eq!(request.target(), "/chat?room=2");
    assert_eq!(request.protocol(), None);
    let request = request.with_protocol(Some("websocket"));
    let negotiated = ServerNegotiation::new(Arc::new(Config::default()), request)
        .unwrap()
        .accept(Instant::now(), Accept::new())
        .unwrap();
    assert_eq!(negotiated.to_http().status(), http::StatusCode::OK);
}
