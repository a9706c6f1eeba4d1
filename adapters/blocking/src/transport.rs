//! What the adapter needs from a blocking byte stream beyond `Read + Write`.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A blocking byte stream the adapter can drive: `Read + Write`, plus a read timeout (how
/// the core's timers fire), a half-close (how [`Transmit::Shutdown`](wsflow::Transmit) is
/// carried out) and, for [`WebSocket::split`](crate::WebSocket::split), a second handle.
///
/// Implemented for [`TcpStream`], `UnixStream`, [`MaybeTlsStream`] and (feature `rustls`)
/// `rustls::StreamOwned<_, TcpStream>`. For another stream, implement it yourself; a
/// stream without read timeouts may return `Ok(())` from
/// [`set_read_timeout`](Self::set_read_timeout), but then keepalive, close and handshake
/// timeouts only fire when data arrives.
pub trait Transport: Read + Write {
    /// Makes the next reads give up with `WouldBlock` or `TimedOut` after `timeout`
    /// (`None`: wait forever). Never called with a zero duration.
    ///
    /// # Errors
    /// When the stream cannot set the timeout.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Makes the next writes give up with `WouldBlock` or `TimedOut` after `timeout`
    /// (`None`: wait forever): how a write to a peer that stops reading is bounded by the
    /// core's timers (the close timeout, keepalive). Never called with a zero duration. The
    /// default does nothing: writes to such a peer then wait for it.
    ///
    /// # Errors
    /// When the stream cannot set the timeout.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// The stream as a writer whose every wait for the peer ends by `deadline` (the core's
    /// next timer): a write gives up with `ErrorKind::TimedOut` once it passes. The default
    /// sets the write timeout ([`set_write_timeout`](Self::set_write_timeout)) to the time
    /// left before each write. A stream that buffers and loops over its socket (TLS) must
    /// bound each write to the socket underneath instead, as the rustls streams here do.
    fn writer_until(&mut self, deadline: Instant) -> impl Write + '_
    where
        Self: Sized,
    {
        Until::new(self, deadline)
    }

    /// Shuts down the write side (TCP FIN, TLS `close_notify` first). The default flushes.
    ///
    /// # Errors
    /// When the stream fails.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// The peer's address, for the connection's span (feature `tracing`); the default
    /// knows none.
    fn peer_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// A second handle to the same stream, for [`WebSocket::split`](crate::WebSocket::split)
    /// (one half reads while the other writes). The default refuses with
    /// `ErrorKind::Unsupported`, as TLS streams do.
    ///
    /// # Errors
    /// When the stream cannot be cloned.
    fn try_clone(&self) -> io::Result<Self>
    where
        Self: Sized,
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this stream cannot be split into two handles (split needs a plain TCP or Unix stream)",
        ))
    }
}

/// A writer over a [`Transport`] whose every write gives up with `TimedOut` once a deadline
/// has passed (the default [`Transport::writer_until`]).
#[derive(Debug)]
pub(crate) struct Until<'a, T> {
    inner: &'a mut T,
    deadline: Instant,
}

impl<'a, T: Transport> Until<'a, T> {
    /// `inner`, writing until `deadline`.
    pub(crate) fn new(inner: &'a mut T, deadline: Instant) -> Self {
        Self { inner, deadline }
    }

    /// Writes with the write timeout set to the time left. A blocking write that gives up
    /// at that timeout (`WouldBlock` after waiting it out) becomes `TimedOut`; a
    /// non-blocking stream's `WouldBlock` (at once) stays as it is.
    fn bounded<R>(&mut self, write: impl FnOnce(&mut T) -> io::Result<R>) -> io::Result<R> {
        let started = Instant::now();
        let left = self.deadline.saturating_duration_since(started);
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.inner.set_write_timeout(Some(left))?;
        match write(self.inner) {
            Err(error)
                if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
                    && started.elapsed() + TIMEOUT_SLACK >= left =>
            {
                Err(io::ErrorKind::TimedOut.into())
            }
            other => other,
        }
    }
}

/// A read or write that gave up at least this close to its timeout timed out (kernels never
/// wake early); one that gave up sooner hit a non-blocking socket.
pub(crate) const TIMEOUT_SLACK: Duration = Duration::from_millis(2);

/// rustls reads through the socket only while handshaking, never in a write after it.
impl<T: Transport> Read for Until<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<T: Transport> Write for Until<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bounded(|inner| inner.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.bounded(|inner| inner.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.bounded(|inner| inner.flush())
    }
}

/// A rustls connection writing through a socket bounded by a deadline: every socket write
/// in rustls's loops gives up once it has passed.
#[cfg(feature = "rustls")]
struct TlsUntil<'a, C> {
    conn: &'a mut C,
    sock: Until<'a, TcpStream>,
}

#[cfg(feature = "rustls")]
impl<C, D> Write for TlsUntil<'_, C>
where
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        rustls::Stream::new(self.conn, &mut self.sock).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        rustls::Stream::new(self.conn, &mut self.sock).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        rustls::Stream::new(self.conn, &mut self.sock).flush()
    }
}

/// `NotConnected` after a shutdown just means the peer went first.
fn ignore_not_connected(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        ignore_not_connected(self.shutdown(Shutdown::Write))
    }

    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        TcpStream::peer_addr(self).ok()
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        ignore_not_connected(self.shutdown(Shutdown::Write))
    }

    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }
}

#[cfg(feature = "rustls")]
impl<C, D> Transport for rustls::StreamOwned<C, TcpStream>
where
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }

    fn writer_until(&mut self, deadline: Instant) -> impl Write + '_ {
        let rustls::StreamOwned { conn, sock } = self;
        TlsUntil {
            conn,
            sock: Until::new(sock, deadline),
        }
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown_write()
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.sock.peer_addr().ok()
    }
}

/// The stream [`connect`](crate::connect) opens: plain TCP for `ws://`, TLS for `wss://`
/// (feature `rustls`).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection.
    #[cfg(feature = "rustls")]
    Rustls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath (e.g. for `set_nonblocking` or `peer_addr`).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(stream) => stream,
            #[cfg(feature = "rustls")]
            Self::Rustls(stream) => &stream.sock,
        }
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.read(buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(stream) => stream.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.write(buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(stream) => stream.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            Self::Rustls(stream) => {
                let rustls::StreamOwned { conn, sock } = &mut **stream;
                rustls::Stream::new(conn, sock).write_vectored(bufs)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(stream) => stream.flush(),
            #[cfg(feature = "rustls")]
            Self::Rustls(stream) => stream.flush(),
        }
    }
}

impl Transport for MaybeTlsStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    #[cfg(feature = "rustls")]
    fn writer_until(&mut self, deadline: Instant) -> impl Write + '_ {
        match self {
            Self::Plain(stream) => MaybeTlsUntil::Plain(Until::new(stream, deadline)),
            Self::Rustls(stream) => MaybeTlsUntil::Rustls(stream.writer_until(deadline)),
        }
    }

    #[cfg(not(feature = "rustls"))]
    fn writer_until(&mut self, deadline: Instant) -> impl Write + '_ {
        let Self::Plain(stream) = self;
        Until::new(stream, deadline)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.tcp().peer_addr().ok()
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(stream) => stream.shutdown_write(),
            #[cfg(feature = "rustls")]
            Self::Rustls(stream) => stream.shutdown_write(),
        }
    }

    /// Plain TCP only: TLS state cannot be shared between two handles.
    fn try_clone(&self) -> io::Result<Self> {
        match self {
            Self::Plain(stream) => stream.try_clone().map(Self::Plain),
            #[cfg(feature = "rustls")]
            Self::Rustls(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a TLS stream cannot be split into two halves; use one thread with WebSocket, or plain TCP",
            )),
        }
    }
}

/// [`MaybeTlsStream::writer_until`]: the writer of either kind of stream.
#[cfg(feature = "rustls")]
enum MaybeTlsUntil<P, T> {
    Plain(P),
    Rustls(T),
}

#[cfg(feature = "rustls")]
impl<P: Write, T: Write> Write for MaybeTlsUntil<P, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(writer) => writer.write(buf),
            Self::Rustls(writer) => writer.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(writer) => writer.write_vectored(bufs),
            Self::Rustls(writer) => writer.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(writer) => writer.flush(),
            Self::Rustls(writer) => writer.flush(),
        }
    }
}
