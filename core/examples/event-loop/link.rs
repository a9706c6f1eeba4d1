//! One non-blocking TCP socket driven by the core, in either role: the part of the event
//! loop that is the same for the server and the clients.
//!
//! A [`Link`] owns the socket (registered with the poller), the core's state machine for it
//! (the opening handshake, then the [`Connection`]), and the bytes pulled from the core
//! that the socket has not taken yet. The event loop calls [`Link::wake`] when the poller
//! reports the socket ready or the link's [`deadline`](Link::deadline) has come, then
//! re-arms the poller with [`Link::interest`] and its timer with the new deadline, and
//! drops the link once [`Link::is_finished`].

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Deref;
use std::rc::Rc;
use std::time::{Duration, Instant};

use polling::{AsRawSource, AsSource, Event as Interest, Poller};
use wsflow::{
    Accept, Bytes, ClientEvent, ClientHandshake, Connection, Event, Request, Response, ServerEvent, ServerHandshake,
    Transmit,
};

/// Most outgoing bytes a link lets pile up (the core's queue plus our unsent ones) before it
/// stops taking in work: past it, no more events are pulled (the core then holds the rest
/// of a read unparsed, within `Config::max_waiting_size`) and the socket is not read until
/// the peer has taken some. A link thus holds at most this, plus one message and one read.
pub const HIGH_WATER_MARK: usize = 1 << 20;

/// Reads per wake-up, at most: a busy connection does not starve the others.
const READS_PER_WAKE: usize = 8;

/// How long the last bytes of a handshake that ended without a connection may take to go
/// out (an error response to a client that does not read it).
const LINGER: Duration = Duration::from_secs(10);

/// Buffers written with one `write_vectored` call, at most.
const SLICES_PER_WRITE: usize = 32;

/// A socket registered with the poller, deleted from it when dropped (as `polling`
/// requires: a socket must leave the poller before it is closed).
pub struct Registered<S: AsSource> {
    poller: Rc<Poller>,
    source: S,
}

impl<S: AsSource> Registered<S>
where
    for<'a> &'a S: AsRawSource,
{
    /// Registers `source` with `interest` (its key and what to wait for).
    #[allow(unsafe_code)]
    pub fn new(poller: &Rc<Poller>, source: S, interest: Interest) -> io::Result<Self> {
        // SAFETY: `Poller::add` requires the source to be deleted from the poller before it
        // is dropped. It is only reachable through this struct, whose `Drop` deletes it
        // (fields are dropped after `drop` runs).
        unsafe { poller.add(&source, interest)? };
        Ok(Self {
            poller: poller.clone(),
            source,
        })
    }

    /// Sets what to wait for next. Interest is one-shot (`polling`'s default mode): after
    /// the poller reported the socket, it waits for nothing until re-armed.
    pub fn rearm(&self, interest: Interest) -> io::Result<()> {
        self.poller.modify(&self.source, interest)
    }
}

impl<S: AsSource> Deref for Registered<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.source
    }
}

impl<S: AsSource> Drop for Registered<S> {
    fn drop(&mut self) {
        let _ = self.poller.delete(&self.source);
    }
}

/// What the application decides and does; the link does the I/O.
pub trait Handler {
    /// Server role: how to answer an upgrade request. `Err` answers with that HTTP response
    /// instead (a rejection, or a page for a plain HTTP request).
    fn decide(&mut self, request: &Request) -> Result<Accept, Response> {
        let _ = request;
        Err(Response::new(404))
    }

    /// Client role: the server accepted the upgrade; the connection is open.
    fn opened(&mut self, now: Instant, connection: &mut Connection, response: &Response) {
        let _ = (now, connection, response);
    }

    /// An event of the open connection (answer it through `connection`). `Event::Closed`
    /// comes last, exactly once.
    fn event(&mut self, now: Instant, connection: &mut Connection, event: Event);

    /// The opening handshake did not end in a connection (client role: refused, failed;
    /// server role: a bad request, or a client that left).
    fn failed(&mut self, why: String) {
        let _ = why;
    }
}

/// Where the link is in its life.
// Each link holds one stage in place, the connection for most of its life: boxing the
// connection would cost an allocation per link and save nothing.
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// Server: reading the upgrade request.
    Accepting(ServerHandshake),
    /// Client: the request is out, waiting for the response.
    Connecting(ClientHandshake),
    /// The WebSocket connection.
    Open(Connection),
    /// The handshake ended without a connection: only its last bytes (an HTTP response,
    /// the shutdown) are left to write, until `linger`.
    Ended { linger: Instant },
}

/// One socket and the core's state machine for it.
pub struct Link {
    socket: Registered<TcpStream>,
    key: usize,
    stage: Stage,
    /// Bytes pulled from the core (`poll_transmit`) that the socket has not taken yet.
    unsent: VecDeque<Bytes>,
    unsent_len: usize,
    /// `Transmit::Shutdown` was pulled: shut the write side down once `unsent` is written.
    shutdown: bool,
    /// The read side is over (end of stream or an error), and the core was told.
    read_closed: bool,
    /// The write side is over (shut down or broken): what is left is dropped.
    write_closed: bool,
    /// `Event::Closed` was handed to the application.
    closed: bool,
}

impl Link {
    /// A server-side link for an accepted socket.
    pub fn accept(socket: Registered<TcpStream>, key: usize, handshake: ServerHandshake) -> Self {
        Self::new(socket, key, Stage::Accepting(handshake))
    }

    /// A client-side link for a connected socket; the request goes out at the first wake.
    pub fn connect(socket: Registered<TcpStream>, key: usize, handshake: ClientHandshake) -> Self {
        Self::new(socket, key, Stage::Connecting(handshake))
    }

    fn new(socket: Registered<TcpStream>, key: usize, stage: Stage) -> Self {
        Self {
            socket,
            key,
            stage,
            unsent: VecDeque::new(),
            unsent_len: 0,
            shutdown: false,
            read_closed: false,
            write_closed: false,
            closed: false,
        }
    }

    /// Handles one wake-up: the timer if it is due, then reads (if the poller reported the
    /// socket readable) and writes as far as they go without blocking.
    pub fn wake(&mut self, now: Instant, readable: bool, buf: &mut [u8], handler: &mut impl Handler) {
        if self.deadline().is_some_and(|at| now >= at) {
            match &mut self.stage {
                Stage::Accepting(handshake) => handshake.handle_timeout(now),
                Stage::Connecting(handshake) => handshake.handle_timeout(now),
                Stage::Open(connection) => connection.handle_timeout(now),
                // The peer did not take the answer in time: drop it.
                Stage::Ended { .. } => self.abandon_output(),
            }
        }
        self.process(now, handler);
        if !readable {
            return;
        }
        for _ in 0..READS_PER_WAKE {
            if !self.wants_read() {
                break;
            }
            match self.socket.deref().read(buf) {
                Ok(0) => self.end_of_input(now),
                Ok(n) => match &mut self.stage {
                    Stage::Accepting(handshake) => handshake.handle_data(now, &buf[..n]),
                    Stage::Connecting(handshake) => handshake.handle_data(now, &buf[..n]),
                    Stage::Open(connection) => connection.handle_data(now, &buf[..n]),
                    Stage::Ended { .. } => {}
                },
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // A reset: to the core, the transport is gone, as at its end.
                Err(_) => self.end_of_input(now),
            }
            // The core wants its events pulled before it is fed again.
            self.process(now, handler);
        }
    }

    /// Re-arms the poller with what the link waits for now (see [`interest`](Self::interest)).
    pub fn rearm(&self) -> io::Result<()> {
        self.socket.rearm(self.interest())
    }

    /// What to wait for: readable while the link takes input, writable while bytes wait.
    pub fn interest(&self) -> Interest {
        let writable = !self.unsent.is_empty() || self.shutdown;
        Interest::new(self.key, self.wants_read(), writable && !self.write_closed)
    }

    /// When [`wake`](Self::wake) must be called even if the socket stays quiet: the core's
    /// `poll_timeout` (handshake timeout, keepalive, close timeout, the linger after the
    /// end), or how long a refused handshake may take to write its answer.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Accepting(handshake) => handshake.poll_timeout(),
            Stage::Connecting(handshake) => handshake.poll_timeout(),
            Stage::Open(connection) => connection.poll_timeout(),
            Stage::Ended { linger } => Some(*linger),
        }
    }

    /// Whether the link is over and may be dropped (closing the socket): everything is
    /// written, or the core's last deadline passed with bytes still unwritten (a peer that
    /// stopped reading does not hold the socket forever).
    pub fn is_finished(&self) -> bool {
        let written = self.write_closed || (self.unsent.is_empty() && !self.shutdown);
        match &self.stage {
            Stage::Open(connection) => self.closed && (written || connection.poll_timeout().is_none()),
            Stage::Ended { .. } => written,
            Stage::Accepting(_) | Stage::Connecting(_) => false,
        }
    }

    /// Whether to read now: the read side is open, the core has no event waiting to be
    /// pulled (it wants those pulled before more input, see `Connection::handle_data`), and
    /// the outgoing bytes are under the high-water mark (a peer that sends without reading
    /// our answers gets no more of our memory).
    fn wants_read(&self) -> bool {
        if self.read_closed || self.unsent_len > HIGH_WATER_MARK {
            return false;
        }
        match &self.stage {
            Stage::Accepting(_) | Stage::Connecting(_) => true,
            Stage::Open(connection) => {
                let state = connection.io_state();
                !self.closed && !state.events_waiting() && self.unsent_len + state.buffered() <= HIGH_WATER_MARK
            }
            Stage::Ended { .. } => false,
        }
    }

    /// The transport's read side ended (or broke): the core learns it as its end.
    fn end_of_input(&mut self, now: Instant) {
        self.read_closed = true;
        match &mut self.stage {
            Stage::Accepting(handshake) => handshake.handle_eof(now),
            Stage::Connecting(handshake) => handshake.handle_eof(now),
            Stage::Open(connection) => connection.handle_eof(now),
            Stage::Ended { .. } => {}
        }
    }

    /// The run loop of the core: pull events (the application answers them), pull the bytes
    /// to send, write them; again while writing made room for events still waiting.
    fn process(&mut self, now: Instant, handler: &mut impl Handler) {
        loop {
            self.handshake_events(now, handler);
            self.connection_events(now, handler);
            self.pull_transmits();
            let wrote = self.flush(now);
            let waiting = matches!(&self.stage, Stage::Open(c) if c.io_state().events_waiting());
            if !(wrote && waiting) {
                break;
            }
        }
    }

    /// The handshake's events: the server decides on the request, the client learns the
    /// answer. Either ends in the connection, or in an HTTP answer and the shutdown.
    fn handshake_events(&mut self, now: Instant, handler: &mut impl Handler) {
        let outcome = match &mut self.stage {
            Stage::Accepting(handshake) => accept_events(now, handshake, handler),
            Stage::Connecting(handshake) => match handshake.poll_event() {
                Some(ClientEvent::Accepted(response)) => Outcome::Accepted(response),
                Some(ClientEvent::Rejected(response)) => {
                    handler.failed(format!(
                        "the server answered {} {}",
                        response.status(),
                        response.reason()
                    ));
                    Outcome::Ended
                }
                Some(ClientEvent::Failed(error)) => {
                    handler.failed(format!("handshake failed: {error}"));
                    Outcome::Ended
                }
                None => Outcome::Pending,
            },
            Stage::Open(_) | Stage::Ended { .. } => Outcome::Pending,
        };
        match outcome {
            Outcome::Pending => {}
            // Server: the 101 response is the connection's first transmit.
            Outcome::Open(connection) => self.stage = Stage::Open(connection),
            // Client: the response checked out.
            Outcome::Accepted(response) => {
                let ended = Stage::Ended { linger: now + LINGER };
                let Stage::Connecting(handshake) = std::mem::replace(&mut self.stage, ended) else {
                    unreachable!("only a client gets a response")
                };
                match handshake.into_connection(now) {
                    Ok(mut connection) => {
                        handler.opened(now, &mut connection, &response);
                        self.stage = Stage::Open(connection);
                    }
                    Err(error) => handler.failed(error.to_string()),
                }
            }
            // Its last transmits (an HTTP error response, the shutdown) go to `unsent` first.
            Outcome::Ended => {
                self.pull_transmits();
                self.stage = Stage::Ended { linger: now + LINGER };
            }
        }
    }

    /// Pulls the connection's events while our outgoing bytes stay under the mark.
    fn connection_events(&mut self, now: Instant, handler: &mut impl Handler) {
        let Stage::Open(connection) = &mut self.stage else {
            return;
        };
        loop {
            let state = connection.io_state();
            if !state.events_waiting() || self.unsent_len + state.buffered() > HIGH_WATER_MARK {
                break;
            }
            let Some(event) = connection.poll_event() else {
                break;
            };
            self.closed |= matches!(event, Event::Closed(_));
            handler.event(now, connection, event);
        }
    }

    /// Moves what the core has to send into `unsent`.
    fn pull_transmits(&mut self) {
        loop {
            let transmit = match &mut self.stage {
                Stage::Accepting(handshake) => handshake.poll_transmit(),
                Stage::Connecting(handshake) => handshake.poll_transmit(),
                Stage::Open(connection) => connection.poll_transmit(),
                Stage::Ended { .. } => None,
            };
            match transmit {
                Some(Transmit::Data(bytes)) if !self.write_closed => {
                    self.unsent_len += bytes.len();
                    self.unsent.push_back(bytes);
                }
                Some(Transmit::Data(_)) => {}
                Some(Transmit::Shutdown) => self.shutdown = true,
                None => break,
            }
        }
    }

    /// Writes what the socket takes; keeps the rest (a partial write is normal for a
    /// non-blocking socket). Returns whether anything was written.
    fn flush(&mut self, now: Instant) -> bool {
        let mut wrote = false;
        while !self.unsent.is_empty() && !self.write_closed {
            let slices: Vec<IoSlice<'_>> = self
                .unsent
                .iter()
                .take(SLICES_PER_WRITE)
                .map(|bytes| IoSlice::new(bytes))
                .collect();
            match self.socket.deref().write_vectored(&slices) {
                Ok(0) => self.broken(now),
                Ok(mut n) => {
                    wrote = true;
                    self.unsent_len -= n;
                    while n > 0 {
                        let front = &mut self.unsent[0];
                        if n < front.len() {
                            *front = front.slice(n..);
                            break;
                        }
                        n -= front.len();
                        self.unsent.pop_front();
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return wrote,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken(now),
            }
        }
        if self.shutdown && self.unsent.is_empty() {
            self.shutdown = false;
            if !self.write_closed {
                let _ = self.socket.shutdown(Shutdown::Write);
                self.write_closed = true;
            }
        }
        wrote
    }

    /// Nothing more will be written.
    fn abandon_output(&mut self) {
        self.write_closed = true;
        self.unsent.clear();
        self.unsent_len = 0;
        self.shutdown = false;
    }

    /// The peer is gone (a reset): nothing more can be written; the core ends the
    /// connection as at the end of the transport.
    fn broken(&mut self, now: Instant) {
        self.abandon_output();
        if !self.read_closed {
            self.end_of_input(now);
        }
    }
}

/// How a handshake's events turned out. (Short-lived: the connection moves on to the
/// link's stage at once, so it is not boxed.)
#[allow(clippy::large_enum_variant)]
enum Outcome {
    /// Nothing decided yet.
    Pending,
    /// Server: the request was accepted.
    Open(Connection),
    /// Client: the server accepted.
    Accepted(Response),
    /// No connection: an HTTP answer (and the shutdown) is queued.
    Ended,
}

/// The server's handshake events: the application decides on the request.
fn accept_events(now: Instant, handshake: &mut ServerHandshake, handler: &mut impl Handler) -> Outcome {
    match handshake.poll_event() {
        None => Outcome::Pending,
        Some(ServerEvent::Request(request)) => {
            let decided = match handler.decide(&request) {
                Ok(accept) => handshake.accept(now, accept).map(Some),
                Err(response) => handshake.respond(&response).map(|()| None),
            };
            match decided {
                Ok(Some(connection)) => Outcome::Open(connection),
                Ok(None) => Outcome::Ended,
                Err(error) => {
                    // (A subprotocol the client did not offer, a header that is not one.)
                    handler.failed(format!("could not answer the upgrade: {error}"));
                    let _ = handshake.respond(&Response::new(500));
                    Outcome::Ended
                }
            }
        }
        // The error response and the shutdown are queued.
        Some(ServerEvent::Failed(error)) => {
            handler.failed(format!("handshake failed: {error}"));
            Outcome::Ended
        }
    }
}
