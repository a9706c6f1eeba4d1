//! Observability (feature `tracing`): a [`tracing`](https://docs.rs/tracing) span per
//! connection and events for how it opened and how it ended, for every adapter
//! (`wsflow-tokio`, `wsflow-smol`, `wsflow-blocking`, `wsflow-axum` forward the feature).
//! Without the feature this module is inert: [`ConnectionSpan`] is zero-sized and every
//! function compiles to nothing.
//!
//! **The span** `websocket` (level DEBUG), one per connection, created when the handshake
//! starts (for [`WebSocket::from_upgraded`](crate::WebSocket::from_upgraded): when the
//! stream is adopted), child of the span current then. Fields: `role` (`"server"` or
//! `"client"`) and `peer` where the adapter knows it: a client's `host:port` (from the URL),
//! the peer address of a `wsflow-blocking` server over TCP. An async server's stream is
//! any `AsyncStream`: enter a span of your own that names the peer around `accept` (the
//! connection's span is its child), as in the example below.
//!
//! **The events**, all in that span (target `wsflow_io::trace`):
//!
//! | message | level | fields |
//! | --- | --- | --- |
//! | `handshake accepted` | DEBUG | `status` (101), `subprotocol`, `extensions` (the agreed permessage-deflate parameters, see [`Connection::extensions`](wsflow::Connection::extensions)) |
//! | `handshake rejected` | DEBUG | `status`: a server answered with another response (the hook's, or `426` for plain HTTP); a client got another status |
//! | `handshake failed` | DEBUG | `error`: a malformed request or response, the handshake timeout |
//! | `upgrade failed` | WARN | `status` (500), `error`: the server's own decision could not be carried out (a subprotocol the client did not offer, an invalid header) |
//! | `connection closed` | DEBUG | `code` (as [`Closed::code`]), `sent` (the code of our close frame, if any), `reason` (the peer's, or ours when it gave none), `clean`, `cause` (`"clean"`, `"protocol error"` with `error`, `"timeout"` with `timer` = `"keepalive"`, `"close"` or `"message"`, `"eof"`) |
//!
//! **Levels.** Everything a peer causes is DEBUG, abnormal closes, protocol errors and
//! timeouts included: a server facing the internet meets broken and hostile peers all
//! day, and one WARN per bad peer would let anyone fill its logs (and cost it the
//! formatting). Only an error of the server's own making (`upgrade failed`) is a WARN.
//! Nothing is logged per message: for frame logs, see
//! [`Config::frame_observer`](wsflow::Config::frame_observer). Turn the events on with a
//! filter such as `wsflow_io=debug`.
//!
//! ```
//! # #[cfg(feature = "tracing")] {
//! # async fn serve<S: wsflow_io::AsyncStream>(stream: S, peer: std::net::SocketAddr) -> Result<(), wsflow_io::Error> {
//! use tracing::Instrument;
//!
//! // An async server: the connection's span (role = "server") nests in one naming the peer,
//! // and so do its events ("handshake accepted", ..., "connection closed").
//! let span = tracing::info_span!("client", %peer);
//! async {
//!     let mut websocket = wsflow_io::accept(stream).await?;
//!     while let Some(message) = websocket.recv_message().await? {
//!         websocket.send(message).await?;
//!     }
//!     Ok(())
//! }
//! .instrument(span)
//! .await
//! # }
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;

use wsflow::{Closed, Connection, HandshakeError, Role};

#[cfg(feature = "tracing")]
use wsflow::{CloseReason, Timeout};

/// The span of one connection (see the [module](self)); zero-sized without the feature.
/// Adapters create it when the handshake starts and keep it with the connection.
#[derive(Clone, Debug)]
pub struct ConnectionSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl ConnectionSpan {
    /// The span of a connection in `role`, with the peer's address if known.
    #[inline]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub fn new(role: Role, peer: Option<&dyn std::fmt::Display>) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!(
                "websocket",
                role = match role {
                    Role::Server => "server",
                    Role::Client => "client",
                },
                peer = peer.map(tracing::field::display)
            ),
        }
    }

    /// The span of a server connection, with the peer's address if known.
    pub fn server(peer: Option<SocketAddr>) -> Self {
        Self::new(Role::Server, peer.as_ref().map(|peer| peer as _))
    }

    /// The span of a client connection to `host` and `port` (the URL's; `None` for a bad URL).
    pub fn client(target: Option<(&str, u16)>) -> Self {
        struct HostPort<'a>(&'a str, u16);
        impl std::fmt::Display for HostPort<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}:{}", self.0, self.1)
            }
        }
        let target = target.map(|(host, port)| HostPort(host, port));
        Self::new(Role::Client, target.as_ref().map(|target| target as _))
    }

    /// Runs `f` in the span: the events of the handshake functions it calls
    /// ([`decide`](crate::decide), [`request_of`](crate::request_of),
    /// [`response_of`](crate::response_of), [`accepted`]) are recorded in it.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        return self.span.in_scope(f);
        #[cfg(not(feature = "tracing"))]
        f()
    }

    /// Runs `future` in the span (each poll).
    pub(crate) fn instrument<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        return tracing::Instrument::instrument(future, self.span);
        #[cfg(not(feature = "tracing"))]
        future
    }

    /// Records how the connection ended: call where the core's [`Event::Closed`](wsflow::Event::Closed)
    /// is observed (the async driver's `recv`; `wsflow-blocking`'s own loop).
    #[inline]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub fn closed(&self, closed: &Closed) {
        #[cfg(feature = "tracing")]
        {
            let (cause, error, timer) = match &closed.reason {
                CloseReason::Clean => ("clean", None, None),
                CloseReason::Failed(error) => ("protocol error", Some(error), None),
                CloseReason::TimedOut(timer) => ("timeout", None, Some(timer_name(*timer))),
                CloseReason::Eof => ("eof", None, None),
                _ => ("other", None, None),
            };
            // The peer's reason, or ours when it gave none (as in an echo of our close).
            let reasons = [&closed.received, &closed.sent].into_iter().flatten();
            let reason = reasons
                .map(|frame| frame.reason.as_str())
                .find(|reason| !reason.is_empty());
            tracing::debug!(
                parent: &self.span,
                code = u16::from(closed.code()),
                sent = closed.sent.as_ref().map(|frame| u16::from(frame.code)),
                reason,
                clean = closed.is_clean(),
                cause,
                error = error.map(tracing::field::display),
                timer,
                "connection closed"
            );
        }
    }
}

#[cfg(feature = "tracing")]
fn timer_name(timer: Timeout) -> &'static str {
    match timer {
        Timeout::Keepalive => "keepalive",
        Timeout::Close => "close",
        Timeout::Message => "message",
        _ => "other",
    }
}

/// Records an accepted handshake (101) in the current span: the subprotocol and the
/// extensions `connection` was opened with. Servers record it in [`decide`](crate::decide);
/// clients call it once the connection is open.
#[inline]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub fn accepted(subprotocol: Option<&str>, connection: &Connection) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        status = 101_u16,
        subprotocol,
        extensions = connection.extensions(),
        "handshake accepted"
    );
}

/// The subprotocol `accept` selects, kept for [`accepted`] (which consumes it): `None`
/// unless the event is enabled.
#[inline]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn subprotocol(accept: &wsflow::Accept) -> Option<String> {
    #[cfg(feature = "tracing")]
    if tracing::enabled!(tracing::Level::DEBUG) {
        return accept.selected_subprotocol().map(str::to_owned);
    }
    None
}

/// A handshake answered with, or answered by, another `status`.
#[inline]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn rejected(status: u16) {
    #[cfg(feature = "tracing")]
    tracing::debug!(status, "handshake rejected");
}

/// A malformed request or response, or the handshake timeout.
#[inline]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn failed(error: &HandshakeError) {
    #[cfg(feature = "tracing")]
    tracing::debug!(%error, "handshake failed");
}

/// The server's decision could not be carried out: the client got a 500.
#[inline]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn upgrade_failed(error: &wsflow::SendError) {
    #[cfg(feature = "tracing")]
    tracing::warn!(status = 500_u16, %error, "upgrade failed");
}
