//! The echo servers, one per library, each the plain loop (read a message, send it back)
//! with the library's defaults. `loadtest` runs each in a process of its own
//! (`loadtest --serve NAME`), so its CPU time and memory can be read from /proc.

use std::future::Future;
use std::io::Write;
use std::net::TcpListener as StdListener;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Every server, in the order of the tables: wsflow's adapters, then the anchors.
pub const ALL: [&str; 6] = [
    "wsflow-tokio",
    "wsflow-smol",
    "wsflow-blocking",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];

/// Binds a loopback port, prints it on stdout for `loadtest`, and serves until killed.
pub fn serve(name: &str) {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    match name {
        "wsflow-tokio" => serve_tokio(listener, wsflow_tokio_echo),
        "wsflow-smol" => serve_smol(listener),
        "wsflow-blocking" => serve_blocking(listener),
        "tokio-tungstenite" => serve_tokio(listener, tokio_tungstenite_echo),
        "fastwebsockets" => serve_tokio(listener, fastwebsockets_echo),
        "tokio-websockets" => serve_tokio(listener, tokio_websockets_echo),
        other => panic!("unknown server {other}; one of {ALL:?}"),
    }
}

/// A task per connection on tokio's default (multi-threaded) runtime, as `#[tokio::main]`.
fn serve_tokio<F: Future<Output = Result> + Send + 'static>(listener: StdListener, echo: fn(TcpStream) -> F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let _ = echo(tcp).await;
            });
        }
    });
}

async fn wsflow_tokio_echo(tcp: TcpStream) -> Result {
    let mut websocket = wsflow_tokio::accept(tcp).await?;
    while let Some(message) = websocket.recv_message().await? {
        websocket.send(message).await?;
    }
    Ok(())
}

async fn tokio_tungstenite_echo(tcp: TcpStream) -> Result {
    let mut websocket = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(message) = websocket.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            websocket.send(message).await?;
        }
    }
    Ok(())
}

async fn fastwebsockets_echo(mut tcp: TcpStream) -> Result {
    use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
    // fastwebsockets upgrades through hyper; this answers the same request by hand.
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1024];
        let read = tcp.read(&mut byte).await?;
        if read == 0 {
            return Ok(());
        }
        request.extend_from_slice(&byte[..read]);
    }
    let request = String::from_utf8(request)?;
    let key = request
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
        .ok_or("no key")?;
    let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await?;
    let mut websocket = FragmentCollector::new(WebSocket::after_handshake(tcp, Role::Server));
    loop {
        let frame = websocket.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => websocket.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn tokio_websockets_echo(tcp: TcpStream) -> Result {
    let (_request, mut websocket) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
    while let Some(message) = websocket.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            websocket.send(message).await?;
        }
    }
    Ok(())
}

/// As wsflow-smol's echo-server example: `smol::block_on` accepting, `smol::spawn` per connection.
fn serve_smol(listener: StdListener) {
    smol::block_on(async {
        let listener = smol::net::TcpListener::try_from(listener).unwrap();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            smol::spawn(async move {
                let echo = async {
                    let mut websocket = wsflow_smol::accept(tcp).await?;
                    while let Some(message) = websocket.recv_message().await? {
                        websocket.send(message).await?;
                    }
                    Ok::<_, wsflow_smol::Error>(())
                };
                let _ = echo.await;
            })
            .detach();
        }
    });
}

/// As wsflow-blocking's echo-server example: a thread per connection.
fn serve_blocking(listener: StdListener) {
    for tcp in listener.incoming() {
        let tcp = tcp.unwrap();
        tcp.set_nodelay(true).unwrap();
        std::thread::spawn(move || {
            let echo = || -> std::result::Result<(), wsflow_blocking::Error> {
                let mut websocket = wsflow_blocking::accept(tcp)?;
                while let Some(message) = websocket.recv_message()? {
                    websocket.send(message)?;
                }
                Ok(())
            };
            let _ = echo();
        });
    }
}
