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
//! `cargo run -p wsflow-tokio --example hyper-echo-server -- [ADDR]` (default 127.0.0.1:9002)

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo as HyperIo;
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
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = stop_listening.notified() => break,
        };
        tcp.set_nodelay(true)?;
        let (stop_listening, open) = (stop_listening.clone(), open.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (stop_listening, open) = (stop_listening.clone(), open.clone());
                async move { Ok::<_, Infallible>(upgrade(request, stop_listening, open)) }
            });
            let served = http1::Builder::new()
                .serve_connection(HyperIo::new(tcp), service)
                .with_upgrades()
                .await;
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
    let negotiation = match ServerNegotiation::new(CONFIG.clone(), Request::from(&request)) {
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
        // This server runs hyper over `TokioIo<TcpStream>`, so the downcast succeeds.
        let Ok(parts) = upgraded.downcast::<HyperIo<TcpStream>>() else {
            return eprintln!("hyper-echo-server: the upgraded stream is not a TCP stream");
        };
        let socket = WebSocket::from_upgraded(TokioIo::new(parts.io.into_inner()), connection, &parts.read_buf);
        if let Err(error) = echo(socket, &stop_listening).await {
            eprintln!("hyper-echo-server: {error}");
        }
        drop(open);
    });
    response
}

async fn echo(mut socket: WebSocket<TcpStream>, stop_listening: &Notify) -> Result<(), wsflow_tokio::Error> {
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
