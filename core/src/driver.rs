//! What every I/O adapter needs from the core, written once: one trait over the three
//! state machines, the server's decision, and an error type generic over the transport's.

use std::fmt;
use std::time::Instant;

use crate::connection::Connection;
use crate::error::{HandshakeError, SendError};
use crate::event::Transmit;
use crate::handshake::{Accept, ClientHandshake, Response, ServerHandshake, UrlError};

/// The I/O-facing surface shared by [`Connection`], [`ServerHandshake`] and
/// [`ClientHandshake`], so an adapter writes one loop that drives any of them: feed reads,
/// write transmits, arm a timer.
pub trait SansIo {
    /// Feeds bytes read from the transport.
    fn handle_data(&mut self, now: Instant, data: &[u8]);
    /// Reports that the peer closed the transport.
    fn handle_eof(&mut self, now: Instant);
    /// Reports that the deadline from [`poll_timeout`](Self::poll_timeout) has come.
    fn handle_timeout(&mut self, now: Instant);
    /// The next bytes to write.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When to call [`handle_timeout`](Self::handle_timeout).
    fn poll_timeout(&self) -> Option<Instant>;
}

macro_rules! impl_sans_io {
    ($($ty:ty),*) => {$(
        impl SansIo for $ty {
            fn handle_data(&mut self, now: Instant, data: &[u8]) {
                <$ty>::handle_data(self, now, data)
            }
            fn handle_eof(&mut self, now: Instant) {
                <$ty>::handle_eof(self, now)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<Transmit> {
                <$ty>::poll_transmit(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
        }
    )*};
}

impl_sans_io!(Connection, ServerHandshake, ClientHandshake);

/// A server's answer to a [`Request`](crate::Request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Upgrade to WebSocket.
    Accept(Accept),
    /// Answer with an HTTP response and close (a rejection, or a page for plain HTTP).
    Respond(Response),
}

impl ServerHandshake {
    /// Carries out `decision`: `Some(connection)` when accepted, `None` when answered
    /// with a response (drain [`poll_transmit`](Self::poll_transmit), then close).
    ///
    /// Accepting a plain HTTP request answers it with 426 Upgrade Required. When the
    /// decision cannot be carried out (say, a subprotocol the client did not offer), the
    /// client gets a 500 response and the error is returned.
    ///
    /// # Errors
    /// As [`accept`](Self::accept) and [`respond`](Self::respond).
    pub fn decide(&mut self, now: Instant, decision: Decision) -> Result<Option<Connection>, SendError> {
        let result = match decision {
            Decision::Accept(_) if self.pending_request_is_plain_http() => {
                let upgrade_required = Response::new(426)
                    .with_header("Upgrade", "websocket")
                    .with_header("Sec-WebSocket-Version", "13")
                    .with_body("this endpoint speaks WebSocket\n");
                self.respond(&upgrade_required).map(|()| None)
            }
            Decision::Accept(accept) => self.accept(now, accept).map(Some),
            Decision::Respond(response) => self.respond(&response).map(|()| None),
        };
        if let Err(SendError::SubprotocolNotOffered(_) | SendError::InvalidHeader(_)) = &result {
            let _ = self.respond(&Response::new(500).with_body("the server could not complete the upgrade\n"));
        }
        result
    }
}

/// Everything that can go wrong when driving the core over a transport whose errors are `T`
/// (`std::io::Error` for the adapters in this repository).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<T> {
    /// The transport failed.
    Transport(T),
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
}

impl<T: fmt::Display> fmt::Display for Error<T> {
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
        }
    }
}

impl<T: std::error::Error + 'static> std::error::Error for Error<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(error) => Some(error),
            Self::Url(error) => Some(error),
            Self::Handshake(error) => Some(error),
            Self::Send(error) => Some(error),
            Self::Rejected(_) | Self::Closed => None,
        }
    }
}

impl<T> From<UrlError> for Error<T> {
    fn from(error: UrlError) -> Self {
        Self::Url(error)
    }
}

impl<T> From<HandshakeError> for Error<T> {
    fn from(error: HandshakeError) -> Self {
        Self::Handshake(error)
    }
}

impl<T> From<SendError> for Error<T> {
    fn from(error: SendError) -> Self {
        Self::Send(error)
    }
}

impl From<std::io::Error> for Error<std::io::Error> {
    fn from(error: std::io::Error) -> Self {
        Self::Transport(error)
    }
}

/// Whether a transport read error means the peer is gone, to be fed to the core as
/// end of stream (`handle_eof`) rather than surfaced: a reset or aborted connection, a
/// broken pipe, or an unexpected EOF (e.g. a TLS stream cut without `close_notify`).
pub fn is_peer_gone(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
    )
}

impl From<Error<std::io::Error>> for std::io::Error {
    fn from(error: Error<std::io::Error>) -> Self {
        use std::io::ErrorKind;
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
        };
        std::io::Error::new(kind, error)
    }
}
