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
//!
//! ## Running the core in your own event loop
//!
//! Nothing in the core waits, so one thread can serve many connections with a readiness
//! poller (epoll, kqueue, IOCP) and non-blocking sockets, with no adapter and no async
//! runtime. The example `core/examples/event-loop/` does it with the `mio` crate: an
//! echo server (`cargo run --release -p wsflow --example event-loop -- 127.0.0.1:9002`),
//! and clients on the same code (`-- client ws://127.0.0.1:9002/`, and
//! `-- autobahn-client BASE_URL AGENT`); it passes the Autobahn suite in both roles. Its
//! structure, one *link* per socket (`link.rs`):
//!
//! - **State:** the socket; the core's machine for it, [`ServerHandshake`] until the
//!   request is accepted, then the [`Connection`] that [`ServerHandshake::accept`] returns
//!   (a client: [`ClientHandshake`], then [`ClientHandshake::into_connection`]); and the
//!   bytes pulled from the core that the socket has not taken yet.
//! - **On each wake-up** (the poller reported the socket, or its deadline came):
//!   `handle_timeout` if the deadline passed; read and feed `handle_data` (`handle_eof` at
//!   the end of the stream or on a reset); pull the events and answer them (here, send the
//!   message back); move what `poll_transmit` gives to the unsent queue; write what the
//!   socket takes, until `WouldBlock`, and keep the rest (a partial write is normal); once
//!   everything is written after [`Transmit::Shutdown`], shut down the write side.
//! - **Bounded memory:** pull no more events while the outgoing bytes
//!   ([`IoState::buffered`] plus the unsent queue) pass a high-water mark, and read no more
//!   while [`IoState::events_waiting`] or past the mark: the core holds the rest of a read
//!   unparsed ([`Config::max_waiting_size`]), and TCP flow control holds the peer.
//! - **Readiness:** the socket is registered once, readable and writable; mio is edge
//!   triggered, so it reports a change, not a state. Read until `WouldBlock`; a link that
//!   stops before (a cap on reads per wake-up, so that a busy connection does not starve
//!   the others, or the bound above) remembers that the socket is still readable and, once
//!   it takes input again, reads without waiting for a report that will not come (the
//!   server wakes such links at its next turn, after a poll with a zero timeout). Writes need no
//!   such memory: every wake-up writes until `WouldBlock`, and the socket's turning
//!   writable again is reported.
//! - **Timers:** `poll_timeout` is the link's deadline; the server keeps every link's
//!   deadline in a sorted set and polls with a timeout until the first (`server.rs`).
//! - **The end:** drop the link (deregister and close the socket) once [`Event::Closed`]
//!   was pulled and everything is written, or when `poll_timeout` turns `None` after it (a
//!   peer that stopped reading does not hold the socket).
//!
//! The same steps in memory, with a socket that takes 4 bytes and then would block:
//!
//! ```
//! use std::{collections::VecDeque, sync::Arc, time::Instant};
//! use wsflow::{Bytes, CloseCode, Config, Connection, Event, Message, Transmit};
//!
//! /// A non-blocking socket's write side: `room` bytes fit before a write would block.
//! struct Socket { wire: Vec<u8>, room: usize }
//!
//! /// One connection of the loop: the core, and what the socket has not taken yet.
//! struct Link { connection: Connection, unsent: VecDeque<Bytes>, closed: bool }
//!
//! impl Link {
//!     /// After a read (already fed to `handle_data`), a timer, or the socket turning writable.
//!     fn wake(&mut self, socket: &mut Socket) {
//!         const HIGH_WATER_MARK: usize = 1 << 20;
//!         loop {
//!             let state = self.connection.io_state();
//!             let unsent: usize = self.unsent.iter().map(Bytes::len).sum();
//!             if !state.events_waiting() || state.buffered() + unsent > HIGH_WATER_MARK {
//!                 break;
//!             }
//!             match self.connection.poll_event() {
//!                 Some(Event::Message(message)) => self.connection.send(message).unwrap(),
//!                 Some(Event::Closed(_)) => self.closed = true,
//!                 _ => {} // pings are answered, and a close frame echoed, by the core
//!             }
//!         }
//!         while let Some(transmit) = self.connection.poll_transmit() {
//!             match transmit {
//!                 Transmit::Data(bytes) => self.unsent.push_back(bytes),
//!                 Transmit::Shutdown => {} // shut the write side down once all is written
//!             }
//!         }
//!         while let Some(front) = self.unsent.front_mut() {
//!             let n = front.len().min(socket.room); // write(2)
//!             if n == 0 {
//!                 break; // would block: keep the rest, wait until writable
//!             }
//!             socket.wire.extend_from_slice(&front[..n]);
//!             socket.room -= n;
//!             *front = front.slice(n..);
//!             if front.is_empty() {
//!                 self.unsent.pop_front();
//!             }
//!         }
//!     }
//! }
//!
//! let (config, now) = (Arc::new(Config::default()), Instant::now());
//! let mut link = Link { connection: Connection::server(config.clone(), now), unsent: VecDeque::new(), closed: false };
//! // What the server reads: a client's "hello", then its close frame.
//! let mut client = Connection::client(config, now, [7; 32]);
//! client.send(Message::text("hello")).unwrap();
//! client.close(now, CloseCode::NORMAL, "bye").unwrap();
//! while let Some(Transmit::Data(bytes)) = client.poll_transmit() {
//!     link.connection.handle_data(now, &bytes);
//! }
//! let mut socket = Socket { wire: Vec::new(), room: 4 };
//! link.wake(&mut socket);
//! assert_eq!(socket.wire.len(), 4);
//! assert!(!link.unsent.is_empty()); // register writable interest
//! socket.room = usize::MAX; // the peer read: the socket is writable
//! link.wake(&mut socket);
//! assert!(link.unsent.is_empty());
//! client.handle_data(now, &socket.wire);
//! assert_eq!(client.poll_event(), Some(Event::Message(Message::text("hello"))));
//! assert!(matches!(client.poll_event(), Some(Event::CloseReceived(_))));
//! // The server waits for the client to close TCP (`handle_eof`), or for its timer:
//! let deadline = link.connection.poll_timeout().unwrap();
//! link.connection.handle_timeout(deadline);
//! link.wake(&mut socket);
//! assert!(link.closed && link.unsent.is_empty()); // done: drop the socket
//! ```
// Unsafe code is denied but in two blocks of `frame` (the AVX2 unmasking loop, which a
// benchmark showed worth it), each with its `SAFETY` argument.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod budget;
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

pub use budget::MemoryBudget;
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
