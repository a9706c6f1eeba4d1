//! The one drive loop: feeds reads into any [`SansIo`] machine (handshake or connection),
//! writes what it transmits in batches, and keeps its timer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Instant;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use wsflow::{SansIo, Transmit};

/// Bytes read per `poll_read`: the buffer is per thread, so its size costs no memory per
/// connection, and big messages take few reads.
const READ_BUFFER_SIZE: usize = 256 << 10;
/// Most chunks gathered into one vectored write.
const MAX_WRITE_SLICES: usize = 64;

thread_local! {
    /// The read buffer of every connection polled on this thread: a read is fed to the
    /// machine (which copies what it keeps) before the poll returns, so no connection holds
    /// a read buffer of its own, and reading allocates nothing.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(READ_BUFFER_SIZE));
}

/// Which task a poll comes from; a split connection is polled by two tasks at once.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    /// `recv` and the handshake.
    Receiver,
    /// `send`, `flush`, `close`.
    Sender,
}

/// The tasks waiting on this connection. The stream and the timer keep only the last waker
/// they were polled with, so they are always polled with one waker that wakes every
/// waiting task: neither half of a split connection can steal the other's wake-up.
#[derive(Debug, Default)]
struct TaskWakers {
    waiting: Mutex<[Option<Waker>; 2]>,
}

impl Wake for TaskWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        waiting.into_iter().flatten().for_each(Waker::wake);
    }
}

/// Where the write half is in its life.
#[derive(Debug, PartialEq, Eq)]
enum WriteState {
    /// Writing; `needs_flush` after bytes went to the stream since its last flush.
    Open { needs_flush: bool },
    /// The machine asked to shut the write half down once the queue is written.
    ShutdownRequested,
    /// Shut down, or failed: nothing more is written.
    Done,
}

/// The timer for the machine's next deadline: one `Sleep`, created for the first
/// deadline and reset only when the deadline changes.
#[derive(Debug, Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    armed_for: Option<Instant>,
}

impl Timer {
    /// Ready once `deadline` has passed; pending forever without a deadline.
    fn poll_expired(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = deadline else {
            // No deadline (the handshake's is over, no keepalive): hold no timer while idle.
            self.sleep = None;
            return Poll::Pending;
        };
        let sleep = match &mut self.sleep {
            Some(sleep) if self.armed_for == Some(deadline) => sleep,
            Some(sleep) => {
                sleep.as_mut().reset(deadline.into());
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(deadline.into()))),
        };
        self.armed_for = Some(deadline);
        sleep.as_mut().poll(cx)
    }
}

/// A stream with the buffers and timer that drive a [`SansIo`] machine over it.
#[derive(Debug)]
pub(crate) struct Io<S> {
    pub(crate) stream: S,
    read_closed: bool,
    /// Transmits taken from the machine and not yet written (the front one maybe in part).
    outgoing: VecDeque<Bytes>,
    outgoing_len: usize,
    write: WriteState,
    timer: Timer,
    wakers: Arc<TaskWakers>,
    /// Wakes every task in `wakers`; the stream and the timer are polled with it.
    fan_out: Waker,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(crate) fn new(stream: S) -> Self {
        let wakers = Arc::new(TaskWakers::default());
        Self {
            stream,
            read_closed: false,
            outgoing: VecDeque::new(),
            outgoing_len: 0,
            write: WriteState::Open { needs_flush: false },
            timer: Timer::default(),
            fan_out: Waker::from(wakers.clone()),
            wakers,
        }
    }

    /// Bytes taken from the machine and not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.outgoing_len
    }

    /// Records `cx`'s waker for `role` and returns the waker to poll the stream and timer with.
    fn register(&self, role: Role, cx: &Context<'_>) -> Waker {
        let mut waiting = self.wakers.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut waiting[role as usize];
        if !slot.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
        self.fan_out.clone()
    }

    /// Takes everything the machine wants written into the outgoing queue.
    fn take_transmits(&mut self, machine: &mut impl SansIo) {
        while let Some(transmit) = machine.poll_transmit() {
            match (transmit, &self.write) {
                (_, WriteState::Done) => {}
                (Transmit::Data(bytes), _) => {
                    self.outgoing_len += bytes.len();
                    self.outgoing.push_back(bytes);
                }
                (Transmit::Shutdown, _) => self.write = WriteState::ShutdownRequested,
            }
        }
    }

    /// Writes the queue (several chunks per vectored write), flushes, then shuts the write
    /// half down if the machine asked to. Ready when all of that is done.
    fn poll_write_queue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outgoing.is_empty() {
            let written = if let [chunk] = self.outgoing.as_slices().0 {
                // One chunk (one batch of small frames): a plain write, which for a socket
                // is cheaper than a vectored one.
                ready!(Pin::new(&mut self.stream).poll_write(cx, chunk))?
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
                let count = slices.len().min(self.outgoing.len());
                for (slice, chunk) in slices.iter_mut().zip(&self.outgoing) {
                    *slice = IoSlice::new(chunk);
                }
                ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count]))?
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume_written(written);
            if let WriteState::Open { needs_flush } = &mut self.write {
                *needs_flush = true;
            }
        }
        match self.write {
            WriteState::Open { needs_flush: true } => {
                ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
                self.write = WriteState::Open { needs_flush: false };
            }
            WriteState::ShutdownRequested => {
                ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
                self.write = WriteState::Done;
            }
            WriteState::Open { needs_flush: false } | WriteState::Done => {}
        }
        Poll::Ready(Ok(()))
    }

    fn consume_written(&mut self, mut written: usize) {
        self.outgoing_len -= written;
        while written > 0 {
            let Some(front) = self.outgoing.front_mut() else { break };
            if written < front.len() {
                front.advance(written);
                break;
            }
            written -= front.len();
            self.outgoing.pop_front();
        }
        if self.outgoing.is_empty() {
            // An idle connection holds no queue (at most one allocation per write).
            self.outgoing = VecDeque::new();
        }
    }

    /// One read fed to the machine (end of stream as `handle_eof`). Pending forever after
    /// the end of the stream.
    fn poll_read_once(&mut self, machine: &mut impl SansIo, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read_closed {
            return Poll::Pending;
        }
        READ_BUFFER.with(|shared| match shared.try_borrow_mut() {
            Ok(mut buffer) => self.poll_read_into(&mut buffer, machine, cx),
            // A stream that itself drives a connection on this thread: a buffer of its own.
            Err(_) => self.poll_read_into(&mut Vec::with_capacity(READ_BUFFER_SIZE), machine, cx),
        })
    }

    fn poll_read_into(
        &mut self,
        buffer: &mut Vec<u8>,
        machine: &mut impl SansIo,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let spare: &mut [MaybeUninit<u8>] = buffer.spare_capacity_mut();
        let mut read = ReadBuf::uninit(spare);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut read))?;
        let now = Instant::now();
        if read.filled().is_empty() {
            self.read_closed = true;
            machine.handle_eof(now);
        } else {
            machine.handle_data(now, read.filled());
        }
        Poll::Ready(Ok(()))
    }

    /// Calls the machine's `handle_timeout` if its deadline has passed.
    fn poll_timer(&mut self, machine: &mut impl SansIo, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.timer.poll_expired(machine.poll_timeout(), cx));
        machine.handle_timeout(Instant::now());
        Poll::Ready(())
    }

    /// The transport failed: nothing more is read or written, and the machine learns the
    /// transport is gone (a connection then ends with `Closed`).
    fn fail(&mut self, machine: &mut impl SansIo, error: io::Error) -> io::Error {
        self.read_closed = true;
        self.write = WriteState::Done;
        self.outgoing.clear();
        self.outgoing_len = 0;
        machine.handle_eof(Instant::now());
        error
    }

    /// Drives the machine until `next_event` yields: writes, timer and reads, in that
    /// order, so answers the machine queued (pongs, close echoes) go out before the event
    /// is handed over. While `batched` holds, the next event is handed over before writing:
    /// the application's answers to all the messages of one read then go out in one write,
    /// made when they run out (before waiting for the transport). A peer that resets or drops the transport is reported to the
    /// machine as the end of the stream, not as an error: the machine says how that ends
    /// (e.g. `Closed` with 1006, or a clean close when the closing handshake was done).
    /// Cancel safe: all state lives in `self` and in the machine.
    pub(crate) fn poll_event<T: SansIo, E>(
        &mut self,
        machine: &mut T,
        role: Role,
        cx: &mut Context<'_>,
        mut next_event: impl FnMut(&mut T) -> Option<E>,
        batched: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<E>> {
        // Registered only once the stream or the timer is polled: the messages of a read
        // are handed over without touching the wakers.
        let mut waker = None;
        loop {
            if batched(machine) {
                if let Some(event) = next_event(machine) {
                    return Poll::Ready(Ok(event));
                }
            }
            let waker = waker.get_or_insert_with(|| self.register(role, cx));
            let cx = &mut Context::from_waker(waker);
            self.take_transmits(machine);
            if let Poll::Ready(Err(error)) = self.poll_write_queue(cx) {
                self.fail_unless_peer_gone(machine, error)?;
            }
            if let Some(event) = next_event(machine) {
                return Poll::Ready(Ok(event));
            }
            if self.poll_timer(machine, cx).is_ready() {
                continue;
            }
            if let Err(error) = ready!(self.poll_read_once(machine, cx)) {
                self.fail_unless_peer_gone(machine, error)?;
            }
        }
    }

    /// Stops the transport after `error`; returns it unless it means the peer went away.
    fn fail_unless_peer_gone(&mut self, machine: &mut impl SansIo, error: io::Error) -> io::Result<()> {
        let peer_gone = wsflow::is_peer_gone(&error);
        let error = self.fail(machine, error);
        if peer_gone {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// Writes until at most `high_water_mark` bytes are left unwritten (everything, flush
    /// and shutdown included, for 0). Keeps the machine's timer running meanwhile, so a
    /// peer that stops reading is caught by the keepalive or close timeout; returns once
    /// the machine has `finished` even if bytes remain. Cancel safe.
    pub(crate) fn poll_drain<T: SansIo>(
        &mut self,
        machine: &mut T,
        role: Role,
        cx: &mut Context<'_>,
        high_water_mark: usize,
        finished: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<()>> {
        let waker = self.register(role, cx);
        let cx = &mut Context::from_waker(&waker);
        loop {
            self.take_transmits(machine);
            match self.poll_write_queue(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(self.fail(machine, error))),
                Poll::Pending if high_water_mark > 0 && self.outgoing_len <= high_water_mark => {
                    return Poll::Ready(Ok(()))
                }
                Poll::Pending => {}
            }
            if self.poll_timer(machine, cx).is_pending() {
                return if finished(machine) {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                };
            }
        }
    }
}
