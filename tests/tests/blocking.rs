//! wsflow-blocking over loopback TCP: every test runs in a thread with an upper time bound.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use wsflow::{CloseReason, HandshakeError, MessageKind, Timeout};
use wsflow_blocking::{
    accept, accept_with, connect, Accept, Accepted, ClientBuilder, CloseCode, Config, Decision, Error, Event, Message,
    Response, WebSocket,
};

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `test` in a thread and fails if it takes longer than [`LIMIT`].
fn within<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(test()));
    match result.recv_timeout(LIMIT) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test took longer than {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the test panicked"),
    }
}

/// Serves one connection with `handler` on an ephemeral port; returns its `ws://` URL.
fn serve<T: Send + 'static>(handler: impl FnOnce(TcpStream) -> T + Send + 'static) -> (String, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = thread::spawn(move || handler(listener.accept().unwrap().0));
    (url, server)
}

fn echo(stream: TcpStream) {
    let mut ws = accept(stream).unwrap();
    while let Some(message) = ws.recv_message().unwrap() {
        ws.send(message).unwrap();
    }
}

fn config(edit: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut config = Config::default();
    edit(&mut config);
    Arc::new(config)
}

/// Closes normally and waits for the end; returns how it ended.
fn close_and_finish<S: wsflow_blocking::Transport>(ws: &mut WebSocket<S>) -> wsflow::Closed {
    ws.close(CloseCode::NORMAL, "done").unwrap();
    while ws.recv().unwrap().is_some() {}
    ws.closed().cloned().unwrap()
}

/// Connects raw TCP and sends a valid upgrade request without reading anything.
fn raw_upgrade(url: &str) -> TcpStream {
    let mut stream = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/')).unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    stream
}

#[test]
fn text_with_non_ascii_round_trips() {
    within(|| {
        let (url, server) = serve(echo);
        let (mut ws, _) = connect(&url).unwrap();
        let text = "héllo wörld, 你好, 🦀";
        ws.send_text(text).unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(Message::text(text)));
        // Copied from borrowed bytes: small (into the send buffer) and big.
        let big = text.repeat(1000);
        for copied in [text, big.as_str()] {
            ws.send_text_copied(copied).unwrap();
            ws.send_binary_copied(copied.as_bytes()).unwrap();
            assert_eq!(ws.recv_message().unwrap(), Some(Message::text(copied)));
            let binary = Message::binary(Bytes::copy_from_slice(copied.as_bytes()));
            assert_eq!(ws.recv_message().unwrap(), Some(binary));
        }
        assert!(close_and_finish(&mut ws).is_clean());
        server.join().unwrap();
    });
}

#[test]
fn binary_16_mib_round_trips() {
    within(|| {
        let (url, server) = serve(echo);
        let (mut ws, _) = connect(&url).unwrap();
        let data: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
        ws.send_binary(data.clone()).unwrap();
        let Some(Message::Binary(echoed)) = ws.recv_message().unwrap() else {
            panic!("expected binary")
        };
        assert!(echoed == data, "the echo differs");
        close_and_finish(&mut ws);
        server.join().unwrap();
    });
}

#[test]
fn fragments_arrive_as_one_message() {
    within(|| {
        let (url, server) = serve(echo);
        let (mut ws, _) = connect(&url).unwrap();
        let euro = "€".as_bytes();
        ws.send_fragment(MessageKind::Text, Bytes::from_static(b"price: "), false)
            .unwrap();
        ws.send_fragment(MessageKind::Text, Bytes::copy_from_slice(&euro[..1]), false)
            .unwrap();
        ws.send_fragment(MessageKind::Text, Bytes::copy_from_slice(&euro[1..]), true)
            .unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(Message::text("price: €")));
        close_and_finish(&mut ws);
        server.join().unwrap();
    });
}

#[test]
fn ping_is_answered_with_pong() {
    within(|| {
        let (url, server) = serve(|stream| {
            let mut ws = accept(stream).unwrap();
            let mut events = Vec::new();
            while let Some(event) = ws.recv().unwrap() {
                events.push(event);
            }
            events
        });
        let (mut ws, _) = connect(&url).unwrap();
        ws.ping(Bytes::from_static(b"are you there")).unwrap();
        assert_eq!(
            ws.recv().unwrap(),
            Some(Event::Pong(Bytes::from_static(b"are you there")))
        );
        close_and_finish(&mut ws);
        let events = server.join().unwrap();
        assert_eq!(events[0], Event::Ping(Bytes::from_static(b"are you there")));
    });
}

#[test]
fn client_close_code_and_reason_reach_the_server() {
    within(|| {
        let (url, server) = serve(|stream| {
            let mut ws = accept(stream).unwrap();
            let mut received = None;
            while let Some(event) = ws.recv().unwrap() {
                if let Event::CloseReceived(frame) = event {
                    received = frame;
                }
            }
            (received, ws.closed().cloned().unwrap())
        });
        let (mut ws, _) = connect(&url).unwrap();
        ws.close(CloseCode::GOING_AWAY, "leaving").unwrap();
        assert!(ws.send_text("too late").is_err());
        while ws.recv().unwrap().is_some() {}
        let closed = ws.closed().unwrap();
        assert!(closed.is_clean());
        assert_eq!(closed.sent.as_ref().unwrap().code, CloseCode::GOING_AWAY);
        assert_eq!(closed.code(), CloseCode::GOING_AWAY, "the echo carries our code");
        let (received, server_closed) = server.join().unwrap();
        let received = received.unwrap();
        assert_eq!(
            (received.code, received.reason.as_str()),
            (CloseCode::GOING_AWAY, "leaving")
        );
        assert!(server_closed.is_clean());
        assert_eq!(server_closed.code(), CloseCode::GOING_AWAY);
    });
}

#[test]
fn server_close_code_and_reason_reach_the_client() {
    within(|| {
        let (url, server) = serve(|stream| {
            let mut ws = accept(stream).unwrap();
            ws.close(CloseCode::from(4001), "maintenance").unwrap();
            while ws.recv().unwrap().is_some() {}
            ws.closed().cloned().unwrap()
        });
        let (mut ws, _) = connect(&url).unwrap();
        let mut received = None;
        while let Some(event) = ws.recv().unwrap() {
            if let Event::CloseReceived(frame) = event {
                received = frame;
            }
        }
        let received = received.unwrap();
        assert_eq!(
            (received.code, received.reason.as_str()),
            (CloseCode::from(4001), "maintenance")
        );
        let closed = ws.closed().unwrap();
        assert!(closed.is_clean());
        assert_eq!(closed.code(), CloseCode::from(4001));
        let server_closed = server.join().unwrap();
        assert!(server_closed.is_clean());
        assert_eq!(server_closed.sent.unwrap().code, CloseCode::from(4001));
    });
}

#[test]
fn server_selects_a_subprotocol() {
    within(|| {
        let (url, server) = serve(|stream| {
            let Accepted::WebSocket(mut ws, request) = accept_with(stream, Arc::default(), |request| {
                assert_eq!(request.subprotocols().collect::<Vec<_>>(), ["v2.chat", "v1.chat"]);
                Decision::Accept(Accept::new().subprotocol("v1.chat"))
            })
            .unwrap() else {
                panic!("expected an upgrade")
            };
            assert_eq!(request.path(), "/chat");
            while ws.recv().unwrap().is_some() {}
        });
        let (mut ws, response) = ClientBuilder::new(&format!("{url}chat"))
            .subprotocol("v2.chat")
            .subprotocol("v1.chat")
            .connect()
            .unwrap();
        assert_eq!(response.subprotocol(), Some("v1.chat"));
        close_and_finish(&mut ws);
        server.join().unwrap();
    });
}

#[test]
fn rejected_handshake_reports_status_and_body() {
    within(|| {
        let (url, server) = serve(|stream| {
            let accepted = accept_with(stream, Arc::default(), |request| {
                assert_eq!(request.headers().get("authorization"), Some("Bearer wrong"));
                Decision::Respond(Response::new(403).with_body("no entry"))
            })
            .unwrap();
            assert!(matches!(accepted, Accepted::Responded(_)));
        });
        let result = ClientBuilder::new(&url)
            .header("Authorization", "Bearer wrong")
            .connect();
        let Err(Error::Rejected(response)) = result else {
            panic!("expected a rejection")
        };
        assert_eq!(response.status(), 403);
        assert_eq!(&response.body()[..], b"no entry");
        server.join().unwrap();
    });
}

#[test]
fn plain_http_request_is_answered_by_the_hook() {
    within(|| {
        let (url, server) = serve(|stream| {
            let accepted = accept_with(stream, Arc::default(), |request| {
                assert!(!request.is_websocket());
                Decision::Respond(Response::new(200).with_body("hello, browser"))
            })
            .unwrap();
            let Accepted::Responded(request) = accepted else {
                panic!("expected a response")
            };
            assert_eq!(request.path(), "/status");
        });
        let mut stream = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/')).unwrap();
        stream
            .write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("hello, browser"), "{response}");
        server.join().unwrap();
    });
}

#[test]
fn keepalive_detects_a_silent_peer() {
    within(|| {
        let (url, server) = serve(|stream| {
            let config = config(|c| {
                c.ping_interval(Some(Duration::from_millis(50)))
                    .pong_timeout(Duration::from_millis(200));
            });
            let Accepted::WebSocket(mut ws, _) =
                accept_with(stream, config, |_| Decision::Accept(Accept::new())).unwrap()
            else {
                panic!("expected an upgrade")
            };
            while ws.recv().unwrap().is_some() {}
            ws.closed().cloned().unwrap()
        });
        let silent = raw_upgrade(&url);
        let closed = server.join().unwrap();
        assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Keepalive));
        assert_eq!(closed.sent.unwrap().code, CloseCode::INTERNAL_ERROR);
        drop(silent);
    });
}

#[test]
fn close_times_out_when_the_peer_never_answers() {
    within(|| {
        let (url, server) = serve(|stream| {
            let config = config(|c| {
                c.close_timeout(Duration::from_millis(100));
            });
            let Accepted::WebSocket(mut ws, _) =
                accept_with(stream, config, |_| Decision::Accept(Accept::new())).unwrap()
            else {
                panic!("expected an upgrade")
            };
            ws.close(CloseCode::NORMAL, "bye").unwrap();
            while ws.recv().unwrap().is_some() {}
            ws.closed().cloned().unwrap()
        });
        let silent = raw_upgrade(&url);
        let closed = server.join().unwrap();
        assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Close));
        drop(silent);
    });
}

#[test]
fn handshake_times_out_on_half_a_request() {
    within(|| {
        let (url, server) = serve(|stream| {
            let config = config(|c| {
                c.handshake_timeout(Duration::from_millis(100));
            });
            accept_with(stream, config, |_| Decision::Accept(Accept::new())).map(|_| ())
        });
        let mut stream = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/')).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: local").unwrap();
        let result = server.join().unwrap();
        assert!(
            matches!(result, Err(Error::Handshake(HandshakeError::TimedOut))),
            "{result:?}"
        );
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    });
}

#[test]
fn non_blocking_send_stops_at_the_high_water_mark() {
    within(|| {
        const MARK: usize = 256 << 10;
        const MESSAGE: usize = 16 << 10;
        let (release, released) = mpsc::channel::<()>();
        let (url, server) = serve(move |stream| {
            let mut ws = accept(stream).unwrap();
            released.recv().unwrap();
            let mut received = 0;
            while let Some(message) = ws.recv_message().unwrap() {
                assert_eq!(message.len(), MESSAGE);
                received += 1;
            }
            received
        });
        let (mut ws, _) = connect(&url).unwrap();
        ws.get_ref().tcp().set_nonblocking(true).unwrap();
        ws.set_high_water_mark(MARK);
        let payload = Bytes::from(vec![7; MESSAGE]);
        let mut sent = 0;
        loop {
            match ws.send_binary(payload.clone()) {
                Ok(()) => sent += 1,
                Err(Error::Transport(error)) if error.kind() == ErrorKind::WouldBlock => {
                    sent += 1; // queued all the same
                    break;
                }
                Err(error) => panic!("{error}"),
            }
            assert!(ws.buffered_amount() <= MARK + MESSAGE + 14);
            assert!(sent < 100_000, "the socket never filled up");
        }
        assert!(ws.buffered_amount() > MARK);
        assert!(ws.buffered_amount() <= MARK + MESSAGE + 14);
        release.send(()).unwrap();
        ws.get_ref().tcp().set_nonblocking(false).unwrap();
        ws.flush().unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        close_and_finish(&mut ws);
        assert_eq!(server.join().unwrap(), sent);
    });
}

#[test]
fn split_halves_carry_10_000_messages_each_way_and_answer_pings() {
    const COUNT: usize = 10_000;
    const PINGS: usize = 10;
    within(|| {
        let (url, server) = serve(|stream| {
            let (mut sender, mut receiver) = accept(stream).unwrap().split().unwrap();
            let sending = thread::spawn(move || {
                for i in 0..COUNT {
                    sender.send_text(format!("server {i}")).unwrap();
                    if i % (COUNT / PINGS) == 0 {
                        sender.ping(Bytes::from(i.to_string())).unwrap();
                    }
                }
            });
            let (mut messages, mut pongs) = (0, Vec::new());
            while let Some(event) = receiver.recv().unwrap() {
                match event {
                    Event::Message(message) => {
                        assert_eq!(message, Message::text(format!("client {messages}")));
                        messages += 1;
                    }
                    Event::Pong(payload) => pongs.push(payload),
                    _ => {}
                }
            }
            sending.join().unwrap();
            (messages, pongs, receiver.closed().unwrap())
        });
        let (ws, _) = connect(&url).unwrap();
        let (mut sender, mut receiver) = ws.split().unwrap();
        let receiving = thread::spawn(move || {
            let mut count = 0;
            while let Some(message) = receiver.recv_message().unwrap() {
                assert_eq!(message, Message::text(format!("server {count}")));
                count += 1;
                if count == COUNT {
                    break;
                }
            }
            receiver
        });
        for i in 0..COUNT {
            sender.send_text(format!("client {i}")).unwrap();
        }
        let mut receiver = receiving.join().unwrap();
        sender.close(CloseCode::NORMAL, "all sent").unwrap();
        while receiver.recv().unwrap().is_some() {}
        assert!(receiver.closed().unwrap().is_clean());
        let (messages, pongs, closed) = server.join().unwrap();
        assert_eq!(messages, COUNT);
        let expected: Vec<Bytes> = (0..COUNT)
            .step_by(COUNT / PINGS)
            .map(|i| Bytes::from(i.to_string()))
            .collect();
        assert_eq!(pongs, expected, "every ping answered, in order");
        assert!(closed.is_clean());
    });
}

#[test]
fn wss_round_trip_with_a_self_signed_certificate() {
    within(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = certified.cert.der().clone();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key.into())
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server_config = Arc::new(server_config);
        let server = thread::spawn(move || {
            let mut endings = Vec::new();
            for _ in 0..2 {
                let tcp = listener.accept().unwrap().0;
                let mut ws = accept(wsflow_blocking::tls_accept(tcp, server_config.clone()).unwrap()).unwrap();
                while let Some(message) = ws.recv_message().unwrap() {
                    ws.send(message).unwrap();
                }
                endings.push(ws.closed().cloned().unwrap());
            }
            endings
        });
        let client = ClientBuilder::new(&format!("wss://localhost:{port}/secure")).tls_config(Arc::new(client_config));
        let (mut ws, _) = client.clone().connect().unwrap();
        ws.send_text("over TLS ✓").unwrap();
        assert_eq!(ws.recv_message().unwrap(), Some(Message::text("over TLS ✓")));
        assert!(close_and_finish(&mut ws).is_clean());

        let (ws, _) = client.connect().unwrap();
        let Err(Error::Transport(error)) = ws.split().map(|_| ()) else {
            panic!("TLS streams cannot be split")
        };
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        let endings = server.join().unwrap();
        assert!(endings[0].is_clean());
        // The failed split dropped the connection without a close frame.
        assert_eq!(endings[1].reason, CloseReason::Eof);
    });
}
