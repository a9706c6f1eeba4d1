//! HTTP heads as the handshake sees them: headers, the request a server receives and the
//! response either side builds or receives.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::error::SendError;

/// HTTP header fields in arrival order; names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Headers from `(name, value)` pairs, e.g. a header map another HTTP library parsed.
    ///
    /// ```
    /// let headers = wsflow::Headers::from_pairs([("Upgrade", "websocket"), ("Connection", "Upgrade")]);
    /// assert!(headers.has_token("connection", "upgrade"));
    /// ```
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        Self {
            entries: pairs
                .into_iter()
                .map(|(name, value)| (name.as_ref().to_owned(), value.as_ref().to_vec()))
                .collect(),
        }
    }

    pub(crate) fn from_httparse(headers: &[httparse::Header<'_>]) -> Self {
        Self {
            entries: headers
                .iter()
                .map(|header| (header.name.to_owned(), header.value.to_vec()))
                .collect(),
        }
    }

    /// Appends a field.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.entries.push((name.into(), value.into()));
    }

    /// The first value of `name` as text (`None` if absent or not UTF-8).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name).and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The first value of `name` as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// Whether any value of `name`, read as a comma-separated list, holds `token`
    /// (case-insensitively), e.g. `Connection: keep-alive, Upgrade` holds `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.list(name).any(|item| item.eq_ignore_ascii_case(token))
    }

    /// Every comma-separated item of every value of `name`, trimmed, empty items skipped.
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .filter_map(|value| std::str::from_utf8(value).ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
    }

    /// All fields as `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The HTTP version of a request head.
///
/// ```
/// assert_eq!(wsflow::HttpVersion::Http11.to_string(), "HTTP/1.1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/0.9.
    Http09,
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1, the only version a WebSocket upgrade (RFC 6455) can use.
    Http11,
    /// HTTP/2, where a WebSocket opens with an extended CONNECT (RFC 8441): see
    /// [`Request::extended_connect`].
    Http2,
    /// HTTP/3.
    Http3,
}

impl std::fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Http09 => "HTTP/0.9",
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
            Self::Http3 => "HTTP/3",
        })
    }
}

/// An HTTP request received by a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) version: HttpVersion,
    pub(crate) headers: Headers,
    /// HTTP/2's `:protocol` pseudo-header (RFC 8441 §4).
    pub(crate) protocol: Option<String>,
    /// HTTP/2's `:authority` pseudo-header.
    pub(crate) authority: Option<String>,
    pub(crate) websocket: bool,
}

impl Request {
    /// A request head that another HTTP library parsed (hyper, axum, ...), to hand to
    /// [`ServerNegotiation::new`](crate::ServerNegotiation::new). `headers` is any
    /// sequence of `(name, value)` pairs; [`is_websocket`](Self::is_websocket) is answered
    /// by the same checks as for a head that [`ServerHandshake`](crate::ServerHandshake)
    /// parsed.
    ///
    /// ```
    /// use wsflow::{HttpVersion, Request};
    ///
    /// let headers = [
    ///     ("Host", "example.com"),
    ///     ("Upgrade", "websocket"),
    ///     ("Connection", "Upgrade"),
    ///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ///     ("Sec-WebSocket-Version", "13"),
    /// ];
    /// let request = Request::from_parts("GET", "/chat?room=1", HttpVersion::Http11, headers);
    /// assert!(request.is_websocket());
    /// assert_eq!((request.path(), request.version()), ("/chat", HttpVersion::Http11));
    /// ```
    pub fn from_parts<N, V>(
        method: &str,
        target: &str,
        version: HttpVersion,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut request = Self {
            method: method.to_owned(),
            target: target.to_owned(),
            version,
            headers: Headers::from_pairs(headers),
            protocol: None,
            authority: None,
            websocket: false,
        };
        request.detect_websocket();
        request
    }

    /// An HTTP/2 extended CONNECT head (RFC 8441 §4) that an HTTP/2 library (`h2`, hyper)
    /// received: method `CONNECT`, the `:protocol`, `:authority` and `:path` pseudo-headers
    /// (`None` when absent), and the regular header fields. A WebSocket asks for
    /// `:protocol = websocket` with `Sec-WebSocket-Version: 13` and no `Sec-WebSocket-Key`;
    /// [`ServerNegotiation`](crate::ServerNegotiation) answers it with `200`.
    ///
    /// ```
    /// use wsflow::{HttpVersion, Request};
    ///
    /// let request = Request::extended_connect(Some("websocket"), Some("example.com"), "/chat?room=1", [
    ///     ("sec-websocket-version", "13"),
    ///     ("sec-websocket-protocol", "chat"),
    /// ]);
    /// assert!(request.is_websocket());
    /// assert_eq!((request.method(), request.version()), ("CONNECT", HttpVersion::Http2));
    /// assert_eq!((request.protocol(), request.host()), (Some("websocket"), Some("example.com")));
    /// ```
    pub fn extended_connect<N, V>(
        protocol: Option<&str>,
        authority: Option<&str>,
        path: &str,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        Self::from_parts("CONNECT", path, HttpVersion::Http2, headers)
            .with_authority(authority)
            .with_protocol(protocol)
    }

    /// Sets HTTP/2's `:protocol` pseudo-header, which the `http` crate's types do not carry
    /// (hyper keeps it in the request's extensions as `hyper::ext::Protocol`).
    ///
    /// ```
    /// use wsflow::{HttpVersion, Request};
    ///
    /// let request = Request::from_parts("CONNECT", "/", HttpVersion::Http2, [("sec-websocket-version", "13")])
    ///     .with_authority(Some("a"));
    /// assert!(!request.is_websocket()); // no `:protocol = websocket`
    /// let request = request.with_protocol(Some("websocket"));
    /// assert!(request.is_websocket());
    /// assert_eq!(request.protocol(), Some("websocket"));
    /// ```
    #[must_use]
    pub fn with_protocol(mut self, protocol: Option<&str>) -> Self {
        self.protocol = protocol.map(str::to_owned);
        self.detect_websocket();
        self
    }

    /// Sets HTTP/2's `:authority` pseudo-header (the `Host` of HTTP/1.1), which
    /// [`host`](Self::host) returns when there is no `Host` header.
    ///
    /// ```
    /// use wsflow::{HttpVersion, Request};
    ///
    /// let request = Request::from_parts("CONNECT", "/", HttpVersion::Http2, [("x", "y")]);
    /// assert_eq!(request.with_authority(Some("example.com:8443")).host(), Some("example.com:8443"));
    /// ```
    #[must_use]
    pub fn with_authority(mut self, authority: Option<&str>) -> Self {
        self.authority = authority.map(str::to_owned);
        self.detect_websocket();
        self
    }

    fn detect_websocket(&mut self) {
        self.websocket = super::server::check_upgrade(self, false).is_ok_and(|attempt| attempt.is_some());
    }

    /// HTTP/2's `:protocol` pseudo-header, if any (`websocket` for a WebSocket, RFC 8441).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The HTTP version.
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target: path and query, e.g. `/chat?room=1`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The query part of the target (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// All headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The `Host` header, or HTTP/2's `:authority` when there is none.
    pub fn host(&self) -> Option<&str> {
        self.headers.get("host").or(self.authority.as_deref())
    }

    /// The `Origin` header (browsers send it; check it against cross-site hijacking).
    pub fn origin(&self) -> Option<&str> {
        self.headers.get("origin")
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn subprotocols(&self) -> impl Iterator<Item = &str> {
        self.headers.list("sec-websocket-protocol")
    }

    /// The extension offers, one item per offer (e.g. `permessage-deflate; client_max_window_bits`).
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        self.headers.list("sec-websocket-extensions")
    }

    /// Whether this is a valid WebSocket upgrade request. `false` means a plain HTTP
    /// request (no `Upgrade: websocket`), to be answered with
    /// [`ServerHandshake::respond`](crate::ServerHandshake::respond).
    ///
    /// Which requests reach the application at all: any well-formed HTTP request head
    /// that does not try to upgrade (no `Upgrade: websocket`, `Sec-WebSocket-Key` or
    /// `Sec-WebSocket-Version`: `is_websocket` is `false`), and every valid upgrade. The
    /// core answers the rest itself, queues the shutdown and reports
    /// [`ServerEvent::Failed`](crate::ServerEvent::Failed) instead: an upgrade that is not
    /// `GET` (`405`), not HTTP/1.1, without `Host`, `Upgrade: websocket`,
    /// `Connection: Upgrade` or exactly one 16-byte `Sec-WebSocket-Key` (`400`), or of a
    /// version other than 13 (`426` with `Sec-WebSocket-Version: 13`); a malformed head
    /// (`400`), one over the size or header-count limit (`431`), or none within the
    /// handshake timeout (`408`).
    ///
    /// Over HTTP/2 (RFC 8441) a valid attempt is a `CONNECT` with `:protocol = websocket`,
    /// an authority, an origin-form `:path` and `Sec-WebSocket-Version: 13`, with no
    /// HTTP/1.1 connection-specific field; [`ServerNegotiation`](crate::ServerNegotiation)
    /// refuses the rest with `405` (`Allow: CONNECT`) or `400`.
    pub fn is_websocket(&self) -> bool {
        self.websocket
    }
}

/// An HTTP response: built by a server to answer or reject a request, or received by a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
}

impl Response {
    /// A response with `status`, its standard reason phrase, no headers and no body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            reason: reason_phrase(status).to_owned(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body (a `Content-Length` header is added when it is sent).
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The subprotocol the server selected (`Sec-WebSocket-Protocol`), read as the client
    /// checks it: trimmed, empty list items skipped.
    pub fn subprotocol(&self) -> Option<&str> {
        self.headers.list("sec-websocket-protocol").next()
    }

    /// A response that another HTTP client received (its status and headers, no body), to
    /// hand to [`ClientNegotiation::into_connection`](crate::ClientNegotiation::into_connection).
    ///
    /// ```
    /// let response = wsflow::Response::from_parts(101, [("Upgrade", "websocket")]);
    /// assert_eq!((response.status(), response.headers().get("upgrade")), (101, Some("websocket")));
    /// ```
    pub fn from_parts<N, V>(status: u16, headers: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        Self {
            headers: Headers::from_pairs(headers),
            ..Self::new(status)
        }
    }

    /// Serializes the response with `Content-Length` and `Connection: close` added.
    pub(crate) fn to_bytes_closing(&self) -> Result<Bytes, SendError> {
        // These are set here; a second copy from the caller would make the message ambiguous.
        let framing = ["content-length", "transfer-encoding", "connection"];
        if let Some((name, _)) = self
            .headers
            .iter()
            .find(|(name, _)| framing.iter().any(|f| name.eq_ignore_ascii_case(f)))
        {
            return Err(SendError::InvalidHeader(name.to_owned()));
        }
        let mut head = String::new();
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, self.reason);
        let mut out = head.into_bytes();
        write_headers(&mut out, self.headers.iter())?;
        let _ = write_header_line(&mut out, "Content-Length", self.body.len().to_string().as_bytes());
        let _ = write_header_line(&mut out, "Connection", b"close");
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        Ok(Bytes::from(out))
    }
}

/// Appends `name: value\r\n` for every header, refusing names and values that would
/// break the message (header injection).
pub(crate) fn write_headers<'a>(
    out: &mut Vec<u8>,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), SendError> {
    for (name, value) in headers {
        write_header_line(out, name, value)?;
    }
    Ok(())
}

pub(crate) fn write_header_line(out: &mut Vec<u8>, name: &str, value: &[u8]) -> Result<(), SendError> {
    check_header(name, value)?;
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Refuses a header name that is not a token, or a value with control characters (header
/// injection).
pub(crate) fn check_header(name: &str, value: &[u8]) -> Result<(), SendError> {
    let name_ok = !name.is_empty() && name.bytes().all(is_token_byte);
    let value_ok = value
        .iter()
        .all(|&byte| byte == b'\t' || (byte >= b' ' && byte != 0x7F));
    if !name_ok || !value_ok {
        return Err(SendError::InvalidHeader(name.to_owned()));
    }
    Ok(())
}

/// Appends a header after [`check_header`].
pub(crate) fn push_checked(headers: &mut Headers, name: &str, value: &[u8]) -> Result<(), SendError> {
    check_header(name, value)?;
    headers.append(name, value);
    Ok(())
}

/// RFC 9110 `tchar`.
pub(crate) fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
