//! # wsflow-smol: WebSockets on smol and any futures-io runtime
//!
//! Drives the sans-IO [`wsflow`] engine over `futures_io::AsyncRead + AsyncWrite` streams
//! with `async-io` timers: it runs on smol, and on any executor when the stream is a
//! futures-io one (the timers need the `async-io` reactor, which runs on its own thread
//! when no smol runtime drives it).
//!
//! - Client: [`connect`] or [`ClientBuilder`] (TCP, TLS for `wss://` with the `rustls`
//!   feature, or [`connect_on`](ClientBuilder::connect_on) any stream).
//! - Server: [`accept`] or [`accept_with`] on an accepted stream, with a hook that accepts,
//!   rejects, or answers plain HTTP requests.
//! - [`WebSocket`]: `send*` / `recv*` / `close`, a `Stream` and `Sink` of messages, and
//!   [`split`](WebSocket::split) halves for two tasks.
//!
//! Keepalive, pong, close and handshake timeouts come from the core's [`Config`].
//!
//! ```no_run
//! use wsflow_smol::{Message, CloseCode};
//!
//! smol::block_on(async {
//!     // Server: echo every message.
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:9002").await?;
//!     smol::spawn(async move {
//!         let (stream, _) = listener.accept().await?;
//!         let mut socket = wsflow_smol::accept(stream).await?;
//!         while let Some(message) = socket.recv_message().await? {
//!             socket.send(message).await?;
//!         }
//!         Ok::<(), wsflow_smol::Error>(())
//!     })
//!     .detach();
//!
//!     // Client.
//!     let (mut socket, _response) = wsflow_smol::connect("ws://127.0.0.1:9002/").await?;
//!     socket.send_text("hello").await?;
//!     assert_eq!(socket.recv_message().await?, Some(Message::text("hello")));
//!     socket.close(CloseCode::NORMAL, "bye").await?;
//!     while socket.recv().await?.is_some() {}
//!     Ok::<(), wsflow_smol::Error>(())
//! })?;
//! # Ok::<(), wsflow_smol::Error>(())
//! ```
#![forbid(unsafe_code)]

mod client;
mod io;
mod split;
#[cfg(feature = "rustls")]
mod tls;
mod websocket;

use std::sync::Arc;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use wsflow::{HandshakeError, HandshakeEvent, ServerHandshake};

pub use client::{connect, ClientBuilder, MaybeTlsStream};
pub use split::{WsReceiver, WsSender};
pub use websocket::{WebSocket, DEFAULT_HIGH_WATER_MARK};
pub use wsflow;
pub use wsflow::{Accept, CloseCode, Config, Decision, Event, Message, Request, Response};
#[cfg(feature = "rustls")]
pub use {futures_rustls, futures_rustls::rustls};

/// Everything that can go wrong, over `std::io` streams.
pub type Error = wsflow::Error<std::io::Error>;

/// The outcome of [`accept_with`].
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Returned once and destructured at once: boxing would only cost.
pub enum Accepted<S> {
    /// The hook accepted the upgrade.
    WebSocket(WebSocket<S>, Request),
    /// The hook answered with an HTTP response, which was sent; the stream was shut down
    /// for writing and dropped.
    Responded(Request),
}

/// Accepts a WebSocket upgrade on `stream` with the default configuration, whatever the
/// request.
///
/// # Errors
/// [`Error::Handshake`] when the request is not a valid upgrade (the matching HTTP error
/// was sent), [`Error::Send`] for a plain HTTP request, [`Error::Transport`] when the stream fails.
///
/// Not cancel safe: dropping the future abandons the handshake and the stream.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match accept_with(stream, Arc::default(), |_| Decision::Accept(Accept::new())).await? {
        Accepted::WebSocket(socket, _request) => Ok(socket),
        // The core answered a plain HTTP request with 426.
        Accepted::Responded(_) => Err(HandshakeError::BadHeader("Upgrade: websocket").into()),
    }
}

/// Reads the opening request from `stream` and lets `hook` decide: accept the upgrade
/// (choosing a subprotocol and extra headers), or answer with an HTTP response (a
/// rejection, or a page for a plain HTTP request, see [`Request::is_websocket`]).
///
/// ```no_run
/// use std::sync::Arc;
/// use wsflow_smol::{Accept, Accepted, Config, Decision, Response};
///
/// # async fn serve(stream: smol::net::TcpStream) -> Result<(), wsflow_smol::Error> {
/// let accepted = wsflow_smol::accept_with(stream, Arc::new(Config::default()), |request| {
///     match request.path() {
///         "/chat" if request.subprotocols().any(|p| p == "chat") => {
///             Decision::Accept(Accept::new().subprotocol("chat"))
///         }
///         _ => Decision::Respond(Response::new(404).with_body("not found")),
///     }
/// })
/// .await?;
/// if let Accepted::WebSocket(mut socket, _request) = accepted {
///     socket.send_text("welcome").await?;
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Handshake`] when the request is not a valid upgrade or does not arrive within
/// [`Config::handshake_timeout`] (the matching HTTP error was sent); [`Error::Send`] when
/// the decision cannot be carried out (e.g. a subprotocol the client did not offer; the
/// client gets a 500 response); [`Error::Transport`] when the stream fails.
///
/// Not cancel safe: dropping the future abandons the handshake and the stream.
pub async fn accept_with<S>(
    stream: S,
    config: Arc<Config>,
    hook: impl FnOnce(&Request) -> Decision,
) -> Result<Accepted<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The handshake's state is bigger than the connection it yields: boxed, it does not
    // set the size of the caller's future (an idle connection's memory) for its whole life.
    Box::pin(handshake_then_decide(stream, config, hook)).await
}

async fn handshake_then_decide<S>(
    mut stream: S,
    config: Arc<Config>,
    hook: impl FnOnce(&Request) -> Decision,
) -> Result<Accepted<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut handshake = ServerHandshake::new(config, Instant::now());
    let mut io = io::Io::new();
    let event = io
        .drive_until(&mut stream, &mut handshake, ServerHandshake::poll_event)
        .await?;
    let request = match event {
        HandshakeEvent::Request(request) => request,
        HandshakeEvent::Failed(error) => {
            io.flush(&mut stream, &mut handshake).await?;
            return Err(Error::Handshake(error));
        }
        other => unreachable!("a server handshake reported {other:?}"),
    };
    let decided = handshake.decide(Instant::now(), hook(&request));
    if let Ok(Some(connection)) = decided {
        return Ok(Accepted::WebSocket(
            WebSocket::from_parts(stream, connection, io),
            request,
        ));
    }
    // A response: the hook's, or the core's 500 for a decision it could not carry out.
    io.flush(&mut stream, &mut handshake).await?;
    decided?;
    Ok(Accepted::Responded(request))
}
