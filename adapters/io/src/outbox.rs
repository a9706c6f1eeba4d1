//! [`Outbox`]: the bytes taken from a state machine and not yet written, for every adapter.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};
use wsflow::Transmit;

use crate::SansIo;

/// Most chunks gathered into one vectored write.
pub const MAX_WRITE_SLICES: usize = 64;

/// Where the write side is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteSide {
    /// Writing; `needs_flush` after bytes went to the stream since its last flush.
    Open { needs_flush: bool },
    /// The machine asked to shut the write side down once the queue is written.
    ShutdownRequested,
    /// Shut down, or failed: anything the machine still transmits is dropped.
    Done,
}

/// What an [`Outbox`] has for the stream next.
#[derive(Debug, PartialEq, Eq)]
pub enum NextWrite {
    /// Write these chunks (one vectored write, or a plain one for a single chunk).
    Data,
    /// Everything is written: flush the stream.
    Flush,
    /// Everything is written: shut the write side down (then call
    /// [`Outbox::shut_down`]).
    Shutdown,
    /// Nothing to do.
    Idle,
}

/// The bytes taken from a state machine and not yet written (the front chunk maybe in
/// part), and whether the write side must be shut down after them. Holds no allocation
/// while empty.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{Config, Connection, Message};
/// use wsflow_io::Outbox;
///
/// let mut connection = Connection::server(Arc::new(Config::default()), Instant::now());
/// connection.send(Message::text("hello")).unwrap();
/// let mut outbox = Outbox::default();
/// outbox.pull(&mut connection);
/// assert_eq!(outbox.queued(), 7);
/// let mut wire = Vec::new();
/// outbox.write_to(&mut wire).unwrap();
/// assert_eq!(wire, b"\x81\x05hello");
/// assert!(outbox.is_empty());
/// ```
#[derive(Debug)]
pub struct Outbox {
    chunks: VecDeque<Bytes>,
    queued: usize,
    side: WriteSide,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            chunks: VecDeque::new(),
            queued: 0,
            side: WriteSide::Open { needs_flush: false },
        }
    }
}

impl Outbox {
    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Whether nothing (no bytes, no flush, no shutdown) is waiting.
    pub fn is_empty(&self) -> bool {
        self.next_write() == NextWrite::Idle
    }

    /// Moves everything the machine wants to transmit in here (dropped once the write side
    /// is done).
    pub fn pull(&mut self, machine: &mut impl SansIo) {
        while let Some(transmit) = machine.poll_transmit() {
            match (transmit, self.side) {
                (_, WriteSide::Done) => {}
                (Transmit::Data(bytes), _) if bytes.is_empty() => {}
                (Transmit::Data(bytes), _) => {
                    self.queued += bytes.len();
                    self.chunks.push_back(bytes);
                }
                (Transmit::Shutdown, _) => self.side = WriteSide::ShutdownRequested,
            }
        }
    }

    /// What the stream should be given next.
    pub fn next_write(&self) -> NextWrite {
        match self.side {
            _ if !self.chunks.is_empty() => NextWrite::Data,
            WriteSide::Open { needs_flush: true } => NextWrite::Flush,
            WriteSide::ShutdownRequested => NextWrite::Shutdown,
            WriteSide::Open { needs_flush: false } | WriteSide::Done => NextWrite::Idle,
        }
    }

    /// The single chunk queued, when there is exactly one (a plain write is cheaper than a
    /// vectored one for a socket).
    pub fn single_chunk(&self) -> Option<&[u8]> {
        match self.chunks.as_slices() {
            ([chunk], []) => Some(chunk),
            _ => None,
        }
    }

    /// Fills `slices` with the front chunks; returns how many.
    pub fn gather<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_WRITE_SLICES]) -> usize {
        let count = self.chunks.len().min(MAX_WRITE_SLICES);
        for (slice, chunk) in slices.iter_mut().zip(&self.chunks) {
            *slice = IoSlice::new(chunk);
        }
        count
    }

    /// Records that the stream took `written` bytes from the front.
    pub fn consume(&mut self, mut written: usize) {
        self.queued -= written;
        while written > 0 {
            let Some(front) = self.chunks.front_mut() else { break };
            if written < front.len() {
                front.advance(written);
                break;
            }
            written -= front.len();
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() {
            // An idle connection holds no queue (at most one allocation per write).
            self.chunks = VecDeque::new();
        }
        if let WriteSide::Open { needs_flush } = &mut self.side {
            *needs_flush = true;
        }
    }

    /// Records that the stream was flushed.
    pub fn flushed(&mut self) {
        if let WriteSide::Open { needs_flush } = &mut self.side {
            *needs_flush = false;
        }
    }

    /// Records that the write side was shut down: nothing more is written.
    pub fn shut_down(&mut self) {
        self.side = WriteSide::Done;
    }

    /// The transport failed: drops what is queued, and nothing more is written.
    pub fn fail(&mut self) {
        self.chunks = VecDeque::new();
        self.queued = 0;
        self.side = WriteSide::Done;
    }

    /// Writes everything to a blocking writer, several chunks per system call, and
    /// flushes it. A requested shutdown is left for [`take_shutdown`](Self::take_shutdown),
    /// which the caller carries out its own way. On error (`WouldBlock` on a non-blocking
    /// stream) what is left stays queued; `Interrupted` is retried.
    ///
    /// # Errors
    /// The writer's errors, and `WriteZero` when it takes nothing.
    pub fn write_to(&mut self, writer: &mut impl Write) -> io::Result<()> {
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
            let count = self.gather(&mut slices);
            match writer.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.consume(written),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        if self.next_write() == NextWrite::Flush {
            writer.flush()?;
            self.flushed();
        }
        Ok(())
    }

    /// Whether a shutdown is due now (everything written); marks the write side done.
    pub fn take_shutdown(&mut self) -> bool {
        let due = self.next_write() == NextWrite::Shutdown;
        if due {
            self.shut_down();
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes a call.
    struct Trickle {
        written: Vec<u8>,
        limit: usize,
        flushes: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let take = buf.len().min(self.limit);
            self.written.extend_from_slice(&buf[..take]);
            Ok(take)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    struct Chunks(VecDeque<Transmit>);

    impl SansIo for Chunks {
        fn handle_data(&mut self, _: std::time::Instant, _: &[u8]) {}
        fn handle_eof(&mut self, _: std::time::Instant) {}
        fn handle_timeout(&mut self, _: std::time::Instant) {}
        fn poll_transmit(&mut self) -> Option<Transmit> {
            self.0.pop_front()
        }
        fn poll_timeout(&self) -> Option<std::time::Instant> {
            None
        }
    }

    #[test]
    fn partial_writes_keep_order_and_shutdown_waits_for_the_bytes() {
        let mut machine = Chunks(
            [
                Transmit::Data(Bytes::from_static(b"abc")),
                Transmit::Data(Bytes::new()),
                Transmit::Data(Bytes::from_static(b"defgh")),
                Transmit::Shutdown,
                Transmit::Data(Bytes::from_static(b"after the shutdown")),
            ]
            .into(),
        );
        let mut outbox = Outbox::default();
        outbox.pull(&mut machine);
        assert_eq!(outbox.queued(), 8 + 18);
        assert!(!outbox.take_shutdown(), "bytes are still queued");
        let mut writer = Trickle {
            written: Vec::new(),
            limit: 2,
            flushes: 0,
        };
        outbox.write_to(&mut writer).unwrap();
        assert_eq!(writer.written, b"abcdefghafter the shutdown");
        assert!(outbox.take_shutdown());
        assert!(outbox.is_empty());
        outbox.pull(&mut Chunks([Transmit::Data(Bytes::from_static(b"late"))].into()));
        assert_eq!(outbox.queued(), 0, "nothing is queued after the shutdown");
    }

    #[test]
    fn a_flush_follows_written_bytes_only() {
        let mut outbox = Outbox::default();
        let mut writer = Trickle {
            written: Vec::new(),
            limit: 100,
            flushes: 0,
        };
        outbox.write_to(&mut writer).unwrap();
        assert_eq!(writer.flushes, 0);
        outbox.pull(&mut Chunks([Transmit::Data(Bytes::from_static(b"x"))].into()));
        outbox.write_to(&mut writer).unwrap();
        assert_eq!(writer.flushes, 1);
    }

    #[test]
    fn a_failed_outbox_holds_and_takes_nothing() {
        let mut outbox = Outbox::default();
        outbox.pull(&mut Chunks([Transmit::Data(Bytes::from_static(b"x"))].into()));
        outbox.fail();
        assert_eq!((outbox.queued(), outbox.is_empty()), (0, true));
    }
}
