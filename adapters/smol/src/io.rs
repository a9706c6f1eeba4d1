//! The one drive loop: moves bytes between a futures-io stream and any [`SansIo`] machine
//! (handshake or connection) and fires its timer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use async_io::Timer;
use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::poll_fn;
use wsflow::{is_peer_gone, SansIo, Transmit};

/// Bytes read at a time, as the tokio adapter: big messages in few system calls. The
/// buffer is one per thread, not per connection.
const READ_BUFFER_SIZE: usize = 256 << 10;
/// Most chunks gathered into one vectored write.
const MAX_WRITE_CHUNKS: usize = 64;

thread_local! {
    /// The read buffer of every connection polled on this thread: a read is fed to the
    /// machine (which copies what it keeps) before the poll returns, so no connection holds
    /// a read buffer of its own, and reading allocates nothing.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER_SIZE].into_boxed_slice());
}

/// How far the write side has gone towards shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteSide {
    Open,
    /// The machine asked for a shutdown once the queued bytes are written.
    ShutdownRequested,
    /// Shut down (or failed): anything the machine still transmits is dropped.
    Closed,
}

/// I/O state kept beside a machine: the bytes pulled from the machine but not yet
/// written, and the one reusable timer.
#[derive(Debug)]
pub(crate) struct Io {
    write_queue: VecDeque<Bytes>,
    write_queued: usize,
    write_side: WriteSide,
    eof: bool,
    timer: Timer,
    timer_deadline: Option<Instant>,
}

impl Io {
    pub(crate) fn new() -> Self {
        Self {
            write_queue: VecDeque::new(),
            write_queued: 0,
            write_side: WriteSide::Open,
            eof: false,
            timer: Timer::never(),
            timer_deadline: None,
        }
    }

    /// Bytes taken from the machine and not yet accepted by the stream.
    pub(crate) fn write_queued(&self) -> usize {
        self.write_queued
    }

    /// Writes everything the machine transmits, then flushes the stream (and shuts its
    /// write side down when asked to). `Ready(Ok)` once nothing is left to write.
    pub(crate) fn poll_write<S, M>(
        &mut self,
        stream: &mut S,
        machine: &mut M,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>>
    where
        S: AsyncWrite + Unpin,
        M: SansIo,
    {
        let result = ready!(self.poll_write_inner(stream, machine, cx));
        if let Err(error) = &result {
            // The stream is broken: nothing more can be written, and the machine ends as
            // if the peer had gone (a connection then reports `Closed` with `Eof`).
            self.write_side = WriteSide::Closed;
            self.write_queue.clear();
            self.write_queued = 0;
            if !self.eof {
                self.finish_reading(machine);
            }
            if is_peer_gone(error) {
                return Poll::Ready(Ok(()));
            }
        }
        Poll::Ready(result)
    }

    fn poll_write_inner<S, M>(&mut self, stream: &mut S, machine: &mut M, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        S: AsyncWrite + Unpin,
        M: SansIo,
    {
        loop {
            self.pull_transmits(machine);
            if self.write_queue.is_empty() {
                return match self.write_side {
                    WriteSide::Open => Pin::new(&mut *stream).poll_flush(cx),
                    WriteSide::ShutdownRequested => {
                        // A failed shutdown (e.g. the peer already reset the connection)
                        // ends the write side just the same; reads report what happened.
                        let _shutdown_result = ready!(Pin::new(&mut *stream).poll_close(cx));
                        self.write_side = WriteSide::Closed;
                        Poll::Ready(Ok(()))
                    }
                    WriteSide::Closed => Poll::Ready(Ok(())),
                };
            }
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_CHUNKS];
            let count = self.write_queue.len().min(MAX_WRITE_CHUNKS);
            for (slice, chunk) in slices.iter_mut().zip(&self.write_queue) {
                *slice = IoSlice::new(chunk);
            }
            match ready!(Pin::new(&mut *stream).poll_write_vectored(cx, &slices[..count])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(written) => self.consume(written),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    /// Moves transmits from the machine into the write queue, up to one vectored write's worth.
    fn pull_transmits<M: SansIo>(&mut self, machine: &mut M) {
        while self.write_queue.len() < MAX_WRITE_CHUNKS && self.write_side == WriteSide::Open {
            match machine.poll_transmit() {
                Some(Transmit::Data(bytes)) if !bytes.is_empty() => {
                    self.write_queued += bytes.len();
                    self.write_queue.push_back(bytes);
                }
                Some(Transmit::Data(_)) => {}
                Some(Transmit::Shutdown) => self.write_side = WriteSide::ShutdownRequested,
                None => return,
            }
        }
        if self.write_side == WriteSide::Closed {
            while machine.poll_transmit().is_some() {}
        }
    }

    fn consume(&mut self, mut written: usize) {
        self.write_queued -= written;
        while let Some(front) = self.write_queue.front_mut() {
            if written < front.len() {
                front.advance(written);
                return;
            }
            written -= front.len();
            self.write_queue.pop_front();
        }
        // An idle connection holds no queue (at most one allocation per write).
        self.write_queue = VecDeque::new();
    }

    /// Waits for input: fires the machine's timer when its deadline has come, or feeds it
    /// one read (data or EOF). `Ready(Ok)` once the machine has been given something. A read
    /// error is also reported to the machine as EOF, and a disconnect is only that.
    pub(crate) fn poll_input<S, M>(
        &mut self,
        stream: &mut S,
        machine: &mut M,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>>
    where
        S: AsyncRead + Unpin,
        M: SansIo,
    {
        if let Some(deadline) = machine.poll_timeout() {
            if self.poll_deadline(deadline, cx).is_ready() {
                machine.handle_timeout(Instant::now());
                return Poll::Ready(Ok(()));
            }
        }
        if self.eof {
            return Poll::Pending;
        }
        READ_BUFFER.with(|shared| match shared.try_borrow_mut() {
            Ok(mut buffer) => self.poll_read_into(&mut buffer, stream, machine, cx),
            // A stream that itself drives a connection on this thread: a buffer of its own.
            Err(_) => self.poll_read_into(&mut vec![0; READ_BUFFER_SIZE], stream, machine, cx),
        })
    }

    fn poll_read_into<S, M>(
        &mut self,
        buffer: &mut [u8],
        stream: &mut S,
        machine: &mut M,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>>
    where
        S: AsyncRead + Unpin,
        M: SansIo,
    {
        let result = loop {
            match Pin::new(&mut *stream).poll_read(cx, buffer) {
                Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match result {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) => {
                self.finish_reading(machine);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) if is_peer_gone(&error) => {
                self.finish_reading(machine);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(read)) => {
                machine.handle_data(Instant::now(), &buffer[..read]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => {
                self.finish_reading(machine);
                Poll::Ready(Err(error))
            }
        }
    }

    fn finish_reading<M: SansIo>(&mut self, machine: &mut M) {
        self.eof = true;
        machine.handle_eof(Instant::now());
    }

    /// Waits until `deadline` on the reusable timer, re-arming it only when the deadline changes.
    pub(crate) fn poll_deadline(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        if self.timer_deadline != Some(deadline) {
            self.timer.set_at(deadline);
            self.timer_deadline = Some(deadline);
        }
        ready!(Pin::new(&mut self.timer).poll(cx));
        // A fired timer is disarmed.
        self.timer_deadline = None;
        Poll::Ready(())
    }

    /// Writes what is queued and feeds input until `next` yields something from the machine.
    pub(crate) async fn drive_until<S, M, T>(
        &mut self,
        stream: &mut S,
        machine: &mut M,
        mut next: impl FnMut(&mut M) -> Option<T>,
    ) -> io::Result<T>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        M: SansIo,
    {
        poll_fn(|cx| loop {
            if let Poll::Ready(Err(error)) = self.poll_write(stream, machine, cx) {
                return Poll::Ready(Err(error));
            }
            if let Some(item) = next(machine) {
                return Poll::Ready(Ok(item));
            }
            ready!(self.poll_input(stream, machine, cx))?;
        })
        .await
    }

    /// Writes everything the machine has queued (including a shutdown).
    pub(crate) async fn flush<S, M>(&mut self, stream: &mut S, machine: &mut M) -> io::Result<()>
    where
        S: AsyncWrite + Unpin,
        M: SansIo,
    {
        poll_fn(|cx| self.poll_write(stream, machine, cx)).await
    }
}
