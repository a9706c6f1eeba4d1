//! Integration tests for `wsflow-smol` over loopback TCP.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use wsflow::{CloseFrame, CloseReason, MessageKind, Timeout};
use wsflow_smol::{
    accept, accept_with, connect, Accept, Accepted, ClientBuilder, CloseCode, Config, Decision, Error, Event, Message,
    Request, Response, WebSocket,
};

/// Runs a test body, failing it if it takes longer than an upper bound.
fn run(test: impl Future<Output = ()>) {
    smol::block_on(smol::future::or(test, async {
        Timer::after(Duration::from_secs(60)).await;
        panic!("test timed out");
    }));
}

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    (listener, url)
}

/// Accepts one connection and runs `serve` on it in a task.
fn serve<T, F>(listener: TcpListener, serve: impl FnOnce(TcpStream) -> F + Send + 'static) -> smol::Task<T>
where
    F: Future<Output = T> + Send,
    T: Send + 'static,
{
    smol::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(stream).await
    })
}

/// Accepts and echoes every message until the connection closes; returns how it closed.
async fn echo(stream: TcpStream) -> wsflow::Closed {
    echo_until_closed(&mut accept(stream).await.unwrap()).await
}

async fn echo_until_closed<S>(socket: &mut WebSocket<S>) -> wsflow::Closed
where
    S: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    while let Some(message) = socket.recv_message().await.unwrap() {
        socket.send(message).await.unwrap();
    }
    socket.closed().cloned().unwrap()
}

/// Closes with 1000 and reads until the end; returns how it closed.
async fn close_and_drain<S>(socket: &mut WebSocket<S>) -> wsflow::Closed
where
    S: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    socket.close(CloseCode::NORMAL, "done").await.unwrap();
    while socket.recv().await.unwrap().is_some() {}
    socket.closed().cloned().unwrap()
}

fn config(edit: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut config = Config::default();
    edit(&mut config);
    Arc::new(config)
}

const RAW_UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A raw TCP peer that completes the upgrade and reads the 101 head, then does nothing.
async fn raw_upgraded_peer(url: &str) -> TcpStream {
    let mut stream = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/'))
        .await
        .unwrap();
    stream.write_all(RAW_UPGRADE).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

#[test]
fn text_with_non_ascii_round_trips() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, echo);
        let (mut client, _) = connect(&url).await.unwrap();
        let text = "héllo wörld, 你好, 🦀 — ünïcödé";
        client.send_text(text).await.unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::text(text)));
        // Copied from borrowed bytes: small (into the send buffer) and big.
        let big = text.repeat(1000);
        for copied in [text, big.as_str()] {
            client.send_text_copied(copied).await.unwrap();
            client.send_binary_copied(copied.as_bytes()).await.unwrap();
            assert_eq!(client.recv_message().await.unwrap(), Some(Message::text(copied)));
            let binary = Message::binary(Bytes::copy_from_slice(copied.as_bytes()));
            assert_eq!(client.recv_message().await.unwrap(), Some(binary));
        }
        // The same through the Sink and Stream implementations.
        client.send(Message::text("ß")).await.unwrap();
        SinkExt::send(&mut client, Message::text("∑")).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("ß"));
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("∑"));
        let closed = close_and_drain(&mut client).await;
        assert!(closed.is_clean());
        assert!(client.recv().await.unwrap().is_none());
        assert!(server.await.is_clean());
    });
}

#[test]
fn binary_16_mib_round_trips() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, echo);
        let (mut client, _) = connect(&url).await.unwrap();
        let payload: Bytes = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect::<Vec<u8>>().into();
        client.send_binary(payload.clone()).await.unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::Binary(payload)));
        close_and_drain(&mut client).await;
        server.await;
    });
}

#[test]
fn fragments_arrive_as_one_message() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, echo);
        let (mut client, _) = connect(&url).await.unwrap();
        client
            .send_fragment(MessageKind::Text, Bytes::from("frag"), false)
            .await
            .unwrap();
        client.ping(Bytes::from_static(b"between")).await.unwrap();
        client
            .send_fragment(MessageKind::Text, Bytes::from("men"), false)
            .await
            .unwrap();
        client
            .send_fragment(MessageKind::Text, Bytes::from("ted"), true)
            .await
            .unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::text("fragmented")));
        close_and_drain(&mut client).await;
        server.await;
    });
}

#[test]
fn ping_is_answered_with_pong() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, |stream| async move {
            let mut socket = accept(stream).await.unwrap();
            let mut events = Vec::new();
            while let Some(event) = socket.recv().await.unwrap() {
                events.push(event);
            }
            events
        });
        let (mut client, _) = connect(&url).await.unwrap();
        client.ping(Bytes::from_static(b"are you there")).await.unwrap();
        assert_eq!(
            client.recv().await.unwrap(),
            Some(Event::Pong(Bytes::from_static(b"are you there")))
        );
        close_and_drain(&mut client).await;
        let events = server.await;
        assert_eq!(events[0], Event::Ping(Bytes::from_static(b"are you there")));
    });
}

#[test]
fn client_close_code_and_reason_reach_the_server() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, |stream| async move {
            let mut socket = accept(stream).await.unwrap();
            let Some(Event::CloseReceived(frame)) = socket.recv().await.unwrap() else {
                panic!("expected a close")
            };
            assert_eq!(frame, Some(CloseFrame::new(CloseCode::new(4000), "client leaves")));
            let Some(Event::Closed(closed)) = socket.recv().await.unwrap() else {
                panic!("expected the end")
            };
            assert!(socket.recv().await.unwrap().is_none());
            closed
        });
        let (mut client, _) = connect(&url).await.unwrap();
        client.close(CloseCode::new(4000), "client leaves").await.unwrap();
        let mut last = None;
        while let Some(event) = client.recv().await.unwrap() {
            last = Some(event);
        }
        let Some(Event::Closed(closed)) = last else {
            panic!("expected the end")
        };
        assert!(closed.is_clean());
        assert_eq!(
            closed.sent,
            Some(CloseFrame::new(CloseCode::new(4000), "client leaves"))
        );
        assert_eq!(closed.code(), CloseCode::new(4000));
        let server_closed = server.await;
        assert!(server_closed.is_clean());
        assert_eq!(server_closed.code(), CloseCode::new(4000));
    });
}

#[test]
fn server_close_code_and_reason_reach_the_client() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, |stream| async move {
            let mut socket = accept(stream).await.unwrap();
            socket.close(CloseCode::new(4001), "server leaves").await.unwrap();
            while socket.recv().await.unwrap().is_some() {}
            socket.closed().cloned().unwrap()
        });
        let (mut client, _) = connect(&url).await.unwrap();
        let Some(Event::CloseReceived(frame)) = client.recv().await.unwrap() else {
            panic!("expected a close")
        };
        assert_eq!(frame, Some(CloseFrame::new(CloseCode::new(4001), "server leaves")));
        assert!(client.recv_message().await.unwrap().is_none());
        let closed = client.closed().unwrap();
        assert!(closed.is_clean());
        assert_eq!(closed.code(), CloseCode::new(4001));
        let server_closed = server.await;
        assert!(server_closed.is_clean());
        assert_eq!(
            server_closed.sent,
            Some(CloseFrame::new(CloseCode::new(4001), "server leaves"))
        );
    });
}

#[test]
fn server_selects_an_offered_subprotocol() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, |stream| async move {
            let hook = |request: &Request| {
                let chat = request.subprotocols().find(|name| *name == "chat.v2");
                Decision::Accept(chat.map_or_else(Accept::new, |name| Accept::new().subprotocol(name)))
            };
            let Accepted::WebSocket(mut socket, request) = accept_with(stream, Arc::default(), hook).await.unwrap()
            else {
                panic!("expected an upgrade")
            };
            assert_eq!(request.subprotocols().collect::<Vec<_>>(), ["chat.v1", "chat.v2"]);
            echo_until_closed(&mut socket).await;
        });
        let (mut client, response) = ClientBuilder::new(&url)
            .subprotocol("chat.v1")
            .subprotocol("chat.v2")
            .connect()
            .await
            .unwrap();
        assert_eq!(response.subprotocol(), Some("chat.v2"));
        close_and_drain(&mut client).await;
        server.await;
    });
}

#[test]
fn rejected_upgrade_reports_status_and_body() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, |stream| async move {
            let hook = |_: &Request| Decision::Respond(Response::new(403).with_body("no entry"));
            accept_with(stream, Arc::default(), hook).await.unwrap()
        });
        let error = ClientBuilder::new(&url)
            .header("Authorization", "wrong")
            .connect()
            .await
            .unwrap_err();
        let Error::Rejected(response) = error else {
            panic!("expected a rejection, got {error}")
        };
        assert_eq!(response.status(), 403);
        assert_eq!(response.body().as_ref(), b"no entry");
        let Accepted::Responded(request) = server.await else {
            panic!("expected a response")
        };
        assert_eq!(request.headers().get("authorization"), Some("wrong"));
    });
}

#[test]
fn plain_http_request_is_answered_by_the_hook() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, |stream| async move {
            let hook = |request: &Request| {
                assert!(!request.is_websocket());
                Decision::Respond(Response::new(200).with_body(format!("you asked for {}", request.path())))
            };
            accept_with(stream, Arc::default(), hook).await.unwrap()
        });
        let mut stream = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/'))
            .await
            .unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("you asked for /health"), "{response}");
        assert!(matches!(server.await, Accepted::Responded(_)));
    });
}

#[test]
fn keepalive_detects_a_silent_peer() {
    run(async {
        let (listener, url) = listen().await;
        let keepalive = config(|config| {
            config
                .ping_interval(Some(Duration::from_millis(50)))
                .pong_timeout(Duration::from_millis(200));
        });
        let server = serve(listener, |stream| async move {
            let Accepted::WebSocket(mut socket, _) =
                accept_with(stream, keepalive, |_| Decision::Accept(Accept::new()))
                    .await
                    .unwrap()
            else {
                panic!("expected an upgrade")
            };
            while socket.recv().await.unwrap().is_some() {}
            socket.closed().cloned().unwrap()
        });
        let _silent_peer = raw_upgraded_peer(&url).await;
        let closed = server.await;
        assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Keepalive));
        assert_eq!(closed.sent.map(|frame| frame.code), Some(CloseCode::INTERNAL_ERROR));
    });
}

#[test]
fn close_times_out_when_the_peer_never_answers() {
    run(async {
        let (listener, url) = listen().await;
        let short_close = config(|config| {
            config.close_timeout(Duration::from_millis(200));
        });
        let server = serve(listener, |stream| async move {
            let Accepted::WebSocket(mut socket, _) =
                accept_with(stream, short_close, |_| Decision::Accept(Accept::new()))
                    .await
                    .unwrap()
            else {
                panic!("expected an upgrade")
            };
            socket.close(CloseCode::NORMAL, "bye").await.unwrap();
            while socket.recv().await.unwrap().is_some() {}
            socket.closed().cloned().unwrap()
        });
        let _silent_peer = raw_upgraded_peer(&url).await;
        let closed = server.await;
        assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Close));
        assert_eq!(closed.code(), CloseCode::ABNORMAL);
    });
}

#[test]
fn handshake_times_out_on_half_a_request() {
    run(async {
        let (listener, url) = listen().await;
        let short_handshake = config(|config| {
            config.handshake_timeout(Duration::from_millis(200));
        });
        let server = serve(listener, |stream| async move {
            accept_with(stream, short_handshake, |_| Decision::Accept(Accept::new()))
                .await
                .map(|_| ())
        });
        let mut stream = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/'))
            .await
            .unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: loc").await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        let error = server.await.unwrap_err();
        assert!(
            matches!(error, Error::Handshake(wsflow::HandshakeError::TimedOut)),
            "{error}"
        );
    });
}

#[test]
fn send_waits_while_the_peer_does_not_read() {
    run(async {
        let (listener, url) = listen().await;
        let (stalled_tx, stalled_rx) = smol::channel::bounded::<()>(1);
        let server = serve(listener, |stream| async move {
            let mut socket = accept(stream).await.unwrap();
            let mark = 256 << 10;
            socket.set_high_water_mark(mark);
            let message = Message::binary(vec![7; 16 << 10]);
            let frame_size = message.len() + 14;
            let mut sent = 0;
            // Send until a send has to wait: the queue never grows past the mark plus one message.
            while smol::future::poll_once(socket.send(message.clone())).await.is_some() {
                sent += 1;
                assert!(socket.buffered_amount() <= mark + frame_size);
                assert!(sent < 100_000, "send never waited");
            }
            assert!(socket.buffered_amount() > mark);
            assert!(socket.buffered_amount() <= mark + frame_size);
            stalled_tx.send(()).await.unwrap();
            // Once the peer reads, sending goes on.
            socket.send(message).await.unwrap();
            socket.flush().await.unwrap();
            sent + 2
        });
        let mut peer = raw_upgraded_peer(&url).await;
        stalled_rx.recv().await.unwrap();
        let reader = smol::spawn(async move {
            let mut sink = vec![0; 64 << 10];
            let mut total = 0usize;
            loop {
                match peer.read(&mut sink).await.unwrap() {
                    0 => return total,
                    read => total += read,
                }
            }
        });
        let messages = server.await;
        assert!(messages > 2);
        drop(reader);
    });
}

#[test]
fn split_halves_carry_10000_messages_each_way_with_pings_answered() {
    const COUNT: usize = 10_000;
    // Ten pings in all: even if every one lands in a single read, the core keeps a pong
    // for each (it keeps 16; past that only the latest pings must be answered, §5.5.2).
    const PING_EVERY: usize = 1_000;
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, |stream| async move {
            let (mut sender, mut receiver) = accept(stream).await.unwrap().split();
            let writer = smol::spawn(async move {
                for i in 0..COUNT {
                    sender.send_text(format!("server {i}")).await.unwrap();
                    if i % PING_EVERY == 0 {
                        sender.ping(Bytes::from(i.to_string())).await.unwrap();
                    }
                }
                sender
            });
            let (mut messages, mut pongs) = (0, Vec::new());
            while let Some(event) = receiver.recv().await.unwrap() {
                match event {
                    Event::Message(message) => {
                        assert_eq!(message, Message::text(format!("client {messages}")));
                        messages += 1;
                    }
                    Event::Pong(payload) => pongs.push(payload),
                    _ => {}
                }
            }
            writer.await;
            (messages, pongs)
        });
        let (client, _) = connect(&url).await.unwrap();
        let (mut sender, mut receiver) = client.split();
        let reader = smol::spawn(async move {
            let mut pings = 0;
            for i in 0..COUNT {
                loop {
                    match receiver.recv().await.unwrap() {
                        Some(Event::Message(message)) => {
                            assert_eq!(message, Message::text(format!("server {i}")));
                            break;
                        }
                        Some(Event::Ping(_)) => pings += 1,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            (receiver, pings)
        });
        for i in 0..COUNT {
            sender.send_text(format!("client {i}")).await.unwrap();
        }
        let (mut receiver, mut pings) = reader.await;
        sender.close(CloseCode::NORMAL, "done").await.unwrap();
        while let Some(event) = receiver.recv().await.unwrap() {
            pings += usize::from(matches!(event, Event::Ping(_)));
        }
        assert!(receiver.closed().unwrap().is_clean());
        let (messages, pongs) = server.await;
        assert_eq!(messages, COUNT);
        assert_eq!(pings, COUNT / PING_EVERY);
        let expected: Vec<Bytes> = (0..COUNT)
            .step_by(PING_EVERY)
            .map(|i| Bytes::from(i.to_string()))
            .collect();
        assert_eq!(pongs, expected);
    });
}

#[test]
fn split_halves_work_as_stream_and_sink() {
    run(async {
        let (listener, url) = listen().await;
        let server = serve(listener, echo);
        let (client, _) = connect(&url).await.unwrap();
        let (mut sender, mut receiver) = client.split();
        sender.feed(Message::text("one")).await.unwrap();
        sender.feed(Message::binary(&b"two"[..])).await.unwrap();
        sender.flush().await.unwrap();
        assert_eq!(receiver.next().await.unwrap().unwrap(), Message::text("one"));
        assert_eq!(receiver.next().await.unwrap().unwrap(), Message::binary(&b"two"[..]));
        SinkExt::close(&mut sender).await.unwrap();
        assert!(receiver.next().await.is_none());
        assert!(server.await.is_clean());
    });
}

#[test]
fn wss_round_trip_with_a_self_signed_certificate() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    run(async {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let certificate = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certificate.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificate).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let (listener, _) = listen().await;
        let port = listener.local_addr().unwrap().port();
        let acceptor = wsflow_smol::futures_rustls::TlsAcceptor::from(Arc::new(server_config));
        let server = serve(listener, |stream| async move {
            let stream = acceptor.accept(stream).await.unwrap();
            let mut socket = accept(stream).await.unwrap();
            echo_until_closed(&mut socket).await
        });
        let (mut client, _) = ClientBuilder::new(&format!("wss://localhost:{port}/secure"))
            .tls_config(Arc::new(client_config))
            .connect()
            .await
            .unwrap();
        assert!(matches!(client.get_ref(), wsflow_smol::MaybeTlsStream::Rustls(_)));
        client.send_text("secret").await.unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::text("secret")));
        let payload = Bytes::from(vec![42; 1 << 20]);
        client.send_binary(payload.clone()).await.unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::Binary(payload)));
        assert!(close_and_drain(&mut client).await.is_clean());
        assert!(server.await.is_clean());
    });
}

#[test]
fn bad_url_is_reported() {
    run(async {
        let error = connect("ws://[::1").await.unwrap_err();
        assert!(matches!(error, Error::Url(_)), "{error}");
    });
}
