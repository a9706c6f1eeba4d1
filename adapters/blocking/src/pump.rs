//! The one drive loop, in pieces every state machine shares: the shared [`Outbox`] writes
//! what the core transmits, [`Inbox`] reads with the core's deadline as the socket timeout and
//! feeds what it read (or the timeout) back.

use std::io;
use std::time::{Duration, Instant};

use wsflow_io::{Outbox, SansIo};

use crate::transport::{Transport, TIMEOUT_SLACK};
use crate::Error;

/// Bytes read at a time. Held for the connection's life: the thread blocks in `read` on it.
const READ_BUFFER_SIZE: usize = 16 << 10;

/// Writes everything `outbox` holds to `stream`, then shuts its write side down if the
/// core asked to. On error (`WouldBlock` on a non-blocking socket) what is left stays queued.
pub(crate) fn write_outbox(outbox: &mut Outbox, stream: &mut impl Transport) -> io::Result<()> {
    outbox.write_to(stream)?;
    if outbox.take_shutdown() {
        stream.shutdown_write()?;
    }
    Ok(())
}

/// Writes bounded by the core's next deadline, and whether a write timeout is left set on
/// the stream (cleared once no deadline bounds the writes).
#[derive(Debug, Default)]
pub(crate) struct WriteDeadline {
    timeout_set: bool,
}

/// How a write bounded by a deadline ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// Everything queued was written.
    All,
    /// The deadline came first; what is left stays queued.
    DeadlinePassed,
}

impl WriteDeadline {
    /// [`write_outbox`], giving up when `deadline` passes (the core's next deadline: its
    /// timers must run even while a peer that stopped reading holds the write).
    pub(crate) fn write(
        &mut self,
        outbox: &mut Outbox,
        stream: &mut impl Transport,
        deadline: Option<Instant>,
    ) -> io::Result<Written> {
        let Some(deadline) = deadline else {
            if std::mem::take(&mut self.timeout_set) {
                stream.set_write_timeout(None)?;
            }
            return write_outbox(outbox, stream).map(|()| Written::All);
        };
        self.timeout_set = true;
        match outbox.write_to(&mut stream.writer_until(deadline)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::TimedOut => return Ok(Written::DeadlinePassed),
            Err(error) => return Err(error),
        }
        if outbox.take_shutdown() {
            stream.shutdown_write()?;
        }
        Ok(Written::All)
    }
}

/// What one read brought.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input {
    /// This many bytes at the front of the read buffer.
    Data(usize),
    /// The peer closed the stream.
    Eof,
    /// The wait ended without data: check the timers.
    Timer,
}

/// The reusable read buffer, and the read timeout last set on the stream.
#[derive(Debug)]
pub(crate) struct Inbox {
    buf: Box<[u8]>,
    timeout_set: bool,
}

impl Inbox {
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
            timeout_set: true,
        }
    }

    /// Reads once, waiting until `deadline` at most (and at most `max_wait`).
    ///
    /// # Errors
    /// The stream's errors; `WouldBlock` when a non-blocking stream has nothing.
    pub(crate) fn read(
        &mut self,
        stream: &mut impl Transport,
        deadline: Option<Instant>,
        max_wait: Option<Duration>,
    ) -> io::Result<Input> {
        let started = Instant::now();
        let until_deadline = deadline.map(|deadline| deadline.saturating_duration_since(started));
        let wait = match (until_deadline, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wait == Some(Duration::ZERO) {
            return Ok(Input::Timer);
        }
        if wait.is_some() || self.timeout_set {
            stream.set_read_timeout(wait)?;
            self.timeout_set = wait.is_some();
        }
        match stream.read(&mut self.buf) {
            Ok(0) => Ok(Input::Eof),
            Ok(read) => Ok(Input::Data(read)),
            // A reset, a broken pipe, TLS without close_notify: the core decides how that ends.
            Err(error) if wsflow_io::is_peer_gone(&error) => Ok(Input::Eof),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(Input::Timer),
            Err(error)
                if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
                    && wait.is_some_and(|wait| started.elapsed() + TIMEOUT_SLACK >= wait) =>
            {
                Ok(Input::Timer)
            }
            Err(error) => Err(error),
        }
    }

    /// Hands `input` to the state machine.
    pub(crate) fn feed(&self, core: &mut impl SansIo, input: Input) {
        let now = Instant::now();
        match input {
            Input::Data(read) => core.handle_data(now, &self.buf[..read]),
            Input::Eof => core.handle_eof(now),
            Input::Timer => core.handle_timeout(now),
        }
    }
}

/// Runs a handshake until it reports an event: writes its transmits, reads with its
/// deadline, feeds it. Transmits queued with the event (an error response, a shutdown)
/// are written before returning, as far as the stream takes them.
///
/// # Errors
/// Transport errors.
pub(crate) fn drive_handshake<H: SansIo, E>(
    handshake: &mut H,
    stream: &mut impl Transport,
    inbox: &mut Inbox,
    poll_event: impl Fn(&mut H) -> Option<E>,
) -> Result<E, Error> {
    let mut outbox = Outbox::default();
    loop {
        outbox.pull(handshake);
        write_outbox(&mut outbox, stream)?;
        if let Some(event) = poll_event(handshake) {
            outbox.pull(handshake);
            // The event says more than a failure to deliver its response would.
            let _ = write_outbox(&mut outbox, stream);
            return Ok(event);
        }
        let input = inbox.read(stream, handshake.poll_timeout(), None)?;
        inbox.feed(handshake, input);
    }
}
