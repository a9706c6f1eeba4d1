#![cfg_attr(docsrs, feature(doc_cfg))]
//! # wsflow: a sans-IO WebSocket engine
//!
//! `wsflow` implements RFC 6455 for both roles, including the HTTP/1.1 opening handshake,
//! as a pure state machine: bytes in, events out, bytes to send pulled out, deadlines
//! returned. It never touches sockets, clocks, threads or OS randomness, so it runs in any
//! event loop, under any runtime, and under virtual time in tests.
//!
//! The adapter crates `wsflow-blocking`, `wsflow-smol` and `wsflow-tokio` (all built on
//! `wsflow-io`, the runtime-agnostic layer between the core and a runtime) drive it over
//! real transports. To embed it yourself, follow the run loop:
//!
//! 1. feed what you read to `handle_data` (or `handle_eof`),
//! 2. handle everything `poll_event` returns (pulling a close notice queues the echo),
//! 3. write everything `poll_transmit` returns,
//! 4. wake up at `poll_timeout` and call `handle_timeout`.
//!
//! To batch writes as the adapters do (the answers to all the messages of one read in one
//! write), ask `io_state().write_may_wait(..)` after a send, or write once
//! `io_state().events_waiting()` turns false; `poll_message` takes the next event when it
//! is a message, without an `Event` to unwrap. To send from borrowed bytes (a reused
//! buffer), `send_copied(&str)` and `send_copied(&[u8])` copy a small message straight
//! into the send buffer, with no allocation of its own.
//!
//! ```
//! use std::{sync::Arc, time::Instant};
//! use wsflow::{
//!     Accept, ClientEvent, ClientHandshake, ClientRequest, Config, Event, Message, ServerEvent, ServerHandshake, Transmit,
//! };
//!
//! fn pump(from: &mut dyn FnMut() -> Option<Transmit>, wire: &mut Vec<u8>) {
//!     while let Some(Transmit::Data(bytes)) = from() { wire.extend_from_slice(&bytes) }
//! }
//! let (config, now) = (Arc::new(Config::default()), Instant::now());
//! let request = ClientRequest::new("ws://localhost:9002/chat").unwrap().subprotocol("chat");
//! let mut client = ClientHandshake::new(&request, config.clone(), now, [7; 32]).unwrap();
//! let mut server = ServerHandshake::new(config, now);
//! let mut wire = Vec::new();
//! pump(&mut || client.poll_transmit(), &mut wire);
//! server.handle_data(now, &wire);
//! let Some(ServerEvent::Request(req)) = server.poll_event() else { panic!() };
//! assert_eq!((req.path(), req.subprotocols().next()), ("/chat", Some("chat")));
//! let mut server = server.accept(now, Accept::new().subprotocol("chat")).unwrap();
//! wire.clear();
//! pump(&mut || server.poll_transmit(), &mut wire);
//! client.handle_data(now, &wire);
//! assert!(matches!(client.poll_event(), Some(ClientEvent::Accepted(_))));
//! let mut client = client.into_connection(now).unwrap();
//! client.send(Message::text("hello")).unwrap();
//! wire.clear();
//! pump(&mut || client.poll_transmit(), &mut wire);
//! server.handle_data(now, &wire);
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::text("hello"))));
//! ```
// Unsafe code is denied but in two blocks of `frame` (the AVX2 unmasking loop, which a
// benchmark showed worth it), each with its `SAFETY` argument.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod connection;
#[cfg(feature = "deflate")]
mod deflate;
mod error;
mod event;
pub mod frame;
mod handshake;
mod message;
mod prepared;
mod proxy;
mod queue;
pub mod utf8;

/// The shared byte buffer of the public API (message payloads, [`Transmit::Data`]),
/// re-exported so that users need no `bytes` dependency of their own.
pub use bytes::Bytes;
pub use config::{Config, FrameDirection, FrameObserver};
pub use connection::{Connection, IoState, Role, State};
#[cfg(feature = "deflate")]
pub use deflate::DeflateConfig;
pub use error::{HandshakeError, ProtocolError, SendError};
pub use event::{CloseReason, Closed, Event, Timeout, Transmit};
pub use handshake::{
    accept_key, Accept, ClientEvent, ClientHandshake, ClientNegotiation, ClientRequest, Headers, HttpVersion,
    Negotiated, Rejection, Request, Response, ServerEvent, ServerHandshake, ServerNegotiation, UrlError,
};
pub use message::{BorrowedMessage, CloseCode, CloseFrame, Message, MessageKind, Utf8Bytes};
pub use prepared::PreparedMessage;
pub use proxy::{ProxyError, ProxyEvent, ProxyHandshake, ProxyKind, ProxyUrl, SocksReply};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The guides in `docs/` that teach the core, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/embed-the-core.md")]
pub struct GuideEmbedTheCore;

/// See [`GuideEmbedTheCore`].
#[cfg(doctest)]
#[doc = include_str!("../../docs/fuzzing.md")]
pub struct GuideFuzzing;
