#![cfg_attr(docsrs, feature(doc_cfg))]
//! # wsflow-smol: WebSockets on smol and any futures-io runtime
//!
//! Drives the sans-IO [`wsflow`] engine over `futures_io::AsyncRead + AsyncWrite` streams
//! with `async-io` timers: it runs on smol, and on any executor when the stream is a
//! futures-io one (the timers need the `async-io` reactor, which runs on its own thread
//! when no smol runtime drives it). Everything but that glue ([`SmolIo`], [`Smol`], TCP/TLS
//! connect) is [`wsflow_io`]'s, shared with `wsflow-tokio`.
//!
//! - Client: [`connect`] or [`ClientBuilder`] (TCP, TLS for `wss://` with the `rustls`
//!   feature, or [`connect_on`](wsflow_io::ClientBuilder::connect_on) any stream).
//! - Server: [`accept`] or [`accept_with`] on an accepted stream, with a hook that accepts,
//!   rejects, or answers plain HTTP requests.
//! - [`WebSocket`]: `send*` / `recv*` / `close`, a `Stream` and `Sink` of messages, and
//!   [`split`](wsflow_io::WebSocket::split) halves for two tasks.
//!
//! Keepalive, pong, close and handshake timeouts come from the core's [`Config`]. Feature
//! `tracing`: a span per connection and events for its handshake and its end (see
//! [`wsflow_io::trace`]).
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

mod stream;

use std::future::Future;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};
use wsflow_io::{AsyncStream, ConnectOn, Connecting, Connector, OpenTransport, OpenedTransport, Runtime, Timer};

pub use stream::MaybeTlsStream;
pub use wsflow;
pub use wsflow_io;
pub use wsflow_io::hub;
pub use wsflow_io::{
    Accept, CloseCode, CloseFrame, CloseReason, Closed, Config, Decision, Error, Event, Message, MessageKind,
    PreparedMessage, Request, Response, Utf8Bytes, DEFAULT_HIGH_WATER_MARK,
};
#[cfg(feature = "rustls")]
pub use {futures_rustls, futures_rustls::rustls};

/// A WebSocket connection over a futures-io stream `S`: see [`wsflow_io::WebSocket`].
pub type WebSocket<S> = wsflow_io::WebSocket<SmolIo<S>>;
/// The sending half of a [`WebSocket`]: see [`wsflow_io::WsSender`].
pub type WsSender<S> = wsflow_io::WsSender<SmolIo<S>>;
/// The receiving half of a [`WebSocket`]: see [`wsflow_io::WsReceiver`].
pub type WsReceiver<S> = wsflow_io::WsReceiver<SmolIo<S>>;
/// What [`accept_with`] did with a request.
pub type Accepted<S> = wsflow_io::Accepted<WebSocket<S>>;
/// Opens client connections over smol: see [`wsflow_io::ClientBuilder`].
///
/// ```no_run
/// # smol::block_on(async {
/// let (mut socket, response) = wsflow_smol::ClientBuilder::new("ws://127.0.0.1:9002/chat")
///     .subprotocol("chat")
///     .header("Authorization", "Bearer secret")
///     .connect()
///     .await?;
/// assert_eq!(response.subprotocol(), Some("chat"));
/// socket.send_text("hello").await?;
/// # Ok::<(), wsflow_smol::Error>(()) });
/// ```
pub type ClientBuilder = wsflow_io::ClientBuilder<Smol>;

/// Accepts any WebSocket upgrade on `stream` with [`Config::default`]: see
/// [`wsflow_io::accept`].
///
/// # Errors
/// As [`wsflow_io::accept`].
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>, Error> {
    wsflow_io::accept(SmolIo::new(stream)).await
}

/// Reads the opening request from `stream` and lets `hook` decide: see
/// [`wsflow_io::accept_with`].
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
/// As [`wsflow_io::accept_with`].
pub async fn accept_with<S, F>(stream: S, config: Arc<Config>, hook: F) -> Result<Accepted<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Decision,
{
    wsflow_io::accept_with(SmolIo::new(stream), config, hook).await
}

/// Connects to a `ws://` or `wss://` URL with [`Config::default`]: shorthand for
/// [`ClientBuilder::new(url).connect()`](wsflow_io::ClientBuilder::connect).
///
/// # Errors
/// As [`ClientBuilder::connect`](wsflow_io::ClientBuilder::connect).
pub async fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    ClientBuilder::new(url).connect().await
}

/// The smol (async-io) runtime for [`wsflow_io`]: the system clock, `async_io::Timer`, and
/// how a client connects.
#[derive(Clone, Copy, Debug)]
pub struct Smol;

impl Runtime for Smol {
    type Timer = SmolTimer;

    fn now() -> Instant {
        Instant::now()
    }

    fn timer(deadline: Instant) -> SmolTimer {
        SmolTimer(async_io::Timer::at(deadline))
    }
}

/// An `async_io::Timer` as a [`wsflow_io::Timer`].
#[derive(Debug)]
pub struct SmolTimer(async_io::Timer);

impl Timer for SmolTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl Connector for Smol {
    type Connecting = Connecting<SmolIo<MaybeTlsStream>>;

    fn connect(builder: ClientBuilder) -> Self::Connecting {
        Box::pin(async move {
            let opened = Self::open_transport(&builder, &[]).await?;
            wsflow_io::connect_on(builder.read_ahead(opened.read_ahead), opened.stream).await
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ConnectOn<S> for Smol {
    type Connecting = Connecting<SmolIo<S>>;

    fn connect_on(builder: ClientBuilder, stream: S) -> Self::Connecting {
        Box::pin(wsflow_io::connect_on(builder, SmolIo::new(stream)))
    }
}

impl OpenTransport for Smol {
    type Stream = SmolIo<MaybeTlsStream>;

    async fn open_transport(builder: &ClientBuilder, alpn: &[&[u8]]) -> Result<OpenedTransport<Self::Stream>, Error> {
        let request = builder.request()?;
        let mut route = builder.route()?;
        let mut tcp = TcpStream::connect(route.address())
            .await
            .map_err(|error| route.unreachable(error))?;
        tcp.set_nodelay(true)?;
        if let Some(target) = route.to_resolve() {
            let addresses = async_net::resolve(target).await?;
            route.resolved(addresses)?;
        }
        let read_ahead = wsflow_io::tunnel(&route, SmolIo::new(&mut tcp)).await?;
        let opened = |stream, alpn| OpenedTransport {
            stream: SmolIo::new(stream),
            read_ahead,
            alpn,
        };
        if !request.is_secure() {
            return Ok(opened(MaybeTlsStream::Plain(tcp), None));
        }
        #[cfg(feature = "rustls")]
        {
            let name = wsflow_io::server_name(request.host_unbracketed())?;
            let connector = futures_rustls::TlsConnector::from(builder.tls_client_config(alpn)?);
            let tls = connector.connect(name, tcp).await?;
            let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            Ok(opened(MaybeTlsStream::Rustls(Box::new(tls)), chosen))
        }
        #[cfg(not(feature = "rustls"))]
        {
            let _ = alpn;
            Err(ClientBuilder::tls_unsupported("wsflow-smol"))
        }
    }
}

/// A futures-io `AsyncRead + AsyncWrite` stream as a [`wsflow_io::AsyncStream`]; derefs to it.
#[derive(Debug)]
pub struct SmolIo<S>(S);

impl<S> SmolIo<S> {
    /// Wraps `stream`.
    pub fn new(stream: S) -> Self {
        Self(stream)
    }

    /// The stream.
    pub fn into_inner(self) -> S {
        self.0
    }
}

impl<S> Deref for SmolIo<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S> DerefMut for SmolIo<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.0
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncStream for SmolIo<S> {
    type Runtime = Smol;

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
