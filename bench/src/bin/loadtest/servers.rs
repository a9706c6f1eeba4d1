//! The echo servers, one per library, each the plain loop (read a message, send it back)
//! with the library's defaults. `loadtest` runs each in a process of its own
//! (`loadtest --serve NAME`), so its CPU time and memory can be read from /proc.

use std::future::Future;
use std::io::Write;
use std::net::TcpListener as StdListener;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Every server, in the order of the tables: wsflow's adapters, the anchors, axum's own
/// `ws` (the reference for `wsflow-axum`), then the floor (no library: see `floor_echo`).
pub const ALL: [&str; 9] = [
    "wsflow-tokio",
    "wsflow-smol",
    "wsflow-blocking",
    "wsflow-axum",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "axum-ws",
    FLOOR,
];

/// The anchors: the best of them in each column is what every other row is compared with.
pub const ANCHORS: [&str; 3] = ["tokio-tungstenite", "fastwebsockets", "tokio-websockets"];

/// The server that is neither wsflow nor an anchor: the least any tokio server does.
pub const FLOOR: &str = "floor";

/// Servers named `example:LIBRARY` are not served by `loadtest` but are the library's
/// built `echo-server` example, run as a user runs it (`ADDR` = 127.0.0.1:0): its whole
/// structure measured, not the plain loop. Build it first, with the same target directory:
/// `cargo build --release -p wsflow-tokio --example echo-server`.
pub const EXAMPLE_PREFIX: &str = "example:";

/// The examples `example:LIBRARY` can run (each prints `... listening on ADDR:PORT` on
/// stdout first): the crate, and its example's source (the adapters' examples share the
/// name `echo-server`, so the last one built owns `examples/echo-server`: the one of this
/// crate is found by its source in the `.d` files beside the binaries).
pub const EXAMPLES: [(&str, &str); 1] = [("wsflow-tokio", "adapters/tokio/examples/echo-server.rs")];

/// Servers named `bin:PATH` are the binary at PATH, run as an example is (e.g. a copy of
/// an example built from another commit, to compare the two in one run).
pub const BINARY_PREFIX: &str = "bin:";

/// The `echo-server` example binary of `library`, looked up in `examples/` beside this
/// binary (`target/release/loadtest`: the target directory the example was built with must
/// be the same).
pub fn example_binary(library: &str) -> Result<std::path::PathBuf> {
    let (_, source) = EXAMPLES
        .iter()
        .find(|(name, _)| *name == library)
        .ok_or_else(|| format!("no example server for {library}; one of {EXAMPLES:?}"))?;
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no directory")?.join("examples");
    let build = format!(
        "build it with `cargo build --release -p {library} --example echo-server` from the \
         repository root, with the same CARGO_TARGET_DIR as loadtest (its examples/ is {}), \
         or name the binary as a server bin:PATH",
        dir.display()
    );
    // `echo_server-HASH.d` names the example's source; the newest such binary is the one.
    let mut found: Option<(std::time::SystemTime, std::path::PathBuf)> = None;
    for entry in std::fs::read_dir(&dir).map_err(|error| format!("{}: {error}; {build}", dir.display()))? {
        let path = entry?.path();
        let is_dep_file = path.extension().is_some_and(|ext| ext == "d")
            && path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("echo_server-"));
        if !is_dep_file || !std::fs::read_to_string(&path)?.contains(source) {
            continue;
        }
        let binary = path.with_extension("");
        if let Ok(modified) = std::fs::metadata(&binary).and_then(|meta| meta.modified()) {
            if found.as_ref().is_none_or(|(newest, _)| modified > *newest) {
                found = Some((modified, binary));
            }
        }
    }
    let (_, binary) = found.ok_or_else(|| format!("the {library} echo-server example is not built: {build}"))?;
    eprintln!("loadtest: {EXAMPLE_PREFIX}{library} is {}", binary.display());
    Ok(binary)
}

/// Binds a loopback port, prints it on stdout for `loadtest`, and serves until killed.
pub fn serve(name: &str) {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    if name.starts_with("fanout:") {
        return super::fanout::serve(name, listener);
    }
    if name == "deflate:wsflow-tokio" {
        return super::deflate_echo::serve(listener);
    }
    if let Some(library) = name.strip_prefix("wss:") {
        let acceptor = tokio_rustls::TlsAcceptor::from(super::wss::configs().0.clone());
        return match library {
            "wsflow-tokio" => serve_tokio(listener, move |tcp| tls(acceptor.clone(), tcp, wsflow_tokio_echo)),
            "tokio-tungstenite" => serve_tokio(listener, move |tcp| tls(acceptor.clone(), tcp, tokio_tungstenite_echo)),
            other => panic!("no wss server for {other}"),
        };
    }
    match name {
        "wsflow-tokio" => serve_tokio(listener, wsflow_tokio_echo),
        "wsflow-smol" => serve_smol(listener),
        "wsflow-blocking" => serve_blocking(listener),
        "tokio-tungstenite" => serve_tokio(listener, tokio_tungstenite_echo),
        "fastwebsockets" => serve_tokio(listener, fastwebsockets_echo),
        "tokio-websockets" => serve_tokio(listener, tokio_websockets_echo),
        "wsflow-axum" => serve_axum(listener, axum::Router::new().fallback(wsflow_axum_upgrade)),
        "axum-ws" => serve_axum(listener, axum::Router::new().fallback(axum_ws_upgrade)),
        FLOOR => serve_tokio(listener, floor_echo),
        other => panic!("unknown server {other}; one of {ALL:?}"),
    }
}

/// A task per connection on tokio's default (multi-threaded) runtime, as `#[tokio::main]`.
/// The task is the connection's future itself: an `async move { let _ = echo.await; }`
/// around it would hold it twice (the captured future and the one awaited), about 1 KiB
/// more per idle wsflow connection, and as much more for every other server.
pub(crate) fn serve_tokio<F>(listener: StdListener, echo: impl Fn(TcpStream) -> F + Send + Sync + 'static)
where
    F: Future<Output = Result> + Send + 'static,
{
    on_tokio(listener, |listener| async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            tokio::spawn(echo(tcp));
        }
    });
}

/// Runs `serve` on the listener on tokio's default (multi-threaded) runtime.
fn on_tokio<F: Future<Output = ()>>(listener: StdListener, serve: impl FnOnce(TcpListener) -> F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        listener.set_nonblocking(true).unwrap();
        serve(TcpListener::from_std(listener).unwrap()).await;
    });
}

/// An axum app under `axum::serve` (`TCP_NODELAY` on every connection), on tokio's default
/// runtime.
fn serve_axum(listener: StdListener, app: axum::Router) {
    use axum::serve::ListenerExt;
    on_tokio(listener, |listener| async move {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}

async fn wsflow_axum_upgrade(upgrade: wsflow_axum::WebSocketUpgrade) -> axum::response::Response {
    upgrade.on_upgrade(|mut websocket| async move {
        while let Ok(Some(message)) = websocket.recv_message().await {
            if websocket.send(message).await.is_err() {
                break;
            }
        }
    })
}

async fn axum_ws_upgrade(upgrade: axum::extract::ws::WebSocketUpgrade) -> axum::response::Response {
    use axum::extract::ws::Message;
    upgrade.on_upgrade(|mut websocket| async move {
        while let Some(Ok(message)) = websocket.recv().await {
            if matches!(message, Message::Text(_) | Message::Binary(_)) && websocket.send(message).await.is_err() {
                break;
            }
        }
    })
}

/// The TLS handshake, then `echo` over the TLS stream.
async fn tls<F: Future<Output = Result>>(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    echo: impl FnOnce(tokio_rustls::server::TlsStream<TcpStream>) -> F,
) -> Result {
    echo(acceptor.accept(tcp).await?).await
}

async fn wsflow_tokio_echo<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(tcp: S) -> Result {
    let mut websocket = wsflow_tokio::accept(tcp).await?;
    while let Some(message) = websocket.recv_message().await? {
        websocket.send(message).await?;
    }
    Ok(())
}

async fn tokio_tungstenite_echo<S: AsyncRead + AsyncWrite + Unpin>(tcp: S) -> Result {
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

/// Not a library: the least a tokio server does to echo these frames. It reads as much
/// as the socket holds, answers every whole frame in the buffer with one write, and
/// skips all of RFC 6455 but framing and unmasking (no UTF-8 check, no limits, no
/// fragments, no control frames but close). Its CPU per message is the floor that the
/// kernel and tokio set for any server on this machine.
async fn floor_echo(mut tcp: TcpStream) -> Result {
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        if tcp.read_buf(&mut request).await? == 0 {
            return Ok(());
        }
    }
    // A valid 101, for the client benchmark's libraries (the load generator checks only the
    // status line); the handshake is not measured.
    let request = String::from_utf8_lossy(&request);
    let key = request
        .lines()
        .find_map(|line| {
            line.strip_prefix("Sec-WebSocket-Key: ")
                .or(line.strip_prefix("sec-websocket-key: "))
        })
        .ok_or("no key")?;
    let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await?;
    let (mut rx, mut tx) = (Vec::with_capacity(256 << 10), Vec::with_capacity(256 << 10));
    loop {
        if rx.capacity() - rx.len() < 64 << 10 {
            rx.reserve(64 << 10);
        }
        if tcp.read_buf(&mut rx).await? == 0 {
            return Ok(());
        }
        let mut start = 0;
        while let Some((opcode, mask, payload)) = floor_frame(&rx[start..]) {
            if opcode == 8 {
                return Ok(());
            }
            let payload = start + payload.start..start + payload.end;
            let len = payload.len();
            tx.push(0x80 | opcode);
            match len {
                0..=125 => tx.push(len as u8),
                126..=0xFFFF => tx.extend([126, (len >> 8) as u8, len as u8]),
                _ => tx.extend([127].into_iter().chain((len as u64).to_be_bytes())),
            }
            // Eight bytes at a time, so that the compiler vectorizes it.
            let mask = u64::from_ne_bytes([mask, mask].concat().try_into().unwrap());
            let mut words = rx[payload.clone()].chunks_exact(8);
            tx.extend(
                words
                    .by_ref()
                    .flat_map(|word| (u64::from_ne_bytes(word.try_into().unwrap()) ^ mask).to_ne_bytes()),
            );
            let tail = words.remainder();
            tx.extend(tail.iter().zip(mask.to_ne_bytes()).map(|(byte, mask)| byte ^ mask));
            start = payload.end;
        }
        rx.drain(..start);
        tcp.write_all(&tx).await?;
        tx.clear();
    }
}

/// The opcode, masking key and payload range of the masked frame at the start of `bytes`,
/// once it is all there.
pub(crate) fn floor_frame(bytes: &[u8]) -> Option<(u8, [u8; 4], std::ops::Range<usize>)> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)? & 0x7f);
    let (len, head) = match second {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().unwrap()) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().unwrap()) as usize, 10),
        len => (len as usize, 2),
    };
    let mask = bytes.get(head..head + 4)?.try_into().unwrap();
    let payload = head + 4..head + 4 + len;
    (bytes.len() >= payload.end).then_some((first & 0x0f, mask, payload))
}

/// As wsflow-smol's echo-server example: `smol::block_on` accepting, `smol::spawn` per connection.
fn serve_smol(listener: StdListener) {
    smol::block_on(async {
        let listener = smol::net::TcpListener::try_from(listener).unwrap();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            // The connection's future itself, as with tokio (see `serve_tokio`).
            smol::spawn(wsflow_smol_echo(tcp)).detach();
        }
    });
}

async fn wsflow_smol_echo(tcp: smol::net::TcpStream) -> std::result::Result<(), wsflow_smol::Error> {
    let mut websocket = wsflow_smol::accept(tcp).await?;
    while let Some(message) = websocket.recv_message().await? {
        websocket.send(message).await?;
    }
    Ok(())
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
