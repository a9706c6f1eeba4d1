//! A plain hyper 1.x server that upgrades to WebSocket on `/` and echoes every text and
//! binary message back, with permessage-deflate accepted when offered and the subprotocols
//! `chat` and `superchat` chosen when offered. Any other request gets a short text answer.
//! A text message `stop-listening` stops accepting new connections; the process exits
//! when the current ones are done.
//!
//! It shows the way in from any HTTP server: the core's `ServerNegotiation` checks the head
//! hyper parsed and gives the 101 headers and a ready `Connection`, and
//! `WebSocket::from_upgraded` adopts the TCP stream hyper hands back, with the bytes hyper
//! read past the head (a client's first frames may share the packet with the request).
//!
//! It speaks HTTP/1.1 and HTTP/2 on the same port (hyper-util's auto builder: h2c with
//! prior knowledge, `SETTINGS_ENABLE_CONNECT_PROTOCOL` advertised), so a WebSocket arrives
//! either as a `GET` upgrade or as an extended `CONNECT` (RFC 8441), several per HTTP/2
//! connection: the `:protocol` pseudo-header (hyper's `hyper::ext::Protocol`) goes to the
//! negotiation, which then answers `200`, and the upgraded stream is hyper's own (one
//! HTTP/2 stream) instead of the TCP stream. Each HTTP/2 stream may hold 256 KiB of unread
//! data and the connection 16 MiB (hyper's defaults are 1 MiB for both).
//!
//! `cargo run -p wsflow-tokio --example hyper-echo-server -- [ADDR]` (default 127.0.0.1:9002)

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo as HyperIo};
use hyper_util::server::conn::auto::{self, Builder};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use wsflow_tokio::wsflow::{DeflateConfig, ServerNegotiation};
use wsflow_tokio::wsflow_io::Runtime as _;
use wsflow_tokio::{Accept, Config, Message, Request, Tokio, TokioIo, WebSocket};

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: &[&str] = &["chat", "superchat"];

static CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
});

type HttpResponse = hyper::Response<Full<Bytes>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("hyper-echo-server: listening on {}", listener.local_addr()?);
    let stop_listening = Arc::new(Notify::new());
    // Every connection holds a sender: `recv` returns `None` once all are done.
    let (open, mut all_done) = mpsc::channel::<()>(1);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http2()
        .enable_connect_protocol()
        .initial_stream_window_size(256 << 10)
        .initial_connection_window_size(16 << 20);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = stop_listening.notified() => break,
        };
        tcp.set_nodelay(true)?;
        let (stop_listening, open, builder) = (stop_listening.clone(), open.clone(), builder.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (stop_listening, open) = (stop_listening.clone(), open.clone());
                async move { Ok::<_, Infallible>(upgrade(request, stop_listening, open)) }
            });
            let served = builder.serve_connection_with_upgrades(HyperIo::new(tcp), service).await;
            if let Err(error) = served {
                eprintln!("hyper-echo-server: {peer}: {error}");
            }
        });
    }
    drop((listener, open));
    println!("hyper-echo-server: stopped listening, waiting for the open connections");
    while all_done.recv().await.is_some() {}
    Ok(())
}

/// Answers one request: the 101 and a task that echoes on the upgraded stream, or why not.
fn upgrade(mut request: hyper::Request<Incoming>, stop_listening: Arc<Notify>, open: mpsc::Sender<()>) -> HttpResponse {
    if request.uri().path() != "/" {
        return text(404, "not found: the WebSocket is at /\n");
    }
    let mut head = Request::from(&request);
    if let Some(protocol) = request.extensions().get::<hyper::ext::Protocol>() {
        head = head.with_protocol(Some(protocol.as_str()));
    }
    let negotiation = match ServerNegotiation::new(CONFIG.clone(), head) {
        Ok(negotiation) => negotiation,
        Err(rejection) => return rejection.to_http().map(|body| Full::new(Bytes::from(body))),
    };
    let accept = Accept::new().subprotocol_from(negotiation.request(), SUBPROTOCOLS);
    let negotiated = match negotiation.accept(Tokio::now(), accept) {
        Ok(negotiated) => negotiated,
        Err(error) => return text(500, &format!("{error}\n")),
    };
    let response = negotiated.to_http().map(|()| Full::default());
    let connection = negotiated.into_connection();
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => return eprintln!("hyper-echo-server: upgrade failed: {error}"),
        };
        // Over HTTP/1.1 the TCP stream hyper served (`TokioIo<TcpStream>`, inside the auto
        // builder's wrapper), with the bytes read past the head; over HTTP/2 one stream of
        // the connection, through hyper.
        let echoed = match auto::upgrade::downcast::<HyperIo<TcpStream>>(upgraded) {
            Ok(parts) => {
                let socket = WebSocket::from_upgraded(TokioIo::new(parts.io.into_inner()), connection, &parts.read_buf);
                echo(socket, &stop_listening).await
            }
            Err(upgraded) => {
                let socket = WebSocket::from_upgraded(TokioIo::new(HyperIo::new(upgraded)), connection, &[]);
                echo(socket, &stop_listening).await
            }
        };
        if let Err(error) = echoed {
            eprintln!("hyper-echo-server: {error}");
        }
        drop(open);
    });
    response
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: WebSocket<S>,
    stop_listening: &Notify,
) -> Result<(), wsflow_tokio::Error> {
    while let Some(message) = socket.recv_message().await? {
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            stop_listening.notify_one();
        }
        socket.send(message).await?;
    }
    Ok(())
}

fn text(status: u16, body: &str) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
}
