#![cfg_attr(docsrs, feature(doc_cfg))]
//! # wsflow-tokio: the wsflow WebSocket engine over tokio
//!
//! Drives the sans-IO [`wsflow`] core over any tokio `AsyncRead + AsyncWrite` stream: TCP,
//! TLS (feature `rustls`: `wss://` clients through tokio-rustls and the webpki-roots root
//! store, and [`tokio_rustls`] re-exported for servers), or anything else. All protocol
//! logic lives in the core and everything else in [`wsflow_io`]; this crate is the tokio
//! glue: the stream ([`TokioIo`]), the clock and timer ([`Tokio`]), and TCP/TLS connect.
//!
//! ```no_run
//! use wsflow_tokio::{Event, Message};
//!
//! # async fn run() -> Result<(), wsflow_tokio::Error> {
//! // Server: echo every message.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9002").await?;
//! let (tcp, _) = listener.accept().await?;
//! tcp.set_nodelay(true)?;
//! let mut websocket = wsflow_tokio::accept(tcp).await?;
//! while let Some(event) = websocket.recv().await? {
//!     if let Event::Message(message) = event {
//!         websocket.send(message).await?;
//!     }
//! }
//!
//! // Client.
//! let (mut websocket, _response) = wsflow_tokio::connect("ws://127.0.0.1:9002/").await?;
//! websocket.send(Message::text("hello")).await?;
//! let reply = websocket.recv_message().await?;
//! websocket.close(wsflow_tokio::CloseCode::NORMAL, "bye").await?;
//! while websocket.recv().await?.is_some() {} // until Event::Closed
//! # Ok(()) }
//! ```
//!
//! Time comes from tokio's clock (`tokio::time::Instant`), so `tokio::time::pause()`
//! drives every timeout of a connection in tests. The timers need a runtime with the time
//! driver enabled.
//!
//! Feature `tracing`: a span per connection and events for its handshake and its end
//! (close code, reason, protocol error, timeout): see [`wsflow_io::trace`].
//!
//! ## Cancel safety
//! As [`wsflow_io::WebSocket`]: every async method keeps its progress in the connection,
//! so `recv` and `recv_message` can be used in `tokio::select!`.
//!
//! ## Memory
//! A connection holds no read buffer (reads go to one 256 KiB buffer per thread, shared by
//! every connection polled on it), no write queue while idle, and a tokio `Sleep` only while
//! a deadline is armed, besides the core's own state: about 2.5 KiB per idle connection
//! with the task of a plain echo loop (see `bench/`).
#![forbid(unsafe_code)]

mod stream;

use std::future::Future;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use wsflow_io::{AsyncStream, ConnectOn, Connecting, Connector, OpenTransport, OpenedTransport, Runtime, Timer};

pub use stream::MaybeTlsStream;
#[cfg(feature = "rustls")]
pub use tokio_rustls;
pub use wsflow;
pub use wsflow_io;
pub use wsflow_io::hub;
pub use wsflow_io::{
    Accept, CloseCode, CloseFrame, CloseReason, Closed, Config, Decision, Error, Event, Message, MessageKind,
    PreparedMessage, Request, Response, Utf8Bytes, DEFAULT_HIGH_WATER_MARK,
};

/// A WebSocket connection over a tokio stream `S`: see [`wsflow_io::WebSocket`].
pub type WebSocket<S> = wsflow_io::WebSocket<TokioIo<S>>;
/// The sending half of a [`WebSocket`]: see [`wsflow_io::WsSender`].
pub type WsSender<S> = wsflow_io::WsSender<TokioIo<S>>;
/// The receiving half of a [`WebSocket`]: see [`wsflow_io::WsReceiver`].
pub type WsReceiver<S> = wsflow_io::WsReceiver<TokioIo<S>>;
/// What [`accept_with`] did with a request.
pub type Accepted<S> = wsflow_io::Accepted<WebSocket<S>>;
/// Opens client connections over tokio: see [`wsflow_io::ClientBuilder`].
///
/// ```no_run
/// # async fn run() -> Result<(), wsflow_tokio::Error> {
/// let (mut websocket, response) = wsflow_tokio::ClientBuilder::new("ws://127.0.0.1:9002/chat")
///     .subprotocol("chat.v1")
///     .header("Authorization", "Bearer token")
///     .connect()
///     .await?;
/// assert_eq!(response.subprotocol(), Some("chat.v1"));
/// websocket.send_text("hello").await?;
/// # Ok(()) }
/// ```
pub type ClientBuilder = wsflow_io::ClientBuilder<Tokio>;

/// Accepts any WebSocket upgrade on `stream` with [`Config::default`]: see
/// [`wsflow_io::accept`].
///
/// # Errors
/// As [`wsflow_io::accept`].
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>, Error> {
    wsflow_io::accept(TokioIo::new(stream)).await
}

/// Reads the request on `stream` and lets `hook` decide: see [`wsflow_io::accept_with`].
///
/// # Errors
/// As [`wsflow_io::accept_with`].
pub async fn accept_with<S, F>(stream: S, config: Arc<Config>, hook: F) -> Result<Accepted<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Decision,
{
    wsflow_io::accept_with(TokioIo::new(stream), config, hook).await
}

/// Connects to a `ws://` or `wss://` URL with [`Config::default`]: shorthand for
/// [`ClientBuilder::new(url).connect()`](wsflow_io::ClientBuilder::connect).
///
/// # Errors
/// As [`ClientBuilder::connect`](wsflow_io::ClientBuilder::connect).
pub async fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    ClientBuilder::new(url).connect().await
}

/// The tokio runtime for [`wsflow_io`]: tokio's clock and `Sleep`, and how a client connects.
#[derive(Clone, Copy, Debug)]
pub struct Tokio;

impl Runtime for Tokio {
    type Timer = TokioTimer;

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn timer(deadline: Instant) -> TokioTimer {
        TokioTimer(Box::pin(tokio::time::sleep_until(deadline.into())))
    }
}

/// A tokio `Sleep` as a [`wsflow_io::Timer`].
#[derive(Debug)]
pub struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Connector for Tokio {
    type Connecting = Connecting<TokioIo<MaybeTlsStream>>;

    fn connect(builder: ClientBuilder) -> Self::Connecting {
        Box::pin(async move {
            let opened = Self::open_transport(&builder, &[]).await?;
            wsflow_io::connect_on(builder.read_ahead(opened.read_ahead), opened.stream).await
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ConnectOn<S> for Tokio {
    type Connecting = Connecting<TokioIo<S>>;

    fn connect_on(builder: ClientBuilder, stream: S) -> Self::Connecting {
        Box::pin(wsflow_io::connect_on(builder, TokioIo::new(stream)))
    }
}

impl OpenTransport for Tokio {
    type Stream = TokioIo<MaybeTlsStream>;

    async fn open_transport(builder: &ClientBuilder, alpn: &[&[u8]]) -> Result<OpenedTransport<Self::Stream>, Error> {
        let request = builder.request()?;
        let mut route = builder.route()?;
        let mut tcp = TcpStream::connect(route.address())
            .await
            .map_err(|error| route.unreachable(error))?;
        tcp.set_nodelay(true)?;
        if let Some(target) = route.to_resolve() {
            let addresses: Vec<_> = tokio::net::lookup_host(target).await?.collect();
            route.resolved(addresses)?;
        }
        let read_ahead = wsflow_io::tunnel(&route, TokioIo::new(&mut tcp)).await?;
        let opened = |stream, alpn| OpenedTransport {
            stream: TokioIo::new(stream),
            read_ahead,
            alpn,
        };
        if !request.is_secure() {
            return Ok(opened(MaybeTlsStream::Plain(tcp), None));
        }
        #[cfg(feature = "rustls")]
        {
            let name = wsflow_io::server_name(request.host_unbracketed())?;
            let connector = tokio_rustls::TlsConnector::from(builder.tls_client_config(alpn)?);
            let tls = connector.connect(name, tcp).await?;
            let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            Ok(opened(MaybeTlsStream::Rustls(Box::new(tls)), chosen))
        }
        #[cfg(not(feature = "rustls"))]
        {
            let _ = alpn;
            Err(ClientBuilder::tls_unsupported("wsflow-tokio"))
        }
    }
}

/// A tokio `AsyncRead + AsyncWrite` stream as a [`wsflow_io::AsyncStream`]; derefs to it.
#[derive(Debug)]
pub struct TokioIo<S>(S);

impl<S> TokioIo<S> {
    /// Wraps `stream`.
    pub fn new(stream: S) -> Self {
        Self(stream)
    }

    /// The stream.
    pub fn into_inner(self) -> S {
        self.0
    }
}

impl<S> Deref for TokioIo<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S> DerefMut for TokioIo<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.0
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncStream for TokioIo<S> {
    type Runtime = Tokio;

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut read))?;
        Poll::Ready(Ok(read.filled().len()))
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
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The guide in `docs/` written for this crate, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/async-broadcast.md")]
pub struct GuideAsyncBroadcast;
