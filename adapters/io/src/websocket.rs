//! [`WebSocket`], its halves [`WsSender`] and [`WsReceiver`], and their `Stream`/`Sink` impls:
//! one async connection for every runtime.

use std::future::poll_fn;
use std::ops::DerefMut;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use wsflow::{
    CloseCode, Closed, Config, Connection, Event, Message, MessageKind, PreparedMessage, SendError, State, Utf8Bytes,
};

use crate::driver::{Io, Task};
use crate::hub::{Delivery, Subscriber};
use crate::runtime::AsyncStream;
use crate::trace::ConnectionSpan;
use crate::Error;

/// Default high-water mark: sending waits while more than this many bytes are queued (1 MiB).
pub const DEFAULT_HIGH_WATER_MARK: usize = 1 << 20;

/// The connection and its transport: what [`WebSocket`] owns and its halves share.
#[derive(Debug)]
struct Inner<S: AsyncStream> {
    io: Io<S>,
    conn: Connection,
    /// [`Event::Closed`] came from the core while its last bytes (a close frame, the
    /// shutdown) were still to be written: handed over once they are, or at the core's
    /// linger deadline.
    closing: Option<Box<Closed>>,
    /// Set when [`Event::Closed`] has been handed to the application.
    closed: Option<Box<Closed>>,
    high_water_mark: usize,
    /// Not split: the task that sends is the one that receives, so what it sends while
    /// received events wait is written when `recv` runs out of them (one write per read).
    batch_sends: bool,
    /// The connection's span (zero-sized without feature `tracing`).
    span: ConnectionSpan,
}

impl<S: AsyncStream> Inner<S> {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, Error>> {
        if self.closed.is_some() {
            return Poll::Ready(Ok(None));
        }
        if self.closing.is_none() {
            let event = ready!(self.io.poll_event(
                &mut self.conn,
                Task::Receiver,
                cx,
                Connection::poll_event,
                |conn: &Connection| conn.io_state().next_is_data()
            ))?;
            let Event::Closed(closed) = event else {
                return Poll::Ready(Ok(Some(event)));
            };
            self.span.closed(&closed);
            self.closing = Some(closed);
        }
        // The end: the last bytes are written before `Closed` is handed over, for at most
        // the core's linger deadline.
        ready!(self.io.poll_linger(&mut self.conn, Task::Receiver, cx));
        let Some(closed) = self.closing.take() else {
            return Poll::Ready(Ok(None));
        };
        self.closed = Some(closed.clone());
        Poll::Ready(Ok(Some(Event::Closed(closed))))
    }

    fn poll_recv_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        // The messages of a read are handed over before anything else is done.
        if let Some(message) = self.conn.poll_message() {
            return Poll::Ready(Ok(Some(message)));
        }
        loop {
            match ready!(self.poll_recv(cx))? {
                Some(Event::Message(message)) => return Poll::Ready(Ok(Some(message))),
                Some(_) => {}
                None => return Poll::Ready(Ok(None)),
            }
        }
    }

    /// Writes until at most `high_water_mark` bytes remain queued (0: all of them).
    fn poll_drain(&mut self, cx: &mut Context<'_>, high_water_mark: usize) -> Poll<Result<(), Error>> {
        let finished = |conn: &Connection| conn.state() == State::Closed;
        let drained = self
            .io
            .poll_drain(&mut self.conn, Task::Sender, cx, high_water_mark, finished);
        drained.map_err(Error::from)
    }

    /// After a send: writes now, unless the write may wait for the end of the read's
    /// events (not split, within the mark); then waits while over the mark.
    fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.batch_sends
            && self
                .conn
                .io_state()
                .write_may_wait(self.io.unwritten(), self.high_water_mark)
        {
            return Poll::Ready(Ok(()));
        }
        self.poll_drain(cx, self.high_water_mark)
    }

    /// `Sink::poll_ready`: ready while within the mark, without writing, so that messages
    /// fed one after another go out together at the flush; over it, writes down to it.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.buffered_amount() <= self.high_water_mark {
            return Poll::Ready(Ok(()));
        }
        self.poll_drain(cx, self.high_water_mark)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.io_state().can_send() {
            self.conn.close(Io::<S>::now(), CloseCode::NORMAL, "")?;
        }
        self.poll_drain(cx, 0)
    }

    fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount() + self.io.unwritten()
    }
}

/// A WebSocket connection over an async stream `S` of some runtime (with `wsflow-tokio`:
/// a tokio `TcpStream`, a TLS stream, ...; with `wsflow-smol`: any futures-io stream).
///
/// Incoming data, pings and timers are handled while [`recv`](Self::recv) (or the
/// `Stream` impl) is polled, so keep a task reading: it also writes the automatic pongs and
/// close echoes. Sending waits while more than the
/// [high-water mark](Self::set_high_water_mark) is queued. For a reader task and a writer
/// task, [`split`](Self::split) it.
///
/// Writes are batched: what is sent while messages of the last read are still waiting to
/// be received is written once `recv` runs out of them (before it waits for the stream),
/// so a loop that answers each message makes one write per read, not one per message.
/// [`flush`](Self::flush) writes at once.
///
/// Implements `Stream<Item = Result<Message, Error>>` (messages only, like
/// [`recv_message`](Self::recv_message)) and `Sink<Message>` (`feed` several messages and
/// `flush` to write them in one vectored write; `close` sends a 1000 close frame).
///
/// The end of a connection follows the core's rule (see [`Event::Closed`]): when the core
/// reports it, `recv` first writes what is left (the close echo, the shutdown), for at
/// most [`Config::close_timeout`], and then returns it; the stream may be dropped from
/// then on.
///
/// ## Cancel safety
/// Every async method keeps its progress in the connection, so dropping its future loses
/// nothing: [`recv`](Self::recv) and [`recv_message`](Self::recv_message) can be used in
/// `select!`; [`flush`](Self::flush) keeps what it wrote; `send` and its kin queue their
/// frame at the first poll and a later cancel only stops the wait for backpressure;
/// [`close`](Self::close) queues its close frame once.
#[derive(Debug)]
pub struct WebSocket<S: AsyncStream> {
    inner: Inner<S>,
}

impl<S: AsyncStream> WebSocket<S> {
    /// A connection over `stream`, driving `conn` (from a handshake, or a bare
    /// [`Connection`] for a stream upgraded elsewhere). What `conn` has queued (the `101`
    /// response after `accept`) is written at the first send, flush or receive.
    pub(crate) fn new(io: Io<S>, conn: Connection, span: ConnectionSpan) -> Self {
        Self {
            inner: Inner {
                io,
                conn,
                closing: None,
                closed: None,
                high_water_mark: DEFAULT_HIGH_WATER_MARK,
                batch_sends: true,
                span,
            },
        }
    }

    /// Adopts a stream that was upgraded elsewhere (by an HTTP server that answered the
    /// upgrade itself) with the [`Connection`] negotiated for it. `read_past_head` is what
    /// the server read after the request head (hyper's `Parts::read_buf`): the connection
    /// gets it first, before anything read from `stream`.
    pub fn from_upgraded(stream: S, mut conn: Connection, read_past_head: &[u8]) -> Self {
        if !read_past_head.is_empty() {
            conn.handle_data(Io::<S>::now(), read_past_head);
        }
        let span = ConnectionSpan::new(conn.role(), None);
        Self::new(Io::new(stream), conn, span)
    }

    fn with_inner<R>(&mut self, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
        f(&mut self.inner)
    }

    fn read_inner<R>(&self, f: impl FnOnce(&Inner<S>) -> R) -> R {
        f(&self.inner)
    }

    /// How the connection ended, once [`recv`](Self::recv) has returned [`Event::Closed`].
    pub fn closed(&self) -> Option<&Closed> {
        self.inner.closed.as_deref()
    }

    /// The underlying stream (the runtime's own, inside the shim's wrapper).
    pub fn get_ref(&self) -> &S::Target
    where
        S: DerefMut,
    {
        &self.inner.io.stream
    }

    /// The underlying stream, e.g. to set socket options. Reading or writing it directly
    /// corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S::Target
    where
        S: DerefMut,
    {
        &mut self.inner.io.stream
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        self.inner.conn.config()
    }

    /// Splits the connection into a sending and a receiving half, for two tasks. They share
    /// the connection behind a mutex held only while a poll runs, never across an await.
    pub fn split(mut self) -> (WsSender<S>, WsReceiver<S>) {
        self.inner.io.share();
        // The receiving task may be busy elsewhere while events wait: sends write at once.
        let shared = Arc::new(Mutex::new(Inner {
            batch_sends: false,
            ..self.inner
        }));
        (WsSender { shared: shared.clone() }, WsReceiver { shared })
    }

    /// The next complete message from the peer, as [`recv_message`](Self::recv_message),
    /// while writing what a [`hub`](crate::hub) delivers to `subscriber` meanwhile: a hub
    /// member in one task, without [`split`](Self::split) and a writer task
    /// ([`WsSender::forward`]), which costs a task, a shared half and a wake-up across tasks
    /// per batch. Batches are taken while at most the high-water mark is queued; a member
    /// that does not read stops taking them, and the hub's
    /// [`SlowConsumer`](crate::hub::SlowConsumer) policy applies. `on_dropped(count)` is as
    /// for [`forward`](WsSender::forward). When the hub gives up on the member
    /// ([`SlowConsumer::Close`](crate::hub::SlowConsumer::Close)) the connection is closed with
    /// 1008 "too slow", and this returns `None` once it has closed. After
    /// [`Subscriber::close`] it is `recv_message`.
    ///
    /// ```no_run
    /// # async fn member<S: wsflow_io::AsyncStream>(mut websocket: wsflow_io::WebSocket<S>, hub: wsflow_io::hub::Hub) -> Result<(), wsflow_io::Error> {
    /// let subscriber = hub.subscriber();
    /// subscriber.subscribe("room");
    /// while let Some(message) = websocket.recv_forwarding(&subscriber, |_| None).await? {
    ///     hub.publish("room", message);
    /// }
    /// subscriber.close();
    /// # Ok(()) }
    /// ```
    ///
    /// Cancel safe: a batch taken from the subscriber is queued on the connection at once.
    ///
    /// # Errors
    /// As [`recv_message`](Self::recv_message).
    pub async fn recv_forwarding(
        &mut self,
        subscriber: &Subscriber,
        mut on_dropped: impl FnMut(u64) -> Option<Message>,
    ) -> Result<Option<Message>, Error> {
        let mut batch = Vec::new();
        poll_fn(|cx| {
            let inner = &mut self.inner;
            // The messages of a read are handed over first, as by `recv_message`.
            if let Some(message) = inner.conn.poll_message() {
                return Poll::Ready(Ok(Some(message)));
            }
            loop {
                // Whole messages wait in the hub while a fragmented one is being sent.
                let mut over_mark = false;
                while {
                    let state = inner.conn.io_state();
                    state.can_send() && !state.sending_fragments()
                } {
                    if inner.buffered_amount() > inner.high_water_mark {
                        over_mark = true;
                        if subscriber.poll_too_slow(cx).is_ready() {
                            inner
                                .conn
                                .close(Io::<S>::now(), CloseCode::POLICY_VIOLATION, "too slow")?;
                        }
                        break;
                    }
                    match subscriber.poll_batch(cx, &mut batch) {
                        Poll::Ready(Delivery::Messages { dropped }) => {
                            if let Some(notice) = (dropped > 0).then(|| on_dropped(dropped)).flatten() {
                                inner.conn.send(notice)?;
                            }
                            for message in batch.drain(..) {
                                inner.conn.send_prepared(&message, usize::MAX)?;
                            }
                        }
                        Poll::Ready(Delivery::TooSlow) => {
                            inner
                                .conn
                                .close(Io::<S>::now(), CloseCode::POLICY_VIOLATION, "too slow")?;
                        }
                        Poll::Ready(Delivery::Closed) | Poll::Pending => break,
                    }
                }
                // Writes what is queued, as far as the peer takes it. When that brought the
                // queue back under the mark, the subscriber's queue is looked at again
                // (nothing else would wake this task for it). A peer that is gone is no
                // error here: the read below reports the end.
                match inner.poll_drain(cx, 0) {
                    Poll::Ready(Ok(())) if over_mark => continue,
                    Poll::Ready(Err(Error::Transport(error))) if crate::is_peer_gone(&error) => {}
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Ready(Ok(())) | Poll::Pending => {}
                }
                break;
            }
            inner.poll_recv_message(cx)
        })
        .await
    }
}

/// The sending half of a [`WebSocket`], from [`WebSocket::split`]. Implements `Sink<Message>`.
#[derive(Debug)]
pub struct WsSender<S: AsyncStream> {
    shared: Arc<Mutex<Inner<S>>>,
}

impl<S: AsyncStream> WsSender<S> {
    fn with_inner<R>(&mut self, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
        f(&mut self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn read_inner<R>(&self, f: impl FnOnce(&Inner<S>) -> R) -> R {
        f(&self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`]. Implements
/// `Stream<Item = Result<Message, Error>>`. Keep polling it: it answers pings, echoes the
/// close frame and runs the timers.
#[derive(Debug)]
pub struct WsReceiver<S: AsyncStream> {
    shared: Arc<Mutex<Inner<S>>>,
}

impl<S: AsyncStream> WsReceiver<S> {
    fn with_inner<R>(&mut self, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
        f(&mut self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn read_inner<R>(&self, f: impl FnOnce(&Inner<S>) -> R) -> R {
        f(&self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// How the connection ended, once [`recv`](Self::recv) has returned [`Event::Closed`].
    pub fn closed(&self) -> Option<Closed> {
        self.read_inner(|inner| inner.closed.as_deref().cloned())
    }
}

/// The sending methods of [`WebSocket`] and [`WsSender`].
macro_rules! sending_methods {
    ($ty:ident) => {
        impl<S: AsyncStream> $ty<S> {
            /// Queues a command's frames, then writes until at most the high-water mark
            /// is queued.
            async fn queue(
                &mut self,
                command: impl FnOnce(&mut Connection, Instant) -> Result<(), SendError>,
            ) -> Result<(), Error> {
                self.with_inner(|inner| command(&mut inner.conn, Io::<S>::now()))?;
                poll_fn(|cx| self.with_inner(|inner| inner.poll_sent(cx))).await
            }

            /// Sends a message: queues it, writes, and waits while more than the
            /// high-water mark is queued (backpressure from a slow peer). On a
            /// [`WebSocket`] (not split) while received messages are waiting, the write
            /// is left to `recv`, which makes it once they have been handed over.
            ///
            /// Cancel safety: the message is queued when the future is first polled;
            /// cancelling it later only stops the wait, the message still goes out.
            ///
            /// # Errors
            /// [`Error::Send`] after a close frame was sent or while a fragmented message
            /// is being sent; [`Error::Transport`] if the stream fails.
            pub async fn send(&mut self, message: Message) -> Result<(), Error> {
                self.queue(|conn, _| conn.send(message)).await
            }

            /// Sends a [`PreparedMessage`] (framed once for many connections; see
            /// [`Connection::send_prepared`]), as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
                self.queue(|conn, _| conn.send_prepared(message, usize::MAX))
                    .await
            }

            /// Writes what a [`hub`](crate::hub) delivers to `subscriber`, a batch at a
            /// time (every message queued since the last write goes out in one write),
            /// waiting while more than the high-water mark is queued. When the hub dropped
            /// messages for this subscriber (a slow reader under
            /// [`DropOldest`](crate::hub::SlowConsumer::DropOldest) or
            /// [`Skip`](crate::hub::SlowConsumer::Skip)), the message `on_dropped(count)`
            /// returns goes out first (`|_| None`: nothing). Returns `Ok` when the
            /// subscriber is [closed](Subscriber::close), and after closing the connection
            /// with 1008 "too slow" when the hub gave up on it
            /// ([`SlowConsumer::Close`](crate::hub::SlowConsumer::Close)).
            ///
            /// Cancel safety: a batch taken from the subscriber is queued on the
            /// connection at once; cancelling only stops the wait.
            ///
            /// # Errors
            /// As [`send`](Self::send) (the connection closed, the stream failed).
            pub async fn forward(
                &mut self,
                subscriber: &Subscriber,
                mut on_dropped: impl FnMut(u64) -> Option<Message>,
            ) -> Result<(), Error> {
                let mut batch = Vec::new();
                loop {
                    match subscriber.next_batch(&mut batch).await {
                        Delivery::Messages { dropped } => {
                            let notice = (dropped > 0).then(|| on_dropped(dropped)).flatten();
                            self.with_inner(|inner| {
                                notice.map_or(Ok(()), |notice| inner.conn.send(notice))?;
                                batch
                                    .drain(..)
                                    .try_for_each(|message| inner.conn.send_prepared(&message, usize::MAX))
                            })?;
                            let mark = self.high_water_mark();
                            let drained = poll_fn(|cx| {
                                if subscriber.poll_too_slow(cx).is_ready() {
                                    return Poll::Ready(Ok(false));
                                }
                                self.with_inner(|inner| inner.poll_drain(cx, mark))
                                    .map_ok(|()| true)
                            });
                            if !drained.await? {
                                return self.close(CloseCode::POLICY_VIOLATION, "too slow").await;
                            }
                        }
                        Delivery::TooSlow => return self.close(CloseCode::POLICY_VIOLATION, "too slow").await,
                        Delivery::Closed => return Ok(()),
                    }
                }
            }

            /// Sends a message without compressing it even when permessage-deflate was
            /// negotiated (data that does not compress, such as images), as
            /// [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_uncompressed(&mut self, message: Message) -> Result<(), Error> {
                self.queue(|conn, _| conn.send_uncompressed(message)).await
            }

            /// Sends a text message, as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
                self.send(Message::text(text)).await
            }

            /// Sends a binary message, as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
                self.send(Message::binary(data)).await
            }

            /// Sends a text message copied from `text` (see [`Connection::send_copied`]:
            /// no allocation for a small one), as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_text_copied(&mut self, text: &str) -> Result<(), Error> {
                self.queue(|conn, _| conn.send_copied(text)).await
            }

            /// Sends a binary message copied from `data`, as
            /// [`send_text_copied`](Self::send_text_copied).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_binary_copied(&mut self, data: &[u8]) -> Result<(), Error> {
                self.queue(|conn, _| conn.send_copied(data)).await
            }

            /// Sends one fragment of a message (`fin` ends it), as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send), and [`Error::Send`] for a text fragment that
            /// cannot be part of valid UTF-8.
            pub async fn send_fragment(&mut self, kind: MessageKind, data: Bytes, fin: bool) -> Result<(), Error> {
                self.queue(|conn, _| conn.send_fragment(kind, data, fin)).await
            }

            /// Sends a ping (at most 125 bytes), as [`send`](Self::send). Its pong comes
            /// back as [`Event::Pong`] from `recv`.
            ///
            /// # Errors
            /// As [`send`](Self::send), and [`Error::Send`] for a payload over 125 bytes.
            pub async fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
                self.queue(|conn, _| conn.ping(payload)).await
            }

            /// Sends a pong (at most 125 bytes): an unsolicited one, or the answer to a
            /// ping when [`Config::auto_pong`] is off.
            ///
            /// # Errors
            /// As [`ping`](Self::ping).
            pub async fn pong(&mut self, payload: Bytes) -> Result<(), Error> {
                self.queue(|conn, _| conn.pong(payload)).await
            }

            /// Starts the closing handshake: sends a close frame with `code` and `reason`
            /// (at most 123 bytes) and writes everything queued. Keep receiving until
            /// [`Event::Closed`] (or `None`) to finish it; the core's close timeout bounds
            /// the wait for the peer. Cancel safe once polled (the frame stays queued).
            ///
            /// # Errors
            /// [`Error::Send`] if a close frame was already sent or for a code or reason
            /// that may not be sent; [`Error::Transport`] if the stream fails.
            pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
                self.with_inner(|inner| inner.conn.close(Io::<S>::now(), code, reason))?;
                self.flush().await
            }

            /// Writes everything queued (and the shutdown after the closing handshake).
            /// Returns early only when the connection has closed (the core's timers bound
            /// a peer that stops reading once a close or keepalive is under way).
            /// Cancel safe: what was written stays written.
            ///
            /// # Errors
            /// [`Error::Transport`] if the stream fails.
            pub async fn flush(&mut self) -> Result<(), Error> {
                poll_fn(|cx| self.with_inner(|inner| inner.poll_drain(cx, 0))).await
            }

            /// Bytes queued to send and not yet written to the stream.
            pub fn buffered_amount(&self) -> usize {
                self.read_inner(Inner::buffered_amount)
            }

            /// The high-water mark for sending (default [`DEFAULT_HIGH_WATER_MARK`]).
            pub fn high_water_mark(&self) -> usize {
                self.read_inner(|inner| inner.high_water_mark)
            }

            /// Sets how many queued bytes make sending wait (at least 1). The halves of a
            /// [`split`](WebSocket::split) share it.
            pub fn set_high_water_mark(&mut self, bytes: usize) {
                self.with_inner(|inner| inner.high_water_mark = bytes.max(1));
            }
        }

        impl<S: AsyncStream> Sink<Message> for $ty<S> {
            type Error = Error;

            fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.get_mut().with_inner(|inner| inner.poll_ready(cx))
            }

            fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
                self.get_mut()
                    .with_inner(|inner| inner.conn.send(message))
                    .map_err(Error::from)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.get_mut().with_inner(|inner| inner.poll_drain(cx, 0))
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.get_mut().with_inner(|inner| inner.poll_close(cx))
            }
        }
    };
}

/// The receiving methods of [`WebSocket`] and [`WsReceiver`].
macro_rules! receiving_methods {
    ($ty:ident) => {
        impl<S: AsyncStream> $ty<S> {
            /// The next event: messages (or fragments with [`Config::streaming`]), pings,
            /// pongs, the peer's close frame, and last [`Event::Closed`]; then `None`.
            /// Writes the automatic pongs and close echoes and runs the timers meanwhile.
            ///
            /// Cancel safe: no data is lost if the future is dropped.
            ///
            /// # Errors
            /// [`Error::Transport`] if the stream fails; the next call then returns
            /// [`Event::Closed`]. A peer that resets or aborts the connection is no error:
            /// it ends like EOF, and `Closed` tells whether cleanly.
            pub async fn recv(&mut self) -> Result<Option<Event>, Error> {
                poll_fn(|cx| self.with_inner(|inner| inner.poll_recv(cx))).await
            }

            /// The next complete message, skipping every other event (use
            /// [`recv`](Self::recv) to see fragments with [`Config::streaming`]); `None`
            /// once the connection has closed. Cancel safe.
            ///
            /// # Errors
            /// As [`recv`](Self::recv).
            pub async fn recv_message(&mut self) -> Result<Option<Message>, Error> {
                poll_fn(|cx| self.with_inner(|inner| inner.poll_recv_message(cx))).await
            }
        }

        impl<S: AsyncStream> Stream for $ty<S> {
            type Item = Result<Message, Error>;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                self.get_mut()
                    .with_inner(|inner| inner.poll_recv_message(cx))
                    .map(Result::transpose)
            }
        }
    };
}

sending_methods!(WebSocket);
sending_methods!(WsSender);
receiving_methods!(WebSocket);
receiving_methods!(WsReceiver);
