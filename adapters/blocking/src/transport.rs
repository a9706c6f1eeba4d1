//! What the adapter needs from a blocking byte stream beyond `Read + Write`.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

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

    /// Shuts down the write side (TCP FIN, TLS `close_notify` first). The default flushes.
    ///
    /// # Errors
    /// When the stream fails.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.flush()
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

    fn shutdown_write(&mut self) -> io::Result<()> {
        ignore_not_connected(self.shutdown(Shutdown::Write))
    }

    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
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

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown_write()
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
