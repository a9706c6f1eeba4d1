#![cfg_attr(docsrs, feature(doc_cfg))]
//! # wsflow-io: everything between the wsflow core and a runtime, written once
//!
//! The sans-IO [`wsflow`] core speaks the protocol; this crate drives it over real
//! transports, for every adapter:
//!
//! - [`WebSocket`] (and its halves [`WsSender`], [`WsReceiver`]): the one async connection,
//!   over any [`AsyncStream`] of any [`Runtime`]. `wsflow-tokio` and `wsflow-smol` are
//!   shims that implement those two traits for their runtime and re-export the rest.
//! - [`accept`], [`accept_with`] and [`Decision`]: the accept policy (plain HTTP, `426`,
//!   `500` for a decision that cannot be carried out); [`decide`] for the blocking adapter.
//! - [`ClientBuilder`]: the URL, configuration, subprotocols, headers, origin, TLS
//!   configuration and proxy, with `connect` and `connect_on` carried out by each adapter.
//! - [`Route`] and [`tunnel`]: clients through HTTP `CONNECT` and SOCKS5 proxies, chosen on
//!   the builder or from the environment (`ws_proxy`, `https_proxy`, `all_proxy`,
//!   `no_proxy`, ...: see [`Route`], and the README).
//! - [`Outbox`]: queued `Bytes`, gathered into vectored writes, partial writes, flush and
//!   shutdown; the blocking adapter writes through it too.
//! - [`Error`] and [`is_peer_gone`]; with feature `rustls`, [`default_tls_config`].
//! - [`trace`]: with feature `tracing`, a span per connection and events for its handshake
//!   and its end (close code, reason, protocol error, timeout).
//!
//! Features (each adapter forwards them as its own): `rustls` (TLS clients:
//! `default_tls_config`, `ClientBuilder::tls_config`); `tracing` (tracing spans and
//! events: see [`trace`]; nothing of it is compiled without the feature).
//!
//! ```no_run
//! // An echo server over tokio (wsflow-tokio re-exports all of this).
//! # async fn run<S: wsflow_io::AsyncStream>(stream: S) -> Result<(), wsflow_io::Error> {
//! let mut websocket = wsflow_io::accept(stream).await?;
//! while let Some(message) = websocket.recv_message().await? {
//!     websocket.send(message).await?;
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod driver;
mod error;
mod handshake;
#[cfg(feature = "http2")]
#[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
pub mod http2;
pub mod hub;
mod outbox;
mod proxy;
mod runtime;
mod sans_io;
mod server;
#[cfg(feature = "rustls")]
mod tls;
pub mod trace;
mod websocket;

pub use bytes::Bytes;
pub use client::{response_of, ClientBuilder, ConnectOn, Connector, OpenTransport, OpenedTransport};
pub use error::{is_peer_gone, Error};
pub use handshake::{accept, accept_with, connect_on, Connecting};
#[cfg(feature = "http2")]
pub use http2::{Http2Client, Http2Driver, Http2Stream};
pub use outbox::{NextWrite, Outbox, MAX_WRITE_SLICES};
pub use proxy::{tunnel, Route};
pub use runtime::{AsyncStream, Runtime, Timer};
pub use sans_io::SansIo;
pub use server::{decide, request_of, Accepted, Decision};
#[cfg(feature = "rustls")]
pub use tls::{default_tls_config, server_name};
pub use websocket::{WebSocket, WsReceiver, WsSender, DEFAULT_HIGH_WATER_MARK};
pub use wsflow;
pub use wsflow::{
    Accept, CloseCode, CloseFrame, CloseReason, Closed, Config, Event, Message, MessageKind, PreparedMessage,
    ProxyError, ProxyUrl, Request, Response, Utf8Bytes,
};
