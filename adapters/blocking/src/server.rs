//! The server side: [`accept`] and [`accept_with`].

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use wsflow::{Accept, Config, HandshakeError, Request, ServerHandshake};
use wsflow_io::trace::ConnectionSpan;
use wsflow_io::{decide, request_of, Decision, Outbox};

use crate::pump::{drive_handshake, write_outbox, Inbox};
use crate::transport::Transport;
use crate::{Error, WebSocket};

/// [`Config::default`], shared: a connection keeps its configuration for its whole life,
/// and one allocated per connection would be about 230 bytes of every idle connection.
static DEFAULT_CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| Arc::new(Config::default()));

/// What [`accept_with`] did with a request.
pub type Accepted<S> = wsflow_io::Accepted<WebSocket<S>>;

/// Accepts any WebSocket upgrade on `stream` with the default configuration, without a
/// subprotocol. A plain HTTP request is answered with 426 Upgrade Required.
///
/// # Errors
/// As [`accept_with`]; [`Error::Handshake`] for a plain request.
pub fn accept<S: Transport>(stream: S) -> Result<WebSocket<S>, Error> {
    match accept_with(stream, DEFAULT_CONFIG.clone(), |_| Decision::Accept(Accept::new()))? {
        Accepted::WebSocket(websocket, _) => Ok(websocket),
        Accepted::Responded(_) => Err(Error::Handshake(HandshakeError::BadHeader("Upgrade: websocket"))),
    }
}

/// Reads a request on `stream` (within [`Config::handshake_timeout`]) and lets `hook`
/// decide: accept (with a subprotocol, extra headers) or answer with an HTTP response.
///
/// ```no_run
/// use wsflow_blocking::{accept_with, Accept, Accepted, Decision, Response};
/// let listener = std::net::TcpListener::bind("127.0.0.1:9002")?;
/// let (stream, _) = listener.accept()?;
/// let accepted = accept_with(stream, Default::default(), |request| match request.path() {
///     "/chat" if request.is_websocket() => Decision::Accept(Accept::new().subprotocol("chat")),
///     _ => Decision::Respond(Response::new(404).with_body("not found")),
/// })?;
/// if let Accepted::WebSocket(mut ws, _request) = accepted {
///     ws.send_text("welcome")?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Transport errors; [`Error::Handshake`] for a malformed request
/// (answered with the matching HTTP error), a timeout or an early EOF;
/// [`Error::Send`] when the hook's decision is invalid (e.g. a
/// subprotocol the client did not offer), after answering 500.
pub fn accept_with<S: Transport>(
    mut stream: S,
    config: Arc<Config>,
    hook: impl FnOnce(&Request) -> Decision,
) -> Result<Accepted<S>, Error> {
    let span = ConnectionSpan::server(stream.peer_addr());
    let mut handshake = ServerHandshake::new(config, Instant::now());
    let mut inbox = Inbox::new();
    let event = drive_handshake(&mut handshake, &mut stream, &mut inbox, ServerHandshake::poll_event)?;
    let request = span.in_scope(|| request_of(event))?;
    // The hook runs in the span too, as on the async adapters.
    let decided = span.in_scope(|| decide(&mut handshake, Instant::now(), &request, hook(&request)));
    if let Ok(Some(conn)) = decided {
        return Ok(Accepted::WebSocket(
            WebSocket::start(stream, conn, inbox, span)?,
            request,
        ));
    }
    // A response (the hook's, or the core's 500 for a decision it could not carry out).
    let mut outbox = Outbox::default();
    outbox.pull(&mut handshake);
    write_outbox(&mut outbox, &mut stream)?;
    decided?;
    Ok(Accepted::Responded(request))
}
