//! The HTTP/1.1 opening handshake (RFC 6455 §4), for both roles.
//!
//! [`ServerHandshake`] reads a request incrementally and yields a [`Request`] that the
//! application accepts, rejects, or (for a plain HTTP request) answers. [`ClientHandshake`]
//! writes the request for a [`ClientRequest`] and validates the response. Both end in a
//! [`Connection`](crate::Connection) with any bytes that followed the handshake already fed in.

mod client;
mod http;
pub(crate) use http::is_token_byte;
#[cfg(feature = "http")]
mod http_interop;
mod negotiate;
mod server;
mod url;

pub(crate) use url::split_host_port;

pub use client::{ClientHandshake, ClientRequest};
pub use http::{Headers, HttpVersion, Request, Response};
pub use negotiate::{ClientNegotiation, Negotiated, Rejection, ServerNegotiation};
pub use server::{Accept, ServerHandshake};
pub use url::UrlError;

use base64::Engine as _;

use crate::error::HandshakeError;

/// The GUID of RFC 6455 §1.3, appended to the key before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
///
/// ```
/// assert_eq!(wsflow::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha1.digest().bytes())
}

/// Something that happened during the server side of an opening handshake. Exhaustive (not
/// `#[non_exhaustive]`): a `match` on it needs no wildcard arm.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{Config, ServerEvent, ServerHandshake};
///
/// let mut server = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
/// server.handle_data(Instant::now(), b"GET /page HTTP/1.1\r\nHost: example.com\r\n\r\n");
/// let Some(ServerEvent::Request(request)) = server.poll_event() else { panic!() };
/// assert!(!request.is_websocket());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A complete request arrived. Inspect it, then call [`ServerHandshake::accept`] or
    /// [`ServerHandshake::respond`] (also for a plain HTTP request, see
    /// [`Request::is_websocket`]).
    Request(Request),
    /// The handshake failed. The matching HTTP error response is queued, then
    /// [`Transmit::Shutdown`](crate::Transmit::Shutdown): drain `poll_transmit`, then drop
    /// the transport.
    Failed(HandshakeError),
}

/// Something that happened during the client side of an opening handshake. Exhaustive (not
/// `#[non_exhaustive]`): a `match` on it needs no wildcard arm.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{ClientEvent, ClientHandshake, ClientRequest, Config};
///
/// let request = ClientRequest::new("ws://example.com/chat").unwrap();
/// let mut client = ClientHandshake::new(&request, Arc::new(Config::default()), Instant::now(), [7; 32]).unwrap();
/// client.handle_data(Instant::now(), b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
/// let Some(ClientEvent::Rejected(response)) = client.poll_event() else { panic!() };
/// assert_eq!((response.status(), &response.body()[..]), (403, &b"no"[..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server switched protocols and the response checked out. Call
    /// [`ClientHandshake::into_connection`].
    Accepted(Response),
    /// The server answered with another status (e.g. 401, 403), body included. The
    /// transport is shut down after it.
    Rejected(Response),
    /// The handshake failed. [`Transmit::Shutdown`](crate::Transmit::Shutdown) is queued:
    /// drain `poll_transmit`, then drop the transport.
    Failed(HandshakeError),
}

/// How many bytes may follow a complete head before the connection takes them over (a
/// pipelined first frame, or frames a server sends right after its 101): more fails the
/// handshake as too large instead of buffering without bound.
pub(crate) fn pipelined_limit(config: &crate::Config) -> usize {
    config.max_handshake_size.max(64 << 10)
}

/// Keeps bytes that follow a complete head, within [`pipelined_limit`].
fn keep_pipelined(
    buf: &mut bytes::BytesMut,
    head_len: usize,
    data: &[u8],
    config: &crate::Config,
) -> Result<(), HandshakeError> {
    if buf.len() - head_len + data.len() > pipelined_limit(config) {
        return Err(HandshakeError::TooLarge);
    }
    buf.extend_from_slice(data);
    Ok(())
}

/// Appends `data` to `buf` and looks for the end of the HTTP head: `Ok(Some(head_len))`
/// once it is complete, `Ok(None)` while more is needed, [`HandshakeError::TooLarge`] as
/// soon as the head passes `max` bytes (so an endless head is never buffered).
fn read_head(buf: &mut bytes::BytesMut, data: &[u8], max: usize) -> Result<Option<usize>, HandshakeError> {
    let scanned = buf.len();
    buf.extend_from_slice(data);
    match find_head_end(buf, scanned) {
        Some(head_len) if head_len <= max => Ok(Some(head_len)),
        None if buf.len() <= max => Ok(None),
        _ => Err(HandshakeError::TooLarge),
    }
}

/// Finds the end of an HTTP head (`\r\n\r\n`) in `buf`, resuming the search at `from`.
/// Returns the head's length including the blank line.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    buf.get(start..)?
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| start + at + 4)
}

/// The permessage-deflate parameters a handshake agreed on, if any.
#[cfg(feature = "deflate")]
type DeflateAgreed = Option<crate::deflate::DeflateParams>;
/// Without the `deflate` feature nothing can be agreed.
#[cfg(not(feature = "deflate"))]
type DeflateAgreed = Option<std::convert::Infallible>;

/// The connection a finished handshake hands over, with the agreed extension turned on.
fn open_connection(
    role: crate::Role,
    config: std::sync::Arc<crate::Config>,
    now: std::time::Instant,
    masks: Option<Box<rand_chacha::ChaCha8Rng>>,
    deflate: DeflateAgreed,
) -> crate::Connection {
    #[allow(unused_mut)]
    let mut connection = crate::Connection::new(role, config, now, masks);
    #[cfg(feature = "deflate")]
    if let Some(params) = deflate {
        connection.set_deflate(crate::deflate::DeflateCodec::new(params, role));
    }
    #[cfg(not(feature = "deflate"))]
    let _ = deflate;
    connection
}

fn malformed(error: httparse::Error) -> HandshakeError {
    match error {
        httparse::Error::TooManyHeaders => HandshakeError::TooLarge,
        other => HandshakeError::MalformedHttp(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_accept_example() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn head_end_is_found_across_resumed_searches() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(find_head_end(head, 0), Some(27));
        for from in 0..27 {
            assert_eq!(find_head_end(head, from), Some(27), "from {from}");
        }
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r", 0), None);
    }
}
