//! wsflow-axum's `WebSocketUpgrade` under a real `axum::serve` on loopback TCP: the
//! clients' full script (deflate, subprotocol, 16 MiB, fragments, ping, close codes); the
//! first frames sent in the same packet as the request head are delivered; every rejection
//! answers with the documented status, headers and body; the config's handshake limits
//! apply; the application can refuse an `Origin`; and the axum chat example serves its page
//! and rooms.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsflow_axum::{CloseCode, Config, Message, WebSocket, WebSocketUpgrade};

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../adapters/axum/examples/chat.rs"]
mod chat;

/// Echoes, or closes with CODE and REASON on `close:CODE:REASON` (the clients' script).
async fn echo(mut socket: WebSocket) {
    while let Ok(Some(message)) = socket.recv_message().await {
        let sent = match &message {
            Message::Text(text) if text.starts_with("close:") => {
                let (code, reason) = text["close:".len()..].split_once(':').unwrap();
                socket.close(CloseCode::new(code.parse().unwrap()), reason).await
            }
            _ => socket.send(message).await,
        };
        if sent.is_err() {
            break;
        }
    }
}

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    let mut config = Config::default();
    config.deflate(Some(wsflow::DeflateConfig::default())).max_headers(20);
    if upgrade
        .request()
        .origin()
        .is_some_and(|origin| origin != "https://allowed.example")
    {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    upgrade.config(config).protocols(["chat", "superchat"]).on_upgrade(echo)
}

fn app() -> Router {
    Router::new()
        .route("/", any(upgrade))
        .route("/reject", get(|| async { (StatusCode::FORBIDDEN, "go away") }))
}

/// Serves the test app with `axum::serve` on a loopback port; returns `host:port`.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app()).await });
    addr
}

/// Serves the test app with hyper's HTTP/1 server straight over `TokioIo<TcpStream>`, where
/// the upgraded stream is the plain TCP stream and the bytes hyper read past the head are
/// handed over separately; returns `host:port`.
async fn serve_with_hyper_http1() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper_util::service::TowerToHyperService::new(app());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    addr
}

fn run(test: impl std::future::Future<Output = ()> + Send + 'static) {
    common::within("axum", move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(test);
    });
}

#[test]
fn the_tokio_clients_script_passes_against_an_axum_handler() {
    run(async {
        let addr = serve().await;
        common::tokio_client::run(&format!("ws://{addr}/")).await;
        common::tokio_client::rejection(&format!("ws://{addr}/")).await;
    });
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A complete upgrade request with `extra` header lines (each ending in CRLF).
fn request(method: &str, version: &str, key: Option<&str>, extra: &str) -> String {
    let key = key
        .map(|key| format!("Sec-WebSocket-Key: {key}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key}\
         Sec-WebSocket-Version: {version}\r\n{extra}\r\n"
    )
}

/// Sends `bytes` in one write and reads the whole answer (until the server closes, or the
/// body is complete), as text.
async fn exchange(addr: &str, bytes: &[u8]) -> String {
    String::from_utf8_lossy(&exchange_bytes(addr, bytes).await).into_owned()
}

async fn exchange_bytes(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            // A keep-alive HTTP/1.1 answer with a body is complete at its length.
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                });
                if length.is_some_and(|length| length.trim().parse() == Ok(body.len())) {
                    break;
                }
            }
        }
    });
    read.await.expect("the server answered within 10 s");
    answer
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

#[test]
fn every_rejection_answers_with_its_status_headers_and_body() {
    run(async {
        let addr = serve().await;
        // (request, status line, a header line it must carry (lower case), body fragment)
        let cases = [
            (request("POST", "13", Some(KEY), ""), "HTTP/1.1 405", "allow: get", ""),
            (request("GET", "13", None, ""), "HTTP/1.1 400", "", "Sec-WebSocket-Key"),
            (
                request("GET", "13", Some("c2hvcnQ="), ""),
                "HTTP/1.1 400",
                "",
                "Sec-WebSocket-Key",
            ),
            (
                request("GET", "8", Some(KEY), ""),
                "HTTP/1.1 426",
                "sec-websocket-version: 13",
                "",
            ),
            (
                "GET / HTTP/1.1\r\nHost: test\r\n\r\n".to_owned(),
                "HTTP/1.1 400",
                "",
                "websocket",
            ),
            (
                request("GET", "13", Some(KEY), &"X-Filler: 1\r\n".repeat(20)),
                "HTTP/1.1 431",
                "",
                "",
            ),
            (
                request("GET", "13", Some(KEY), "Origin: https://evil.example\r\n"),
                "HTTP/1.1 403",
                "",
                "cross-origin",
            ),
        ];
        for (request, status, header, fragment) in cases {
            let answer = exchange(&addr, request.as_bytes()).await;
            let first_line = request.lines().next().unwrap();
            assert!(status_line(&answer).starts_with(status), "{first_line}: {answer}");
            assert!(
                answer.to_ascii_lowercase().contains(header),
                "{first_line}: no {header:?} in {answer}"
            );
            assert!(
                !body(&answer).is_empty(),
                "{first_line}: the rejection has a body: {answer}"
            );
            assert!(body(&answer).len() < 200, "{first_line}: a short body: {answer}");
            assert!(
                body(&answer).contains(fragment),
                "{first_line}: {fragment:?} in {answer}"
            );
            assert!(!answer.contains("101 Switching"), "{answer}");
        }
    });
}

/// A client's masked frame (mask 0: the payload reads as is), FIN set.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn frames_sent_with_the_request_head_are_delivered_under_axum_serve() {
    run(async { frames_sent_with_the_request_head_are_delivered(serve().await).await });
}

#[test]
fn frames_sent_with_the_request_head_are_delivered_under_hyper_http1() {
    run(async { frames_sent_with_the_request_head_are_delivered(serve_with_hyper_http1().await).await });
}

async fn frames_sent_with_the_request_head_are_delivered(addr: String) {
    {
        let mut bytes = request("GET", "13", Some(KEY), "Sec-WebSocket-Protocol: superchat\r\n").into_bytes();
        bytes.extend(client_frame(0x1, b"in the head's packet"));
        bytes.extend(client_frame(0x2, b"\x00\x01 second"));
        bytes.extend(client_frame(0x8, b"\x03\xe8bye"));
        let answer = exchange_bytes(&addr, &bytes).await;
        let head_end = answer.windows(4).position(|window| window == b"\r\n\r\n").unwrap() + 4;
        let (head, frames) = answer.split_at(head_end);
        let answer = String::from_utf8_lossy(head);
        assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(
            lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{answer}"
        );
        assert!(lower.contains("sec-websocket-protocol: superchat"), "{answer}");
        let mut expected = b"\x81\x14in the head's packet".to_vec();
        expected.extend(b"\x82\x09\x00\x01 second");
        expected.extend(b"\x88\x02\x03\xe8");
        assert_eq!(frames, expected, "the echoes, then the close echo");
    }
}

#[test]
fn deflate_is_negotiated_when_offered_and_not_otherwise() {
    run(async {
        let addr = serve().await;
        let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
        let mut bytes = request("GET", "13", Some(KEY), offer).into_bytes();
        bytes.extend(client_frame(0x8, b"\x03\xe8"));
        let answer = exchange(&addr, &bytes).await.to_ascii_lowercase();
        assert!(
            answer.contains("sec-websocket-extensions: permessage-deflate"),
            "{answer}"
        );

        let mut bytes = request("GET", "13", Some(KEY), "").into_bytes();
        bytes.extend(client_frame(0x8, b"\x03\xe8"));
        let answer = exchange(&addr, &bytes).await.to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 101"), "{answer}");
        assert!(!answer.contains("sec-websocket-extensions"), "{answer}");
    });
}

#[test]
fn the_axum_chat_example_serves_its_page_and_rooms() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(chat::serve(listener, chat::room::Chat::new(None).unwrap()));
        let page = exchange(&addr, b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").await;
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("<html"), "{page}");
        let bad = exchange(
            &addr,
            request("GET", "13", Some(KEY), "")
                .replace("GET / ", "GET /ws?room=a%20b ")
                .as_bytes(),
        )
        .await;
        assert!(status_line(&bad).starts_with("HTTP/1.1 400"), "{bad}");

        let url = format!("ws://{addr}/ws?room=axum");
        let (mut alice, response) = wsflow_tokio::ClientBuilder::new(&url)
            .config(common::deflate_config())
            .connect()
            .await
            .unwrap();
        let extensions = response.headers().get("sec-websocket-extensions").unwrap_or_default();
        assert!(extensions.starts_with("permessage-deflate"), "{extensions:?}");
        alice.send_text("alice").await.unwrap();
        let (mut bob, _) = wsflow_tokio::connect(&url).await.unwrap();
        bob.send_text("bob").await.unwrap();
        wait_for(&mut alice, r#""type":"join","nick":"bob""#).await;
        alice.send_text("hi bob").await.unwrap();
        // Not split: a send while received events wait is written by the next `recv`, or
        // by `flush`; the test waits on another socket next.
        alice.flush().await.unwrap();
        wait_for(&mut bob, r#""nick":"alice","text":"hi bob""#).await;
        bob.close(CloseCode::NORMAL, "").await.unwrap();
        while bob.recv().await.unwrap().is_some() {}
        wait_for(&mut alice, r#""type":"leave","nick":"bob""#).await;
    });
}

async fn wait_for(websocket: &mut wsflow_tokio::WebSocket<wsflow_tokio::MaybeTlsStream>, expected: &str) {
    loop {
        match websocket.recv_message().await.unwrap() {
            Some(Message::Text(event)) if event.contains(expected) => return,
            Some(_) => {}
            None => panic!("closed before {expected:?}"),
        }
    }
}
