//! wsflow-tokio over loopback TCP: every test is bounded by a timeout (an upper bound,
//! never a synchronisation).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsflow::{CloseFrame, CloseReason, HandshakeError, MessageKind, Timeout};
use wsflow_tokio::{
    Accept, Accepted, ClientBuilder, CloseCode, Config, Decision, Error, Event, Message, Request, Response, WebSocket,
};

#[allow(dead_code, unreachable_pub)]
#[path = "../../adapters/tokio/examples/chat.rs"]
mod chat;

/// Runs `test` with an upper bound on its duration.
async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test timed out")
}

fn config(adjust: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut config = Config::default();
    adjust(&mut config);
    Arc::new(config)
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Accepts one connection on a fresh port with `hook`; returns the port and the server task.
async fn serve_one<F>(
    config: Arc<Config>,
    hook: F,
) -> (SocketAddr, tokio::task::JoinHandle<Result<Accepted<TcpStream>, Error>>)
where
    F: FnOnce(&Request) -> Decision + Send + 'static,
{
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        wsflow_tokio::accept_with(tcp, config, hook).await
    });
    (addr, server)
}

fn accept_all(_: &Request) -> Decision {
    Decision::Accept(Accept::new())
}

/// A server that echoes every message on every connection.
async fn echo_server() -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut websocket = wsflow_tokio::accept(tcp).await?;
                while let Some(message) = websocket.recv_message().await? {
                    websocket.send(message).await?;
                }
                Ok::<_, Error>(())
            });
        }
    });
    addr
}

/// Closes with 1000 and receives until the connection is over.
async fn close_cleanly<S>(websocket: &mut WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    websocket.close(CloseCode::NORMAL, "").await.unwrap();
    while websocket.recv().await.unwrap().is_some() {}
    assert!(websocket.closed().unwrap().is_clean());
}

/// Completes an upgrade by hand on a raw TCP stream (then the test decides what to read).
async fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    tcp
}

#[tokio::test]
async fn text_with_non_ascii_round_trips() {
    bounded(async {
        let addr = echo_server().await;
        let (mut client, _) = wsflow_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
        let text = "héllo wörld ✓ 日本語 🚀";
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
        close_cleanly(&mut client).await;
    })
    .await;
}

#[tokio::test]
async fn binary_16_mib_round_trips() {
    bounded(async {
        let addr = echo_server().await;
        let (mut client, _) = wsflow_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
        let data: Bytes = (0..16u32 << 20)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        client.send_binary(data.clone()).await.unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::Binary(data)));
        close_cleanly(&mut client).await;
    })
    .await;
}

#[tokio::test]
async fn fragmented_send_arrives_as_one_message() {
    bounded(async {
        let addr = echo_server().await;
        let (mut client, _) = wsflow_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
        // The second fragment splits the two bytes of "ö".
        for (part, fin) in [(&b"hello w\xc3"[..], false), (b"\xb6rld", false), (b"!", true)] {
            client
                .send_fragment(MessageKind::Text, Bytes::from_static(part), fin)
                .await
                .unwrap();
        }
        assert_eq!(
            client.recv_message().await.unwrap(),
            Some(Message::text("hello wörld!"))
        );
        close_cleanly(&mut client).await;
    })
    .await;
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    bounded(async {
        let addr = echo_server().await;
        let (mut client, _) = wsflow_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
        client.ping(Bytes::from_static(b"are you there")).await.unwrap();
        assert_eq!(
            client.recv().await.unwrap(),
            Some(Event::Pong(Bytes::from_static(b"are you there")))
        );
        close_cleanly(&mut client).await;
    })
    .await;
}

#[tokio::test]
async fn close_code_and_reason_reach_both_ends() {
    bounded(async {
        for client_closes in [true, false] {
            let (addr, server) = serve_one(Arc::new(Config::default()), accept_all).await;
            let (mut client, _) = wsflow_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
            let Accepted::WebSocket(mut server, _) = server.await.unwrap().unwrap() else {
                panic!("not upgraded")
            };
            let (closer, other) = if client_closes {
                (&mut client as &mut dyn CloseEnd, &mut server as &mut dyn CloseEnd)
            } else {
                (&mut server as &mut dyn CloseEnd, &mut client as &mut dyn CloseEnd)
            };
            let frame = CloseFrame::new(CloseCode::new(4001), "bye ✓");
            closer.start_close(&frame).await;
            let (closer_end, other_end) = tokio::join!(closer.events(), other.events());
            assert!(other_end.contains(&Event::CloseReceived(Some(frame.clone()))));
            for ended in [closer_end.last(), other_end.last()] {
                let Some(Event::Closed(closed)) = ended else {
                    panic!("no Closed: {ended:?}")
                };
                assert!(closed.is_clean());
                assert_eq!(closed.code(), CloseCode::new(4001));
            }
            let Some(Event::Closed(closed)) = closer_end.last() else {
                unreachable!()
            };
            assert_eq!(closed.sent.as_ref(), Some(&frame));
        }
    })
    .await;
}

/// Either end of a connection, for the close test.
trait CloseEnd {
    fn start_close<'a>(&'a mut self, frame: &'a CloseFrame) -> futures_util::future::BoxFuture<'a, ()>;
    fn events(&mut self) -> futures_util::future::BoxFuture<'_, Vec<Event>>;
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> CloseEnd for WebSocket<S> {
    fn start_close<'a>(&'a mut self, frame: &'a CloseFrame) -> futures_util::future::BoxFuture<'a, ()> {
        async move { self.close(frame.code, &frame.reason).await.unwrap() }.boxed()
    }

    fn events(&mut self) -> futures_util::future::BoxFuture<'_, Vec<Event>> {
        async move {
            let mut events = Vec::new();
            while let Some(event) = self.recv().await.unwrap() {
                events.push(event);
            }
            events
        }
        .boxed()
    }
}

#[tokio::test]
async fn server_selects_an_offered_subprotocol() {
    bounded(async {
        let choose = |request: &Request| {
            assert_eq!(request.subprotocols().collect::<Vec<_>>(), ["chat.v1", "chat.v2"]);
            Decision::Accept(Accept::new().subprotocol("chat.v2"))
        };
        let (addr, server) = serve_one(Arc::new(Config::default()), choose).await;
        let (mut client, response) = ClientBuilder::new(&format!("ws://{addr}/"))
            .subprotocol("chat.v1")
            .subprotocol("chat.v2")
            .connect()
            .await
            .unwrap();
        assert_eq!(response.subprotocol(), Some("chat.v2"));
        let Accepted::WebSocket(mut server, _) = server.await.unwrap().unwrap() else {
            panic!("not upgraded")
        };
        tokio::join!(close_cleanly(&mut client), async {
            while server.recv().await.unwrap().is_some() {}
        });
    })
    .await;
}

#[tokio::test]
async fn rejected_upgrade_reports_status_and_body() {
    bounded(async {
        let reject = |_: &Request| Decision::Respond(Response::new(403).with_body("no entry"));
        let (addr, server) = serve_one(Arc::new(Config::default()), reject).await;
        let error = ClientBuilder::new(&format!("ws://{addr}/secret"))
            .header("Authorization", "Bearer wrong")
            .connect()
            .await
            .unwrap_err();
        let Error::Rejected(response) = error else {
            panic!("{error:?}")
        };
        assert_eq!(response.status(), 403);
        assert_eq!(&response.body()[..], b"no entry");
        let Accepted::Responded(request) = server.await.unwrap().unwrap() else {
            panic!("upgraded")
        };
        assert_eq!(request.headers().get("authorization"), Some("Bearer wrong"));
    })
    .await;
}

#[tokio::test]
async fn plain_http_request_is_answered_by_the_hook() {
    bounded(async {
        let page = |request: &Request| {
            assert!(!request.is_websocket());
            Decision::Respond(Response::new(200).with_body(format!("you asked for {}", request.path())))
        };
        let (addr, server) = serve_one(Arc::new(Config::default()), page).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /hello?x=1 HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nyou asked for /hello"), "{answer}");
        assert!(matches!(server.await.unwrap().unwrap(), Accepted::Responded(_)));
    })
    .await;
}

#[tokio::test]
async fn keepalive_detects_a_silent_peer() {
    bounded(async {
        let keepalive = config(|config| {
            config
                .ping_interval(Some(Duration::from_millis(100)))
                .pong_timeout(Duration::from_millis(300));
        });
        let (addr, server) = serve_one(keepalive, accept_all).await;
        // Completes the handshake, then never reads nor answers.
        let _silent = raw_upgrade(addr).await;
        let Accepted::WebSocket(mut server, _) = server.await.unwrap().unwrap() else {
            panic!("not upgraded")
        };
        while server.recv().await.unwrap().is_some() {}
        let closed = server.closed().unwrap();
        assert_eq!(closed.reason, CloseReason::TimedOut(Timeout::Keepalive));
        assert_eq!(
            closed.sent.as_ref().map(|frame| frame.code),
            Some(CloseCode::INTERNAL_ERROR)
        );
    })
    .await;
}

#[tokio::test]
async fn close_times_out_when_the_peer_never_answers() {
    bounded(async {
        let short_close = config(|config| {
            config.close_timeout(Duration::from_millis(300));
        });
        let (addr, server) = serve_one(short_close, accept_all).await;
        let _mute = raw_upgrade(addr).await;
        let Accepted::WebSocket(mut server, _) = server.await.unwrap().unwrap() else {
            panic!("not upgraded")
        };
        server.close(CloseCode::GOING_AWAY, "shutting down").await.unwrap();
        while server.recv().await.unwrap().is_some() {}
        assert_eq!(server.closed().unwrap().reason, CloseReason::TimedOut(Timeout::Close));
    })
    .await;
}

#[tokio::test]
async fn handshake_times_out_on_half_a_request() {
    bounded(async {
        let short_handshake = config(|config| {
            config.handshake_timeout(Duration::from_millis(300));
        });
        let (addr, server) = serve_one(short_handshake, accept_all).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: web")
            .await
            .unwrap();
        let error = server.await.unwrap().unwrap_err();
        assert!(matches!(error, Error::Handshake(HandshakeError::TimedOut)), "{error:?}");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    })
    .await;
}

#[tokio::test]
async fn send_waits_when_the_peer_stops_reading() {
    bounded(async {
        let (addr, server) = serve_one(Arc::new(Config::default()), accept_all).await;
        let _not_reading = raw_upgrade(addr).await;
        let Accepted::WebSocket(mut server, _) = server.await.unwrap().unwrap() else {
            panic!("not upgraded")
        };
        let mark = 256 << 10;
        server.set_high_water_mark(mark);
        let chunk = Bytes::from(vec![7u8; 64 << 10]);
        let frame_len = chunk.len() + 4;
        // The socket buffers fill up, then a send must wait.
        for sent in 0.. {
            assert!(sent < 4096, "256 MiB went into a peer that reads nothing");
            if server.send_binary(chunk.clone()).now_or_never().is_none() {
                break;
            }
            assert!(server.buffered_amount() <= mark, "{} queued", server.buffered_amount());
        }
        // The waiting send queued its frame: memory stays at the mark plus one message.
        assert!(server.buffered_amount() > mark);
        assert!(server.buffered_amount() <= mark + frame_len);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_carry_10000_messages_each_way_and_answer_pings() {
    const MESSAGES: u32 = 10_000;
    // Ten pings in all: even if every one lands in a single read, the core keeps a pong
    // for each (it keeps 16; past that only the latest pings must be answered, §5.5.2).
    const PING_EVERY: u32 = 1_000;
    bounded(async {
        let (addr, server) = serve_one(Arc::new(Config::default()), accept_all).await;
        let (client, _) = wsflow_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
        let Accepted::WebSocket(server, _) = server.await.unwrap().unwrap() else {
            panic!("not upgraded")
        };
        let (mut server_tx, mut server_rx) = server.split();
        let (mut client_tx, mut client_rx) = client.split();

        let server_sends = tokio::spawn(async move {
            for i in 0..MESSAGES {
                server_tx.send_text(format!("to client {i}")).await.unwrap();
            }
            server_tx
        });
        let server_receives = tokio::spawn(async move {
            let mut count = 0;
            while let Some(message) = server_rx.recv_message().await.unwrap() {
                assert_eq!(message, Message::text(format!("to server {count}")));
                count += 1;
            }
            count
        });
        let client_sends = tokio::spawn(async move {
            let mut pings = Vec::new();
            for i in 0..MESSAGES {
                client_tx.send_text(format!("to server {i}")).await.unwrap();
                if i % PING_EVERY == 0 {
                    let payload = Bytes::from(i.to_string());
                    client_tx.ping(payload.clone()).await.unwrap();
                    pings.push(payload);
                }
            }
            (client_tx, pings)
        });
        let client_receives = tokio::spawn(async move {
            let (mut count, mut pongs) = (0, Vec::new());
            while count < MESSAGES || pongs.len() < (MESSAGES / PING_EVERY) as usize {
                match client_rx.recv().await.unwrap() {
                    Some(Event::Message(message)) => {
                        assert_eq!(message, Message::text(format!("to client {count}")));
                        count += 1;
                    }
                    Some(Event::Pong(payload)) => pongs.push(payload),
                    other => panic!("unexpected {other:?}"),
                }
            }
            (client_rx, pongs)
        });

        let (mut client_tx, pings) = client_sends.await.unwrap();
        let (mut client_rx, pongs) = client_receives.await.unwrap();
        assert_eq!(pongs, pings, "every ping answered, in order");
        let mut server_tx = server_sends.await.unwrap();
        client_tx.close(CloseCode::NORMAL, "done").await.unwrap();
        let (received, client_end) = tokio::join!(server_receives, async {
            let mut events = Vec::new();
            while let Some(event) = client_rx.recv().await.unwrap() {
                events.push(event);
            }
            events
        });
        assert_eq!(received.unwrap(), MESSAGES);
        assert!(matches!(client_end.last(), Some(Event::Closed(closed)) if closed.is_clean()));
        assert!(server_tx.send_text("late").await.is_err());
    })
    .await;
}

#[tokio::test]
async fn wss_round_trip_with_a_self_signed_certificate() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    bounded(async {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let (listener, addr) = listener().await;
        let acceptor = wsflow_tokio::tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut websocket = wsflow_tokio::accept(acceptor.accept(tcp).await?).await?;
            while let Some(message) = websocket.recv_message().await? {
                websocket.send(message).await?;
            }
            Ok::<_, Error>(websocket.closed().cloned())
        });
        let (mut client, _) = ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
            .tls_config(Arc::new(client_config))
            .connect()
            .await
            .unwrap();
        assert!(matches!(client.get_ref(), wsflow_tokio::MaybeTlsStream::Rustls(_)));
        client.send_text("over TLS ✓").await.unwrap();
        assert_eq!(client.recv_message().await.unwrap(), Some(Message::text("over TLS ✓")));
        close_cleanly(&mut client).await;
        assert!(server.await.unwrap().unwrap().unwrap().is_clean());
    })
    .await;
}

#[tokio::test]
async fn wss_without_a_trusted_certificate_fails() {
    bounded(async {
        // A plain TCP server: the TLS handshake cannot succeed.
        let (listener, addr) = listener().await;
        tokio::spawn(async move { listener.accept().await });
        let error = wsflow_tokio::connect(&format!("wss://localhost:{}/", addr.port()))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Transport(_)), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn chat_example_serves_the_page_and_broadcasts() {
    bounded(async {
        let (listener, addr) = listener().await;
        tokio::spawn(chat::serve(listener));

        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
        let mut page = String::new();
        tcp.read_to_string(&mut page).await.unwrap();
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("Content-Type: text/html"), "{page}");
        assert!(page.contains("<html"), "{page}");

        let url = format!("ws://{addr}/ws");
        let (mut alice, _) = wsflow_tokio::connect(&url).await.unwrap();
        alice.send_text("alice").await.unwrap();
        let (mut bob, _) = wsflow_tokio::connect(&url).await.unwrap();
        bob.send_text("bob").await.unwrap();
        // Alice speaks once she has seen Bob join, so both are in the room.
        wait_for_line(&mut alice, "* bob joined").await;
        alice.send_text("hi bob").await.unwrap();
        wait_for_line(&mut alice, "alice: hi bob").await;
        wait_for_line(&mut bob, "alice: hi bob").await;

        close_cleanly(&mut bob).await;
        wait_for_line(&mut alice, "* bob left").await;
        close_cleanly(&mut alice).await;
    })
    .await;
}

/// Receives chat lines until `expected` arrives.
async fn wait_for_line(websocket: &mut WebSocket<wsflow_tokio::MaybeTlsStream>, expected: &str) {
    loop {
        match websocket.recv_message().await.unwrap() {
            Some(Message::Text(line)) if line.as_str() == expected => return,
            Some(_) => {}
            None => panic!("closed before {expected:?}"),
        }
    }
}
