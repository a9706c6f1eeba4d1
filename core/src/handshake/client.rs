//! The client side of the opening handshake (RFC 6455 §4.1).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::http::{push_checked, Headers, Response};
use super::negotiate::ClientNegotiation;
use super::url::{UrlError, WsUrl};
use super::{keep_pipelined, malformed, read_head, ClientEvent, DeflateAgreed};
use crate::config::Config;
use crate::connection::deadline;
use crate::connection::Connection;
use crate::error::{HandshakeError, SendError};
use crate::event::Transmit;

/// What a client asks for: the URL, and the optional parts of the upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    url: WsUrl,
    origin: Option<String>,
    subprotocols: Vec<String>,
    headers: Headers,
}

impl ClientRequest {
    /// A request for a `ws://` or `wss://` URL.
    ///
    /// # Errors
    /// [`UrlError`] for anything else.
    pub fn new(url: &str) -> Result<Self, UrlError> {
        Ok(Self {
            url: WsUrl::parse(url)?,
            origin: None,
            subprotocols: Vec::new(),
            headers: Headers::new(),
        })
    }

    /// Sends an `Origin` header.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers a subprotocol (call again for more, in order of preference).
    #[must_use]
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocols.push(name.into());
        self
    }

    /// Adds a header (e.g. `Authorization`).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Whether the URL is `wss://` (the transport must be TLS).
    pub fn is_secure(&self) -> bool {
        self.url.secure
    }

    /// The host to connect to (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        &self.url.host
    }

    /// The host without IPv6 brackets, as a TLS server name or a resolver wants it.
    pub fn host_unbracketed(&self) -> &str {
        self.url.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port to connect to (80 or 443 unless the URL names one).
    pub fn port(&self) -> u16 {
        self.url.port
    }

    /// The request target (path and query).
    pub fn target(&self) -> &str {
        &self.url.target
    }

    /// The offered subprotocols.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The `Host` header's value, HTTP/2's `:authority`: the host, and the port unless it
    /// is the scheme's default.
    pub(super) fn authority(&self) -> String {
        self.url.host_header()
    }

    /// The headers of the upgrade request with `key` and the extension offer, in the order
    /// they are sent, each checked against header injection. Without a key (an HTTP/2
    /// extended CONNECT, RFC 8441), no `Host`, `Upgrade`, `Connection` or key: the
    /// authority and `:protocol` are pseudo-headers there.
    pub(super) fn head_headers(&self, key: Option<&str>, extensions: Option<&str>) -> Result<Headers, SendError> {
        let mut headers = Headers::new();
        if let Some(key) = key {
            push_checked(&mut headers, "Host", self.url.host_header().as_bytes())?;
            headers.append("Upgrade", "websocket");
            headers.append("Connection", "Upgrade");
            push_checked(&mut headers, "Sec-WebSocket-Key", key.as_bytes())?;
        }
        headers.append("Sec-WebSocket-Version", "13");
        if let Some(origin) = &self.origin {
            push_checked(&mut headers, "Origin", origin.as_bytes())?;
        }
        if !self.subprotocols.is_empty() {
            if let Some(bad) = self
                .subprotocols
                .iter()
                .find(|name| name.is_empty() || !name.bytes().all(super::http::is_token_byte))
            {
                return Err(SendError::InvalidHeader(format!("Sec-WebSocket-Protocol {bad}")));
            }
            push_checked(
                &mut headers,
                "Sec-WebSocket-Protocol",
                self.subprotocols.join(", ").as_bytes(),
            )?;
        }
        if let Some(extensions) = extensions {
            push_checked(&mut headers, "Sec-WebSocket-Extensions", extensions.as_bytes())?;
        }
        for (name, value) in self.headers.iter() {
            push_checked(&mut headers, name, value)?;
        }
        Ok(headers)
    }
}

#[derive(Debug)]
enum Stage {
    /// Waiting for the response head.
    Reading,
    /// A non-101 response: reading its body (`remaining: None` means until EOF).
    ReadingBody {
        response: Response,
        remaining: Option<usize>,
    },
    /// Switched protocols; waiting for `into_connection`.
    Accepted,
    Finished,
}

/// The client side of the opening handshake, sans-IO.
///
/// The request is queued at creation: drain [`poll_transmit`](Self::poll_transmit), feed
/// the server's bytes to [`handle_data`](Self::handle_data), and watch
/// [`poll_event`](Self::poll_event) for [`ClientEvent::Accepted`] (then call
/// [`into_connection`](Self::into_connection)), [`ClientEvent::Rejected`] (a non-101
/// response with its body) or [`ClientEvent::Failed`].
pub struct ClientHandshake {
    negotiation: ClientNegotiation,
    buf: BytesMut,
    head_len: usize,
    deadline: Instant,
    stage: Stage,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
    /// The peer closed the transport after the head: the connection learns it at once.
    eof: bool,
    deflate: DeflateAgreed,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Starts a handshake for `request`. `entropy` (32 bytes from a strong source) seeds
    /// the generator of the `Sec-WebSocket-Key` and of every masking key of the connection.
    ///
    /// # Errors
    /// [`SendError::InvalidHeader`] when a header or subprotocol would corrupt the request.
    pub fn new(
        request: &ClientRequest,
        config: Arc<Config>,
        now: Instant,
        entropy: [u8; 32],
    ) -> Result<Self, SendError> {
        let negotiation = ClientNegotiation::new(request, config, entropy)?;
        let bytes = negotiation.request_bytes()?;
        Ok(Self {
            deadline: deadline(now, negotiation.config.handshake_timeout),
            negotiation,
            buf: BytesMut::new(),
            head_len: 0,
            stage: Stage::Reading,
            transmits: VecDeque::from([Transmit::Data(bytes)]),
            events: VecDeque::new(),
            eof: false,
            deflate: None,
        })
    }

    /// Feeds bytes read from the transport.
    pub fn handle_data(&mut self, _now: Instant, data: &[u8]) {
        match &mut self.stage {
            Stage::Reading => {}
            Stage::ReadingBody { .. } => return self.read_body(data),
            // Frames the server sent right after the 101: kept for the connection.
            Stage::Accepted => {
                if let Err(error) = keep_pipelined(&mut self.buf, self.head_len, data, &self.negotiation.config) {
                    self.fail(error);
                }
                return;
            }
            Stage::Finished => return,
        }
        let head_len = match read_head(&mut self.buf, data, self.negotiation.config.max_handshake_size) {
            Ok(Some(head_len)) => head_len,
            Ok(None) => return,
            Err(error) => return self.fail(error),
        };
        self.head_len = head_len;
        let response = match self.parse_response() {
            Ok(response) => response,
            Err(error) => return self.fail(error),
        };
        if response.status != 101 {
            let remaining = response
                .headers
                .get("content-length")
                .and_then(|len| len.trim().parse::<usize>().ok());
            let rest = self.buf.split_off(head_len);
            self.buf = BytesMut::new();
            self.stage = Stage::ReadingBody { response, remaining };
            return self.read_body(&rest);
        }
        match self.check_switch(&response) {
            Ok(()) => {
                self.stage = Stage::Accepted;
                self.events.push_back(ClientEvent::Accepted(response));
            }
            Err(error) => self.fail(error),
        }
    }

    /// Reports that the server closed the transport.
    pub fn handle_eof(&mut self, _now: Instant) {
        match std::mem::replace(&mut self.stage, Stage::Finished) {
            Stage::ReadingBody {
                mut response,
                remaining: None,
            } => {
                response.body = self.buf.split().freeze();
                self.reject(response);
            }
            Stage::Reading | Stage::ReadingBody { .. } => self.fail(HandshakeError::UnexpectedEof),
            // Passed on to the connection by `into_connection`.
            Stage::Accepted => {
                self.stage = Stage::Accepted;
                self.eof = true;
            }
            Stage::Finished => {}
        }
    }

    /// Reports that the deadline from [`poll_timeout`](Self::poll_timeout) has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.deadline {
            return;
        }
        match std::mem::replace(&mut self.stage, Stage::Finished) {
            Stage::Reading => self.fail(HandshakeError::TimedOut),
            // A rejection whose body never ended (no Content-Length, connection kept
            // open): report it with the body so far rather than lose the status.
            Stage::ReadingBody { mut response, .. } => {
                response.body = self.buf.split().freeze();
                self.reject(response);
            }
            other => self.stage = other,
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        matches!(self.stage, Stage::Reading | Stage::ReadingBody { .. }).then_some(self.deadline)
    }

    /// The next bytes to write.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The open connection, once [`ClientEvent::Accepted`] was reported, with any bytes
    /// the server sent after its response already processed.
    ///
    /// # Errors
    /// [`SendError::InvalidState`] before the server accepted (the handshake is consumed).
    pub fn into_connection(self, now: Instant) -> Result<Connection, SendError> {
        if !matches!(self.stage, Stage::Accepted) {
            return Err(SendError::InvalidState("the server has not accepted the upgrade"));
        }
        let mut connection = self.negotiation.open(now, self.deflate);
        connection.handle_data(now, &self.buf[self.head_len..]);
        if self.eof {
            connection.handle_eof(now);
        }
        Ok(connection)
    }

    fn read_body(&mut self, data: &[u8]) {
        let Stage::ReadingBody { response, remaining } = &mut self.stage else {
            return;
        };
        let take = remaining.map_or(data.len(), |left| left.min(data.len()));
        let limit = self.negotiation.config.max_handshake_size;
        let room = limit.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..take.min(room)]);
        if let Some(left) = remaining {
            *left -= take;
        }
        let done = *remaining == Some(0) || self.buf.len() >= limit;
        if done {
            let mut response = std::mem::replace(response, Response::new(0));
            response.body = self.buf.split().freeze();
            self.reject(response);
        }
    }

    fn reject(&mut self, response: Response) {
        self.stage = Stage::Finished;
        self.buf = BytesMut::new();
        self.transmits.push_back(Transmit::Shutdown);
        self.events.push_back(ClientEvent::Rejected(response));
    }

    fn fail(&mut self, error: HandshakeError) {
        self.stage = Stage::Finished;
        self.buf = BytesMut::new();
        self.transmits.push_back(Transmit::Shutdown);
        self.events.push_back(ClientEvent::Failed(error));
    }

    fn parse_response(&self) -> Result<Response, HandshakeError> {
        let mut fields = vec![httparse::EMPTY_HEADER; self.negotiation.config.max_headers];
        let mut parsed = httparse::Response::new(&mut fields);
        let status = parsed.parse(&self.buf[..self.head_len]).map_err(malformed)?;
        if status.is_partial() {
            return Err(HandshakeError::MalformedHttp("incomplete response head".into()));
        }
        if parsed.version != Some(1) {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        Ok(Response {
            status: parsed.code.unwrap_or_default(),
            reason: parsed.reason.unwrap_or_default().to_owned(),
            headers: Headers::from_httparse(parsed.headers),
            body: Bytes::new(),
        })
    }

    /// Checks a 101 response (§4.1, the client's five checks).
    fn check_switch(&mut self, response: &Response) -> Result<(), HandshakeError> {
        self.deflate = self.negotiation.check_switch(&response.headers)?;
        Ok(())
    }
}
