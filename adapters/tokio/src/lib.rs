//! # wsflow-tokio: the wsflow WebSocket engine over tokio
//!
//! Drives the sans-IO [`wsflow`] core over any tokio `AsyncRead + AsyncWrite` stream: TCP,
//! TLS (feature `rustls`: `wss://` clients through tokio-rustls and the webpki-roots root
//! store, and [`tokio_rustls`] re-exported for servers), or anything else. All protocol
//! logic (framing, handshakes, close codes, keepalive, timeouts) lives in the core; this
//! crate reads, writes and keeps the timer.
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
//! ## Cancel safety
//! Every async method keeps its progress in the connection, so dropping its future loses
//! nothing: [`recv`](WebSocket::recv) and [`recv_message`](WebSocket::recv_message) can be
//! used in `tokio::select!`; [`flush`](WebSocket::flush) keeps what it wrote; `send` and
//! its kin queue their frame at the first poll and a later cancel only stops the wait for
//! backpressure; [`close`](WebSocket::close) queues its close frame once.
//!
//! ## Memory
//! A connection holds no read buffer (reads go to one 256 KiB buffer per thread, shared by
//! every connection polled on it), no write queue while idle, and a tokio `Sleep` only while
//! a deadline is armed, besides the core's own state: about 2.5 KiB per idle connection
//! with the task of a plain echo loop (see `bench/`).
#![forbid(unsafe_code)]

mod handshake;
mod io;
mod stream;
mod websocket;

pub use handshake::{accept, accept_with, connect, Accepted, ClientBuilder};
pub use stream::MaybeTlsStream;
#[cfg(feature = "rustls")]
pub use tokio_rustls;
pub use websocket::{WebSocket, WsReceiver, WsSender, DEFAULT_HIGH_WATER_MARK};
pub use wsflow;
pub use wsflow::{Accept, CloseCode, Config, Decision, Event, Message, Request, Response};

/// Everything that can go wrong: the core's error over `std::io::Error`.
pub type Error = wsflow::Error<std::io::Error>;
