//! [`WebSocket`], its halves [`WsSender`] and [`WsReceiver`], and their `Stream`/`Sink` impls.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use wsflow::{CloseCode, Closed, Config, Connection, Event, Message, MessageKind, SendError, State, Utf8Bytes};

use crate::io::{Io, Role};
use crate::Error;

/// Default for [`WebSocket::set_high_water_mark`]: sending waits while more than this many
/// bytes are queued (1 MiB).
pub const DEFAULT_HIGH_WATER_MARK: usize = 1 << 20;

/// The connection and its transport: what [`WebSocket`] owns and its halves share.
#[derive(Debug)]
pub(crate) struct Inner<S> {
    io: Io<S>,
    conn: Connection,
    /// Set when [`Event::Closed`] has been handed to the application.
    closed: Option<Box<Closed>>,
    high_water_mark: usize,
    /// Not split: the task that sends is the one that receives, so what it sends while
    /// received events wait is written when `recv` runs out of them (one write per read).
    batch_sends: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, Error>> {
        if self.closed.is_some() {
            return Poll::Ready(Ok(None));
        }
        let event = ready!(self.io.poll_event(
            &mut self.conn,
            Role::Receiver,
            cx,
            Connection::poll_event,
            Connection::next_event_is_data
        ))?;
        if let Event::Closed(closed) = &event {
            self.closed = Some(closed.clone());
        }
        Poll::Ready(Ok(Some(event)))
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
            .poll_drain(&mut self.conn, Role::Sender, cx, high_water_mark, finished);
        drained.map_err(Error::from)
    }

    fn poll_below_high_water_mark(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.batch_sends && self.conn.write_may_wait(self.io.unwritten(), self.high_water_mark) {
            return Poll::Ready(Ok(()));
        }
        self.poll_drain(cx, self.high_water_mark)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.can_send() {
            self.conn.close(Instant::now(), CloseCode::NORMAL, "")?;
        }
        self.poll_drain(cx, 0)
    }

    fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount() + self.io.unwritten()
    }
}

/// A WebSocket connection over a tokio stream `S` (a `TcpStream`, a TLS stream, ...).
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
/// The timers need a tokio runtime with the time driver enabled.
#[derive(Debug)]
pub struct WebSocket<S> {
    inner: Inner<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    pub(crate) fn new(io: Io<S>, conn: Connection) -> Self {
        Self {
            inner: Inner {
                io,
                conn,
                closed: None,
                high_water_mark: DEFAULT_HIGH_WATER_MARK,
                batch_sends: true,
            },
        }
    }

    fn with_inner<R>(&mut self, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
        f(&mut self.inner)
    }

    /// How the connection ended, once [`recv`](Self::recv) has returned [`Event::Closed`].
    pub fn closed(&self) -> Option<&Closed> {
        self.inner.closed.as_deref()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.io.stream
    }

    /// The underlying stream, e.g. to set socket options. Reading or writing it directly
    /// corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.io.stream
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        self.inner.conn.config()
    }

    /// Bytes queued to send and not yet written to the stream.
    pub fn buffered_amount(&self) -> usize {
        self.inner.buffered_amount()
    }

    /// The high-water mark for sending (default [`DEFAULT_HIGH_WATER_MARK`]).
    pub fn high_water_mark(&self) -> usize {
        self.inner.high_water_mark
    }

    /// Sets how many queued bytes make sending wait (at least 1). The halves of a
    /// [`split`](Self::split) keep it.
    pub fn set_high_water_mark(&mut self, bytes: usize) {
        self.inner.high_water_mark = bytes.max(1);
    }

    /// Splits the connection into a sending and a receiving half, for two tasks. They share
    /// the connection behind a mutex held only while a poll runs, never across an await.
    pub fn split(self) -> (WsSender<S>, WsReceiver<S>) {
        // The receiving task may be busy elsewhere while events wait: sends write at once.
        let shared = Arc::new(Mutex::new(Inner {
            batch_sends: false,
            ..self.inner
        }));
        (WsSender { shared: shared.clone() }, WsReceiver { shared })
    }
}

/// The sending half of a [`WebSocket`], from [`WebSocket::split`]. Implements `Sink<Message>`.
#[derive(Debug)]
pub struct WsSender<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsSender<S> {
    fn with_inner<R>(&mut self, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
        f(&mut self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Bytes queued to send and not yet written to the stream.
    pub fn buffered_amount(&self) -> usize {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .buffered_amount()
    }
}

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`]. Implements
/// `Stream<Item = Result<Message, Error>>`. Keep polling it: it answers pings, echoes the
/// close frame and runs the timers.
#[derive(Debug)]
pub struct WsReceiver<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsReceiver<S> {
    fn with_inner<R>(&mut self, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
        f(&mut self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// How the connection ended, once [`recv`](Self::recv) has returned [`Event::Closed`].
    pub fn closed(&self) -> Option<Closed> {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed
            .as_deref()
            .cloned()
    }
}

/// The sending methods of [`WebSocket`] and [`WsSender`].
macro_rules! sending_methods {
    ($ty:ident) => {
        impl<S: AsyncRead + AsyncWrite + Unpin> $ty<S> {
            /// Queues a command's frames, then writes until at most the high-water mark
            /// is queued.
            async fn queue(
                &mut self,
                command: impl FnOnce(&mut Connection) -> Result<(), SendError>,
            ) -> Result<(), Error> {
                self.with_inner(|inner| command(&mut inner.conn))?;
                poll_fn(|cx| self.with_inner(|inner| inner.poll_below_high_water_mark(cx))).await
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
                self.queue(|conn| conn.send(message)).await
            }

            /// Sends a message without compressing it even when permessage-deflate was
            /// negotiated (data that does not compress, such as images), as
            /// [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_uncompressed(&mut self, message: Message) -> Result<(), Error> {
                self.queue(|conn| conn.send_uncompressed(message)).await
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

            /// Sends a text message copied from `text` (see
            /// [`Connection::send_text_copied`](wsflow::Connection::send_text_copied): no
            /// allocation for a small one), as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_text_copied(&mut self, text: &str) -> Result<(), Error> {
                self.queue(|conn| conn.send_text_copied(text)).await
            }

            /// Sends a binary message copied from `data`, as
            /// [`send_text_copied`](Self::send_text_copied).
            ///
            /// # Errors
            /// As [`send`](Self::send).
            pub async fn send_binary_copied(&mut self, data: &[u8]) -> Result<(), Error> {
                self.queue(|conn| conn.send_binary_copied(data)).await
            }

            /// Sends one fragment of a message (`fin` ends it), as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send), and [`Error::Send`] for a text fragment that
            /// cannot be part of valid UTF-8.
            pub async fn send_fragment(&mut self, kind: MessageKind, data: Bytes, fin: bool) -> Result<(), Error> {
                self.queue(|conn| conn.send_fragment(kind, data, fin)).await
            }

            /// Sends a ping (at most 125 bytes), as [`send`](Self::send).
            ///
            /// # Errors
            /// As [`send`](Self::send), and [`Error::Send`] for a payload over 125 bytes.
            pub async fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
                self.queue(|conn| conn.ping(payload)).await
            }

            /// Sends a pong (at most 125 bytes): an unsolicited one, or the answer to a
            /// ping when [`Config::auto_pong`] is off.
            ///
            /// # Errors
            /// As [`ping`](Self::ping).
            pub async fn pong(&mut self, payload: Bytes) -> Result<(), Error> {
                self.queue(|conn| conn.pong(payload)).await
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
                self.with_inner(|inner| inner.conn.close(Instant::now(), code, reason))?;
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
        }

        impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for $ty<S> {
            type Error = Error;

            fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.get_mut()
                    .with_inner(|inner| inner.poll_below_high_water_mark(cx))
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
        impl<S: AsyncRead + AsyncWrite + Unpin> $ty<S> {
            /// The next event: messages (or fragments with [`Config::streaming`]), pings,
            /// pongs, the peer's close frame, and last [`Event::Closed`]; then `None`.
            /// Writes the automatic pongs and close echoes and runs the timers meanwhile.
            ///
            /// Cancel safe: no data is lost if the future is dropped.
            ///
            /// # Errors
            /// [`Error::Transport`] if the stream fails; the next call then returns
            /// [`Event::Closed`].
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

        impl<S: AsyncRead + AsyncWrite + Unpin> Stream for $ty<S> {
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
