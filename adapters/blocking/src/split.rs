//! [`WsSender`] and [`WsReceiver`]: the two halves of a [`WebSocket`](crate::WebSocket)
//! for two threads.
//!
//! The halves share the core behind a mutex, held only for core calls, never across I/O.
//! The receiving half reads on its own handle to the stream; writes go through a second
//! mutex around the other handle. Whoever holds the write lock writes everything queued,
//! including what the other half queued meanwhile, so the receiving half never waits behind
//! a long send to deliver a pong: it leaves it to the writer in progress.

use std::io;
use std::ops::DerefMut;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use wsflow::Closed;

use crate::pump::{Inbox, Input, WriteDeadline, Written};
use crate::transport::Transport;
use crate::websocket::{receiving_methods, sending_methods, Core, Endpoint, Receiving, Sending};
use crate::Error;

/// The longest either half blocks in one read or write: deadlines the other half sets (the
/// close timeout after [`WsSender::close`], the end of the connection seen by the
/// receiving half) are noticed within this.
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Shared<S> {
    core: Mutex<Core>,
    /// The writing handle, and the write timeout set on it.
    writer: Mutex<(S, WriteDeadline)>,
}

impl<S: Transport> Shared<S> {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes everything queued. With `wait` false, returns at once if the other half is
    /// writing: it writes what we queued before it lets go of the stream.
    fn write_queued(&self, wait: bool) -> io::Result<()> {
        let mut writer = match self.writer.try_lock() {
            Ok(writer) => writer,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) if !wait => return Ok(()),
            Err(TryLockError::WouldBlock) => self.writer.lock().unwrap_or_else(PoisonError::into_inner),
        };
        loop {
            let mut core = self.core();
            let Core { conn, outbox, .. } = &mut *core;
            outbox.pull(conn);
            if outbox.is_empty() {
                // Let go of the stream while holding the core, so that anything queued
                // after this check finds the stream free.
                drop(writer);
                return Ok(());
            }
            let mut batch = std::mem::take(outbox);
            // The receiving half may end the connection meanwhile (its close timeout runs
            // out while this write waits for a peer that stopped reading): look again at
            // least every RECHECK_INTERVAL, so that this half gives up then too.
            let recheck = Instant::now() + RECHECK_INTERVAL;
            let deadline = Some(conn.poll_timeout().map_or(recheck, |deadline| deadline.min(recheck)));
            drop(core);
            let (stream, write_deadline) = &mut *writer;
            match write_deadline.write(&mut batch, stream, deadline) {
                Ok(Written::All) => {}
                Ok(Written::DeadlinePassed) => {
                    let mut core = self.core();
                    core.outbox = batch;
                    if core.run_timers() {
                        return Ok(());
                    }
                }
                Err(error) => {
                    let mut core = self.core();
                    core.outbox = batch;
                    return core.write_failed(error);
                }
            }
        }
    }
}

pub(crate) fn split<S: Transport>(
    writer: (S, WriteDeadline),
    reader: S,
    core: Core,
    inbox: Inbox,
    high_water_mark: usize,
) -> (WsSender<S>, WsReceiver<S>) {
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        writer: Mutex::new(writer),
    });
    let sender = WsSender {
        shared: shared.clone(),
        high_water_mark,
    };
    let receiver = WsReceiver {
        shared,
        stream: reader,
        inbox,
    };
    (sender, receiver)
}

/// The sending half of a split [`WebSocket`](crate::WebSocket): `Send`, for one thread.
/// Sends write through (blocking), as on the whole connection.
#[derive(Debug)]
pub struct WsSender<S> {
    shared: Arc<Shared<S>>,
    high_water_mark: usize,
}

impl<S: Transport> WsSender<S> {
    sending_methods!();

    /// Outgoing bytes queued and not yet handed to a write.
    pub fn buffered_amount(&self) -> usize {
        self.shared.core().buffered_amount()
    }

    /// The queue size past which a non-blocking send returns `WouldBlock` (inherited from
    /// the connection).
    pub fn high_water_mark(&self) -> usize {
        self.high_water_mark
    }

    /// Sets the high-water mark for non-blocking sends.
    pub fn set_high_water_mark(&mut self, bytes: usize) {
        self.high_water_mark = bytes.max(1);
    }
}

impl<S: Transport> Endpoint for WsSender<S> {
    fn core(&mut self) -> impl DerefMut<Target = Core> + '_ {
        self.shared.core()
    }

    fn write_queued(&mut self) -> Result<(), Error> {
        Ok(self.shared.write_queued(true)?)
    }
}

impl<S: Transport> Sending for WsSender<S> {
    fn high_water_mark(&self) -> usize {
        self.high_water_mark
    }

    fn batches_sends(&self) -> bool {
        false
    }
}

/// The receiving half of a split [`WebSocket`](crate::WebSocket): `Send`, for one thread.
/// It answers pings and echoes the close frame by itself, even if the sending half is idle.
#[derive(Debug)]
pub struct WsReceiver<S> {
    shared: Arc<Shared<S>>,
    stream: S,
    inbox: Inbox,
}

impl<S: Transport> WsReceiver<S> {
    receiving_methods!();

    /// How the connection ended, once [`Event::Closed`](wsflow::Event) was received.
    pub fn closed(&self) -> Option<Closed> {
        self.shared.core().closed.clone()
    }
}

impl<S: Transport> Endpoint for WsReceiver<S> {
    fn core(&mut self) -> impl DerefMut<Target = Core> + '_ {
        self.shared.core()
    }

    fn write_queued(&mut self) -> Result<(), Error> {
        Ok(self.shared.write_queued(false)?)
    }
}

impl<S: Transport> Receiving for WsReceiver<S> {
    fn read(&mut self, deadline: Option<Instant>) -> io::Result<Input> {
        self.inbox.read(&mut self.stream, deadline, Some(RECHECK_INTERVAL))
    }

    fn feed(&mut self, input: Input) {
        self.inbox.feed(&mut self.shared.core().conn, input);
    }
}
