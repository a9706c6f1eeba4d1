//! The two halves of a [`WebSocket`], for reading and writing from different tasks.
//!
//! Both halves share the socket behind a `std` mutex that is held only while one `poll`
//! step runs (never across an `.await`). The stream keeps a single waker per direction,
//! and both halves may wait on its write direction (the receiving half writes pongs and
//! close echoes), so the stream is always polled with one shared waker that wakes every
//! half waiting at the time.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::future::poll_fn;
use wsflow::{Closed, Connection, Event, Message, SendError};

use crate::websocket::{command_methods, WebSocket};
use crate::Error;

pub(crate) fn split<S>(mut socket: WebSocket<S>) -> (WsSender<S>, WsReceiver<S>) {
    // The receiving task may be busy elsewhere while events wait: sends write at once.
    socket.batch_sends = false;
    let wakers = Arc::new(HalfWakers::default());
    let shared = Arc::new(Shared {
        socket: Mutex::new(socket),
        waker: Waker::from(wakers.clone()),
        wakers,
    });
    (WsSender { shared: shared.clone() }, WsReceiver { shared })
}

#[derive(Clone, Copy)]
enum Half {
    Sender = 0,
    Receiver = 1,
}

/// The wakers of the halves currently waiting; waking it wakes them all.
#[derive(Debug, Default)]
struct HalfWakers {
    waiting: Mutex<[Option<Waker>; 2]>,
}

impl HalfWakers {
    fn register(&self, half: Half, waker: &Waker) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut waiting[half as usize];
        if !slot.as_ref().is_some_and(|old| old.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

impl Wake for HalfWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        waiting.into_iter().flatten().for_each(Waker::wake);
    }
}

#[derive(Debug)]
struct Shared<S> {
    socket: Mutex<WebSocket<S>>,
    wakers: Arc<HalfWakers>,
    /// Wakes `wakers`: the waker the stream and the timer see.
    waker: Waker,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, WebSocket<S>> {
        self.socket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one poll step of `half` on the socket.
    fn poll<T>(
        &self,
        half: Half,
        cx: &mut Context<'_>,
        step: impl FnOnce(&mut WebSocket<S>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // Register before polling, so that a wake-up in between is not lost.
        self.wakers.register(half, cx.waker());
        step(&mut self.lock(), &mut Context::from_waker(&self.waker))
    }
}

/// The sending half of a [`WebSocket`] (see [`WebSocket::split`]).
///
/// Implements [`futures_sink::Sink`] of messages.
#[derive(Debug)]
pub struct WsSender<S> {
    shared: Arc<Shared<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsSender<S> {
    command_methods!(&self);

    async fn command(&self, command: impl FnOnce(&mut Connection) -> Result<(), SendError>) -> Result<(), Error> {
        command(self.shared.lock().connection_mut())?;
        poll_fn(|cx| self.shared.poll(Half::Sender, cx, WebSocket::poll_write_below_mark)).await
    }

    /// Writes everything queued to the stream and flushes it.
    ///
    /// Cancel safe: what was not written stays queued.
    ///
    /// # Errors
    /// [`Error::Transport`] when the stream fails.
    pub async fn flush(&self) -> Result<(), Error> {
        poll_fn(|cx| self.shared.poll(Half::Sender, cx, WebSocket::poll_flush_queue)).await
    }

    /// Outgoing bytes queued and not yet written to the stream.
    pub fn buffered_amount(&self) -> usize {
        self.shared.lock().buffered_amount()
    }
}

/// The receiving half of a [`WebSocket`] (see [`WebSocket::split`]). It also writes what
/// the connection queues by itself (pongs, close echoes, keepalive pings) and runs the
/// timers, so keep it reading.
///
/// Implements [`futures_core::Stream`] of messages.
#[derive(Debug)]
pub struct WsReceiver<S> {
    shared: Arc<Shared<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsReceiver<S> {
    /// The next event, as [`WebSocket::recv`].
    ///
    /// Cancel safe: dropping the future loses nothing.
    ///
    /// # Errors
    /// As [`WebSocket::recv`].
    pub async fn recv(&mut self) -> Result<Option<Event>, Error> {
        poll_fn(|cx| self.shared.poll(Half::Receiver, cx, WebSocket::poll_recv)).await
    }

    /// The next complete message, as [`WebSocket::recv_message`].
    ///
    /// Cancel safe: dropping the future loses nothing.
    ///
    /// # Errors
    /// As [`WebSocket::recv`].
    pub async fn recv_message(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| self.shared.poll(Half::Receiver, cx, WebSocket::poll_recv_message)).await
    }

    /// How the connection ended, once [`Event::Closed`] was returned.
    pub fn closed(&self) -> Option<Closed> {
        self.shared.lock().closed().cloned()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for WsReceiver<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared
            .poll(Half::Receiver, cx, WebSocket::poll_recv_message)
            .map(Result::transpose)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_sink::Sink<Message> for WsSender<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.poll(Half::Sender, cx, WebSocket::poll_write_below_mark)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.shared.lock().start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.poll(Half::Sender, cx, WebSocket::poll_flush_queue)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared.poll(Half::Sender, cx, WebSocket::poll_close_sink)
    }
}
