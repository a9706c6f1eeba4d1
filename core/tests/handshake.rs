//! Opening handshake tests (RFC 6455 §4), both roles.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use wsflow::frame::OpCode;
use wsflow::{
    accept_key, Accept, ClientEvent, ClientHandshake, ClientRequest, Config, Event, HandshakeError, Message, Response,
    SendError, ServerEvent, ServerHandshake, Transmit,
};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Collected output of a server handshake: response text, shutdown, events.
fn serve(config: Config, input: &[u8]) -> (ServerHandshake, String, bool, Vec<ServerEvent>) {
    let mut server = ServerHandshake::new(Arc::new(config), Instant::now());
    server.handle_data(Instant::now(), input);
    let (text, shutdown) = drain_handshake(&mut || server.poll_transmit());
    let events = std::iter::from_fn(|| server.poll_event()).collect();
    (server, text, shutdown, events)
}

fn drain_handshake(poll: &mut dyn FnMut() -> Option<Transmit>) -> (String, bool) {
    let mut text = Vec::new();
    let mut shutdown = false;
    while let Some(transmit) = poll() {
        match transmit {
            Transmit::Data(bytes) => text.extend_from_slice(&bytes),
            Transmit::Shutdown => shutdown = true,
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), shutdown)
}

fn assert_rejected(request: &str, status: u16) -> String {
    let (_, response, shutdown, events) = serve(Config::default(), request.as_bytes());
    assert!(
        response.starts_with(&format!("HTTP/1.1 {status} ")),
        "{request:?} -> {response}"
    );
    assert!(shutdown, "closed after the error response");
    assert!(matches!(events.as_slice(), [ServerEvent::Failed(e)] if e.status() == Some(status)));
    response
}

#[test]
fn s4_2_2_accepts_the_rfc_example_with_the_rfc_accept_key() {
    let (mut server, response, _, events) = serve(Config::default(), upgrade_request("").as_bytes());
    assert!(response.is_empty(), "nothing is sent before the application decides");
    let [ServerEvent::Request(request)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert!(request.is_websocket());
    assert_eq!(
        (request.path(), request.query(), request.host()),
        ("/chat", Some("x=1"), Some("server.example.com"))
    );
    let mut connection = server
        .accept(Instant::now(), Accept::new().header("X-Extra", "1"))
        .unwrap();
    let out = String::from_utf8(drain_transmits(&mut connection).bytes).unwrap();
    assert!(out.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(out.contains("X-Extra: 1\r\n"));
    assert!(out.ends_with("\r\n\r\n"));
    assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn s4_2_1_request_validation_table() {
    let base = upgrade_request("");
    // (what is wrong, request, status)
    let cases: Vec<(&str, String, u16)> = vec![
        ("method is not GET", base.replacen("GET", "POST", 1), 405),
        ("HTTP/1.0", base.replacen("HTTP/1.1", "HTTP/1.0", 1), 400),
        ("no Host", base.replace("Host: server.example.com\r\n", ""), 400),
        (
            "no Connection: Upgrade",
            base.replace("Connection: Upgrade", "Connection: keep-alive"),
            400,
        ),
        (
            "Upgrade is not websocket",
            base.replace("Upgrade: websocket", "Upgrade: h2c"),
            400,
        ),
        ("key is not 16 bytes", base.replace(KEY, "c2hvcnQ="), 400),
        ("key is not base64", base.replace(KEY, "!!!!"), 400),
        (
            "two keys",
            upgrade_request(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
            400,
        ),
        ("version 8", base.replace("Version: 13", "Version: 8"), 426),
        ("malformed head", "GET / HTTP/1.1\r\nHost x\r\n\r\n".to_owned(), 400),
    ];
    for (what, request, status) in cases {
        let response = assert_rejected(&request, status);
        if status == 426 {
            assert!(response.contains("Sec-WebSocket-Version: 13\r\n"), "{what}");
        }
        if status == 405 {
            assert!(response.contains("Allow: GET\r\n"), "{what}");
        }
    }
}

#[test]
fn s4_2_1_tokens_are_case_insensitive_and_in_comma_lists() {
    let request = upgrade_request("")
        .replace("Upgrade: websocket", "upgrade: WebSocket")
        .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE");
    let (_, _, _, events) = serve(Config::default(), request.as_bytes());
    assert!(matches!(&events[0], ServerEvent::Request(r) if r.is_websocket()));
}

#[test]
fn limits_on_head_size_and_header_count_give_431() {
    let mut config = Config::default();
    config.max_handshake_size(256);
    let huge = upgrade_request(&format!("X-Pad: {}\r\n", "a".repeat(300)));
    let (_, response, shutdown, _) = serve(config.clone(), huge.as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 ") && shutdown);
    // Without an end of head in sight, the limit still holds (no unbounded buffering).
    let (_, response, _, _) = serve(config, "GET / HTTP/1.1\r\nX: ".repeat(50).as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 "));
    let mut config = Config::default();
    config.max_headers(4);
    let (_, response, _, _) = serve(config, upgrade_request("").as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 "));
}

#[test]
fn plain_http_request_is_reported_and_can_be_answered() {
    let (mut server, _, _, events) = serve(
        Config::default(),
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n",
    );
    let [ServerEvent::Request(request)] = events.as_slice() else {
        panic!()
    };
    assert!(!request.is_websocket());
    assert_eq!(request.path(), "/index.html");
    assert!(matches!(
        server.accept(Instant::now(), Accept::new()),
        Err(SendError::InvalidState(_))
    ));
    server
        .respond(
            &Response::new(200)
                .with_header("Content-Type", "text/html")
                .with_body("<html></html>"),
        )
        .unwrap();
    let (text, shutdown) = drain_handshake(&mut || server.poll_transmit());
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("Content-Length: 13\r\n"));
    assert!(text.ends_with("\r\n\r\n<html></html>") && shutdown);
}

#[test]
fn subprotocol_must_be_offered() {
    let request = upgrade_request("Sec-WebSocket-Protocol: chat, superchat\r\n");
    let (mut server, _, _, events) = serve(Config::default(), request.as_bytes());
    let [ServerEvent::Request(req)] = events.as_slice() else {
        panic!()
    };
    assert_eq!(req.subprotocols().collect::<Vec<_>>(), ["chat", "superchat"]);
    assert_eq!(
        server
            .accept(Instant::now(), Accept::new().subprotocol("other"))
            .unwrap_err(),
        SendError::SubprotocolNotOffered("other".into())
    );
    assert_eq!(
        server
            .accept(Instant::now(), Accept::new().header("Bad\r\nName", "v"))
            .unwrap_err(),
        SendError::InvalidHeader("Bad\r\nName".into())
    );
    // The client's order wins among those the server supports.
    let chosen = Accept::new().subprotocol_from(req, &["superchat", "chat", "other"]);
    assert_eq!(chosen, Accept::new().subprotocol("chat"));
    assert_eq!(Accept::new().subprotocol_from(req, &["other"]), Accept::new());
    let mut connection = server
        .accept(Instant::now(), Accept::new().subprotocol("superchat"))
        .unwrap();
    let out = String::from_utf8(drain_transmits(&mut connection).bytes).unwrap();
    assert!(out.contains("Sec-WebSocket-Protocol: superchat\r\n"));
}

#[test]
fn pipelined_first_frame_is_delivered_after_accept() {
    let mut input = upgrade_request("").into_bytes();
    input.extend(client_frame(OpCode::Text, true, b"early"));
    let (mut server, _, _, _) = serve(Config::default(), &input);
    let mut connection = server.accept(Instant::now(), Accept::new()).unwrap();
    assert_eq!(
        drain_events(&mut connection),
        vec![Event::Message(Message::text("early"))]
    );
}

#[test]
fn request_fed_byte_by_byte_gives_the_same_request() {
    let whole = upgrade_request("Origin: http://example.com\r\n");
    let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
    for byte in whole.as_bytes() {
        assert!(server.poll_event().is_none());
        server.handle_data(Instant::now(), std::slice::from_ref(byte));
    }
    assert!(matches!(server.poll_event(), Some(ServerEvent::Request(r)) if r.origin() == Some("http://example.com")));
}

#[test]
fn handshake_timeout_answers_408_and_eof_fails() {
    let now = Instant::now();
    let mut server = ServerHandshake::new(Arc::new(Config::default()), now);
    server.handle_data(now, b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(10)));
    server.handle_timeout(now + Duration::from_secs(9));
    assert!(server.poll_event().is_none(), "early timeout calls are no-ops");
    server.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(server.poll_event(), Some(ServerEvent::Failed(HandshakeError::TimedOut)));
    let (text, shutdown) = drain_handshake(&mut || server.poll_transmit());
    assert!(text.starts_with("HTTP/1.1 408 ") && shutdown);
    assert_eq!(server.poll_timeout(), None);

    let mut server = ServerHandshake::new(Arc::new(Config::default()), now);
    server.handle_data(now, b"GET / HT");
    server.handle_eof(now);
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Failed(HandshakeError::UnexpectedEof))
    );
}

// ---- client ----

fn client_for(request: ClientRequest) -> (ClientHandshake, String) {
    let mut client = ClientHandshake::new(&request, Arc::new(Config::default()), Instant::now(), [3; 32]).unwrap();
    let (text, _) = drain_handshake(&mut || client.poll_transmit());
    (client, text)
}

fn key_of(request: &str) -> String {
    request
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_owned()
}

fn switching(key: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(key.as_bytes())
    )
}

#[test]
fn s4_1_client_request_has_every_required_field() {
    let request = ClientRequest::new("ws://example.com:8080/path?q=1")
        .unwrap()
        .origin("http://example.com")
        .subprotocol("chat")
        .subprotocol("superchat")
        .header("Authorization", "Bearer t");
    let (_, text) = client_for(request);
    assert!(text.starts_with("GET /path?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n"));
    for line in [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Origin: http://example.com",
    ] {
        assert!(text.contains(&format!("{line}\r\n")), "{line}");
    }
    assert!(text.contains("Sec-WebSocket-Protocol: chat, superchat\r\n"));
    assert!(text.contains("Authorization: Bearer t\r\n"));
    let key = key_of(&text);
    assert_eq!(base64_len(&key), 16);
    // The key comes from the seedable generator: same seed, same key; other seed, other key.
    let (_, again) = client_for(ClientRequest::new("ws://example.com/").unwrap());
    assert_eq!(key_of(&again), key);
    let mut other = ClientHandshake::new(
        &ClientRequest::new("ws://e/").unwrap(),
        Arc::new(Config::default()),
        Instant::now(),
        [4; 32],
    )
    .unwrap();
    let (other_text, _) = drain_handshake(&mut || other.poll_transmit());
    assert_ne!(key_of(&other_text), key);
}

fn base64_len(key: &str) -> usize {
    // 24 base64 chars with "==" padding encode 16 bytes.
    assert_eq!(key.len(), 24);
    assert!(key.ends_with("=="));
    16
}

#[test]
fn s4_1_client_accepts_a_valid_response_and_keeps_early_frames() {
    let (mut client, text) = client_for(ClientRequest::new("ws://h/").unwrap().subprotocol("chat"));
    let mut response = switching(&key_of(&text), "Sec-WebSocket-Protocol: chat\r\n")
        .replace("Connection: Upgrade", "Connection: upgrade")
        .into_bytes();
    response.extend(frame(OpCode::Text, true, b"welcome", None));
    client.handle_data(Instant::now(), &response);
    let Some(ClientEvent::Accepted(response)) = client.poll_event() else {
        panic!()
    };
    assert_eq!(response.subprotocol(), Some("chat"));
    let mut connection = client.into_connection(Instant::now()).unwrap();
    assert_eq!(
        drain_events(&mut connection),
        vec![Event::Message(Message::text("welcome"))]
    );
}

#[test]
fn s4_1_client_fails_on_bad_responses() {
    /// Builds a response from the client's key.
    type MakeResponse = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(&str, MakeResponse, HandshakeError)> = vec![
        (
            "wrong accept",
            Box::new(|_| switching("AAAAAAAAAAAAAAAAAAAAAA==", "")),
            HandshakeError::BadAccept,
        ),
        (
            "no upgrade",
            Box::new(|k| switching(k, "").replace("Upgrade: websocket\r\n", "")),
            HandshakeError::BadHeader("Upgrade: websocket"),
        ),
        (
            "no connection",
            Box::new(|k| switching(k, "").replace("Connection: Upgrade\r\n", "")),
            HandshakeError::BadHeader("Connection: Upgrade"),
        ),
        (
            "subprotocol not offered",
            Box::new(|k| switching(k, "Sec-WebSocket-Protocol: other\r\n")),
            HandshakeError::UnexpectedSubprotocol("other".into()),
        ),
        (
            "extension not offered",
            Box::new(|k| switching(k, "Sec-WebSocket-Extensions: permessage-deflate\r\n")),
            HandshakeError::UnexpectedExtension("permessage-deflate".into()),
        ),
    ];
    for (what, response, error) in cases {
        let (mut client, text) = client_for(ClientRequest::new("ws://h/").unwrap().subprotocol("chat"));
        client.handle_data(Instant::now(), response(&key_of(&text)).as_bytes());
        assert_eq!(client.poll_event(), Some(ClientEvent::Failed(error)), "{what}");
        let (_, shutdown) = drain_handshake(&mut || client.poll_transmit());
        assert!(shutdown, "{what}");
        assert!(client.into_connection(Instant::now()).is_err());
    }
}

#[test]
fn s4_1_non_101_response_is_handed_over_with_status_headers_and_body() {
    let (mut client, _) = client_for(ClientRequest::new("ws://h/").unwrap());
    let body = "you shall not pass";
    let response = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nX-Why: policy\r\n\r\n{body}",
        body.len()
    );
    let (head, tail) = response.split_at(response.len() - 5);
    client.handle_data(Instant::now(), head.as_bytes());
    assert_eq!(client.poll_event(), None, "waits for the whole body");
    client.handle_data(Instant::now(), tail.as_bytes());
    let Some(ClientEvent::Rejected(response)) = client.poll_event() else {
        panic!()
    };
    assert_eq!((response.status(), response.reason()), (403, "Forbidden"));
    assert_eq!(response.headers().get("x-why"), Some("policy"));
    assert_eq!(response.body().as_ref(), body.as_bytes());

    // Without Content-Length the body runs to EOF.
    let (mut client, _) = client_for(ClientRequest::new("ws://h/").unwrap());
    client.handle_data(Instant::now(), b"HTTP/1.1 401 Unauthorized\r\n\r\nlog in");
    client.handle_eof(Instant::now());
    let Some(ClientEvent::Rejected(response)) = client.poll_event() else {
        panic!()
    };
    assert_eq!((response.status(), response.body().as_ref()), (401, &b"log in"[..]));
}

#[test]
fn client_handshake_times_out() {
    let now = Instant::now();
    let (mut client, _) = client_for(ClientRequest::new("ws://h/").unwrap());
    let deadline = client.poll_timeout().unwrap();
    assert!(deadline > now);
    client.handle_timeout(deadline);
    assert_eq!(client.poll_event(), Some(ClientEvent::Failed(HandshakeError::TimedOut)));
}

#[test]
fn client_rejects_invalid_urls_and_headers() {
    assert!(ClientRequest::new("http://h/").is_err());
    let bad = ClientRequest::new("ws://h/").unwrap().header("X", "a\r\nInjected: 1");
    assert!(matches!(
        ClientHandshake::new(&bad, Arc::new(Config::default()), Instant::now(), [0; 32]),
        Err(SendError::InvalidHeader(_))
    ));
}
