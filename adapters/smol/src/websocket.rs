//! [`WebSocket`]: an open connection over a futures-io stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::poll_fn;
use wsflow::{CloseCode, Closed, Config, Connection, Event, Message, SendError};

use crate::io::Io;
use crate::split::{self, WsReceiver, WsSender};
use crate::Error;

/// Default for [`WebSocket::set_high_water_mark`]: 1 MiB.
pub const DEFAULT_HIGH_WATER_MARK: usize = 1 << 20;

/// Generates the command methods (`send`, `send_text`, ..., `close`) on a type that has
/// `async fn command(&self or &mut self, impl FnOnce(&mut Connection) -> Result<(), SendError>)`.
macro_rules! command_methods {
    (&mut $self:ident) => {
        $crate::websocket::command_methods!(@methods $self, &mut $self);
    };
    (&$self:ident) => {
        $crate::websocket::command_methods!(@methods $self, &$self);
    };
    (@methods $self:ident, $($receiver:tt)+) => {
        /// Sends a message. Returns once it is queued and the outgoing queue is under the
        /// high-water mark, writing to the stream (and waiting for it) as long as it is over.
        /// On a [`WebSocket`](crate::WebSocket) (not split) while received messages are
        /// waiting, the write is left to `recv`, which makes it once they have been handed
        /// over.
        ///
        /// Cancel safety: once polled, the message is queued and will be written by later
        /// calls; dropping the future only stops the waiting.
        ///
        /// # Errors
        /// [`Error::Send`] when the connection no longer accepts messages (see
        /// [`wsflow::SendError`]; also after the stream failed); [`Error::Transport`] when
        /// the stream fails.
        pub async fn send($($receiver)+, message: wsflow::Message) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.send(message)).await
        }

        /// Sends a message without compressing it even when permessage-deflate was
        /// negotiated (data that does not compress, such as images), as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub async fn send_uncompressed($($receiver)+, message: wsflow::Message) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.send_uncompressed(message)).await
        }

        /// Sends a text message, as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub async fn send_text($($receiver)+, text: impl Into<wsflow::Utf8Bytes>) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.send_text(text)).await
        }

        /// Sends a binary message, as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub async fn send_binary($($receiver)+, data: impl Into<bytes::Bytes>) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.send_binary(data)).await
        }

        /// Sends a text message copied from `text` (see
        /// [`Connection::send_text_copied`](wsflow::Connection::send_text_copied): no
        /// allocation for a small one), as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub async fn send_text_copied($($receiver)+, text: &str) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.send_text_copied(text)).await
        }

        /// Sends a binary message copied from `data`, as
        /// [`send_text_copied`](Self::send_text_copied).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub async fn send_binary_copied($($receiver)+, data: &[u8]) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.send_binary_copied(data)).await
        }

        /// Sends one fragment of a message; `fin` ends it. Otherwise as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send), and see [`Connection::send_fragment`](wsflow::Connection::send_fragment).
        pub async fn send_fragment($($receiver)+, kind: wsflow::MessageKind, data: bytes::Bytes, fin: bool) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.send_fragment(kind, data, fin)).await
        }

        /// Sends a ping (at most 125 bytes), as [`send`](Self::send). The pong comes back as
        /// [`Event::Pong`] from `recv`.
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub async fn ping($($receiver)+, payload: bytes::Bytes) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.ping(payload)).await
        }

        /// Starts the closing handshake: queues a close frame and writes it as
        /// [`send`](Self::send) does. Keep calling `recv` until it returns
        /// [`Event::Closed`] (then `None`) to finish the handshake.
        ///
        /// Cancel safety: as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send), and for a code that may not be sent or a reason over 123 bytes.
        pub async fn close($($receiver)+, code: wsflow::CloseCode, reason: &str) -> Result<(), $crate::Error> {
            $self.command(|connection| connection.close(std::time::Instant::now(), code, reason)).await
        }
    };
}
pub(crate) use command_methods;

/// An open WebSocket connection over a futures-io stream `S` (a TCP stream, a TLS stream,
/// anything `AsyncRead + AsyncWrite + Unpin`).
///
/// Receiving ([`recv`](Self::recv)) also writes what the connection has queued (automatic
/// pongs, close echoes, keepalive pings) and fires its timers, so keep a `recv` running for
/// keepalive and timeouts to work; sending writes until the queue is under the
/// [high-water mark](Self::set_high_water_mark). Use [`split`](Self::split) to read and
/// write from two tasks.
///
/// Writes are batched: what is sent while messages of the last read are still waiting to
/// be received is written once `recv` runs out of them (before it waits for the stream),
/// so a loop that answers each message makes one write per read, not one per message.
/// [`flush`](Self::flush) writes at once.
///
/// It also implements [`futures_core::Stream`] of messages (like
/// [`recv_message`](Self::recv_message)) and [`futures_sink::Sink`] of messages (closing
/// the sink sends a 1000 close frame).
///
/// It holds no read buffer: reads go to one buffer per thread, shared by every connection.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    connection: Connection,
    io: Io,
    high_water_mark: usize,
    /// [`Event::Closed`] came, but queued bytes (a close frame) were still being written;
    /// it is reported once they are or at the deadline.
    closing: Option<(Box<Closed>, Instant)>,
    closed: Option<Box<Closed>>,
    /// Not split: the task that sends is the one that receives, so what it sends while
    /// received events wait is written when `recv` runs out of them (one write per read).
    pub(crate) batch_sends: bool,
}

impl<S> WebSocket<S> {
    pub(crate) fn from_parts(stream: S, connection: Connection, io: Io) -> Self {
        Self {
            stream,
            connection,
            io,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            closing: None,
            closed: None,
            batch_sends: true,
        }
    }

    /// How the connection ended, once [`Event::Closed`] was returned.
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_deref()
    }

    pub(crate) fn connection_mut(&mut self) -> &mut Connection {
        &mut self.connection
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably (reading or writing it directly corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The connection's configuration.
    pub fn config(&self) -> &Arc<Config> {
        self.connection.config()
    }

    /// Outgoing bytes queued and not yet written to the stream.
    pub fn buffered_amount(&self) -> usize {
        self.connection.buffered_amount() + self.io.write_queued()
    }

    /// Sets how many queued outgoing bytes make [`send`](Self::send) wait for the stream
    /// (default [`DEFAULT_HIGH_WATER_MARK`]).
    pub fn set_high_water_mark(&mut self, bytes: usize) {
        self.high_water_mark = bytes;
    }

    /// The mark set by [`set_high_water_mark`](Self::set_high_water_mark).
    pub fn high_water_mark(&self) -> usize {
        self.high_water_mark
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    command_methods!(&mut self);

    async fn command(&mut self, command: impl FnOnce(&mut Connection) -> Result<(), SendError>) -> Result<(), Error> {
        command(&mut self.connection)?;
        poll_fn(|cx| self.poll_write_below_mark(cx)).await
    }

    /// The next event: every [`Event`] of the core, [`Event::Closed`] last, then `None`.
    /// Also writes what is queued and fires the connection's timers.
    ///
    /// Cancel safe: dropping the future loses nothing; what was read stays in the connection.
    ///
    /// # Errors
    /// [`Error::Transport`] when the stream fails; the connection then counts as ended by
    /// EOF, so the next call returns [`Event::Closed`]. A peer that resets or aborts the
    /// connection is no error: it ends like EOF, and `Closed` tells whether cleanly.
    pub async fn recv(&mut self) -> Result<Option<Event>, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next complete message, skipping other events; `None` once the connection is
    /// closed (see [`closed`](Self::closed) for how). With
    /// [`Config::streaming`](wsflow::Config::streaming) on, use [`recv`](Self::recv) instead.
    ///
    /// Cancel safe, as [`recv`](Self::recv).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_message(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| self.poll_recv_message(cx)).await
    }

    /// Writes everything queued to the stream and flushes it.
    ///
    /// Cancel safe: what was not written stays queued.
    ///
    /// # Errors
    /// [`Error::Transport`] when the stream fails.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush_queue(cx)).await
    }

    /// Splits into a sending and a receiving half, usable from two tasks. Keep the
    /// receiving half reading: it answers pings and runs the timers.
    pub fn split(self) -> (WsSender<S>, WsReceiver<S>) {
        split::split(self)
    }

    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, Error>> {
        loop {
            // Messages are handed over before writing: the answers to all the messages of one
            // read go out together, once they have been handed over.
            let flushed = !self.connection.next_event_is_data()
                && self
                    .io
                    .poll_write(&mut self.stream, &mut self.connection, cx)?
                    .is_ready();
            if let Some((closed, deadline)) = self.closing.take() {
                if !flushed && self.io.poll_deadline(deadline, cx).is_pending() {
                    self.closing = Some((closed, deadline));
                    return Poll::Pending;
                }
                self.closed = Some(closed.clone());
                return Poll::Ready(Ok(Some(Event::Closed(closed))));
            }
            if let Some(event) = self.connection.poll_event() {
                if let Event::Closed(closed) = event {
                    // Write the last frames (and the shutdown) before reporting the end,
                    // but never wait on a peer that stopped reading for longer than a close.
                    let deadline = Instant::now() + self.connection.config().get_close_timeout();
                    self.closing = Some((closed, deadline));
                    continue;
                }
                return Poll::Ready(Ok(Some(event)));
            }
            if self.closed.is_some() {
                return Poll::Ready(Ok(None));
            }
            ready!(self.io.poll_input(&mut self.stream, &mut self.connection, cx))?;
        }
    }

    pub(crate) fn poll_recv_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        // The messages of a read are handed over before anything else is done.
        if let Some(message) = self.connection.poll_message() {
            return Poll::Ready(Ok(Some(message)));
        }
        loop {
            match ready!(self.poll_recv(cx)) {
                Ok(Some(Event::Message(message))) => return Poll::Ready(Ok(Some(message))),
                Ok(Some(_)) => {}
                Ok(None) => return Poll::Ready(Ok(None)),
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    pub(crate) fn poll_flush_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.io
            .poll_write(&mut self.stream, &mut self.connection, cx)
            .map_err(Error::from)
    }

    pub(crate) fn poll_write_below_mark(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.batch_sends
            && self
                .connection
                .write_may_wait(self.io.write_queued(), self.high_water_mark)
        {
            return Poll::Ready(Ok(()));
        }
        match self.poll_flush_queue(cx) {
            Poll::Pending if self.buffered_amount() <= self.high_water_mark => Poll::Ready(Ok(())),
            other => other,
        }
    }

    pub(crate) fn start_send(&mut self, message: Message) -> Result<(), Error> {
        Ok(self.connection.send(message)?)
    }

    /// Sends a 1000 close frame unless one was sent, then writes everything queued.
    pub(crate) fn poll_close_sink(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.connection.can_send() {
            self.connection.close(Instant::now(), CloseCode::NORMAL, "")?;
        }
        self.poll_flush_queue(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv_message(cx).map(Result::transpose)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_sink::Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_below_mark(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_queue(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_close_sink(cx)
    }
}
