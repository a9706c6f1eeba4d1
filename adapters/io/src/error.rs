//! [`Error`]: everything that can go wrong when driving the core over a transport.

use std::fmt;
use std::io;

use wsflow::{HandshakeError, ProxyError, Response, SendError, UrlError};

/// Everything that can go wrong when driving the core over an `std::io` transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Transport(io::Error),
    /// The URL is not a WebSocket URL.
    Url(UrlError),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The server answered the upgrade with another status (401, 403, ...), body included.
    Rejected(Box<Response>),
    /// A command the connection could not carry out (e.g. sending after close).
    Send(SendError),
    /// The connection is closed.
    Closed,
    /// The proxy could not open a tunnel to the server (an unreachable proxy is a
    /// [`Transport`](Self::Transport) error that names the proxy).
    Proxy(ProxyError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(error) => write!(f, "transport error: {error}"),
            Self::Url(error) => error.fmt(f),
            Self::Handshake(error) => write!(f, "handshake failed: {error}"),
            Self::Rejected(response) => {
                write!(
                    f,
                    "server rejected the upgrade: {} {}",
                    response.status(),
                    response.reason()
                )
            }
            Self::Send(error) => error.fmt(f),
            Self::Closed => f.write_str("the connection is closed"),
            Self::Proxy(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(error) => Some(error),
            Self::Url(error) => Some(error),
            Self::Handshake(error) => Some(error),
            Self::Send(error) => Some(error),
            Self::Proxy(error) => Some(error),
            Self::Rejected(_) | Self::Closed => None,
        }
    }
}

impl From<UrlError> for Error {
    fn from(error: UrlError) -> Self {
        Self::Url(error)
    }
}

impl From<HandshakeError> for Error {
    fn from(error: HandshakeError) -> Self {
        Self::Handshake(error)
    }
}

impl From<ProxyError> for Error {
    fn from(error: ProxyError) -> Self {
        Self::Proxy(error)
    }
}

impl From<SendError> for Error {
    fn from(error: SendError) -> Self {
        Self::Send(error)
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Self::Transport(error)
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        use io::ErrorKind;
        let error = match error {
            Error::Transport(error) => return error,
            other => other,
        };
        let kind = match &error {
            Error::Transport(_) => ErrorKind::Other,
            Error::Url(_) => ErrorKind::InvalidInput,
            Error::Handshake(HandshakeError::TimedOut) => ErrorKind::TimedOut,
            Error::Handshake(HandshakeError::UnexpectedEof) => ErrorKind::UnexpectedEof,
            Error::Handshake(_) | Error::Rejected(_) => ErrorKind::ConnectionRefused,
            Error::Send(_) => ErrorKind::InvalidInput,
            Error::Closed => ErrorKind::NotConnected,
            Error::Proxy(ProxyError::TimedOut) => ErrorKind::TimedOut,
            Error::Proxy(ProxyError::UnexpectedEof) => ErrorKind::UnexpectedEof,
            Error::Proxy(ProxyError::InvalidUrl(_) | ProxyError::InvalidTarget(_)) => ErrorKind::InvalidInput,
            Error::Proxy(_) => ErrorKind::ConnectionRefused,
        };
        io::Error::new(kind, error)
    }
}

/// Whether a transport's `io::Error` means the peer is gone, to be fed to the core as the
/// end of the stream (`handle_eof`) rather than surfaced: a reset or aborted connection, a
/// broken pipe, or an unexpected EOF (e.g. a TLS stream cut without `close_notify`).
///
/// ```
/// use std::io::{Error, ErrorKind};
/// assert!(wsflow_io::is_peer_gone(&Error::from(ErrorKind::ConnectionReset)));
/// assert!(!wsflow_io::is_peer_gone(&Error::from(ErrorKind::PermissionDenied)));
/// ```
pub fn is_peer_gone(error: &io::Error) -> bool {
    use io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
    )
}
