//! The one connection loop, for both commands: a WebSocket driven from a single thread,
//! taking [`Command`]s from a channel (stdin, a broadcast hub, a child process) and
//! handing events to a [`Handler`].
//!
//! One thread because `wss://` streams cannot be split into two handles. The thread
//! blocks in the socket's read for at most [`TICK`] (less while commands keep coming),
//! then carries out the commands that arrived meanwhile: what the peer sends is handled
//! the moment it arrives (so round-trip times are exact), a typed line waits at most a
//! tick. Writes have the same timeout, so a peer that does not read never stops us from
//! reading (a full socket leaves the rest queued, as on a non-blocking socket).
//!
//! The adapter sets the read timeout itself only while the core has a deadline; without
//! keepalive or idle timeouts (the CLI uses its own pings) that is only once the closing
//! handshake has begun, when there are no commands left to wait for.

use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsflow_blocking::{
    CloseCode, Closed, Error, Event, MaybeTlsStream, Message, MessageKind, PreparedMessage, TlsServerStream, Transport,
    WebSocket, DEFAULT_HIGH_WATER_MARK,
};

use crate::show::Log;

/// The longest a read waits before the loop looks for commands again.
const TICK: Duration = Duration::from_millis(20);
/// The read timeout while commands keep coming (stdin piped in faster than it is sent).
const BUSY_TICK: Duration = Duration::from_millis(1);
/// Pings whose pong we wait for, to print the round-trip time (older ones are forgotten).
const PINGS_REMEMBERED: usize = 16;

/// What another thread asks the connection to do.
#[derive(Clone, Debug)]
pub enum Command {
    /// Send a message.
    Send(Message),
    /// Send the next part of a binary message streamed from stdin; `fin` ends it.
    Fragment {
        /// The bytes of this part.
        data: Bytes,
        /// Whether it is the last part.
        fin: bool,
    },
    /// Send a ping.
    Ping(Bytes),
    /// Start the closing handshake.
    Close(CloseCode, String),
}

/// A stream whose TCP socket can be switched to non-blocking mode.
pub trait Socket: Transport {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for MaybeTlsStream {
    fn tcp(&self) -> &TcpStream {
        MaybeTlsStream::tcp(self)
    }
}

impl Socket for TlsServerStream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// What a command (client or server mode) does with the events of a connection.
pub trait Handler<S> {
    /// Called for every event, in order, after it was logged.
    ///
    /// # Errors
    /// A local I/O error (stdout, a child's stdin) ends the loop.
    fn on_event(&mut self, session: &mut Session<S>, event: Event) -> io::Result<()>;

    /// Whether the handler can take another event now (backpressure: when it cannot,
    /// the socket is not read). `session` tells how much is queued to send.
    fn ready(&mut self, session: &Session<S>) -> bool {
        let _ = session;
        true
    }

    /// Sends what the handler has for the peer besides the commands (the broadcast hub's
    /// deliveries), while [`Session::has_room`]; called before each read. Returns whether
    /// it sent anything (the next read then waits less, as after a command).
    ///
    /// # Errors
    /// As [`on_event`](Self::on_event).
    fn outgoing(&mut self, session: &mut Session<S>) -> io::Result<bool> {
        let _ = session;
        Ok(false)
    }

    /// The command channel has no senders left (stdin ended, the process's stdout ended).
    ///
    /// # Errors
    /// As [`on_event`](Self::on_event).
    fn on_input_closed(&mut self, session: &mut Session<S>) -> io::Result<()>;
}

/// How a connection ended.
#[derive(Debug)]
pub struct Ending {
    /// The core's account.
    pub closed: Closed,
    /// Whether we started the closing handshake.
    pub we_closed: bool,
}

impl Ending {
    /// A normal close: the closing handshake completed, and either we started it or the
    /// peer said 1000, 1001 or gave no code.
    pub fn is_normal(&self) -> bool {
        let code = self.closed.code();
        self.closed.is_clean()
            && (self.we_closed
                || code == CloseCode::NORMAL
                || code == CloseCode::GOING_AWAY
                || code == CloseCode::NO_STATUS)
    }
}

/// A connection, its log, and the pings waiting for their pong.
#[derive(Debug)]
pub struct Session<S> {
    ws: WebSocket<S>,
    log: Log,
    pings: VecDeque<(Bytes, Instant)>,
    ping_interval: Option<Duration>,
    next_ping: Option<Instant>,
    pings_sent: u64,
    we_closed: bool,
}

fn is_would_block(error: &Error) -> bool {
    matches!(error, Error::Transport(error) if error.kind() == io::ErrorKind::WouldBlock)
}

/// A write that failed for now (a full socket: the rest stays queued) or because the peer
/// is gone (the next read sees the end, and the core reports it as `Closed`).
fn is_left_to_the_reader(error: &Error) -> bool {
    is_would_block(error) || matches!(error, Error::Transport(error) if wsflow_blocking::wsflow_io::is_peer_gone(error))
}

impl<S: Socket> Session<S> {
    /// A session over `ws`, pinging every `ping_interval` if given.
    pub fn new(ws: WebSocket<S>, log: Log, ping_interval: Option<Duration>) -> Self {
        Self {
            ws,
            log,
            pings: VecDeque::new(),
            ping_interval,
            next_ping: ping_interval.map(|interval| Instant::now() + interval),
            pings_sent: 0,
            we_closed: false,
        }
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Carries out a command. A command the connection refuses (sending after close, a
    /// close code that may not be sent) is reported on stderr, not fatal.
    ///
    /// # Errors
    /// Transport errors.
    pub fn apply(&mut self, command: Command) -> Result<(), Error> {
        let result = match command {
            Command::Send(message) => {
                self.log.sent(&message);
                self.ws.send(message)
            }
            Command::Fragment { data, fin } => {
                self.log
                    .line(format_args!("> fragment binary {} bytes fin={fin}", data.len()));
                self.ws.send_fragment(MessageKind::Binary, data, fin)
            }
            Command::Ping(payload) => {
                self.log.line(format_args!("> ping {} bytes", payload.len()));
                let result = self.ws.ping(payload.clone());
                if result.is_ok() {
                    if self.pings.len() == PINGS_REMEMBERED {
                        self.pings.pop_front();
                    }
                    self.pings.push_back((payload, Instant::now()));
                }
                result
            }
            Command::Close(code, reason) => {
                self.log.line(format_args!("> close {} {reason:?}", code.as_u16()));
                let result = self.ws.close(code, &reason);
                if result.is_ok() && self.ws.closed().is_none() {
                    self.we_closed = true;
                }
                result
            }
        };
        match result {
            Err(error) if is_left_to_the_reader(&error) => Ok(()),
            Err(Error::Send(wsflow_blocking::wsflow::SendError::Closed)) => {
                self.log.line(format_args!("(not sent: the connection is closing)"));
                Ok(())
            }
            Err(Error::Send(error)) => {
                eprintln!("wsflow: not sent: {error}");
                Ok(())
            }
            other => other,
        }
    }

    /// Sends a message framed once for many connections (the broadcast server), as
    /// [`send`](Self::send).
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        self.log.sent(message.message());
        match self.ws.send_prepared(message) {
            Err(error) if is_left_to_the_reader(&error) => Ok(()),
            Err(Error::Send(_)) => Ok(()), // closing: the broadcast is not for it any more
            other => other,
        }
    }

    /// Sends a message (the echo server).
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.apply(Command::Send(message))
    }

    /// Starts the closing handshake unless it has begun.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.ws.closed().is_some() {
            return Ok(());
        }
        self.apply(Command::Close(code, reason.to_owned()))
    }

    /// The round-trip time of the ping `payload` answers, if we sent it (and the pings
    /// sent before it, which will get no pong of their own, are forgotten).
    pub fn round_trip(&mut self, payload: &[u8]) -> Option<Duration> {
        let at = self.pings.iter().position(|(sent, _)| sent == payload)?;
        let (_, sent_at) = self.pings.drain(..=at).last()?;
        Some(sent_at.elapsed())
    }

    /// Whether less than the high-water mark is queued to send.
    pub fn has_room(&self) -> bool {
        self.ws.buffered_amount() < DEFAULT_HIGH_WATER_MARK
    }

    /// Sends the `--ping-interval` ping when it is due; returns how long until the next.
    fn keepalive(&mut self) -> Result<Duration, Error> {
        let (Some(interval), Some(due)) = (self.ping_interval, self.next_ping) else {
            return Ok(TICK);
        };
        let now = Instant::now();
        if now < due {
            return Ok(TICK.min(due - now));
        }
        self.next_ping = Some(now + interval);
        self.pings_sent += 1;
        if self.ws.closed().is_none() {
            let payload = Bytes::from(format!("wsflow {}", self.pings_sent));
            self.apply(Command::Ping(payload))?;
        }
        Ok(TICK.min(interval))
    }

    /// Runs the connection to its end: commands from `commands` are carried out while
    /// less than the high-water mark is queued, events go to `handler` while it is ready,
    /// `interrupt` (Ctrl-C) closes with 1001. Returns how it ended.
    ///
    /// # Errors
    /// Transport errors, and the handler's local I/O errors.
    pub fn run(
        &mut self,
        commands: &Receiver<Command>,
        handler: &mut impl Handler<S>,
        interrupt: Option<&AtomicBool>,
    ) -> Result<Ending, Error> {
        // The first read is non-blocking: it makes the adapter drop the handshake's read
        // timeout (it sets `None` once when the core has no deadline, then leaves the
        // socket alone), after which the timeouts set here hold.
        self.ws.get_ref().tcp().set_nonblocking(true)?;
        let result = self.run_loop(commands, handler, interrupt);
        // Write what is left (a close echo), blocking, for at most the close timeout.
        let tcp = self.ws.get_ref().tcp();
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_write_timeout(Some(self.ws.config().get_close_timeout()));
        let _ = self.ws.flush();
        result
    }

    fn run_loop(
        &mut self,
        commands: &Receiver<Command>,
        handler: &mut impl Handler<S>,
        interrupt: Option<&AtomicBool>,
    ) -> Result<Ending, Error> {
        let mut input_open = true;
        let mut closed = None;
        let mut blocking = false;
        loop {
            if interrupt.is_some_and(|flag| flag.swap(false, Ordering::SeqCst)) {
                self.close(CloseCode::GOING_AWAY, "")?;
            }
            let mut wait = self.keepalive()?;
            while input_open && self.has_room() {
                match commands.try_recv() {
                    Ok(command) => {
                        self.apply(command)?;
                        wait = BUSY_TICK;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        input_open = false;
                        handler.on_input_closed(self)?;
                    }
                }
            }
            if handler.outgoing(self)? {
                wait = BUSY_TICK;
            }
            match self.ws.flush() {
                Err(error) if !is_left_to_the_reader(&error) => return Err(error),
                _ => {}
            }
            if !handler.ready(self) {
                std::thread::sleep(BUSY_TICK);
                continue;
            }
            if blocking {
                // Every time: the adapter sets its own while the core has a deadline.
                let wait = wait.max(Duration::from_micros(100));
                self.ws.get_ref().tcp().set_read_timeout(Some(wait))?;
            }
            match self.ws.recv() {
                Ok(Some(event)) => {
                    self.log.received(&event);
                    if let Event::Closed(ended) = &event {
                        closed = Some(Closed::clone(ended));
                    }
                    handler.on_event(self, event)?;
                }
                Ok(None) => break,
                Err(error) if is_would_block(&error) => {
                    if !blocking {
                        let tcp = self.ws.get_ref().tcp();
                        tcp.set_nonblocking(false)?;
                        tcp.set_write_timeout(Some(TICK))?;
                        blocking = true;
                    }
                }
                Err(error) => return Err(error),
            }
        }
        let closed = closed.ok_or(Error::Closed)?;
        Ok(Ending {
            closed,
            we_closed: self.we_closed,
        })
    }
}
