#![cfg_attr(docsrs, feature(doc_cfg))]
//! # wsflow-blocking: WebSockets over blocking std I/O
//!
//! Drives the sans-IO [`wsflow`] core over any blocking stream implementing [`Transport`],
//! with the parts every adapter shares from [`wsflow_io`] (the outbox, the accept policy,
//! the client builder, the errors)
//! (`TcpStream`, `UnixStream`, rustls streams with the `rustls` feature). One thread per
//! connection, or two with [`WebSocket::split`]. The core's timers (keepalive, pong, close
//! and handshake timeouts) run through the socket's read timeout.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use std::thread;
//!
//! // An echo server, a thread per connection.
//! let listener = TcpListener::bind("127.0.0.1:9002")?;
//! thread::spawn(move || {
//!     for stream in listener.incoming().flatten() {
//!         thread::spawn(move || -> Result<(), wsflow_blocking::Error> {
//!             let mut ws = wsflow_blocking::accept(stream)?;
//!             while let Some(message) = ws.recv_message()? {
//!                 ws.send(message)?;
//!             }
//!             Ok(())
//!         });
//!     }
//! });
//!
//! // A client.
//! let (mut ws, _response) = wsflow_blocking::connect("ws://127.0.0.1:9002/")?;
//! ws.send_text("hello")?;
//! assert_eq!(ws.recv_message()?, Some(wsflow_blocking::Message::text("hello")));
//! ws.close(wsflow_blocking::CloseCode::NORMAL, "bye")?;
//! while ws.recv()?.is_some() {}
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `rustls` enables `wss://` in [`connect`] (webpki-roots by default, or
//! [`ClientBuilder::tls_config`]) and [`tls_accept`] for servers; `tracing` a span per
//! connection (with the peer's address over TCP: [`Transport::peer_addr`]) and events for
//! its handshake and its end (see [`wsflow_io::trace`]).
#![forbid(unsafe_code)]

mod client;
mod pump;
mod server;
mod split;
#[cfg(feature = "rustls")]
mod tls;
mod transport;
mod websocket;

pub use wsflow;
pub use wsflow_io;
pub use wsflow_io::hub;
pub use wsflow_io::{
    Accept, CloseCode, CloseFrame, CloseReason, Closed, Config, Decision, Error, Event, Message, MessageKind,
    PreparedMessage, Request, Response, Utf8Bytes, DEFAULT_HIGH_WATER_MARK,
};

pub use client::{connect, Blocking, ClientBuilder};
pub use server::{accept, accept_with, Accepted};
pub use split::{WsReceiver, WsSender};
#[cfg(feature = "rustls")]
pub use tls::{tls_accept, TlsServerStream};
pub use transport::{MaybeTlsStream, Transport};
pub use websocket::WebSocket;

/// The guides in `docs/` written for this crate, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/blocking-tool.md")]
pub struct GuideBlockingTool;

/// See [`GuideBlockingTool`].
#[cfg(doctest)]
#[doc = include_str!("../../../docs/client-behind-proxy.md")]
pub struct GuideClientBehindProxy;
