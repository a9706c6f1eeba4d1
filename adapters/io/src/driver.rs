//! [`Io`]: the one async drive loop. It feeds reads into any [`SansIo`] machine (handshake
//! or connection), writes what it transmits in batches, and keeps its timer.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::outbox::{NextWrite, Outbox, MAX_WRITE_SLICES};
use crate::runtime::{AsyncStream, Runtime, Timer};
use crate::SansIo;

/// Bytes read per `poll_read`: the buffer is per thread, so its size costs no memory per
/// connection, and big messages take few reads.
const READ_BUFFER_SIZE: usize = 256 << 10;

thread_local! {
    /// The read buffer of every connection polled on this thread: a read is fed to the
    /// machine (which copies what it keeps) before the poll returns, so no connection holds
    /// a read buffer of its own, and reading allocates nothing.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER_SIZE].into_boxed_slice());
}

/// Which task a poll comes from; a split connection is polled by two tasks at once.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Task {
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

/// The timer for the next deadline: created for the first one and reset only when the
/// deadline changes; dropped while there is none (an idle connection holds no timer).
struct DeadlineTimer<T> {
    timer: Option<T>,
    armed_for: Option<Instant>,
}

impl<T: Timer> DeadlineTimer<T> {
    /// Ready once `deadline` has passed; pending forever without a deadline.
    fn poll_expired<R: Runtime<Timer = T>>(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = deadline else {
            self.timer = None;
            self.armed_for = None;
            return Poll::Pending;
        };
        let timer = match &mut self.timer {
            Some(timer) if self.armed_for == Some(deadline) => timer,
            Some(timer) => {
                timer.reset(deadline);
                timer
            }
            None => self.timer.insert(R::timer(deadline)),
        };
        self.armed_for = Some(deadline);
        timer.poll_fired(cx)
    }
}

impl<T> std::fmt::Debug for DeadlineTimer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineTimer")
            .field("armed_for", &self.armed_for)
            .finish()
    }
}

/// A stream with the outbox and timer that drive a [`SansIo`] machine over it.
pub(crate) struct Io<S: AsyncStream> {
    pub(crate) stream: S,
    read_closed: bool,
    outbox: Outbox,
    timer: DeadlineTimer<<S::Runtime as Runtime>::Timer>,
    /// Set once the connection is split: the tasks waiting on it, and the waker that wakes
    /// them all, which the stream and the timer are then polled with. A connection used by
    /// one task polls with that task's own waker and holds neither.
    shared: Option<(Arc<TaskWakers>, Waker)>,
}

impl<S: AsyncStream + std::fmt::Debug> std::fmt::Debug for Io<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("stream", &self.stream)
            .field("read_closed", &self.read_closed)
            .field("outbox", &self.outbox)
            .field("timer", &self.timer)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncStream> Io<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            read_closed: false,
            outbox: Outbox::default(),
            timer: DeadlineTimer {
                timer: None,
                armed_for: None,
            },
            shared: None,
        }
    }

    /// From now on two tasks poll this connection (split halves).
    pub(crate) fn share(&mut self) {
        let wakers = Arc::new(TaskWakers::default());
        self.shared = Some((wakers.clone(), Waker::from(wakers)));
    }

    /// The runtime's current time.
    pub(crate) fn now() -> Instant {
        S::Runtime::now()
    }

    /// Bytes taken from the machine and not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.outbox.queued()
    }

    /// On a shared connection: records `cx`'s waker for `task` and returns the waker to
    /// poll the stream and timer with. `None`: poll with `cx` itself.
    fn register(&self, task: Task, cx: &Context<'_>) -> Option<Waker> {
        let (wakers, fan_out) = self.shared.as_ref()?;
        let mut waiting = wakers.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut waiting[task as usize];
        if !slot.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
        Some(fan_out.clone())
    }

    /// Writes the outbox (several chunks per vectored write), flushes, then shuts the
    /// write half down if the machine asked to. Ready when all of that is done.
    fn poll_write_outbox(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.outbox.next_write() {
                NextWrite::Data => {
                    let written = if let Some(chunk) = self.outbox.single_chunk() {
                        self.stream.poll_write(cx, chunk)
                    } else {
                        let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
                        let count = self.outbox.gather(&mut slices);
                        self.stream.poll_write_vectored(cx, &slices[..count])
                    };
                    match ready!(written) {
                        Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Ok(written) => self.outbox.consume(written),
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(error) => return Poll::Ready(Err(error)),
                    }
                }
                NextWrite::Flush => {
                    ready!(self.stream.poll_flush(cx))?;
                    self.outbox.flushed();
                }
                NextWrite::Shutdown => {
                    // A failed shutdown (the peer already reset the connection) ends the
                    // write side just the same; reads report what happened.
                    let _shutdown = ready!(self.stream.poll_shutdown(cx));
                    self.outbox.shut_down();
                }
                NextWrite::Idle => return Poll::Ready(Ok(())),
            }
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
            Err(_) => self.poll_read_into(&mut vec![0; READ_BUFFER_SIZE], machine, cx),
        })
    }

    fn poll_read_into(
        &mut self,
        buffer: &mut [u8],
        machine: &mut impl SansIo,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let read = loop {
            match ready!(self.stream.poll_read(cx, buffer)) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if read == 0 {
            self.read_closed = true;
            machine.handle_eof(Self::now());
        } else {
            machine.handle_data(Self::now(), &buffer[..read]);
        }
        Poll::Ready(Ok(()))
    }

    /// Calls the machine's `handle_timeout` if its deadline has passed.
    fn poll_timer(&mut self, machine: &mut impl SansIo, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.timer.poll_expired::<S::Runtime>(machine.poll_timeout(), cx));
        machine.handle_timeout(Self::now());
        Poll::Ready(())
    }

    /// Writes what the finished machine still transmits (its last frames, the shutdown)
    /// until all of it is written or the machine's linger deadline passes, whichever comes
    /// first (the core's end-of-connection rule: see `wsflow::Event::Closed`): a peer that
    /// stopped reading cannot hold the transport. A failing stream ends the wait.
    pub(crate) fn poll_linger(&mut self, machine: &mut impl SansIo, task: Task, cx: &mut Context<'_>) -> Poll<()> {
        match self.register(task, cx) {
            Some(waker) => self.poll_linger_with(machine, &mut Context::from_waker(&waker)),
            None => self.poll_linger_with(machine, cx),
        }
    }

    fn poll_linger_with(&mut self, machine: &mut impl SansIo, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            self.outbox.pull(machine);
            match self.poll_write_outbox(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(()),
                Poll::Ready(Err(error)) => {
                    self.fail(machine, error);
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }
            if machine.poll_timeout().is_none() {
                return Poll::Ready(());
            }
            ready!(self.poll_timer(machine, cx));
        }
    }

    /// The transport failed: nothing more is read or written, and the machine learns the
    /// transport is gone (a connection then ends with `Closed`).
    fn fail(&mut self, machine: &mut impl SansIo, error: io::Error) -> io::Error {
        self.read_closed = true;
        self.outbox.fail();
        machine.handle_eof(Self::now());
        error
    }

    /// Stops the transport after `error`; returns it unless it means the peer went away.
    fn fail_unless_peer_gone(&mut self, machine: &mut impl SansIo, error: io::Error) -> io::Result<()> {
        let peer_gone = crate::is_peer_gone(&error);
        let error = self.fail(machine, error);
        if peer_gone {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// Drives the machine until `next_event` yields: writes, timer and reads, in that
    /// order, so answers the machine queued (pongs, close echoes) go out before the event
    /// is handed over. While `batched` holds, the next event is handed over before writing:
    /// the application's answers to all the messages of one read then go out in one write,
    /// made when they run out (before waiting for the transport). A peer that resets or
    /// drops the transport is reported to the machine as the end of the stream, not as an
    /// error: the machine says how that ends (e.g. `Closed` with 1006, or a clean close
    /// when the closing handshake was done). Cancel safe: all state lives in `self` and in
    /// the machine.
    pub(crate) fn poll_event<T: SansIo, E>(
        &mut self,
        machine: &mut T,
        task: Task,
        cx: &mut Context<'_>,
        mut next_event: impl FnMut(&mut T) -> Option<E>,
        batched: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<E>> {
        // The messages of a read are handed over without touching the wakers.
        if batched(machine) {
            if let Some(event) = next_event(machine) {
                return Poll::Ready(Ok(event));
            }
        }
        match self.register(task, cx) {
            Some(waker) => self.poll_event_with(machine, &mut Context::from_waker(&waker), next_event, batched),
            None => self.poll_event_with(machine, cx, next_event, batched),
        }
    }

    fn poll_event_with<T: SansIo, E>(
        &mut self,
        machine: &mut T,
        cx: &mut Context<'_>,
        mut next_event: impl FnMut(&mut T) -> Option<E>,
        batched: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<E>> {
        loop {
            if batched(machine) {
                if let Some(event) = next_event(machine) {
                    return Poll::Ready(Ok(event));
                }
            }
            self.outbox.pull(machine);
            if let Poll::Ready(Err(error)) = self.poll_write_outbox(cx) {
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

    /// Writes until at most `high_water_mark` bytes are left unwritten (everything, flush
    /// and shutdown included, for 0). Keeps the machine's timer running meanwhile, so a
    /// peer that stops reading is caught by the keepalive or close timeout; returns once
    /// the machine has `finished` even if bytes remain. Cancel safe.
    pub(crate) fn poll_drain<T: SansIo>(
        &mut self,
        machine: &mut T,
        task: Task,
        cx: &mut Context<'_>,
        high_water_mark: usize,
        finished: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<()>> {
        match self.register(task, cx) {
            Some(waker) => self.poll_drain_with(machine, &mut Context::from_waker(&waker), high_water_mark, finished),
            None => self.poll_drain_with(machine, cx, high_water_mark, finished),
        }
    }

    fn poll_drain_with<T: SansIo>(
        &mut self,
        machine: &mut T,
        cx: &mut Context<'_>,
        high_water_mark: usize,
        finished: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<()>> {
        loop {
            self.outbox.pull(machine);
            let done = match self.poll_write_outbox(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(self.fail(machine, error))),
                Poll::Pending => high_water_mark > 0 && self.outbox.queued() <= high_water_mark,
            };
            // The timer is polled even when the write is done: the command just carried
            // out may have set a new deadline (a close timeout), and a task waiting
            // elsewhere (the other half, in a read) must be woken at it: the timer is armed
            // here with the waker of every waiting task.
            if self.poll_timer(machine, cx).is_ready() {
                continue;
            }
            return if done || finished(machine) {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
    }
}
