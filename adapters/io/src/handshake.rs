//! The opening handshakes over an async stream, for every runtime: [`accept`],
//! [`accept_with`] and [`connect_on`].

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use wsflow::{Accept, ClientHandshake, Config, HandshakeError, Request, Response, ServerHandshake};

use crate::client::response_of;
use crate::driver::{Io, Task};
use crate::runtime::AsyncStream;
use crate::server::{decide, request_of, Accepted, Decision};
use crate::trace::{self, ConnectionSpan};
use crate::{ClientBuilder, Error, SansIo, WebSocket};

/// [`Config::default`], shared: a connection keeps its configuration for its whole life,
/// and one allocated per connection would be about 230 bytes of every idle connection.
pub(crate) static DEFAULT_CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| Arc::new(Config::default()));

/// What an async adapter's `connect` and `connect_on` return.
pub type Connecting<S> = Pin<Box<dyn Future<Output = Result<(WebSocket<S>, Response), Error>> + Send>>;

/// Accepts any WebSocket upgrade on `stream` with [`Config::default`]. A plain HTTP request
/// is answered with `426 Upgrade Required` and reported as a handshake error.
///
/// # Errors
/// [`Error::Handshake`] for a malformed request (answered with the matching HTTP error), a
/// plain HTTP request or a timeout; [`Error::Transport`] if the stream fails.
pub async fn accept<S: AsyncStream>(stream: S) -> Result<WebSocket<S>, Error> {
    match accept_with(stream, DEFAULT_CONFIG.clone(), |_| Decision::Accept(Accept::new())).await? {
        Accepted::WebSocket(websocket, _) => Ok(websocket),
        Accepted::Responded(_) => Err(HandshakeError::BadHeader("Upgrade: websocket").into()),
    }
}

/// Reads the request on `stream` and lets `hook` decide: upgrade ([`Decision::Accept`],
/// with a subprotocol or headers) or answer with an HTTP response ([`Decision::Respond`],
/// also how plain HTTP requests are served; see [`Request::is_websocket`]). The handshake
/// must finish within [`Config::handshake_timeout`]. Set `TCP_NODELAY` on a TCP stream
/// first for low latency.
///
/// # Errors
/// [`Error::Handshake`] for a malformed request (answered with the matching HTTP error) or
/// a timeout; [`Error::Send`] when the hook's answer is invalid (e.g. a subprotocol the
/// client did not offer: the client gets a 500 response); [`Error::Transport`] if the
/// stream fails.
///
/// Not cancel safe: dropping the future abandons the handshake and the stream.
pub async fn accept_with<S, F>(stream: S, config: Arc<Config>, hook: F) -> Result<Accepted<WebSocket<S>>, Error>
where
    S: AsyncStream,
    F: FnOnce(&Request) -> Decision,
{
    // The handshake's state is bigger than the connection it yields: boxed, it does not
    // set the size of the caller's future (an idle connection's memory) for its whole life.
    let span = ConnectionSpan::server(None);
    let handshake = handshake_then_decide(stream, config, hook, span.clone());
    Box::pin(span.instrument(handshake)).await
}

async fn handshake_then_decide<S, F>(
    stream: S,
    config: Arc<Config>,
    hook: F,
    span: ConnectionSpan,
) -> Result<Accepted<WebSocket<S>>, Error>
where
    S: AsyncStream,
    F: FnOnce(&Request) -> Decision,
{
    let mut io = Io::new(stream);
    let mut handshake = ServerHandshake::new(config, Io::<S>::now());
    let event = next_event(&mut io, &mut handshake, ServerHandshake::poll_event).await?;
    let request = match request_of(event) {
        Ok(request) => request,
        Err(error) => return Err(finish(&mut io, &mut handshake, error).await),
    };
    let decided = decide(&mut handshake, Io::<S>::now(), &request, hook(&request));
    if let Ok(Some(conn)) = decided {
        let mut websocket = WebSocket::new(io, conn, span);
        websocket.flush().await?;
        return Ok(Accepted::WebSocket(websocket, request));
    }
    // A response: the hook's, or the 500 for a decision that could not be carried out.
    write_all(&mut io, &mut handshake).await?;
    decided?;
    Ok(Accepted::Responded(request))
}

/// Performs the client's upgrade over `stream` as `builder` describes: what an async
/// adapter's [`ClientBuilder::connect_on`] runs.
///
/// # Errors
/// As [`ClientBuilder::connect_on`].
pub async fn connect_on<R, S: AsyncStream>(
    builder: ClientBuilder<R>,
    stream: S,
) -> Result<(WebSocket<S>, Response), Error> {
    let span = builder.span();
    let upgrade = upgrade(builder, stream, span.clone());
    span.instrument(upgrade).await
}

async fn upgrade<R, S: AsyncStream>(
    builder: ClientBuilder<R>,
    stream: S,
    span: ConnectionSpan,
) -> Result<(WebSocket<S>, Response), Error> {
    let mut handshake = builder.handshake(Io::<S>::now())?;
    let mut io = Io::new(stream);
    let event = next_event(&mut io, &mut handshake, ClientHandshake::poll_event).await?;
    match response_of(event) {
        Ok(response) => {
            let conn = handshake.into_connection(Io::<S>::now())?;
            trace::accepted(response.subprotocol(), &conn);
            Ok((WebSocket::new(io, conn, span), response))
        }
        Err(error) => Err(finish(&mut io, &mut handshake, error).await),
    }
}

/// Drives a handshake until it reports an event.
async fn next_event<S: AsyncStream, T: SansIo, E>(
    io: &mut Io<S>,
    handshake: &mut T,
    poll_event: fn(&mut T) -> Option<E>,
) -> std::io::Result<E> {
    poll_fn(|cx| io.poll_event(handshake, Task::Receiver, cx, poll_event, |_| false)).await
}

/// Writes everything the handshake queued, shutdown included.
async fn write_all<S: AsyncStream>(io: &mut Io<S>, handshake: &mut impl SansIo) -> std::io::Result<()> {
    poll_fn(|cx| io.poll_drain(handshake, Task::Receiver, cx, 0, |_| false)).await
}

/// Writes, as far as the stream allows, what a failed handshake queued (an HTTP error
/// response, the shutdown), and returns `error`.
async fn finish<S: AsyncStream>(io: &mut Io<S>, handshake: &mut impl SansIo, error: Error) -> Error {
    // The handshake's error says more than a failure to deliver its last words.
    let _ = write_all(io, handshake).await;
    error
}
