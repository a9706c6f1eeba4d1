//! The one drive loop, in pieces every state machine shares: the shared [`Outbox`] writes
//! what the core transmits, [`Inbox`] reads with the core's deadline as the socket timeout and
//! feeds what it read (or the timeout) back.

use std::io;
use std::time::{Duration, Instant};

use wsflow_io::{Outbox, SansIo};

use crate::transport::{Transport, TIMEOUT_SLACK};
use crate::Error;

/// Bytes read at a time to begin with: what a connection's thread blocks in `read` on
/// while its reads are small (an idle connection holds this much).
const READ_BUFFER_SIZE: usize = 16 << 10;

/// The most a read takes. A read that fills the buffer makes the next one 4x as large, up
/// to this: a 64 KiB message is then one read, not five (a thread per connection means one
/// wake-up per read, and the async adapters' per-thread buffer is this size too).
const MAX_READ_BUFFER_SIZE: usize = 256 << 10;

/// Small reads in a row (each fitting in [`READ_BUFFER_SIZE`]) after which a grown buffer
/// goes back to that size: a connection holds a big buffer only while big reads come.
const SMALL_READS_TO_SHRINK: u8 = 16;

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
    /// The last read filled `buf`: the next one is made into a bigger one.
    filled: bool,
    /// Small reads in a row into a grown `buf`.
    small_reads: u8,
    timeout_set: bool,
}

impl Inbox {
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0; READ_BUFFER_SIZE].into_boxed_slice(),
            filled: false,
            small_reads: 0,
            timeout_set: true,
        }
    }

    /// Sizes the buffer for the next read from the last ones (what they held was fed
    /// already): bigger after a read that filled it, back to the start after
    /// [`SMALL_READS_TO_SHRINK`] small ones.
    fn resize(&mut self) {
        let len = self.buf.len();
        if self.filled && len < MAX_READ_BUFFER_SIZE {
            self.reallocate((len * 4).min(MAX_READ_BUFFER_SIZE));
        } else if len > READ_BUFFER_SIZE && self.small_reads >= SMALL_READS_TO_SHRINK {
            self.reallocate(READ_BUFFER_SIZE);
        }
    }

    /// Out of line: inlined into `read`, the allocation made the frames under a blocked
    /// `read` one stack page deeper, 4 KiB more of every idle connection's thread.
    #[cold]
    #[inline(never)]
    fn reallocate(&mut self, size: usize) {
        self.buf = vec![0; size].into_boxed_slice();
        self.small_reads = 0;
    }

    /// Notes how much a read brought, for [`resize`](Self::resize).
    fn note(&mut self, read: usize) {
        self.filled = read == self.buf.len();
        self.small_reads = if read <= READ_BUFFER_SIZE && self.buf.len() > READ_BUFFER_SIZE {
            self.small_reads.saturating_add(1)
        } else {
            0
        };
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
        self.resize();
        match stream.read(&mut self.buf) {
            Ok(0) => Ok(Input::Eof),
            Ok(read) => {
                self.note(read);
                Ok(Input::Data(read))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer grows 4x at a time while reads fill it, up to the maximum, and goes back
    /// to its first size after a run of small reads.
    #[test]
    fn the_read_buffer_grows_with_full_reads_and_shrinks_after_small_ones() {
        let mut inbox = Inbox::new();
        let mut sizes = Vec::new();
        for _ in 0..4 {
            inbox.resize();
            sizes.push(inbox.buf.len());
            inbox.note(inbox.buf.len());
        }
        assert_eq!(sizes, [16 << 10, 64 << 10, 256 << 10, 256 << 10]);
        // A 64 KiB message a read: no longer full, the buffer stays as it is.
        inbox.note(64 << 10);
        inbox.resize();
        assert_eq!(inbox.buf.len(), MAX_READ_BUFFER_SIZE);
        for _ in 0..SMALL_READS_TO_SHRINK - 1 {
            inbox.note(100);
            inbox.resize();
        }
        assert_eq!(inbox.buf.len(), MAX_READ_BUFFER_SIZE, "shrunk too early");
        inbox.note(100);
        inbox.resize();
        assert_eq!(inbox.buf.len(), READ_BUFFER_SIZE);
        // Small reads into the first buffer change nothing.
        for _ in 0..100 {
            inbox.note(100);
            inbox.resize();
        }
        assert_eq!(inbox.buf.len(), READ_BUFFER_SIZE);
    }
}
