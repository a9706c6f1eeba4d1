//! Echoes every text and binary message back unchanged, on any path, as an axum app (the
//! Autobahn server suite runs against it). permessage-deflate is accepted when a client
//! offers it; the subprotocols `chat` and `superchat` are chosen when offered. A text
//! message `stop-listening` stops accepting new connections; the process exits when the
//! current ones are done.
//!
//! It speaks HTTP/1.1 and HTTP/2 on the same port (hyper-util's auto builder: h2c with
//! prior knowledge, `SETTINGS_ENABLE_CONNECT_PROTOCOL` advertised), so a WebSocket arrives
//! either as a `GET` upgrade or as an extended `CONNECT` (RFC 8441), several per HTTP/2
//! connection; the handler is the same. Each HTTP/2 stream may hold 256 KiB of unread
//! data and the connection 16 MiB, so one WebSocket whose reader lags does not stop the
//! others (hyper's defaults are 1 MiB for both).
//!
//! `cargo run -p wsflow-axum --example echo-server -- [ADDR] [--tls CERT.pem KEY.pem]`
//! (default 127.0.0.1:9002): with `--tls`, TLS only, with ALPN `h2` and `http/1.1`.

use std::io;
use std::sync::{Arc, LazyLock};

use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use wsflow_axum::wsflow::DeflateConfig;
use wsflow_axum::{Config, Message, WebSocket, WebSocketUpgrade};
use wsflow_tokio::tokio_rustls::TlsAcceptor;

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: [&str; 2] = ["chat", "superchat"];

static CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    Arc::new(config)
});

#[tokio::main]
async fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1).collect::<Vec<_>>();
    let tls = match args.iter().position(|arg| arg == "--tls") {
        Some(at) if args.len() >= at + 3 => {
            let paths: Vec<String> = args.drain(at..at + 3).skip(1).collect();
            Some(tls_acceptor(&paths[0], &paths[1])?)
        }
        Some(_) => return Err(io::Error::other("--tls takes CERT.pem KEY.pem")),
        None => None,
    };
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr).await?;
    let scheme = if tls.is_some() {
        "TLS, h2 and http/1.1"
    } else {
        "HTTP/1.1 and h2c"
    };
    println!("echo-server (axum): listening on {} ({scheme})", listener.local_addr()?);
    let stop_listening = Arc::new(Notify::new());
    // Every connection holds a sender: `recv` returns `None` once all are done.
    let (open, mut all_done) = mpsc::channel::<()>(1);
    let app = Router::new().fallback({
        let stop_listening = stop_listening.clone();
        move |upgrade: WebSocketUpgrade| async move {
            let (stop_listening, open) = (stop_listening.clone(), open.clone());
            handle(upgrade, stop_listening, open)
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http2()
        .enable_connect_protocol()
        .initial_stream_window_size(256 << 10)
        .initial_connection_window_size(16 << 20);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            () = stop_listening.notified() => break,
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve(tcp, tls.clone(), builder.clone(), app.clone()));
    }
    // Close the listening socket at once: new connections are refused, not left in the backlog.
    drop((listener, app));
    println!("echo-server (axum): stopped listening, waiting for the open connections");
    while all_done.recv().await.is_some() {}
    Ok(())
}

/// Serves one connection: HTTP/1.1 or HTTP/2 (by its preface, or by ALPN over TLS).
async fn serve(tcp: TcpStream, tls: Option<TlsAcceptor>, builder: Builder<TokioExecutor>, app: Router) {
    let service = TowerToHyperService::new(app);
    let served = match tls {
        None => builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).await,
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(stream) => {
                builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await
            }
            Err(error) => return eprintln!("echo-server (axum): TLS: {error}"),
        },
    };
    if let Err(error) = served {
        eprintln!("echo-server (axum): {error}");
    }
}

/// A TLS acceptor for the certificate chain and key in PEM files, offering `h2` then
/// `http/1.1` by ALPN.
fn tls_acceptor(cert: &str, key: &str) -> io::Result<TlsAcceptor> {
    use wsflow_tokio::tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(io::Error::other)?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn handle(upgrade: WebSocketUpgrade, stop_listening: Arc<Notify>, open: mpsc::Sender<()>) -> Response {
    upgrade
        .config(CONFIG.clone())
        .protocols(SUBPROTOCOLS)
        .on_upgrade(move |socket| async move {
            if let Err(error) = echo(socket, &stop_listening).await {
                eprintln!("echo-server (axum): {error}");
            }
            drop(open);
        })
}

async fn echo(mut socket: WebSocket, stop_listening: &Notify) -> Result<(), wsflow_axum::Error> {
    while let Some(message) = socket.recv_message().await? {
        if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
            stop_listening.notify_one();
        }
        socket.send(message).await?;
    }
    Ok(())
}
