//! The harness of the adapter conformance suite: what a scenario needs from an adapter
//! ([`Adapter`]: streams, handshakes, tasks, the clock; [`Ws`], [`Sender`], [`Receiver`]:
//! the connection and its halves), implemented once per adapter in `tokio.rs`, `smol.rs`
//! and `blocking.rs`, and the raw-peer helpers the scenarios share.
//!
//! A scenario is async code; on the blocking adapter every `.await` of a connection just
//! blocks, so whatever must run concurrently (the other end of a connection) goes through
//! [`Adapter::spawn`]: a task on tokio and smol, a thread on blocking. Never `join!`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use wsflow::{CloseCode, Closed, Config, Event, Message, MessageKind, Request, Response};
use wsflow_io::{Accepted, AsyncStream, ClientBuilder, Decision, Error};

pub mod blocking;
pub mod smol;
pub mod tokio;

/// Which clock a scenario runs on. Only tokio has a choice: `Virtual` pauses its clock (the
/// connection's timeouts then take no real time; tokio advances the clock whenever every
/// task waits). Scenarios over real sockets (TCP, TLS) need `Real`: waiting for the kernel
/// would let a paused clock run ahead.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    Virtual,
    Real,
}

/// One adapter, as the scenarios use it.
pub trait Adapter: Sized + 'static {
    const NAME: &'static str;
    /// The adapter's runtime marker: what its `ClientBuilder` is generic over.
    type Runtime: 'static;
    /// One end of an in-memory connection (a tokio duplex, a Unix socket pair), its writes
    /// counted.
    type Stream: PairStream;
    /// A connection over [`Self::Stream`].
    type Ws: Ws;
    /// A connection from [`Self::connect`] (TCP, TLS for `wss://`).
    type UrlWs: Ws;

    /// Two connected streams.
    fn pair() -> (Self::Stream, Self::Stream);

    /// Runs a test body on this adapter's runtime, bounded in time.
    fn run(clock: Clock, test: impl Future<Output = ()> + Send + 'static);

    /// Runs `task` concurrently with the caller (a task, or a thread for blocking).
    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Joined<T>;

    /// The clock the adapter's timeouts run on.
    fn now() -> Instant;

    /// Lets spawned tasks run until they wait (on tokio's single thread; a hint elsewhere).
    fn yield_now() -> impl Future<Output = ()> + Send;

    fn accept_with<F>(
        stream: Self::Stream,
        config: Arc<Config>,
        hook: F,
    ) -> impl Future<Output = Result<Accepted<Self::Ws>, Error>> + Send
    where
        F: FnOnce(&Request) -> Decision + Send + 'static;

    fn connect_on(
        builder: ClientBuilder<Self::Runtime>,
        stream: Self::Stream,
    ) -> impl Future<Output = Result<(Self::Ws, Response), Error>> + Send;

    fn connect(
        builder: ClientBuilder<Self::Runtime>,
    ) -> impl Future<Output = Result<(Self::UrlWs, Response), Error>> + Send;

    /// Whether the connection runs over TLS.
    fn is_tls(websocket: &Self::UrlWs) -> bool;

    /// A loopback server (`wss://` with `tls`, else `ws://`) that upgrades one connection
    /// with `config` and [`serve`]s it as `how` says. Returns its port and what happened.
    /// Called within [`Self::run`].
    fn tcp_server(tls: Option<Arc<rustls::ServerConfig>>, config: Arc<Config>, how: Serve) -> (u16, Joined<Served>);
}

/// The sending side: a whole connection or its sending half.
pub trait Sender: Send + 'static {
    fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + Send;
    fn send_text(&mut self, text: &str) -> impl Future<Output = Result<(), Error>> + Send;
    fn ping(&mut self, payload: Bytes) -> impl Future<Output = Result<(), Error>> + Send;
    fn close(&mut self, code: CloseCode, reason: &str) -> impl Future<Output = Result<(), Error>> + Send;
    fn flush(&mut self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The receiving side: a whole connection or its receiving half.
pub trait Receiver: Send + 'static {
    fn recv(&mut self) -> impl Future<Output = Result<Option<Event>, Error>> + Send;
    fn recv_message(&mut self) -> impl Future<Output = Result<Option<Message>, Error>> + Send;
    /// How the connection ended, once `recv` returned [`Event::Closed`].
    fn closed(&self) -> Option<Closed>;
}

/// A whole connection.
pub trait Ws: Sender + Receiver {
    type Tx: Sender;
    type Rx: Receiver;

    fn send_text_copied(&mut self, text: &str) -> impl Future<Output = Result<(), Error>> + Send;
    fn send_binary_copied(&mut self, data: &[u8]) -> impl Future<Output = Result<(), Error>> + Send;
    fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Sends without waiting for backpressure: `None` when the send would wait (the
    /// message is queued all the same). An async send polled once; a blocking send on the
    /// stream made non-blocking for it.
    fn try_send(&mut self, message: Message) -> Option<Result<(), Error>>;
    fn buffered_amount(&self) -> usize;
    fn set_high_water_mark(&mut self, bytes: usize);
    fn split(self) -> (Self::Tx, Self::Rx);
}

/// A task's result, from [`Adapter::spawn`]; a panic in the task is re-raised by `.await`.
pub struct Joined<T>(Pin<Box<dyn Future<Output = T> + Send>>);

impl<T> Joined<T> {
    pub fn new(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self(Box::pin(future))
    }
}

impl<T> Future for Joined<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.0.as_mut().poll(cx)
    }
}

/// One end of an in-memory connection, also used raw (a peer that writes bytes by hand).
pub trait PairStream: Send + Sized + 'static {
    fn write_all(&mut self, bytes: &[u8]) -> impl Future<Output = ()> + Send;
    /// Bytes read, 0 at the end of the stream. Any error fails the test: a peer that
    /// resets the connection instead of closing it loses the bytes it had sent.
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = usize> + Send;
    /// Shuts the write side down (the peer reads the end of the stream; we still read).
    fn shutdown_write(&mut self) -> impl Future<Output = ()> + Send;
    /// Counts the write calls made on this end from now on.
    fn write_counter(&self) -> WriteCounter;
}

/// A stream whose `poll_write`/`poll_write_vectored` (`write`/`write_vectored`) calls are
/// counted; the adapter files implement the runtimes' I/O traits for it.
#[derive(Debug)]
pub struct Counted<S> {
    pub inner: S,
    writes: Arc<AtomicUsize>,
}

impl<S> Counted<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            writes: Arc::default(),
        }
    }

    /// The same counter for a second handle to the stream.
    pub fn with_counter_of<T>(inner: S, other: &Counted<T>) -> Self {
        Self {
            inner,
            writes: other.writes.clone(),
        }
    }

    pub fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counter(&self) -> WriteCounter {
        WriteCounter(self.writes.clone())
    }
}

#[derive(Clone, Debug)]
pub struct WriteCounter(Arc<AtomicUsize>);

impl WriteCounter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

// ---- raw peers ----

/// A valid upgrade request for `/`.
pub const RAW_UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

pub async fn read_to_end(stream: &mut impl PairStream) -> Vec<u8> {
    read_to_end_by(stream, 64 << 10).await
}

/// Reads to the end of the stream, at most `chunk` bytes at a time.
pub async fn read_to_end_by(stream: &mut impl PairStream, chunk: usize) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0; chunk];
    loop {
        match stream.read(&mut buf).await {
            0 => return all,
            read => all.extend_from_slice(&buf[..read]),
        }
    }
}

/// Reads an HTTP head (byte by byte: nothing after it is consumed).
pub async fn read_head(stream: &mut impl PairStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        assert_eq!(
            stream.read(&mut byte).await,
            1,
            "EOF in the head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Completes an upgrade by hand: sends [`RAW_UPGRADE`] and reads the 101 response.
pub async fn raw_upgrade(stream: &mut impl PairStream) {
    stream.write_all(RAW_UPGRADE).await;
    let head = read_head(stream).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
}

/// A frame as a server sends it (unmasked).
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

impl Frame {
    /// A close frame's code and reason.
    pub fn close_code_and_reason(&self) -> (u16, &str) {
        assert_eq!(self.opcode, CLOSE, "{self:?}");
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        (code, std::str::from_utf8(&self.payload[2..]).unwrap())
    }
}

/// The whole frames at the start of `bytes` (from a server: unmasked), and how many bytes
/// they took.
pub fn parse_frames(bytes: &[u8]) -> (Vec<Frame>, usize) {
    let (mut frames, mut at) = (Vec::new(), 0);
    while bytes.len() >= at + 2 {
        let (first, second) = (bytes[at], bytes[at + 1]);
        assert_eq!(second & 0x80, 0, "a server frame must not be masked");
        let (len, header) = match second & 0x7f {
            126 if bytes.len() >= at + 4 => (u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize, 4),
            127 if bytes.len() >= at + 10 => (
                u64::from_be_bytes(bytes[at + 2..at + 10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            len => (len as usize, 2),
        };
        if bytes.len() < at + header + len {
            break;
        }
        frames.push(Frame {
            fin: first & 0x80 != 0,
            opcode: first & 0x0f,
            payload: bytes[at + header..at + header + len].to_vec(),
        });
        at += header + len;
    }
    (frames, at)
}

/// Reads until `count` whole frames have arrived; returns them.
pub async fn read_frames(stream: &mut impl PairStream, count: usize) -> Vec<Frame> {
    let mut bytes = Vec::new();
    let mut buf = vec![0; 64 << 10];
    loop {
        let (frames, _) = parse_frames(&bytes);
        if frames.len() >= count {
            assert_eq!(frames.len(), count, "more frames than expected: {frames:?}");
            return frames;
        }
        let read = stream.read(&mut buf).await;
        assert!(read > 0, "EOF after {} of {count} frames", frames.len());
        bytes.extend_from_slice(&buf[..read]);
    }
}

/// A small masked frame, as a client sends it.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(byte, mask)| byte ^ mask));
    frame
}

// ---- connections ----

pub fn builder<A: Adapter>(url: &str) -> ClientBuilder<A::Runtime> {
    ClientBuilder::new(url)
}

pub fn accept_all(_: &Request) -> Decision {
    Decision::Accept(wsflow::Accept::new())
}

/// The connection of an upgrade, or fails the test.
pub fn upgraded<W>(accepted: Result<Accepted<W>, Error>) -> W {
    match accepted.unwrap() {
        Accepted::WebSocket(websocket, _) => websocket,
        Accepted::Responded(request) => panic!("not upgraded: {request:?}"),
    }
}

/// Upgrades the server end of a stream, or fails the test.
pub async fn accept<A: Adapter>(stream: A::Stream, config: Arc<Config>) -> A::Ws {
    match A::accept_with(stream, config, accept_all).await.unwrap() {
        Accepted::WebSocket(websocket, _) => websocket,
        Accepted::Responded(request) => panic!("not upgraded: {request:?}"),
    }
}

/// Both ends of a fresh connection, and the client's write counter.
pub struct Connected<A: Adapter> {
    pub server: A::Ws,
    pub client: A::Ws,
    pub client_writes: WriteCounter,
}

pub async fn connected<A: Adapter>(server_config: Config) -> Connected<A> {
    let (server_end, client_end) = A::pair();
    let client_writes = client_end.write_counter();
    let server = A::spawn(accept::<A>(server_end, Arc::new(server_config)));
    let (client, _) = A::connect_on(builder::<A>("ws://test/"), client_end).await.unwrap();
    Connected {
        server: server.await,
        client,
        client_writes,
    }
}

/// What a [`Adapter::tcp_server`] does with its connection.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // `Flood` is for transport_faults.rs
pub enum Serve {
    /// Echo every message until the connection closes.
    Echo,
    /// With the high-water mark set to `high_water_mark`, send binary messages of
    /// `message_size` bytes until a send would wait (at most 256 MiB), then close with 1000
    /// and receive until the end.
    Flood {
        message_size: usize,
        high_water_mark: usize,
    },
}

/// What a [`Adapter::tcp_server`] saw.
#[derive(Debug)]
#[allow(dead_code)] // `most_buffered` and `closing_took` are for transport_faults.rs
pub struct Served {
    pub closed: Closed,
    /// The most bytes the connection held queued after a send.
    pub most_buffered: usize,
    /// From the close to the end (`Flood`).
    pub closing_took: std::time::Duration,
}

/// Serves a connection as `how` says.
pub async fn serve<A: Adapter, W: Ws>(mut websocket: W, how: Serve) -> Served {
    let Serve::Flood {
        message_size,
        high_water_mark,
    } = how
    else {
        let closed = echo_until_closed(websocket).await;
        return Served {
            closed,
            most_buffered: 0,
            closing_took: std::time::Duration::ZERO,
        };
    };
    websocket.set_high_water_mark(high_water_mark);
    let message = Message::Binary(Bytes::from(vec![0x5a; message_size]));
    let mut most_buffered = 0;
    let mut sent = 0;
    loop {
        let outcome = websocket.try_send(message.clone());
        most_buffered = most_buffered.max(websocket.buffered_amount());
        sent += message_size;
        match outcome {
            Some(Ok(())) => assert!(sent < 256 << 20, "no backpressure after 256 MiB"),
            None => break,
            Some(Err(error)) => panic!("send failed: {error}"),
        }
    }
    let start = A::now();
    // The close waits behind what is queued; the close timeout bounds it.
    let _ = websocket.close(CloseCode::NORMAL, "done").await;
    while let Ok(Some(_)) = websocket.recv().await {}
    Served {
        closed: websocket.closed().expect("the connection ended"),
        most_buffered,
        closing_took: A::now() - start,
    }
}

/// Echoes every message until the connection closes; returns how it closed.
pub async fn echo_until_closed<W: Sender + Receiver>(mut websocket: W) -> Closed {
    while let Some(message) = websocket.recv_message().await.unwrap() {
        websocket.send(message).await.unwrap();
    }
    websocket.closed().unwrap()
}

/// Every event until the end (`recv` returns `None`, and again after that).
pub async fn events_until_closed<R: Receiver>(receiver: &mut R) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await.unwrap() {
        events.push(event);
    }
    assert!(receiver.recv().await.unwrap().is_none(), "an event after the end");
    events
}

/// Closes with 1000 and receives until the end, which must be clean.
pub async fn close_cleanly<W: Ws>(websocket: &mut W) {
    websocket.close(CloseCode::NORMAL, "done").await.unwrap();
    let events = events_until_closed(websocket).await;
    let closed = websocket.closed().unwrap();
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(closed.code(), CloseCode::NORMAL);
    assert!(matches!(events.last(), Some(Event::Closed(_))), "{events:?}");
}

// ---- the async connection (tokio and smol) ----

macro_rules! async_sender {
    ($ty:ident) => {
        impl<S: AsyncStream + Send + 'static> Sender for wsflow_io::$ty<S> {
            fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + Send {
                wsflow_io::$ty::send(self, message)
            }

            fn send_text(&mut self, text: &str) -> impl Future<Output = Result<(), Error>> + Send {
                wsflow_io::$ty::send_text(self, text.to_owned())
            }

            fn ping(&mut self, payload: Bytes) -> impl Future<Output = Result<(), Error>> + Send {
                wsflow_io::$ty::ping(self, payload)
            }

            fn close(&mut self, code: CloseCode, reason: &str) -> impl Future<Output = Result<(), Error>> + Send {
                wsflow_io::$ty::close(self, code, reason)
            }

            fn flush(&mut self) -> impl Future<Output = Result<(), Error>> + Send {
                wsflow_io::$ty::flush(self)
            }
        }
    };
}

macro_rules! async_receiver {
    ($ty:ident, $closed:expr) => {
        impl<S: AsyncStream + Send + 'static> Receiver for wsflow_io::$ty<S> {
            fn recv(&mut self) -> impl Future<Output = Result<Option<Event>, Error>> + Send {
                wsflow_io::$ty::recv(self)
            }

            fn recv_message(&mut self) -> impl Future<Output = Result<Option<Message>, Error>> + Send {
                wsflow_io::$ty::recv_message(self)
            }

            fn closed(&self) -> Option<Closed> {
                $closed(self)
            }
        }
    };
}

async_sender!(WebSocket);
async_sender!(WsSender);
async_receiver!(WebSocket, |websocket: &wsflow_io::WebSocket<S>| websocket
    .closed()
    .cloned());
async_receiver!(WsReceiver, wsflow_io::WsReceiver::closed);

impl<S: AsyncStream + Send + 'static> Ws for wsflow_io::WebSocket<S> {
    type Tx = wsflow_io::WsSender<S>;
    type Rx = wsflow_io::WsReceiver<S>;

    fn send_text_copied(&mut self, text: &str) -> impl Future<Output = Result<(), Error>> + Send {
        wsflow_io::WebSocket::send_text_copied(self, text)
    }

    fn send_binary_copied(&mut self, data: &[u8]) -> impl Future<Output = Result<(), Error>> + Send {
        wsflow_io::WebSocket::send_binary_copied(self, data)
    }

    fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        wsflow_io::WebSocket::send_fragment(self, kind, data, fin)
    }

    fn try_send(&mut self, message: Message) -> Option<Result<(), Error>> {
        wsflow_io::WebSocket::send(self, message).now_or_never()
    }

    fn buffered_amount(&self) -> usize {
        wsflow_io::WebSocket::buffered_amount(self)
    }

    fn set_high_water_mark(&mut self, bytes: usize) {
        wsflow_io::WebSocket::set_high_water_mark(self, bytes);
    }

    fn split(self) -> (Self::Tx, Self::Rx) {
        wsflow_io::WebSocket::split(self)
    }
}
