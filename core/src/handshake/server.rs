//! The server side of the opening handshake (RFC 6455 §4.2).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};

use super::http::{push_checked, write_headers, Headers, HttpVersion, Request, Response};
use super::{accept_key, keep_pipelined, malformed, open_connection, read_head, DeflateAgreed, ServerEvent};
use crate::config::Config;
use crate::connection::deadline;
use crate::connection::{Connection, Role};
use crate::error::{HandshakeError, SendError};
use crate::event::Transmit;

/// How the server answers an upgrade request it accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    subprotocol: Option<String>,
    headers: Headers,
}

impl Accept {
    /// Accept with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Selects a subprotocol; it must be one the client offered.
    #[must_use]
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocol = Some(name.into());
        self
    }

    /// Selects the first subprotocol, in the client's order of preference, that the
    /// server `supports`; none if the client offered none of them.
    #[must_use]
    pub fn subprotocol_from(self, request: &Request, supports: &[&str]) -> Self {
        match request.subprotocols().find(|offered| supports.contains(offered)) {
            Some(protocol) => self.subprotocol(protocol),
            None => self,
        }
    }

    /// Adds a header to the 101 response (e.g. `Set-Cookie`).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The subprotocol selected with [`subprotocol`](Self::subprotocol), if any.
    pub fn selected_subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }
}

#[derive(Debug)]
enum Stage {
    /// Waiting for the end of the request head.
    Reading,
    /// The request was reported; waiting for `accept` or `respond`.
    Deciding {
        key: Option<String>,
        offered: Vec<String>,
        extensions: Vec<String>,
    },
    /// Answered or failed: only transmits remain.
    Finished,
}

/// The server side of the opening handshake, sans-IO.
///
/// Feed bytes with [`handle_data`](Self::handle_data); when
/// [`poll_event`](Self::poll_event) yields [`ServerEvent::Request`], call
/// [`accept`](Self::accept) (which returns the [`Connection`], with the 101 response queued
/// first and any pipelined bytes already fed in) or [`respond`](Self::respond). A malformed
/// request is answered with the right HTTP error (400, 405, 426, 431) automatically and
/// reported as [`ServerEvent::Failed`]. Drain [`poll_transmit`](Self::poll_transmit)
/// after every call.
#[derive(Debug)]
pub struct ServerHandshake {
    config: Arc<Config>,
    buf: BytesMut,
    head_len: usize,
    deadline: Instant,
    stage: Stage,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ServerEvent>,
    /// The peer closed the transport after the head: the connection learns it at once.
    eof: bool,
}

impl ServerHandshake {
    /// A handshake that must finish within [`Config::handshake_timeout`] of `now`.
    pub fn new(config: Arc<Config>, now: Instant) -> Self {
        Self {
            deadline: deadline(now, config.handshake_timeout),
            config,
            buf: BytesMut::new(),
            head_len: 0,
            stage: Stage::Reading,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            eof: false,
        }
    }

    /// Feeds bytes read from the transport.
    pub fn handle_data(&mut self, _now: Instant, data: &[u8]) {
        match self.stage {
            Stage::Reading => {}
            // Pipelined bytes after the head: kept for the connection.
            Stage::Deciding { .. } => {
                if let Err(error) = keep_pipelined(&mut self.buf, self.head_len, data, &self.config) {
                    self.fail(error);
                }
                return;
            }
            Stage::Finished => return,
        }
        self.head_len = match read_head(&mut self.buf, data, self.config.max_handshake_size) {
            Ok(Some(head_len)) => head_len,
            Ok(None) => return,
            Err(error) => return self.fail(error),
        };
        match self.parse_request() {
            Ok((request, key)) => {
                let offered = request.subprotocols().map(str::to_owned).collect();
                let extensions = request.extensions().map(str::to_owned).collect();
                self.stage = Stage::Deciding {
                    key,
                    offered,
                    extensions,
                };
                self.events.push_back(ServerEvent::Request(request));
            }
            Err(error) => self.fail(error),
        }
    }

    /// Reports that the peer closed the transport.
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.stage {
            Stage::Reading => {
                self.stage = Stage::Finished;
                self.transmits.push_back(Transmit::Shutdown);
                self.events
                    .push_back(ServerEvent::Failed(HandshakeError::UnexpectedEof));
            }
            // Passed on to the connection when the request is accepted.
            Stage::Deciding { .. } => self.eof = true,
            Stage::Finished => {}
        }
    }

    /// Reports that the deadline from [`poll_timeout`](Self::poll_timeout) has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.deadline && !matches!(self.stage, Stage::Finished) {
            self.fail(HandshakeError::TimedOut);
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!matches!(self.stage, Stage::Finished)).then_some(self.deadline)
    }

    /// The next bytes to write.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Accepts the upgrade: returns the open connection with the 101 response queued as its
    /// first transmit and any bytes that followed the request already processed.
    ///
    /// # Errors
    /// [`SendError::InvalidState`] unless a WebSocket request is waiting for a decision;
    /// [`SendError::SubprotocolNotOffered`]; [`SendError::InvalidHeader`]. The handshake is
    /// left as it was, so it can still be answered.
    pub fn accept(&mut self, now: Instant, accept: Accept) -> Result<Connection, SendError> {
        let Stage::Deciding {
            key,
            offered,
            extensions,
        } = &self.stage
        else {
            return Err(SendError::InvalidState("no request is waiting for a decision"));
        };
        let Some(key) = key else {
            return Err(SendError::InvalidState("not a WebSocket upgrade request"));
        };
        let offered = offered.iter().map(String::as_str);
        let (headers, deflate) = accept_headers(
            &self.config,
            Some(key),
            offered,
            extensions.iter().map(String::as_str),
            &accept,
        )?;
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        write_headers(&mut out, headers.iter())?;
        out.extend_from_slice(b"\r\n");

        self.stage = Stage::Finished;
        let mut connection = open_connection(Role::Server, self.config.clone(), now, None, deflate);
        connection.queue_raw(Bytes::from(out));
        let pipelined = self.buf.split_off(self.head_len);
        self.buf = BytesMut::new();
        connection.handle_data(now, &pipelined);
        if self.eof {
            connection.handle_eof(now);
        }
        Ok(connection)
    }

    /// Whether the handshake has nothing more to do and everything it queued has been
    /// pulled: it handed over its [`Connection`] ([`accept`](Self::accept)), or answered
    /// ([`respond`](Self::respond)), failed (the error response and the shutdown), or the
    /// client left. Once what was pulled is written, the transport may be dropped (after
    /// `accept`, the connection owns it).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Config, Response, ServerEvent, ServerHandshake};
    ///
    /// let mut handshake = ServerHandshake::new(Arc::new(Config::default()), Instant::now());
    /// handshake.handle_data(Instant::now(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /// assert!(matches!(handshake.poll_event(), Some(ServerEvent::Request(_))));
    /// assert!(!handshake.is_finished());
    /// handshake.respond(&Response::new(404)).unwrap();
    /// while handshake.poll_transmit().is_some() {}
    /// assert!(handshake.is_finished());
    /// ```
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.stage, Stage::Finished) && self.transmits.is_empty()
    }

    /// Answers the request with an HTTP response instead of upgrading (a rejection such as
    /// 401 or 403, or a page for a plain HTTP request), then shuts the transport down.
    ///
    /// # Errors
    /// [`SendError::InvalidState`] unless a request is waiting for a decision;
    /// [`SendError::InvalidHeader`].
    pub fn respond(&mut self, response: &Response) -> Result<(), SendError> {
        if !matches!(self.stage, Stage::Deciding { .. }) {
            return Err(SendError::InvalidState("no request is waiting for a decision"));
        }
        let bytes = response.to_bytes_closing()?;
        self.finish_with(bytes);
        Ok(())
    }

    fn finish_with(&mut self, response: Bytes) {
        self.stage = Stage::Finished;
        self.buf = BytesMut::new();
        self.transmits.push_back(Transmit::Data(response));
        self.transmits.push_back(Transmit::Shutdown);
    }

    fn fail(&mut self, error: HandshakeError) {
        let bytes = rejection_response(&error, false).to_bytes_closing().unwrap_or_default();
        self.finish_with(bytes);
        self.events.push_back(ServerEvent::Failed(error));
    }

    /// Parses the head and checks the upgrade (§4.2.1). Returns the request and, for a
    /// WebSocket upgrade, its key.
    fn parse_request(&self) -> Result<(Request, Option<String>), HandshakeError> {
        let mut fields = vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut parsed = httparse::Request::new(&mut fields);
        let status = parsed.parse(&self.buf[..self.head_len]).map_err(malformed)?;
        if status.is_partial() {
            return Err(HandshakeError::MalformedHttp("incomplete request head".into()));
        }
        let version = match parsed.version {
            Some(0) => HttpVersion::Http10,
            _ => HttpVersion::Http11,
        };
        let mut request = Request {
            method: parsed.method.unwrap_or_default().to_owned(),
            target: parsed.path.unwrap_or_default().to_owned(),
            version,
            headers: Headers::from_httparse(parsed.headers),
            protocol: None,
            authority: None,
            websocket: false,
        };
        let key = check_upgrade(&request, false)?.and_then(Upgrade::into_key);
        request.websocket = key.is_some();
        Ok((request, key))
    }
}

/// A valid upgrade: its HTTP/1.1 `Sec-WebSocket-Key`, or an HTTP/2 extended CONNECT
/// (RFC 8441), which has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Upgrade {
    Http1 { key: String },
    Http2,
}

impl Upgrade {
    /// The HTTP/1.1 key (`None` over HTTP/2).
    pub(super) fn into_key(self) -> Option<String> {
        match self {
            Self::Http1 { key } => Some(key),
            Self::Http2 => None,
        }
    }
}

/// Checks an upgrade request (RFC 6455 §4.2.1; over HTTP/2, RFC 8441 §4 and §5), for both
/// [`ServerHandshake`] and [`ServerNegotiation`](super::ServerNegotiation). Returns the
/// upgrade, or `None` for a request that does not try to upgrade (no `Upgrade: websocket`,
/// `Sec-WebSocket-Key`, `Sec-WebSocket-Version` or `:protocol = websocket`) unless
/// `required`, when it fails as the first check it breaks.
pub(super) fn check_upgrade(request: &Request, required: bool) -> Result<Option<Upgrade>, HandshakeError> {
    let headers = &request.headers;
    let websocket_protocol = request
        .protocol
        .as_deref()
        .is_some_and(|protocol| protocol.eq_ignore_ascii_case("websocket"));
    let attempts_upgrade = headers.has_token("upgrade", "websocket")
        || headers.get_bytes("sec-websocket-key").is_some()
        || headers.get_bytes("sec-websocket-version").is_some()
        || websocket_protocol;
    if !attempts_upgrade && !required {
        return Ok(None);
    }
    if request.version == HttpVersion::Http2 {
        return check_extended_connect(request, websocket_protocol).map(Some);
    }
    if request.method != "GET" {
        return Err(HandshakeError::MethodNotAllowed(request.method.clone()));
    }
    if request.version != HttpVersion::Http11 {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    if headers.get("host").is_none_or(str::is_empty) {
        return Err(HandshakeError::BadHeader("Host"));
    }
    if !headers.has_token("upgrade", "websocket") {
        return Err(HandshakeError::BadHeader("Upgrade: websocket"));
    }
    if !headers.has_token("connection", "upgrade") {
        return Err(HandshakeError::BadHeader("Connection: Upgrade"));
    }
    let key = headers.get("sec-websocket-key").map(str::trim).unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    if headers.get_all("sec-websocket-key").count() != 1 || decoded.map_or(true, |bytes| bytes.len() != 16) {
        return Err(HandshakeError::BadHeader("Sec-WebSocket-Key"));
    }
    check_version(request)?;
    Ok(Some(Upgrade::Http1 { key: key.to_owned() }))
}

/// The header fields HTTP/2 forbids (RFC 9113 §8.2.2): an HTTP/2 library should have
/// refused them already, but the head may come from anywhere.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// RFC 8441: `CONNECT` with `:protocol = websocket`, an authority and a path; no
/// `Sec-WebSocket-Key` is needed (one sent anyway is ignored, §5), and the version is 13.
fn check_extended_connect(request: &Request, websocket_protocol: bool) -> Result<Upgrade, HandshakeError> {
    if request.method != "CONNECT" {
        return Err(HandshakeError::MethodNotAllowed(request.method.clone()));
    }
    if !websocket_protocol {
        return Err(HandshakeError::BadHeader(":protocol: websocket"));
    }
    if request.host().is_none_or(str::is_empty) {
        return Err(HandshakeError::BadHeader(":authority"));
    }
    if !request.target.starts_with('/') {
        return Err(HandshakeError::BadHeader(":path"));
    }
    if let Some(name) = CONNECTION_SPECIFIC
        .iter()
        .find(|name| request.headers.get_bytes(name).is_some())
    {
        return Err(HandshakeError::MalformedHttp(format!(
            "connection-specific header {name} in HTTP/2"
        )));
    }
    check_version(request)?;
    Ok(Upgrade::Http2)
}

/// `Sec-WebSocket-Version: 13`, the one version there is.
fn check_version(request: &Request) -> Result<(), HandshakeError> {
    let version = request
        .headers
        .get("sec-websocket-version")
        .map(str::trim)
        .unwrap_or_default();
    if version != "13" {
        return Err(HandshakeError::UnsupportedVersion(version.to_owned()));
    }
    Ok(())
}

/// The headers of the 101 response to an upgrade with `key`, in the order they are sent
/// (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`, the subprotocol, the extension, then
/// `accept`'s own), each checked against header injection, and the permessage-deflate
/// parameters agreed from the client's `extensions` offers and `config`. Without a key
/// (the 200 to an HTTP/2 extended CONNECT), the first three are left out.
pub(super) fn accept_headers<'a>(
    config: &Config,
    key: Option<&str>,
    mut offered: impl Iterator<Item = &'a str>,
    extensions: impl Iterator<Item = &'a str>,
    accept: &Accept,
) -> Result<(Headers, DeflateAgreed), SendError> {
    let mut headers = Headers::new();
    if let Some(key) = key {
        headers.append("Upgrade", "websocket");
        headers.append("Connection", "Upgrade");
        push_checked(
            &mut headers,
            "Sec-WebSocket-Accept",
            accept_key(key.as_bytes()).as_bytes(),
        )?;
    }
    if let Some(protocol) = &accept.subprotocol {
        if !offered.any(|offer| offer == protocol) {
            return Err(SendError::SubprotocolNotOffered(protocol.clone()));
        }
        push_checked(&mut headers, "Sec-WebSocket-Protocol", protocol.as_bytes())?;
    }
    #[cfg(feature = "deflate")]
    let deflate = config
        .deflate
        .as_ref()
        .and_then(|deflate| deflate.accept_offer(extensions));
    #[cfg(feature = "deflate")]
    let deflate = match deflate {
        Some((response, params)) => {
            push_checked(&mut headers, "Sec-WebSocket-Extensions", response.as_bytes())?;
            Some(params)
        }
        None => None,
    };
    #[cfg(not(feature = "deflate"))]
    let (deflate, _) = (None, (config, extensions));
    for (name, value) in accept.headers.iter() {
        push_checked(&mut headers, name, value)?;
    }
    Ok((headers, deflate))
}

/// The HTTP response a server rejects a failed upgrade with: the error's status, a short
/// text body, and `Sec-WebSocket-Version: 13` (426) or `Allow: GET` (405). Over HTTP/2
/// (`http2`), which has no protocol upgrade, a bad version is a `400` (with
/// `Sec-WebSocket-Version: 13` still) and the method allowed is `CONNECT`.
pub(super) fn rejection_response(error: &HandshakeError, http2: bool) -> Response {
    let mut status = error.status().unwrap_or(400);
    if http2 && status == 426 {
        status = 400;
    }
    let mut response = Response::new(status).with_body(format!("{error}\n"));
    response = match error {
        HandshakeError::UnsupportedVersion(_) => response.with_header("Sec-WebSocket-Version", "13"),
        HandshakeError::MethodNotAllowed(_) => response.with_header("Allow", if http2 { "CONNECT" } else { "GET" }),
        _ => response,
    };
    response.with_header("Content-Type", "text/plain; charset=utf-8")
}
