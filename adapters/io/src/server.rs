//! The accept policy, written once: a server's [`Decision`] and how it is carried out.

use std::time::Instant;

use wsflow::{Accept, Connection, Request, Response, SendError, ServerEvent, ServerHandshake};

use crate::Error;

/// A server's answer to a [`Request`].
///
/// ```
/// use wsflow_io::{Accept, Decision, Response};
/// let decide = |path: &str| match path {
///     "/chat" => Decision::Accept(Accept::new()),
///     _ => Decision::Respond(Response::new(404).with_body("not found\n")),
/// };
/// assert!(matches!(decide("/chat"), Decision::Accept(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Upgrade to WebSocket.
    Accept(Accept),
    /// Answer with an HTTP response and close (a rejection, or a page for plain HTTP).
    Respond(Response),
}

/// What `accept_with` did with a request, in every adapter (`W` is the adapter's WebSocket).
///
/// Take it apart where it is returned: `let Accepted::WebSocket(ws, _) = accept_with(..).await?
/// else { .. }`. Bound to a name first and then only partly moved out of (`let accepted =
/// ..; let Accepted::WebSocket(ws, _) = accepted else ..`), it keeps the request's head
/// (about 1 KiB) alive as long as the name is in scope, in an async server the connection's
/// whole life.
#[derive(Debug)]
// A short-lived return value, matched at once: boxing the connection would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Accepted<W> {
    /// The hook accepted the upgrade.
    WebSocket(W, Request),
    /// The hook answered with an HTTP response (a rejection, or a page for a plain HTTP
    /// request); it has been written and the stream shut down.
    Responded(Request),
}

/// The request a server handshake reported, or its failure as an [`Error`] (the core has
/// queued the matching HTTP error response and the shutdown: write them, then return it).
///
/// # Errors
/// [`Error::Handshake`] when the handshake failed.
pub fn request_of(event: ServerEvent) -> Result<Request, Error> {
    match event {
        ServerEvent::Request(request) => Ok(request),
        ServerEvent::Failed(error) => {
            crate::trace::failed(&error);
            Err(Error::Handshake(error))
        }
    }
}

/// Carries out `decision` on the handshake that reported `request`: `Some(connection)`
/// when accepted, `None` when answered with a response (write the handshake's transmits,
/// then close).
///
/// Accepting a plain HTTP request (see [`Request::is_websocket`]) answers it with
/// `426 Upgrade Required`. When the decision cannot be carried out (a subprotocol the
/// client did not offer, an invalid header), the client gets a `500` response and the
/// error is returned.
///
/// With feature `tracing`, records the outcome in the current span (see [`trace`](crate::trace)).
///
/// # Errors
/// As [`ServerHandshake::accept`] and [`ServerHandshake::respond`].
pub fn decide(
    handshake: &mut ServerHandshake,
    now: Instant,
    request: &Request,
    decision: Decision,
) -> Result<Option<Connection>, SendError> {
    let result = match decision {
        Decision::Accept(_) if !request.is_websocket() => {
            let upgrade_required = Response::new(426)
                .with_header("Upgrade", "websocket")
                .with_header("Sec-WebSocket-Version", "13")
                .with_body("this endpoint speaks WebSocket\n");
            handshake.respond(&upgrade_required).map(|()| {
                crate::trace::rejected(426);
                None
            })
        }
        Decision::Accept(accept) => {
            let subprotocol = crate::trace::subprotocol(&accept);
            handshake.accept(now, accept).map(|conn| {
                crate::trace::accepted(subprotocol.as_deref(), &conn);
                Some(conn)
            })
        }
        Decision::Respond(response) => handshake.respond(&response).map(|()| {
            crate::trace::rejected(response.status());
            None
        }),
    };
    if let Err(error @ (SendError::SubprotocolNotOffered(_) | SendError::InvalidHeader(_))) = &result {
        crate::trace::upgrade_failed(error);
        let _ = handshake.respond(&Response::new(500).with_body("the server could not complete the upgrade\n"));
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wsflow::{Config, Transmit};

    use super::*;

    /// A server handshake that has read `request`, and the request it reported.
    fn serve(request: &str) -> (ServerHandshake, Request) {
        let mut handshake = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
        handshake.handle_data(Instant::now(), request.as_bytes());
        let request = request_of(handshake.poll_event().expect("a request")).expect("a valid request");
        (handshake, request)
    }

    /// What the handshake wrote, and whether it shut the stream down.
    fn written(handshake: &mut ServerHandshake) -> (String, bool) {
        let (mut text, mut shutdown) = (String::new(), false);
        while let Some(transmit) = handshake.poll_transmit() {
            match transmit {
                Transmit::Data(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                Transmit::Shutdown => shutdown = true,
            }
        }
        (text, shutdown)
    }

    const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn accepting_plain_http_answers_426() {
        let (mut handshake, request) = serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let decided = decide(
            &mut handshake,
            Instant::now(),
            &request,
            Decision::Accept(Accept::new()),
        );
        assert!(decided.unwrap().is_none());
        let (text, shutdown) = written(&mut handshake);
        assert!(text.starts_with("HTTP/1.1 426 ") && text.contains("Upgrade: websocket\r\n") && shutdown);
    }

    #[test]
    fn a_decision_that_cannot_be_carried_out_answers_500() {
        let (mut handshake, request) = serve(UPGRADE);
        let decision = Decision::Accept(Accept::new().subprotocol("never-offered"));
        let decided = decide(&mut handshake, Instant::now(), &request, decision);
        assert!(matches!(decided, Err(SendError::SubprotocolNotOffered(_))));
        let (text, shutdown) = written(&mut handshake);
        assert!(text.starts_with("HTTP/1.1 500 ") && shutdown);
    }

    #[test]
    fn an_upgrade_is_accepted_with_101() {
        let (mut handshake, request) = serve(UPGRADE);
        let decided = decide(
            &mut handshake,
            Instant::now(),
            &request,
            Decision::Accept(Accept::new()),
        );
        let mut connection = decided.unwrap().expect("a connection");
        let mut text = String::new();
        while let Some(Transmit::Data(bytes)) = connection.poll_transmit() {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    }
}
