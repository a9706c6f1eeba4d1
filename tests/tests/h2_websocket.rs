//! WebSockets over HTTP/2 (RFC 8441) against wsflow-axum under `axum::serve` (h2c with
//! prior knowledge): hyper's HTTP/2 client sends the extended CONNECT that the core's
//! `ClientNegotiation::new_http2` prepares, and drives a wsflow WebSocket over the stream.
//! Messages both ways with permessage-deflate and a subprotocol, close codes both ways,
//! several WebSockets on one HTTP/2 connection, a slow one that stalls neither the others
//! nor anything but its own sender, the HTTP/2 rejections, and HTTP/1.1 still served on the
//! same port by the same handler. Then wsflow's own HTTP/2 client
//! (`wsflow_io::Http2Client`) against the same server, over TLS with ALPN `h2` too, and its
//! fallback to HTTP/1.1.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use wsflow::{ClientNegotiation, ClientRequest, CloseCode, Config, DeflateConfig, Message};
use wsflow_axum::{WebSocket, WebSocketUpgrade};
use wsflow_tokio::tokio_rustls::TlsAcceptor;

type ClientSocket = wsflow_tokio::WebSocket<TokioIo<hyper::upgrade::Upgraded>>;

fn deflate_config() -> Arc<Config> {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
}

/// Echoes; `close:CODE` closes with CODE; reports each connection's end (the code received)
/// on `ends`.
async fn echo(mut socket: WebSocket, ends: mpsc::UnboundedSender<u16>) {
    while let Ok(Some(message)) = socket.recv_message().await {
        let sent = match &message {
            Message::Text(text) if text.starts_with("close:") => {
                let code = text["close:".len()..].parse().unwrap();
                socket.close(CloseCode::new(code), "server says bye").await
            }
            _ => socket.send(message).await,
        };
        if sent.is_err() {
            break;
        }
    }
    let code = socket.closed().map_or(0, |closed| closed.code().as_u16());
    let _ = ends.send(code);
}

/// Reads nothing until `go`, then counts every byte and answers with the total.
async fn slow(mut socket: WebSocket, go: Arc<Notify>) {
    go.notified().await;
    let mut total = 0usize;
    while let Ok(Some(message)) = socket.recv_message().await {
        match message {
            Message::Text(text) if text.as_str() == "total?" => {
                let _ = socket.send_text(total.to_string()).await;
            }
            other => total += other.len(),
        }
    }
}

struct Server {
    addr: String,
    ends: mpsc::UnboundedReceiver<u16>,
    go: Arc<Notify>,
}

/// The test app under `axum::serve` (axum's `http2` feature: h1 and h2c, extended CONNECT
/// enabled).
async fn serve() -> Server {
    serve_with(false).await
}

/// The test app under hyper-util's auto builder with HTTP/2 flow-control windows set so
/// that one stream cannot take the whole connection's window: 256 KiB per stream, 16 MiB
/// per connection. (hyper's server defaults, which `axum::serve` keeps, are 1 MiB for
/// both: one WebSocket whose application does not read then stops every other stream of
/// the connection.)
async fn serve_tuned() -> Server {
    serve_with(true).await
}

async fn serve_with(tuned: bool) -> Server {
    serve_on(if tuned { Protocols::Tuned } else { Protocols::AxumServe }).await
}

#[derive(Clone, Copy, PartialEq)]
enum Protocols {
    /// `axum::serve`.
    AxumServe,
    /// hyper-util's auto builder, windows tuned.
    Tuned,
    /// hyper-util's auto builder without the extended CONNECT.
    NoConnectProtocol,
    /// HTTP/1.1 only.
    Http1Only,
}

async fn serve_on(protocols: Protocols) -> Server {
    serve_on_tls(protocols, None).await
}

/// The test app as [`serve_on`], behind `tls` when given (HTTP/2 or HTTP/1.1 as ALPN chose).
async fn serve_on_tls(protocols: Protocols, tls: Option<TlsAcceptor>) -> Server {
    let (ends_tx, ends) = mpsc::unbounded_channel();
    let go = Arc::new(Notify::new());
    let go_slow = go.clone();
    let app = Router::new()
        .route(
            "/echo",
            any(move |upgrade: WebSocketUpgrade| {
                let ends = ends_tx.clone();
                async move {
                    upgrade
                        .config(deflate_config())
                        .protocols(["chat"])
                        .on_upgrade(move |socket| echo(socket, ends))
                }
            }),
        )
        .route(
            "/slow",
            any(move |upgrade: WebSocketUpgrade| {
                let go = go_slow.clone();
                async move { upgrade.on_upgrade(move |socket| slow(socket, go)) }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    if protocols == Protocols::AxumServe {
        tokio::spawn(async move { axum::serve(listener, app).await });
        return Server { addr, ends, go };
    }
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    match protocols {
        Protocols::Tuned => {
            builder
                .http2()
                .enable_connect_protocol()
                .initial_stream_window_size(256 << 10)
                .initial_connection_window_size(16 << 20);
        }
        Protocols::Http1Only => builder = builder.http1_only(),
        _ => {}
    }
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let (builder, tls) = (builder.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => {
                        let _ = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).await;
                    }
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    Server { addr, ends, go }
}

/// An HTTP/2 connection (h2c, prior knowledge) whose server enabled the extended CONNECT.
async fn h2_connect(addr: &str) -> SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    // The server's SETTINGS arrive once the connection runs.
    let mut connection = Box::pin(connection);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !connection.is_extended_connect_protocol_enabled() {
        assert!(Instant::now() < deadline, "no SETTINGS_ENABLE_CONNECT_PROTOCOL");
        let _ = tokio::time::timeout(Duration::from_millis(10), connection.as_mut()).await;
    }
    tokio::spawn(connection);
    send
}

/// The extended CONNECT for `path`, and the response's head.
async fn open(
    send: &mut SendRequest<Empty<Bytes>>,
    addr: &str,
    path: &str,
    config: Arc<Config>,
    protocols: &[&str],
) -> Result<(ClientSocket, http::response::Parts, bool), http::Response<String>> {
    let mut request = ClientRequest::new(&format!("ws://{addr}{path}")).unwrap();
    for protocol in protocols {
        request = request.subprotocol(*protocol);
    }
    let entropy: [u8; 32] = std::array::from_fn(|i| i as u8 ^ path.len() as u8);
    let negotiation = ClientNegotiation::new_http2(&request, config, entropy).unwrap();
    let request = negotiation
        .http_request()
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .body(Empty::new())
        .unwrap();
    send.ready().await.unwrap();
    let mut response = send.send_request(request).await.unwrap();
    if response.status() != 200 {
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        return Err(http::Response::from_parts(
            parts,
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let (parts, _) = response.into_parts();
    let connection = negotiation
        .into_connection(Instant::now(), &wsflow::Response::from(&parts))
        .unwrap();
    let compressed = connection.is_compressed();
    let socket = ClientSocket::from_upgraded(wsflow_tokio::TokioIo::new(TokioIo::new(upgraded)), connection, &[]);
    Ok((socket, parts, compressed))
}

/// Sends `message` and expects it back within 10 s, over either kind of socket here.
async fn round_trip<S: wsflow_io::AsyncStream>(socket: &mut wsflow_io::WebSocket<S>, message: Message) {
    socket.send(message.clone()).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), socket.recv_message())
        .await
        .expect("echo in time")
        .unwrap()
        .unwrap();
    assert_eq!(echoed, message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_deflate_subprotocol_and_close_codes_over_h2c() {
    let mut server = serve().await;
    let mut send = h2_connect(&server.addr).await;

    let (mut socket, parts, compressed) = open(&mut send, &server.addr, "/echo?x=1", deflate_config(), &["x", "chat"])
        .await
        .unwrap();
    assert_eq!(parts.version, http::Version::HTTP_2);
    assert_eq!(parts.headers["sec-websocket-protocol"], "chat");
    assert!(parts.headers["sec-websocket-extensions"]
        .to_str()
        .unwrap()
        .starts_with("permessage-deflate"));
    assert!(parts.headers.get("sec-websocket-accept").is_none());
    assert!(compressed);
    round_trip(&mut socket, Message::text("hello over h2")).await;
    round_trip(&mut socket, Message::binary(vec![7u8; 1 << 20])).await;
    let text: String = (0..200_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    round_trip(&mut socket, Message::text(text)).await;
    // The server closes with 4001: the client sees it and the stream ends.
    socket.send_text("close:4001").await.unwrap();
    assert_eq!(socket.recv_message().await.unwrap(), None);
    assert_eq!(socket.closed().unwrap().code(), CloseCode::new(4001));
    // The client echoed the code: the server's end reports it too.
    assert_eq!(server.ends.recv().await, Some(4001));

    // A second WebSocket on the same HTTP/2 connection; the client closes with 4002.
    let (mut socket, _, _) = open(&mut send, &server.addr, "/echo", deflate_config(), &[])
        .await
        .unwrap();
    round_trip(&mut socket, Message::text("second")).await;
    socket.close(CloseCode::new(4002), "client says bye").await.unwrap();
    assert_eq!(socket.recv_message().await.unwrap(), None);
    assert_eq!(server.ends.recv().await, Some(4002));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_websockets_on_one_connection_and_a_slow_one_stalls_only_its_sender() {
    let mut server = serve_tuned().await;
    let mut send = h2_connect(&server.addr).await;

    // The slow WebSocket: its server reads nothing yet. 16 MiB of incompressible-ish data
    // is far more than HTTP/2's stream window and wsflow's high-water mark.
    let (mut slow, _, _) = open(&mut send, &server.addr, "/slow", Arc::new(Config::default()), &[])
        .await
        .unwrap();
    const CHUNK: usize = 64 << 10;
    const TOTAL: usize = 16 << 20;
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<usize>();
    let writer = tokio::spawn(async move {
        let mut seed = 1u64;
        let mut sent = 0;
        while sent < TOTAL {
            let chunk: Vec<u8> = (0..CHUNK)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            slow.send(Message::binary(chunk)).await.unwrap();
            sent += CHUNK;
            let _ = sent_tx.send(sent);
        }
        slow
    });

    // Eight more WebSockets on the same connection, talking while the slow one is stuck.
    let mut sockets = Vec::new();
    for _ in 0..8 {
        let (socket, _, _) = open(&mut send, &server.addr, "/echo", deflate_config(), &[])
            .await
            .unwrap();
        sockets.push(socket);
    }
    let talk = sockets.into_iter().enumerate().map(|(n, mut socket)| {
        tokio::spawn(async move {
            for round in 0..50 {
                round_trip(&mut socket, Message::text(format!("socket {n} round {round}"))).await;
                round_trip(&mut socket, Message::binary(vec![n as u8; 10_000])).await;
            }
            socket.close(CloseCode::NORMAL, "").await.unwrap();
            assert_eq!(socket.recv_message().await.unwrap(), None);
        })
    });
    let started = Instant::now();
    for task in talk {
        task.await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(20), "the others were stalled");
    for _ in 0..8 {
        assert_eq!(server.ends.recv().await, Some(1000));
    }

    // Backpressure reached the slow sender: it is stuck far short of the total.
    let mut sent_so_far = 0;
    while let Ok(sent) = sent_rx.try_recv() {
        sent_so_far = sent;
    }
    assert!(
        !writer.is_finished(),
        "the slow sender never blocked ({sent_so_far} bytes sent)"
    );
    assert!(
        sent_so_far < TOTAL / 2,
        "{sent_so_far} bytes went out to a reader that reads nothing"
    );

    // Once its server reads, everything arrives.
    server.go.notify_one();
    let mut slow = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("the slow sender finishes once read")
        .unwrap();
    slow.send_text("total?").await.unwrap();
    let total = slow.recv_message().await.unwrap().unwrap();
    assert_eq!(total, Message::text(TOTAL.to_string()));
    slow.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(slow.recv_message().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_over_http2_and_http1_on_the_same_port() {
    let server = serve().await;
    let mut send = h2_connect(&server.addr).await;

    // A bad version: 400 over HTTP/2 (no 426), naming version 13.
    let request = http::Request::connect(format!("http://{}/echo", server.addr))
        .version(http::Version::HTTP_2)
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "8")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    // Another protocol than `websocket`.
    let request = http::Request::connect(format!("http://{}/echo", server.addr))
        .version(http::Version::HTTP_2)
        .extension(hyper::ext::Protocol::from_static("connect-udp"))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(send.send_request(request).await.unwrap().status(), 400);
    // A GET over HTTP/2 is no WebSocket: 405, allowing CONNECT.
    let request = http::Request::get(format!("http://{}/echo", server.addr))
        .version(http::Version::HTTP_2)
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "CONNECT");

    // The connection still carries a WebSocket after the rejections.
    let (mut socket, _, _) = open(&mut send, &server.addr, "/echo", deflate_config(), &[])
        .await
        .unwrap();
    round_trip(&mut socket, Message::text("still fine")).await;

    // HTTP/1.1 upgrades are served on the same port by the same handler.
    let (mut h1, response) = wsflow_tokio::ClientBuilder::new(&format!("ws://{}/echo", server.addr))
        .config(deflate_config())
        .connect()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert!(response.headers().get("sec-websocket-extensions").is_some());
    h1.send_text("over HTTP/1.1").await.unwrap();
    assert_eq!(h1.recv_message().await.unwrap(), Some(Message::text("over HTTP/1.1")));
}

async fn wsflow_h2_client(addr: &str) -> wsflow_io::Http2Client<wsflow_tokio::Tokio> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, driver) = wsflow_io::Http2Client::handshake(wsflow_tokio::TokioIo::new(tcp), Duration::from_secs(10))
        .await
        .unwrap();
    tokio::spawn(driver);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsflow_http2_client_multiplexes_websockets() {
    let mut server = serve_tuned().await;
    let mut client = wsflow_h2_client(&server.addr).await;
    assert!(client.supports_websockets());
    let url = format!("ws://{}/echo", server.addr);

    let builder = || wsflow_tokio::ClientBuilder::new(&url).config(deflate_config());
    let (mut first, response) = client.open(builder().subprotocol("chat")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.subprotocol(), Some("chat"));
    assert!(response.headers().get("sec-websocket-extensions").is_some());
    let (mut second, _) = client.open(builder()).await.unwrap();
    round_trip(&mut first, Message::text("one")).await;
    round_trip(&mut second, Message::binary(vec![3u8; 2 << 20])).await;
    let text: String = (0..300_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    round_trip(&mut first, Message::text(text)).await;

    // Close codes both ways; the other WebSocket goes on.
    first.send_text("close:4003").await.unwrap();
    assert_eq!(first.recv_message().await.unwrap(), None);
    assert_eq!(first.closed().unwrap().code(), CloseCode::new(4003));
    assert_eq!(server.ends.recv().await, Some(4003));
    round_trip(&mut second, Message::text("still here")).await;
    second.close(CloseCode::new(4004), "done").await.unwrap();
    assert_eq!(second.recv_message().await.unwrap(), None);
    assert_eq!(server.ends.recv().await, Some(4004));

    // A slow reader on the server holds back only its own stream's sender.
    let (mut slow, _) = client
        .open(wsflow_tokio::ClientBuilder::new(&format!("ws://{}/slow", server.addr)))
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        for n in 0..256u32 {
            let chunk: Vec<u8> = (0..65_536u32).map(|i| (i.wrapping_mul(2654435761) ^ n) as u8).collect();
            slow.send(Message::binary(chunk)).await.unwrap();
        }
        slow
    });
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(client.open(builder()).await.unwrap().0);
    }
    for (n, socket) in others.iter_mut().enumerate() {
        for round in 0..20 {
            round_trip(socket, Message::text(format!("{n}/{round}"))).await;
        }
    }
    assert!(!writer.is_finished(), "the slow stream's sender never blocked");
    server.go.notify_one();
    let mut slow = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .unwrap()
        .unwrap();
    slow.send_text("total?").await.unwrap();
    assert_eq!(
        slow.recv_message().await.unwrap(),
        Some(Message::text((256 * 65_536).to_string()))
    );
    slow.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(slow.recv_message().await.unwrap(), None);
    // A rejected request: an error, and the connection goes on.
    let error = client
        .open(wsflow_tokio::ClientBuilder::new(&format!(
            "ws://{}/nowhere",
            server.addr
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, wsflow_io::Error::Rejected(response) if response.status() == 404),
        "{error}"
    );
    round_trip(&mut others[0], Message::text("after the 404")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsflow_http2_client_over_tls_with_alpn_h2() {
    // The server offers `h2` and `http/1.1`; `Http2Client::connect` offers only `h2`.
    let tls = common::tls::self_signed();
    let mut server_config = (*tls.server).clone();
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut server = serve_on_tls(Protocols::Tuned, Some(TlsAcceptor::from(Arc::new(server_config)))).await;
    let port = server.addr.rsplit(':').next().unwrap().to_owned();

    let url = format!("wss://localhost:{port}/echo");
    let builder = wsflow_tokio::ClientBuilder::new(&url)
        .tls_config(tls.client.clone())
        .config(deflate_config())
        .subprotocol("chat");
    let (mut client, driver) = wsflow_io::Http2Client::connect(&builder).await.unwrap();
    tokio::spawn(driver);
    assert!(client.supports_websockets());
    let (mut socket, response) = client.open(builder).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.subprotocol(), Some("chat"));
    assert!(response
        .headers()
        .get("sec-websocket-extensions")
        .is_some_and(|value| value.starts_with("permessage-deflate")));
    round_trip(&mut socket, Message::text("over TLS, ALPN h2")).await;
    let text: String = (0..300_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    round_trip(&mut socket, Message::text(text)).await;
    let data: Vec<u8> = (0..1_000_000u32).map(|i| i.wrapping_mul(2654435761) as u8).collect();
    round_trip(&mut socket, Message::binary(data)).await;

    socket.close(CloseCode::NORMAL, "done").await.unwrap();
    assert_eq!(socket.recv_message().await.unwrap(), None);
    assert_eq!(socket.closed().unwrap().code(), CloseCode::NORMAL);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), server.ends.recv())
            .await
            .unwrap(),
        Some(1000)
    );
}

/// A WebSocket whose application stops reading holds back only itself on the client's
/// side too: what the server sends it stays within its stream's window, and the connection's
/// window (which HTTP/2 sets to 64 KiB unless the client says otherwise) never runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsflow_http2_client_an_unread_websocket_does_not_stop_the_others() {
    let server = serve_tuned().await;
    let builder = wsflow_tokio::ClientBuilder::new(&format!("ws://{}/echo", server.addr));
    let (mut client, driver) = wsflow_io::Http2Client::connect(&builder).await.unwrap();
    tokio::spawn(driver);
    let (mut unread, _) = client.open(builder.clone()).await.unwrap();
    let (mut other, _) = client.open(builder).await.unwrap();
    // Its echo comes back and is never read.
    unread.send(Message::binary(vec![1u8; 1 << 20])).await.unwrap();
    unread.flush().await.unwrap();
    let rounds = async {
        for n in 0..20u8 {
            round_trip(&mut other, Message::binary(vec![n; 100_000])).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), rounds)
        .await
        .expect("the other WebSocket was stopped by the unread one");
    drop(unread);
}

/// A WebSocket dropped as soon as it has closed still delivers its last frames: the close
/// echo of a close the server started reaches the server (its close is clean, with the
/// code it sent), for several WebSockets in a row on one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsflow_http2_client_dropped_at_once_after_closing_still_sends_its_close() {
    let mut server = serve_tuned().await;
    let builder = wsflow_tokio::ClientBuilder::new(&format!("ws://{}/echo", server.addr));
    let (mut client, driver) = wsflow_io::Http2Client::connect(&builder).await.unwrap();
    tokio::spawn(driver);
    for n in 0..20u16 {
        let (mut socket, _) = client.open(builder.clone()).await.unwrap();
        socket.send_text(format!("close:{}", 4000 + n)).await.unwrap();
        while socket.recv_message().await.unwrap().is_some() {}
        drop(socket);
        let code = tokio::time::timeout(Duration::from_secs(10), server.ends.recv())
            .await
            .expect("the server's WebSocket ended")
            .unwrap();
        assert_eq!(code, 4000 + n, "the close echo of WebSocket {n} was lost");
    }
}

/// The same client on smol: `Http2Client::connect` over h2c, its driver spawned on smol,
/// two WebSockets on the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsflow_http2_client_on_smol() {
    let server = serve_tuned().await;
    let url = format!("ws://{}/echo", server.addr);
    tokio::task::spawn_blocking(move || {
        smol::block_on(async {
            let builder = wsflow_smol::ClientBuilder::new(&url).config(deflate_config());
            let (mut client, driver) = wsflow_io::Http2Client::connect(&builder).await.unwrap();
            smol::spawn(driver).detach();
            let (mut first, response) = client.open(builder.clone()).await.unwrap();
            assert_eq!(response.status(), 200);
            let (mut second, _) = client.open(builder).await.unwrap();
            for (n, socket) in [&mut first, &mut second].into_iter().enumerate() {
                socket.send_text(format!("smol {n}")).await.unwrap();
                assert_eq!(
                    socket.recv_message().await.unwrap(),
                    Some(Message::text(format!("smol {n}")))
                );
                socket.close(CloseCode::NORMAL, "").await.unwrap();
                assert_eq!(socket.recv_message().await.unwrap(), None);
                assert!(socket.closed().unwrap().is_clean());
            }
        })
    })
    .await
    .unwrap();
}

/// Falls back to HTTP/1.1 when the server speaks no HTTP/2 or does not enable the
/// extended CONNECT, as `Http2Client::connect`'s documentation shows.
async fn connect_h2_or_h1(
    builder: wsflow_tokio::ClientBuilder,
) -> wsflow_tokio::WebSocket<wsflow_tokio::MaybeTlsStream> {
    match wsflow_io::Http2Client::connect(&builder).await {
        Ok((mut client, driver)) => {
            tokio::spawn(driver);
            if client.supports_websockets() {
                let error = client.open(builder).await.err();
                panic!("this test's servers do not enable it, yet: {error:?}");
            }
            let error = client.open(builder.clone()).await.unwrap_err();
            assert!(
                matches!(&error, wsflow_io::Error::Transport(e) if e.kind() == std::io::ErrorKind::Unsupported),
                "{error}"
            );
        }
        Err(error) => assert!(matches!(&error, wsflow_io::Error::Transport(_)), "{error}"),
    }
    builder.connect().await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsflow_http2_client_falls_back_to_http1() {
    for protocols in [Protocols::NoConnectProtocol, Protocols::Http1Only] {
        let server = serve_on(protocols).await;
        let builder = wsflow_tokio::ClientBuilder::new(&format!("ws://{}/echo", server.addr));
        let mut socket = connect_h2_or_h1(builder).await;
        socket.send_text("over HTTP/1.1").await.unwrap();
        assert_eq!(
            socket.recv_message().await.unwrap(),
            Some(Message::text("over HTTP/1.1"))
        );
    }
    // TLS whose ALPN offers only HTTP/1.1: `connect` says so, and `wss://` over HTTP/1.1 works.
    let tls = common::tls::self_signed();
    let mut server_config = (*tls.server).clone();
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server = serve_on_tls(Protocols::Http1Only, Some(TlsAcceptor::from(Arc::new(server_config)))).await;
    let port = server.addr.rsplit(':').next().unwrap();
    let builder =
        wsflow_tokio::ClientBuilder::new(&format!("wss://localhost:{port}/echo")).tls_config(tls.client.clone());
    let error = wsflow_io::Http2Client::connect(&builder).await.unwrap_err();
    assert!(matches!(&error, wsflow_io::Error::Transport(_)), "{error}");
    let mut socket = connect_h2_or_h1(builder).await;
    socket.send_text("wss over HTTP/1.1").await.unwrap();
    assert_eq!(
        socket.recv_message().await.unwrap(),
        Some(Message::text("wss over HTTP/1.1"))
    );
}
