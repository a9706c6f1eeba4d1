//! wsflow-blocking in the suite: Unix socket pairs, a thread per spawned task, the system
//! clock with short real timeouts. Every `.await` of a connection blocks its thread.

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsflow::{CloseCode, Closed, Config, Event, Message, MessageKind, Request, Response};
use wsflow_blocking::{MaybeTlsStream, Transport, WebSocket, WsReceiver, WsSender};
use wsflow_io::{Accepted, ClientBuilder, Decision, Error};

use super::{
    accept_all, serve, upgraded, Adapter, Clock, Counted, Joined, PairStream, Receiver, Sender, Serve, Served,
    WriteCounter, Ws,
};
use crate::common::within;

pub struct Blocking;

impl Adapter for Blocking {
    const NAME: &'static str = "blocking";
    type Runtime = wsflow_blocking::Blocking;
    type Stream = Counted<UnixStream>;
    type Ws = WebSocket<Counted<UnixStream>>;
    type UrlWs = WebSocket<MaybeTlsStream>;

    fn pair() -> (Self::Stream, Self::Stream) {
        let (a, b) = UnixStream::pair().unwrap();
        (Counted::new(a), Counted::new(b))
    }

    fn run(_: Clock, test: impl Future<Output = ()> + Send + 'static) {
        within(Self::NAME, move || smol::block_on(test));
    }

    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Joined<T> {
        let thread = thread::spawn(move || smol::block_on(task));
        Joined::new(async move { thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)) })
    }

    fn now() -> Instant {
        Instant::now()
    }

    async fn yield_now() {
        thread::yield_now()
    }

    async fn accept_with<F>(stream: Self::Stream, config: Arc<Config>, hook: F) -> Result<Accepted<Self::Ws>, Error>
    where
        F: FnOnce(&Request) -> Decision + Send + 'static,
    {
        wsflow_blocking::accept_with(stream, config, hook)
    }

    async fn connect_on(
        builder: ClientBuilder<Self::Runtime>,
        stream: Self::Stream,
    ) -> Result<(Self::Ws, Response), Error> {
        builder.connect_on(stream)
    }

    async fn connect(builder: ClientBuilder<Self::Runtime>) -> Result<(Self::UrlWs, Response), Error> {
        builder.connect()
    }

    fn is_tls(websocket: &Self::UrlWs) -> bool {
        matches!(websocket.get_ref(), MaybeTlsStream::Rustls(_))
    }

    fn tcp_server(tls: Option<Arc<rustls::ServerConfig>>, config: Arc<Config>, how: Serve) -> (u16, Joined<Served>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = Self::spawn(async move {
            let (tcp, _) = listener.accept().unwrap();
            match tls {
                Some(tls) => {
                    let tls = wsflow_blocking::tls_accept(tcp, tls).unwrap();
                    serve::<Self, _>(upgraded(wsflow_blocking::accept_with(tls, config, accept_all)), how).await
                }
                None => serve::<Self, _>(upgraded(wsflow_blocking::accept_with(tcp, config, accept_all)), how).await,
            }
        });
        (port, server)
    }
}

impl PairStream for Counted<UnixStream> {
    async fn write_all(&mut self, bytes: &[u8]) {
        self.inner.write_all(bytes).unwrap()
    }

    async fn read(&mut self, buf: &mut [u8]) -> usize {
        self.inner.read(buf).unwrap()
    }

    async fn shutdown_write(&mut self) {
        self.inner.shutdown(std::net::Shutdown::Write).unwrap()
    }

    fn write_counter(&self) -> WriteCounter {
        self.counter()
    }
}

impl Read for Counted<UnixStream> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Counted<UnixStream> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count_write();
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.count_write();
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for Counted<UnixStream> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Transport::set_read_timeout(&self.inner, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Transport::set_write_timeout(&self.inner, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    fn try_clone(&self) -> io::Result<Self> {
        Ok(Self::with_counter_of(Transport::try_clone(&self.inner)?, self))
    }
}

/// How [`Ws::try_send`] makes a send return instead of blocking.
pub trait NonBlocking {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
}

impl NonBlocking for Counted<UnixStream> {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }
}

impl NonBlocking for TcpStream {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }
}

impl NonBlocking for wsflow_blocking::TlsServerStream {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }
}

impl NonBlocking for MaybeTlsStream {
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(nonblocking)
    }
}

macro_rules! blocking_sender {
    ($ty:ident) => {
        impl<S: Transport + Send + 'static> Sender for $ty<S> {
            async fn send(&mut self, message: Message) -> Result<(), Error> {
                $ty::send(self, message)
            }

            async fn send_text(&mut self, text: &str) -> Result<(), Error> {
                $ty::send_text(self, text.to_owned())
            }

            async fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
                $ty::ping(self, payload)
            }

            async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
                $ty::close(self, code, reason)
            }

            async fn flush(&mut self) -> Result<(), Error> {
                $ty::flush(self)
            }
        }
    };
}

blocking_sender!(WebSocket);
blocking_sender!(WsSender);

impl<S: Transport + Send + 'static> Receiver for WebSocket<S> {
    async fn recv(&mut self) -> Result<Option<Event>, Error> {
        WebSocket::recv(self)
    }

    async fn recv_message(&mut self) -> Result<Option<Message>, Error> {
        WebSocket::recv_message(self)
    }

    fn closed(&self) -> Option<Closed> {
        WebSocket::closed(self).cloned()
    }
}

impl<S: Transport + Send + 'static> Receiver for WsReceiver<S> {
    async fn recv(&mut self) -> Result<Option<Event>, Error> {
        WsReceiver::recv(self)
    }

    async fn recv_message(&mut self) -> Result<Option<Message>, Error> {
        WsReceiver::recv_message(self)
    }

    fn closed(&self) -> Option<Closed> {
        WsReceiver::closed(self)
    }
}

impl<S: Transport + NonBlocking + Send + 'static> Ws for WebSocket<S> {
    type Tx = WsSender<S>;
    type Rx = WsReceiver<S>;

    async fn send_text_copied(&mut self, text: &str) -> Result<(), Error> {
        WebSocket::send_text_copied(self, text)
    }

    async fn send_binary_copied(&mut self, data: &[u8]) -> Result<(), Error> {
        WebSocket::send_binary_copied(self, data)
    }

    async fn send_fragment(&mut self, kind: MessageKind, data: Bytes, fin: bool) -> Result<(), Error> {
        WebSocket::send_fragment(self, kind, data, fin)
    }

    /// A send on the stream made non-blocking: `WouldBlock` past the high-water mark
    /// means it would wait (the message is queued all the same).
    fn try_send(&mut self, message: Message) -> Option<Result<(), Error>> {
        self.get_ref().set_nonblocking(true).unwrap();
        let sent = WebSocket::send(self, message);
        self.get_ref().set_nonblocking(false).unwrap();
        match sent {
            Err(Error::Transport(error)) if error.kind() == io::ErrorKind::WouldBlock => None,
            other => Some(other),
        }
    }

    fn buffered_amount(&self) -> usize {
        WebSocket::buffered_amount(self)
    }

    fn set_high_water_mark(&mut self, bytes: usize) {
        WebSocket::set_high_water_mark(self, bytes);
    }

    /// Over a Unix socket, which has a second handle (a TLS stream has none: it fails).
    fn split(self) -> (Self::Tx, Self::Rx) {
        WebSocket::split(self).unwrap()
    }
}
