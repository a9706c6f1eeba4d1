//! [`WebSocket`]: an open connection over a blocking stream, and the send and receive
//! logic it shares with the split halves.

use std::io;
use std::ops::DerefMut;
use std::sync::Arc;
use std::time::Instant;

use wsflow::{Closed, Config, Connection, Event, Message, SendError};

use wsflow_io::trace::ConnectionSpan;
use wsflow_io::{Outbox, DEFAULT_HIGH_WATER_MARK};

use crate::pump::{Inbox, Input, WriteDeadline, Written};
use crate::split::{WsReceiver, WsSender};
use crate::transport::Transport;
use crate::Error;

/// The connection state both halves share: the core, what was pulled out of it but not
/// yet written, and how it ended.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) conn: Connection,
    pub(crate) outbox: Outbox,
    pub(crate) closed: Option<Closed>,
    /// The connection's span (zero-sized without feature `tracing`).
    pub(crate) span: ConnectionSpan,
}

impl Core {
    fn next_event(&mut self) -> Option<Event> {
        let event = self.conn.poll_event()?;
        if let Event::Closed(closed) = &event {
            self.span.closed(closed);
            self.closed = Some(Closed::clone(closed));
        }
        Some(event)
    }

    pub(crate) fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount() + self.outbox.queued()
    }

    /// A write failed with `error`. A peer that reset or dropped the transport is the end
    /// of the stream for the core, not an error (as on the async adapters): nothing more is
    /// written, and the core says how the connection ends (`Closed` with 1006, or clean
    /// when the closing handshake was done).
    pub(crate) fn write_failed(&mut self, error: io::Error) -> io::Result<()> {
        if !wsflow_io::is_peer_gone(&error) {
            return Err(error);
        }
        self.outbox.fail();
        self.conn.handle_eof(Instant::now());
        Ok(())
    }

    /// Runs the core's timers after a write waited until their deadline. Returns whether
    /// the core is done with the transport (closed, and its linger over): what is left to
    /// write is then dropped, as the core says (see [`Event::Closed`]).
    pub(crate) fn run_timers(&mut self) -> bool {
        self.conn.handle_timeout(Instant::now());
        let done = self.conn.state() == wsflow::State::Closed && self.conn.poll_timeout().is_none();
        if done {
            self.outbox.fail();
        }
        done
    }
}

/// Access to the core and the writing side, shared by [`WebSocket`] and the split halves.
pub(crate) trait Endpoint {
    /// The core (locked, for a half).
    fn core(&mut self) -> impl DerefMut<Target = Core> + '_;
    /// Writes what the core has queued.
    fn write_queued(&mut self) -> Result<(), Error>;
}

/// An endpoint that sends.
pub(crate) trait Sending: Endpoint {
    fn high_water_mark(&self) -> usize;
    /// Whether a send may leave its write to the receive loop while received events wait
    /// (not split: the thread that sends is the one that receives).
    fn batches_sends(&self) -> bool;
}

/// An endpoint that reads.
pub(crate) trait Receiving: Endpoint {
    /// Reads once, until `deadline` at most.
    fn read(&mut self, deadline: Option<Instant>) -> io::Result<Input>;
    /// Feeds what was read to the core.
    fn feed(&mut self, input: Input);
}

fn is_would_block(error: &Error) -> bool {
    matches!(error, Error::Transport(error) if error.kind() == io::ErrorKind::WouldBlock)
}

/// Runs a command on the core, then writes through. On a non-blocking stream, a full
/// socket is an error only once the queue passes the high-water mark. While received
/// events wait (the application is answering the messages of one read), an unsplit
/// connection leaves the write to [`recv_event`], which makes it once they are handed over.
pub(crate) fn command(
    endpoint: &mut impl Sending,
    command: impl FnOnce(&mut Connection, Instant) -> Result<(), SendError>,
) -> Result<(), Error> {
    command(&mut endpoint.core().conn, Instant::now())?;
    let mark = endpoint.high_water_mark();
    let may_wait = {
        let core = endpoint.core();
        core.conn.io_state().write_may_wait(core.outbox.queued(), mark)
    };
    if may_wait && endpoint.batches_sends() {
        return Ok(());
    }
    match endpoint.write_queued() {
        Err(error) if is_would_block(&error) => {
            let buffered = endpoint.core().buffered_amount();
            if buffered > mark {
                Err(error)
            } else {
                Ok(())
            }
        }
        other => other,
    }
}

/// The receive loop: hand out queued events; otherwise read, feed the core, and write
/// what it queued in response (pongs, close echoes, keepalive pings) before the events go
/// out.
pub(crate) fn recv_event(endpoint: &mut impl Receiving) -> Result<Option<Event>, Error> {
    loop {
        let deadline = {
            let mut core = endpoint.core();
            if let Some(event) = core.next_event() {
                return Ok(Some(event));
            }
            if core.closed.is_some() {
                return Ok(None);
            }
            core.conn.poll_timeout()
        };
        // Write what pulling events queued (a close echo, the close frame of a failure)
        // before waiting on the peer, who may be waiting for it.
        write_queued(endpoint)?;
        let input = endpoint.read(deadline)?;
        endpoint.feed(input);
        write_queued(endpoint)?;
    }
}

/// Writes what the core queued; on a non-blocking stream a full socket is retried later.
fn write_queued(endpoint: &mut impl Receiving) -> Result<(), Error> {
    match endpoint.write_queued() {
        Err(error) if is_would_block(&error) => Ok(()),
        other => other,
    }
}

/// [`recv_event`] without control events and fragments.
pub(crate) fn recv_message(endpoint: &mut impl Receiving) -> Result<Option<Message>, Error> {
    // The messages of a read are handed over before anything else is done.
    if let Some(message) = endpoint.core().conn.poll_message() {
        return Ok(Some(message));
    }
    while let Some(event) = recv_event(endpoint)? {
        if let Event::Message(message) = event {
            return Ok(Some(message));
        }
    }
    Ok(None)
}

/// The sending methods of [`WebSocket`] and [`WsSender`].
macro_rules! sending_methods {
    () => {
        /// Sends a message. Blocks until it is written; on a non-blocking stream, see
        /// [`flush`](Self::flush). On a [`WebSocket`](crate::WebSocket) (not split) while
        /// received messages are waiting, the write is left to `recv`, which makes it once
        /// they have been handed over: one write answers a whole read.
        ///
        /// # Errors
        /// [`Error::Send`](crate::Error) when the connection cannot send (e.g. after
        /// `close`); transport errors; `WouldBlock` (non-blocking stream) when the queue
        /// passed the high-water mark: the message *is* queued; call `flush` until it
        /// succeeds before sending more.
        pub fn send(&mut self, message: wsflow::Message) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send(message))
        }

        /// Sends a [`PreparedMessage`](wsflow::PreparedMessage) (framed once for many
        /// connections, e.g. by a [`hub`](crate::hub); see
        /// [`Connection::send_prepared`](wsflow::Connection::send_prepared)), as
        /// [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub fn send_prepared(&mut self, message: &wsflow::PreparedMessage) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send_prepared(message, usize::MAX))
        }

        /// Sends a message without compressing it even when permessage-deflate was
        /// negotiated (data that does not compress, such as images), as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub fn send_uncompressed(&mut self, message: wsflow::Message) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send_uncompressed(message))
        }

        /// Sends a text message, as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub fn send_text(&mut self, text: impl Into<wsflow::Utf8Bytes>) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send(wsflow::Message::text(text)))
        }

        /// Sends a binary message, as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub fn send_binary(&mut self, data: impl Into<bytes::Bytes>) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send(wsflow::Message::binary(data)))
        }

        /// Sends a text message copied from `text` (see
        /// [`Connection::send_copied`](wsflow::Connection::send_copied): no allocation for
        /// a small one), as [`send`](Self::send).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub fn send_text_copied(&mut self, text: &str) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send_copied(text))
        }

        /// Sends a binary message copied from `data`, as
        /// [`send_text_copied`](Self::send_text_copied).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub fn send_binary_copied(&mut self, data: &[u8]) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send_copied(data))
        }

        /// Sends one fragment of a message; `fin` ends it. Text fragments may split code
        /// points, but the whole message must be UTF-8.
        ///
        /// # Errors
        /// As [`send`](Self::send); [`SendError::FragmentInProgress`](wsflow::SendError)
        /// or [`SendError::InvalidUtf8`](wsflow::SendError) from the core.
        pub fn send_fragment(
            &mut self,
            kind: wsflow::MessageKind,
            data: bytes::Bytes,
            fin: bool,
        ) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.send_fragment(kind, data, fin))
        }

        /// Sends a ping (at most 125 bytes); the pong arrives as [`Event::Pong`](wsflow::Event).
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub fn ping(&mut self, payload: bytes::Bytes) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.ping(payload))
        }

        /// Sends a pong (at most 125 bytes): an unsolicited one, or the answer to a ping
        /// when `Config::auto_pong` is off.
        ///
        /// # Errors
        /// As [`ping`](Self::ping).
        pub fn pong(&mut self, payload: bytes::Bytes) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, _| conn.pong(payload))
        }

        /// Starts the closing handshake. Keep receiving until `recv` returns `None` (the
        /// [`Closed`](wsflow::Closed) event comes first) to finish it; the core gives up
        /// after [`Config::close_timeout`](wsflow::Config::close_timeout).
        ///
        /// # Errors
        /// As [`send`](Self::send); the core refuses codes that may not be sent and
        /// reasons over 123 bytes.
        pub fn close(&mut self, code: wsflow::CloseCode, reason: &str) -> Result<(), crate::Error> {
            crate::websocket::command(self, |conn, now| conn.close(now, code, reason))
        }

        /// Writes everything queued. On a non-blocking stream, returns `WouldBlock` while
        /// the socket is full: call again when it is writable.
        ///
        /// # Errors
        /// Transport errors.
        pub fn flush(&mut self) -> Result<(), crate::Error> {
            crate::websocket::Endpoint::write_queued(self)
        }
    };
}

/// The receiving methods of [`WebSocket`] and [`WsReceiver`].
macro_rules! receiving_methods {
    () => {
        /// Waits for the next event: every [`Event`](wsflow::Event) of the core, in order,
        /// ending with [`Event::Closed`](wsflow::Event) (exactly once), then `None`. Meanwhile
        /// writes what the core queues (pongs, close echoes, keepalive pings) and runs its
        /// timers through the socket's read timeout.
        ///
        /// # Errors
        /// Transport errors; `WouldBlock` on a non-blocking stream with nothing to read.
        pub fn recv(&mut self) -> Result<Option<wsflow::Event>, crate::Error> {
            crate::websocket::recv_event(self)
        }

        /// Waits for the next message, skipping every other event (pings, pongs, close
        /// notices and, with [`Config::streaming`](wsflow::Config::streaming), fragments:
        /// use [`recv`](Self::recv) then). `None` once the connection is closed.
        ///
        /// # Errors
        /// As [`recv`](Self::recv).
        pub fn recv_message(&mut self) -> Result<Option<wsflow::Message>, crate::Error> {
            crate::websocket::recv_message(self)
        }
    };
}

pub(crate) use {receiving_methods, sending_methods};

/// A WebSocket connection over a blocking stream `S` (see [`Transport`]).
///
/// Everything happens inside the calls: [`send`](Self::send) and friends write through
/// (except while messages of the last read wait to be received: `recv` then writes the
/// answers to all of them at once), [`recv`](Self::recv) reads, answers pings, and fires the core's timers (keepalive,
/// close and idle timeouts) by setting the socket's read timeout to the next deadline.
///
/// **Non-blocking use.** After `set_nonblocking(true)` on the socket (through
/// [`get_mut`](Self::get_mut)), sends queue what the socket does not take and return
/// `WouldBlock` once [`buffered_amount`](Self::buffered_amount) passes the
/// [high-water mark](Self::set_high_water_mark); [`flush`](Self::flush) retries, and `recv`
/// returns `WouldBlock` when there is nothing to read. The opening handshake needs blocking
/// mode.
///
/// **Memory.** Idle, a connection holds its 16 KiB read buffer and the core's state
/// (a few hundred bytes); outgoing bytes are held only until the socket takes them.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    core: Core,
    inbox: Inbox,
    write_deadline: WriteDeadline,
    high_water_mark: usize,
}

impl<S: Transport> WebSocket<S> {
    /// Wraps a connection whose handshake was done on `stream`, writing what it queued
    /// (a server's 101 response).
    /// Adopts a stream that was upgraded elsewhere (by an HTTP server that answered the
    /// upgrade itself) with the [`Connection`] negotiated for it. `read_past_head` is what
    /// the server read after the request head: the connection gets it first, before
    /// anything read from `stream`.
    ///
    /// # Errors
    /// When writing what the connection has queued fails.
    pub fn from_upgraded(stream: S, mut conn: Connection, read_past_head: &[u8]) -> Result<Self, Error> {
        if !read_past_head.is_empty() {
            conn.handle_data(Instant::now(), read_past_head);
        }
        let span = ConnectionSpan::new(conn.role(), stream.peer_addr().as_ref().map(|peer| peer as _));
        Self::start(stream, conn, Inbox::new(), span)
    }

    pub(crate) fn start(stream: S, conn: Connection, inbox: Inbox, span: ConnectionSpan) -> Result<Self, Error> {
        let mut websocket = Self {
            stream,
            core: Core {
                conn,
                outbox: Outbox::default(),
                closed: None,
                span,
            },
            inbox,
            write_deadline: WriteDeadline::default(),
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
        };
        websocket.write_queued()?;
        Ok(websocket)
    }

    sending_methods!();
    receiving_methods!();

    /// How the connection ended, once [`Event::Closed`] was received.
    pub fn closed(&self) -> Option<&Closed> {
        self.core.closed.as_ref()
    }

    /// Outgoing bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.core.buffered_amount()
    }

    /// The queue size past which a non-blocking send returns `WouldBlock`.
    pub fn high_water_mark(&self) -> usize {
        self.high_water_mark
    }

    /// Sets the high-water mark (default [`DEFAULT_HIGH_WATER_MARK`]).
    pub fn set_high_water_mark(&mut self, bytes: usize) {
        self.high_water_mark = bytes.max(1);
    }

    /// The connection's configuration.
    pub fn config(&self) -> &Arc<Config> {
        self.core.conn.config()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream (e.g. to `set_nonblocking`). Reading or writing it directly corrupts the
    /// connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Splits the connection into a sending and a receiving half for two threads, over
    /// two handles to the stream ([`Transport::try_clone`]). The receiving half writes
    /// automatic pongs and close echoes itself, so the application may only read.
    ///
    /// # Errors
    /// `ErrorKind::Unsupported` for streams that cannot be cloned, such as TLS streams
    /// (rustls state cannot be shared between two handles): use one thread then.
    pub fn split(self) -> Result<(WsSender<S>, WsReceiver<S>), Error> {
        let reader = self.stream.try_clone()?;
        Ok(crate::split::split(
            (self.stream, self.write_deadline),
            reader,
            self.core,
            self.inbox,
            self.high_water_mark,
        ))
    }
}

impl<S: Transport> Endpoint for WebSocket<S> {
    fn core(&mut self) -> impl DerefMut<Target = Core> + '_ {
        &mut self.core
    }

    fn write_queued(&mut self) -> Result<(), Error> {
        loop {
            self.core.outbox.pull(&mut self.core.conn);
            let deadline = self.core.conn.poll_timeout();
            match self
                .write_deadline
                .write(&mut self.core.outbox, &mut self.stream, deadline)
            {
                Ok(Written::All) => return Ok(()),
                Ok(Written::DeadlinePassed) => {
                    if self.core.run_timers() {
                        return Ok(());
                    }
                }
                Err(error) => return Ok(self.core.write_failed(error)?),
            }
        }
    }
}

impl<S: Transport> Sending for WebSocket<S> {
    fn high_water_mark(&self) -> usize {
        self.high_water_mark
    }

    fn batches_sends(&self) -> bool {
        true
    }
}

impl<S: Transport> Receiving for WebSocket<S> {
    fn read(&mut self, deadline: Option<Instant>) -> io::Result<Input> {
        self.inbox.read(&mut self.stream, deadline, None)
    }

    fn feed(&mut self, input: Input) {
        self.inbox.feed(&mut self.core.conn, input);
    }
}
