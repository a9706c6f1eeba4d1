//! The opening handshake over an HTTP head that another library parsed or received (hyper,
//! axum, any HTTP client): the same checks and negotiation as [`ServerHandshake`] and
//! [`ClientHandshake`], without the bytes.
//!
//! [`ServerHandshake`]: super::ServerHandshake
//! [`ClientHandshake`]: super::ClientHandshake

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::client::ClientRequest;
use super::http::{write_headers, Headers, HttpVersion, Request, Response};
use super::server::{accept_headers, check_upgrade, rejection_response, Accept};
use super::{accept_key, open_connection, DeflateAgreed};
use crate::config::Config;
use crate::connection::{Connection, Role};
use crate::error::{HandshakeError, SendError};

/// The server side of an upgrade whose request head another HTTP server parsed (hyper,
/// axum): validated at [`new`](Self::new) exactly as [`ServerHandshake`] validates a head it
/// read, then [`accept`](Self::accept)ed with an [`Accept`] into the 101 response headers
/// and a ready [`Connection`].
///
/// Two steps, as with `ServerHandshake`: a bad upgrade is the client's fault and is
/// answered at once ([`Rejection`]); a valid one is handed to the application, which looks
/// at [`request`](Self::request) (path, `Origin`, offered subprotocols) before it accepts.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{Accept, Config, HttpVersion, Request, ServerNegotiation};
///
/// let request = Request::from_parts("GET", "/chat", HttpVersion::Http11, [
///     ("Host", "example.com"),
///     ("Upgrade", "websocket"),
///     ("Connection", "Upgrade"),
///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
///     ("Sec-WebSocket-Version", "13"),
///     ("Sec-WebSocket-Protocol", "chat, superchat"),
/// ]);
/// let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
/// let accept = Accept::new().subprotocol_from(negotiation.request(), &["superchat"]);
/// let negotiated = negotiation.accept(Instant::now(), accept).unwrap();
/// let headers = negotiated.response().headers();
/// assert_eq!(negotiated.response().status(), 101);
/// assert_eq!(headers.get("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
/// assert_eq!(headers.get("sec-websocket-protocol"), Some("superchat"));
/// let connection = negotiated.into_connection(); // drive it over the upgraded stream
/// assert_eq!(connection.role(), wsflow::Role::Server);
/// ```
///
/// [`ServerHandshake`]: crate::ServerHandshake
#[derive(Clone, Debug)]
pub struct ServerNegotiation {
    config: Arc<Config>,
    request: Request,
    /// The HTTP/1.1 `Sec-WebSocket-Key`; `None` for an HTTP/2 extended CONNECT.
    key: Option<String>,
}

impl ServerNegotiation {
    /// Validates an upgrade request: the checks of [`ServerHandshake`] (RFC 6455 §4.2.1)
    /// and its limits ([`Config::max_headers`], [`Config::max_handshake_size`], counted as
    /// if the head had been sent as HTTP/1.1 text).
    ///
    /// # Errors
    /// A [`Rejection`] to send back: `405` for a method other than `GET`; `400` for another
    /// version than HTTP/1.1, a missing `Host`, `Upgrade: websocket` or `Connection: Upgrade`
    /// (also for a plain request that does not try to upgrade), or not exactly one 16-byte
    /// `Sec-WebSocket-Key`; `426` with `Sec-WebSocket-Version: 13` for another version than
    /// 13; `431` over the limits.
    ///
    /// Over HTTP/2 ([`HttpVersion::Http2`], see [`Request::extended_connect`]), RFC 8441
    /// §4 and §5 instead: `405` with `Allow: CONNECT` for another method than `CONNECT`;
    /// `400` without `:protocol = websocket`, an authority or an origin-form path, with an
    /// HTTP/1.1 connection-specific field (`Connection`, `Upgrade`, ...), or with another
    /// version than 13 (with `Sec-WebSocket-Version: 13`: HTTP/2 has no `426`); `431` over
    /// the limits. No `Sec-WebSocket-Key` is needed (one sent is ignored).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsflow::{Config, HttpVersion, Request, ServerNegotiation};
    ///
    /// let request = Request::from_parts("POST", "/", HttpVersion::Http11, [("Upgrade", "websocket")]);
    /// let rejection = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap_err();
    /// assert_eq!(rejection.status(), 405);
    /// assert_eq!(rejection.response().headers().get("allow"), Some("GET"));
    /// ```
    ///
    /// [`ServerHandshake`]: crate::ServerHandshake
    /// [`Config::max_headers`]: crate::Config::max_headers
    /// [`Config::max_handshake_size`]: crate::Config::max_handshake_size
    pub fn new(config: Arc<Config>, mut request: Request) -> Result<Self, Rejection> {
        let http2 = request.version == HttpVersion::Http2;
        check_limits(&config, &request, http2)?;
        let upgrade = check_upgrade(&request, true)
            .and_then(|upgrade| upgrade.ok_or(HandshakeError::BadHeader("Upgrade: websocket")))
            .map_err(|error| Rejection::for_http(error, http2))?;
        request.websocket = true;
        Ok(Self {
            config,
            request,
            key: upgrade.into_key(),
        })
    }

    /// Whether the request is an HTTP/2 extended CONNECT (RFC 8441), accepted with `200`
    /// rather than `101`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsflow::{Config, Request, ServerNegotiation};
    ///
    /// let request = Request::extended_connect(Some("websocket"), Some("a"), "/", [("sec-websocket-version", "13")]);
    /// assert!(ServerNegotiation::new(Arc::new(Config::default()), request).unwrap().is_http2());
    /// ```
    pub fn is_http2(&self) -> bool {
        self.key.is_none()
    }

    /// Replaces the [`Config`] the connection will get, and checks the head against its
    /// limits as [`new`](Self::new) does. For an HTTP integration that must validate the
    /// upgrade before the application has chosen its config (an axum extractor runs before
    /// the handler).
    ///
    /// # Errors
    /// A `431` [`Rejection`] when the head exceeds the new config's limits.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsflow::{Config, HttpVersion, Request, ServerNegotiation};
    ///
    /// let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
    ///     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    ///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    /// ]);
    /// let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// let mut strict = Config::default();
    /// strict.max_headers(4);
    /// assert_eq!(negotiation.with_config(Arc::new(strict)).unwrap_err().status(), 431);
    /// ```
    pub fn with_config(mut self, config: Arc<Config>) -> Result<Self, Rejection> {
        check_limits(&config, &self.request, self.is_http2())?;
        self.config = config;
        Ok(self)
    }

    /// The validated request, for the application to decide on (path, `Origin`, offered
    /// subprotocols and extensions).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsflow::{Config, HttpVersion, Request, ServerNegotiation};
    ///
    /// let request = Request::from_parts("GET", "/room/1", HttpVersion::Http11, [
    ///     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    ///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    ///     ("Origin", "https://a"),
    /// ]);
    /// let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// assert_eq!((negotiation.request().path(), negotiation.request().origin()), ("/room/1", Some("https://a")));
    /// ```
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Accepts the upgrade as [`ServerHandshake::accept`] does: the headers of the 101
    /// response (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`, the chosen subprotocol,
    /// the permessage-deflate answer when the client offered it and the [`Config`] enables
    /// it, then `accept`'s own headers) and a server [`Connection`] with those parameters.
    /// Over HTTP/2 the response is a `200` without the first three headers, and the
    /// connection runs over the CONNECT stream (RFC 8441 §5).
    /// Nothing is queued on the connection: the HTTP server sends the 101 itself, then
    /// hands over the upgraded stream (feed any bytes it read past the head first).
    ///
    /// # Errors
    /// [`SendError::SubprotocolNotOffered`]; [`SendError::InvalidHeader`] for a header that
    /// would corrupt the response (with the `http` feature, also one that `http` cannot
    /// represent). The negotiation can still be accepted again.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Accept, Config, HttpVersion, Request, SendError, ServerNegotiation};
    ///
    /// let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
    ///     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    ///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    /// ]);
    /// let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// let error = negotiation.accept(Instant::now(), Accept::new().subprotocol("chat")).unwrap_err();
    /// assert_eq!(error, SendError::SubprotocolNotOffered("chat".into()));
    /// let negotiated = negotiation.accept(Instant::now(), Accept::new().header("Set-Cookie", "a=1")).unwrap();
    /// assert_eq!(negotiated.response().headers().get("set-cookie"), Some("a=1"));
    /// ```
    ///
    /// [`ServerHandshake::accept`]: crate::ServerHandshake::accept
    pub fn accept(&self, now: Instant, accept: Accept) -> Result<Negotiated, SendError> {
        let request = &self.request;
        let (headers, deflate) = accept_headers(
            &self.config,
            self.key.as_deref(),
            request.subprotocols(),
            request.extensions(),
            &accept,
        )?;
        #[cfg(feature = "http")]
        for (name, value) in headers.iter() {
            super::http_interop::check_http_header(name, value)?;
        }
        let subprotocol = headers.get("sec-websocket-protocol").map(str::to_owned);
        let mut response = Response::new(if self.is_http2() { 200 } else { 101 });
        response.headers = headers;
        let mut connection = open_connection(Role::Server, self.config.clone(), now, None, deflate);
        if self.is_http2() {
            connection = connection.on_http2_stream();
        }
        Ok(Negotiated {
            response,
            subprotocol,
            connection,
        })
    }
}

/// [`Config::max_headers`] and [`Config::max_handshake_size`], with the head counted as if
/// it had been sent as HTTP/1.1 text.
fn check_limits(config: &Config, request: &Request, http2: bool) -> Result<(), Rejection> {
    let head_size = request.method.len()
        + request.target.len()
        + "  HTTP/1.1\r\n\r\n".len()
        + request
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + ": \r\n".len())
            .sum::<usize>();
    if request.headers.len() > config.max_headers || head_size > config.max_handshake_size {
        return Err(Rejection::for_http(HandshakeError::TooLarge, http2));
    }
    Ok(())
}

/// An accepted upgrade: the 101 response for the HTTP server to send, and the
/// [`Connection`] to drive over the upgraded stream. See [`ServerNegotiation::accept`].
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{Accept, Config, HttpVersion, Request, ServerNegotiation};
///
/// let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
///     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
/// ]);
/// let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
/// let (response, connection) = negotiation.accept(Instant::now(), Accept::new()).unwrap().into_parts();
/// assert_eq!(response.headers().get("upgrade"), Some("websocket"));
/// assert!(!connection.is_compressed());
/// ```
#[derive(Debug)]
pub struct Negotiated {
    response: Response,
    subprotocol: Option<String>,
    connection: Connection,
}

impl Negotiated {
    /// The 101 Switching Protocols response (`200` over HTTP/2), headers in the order
    /// [`ServerHandshake`] sends them; no body.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use wsflow::{Accept, Config, HttpVersion, Request, ServerNegotiation};
    /// # let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
    /// #     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    /// #     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    /// # ]);
    /// # let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// let negotiated = negotiation.accept(Instant::now(), Accept::new()).unwrap();
    /// let names: Vec<&str> = negotiated.response().headers().iter().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["Upgrade", "Connection", "Sec-WebSocket-Accept"]);
    /// ```
    ///
    /// [`ServerHandshake`]: crate::ServerHandshake
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The subprotocol selected, if any.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use wsflow::{Accept, Config, HttpVersion, Request, ServerNegotiation};
    /// # let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
    /// #     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    /// #     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    /// #     ("Sec-WebSocket-Protocol", "chat"),
    /// # ]);
    /// # let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// let negotiated = negotiation.accept(Instant::now(), Accept::new().subprotocol("chat")).unwrap();
    /// assert_eq!(negotiated.subprotocol(), Some("chat"));
    /// ```
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The connection (e.g. to check [`Connection::is_compressed`]).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use wsflow::{Accept, Config, HttpVersion, Request, ServerNegotiation};
    /// # let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
    /// #     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    /// #     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    /// # ]);
    /// # let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// let negotiated = negotiation.accept(Instant::now(), Accept::new()).unwrap();
    /// assert!(!negotiated.connection().is_compressed());
    /// ```
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The connection, to drive over the upgraded stream.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use wsflow::{Accept, Config, HttpVersion, Request, ServerNegotiation};
    /// # let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
    /// #     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    /// #     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    /// # ]);
    /// # let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// let mut connection = negotiation.accept(Instant::now(), Accept::new()).unwrap().into_connection();
    /// connection.send(wsflow::Message::text("hi")).unwrap();
    /// assert!(connection.poll_transmit().is_some());
    /// ```
    pub fn into_connection(self) -> Connection {
        self.connection
    }

    /// The response and the connection.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use wsflow::{Accept, Config, HttpVersion, Request, ServerNegotiation};
    /// # let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
    /// #     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    /// #     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    /// # ]);
    /// # let negotiation = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap();
    /// let (response, _connection) = negotiation.accept(Instant::now(), Accept::new()).unwrap().into_parts();
    /// assert_eq!(response.status(), 101);
    /// ```
    pub fn into_parts(self) -> (Response, Connection) {
        (self.response, self.connection)
    }
}

/// A refused upgrade: the HTTP response to answer it with (the status, a short text body,
/// `Sec-WebSocket-Version: 13` on a 426 and `Allow: GET` on a 405, the same response
/// [`ServerHandshake`] sends) and the reason.
///
/// ```
/// use std::sync::Arc;
/// use wsflow::{Config, HandshakeError, HttpVersion, Request, ServerNegotiation};
///
/// let request = Request::from_parts("GET", "/", HttpVersion::Http11, [
///     ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "12"),
/// ]);
/// let rejection = ServerNegotiation::new(Arc::new(Config::default()), request).unwrap_err();
/// assert_eq!(rejection.status(), 426);
/// assert_eq!(rejection.error(), &HandshakeError::UnsupportedVersion("12".into()));
/// assert_eq!(rejection.response().headers().get("sec-websocket-version"), Some("13"));
/// ```
///
/// [`ServerHandshake`]: crate::ServerHandshake
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    error: HandshakeError,
    response: Response,
}

impl Rejection {
    /// The rejection of `error`, with the response [`ServerHandshake`] would send for it
    /// (without the `Content-Length` and `Connection: close` it adds when writing it).
    ///
    /// ```
    /// let rejection = wsflow::Rejection::new(wsflow::HandshakeError::BadHeader("Host"));
    /// assert_eq!((rejection.status(), &rejection.response().body()[..]), (400, &b"bad or missing header: Host\n"[..]));
    /// ```
    ///
    /// [`ServerHandshake`]: crate::ServerHandshake
    pub fn new(error: HandshakeError) -> Self {
        Self::for_http(error, false)
    }

    /// The rejection of `error` over HTTP/2 when `http2`: no `426` (a bad
    /// `Sec-WebSocket-Version` is a `400`, still with `Sec-WebSocket-Version: 13`) and
    /// `Allow: CONNECT` on a `405`.
    fn for_http(error: HandshakeError, http2: bool) -> Self {
        Self {
            response: rejection_response(&error, http2),
            error,
        }
    }

    /// The HTTP status: 400, 405, 426 (HTTP/1.1 only) or 431.
    ///
    /// ```
    /// assert_eq!(wsflow::Rejection::new(wsflow::HandshakeError::TooLarge).status(), 431);
    /// ```
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// Why the upgrade was refused.
    ///
    /// ```
    /// let rejection = wsflow::Rejection::new(wsflow::HandshakeError::UnsupportedHttpVersion);
    /// assert_eq!(rejection.error(), &wsflow::HandshakeError::UnsupportedHttpVersion);
    /// ```
    pub fn error(&self) -> &HandshakeError {
        &self.error
    }

    /// The response to send: status, headers and body.
    ///
    /// ```
    /// let rejection = wsflow::Rejection::new(wsflow::HandshakeError::MethodNotAllowed("PUT".into()));
    /// assert_eq!(rejection.response().headers().get("allow"), Some("GET"));
    /// ```
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The response to send, by value.
    ///
    /// ```
    /// let response = wsflow::Rejection::new(wsflow::HandshakeError::TooLarge).into_response();
    /// assert_eq!(response.status(), 431);
    /// ```
    pub fn into_response(self) -> Response {
        self.response
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upgrade rejected with {}: {}", self.response.status, self.error)
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The client side of an upgrade sent and answered by another HTTP client: send
/// [`headers`](Self::headers) with a `GET` of [`target`](Self::target) over HTTP/1.1, then
/// check the response with [`into_connection`](Self::into_connection), as
/// [`ClientHandshake`] checks the one it reads.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{accept_key, ClientNegotiation, ClientRequest, Config, Response};
///
/// let request = ClientRequest::new("ws://example.com/chat").unwrap().subprotocol("chat");
/// let negotiation = ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).unwrap();
/// assert_eq!(negotiation.headers().get("sec-websocket-key"), Some(negotiation.key()));
/// // ... the HTTP client sends the request and receives:
/// let response = Response::from_parts(101, [
///     ("Upgrade", "websocket".to_owned()),
///     ("Connection", "Upgrade".to_owned()),
///     ("Sec-WebSocket-Accept", accept_key(negotiation.key().as_bytes())),
///     ("Sec-WebSocket-Protocol", "chat".to_owned()),
/// ]);
/// let connection = negotiation.into_connection(Instant::now(), &response).unwrap();
/// assert_eq!(connection.role(), wsflow::Role::Client);
/// ```
///
/// [`ClientHandshake`]: crate::ClientHandshake
pub struct ClientNegotiation {
    pub(super) config: Arc<Config>,
    masks: Box<ChaCha8Rng>,
    key: String,
    expected_accept: String,
    offered: Vec<String>,
    target: String,
    headers: Headers,
    /// An HTTP/2 extended CONNECT rather than an HTTP/1.1 upgrade.
    http2: bool,
    /// HTTP/2's `:authority` (HTTP/1.1's `Host`).
    authority: String,
    /// HTTP/2's `:scheme`.
    scheme: &'static str,
}

impl std::fmt::Debug for ClientNegotiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientNegotiation")
            .field("target", &self.target)
            .field("headers", &self.headers)
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}

impl ClientNegotiation {
    /// Prepares the upgrade request for `request`, as [`ClientHandshake::new`] does:
    /// `entropy` (32 bytes from a strong source) seeds the generator of the
    /// `Sec-WebSocket-Key` and of every masking key of the connection, and the
    /// permessage-deflate offer follows the [`Config`].
    ///
    /// # Errors
    /// [`SendError::InvalidHeader`] when a header or subprotocol would corrupt the request.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsflow::{ClientNegotiation, ClientRequest, Config};
    ///
    /// let request = ClientRequest::new("ws://example.com/").unwrap().header("Bad\r\nName", "x");
    /// assert!(ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).is_err());
    /// ```
    ///
    /// [`ClientHandshake::new`]: crate::ClientHandshake::new
    pub fn new(request: &ClientRequest, config: Arc<Config>, entropy: [u8; 32]) -> Result<Self, SendError> {
        Self::with_version(request, config, entropy, false)
    }

    /// Prepares an HTTP/2 extended CONNECT for `request` (RFC 8441 §4 and §5): the
    /// HTTP/2 client sends `:method = CONNECT`, `:protocol = websocket`,
    /// `:scheme` = [`scheme`](Self::scheme), `:authority` = [`authority`](Self::authority),
    /// `:path` = [`target`](Self::target), and the [`headers`](Self::headers) (no `Host`,
    /// `Upgrade`, `Connection` or `Sec-WebSocket-Key`); a `2xx` answer opens the
    /// connection (see [`into_connection`](Self::into_connection)). The server must have
    /// sent `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`. `entropy` seeds the masking keys: a
    /// client masks over HTTP/2 as over HTTP/1.1.
    ///
    /// # Errors
    /// [`SendError::InvalidHeader`] when a header or subprotocol would corrupt the request.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{ClientNegotiation, ClientRequest, Config, Response};
    ///
    /// let request = ClientRequest::new("wss://example.com/chat").unwrap().subprotocol("chat");
    /// let negotiation = ClientNegotiation::new_http2(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// assert_eq!((negotiation.scheme(), negotiation.authority()), ("https", "example.com"));
    /// assert_eq!(negotiation.headers().get("sec-websocket-key"), None);
    /// assert_eq!(negotiation.headers().get("sec-websocket-version"), Some("13"));
    /// let response = Response::from_parts(200, [("sec-websocket-protocol", "chat")]);
    /// let connection = negotiation.into_connection(Instant::now(), &response).unwrap();
    /// assert_eq!(connection.role(), wsflow::Role::Client);
    /// ```
    pub fn new_http2(request: &ClientRequest, config: Arc<Config>, entropy: [u8; 32]) -> Result<Self, SendError> {
        Self::with_version(request, config, entropy, true)
    }

    fn with_version(
        request: &ClientRequest,
        config: Arc<Config>,
        entropy: [u8; 32],
        http2: bool,
    ) -> Result<Self, SendError> {
        let mut masks = Box::new(ChaCha8Rng::from_seed(entropy));
        let mut key = String::new();
        if !http2 {
            let mut nonce = [0u8; 16];
            masks.fill_bytes(&mut nonce);
            key = base64::engine::general_purpose::STANDARD.encode(nonce);
        }
        #[cfg(feature = "deflate")]
        let offer = config.deflate.as_ref().map(crate::deflate::DeflateConfig::client_offer);
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;
        let headers = request.head_headers((!http2).then_some(key.as_str()), offer.as_deref())?;
        let authority = request.authority();
        super::http::check_header("authority", authority.as_bytes())
            .map_err(|_| SendError::InvalidHeader(":authority".into()))?;
        Ok(Self {
            config,
            masks,
            expected_accept: if key.is_empty() {
                String::new()
            } else {
                accept_key(key.as_bytes())
            },
            key,
            offered: request.subprotocols().to_vec(),
            target: request.target().to_owned(),
            headers,
            http2,
            authority,
            scheme: if request.is_secure() { "https" } else { "http" },
        })
    }

    /// Whether this is an HTTP/2 extended CONNECT ([`new_http2`](Self::new_http2)).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsflow::{ClientNegotiation, ClientRequest, Config};
    /// let request = ClientRequest::new("ws://example.com/").unwrap();
    /// assert!(!ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).unwrap().is_http2());
    /// ```
    pub fn is_http2(&self) -> bool {
        self.http2
    }

    /// HTTP/2's `:authority`: the URL's host, and its port unless it is the scheme's
    /// default (over HTTP/1.1, the `Host` header's value).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsflow::{ClientNegotiation, ClientRequest, Config};
    /// let request = ClientRequest::new("ws://[::1]:9000/").unwrap();
    /// let negotiation = ClientNegotiation::new_http2(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// assert_eq!(negotiation.authority(), "[::1]:9000");
    /// ```
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// HTTP/2's `:scheme`: `http` for a `ws://` URL, `https` for `wss://`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsflow::{ClientNegotiation, ClientRequest, Config};
    /// let request = ClientRequest::new("ws://example.com/").unwrap();
    /// let negotiation = ClientNegotiation::new_http2(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// assert_eq!(negotiation.scheme(), "http");
    /// ```
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The `Sec-WebSocket-Key` sent (also among [`headers`](Self::headers)); empty over
    /// HTTP/2, which has none.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsflow::{ClientNegotiation, ClientRequest, Config};
    /// let request = ClientRequest::new("ws://example.com/").unwrap();
    /// let negotiation = ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// assert_eq!(negotiation.key().len(), 24);
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The request target (path and query) to `GET`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsflow::{ClientNegotiation, ClientRequest, Config};
    /// let request = ClientRequest::new("ws://example.com/chat?room=1").unwrap();
    /// let negotiation = ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// assert_eq!(negotiation.target(), "/chat?room=1");
    /// ```
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The request headers to send, in the order [`ClientHandshake`] sends them: `Host`,
    /// `Upgrade`, `Connection`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version`, then
    /// `Origin`, `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when there are
    /// any, then the [`ClientRequest`]'s own headers.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use wsflow::{ClientNegotiation, ClientRequest, Config};
    /// let request = ClientRequest::new("ws://example.com:8080/").unwrap();
    /// let negotiation = ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// assert_eq!(negotiation.headers().get("host"), Some("example.com:8080"));
    /// assert_eq!(negotiation.headers().get("sec-websocket-version"), Some("13"));
    /// ```
    ///
    /// [`ClientHandshake`]: crate::ClientHandshake
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Checks the server's response as [`ClientHandshake`] does (status 101,
    /// `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept` for our key, at
    /// most one subprotocol and one of ours, at most one extension and one we offered with
    /// parameters we accept) and returns the client connection with the agreed parameters.
    /// Feed it any bytes the HTTP client read past the response head first.
    ///
    /// # Errors
    /// [`HandshakeError::UnexpectedStatus`], [`HandshakeError::BadHeader`],
    /// [`HandshakeError::BadAccept`], [`HandshakeError::UnexpectedSubprotocol`],
    /// [`HandshakeError::UnexpectedExtension`].
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{ClientNegotiation, ClientRequest, Config, HandshakeError, Response};
    ///
    /// let request = ClientRequest::new("ws://example.com/").unwrap();
    /// let negotiation = ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// let response = Response::from_parts(101, [
    ///     ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "wrong"),
    /// ]);
    /// let error = negotiation.into_connection(Instant::now(), &response).unwrap_err();
    /// assert_eq!(error, HandshakeError::BadAccept);
    /// ```
    ///
    /// [`ClientHandshake`]: crate::ClientHandshake
    pub fn into_connection(self, now: Instant, response: &Response) -> Result<Connection, HandshakeError> {
        let deflate = if self.is_http2() {
            if !(200..300).contains(&response.status) {
                return Err(HandshakeError::UnexpectedStatus(response.status));
            }
            self.check_agreed(&response.headers)?
        } else {
            if response.status != 101 {
                return Err(HandshakeError::UnexpectedStatus(response.status));
            }
            self.check_switch(&response.headers)?
        };
        Ok(self.open(now, deflate))
    }

    /// The request as [`ClientHandshake`](crate::ClientHandshake) writes it.
    pub(super) fn request_bytes(&self) -> Result<Bytes, SendError> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        write_headers(&mut out, self.headers.iter())?;
        out.extend_from_slice(b"\r\n");
        Ok(Bytes::from(out))
    }

    /// Checks the headers of a 101 response (§4.1, the client's five checks) and returns
    /// the agreed permessage-deflate parameters.
    pub(super) fn check_switch(&self, headers: &Headers) -> Result<DeflateAgreed, HandshakeError> {
        if !headers.has_token("upgrade", "websocket") {
            return Err(HandshakeError::BadHeader("Upgrade: websocket"));
        }
        if !headers.has_token("connection", "upgrade") {
            return Err(HandshakeError::BadHeader("Connection: Upgrade"));
        }
        if headers.get("sec-websocket-accept").map(str::trim) != Some(self.expected_accept.as_str()) {
            return Err(HandshakeError::BadAccept);
        }
        self.check_agreed(headers)
    }

    /// Checks the subprotocol and the extension of a response, the same over HTTP/1.1 and
    /// HTTP/2, and returns the agreed permessage-deflate parameters.
    fn check_agreed(&self, headers: &Headers) -> Result<DeflateAgreed, HandshakeError> {
        let mut selected = headers.list("sec-websocket-protocol");
        if let Some(protocol) = selected.next() {
            if selected.next().is_some() || !self.offered.iter().any(|offer| offer == protocol) {
                return Err(HandshakeError::UnexpectedSubprotocol(protocol.to_owned()));
            }
        }
        let mut extensions = headers.list("sec-websocket-extensions");
        let Some(extension) = extensions.next() else {
            return Ok(None);
        };
        let unexpected = || HandshakeError::UnexpectedExtension(extension.to_owned());
        if extensions.next().is_some() {
            return Err(unexpected());
        }
        #[cfg(feature = "deflate")]
        {
            let offered = self.config.deflate.as_ref().ok_or_else(unexpected)?;
            let params = offered
                .check_response(extension)
                .map_err(|why| HandshakeError::UnexpectedExtension(format!("{extension} ({why})")))?;
            Ok(Some(params))
        }
        #[cfg(not(feature = "deflate"))]
        Err(unexpected())
    }

    /// The client connection, masking with the generator that made the key.
    pub(super) fn open(self, now: Instant, deflate: DeflateAgreed) -> Connection {
        let http2 = self.is_http2();
        let connection = open_connection(Role::Client, self.config, now, Some(self.masks), deflate);
        if http2 {
            connection.on_http2_stream()
        } else {
            connection
        }
    }
}
