//! WebSockets over HTTP/2 for a client (RFC 8441, feature `http2`): several WebSockets on
//! one HTTP/2 connection, each on its own stream with its own flow-control window.
//!
//! [`Http2Client::connect`] opens a new HTTP/2 connection the way a [`ClientBuilder`] opens
//! one for HTTP/1.1 (its route and proxy, its TLS configuration offering ALPN `h2` for
//! `wss://`, h2c with prior knowledge for `ws://`); [`Http2Client::handshake`] speaks HTTP/2
//! over a stream the caller opened. Either way the client learns whether the server
//! advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`; [`Http2Client::open`] then sends the
//! extended `CONNECT` that the core's [`ClientNegotiation::new_http2`] prepares and returns
//! a [`WebSocket`] over the stream, exactly as [`ClientBuilder::connect`] returns one over
//! TCP. When [`supports_websockets`](Http2Client::supports_websockets) is `false`, connect
//! over HTTP/1.1 instead ([`ClientBuilder::connect`]). The HTTP/2 framing is the `h2`
//! crate's; the [`Http2Driver`] runs it and must be spawned (or polled) for as long as
//! the connection is used.
//!
//! Each WebSocket's stream may receive 256 KiB ahead of its application; the connection's
//! window is as large as HTTP/2 allows, so a WebSocket whose application stops reading
//! stops only itself. Once the close frames have crossed, a WebSocket ends its stream and is
//! closed without waiting for the server to end its side (see
//! [`Connection::on_http2_stream`](wsflow::Connection::on_http2_stream)); dropped before the
//! server has ended it, its stream stays with the driver until the server does or the close
//! timeout passes, so that its last frames (a close echo) are still sent rather than reset.
//!
//! [`ClientNegotiation::new_http2`]: wsflow::ClientNegotiation::new_http2

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use wsflow::{ClientNegotiation, Response};

use crate::client::{ClientBuilder, OpenTransport};
use crate::runtime::{AsyncStream, Runtime, Timer};
use crate::websocket::WebSocket;
use crate::Error;

/// How much each WebSocket's stream may receive ahead of what its application has read.
const STREAM_WINDOW: u32 = 256 << 10;

/// The connection's window: the largest HTTP/2 allows, so that it never stops a stream
/// while others hold received data that their applications have not read (with HTTP/2's
/// default of 64 KiB, one WebSocket nobody reads stops every other one). What is held stays
/// bounded by [`STREAM_WINDOW`] per WebSocket that this client opened.
const CONNECTION_WINDOW: u32 = (1 << 31) - 1;

/// The most header bytes (decoded, as HTTP/2 counts them) taken in one response: the
/// server is a peer like any other, and `h2`'s default is 16 MiB.
const MAX_HEADER_LIST: u32 = 64 << 10;

/// One HTTP/2 connection that opens WebSockets (RFC 8441) on its streams.
///
/// ```no_run
/// # async fn run<S: wsflow_io::AsyncStream + Send + 'static>(tcp: S) -> Result<(), wsflow_io::Error>
/// # where S::Runtime: wsflow_io::Runtime {
/// use std::time::Duration;
/// use wsflow_io::{ClientBuilder, Http2Client};
///
/// let (mut client, driver) = Http2Client::handshake(tcp, Duration::from_secs(10)).await?;
/// // spawn `driver` on the runtime (e.g. `tokio::spawn(driver)`), then:
/// assert!(client.supports_websockets());
/// let (mut chat, _response) = client.open(ClientBuilder::<S::Runtime>::new("ws://example.com/chat")).await?;
/// let (mut feed, _response) = client.open(ClientBuilder::<S::Runtime>::new("ws://example.com/feed")).await?;
/// chat.send_text("hello").await?;
/// # drop((driver, feed)); Ok(()) }
/// ```
pub struct Http2Client<R> {
    send: h2::client::SendRequest<Bytes>,
    /// Where dropped WebSockets leave their streams for the driver (see [`Parked`]).
    parked: Arc<Mutex<Parked>>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Http2Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Client")
            .field("supports_websockets", &self.send.is_extended_connect_protocol_enabled())
            .finish_non_exhaustive()
    }
}

/// Runs an [`Http2Client`]'s connection (its frames, pings and flow control): spawn it,
/// or poll it alongside. It ends with the connection, `Ok` when it closed cleanly.
#[must_use = "the HTTP/2 connection only runs while its driver is polled"]
pub struct Http2Driver<S: AsyncStream> {
    connection: h2::client::Connection<H2Io<S>, Bytes>,
    parked: Arc<Mutex<Parked>>,
    /// Fires at the earliest parked stream's deadline.
    timer: Option<<S::Runtime as Runtime>::Timer>,
}

impl<S: AsyncStream> std::fmt::Debug for Http2Driver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Driver").finish_non_exhaustive()
    }
}

impl<S: AsyncStream> Future for Http2Driver<S> {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(deadline) = lock(&this.parked).poll(cx, S::Runtime::now()) {
            match &mut this.timer {
                Some(timer) => timer.reset(deadline),
                None => this.timer = Some(S::Runtime::timer(deadline)),
            }
            if let Some(timer) = &mut this.timer {
                if timer.poll_fired(cx).is_ready() {
                    cx.waker().wake_by_ref(); // the deadline has passed: poll again
                }
            }
        }
        Pin::new(&mut this.connection).poll(cx).map_err(h2_error)
    }
}

/// Streams of WebSockets that were dropped after ending their side while the server had
/// not ended its own. Dropping h2's handles then would reset the stream (`CANCEL`) and
/// discard what is still buffered for it, such as the close echo of a close the server
/// started: the driver holds them instead, reading (and discarding) what still comes, until
/// the server ends the stream or the close timeout passes.
#[derive(Default)]
struct Parked {
    streams: Vec<ParkedStream>,
    waker: Option<std::task::Waker>,
}

struct ParkedStream {
    /// Held so that the stream is not reset while it is parked.
    _send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    /// How long it may stay: the deadline is set when the driver first sees it.
    linger: Duration,
    deadline: Option<std::time::Instant>,
}

impl Parked {
    /// Reads what the parked streams receive; lets go of those the server ended, that
    /// failed, or whose deadline has passed. Returns the next deadline, if any is left.
    fn poll(&mut self, cx: &mut Context<'_>, now: std::time::Instant) -> Option<std::time::Instant> {
        if !self.waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        self.streams.retain_mut(|parked| {
            if now >= *parked.deadline.get_or_insert(now + parked.linger) {
                return false;
            }
            loop {
                match parked.recv.poll_data(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        let _ = parked.recv.flow_control().release_capacity(data.len());
                    }
                    Poll::Ready(_) => return false,
                    Poll::Pending => return true,
                }
            }
        });
        self.streams.iter().filter_map(|parked| parked.deadline).min()
    }
}

fn lock(parked: &Mutex<Parked>) -> std::sync::MutexGuard<'_, Parked> {
    parked.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<R: Runtime> Http2Client<R> {
    /// Starts HTTP/2 over `stream` (the client preface and SETTINGS), then waits one PING
    /// round trip, which the server answers only after its own SETTINGS: by then
    /// [`supports_websockets`](Self::supports_websockets) is known.
    ///
    /// # Errors
    /// [`Error::Transport`] when the server does not speak HTTP/2 (an HTTP/1.1-only server
    /// answers the preface with an error and closes), the stream fails, or no answer comes
    /// within `timeout` (`TimedOut`).
    pub async fn handshake<S>(stream: S, timeout: Duration) -> Result<(Self, Http2Driver<S>), Error>
    where
        S: AsyncStream<Runtime = R>,
    {
        let deadline = R::now() + timeout;
        let handshake = h2::client::Builder::new()
            .enable_push(false)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(MAX_HEADER_LIST)
            .handshake(H2Io(stream));
        let (send, mut connection) = within::<R, _>(deadline, async { handshake.await.map_err(h2_error) }).await?;
        let mut ping = connection
            .ping_pong()
            .ok_or_else(|| Error::Transport(io::Error::other("HTTP/2 ping unavailable")))?;
        ping.send_ping(h2::Ping::opaque()).map_err(h2_error)?;
        let pong = poll_fn(|cx| {
            if let Poll::Ready(result) = Pin::new(&mut connection).poll(cx) {
                result.map_err(h2_error)?;
                return Poll::Ready(Err(Error::Closed));
            }
            ping.poll_pong(cx).map(|pong| pong.map(drop).map_err(h2_error))
        });
        within::<R, _>(deadline, pong).await?;
        let parked = Arc::new(Mutex::new(Parked::default()));
        let client = Self {
            send,
            parked: parked.clone(),
            _runtime: PhantomData,
        };
        let driver = Http2Driver {
            connection,
            parked,
            timer: None,
        };
        Ok((client, driver))
    }

    /// Opens a new HTTP/2 connection to `builder`'s server, the way the adapter's `connect`
    /// opens one for HTTP/1.1 (the route, its proxy, the TLS configuration): for `wss://`,
    /// TLS offering only `h2` in ALPN; for `ws://`, HTTP/2 with prior knowledge (h2c).
    /// Then [`handshake`](Self::handshake) within the builder's
    /// [`Config::handshake_timeout`](wsflow::Config::handshake_timeout). The driver must
    /// be spawned; the builder can then be given to [`open`](Self::open).
    ///
    /// ```no_run
    /// # async fn run<R: wsflow_io::OpenTransport>(spawn: impl Fn(wsflow_io::Http2Driver<R::Stream>)) -> Result<(), wsflow_io::Error> {
    /// use wsflow_io::{ClientBuilder, Http2Client};
    ///
    /// let builder = ClientBuilder::<R>::new("wss://example.com/chat");
    /// match Http2Client::connect(&builder).await {
    ///     Ok((mut client, driver)) if client.supports_websockets() => {
    ///         spawn(driver);
    ///         let (mut chat, _) = client.open(builder.clone()).await?;
    ///         let (mut feed, _) = client.open(ClientBuilder::new("wss://example.com/feed")).await?;
    ///         # drop((chat, feed));
    ///     }
    ///     // No HTTP/2, or no WebSockets over it: HTTP/1.1 (`builder.connect()`).
    ///     _ => {}
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As the adapter's `connect` for the route, TCP and TLS; [`Error::Transport`] with
    /// `Unsupported` when TLS's ALPN did not choose `h2`, and as
    /// [`handshake`](Self::handshake) (an HTTP/1.1-only server over `ws://`).
    pub async fn connect(builder: &ClientBuilder<R>) -> Result<(Self, Http2Driver<R::Stream>), Error>
    where
        R: OpenTransport,
    {
        let secure = builder.request()?.is_secure();
        let opened = R::open_transport(builder, &[b"h2"]).await?;
        if !opened.read_ahead.is_empty() {
            return Err(Error::Transport(io::Error::new(
                io::ErrorKind::InvalidData,
                "the proxy sent bytes after its reply, before the server spoke",
            )));
        }
        if secure && opened.alpn.as_deref() != Some(b"h2") {
            return Err(Error::Transport(io::Error::new(
                io::ErrorKind::Unsupported,
                "the server did not choose HTTP/2 (ALPN h2)",
            )));
        }
        Self::handshake(opened.stream, builder.get_config().get_handshake_timeout()).await
    }

    /// Whether the server advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3): if
    /// not, it cannot take WebSockets over HTTP/2; connect over HTTP/1.1.
    pub fn supports_websockets(&self) -> bool {
        self.send.is_extended_connect_protocol_enabled()
    }

    /// Opens a WebSocket on a new stream: the extended `CONNECT` for `builder`'s URL,
    /// subprotocols, headers and [`Config`](wsflow::Config) (its permessage-deflate offer),
    /// checked as over HTTP/1.1 once the server answers `2xx`. Waits while the server's
    /// limit of concurrent streams is reached. The builder's proxy, TLS and read-ahead
    /// settings do not apply: the connection is already open.
    ///
    /// # Errors
    /// [`Error::Url`], [`Error::Send`] for an invalid header; [`Error::Rejected`] when
    /// the server answers with another status (without the body); [`Error::Handshake`]
    /// for an answer that does not match the offer; [`Error::Transport`] when the server
    /// does not support WebSockets over HTTP/2 (`Unsupported`), refuses the stream or the
    /// connection fails.
    pub async fn open(&mut self, builder: ClientBuilder<R>) -> Result<(WebSocket<Http2Stream<R>>, Response), Error> {
        if !self.supports_websockets() {
            return Err(Error::Transport(io::Error::new(
                io::ErrorKind::Unsupported,
                "the server did not enable WebSockets over HTTP/2 (SETTINGS_ENABLE_CONNECT_PROTOCOL)",
            )));
        }
        let mut entropy = [0; 32];
        getrandom::fill(&mut entropy).map_err(io::Error::from)?;
        let negotiation = ClientNegotiation::new_http2(builder.request()?, builder.get_config().clone(), entropy)?;
        let mut request = http::Request::connect(format!(
            "{}://{}{}",
            negotiation.scheme(),
            negotiation.authority(),
            negotiation.target()
        ))
        .version(http::Version::HTTP_2)
        .extension(h2::ext::Protocol::from_static("websocket"));
        for (name, value) in negotiation.headers().iter() {
            request = request.header(name.to_ascii_lowercase(), value);
        }
        let request = request
            .body(())
            .map_err(|error| Error::Transport(io::Error::new(io::ErrorKind::InvalidInput, error)))?;
        // Waiting for a free stream (the server's limit of concurrent streams) is not
        // bounded; the answer is, by the handshake timeout.
        poll_fn(|cx| self.send.poll_ready(cx)).await.map_err(h2_error)?;
        let (response, send) = self.send.send_request(request, false).map_err(h2_error)?;
        let deadline = R::now() + builder.get_config().get_handshake_timeout();
        let response = within::<R, _>(deadline, async { response.await.map_err(h2_error) }).await?;
        let (parts, recv) = response.into_parts();
        let head = Response::from(&parts);
        if !parts.status.is_success() {
            return Err(Error::Rejected(Box::new(head)));
        }
        let connection = negotiation.into_connection(R::now(), &head).map_err(Error::Handshake)?;
        let stream = Http2Stream {
            send: Some(send),
            recv: Some(recv),
            parked: self.parked.clone(),
            linger: builder.get_config().get_close_timeout(),
            read: Bytes::new(),
            ended: false,
            _runtime: PhantomData,
        };
        Ok((WebSocket::from_upgraded(stream, connection, &[]), head))
    }
}

/// `future`, or `TimedOut` at `deadline`.
async fn within<R: Runtime, T>(
    deadline: std::time::Instant,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let mut timer = R::timer(deadline);
    let mut future = std::pin::pin!(future);
    poll_fn(|cx| {
        if timer.poll_fired(cx).is_ready() {
            return Poll::Ready(Err(Error::Transport(io::Error::new(
                io::ErrorKind::TimedOut,
                "HTTP/2 handshake timed out",
            ))));
        }
        future.as_mut().poll(cx)
    })
    .await
}

fn h2_error(error: h2::Error) -> Error {
    Error::Transport(h2_io_error(error))
}

fn h2_io_error(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error.into_io().unwrap_or_else(|| io::Error::other("HTTP/2 I/O error"));
    }
    let kind = if error.is_reset() || error.is_go_away() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::InvalidData
    };
    io::Error::new(kind, error)
}

/// The transport under `h2`, which reads and writes through tokio's I/O traits.
struct H2Io<S>(S);

impl<S: AsyncStream> tokio::io::AsyncRead for H2Io<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<io::Result<()>> {
        let read = ready!(self.get_mut().0.poll_read(cx, buf.initialize_unfilled()))?;
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncStream> tokio::io::AsyncWrite for H2Io<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_shutdown(cx)
    }
}

/// A WebSocket's HTTP/2 stream as a byte stream: reads release flow-control capacity as
/// the WebSocket consumes them (so a slow reader holds back only its own stream's
/// sender), writes wait for the stream's send window, shutdown ends the stream.
pub struct Http2Stream<R> {
    /// `None` only once dropped.
    send: Option<h2::SendStream<Bytes>>,
    recv: Option<h2::RecvStream>,
    /// Received and not yet read.
    read: Bytes,
    /// `END_STREAM` sent.
    ended: bool,
    /// The driver's, for the stream if it is dropped before the server ended it.
    parked: Arc<Mutex<Parked>>,
    /// How long a dropped stream may wait for the server's end ([`Config::close_timeout`]).
    ///
    /// [`Config::close_timeout`]: wsflow::Config::close_timeout
    linger: Duration,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Http2Stream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Stream")
            .field("buffered", &self.read.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<R> Drop for Http2Stream<R> {
    /// A stream whose server has not ended it would be reset as its handles drop, and what
    /// is still buffered for it (the last frames, a close echo) discarded: once our side
    /// has ended, the driver holds it until the server ends it or the close timeout passes.
    fn drop(&mut self) {
        let (Some(send), Some(recv)) = (self.send.take(), self.recv.take()) else {
            return;
        };
        if !self.ended || recv.is_end_stream() {
            return;
        }
        let mut parked = lock(&self.parked);
        parked.streams.push(ParkedStream {
            _send: send,
            recv,
            linger: self.linger,
            deadline: None,
        });
        if let Some(waker) = parked.waker.take() {
            waker.wake();
        }
    }
}

impl<R: Runtime> AsyncStream for Http2Stream<R> {
    type Runtime = R;

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        while self.read.is_empty() {
            let Some(recv) = self.recv.as_mut() else {
                return Poll::Ready(Ok(0));
            };
            match ready!(recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Received data counts against the windows until released.
                    let _ = recv.flow_control().release_capacity(data.len());
                    self.read = data;
                }
                None => return Poll::Ready(Ok(0)),
                Some(Err(error)) => return Poll::Ready(Err(h2_io_error(error))),
            }
        }
        let len = buf.len().min(self.read.len());
        buf[..len].copy_from_slice(&self.read.split_to(len));
        Poll::Ready(Ok(len))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let Some(send) = self.send.as_mut().filter(|_| !self.ended) else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        send.reserve_capacity(buf.len());
        loop {
            let capacity = send.capacity();
            if capacity > 0 {
                let len = capacity.min(buf.len());
                send.send_data(Bytes::copy_from_slice(&buf[..len]), false)
                    .map_err(h2_io_error)?;
                return Poll::Ready(Ok(len));
            }
            match send.poll_capacity(cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(h2_io_error(error))),
                Poll::Ready(None) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                Poll::Pending => {
                    // A reset while waiting for the window ends the wait.
                    return match send.poll_reset(cx) {
                        Poll::Ready(Ok(reason)) => Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            format!("stream reset: {reason}"),
                        ))),
                        Poll::Ready(Err(error)) => Poll::Ready(Err(h2_io_error(error))),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match bufs.iter().find(|buf| !buf.is_empty()) {
            Some(buf) => self.poll_write(cx, buf),
            None => Poll::Ready(Ok(0)),
        }
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The driver writes what the stream sent.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(send) = self.send.as_mut().filter(|_| !self.ended) {
            self.ended = true;
            send.send_data(Bytes::new(), true).map_err(h2_io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}
