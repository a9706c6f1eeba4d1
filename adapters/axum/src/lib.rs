#![cfg_attr(docsrs, feature(doc_cfg))]
//! # wsflow-axum: WebSocket upgrades in axum, with permessage-deflate
//!
//! A [`WebSocketUpgrade`] extractor in the shape axum users know, on the wsflow engine: the
//! upgrade is validated and negotiated by the [`wsflow`] core (RFC 6455 checks, subprotocols,
//! RFC 7692 permessage-deflate when the [`Config`] enables it, the handshake limits), and the
//! callback gets a [`wsflow_tokio`] [`WebSocket`] with everything that adapter offers (split
//! halves, `Stream`/`Sink`, backpressure, every timer).
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{response::Response, routing::any, Router};
//! use wsflow_axum::{wsflow::DeflateConfig, Config, WebSocket, WebSocketUpgrade};
//!
//! async fn handler(upgrade: WebSocketUpgrade) -> Response {
//!     let mut config = Config::default();
//!     config.deflate(Some(DeflateConfig::default())); // accept permessage-deflate when offered
//!     upgrade.config(config).protocols(["chat"]).on_upgrade(echo)
//! }
//!
//! async fn echo(mut socket: WebSocket) {
//!     while let Ok(Some(message)) = socket.recv_message().await {
//!         if socket.send(message).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! // `any`: a `GET` over HTTP/1.1, a `CONNECT` over HTTP/2.
//! let app = Router::new().route("/ws", any(handler));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9002").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! ## HTTP/2
//! With the `http2` feature (on by default), the same extractor and handler accept a
//! WebSocket over HTTP/2 (RFC 8441): an extended `CONNECT` with `:protocol = websocket`
//! (read from hyper's `hyper::ext::Protocol`), answered with `200`, the WebSocket then
//! running over that HTTP/2 stream, several on one connection, each with its own flow
//! control window. The route must take `CONNECT` as well as `GET` (`any(handler)`, or
//! `on(MethodFilter::GET.or(MethodFilter::CONNECT), handler)`), and the server must
//! advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL`: `axum::serve` does with axum's own
//! `http2` feature (h2c with prior knowledge on plain TCP); a server built on hyper-util's
//! `auto::Builder` calls `builder.http2().enable_connect_protocol()` (see
//! `examples/echo-server.rs`, which also serves TLS with ALPN `h2`).
//!
//! Flow control: the data a WebSocket's handler has not read yet holds its stream's
//! window and the same amount of the connection's. hyper's server defaults (which
//! `axum::serve` keeps) are 1 MiB for both, so one handler that stops reading stalls every
//! other WebSocket of that connection; with hyper-util's builder, give the connection room
//! for many stream windows, e.g. `.initial_stream_window_size(256 << 10)` and
//! `.initial_connection_window_size(16 << 20)` (as the example does). A slow reader then
//! stalls only its own sender: the backpressure reaches the peer through its stream's window.
//!
//! ## Rejections
//! A request that is not a valid upgrade fails extraction with a [`WebSocketUpgradeRejection`]
//! (so `Option<WebSocketUpgrade>` serves a page and the WebSocket on one route), answered with
//! the status and short text body of the core's built-in server handshake: `405` with
//! `Allow: GET` for another method; `400` for a missing `Upgrade: websocket`, `Connection:
//! Upgrade` or `Host`, or a missing or malformed `Sec-WebSocket-Key`; `426` with
//! `Sec-WebSocket-Version: 13` for another version (over HTTP/2: `405` with `Allow: CONNECT`
//! for another method, `400` without `:protocol = websocket` or for another version, see
//! [`ServerNegotiation::new`](wsflow::ServerNegotiation::new)); `431` past [`Config::max_headers`] or
//! [`Config::max_handshake_size`] (checked in [`on_upgrade`](WebSocketUpgrade::on_upgrade),
//! once the config is known). The application checks `Origin` itself (see
//! [`WebSocketUpgrade::request`]).
//!
//! ## The upgraded stream
//! The bytes the HTTP server read past the request head (a client may send its first frames
//! in the same packet) reach the connection first: hyper keeps them in the upgraded stream,
//! or hands them over when the stream is a plain [`TcpStream`] (a hyper `http1` connection
//! over `hyper_util::rt::TokioIo<TcpStream>`), which the socket then uses directly.
//!
//! Feature `tracing` (forwarded to `wsflow-tokio`): each connection's span and the event
//! of its end (see [`wsflow_tokio::wsflow_io::trace`]); the upgrade itself is axum's to log.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use wsflow::{Accept, Rejection, ServerNegotiation};
use wsflow_tokio::wsflow_io::Runtime as _;
use wsflow_tokio::Tokio;

pub use wsflow;
pub use wsflow_tokio;
pub use wsflow_tokio::{CloseCode, CloseFrame, Config, Error, Event, Message, MessageKind, Request, Utf8Bytes};

/// The WebSocket handed to [`WebSocketUpgrade::on_upgrade`]'s callback: a [`wsflow_tokio`]
/// WebSocket over the upgraded connection.
pub type WebSocket = wsflow_tokio::WebSocket<UpgradedStream>;
/// The sending half of a [`WebSocket`] after [`split`](wsflow_tokio::wsflow_io::WebSocket::split).
pub type WsSender = wsflow_tokio::WsSender<UpgradedStream>;
/// The receiving half of a [`WebSocket`] after [`split`](wsflow_tokio::wsflow_io::WebSocket::split).
pub type WsReceiver = wsflow_tokio::WsReceiver<UpgradedStream>;

/// Extractor for a WebSocket upgrade: validates the request, then
/// [`on_upgrade`](Self::on_upgrade) answers `101 Switching Protocols` and runs a callback on
/// the [`WebSocket`] once hyper hands over the connection.
///
/// ```no_run
/// use axum::{response::{IntoResponse, Response}, http::StatusCode};
/// use wsflow_axum::{WebSocket, WebSocketUpgrade};
///
/// async fn handler(upgrade: WebSocketUpgrade) -> Response {
///     if upgrade.request().origin() != Some("https://example.com") {
///         return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
///     }
///     upgrade.on_upgrade(|socket: WebSocket| async move { /* ... */ })
/// }
/// ```
#[must_use = "an upgrade is only answered by `on_upgrade`"]
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade> {
    negotiation: ServerNegotiation,
    config: Arc<Config>,
    protocols: Vec<String>,
    on_upgrade: OnUpgrade,
    on_failed_upgrade: F,
}

impl<F> std::fmt::Debug for WebSocketUpgrade<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", self.negotiation.request())
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

/// The config extraction validates with: the protocol checks without the size limits,
/// which are the application's config's and are checked in `on_upgrade` (hyper bounds the
/// head it parses in any case).
static UNLIMITED: LazyLock<Arc<Config>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.max_headers(usize::MAX).max_handshake_size(usize::MAX);
    Arc::new(config)
});

/// [`Config::default`], shared.
static DEFAULT_CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| Arc::new(Config::default()));

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        #[allow(unused_mut)]
        let mut request = Request::from(&*parts);
        #[cfg(feature = "http2")]
        if let Some(protocol) = parts.extensions.get::<hyper::ext::Protocol>() {
            request = request.with_protocol(Some(protocol.as_str()));
        }
        let negotiation =
            ServerNegotiation::new(UNLIMITED.clone(), request).map_err(WebSocketUpgradeRejection::Invalid)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(WebSocketUpgradeRejection::ConnectionNotUpgradable)?;
        Ok(Self {
            negotiation,
            config: DEFAULT_CONFIG.clone(),
            protocols: Vec::new(),
            on_upgrade,
            on_failed_upgrade: DefaultOnFailedUpgrade,
        })
    }
}

impl<F: OnFailedUpgrade> WebSocketUpgrade<F> {
    /// The upgrade request: path, query, headers, `Origin`, the offered subprotocols and
    /// extensions.
    ///
    /// ```
    /// # fn check(upgrade: &wsflow_axum::WebSocketUpgrade) -> bool {
    /// upgrade.request().origin().is_some_and(|origin| origin.ends_with(".example.com"))
    /// # }
    /// ```
    pub fn request(&self) -> &Request {
        self.negotiation.request()
    }

    /// The config of the connection: limits, timeouts, permessage-deflate (accepted when the
    /// client offers it and the config enables it). Default: [`Config::default`] (no
    /// deflate). Its handshake limits are checked in [`on_upgrade`](Self::on_upgrade).
    ///
    /// ```
    /// # fn handler(upgrade: wsflow_axum::WebSocketUpgrade) -> wsflow_axum::WebSocketUpgrade {
    /// use wsflow_axum::{wsflow::DeflateConfig, Config};
    ///
    /// let mut config = Config::default();
    /// config.deflate(Some(DeflateConfig::default())).max_message_size(1 << 20);
    /// upgrade.config(config)
    /// # }
    /// ```
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// The subprotocols the server speaks: the first one the client offers, in the client's
    /// order, is chosen (none if it offers none of them).
    ///
    /// ```
    /// # fn handler(upgrade: wsflow_axum::WebSocketUpgrade) {
    /// let upgrade = upgrade.protocols(["chat.v2", "chat.v1"]);
    /// if upgrade.selected_protocol().is_none() { /* an old client */ }
    /// # }
    /// ```
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The subprotocol the response will carry, of those given to
    /// [`protocols`](Self::protocols).
    ///
    /// ```
    /// # fn handler(upgrade: wsflow_axum::WebSocketUpgrade) {
    /// assert_eq!(upgrade.selected_protocol(), None); // no `protocols(..)` yet
    /// # }
    /// ```
    pub fn selected_protocol(&self) -> Option<&str> {
        self.request()
            .subprotocols()
            .find(|offered| self.protocols.iter().any(|supported| supported == offered))
    }

    /// What to do when hyper fails to hand over the upgraded connection (the client went away
    /// after the 101, say). By default nothing.
    ///
    /// ```
    /// # fn handler(upgrade: wsflow_axum::WebSocketUpgrade) -> axum::response::Response {
    /// upgrade
    ///     .on_failed_upgrade(|error| eprintln!("upgrade failed: {error}"))
    ///     .on_upgrade(|socket| async move { drop(socket) })
    /// # }
    /// ```
    pub fn on_failed_upgrade<C: OnFailedUpgrade>(self, callback: C) -> WebSocketUpgrade<C> {
        WebSocketUpgrade {
            negotiation: self.negotiation,
            config: self.config,
            protocols: self.protocols,
            on_upgrade: self.on_upgrade,
            on_failed_upgrade: callback,
        }
    }

    /// Answers the upgrade: the `101` response (`200` over HTTP/2) to return from the
    /// handler, and a tokio task
    /// that runs `callback` on the [`WebSocket`] once hyper hands over the connection. A
    /// head past the config's limits is answered with `431` instead, and `callback` never
    /// runs.
    ///
    /// ```
    /// # fn handler(upgrade: wsflow_axum::WebSocketUpgrade) -> axum::response::Response {
    /// upgrade.on_upgrade(|mut socket| async move {
    ///     let _ = socket.send_text("hello").await;
    /// })
    /// # }
    /// ```
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let protocol = self.selected_protocol().map(str::to_owned);
        let negotiation = match self.negotiation.with_config(self.config) {
            Ok(negotiation) => negotiation,
            Err(rejection) => return WebSocketUpgradeRejection::Invalid(rejection).into_response(),
        };
        let mut accept = Accept::new();
        if let Some(protocol) = protocol {
            accept = accept.subprotocol(protocol);
        }
        let negotiated = match negotiation.accept(Tokio::now(), accept) {
            Ok(negotiated) => negotiated,
            // The subprotocol was one the client offered, and no header was added: accepting
            // cannot fail, but answer rather than panic.
            Err(error) => return (http::StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response(),
        };
        let response = negotiated.to_http().map(|()| Body::empty());
        let (connection, on_upgrade, on_failed_upgrade) =
            (negotiated.into_connection(), self.on_upgrade, self.on_failed_upgrade);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => callback(adopt(upgraded, connection)).await,
                Err(error) => on_failed_upgrade.call(axum_core::Error::new(error)),
            }
        });
        response
    }
}

/// The upgraded connection as a [`WebSocket`], the bytes read past the head first.
fn adopt(upgraded: Upgraded, connection: wsflow::Connection) -> WebSocket {
    let (stream, read_past_head) = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => (UpgradedStream::Tcp(parts.io.into_inner()), parts.read_buf),
        // hyper replays what it read past the head itself.
        Err(upgraded) => (UpgradedStream::Hyper(TokioIo::new(upgraded)), Default::default()),
    };
    WebSocket::from_upgraded(wsflow_tokio::TokioIo::new(stream), connection, &read_past_head)
}

/// The connection hyper upgraded: the plain [`TcpStream`] when hyper served it directly,
/// else hyper's own upgraded stream (as under `axum::serve`).
#[derive(Debug)]
pub enum UpgradedStream {
    /// A TCP connection that hyper served over `hyper_util::rt::TokioIo<TcpStream>`.
    Tcp(TcpStream),
    /// Any other connection, through hyper.
    Hyper(TokioIo<Upgraded>),
}

impl AsyncRead for UpgradedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Hyper(upgraded) => Pin::new(upgraded).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpgradedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Hyper(upgraded) => Pin::new(upgraded).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Hyper(upgraded) => Pin::new(upgraded).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(tcp) => tcp.is_write_vectored(),
            Self::Hyper(upgraded) => upgraded.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Hyper(upgraded) => Pin::new(upgraded).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Hyper(upgraded) => Pin::new(upgraded).poll_shutdown(cx),
        }
    }
}

/// What [`WebSocketUpgrade::on_failed_upgrade`] runs: any `FnOnce(axum_core::Error)`.
pub trait OnFailedUpgrade: Send + 'static {
    /// Runs with the error hyper gave.
    fn call(self, error: axum_core::Error);
}

impl<F: FnOnce(axum_core::Error) + Send + 'static> OnFailedUpgrade for F {
    fn call(self, error: axum_core::Error) {
        self(error);
    }
}

/// The default [`OnFailedUpgrade`]: does nothing.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct DefaultOnFailedUpgrade;

impl OnFailedUpgrade for DefaultOnFailedUpgrade {
    fn call(self, _error: axum_core::Error) {}
}

/// Why a request could not be extracted as a [`WebSocketUpgrade`]; answered as described in
/// the [crate docs](crate#rejections).
///
/// ```
/// use axum::response::IntoResponse;
/// use wsflow_axum::{wsflow, WebSocketUpgradeRejection};
///
/// let rejection = WebSocketUpgradeRejection::Invalid(wsflow::Rejection::new(
///     wsflow::HandshakeError::UnsupportedVersion("8".into()),
/// ));
/// let response = rejection.into_response();
/// assert_eq!(response.status(), 426);
/// assert_eq!(response.headers()["sec-websocket-version"], "13");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum WebSocketUpgradeRejection {
    /// Not a valid WebSocket upgrade (or past the config's limits), with the response the
    /// core's server handshake would send.
    Invalid(Rejection),
    /// A valid upgrade request that the server cannot upgrade: not served by hyper with
    /// upgrades enabled (a test calling the router directly). Answered with `426`.
    ConnectionNotUpgradable,
}

impl std::fmt::Display for WebSocketUpgradeRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(rejection) => rejection.fmt(f),
            Self::ConnectionNotUpgradable => f.write_str("the connection cannot be upgraded"),
        }
    }
}

impl std::error::Error for WebSocketUpgradeRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(rejection) => Some(rejection),
            Self::ConnectionNotUpgradable => None,
        }
    }
}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid(rejection) => rejection.to_http().map(Body::from),
            Self::ConnectionNotUpgradable => (
                http::StatusCode::UPGRADE_REQUIRED,
                [(http::header::UPGRADE, "websocket")],
                "the connection cannot be upgraded\n",
            )
                .into_response(),
        }
    }
}
