//! Conversions from and to the `http` crate's types (feature `http`), for hyper, axum and
//! the HTTP clients built on them.

use super::http::{HttpVersion, Request, Response};
use super::negotiate::{ClientNegotiation, Negotiated, Rejection};
use crate::error::SendError;

impl From<http::Version> for HttpVersion {
    /// ```
    /// assert_eq!(wsflow::HttpVersion::from(http::Version::HTTP_11), wsflow::HttpVersion::Http11);
    /// ```
    fn from(version: http::Version) -> Self {
        match version {
            http::Version::HTTP_09 => Self::Http09,
            http::Version::HTTP_10 => Self::Http10,
            http::Version::HTTP_11 => Self::Http11,
            http::Version::HTTP_2 => Self::Http2,
            _ => Self::Http3,
        }
    }
}

fn request_from_http(
    method: &http::Method,
    uri: &http::Uri,
    version: http::Version,
    headers: &http::HeaderMap,
) -> Request {
    let target = uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
    let request = Request::from_parts(method.as_str(), target, version.into(), headers);
    if version == http::Version::HTTP_2 {
        // hyper and h2 put `:authority` in the URI; `:protocol` is an extension they own.
        return request.with_authority(uri.authority().map(http::uri::Authority::as_str));
    }
    request
}

impl From<&http::request::Parts> for Request {
    /// The head of a request that hyper or axum parsed (what an axum extractor gets).
    /// Over HTTP/2, `:authority` is read from the URI; add `:protocol` (hyper's
    /// `hyper::ext::Protocol` extension) with [`Request::with_protocol`].
    ///
    /// ```
    /// let (parts, ()) = http::Request::get("/chat")
    ///     .header("Host", "a")
    ///     .header("Upgrade", "websocket")
    ///     .header("Connection", "Upgrade")
    ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("Sec-WebSocket-Version", "13")
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// let request = wsflow::Request::from(&parts);
    /// assert!(request.is_websocket());
    /// assert_eq!(request.path(), "/chat");
    /// ```
    fn from(parts: &http::request::Parts) -> Self {
        request_from_http(&parts.method, &parts.uri, parts.version, &parts.headers)
    }
}

impl<B> From<&http::Request<B>> for Request {
    /// The head of a request that hyper parsed; the body is not looked at.
    ///
    /// ```
    /// let request = http::Request::post("/").header("Upgrade", "websocket").body(()).unwrap();
    /// let request = wsflow::Request::from(&request);
    /// assert_eq!((request.method(), request.is_websocket()), ("POST", false));
    /// ```
    fn from(request: &http::Request<B>) -> Self {
        request_from_http(request.method(), request.uri(), request.version(), request.headers())
    }
}

impl From<&http::response::Parts> for Response {
    /// The head of a response that an HTTP client received, for
    /// [`ClientNegotiation::into_connection`].
    ///
    /// ```
    /// let (parts, ()) = http::Response::builder().status(101).header("Upgrade", "websocket").body(()).unwrap().into_parts();
    /// let response = wsflow::Response::from(&parts);
    /// assert_eq!((response.status(), response.headers().get("upgrade")), (101, Some("websocket")));
    /// ```
    fn from(parts: &http::response::Parts) -> Self {
        Response::from_parts(parts.status.as_u16(), &parts.headers)
    }
}

impl<B> From<&http::Response<B>> for Response {
    /// The status and headers of a response that an HTTP client received; the body is not
    /// copied.
    ///
    /// ```
    /// let response = http::Response::builder().status(403).body("no").unwrap();
    /// assert_eq!(wsflow::Response::from(&response).status(), 403);
    /// ```
    fn from(response: &http::Response<B>) -> Self {
        Response::from_parts(response.status().as_u16(), response.headers())
    }
}

/// Refuses a header that `http` cannot represent (a name over its length limit), so that
/// [`Negotiated::to_http`] cannot fail.
pub(super) fn check_http_header(name: &str, value: &[u8]) -> Result<(), SendError> {
    let invalid = || SendError::InvalidHeader(name.to_owned());
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
    http::HeaderValue::from_bytes(value).map_err(|_| invalid())?;
    Ok(())
}

impl Response {
    /// This response as an `http` response with `body` (status, headers in order; the
    /// reason phrase is left to the server).
    ///
    /// # Errors
    /// [`http::Error`] for a status or header that `http` does not accept.
    ///
    /// ```
    /// let response = wsflow::Response::new(403).with_header("X-Why", "origin");
    /// let response = response.to_http("forbidden").unwrap();
    /// assert_eq!(response.status(), 403);
    /// assert_eq!(response.headers()["x-why"], "origin");
    /// ```
    pub fn to_http<B>(&self, body: B) -> Result<http::Response<B>, http::Error> {
        let mut builder = http::Response::builder().status(self.status);
        for (name, value) in self.headers.iter() {
            builder = builder.header(name, value);
        }
        builder.body(body)
    }
}

impl Negotiated {
    /// The 101 response as an `http` response, to return from a hyper service or an axum
    /// handler (which then upgrades the connection).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{Accept, Config, Request, ServerNegotiation};
    ///
    /// let request = http::Request::get("/")
    ///     .header("Host", "a")
    ///     .header("Upgrade", "websocket")
    ///     .header("Connection", "Upgrade")
    ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("Sec-WebSocket-Version", "13")
    ///     .body(())
    ///     .unwrap();
    /// let negotiation = ServerNegotiation::new(Arc::new(Config::default()), Request::from(&request)).unwrap();
    /// let negotiated = negotiation.accept(Instant::now(), Accept::new()).unwrap();
    /// let response: http::Response<()> = negotiated.to_http();
    /// assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// ```
    pub fn to_http(&self) -> http::Response<()> {
        // Every header passed `check_http_header` in `ServerNegotiation::accept`.
        self.response()
            .to_http(())
            .expect("the 101 response's headers were checked against `http` when accepting")
    }
}

impl Rejection {
    /// The rejection as an `http` response with its text body.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsflow::{Config, Request, ServerNegotiation};
    ///
    /// let request = http::Request::get("/").header("Host", "a").header("Upgrade", "websocket").body(()).unwrap();
    /// let rejection = ServerNegotiation::new(Arc::new(Config::default()), Request::from(&request)).unwrap_err();
    /// let response: http::Response<String> = rejection.to_http();
    /// assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
    /// assert_eq!(response.body(), "bad or missing header: Connection: Upgrade\n");
    /// ```
    pub fn to_http(&self) -> http::Response<String> {
        let response = self.response();
        let body = String::from_utf8_lossy(response.body()).into_owned();
        // The status and headers are the fixed ones of `rejection_response`.
        response
            .to_http(body)
            .expect("a rejection's status and headers are valid HTTP")
    }
}

impl ClientNegotiation {
    /// The upgrade request as an `http` request builder: `GET` of the
    /// [`target`](Self::target) (origin form; set an absolute URI with `.uri(..)` if the
    /// client needs one) over HTTP/1.1 with the [`headers`](Self::headers). Add a body
    /// (`()` or an empty one) and send it; then check the response with
    /// [`into_connection`](Self::into_connection).
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use wsflow::{accept_key, ClientNegotiation, ClientRequest, Config, Response};
    ///
    /// let request = ClientRequest::new("ws://example.com/chat").unwrap();
    /// let negotiation = ClientNegotiation::new(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// let request = negotiation.http_request().body(()).unwrap();
    /// assert_eq!((request.method(), request.uri().path()), (&http::Method::GET, "/chat"));
    /// assert_eq!(request.headers()["sec-websocket-key"], negotiation.key());
    /// let (parts, ()) = http::Response::builder()
    ///     .status(101)
    ///     .header("Upgrade", "websocket")
    ///     .header("Connection", "Upgrade")
    ///     .header("Sec-WebSocket-Accept", accept_key(negotiation.key().as_bytes()))
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// let connection = negotiation.into_connection(Instant::now(), &Response::from(&parts)).unwrap();
    /// assert_eq!(connection.role(), wsflow::Role::Client);
    /// ```
    ///
    /// Over HTTP/2 ([`new_http2`](Self::new_http2)): `CONNECT` of the absolute URI
    /// `scheme://authority/target` with version HTTP/2; the `:protocol = websocket`
    /// pseudo-header is the HTTP/2 client's to add (`hyper::ext::Protocol` or
    /// `h2::ext::Protocol` in the request's extensions), as the `http` crate has no type
    /// for it. Accept a `2xx` response with `into_connection`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use wsflow::{ClientNegotiation, ClientRequest, Config};
    ///
    /// let request = ClientRequest::new("ws://example.com:8080/chat").unwrap();
    /// let negotiation = ClientNegotiation::new_http2(&request, Arc::new(Config::default()), [7; 32]).unwrap();
    /// let request = negotiation.http_request().body(()).unwrap();
    /// assert_eq!(request.method(), http::Method::CONNECT);
    /// assert_eq!(request.version(), http::Version::HTTP_2);
    /// assert_eq!(request.uri(), "http://example.com:8080/chat");
    /// assert!(request.headers().get("sec-websocket-key").is_none());
    /// ```
    pub fn http_request(&self) -> http::request::Builder {
        let mut builder = if self.is_http2() {
            let uri = format!("{}://{}{}", self.scheme(), self.authority(), self.target());
            http::Request::connect(uri).version(http::Version::HTTP_2)
        } else {
            http::Request::get(self.target()).version(http::Version::HTTP_11)
        };
        for (name, value) in self.headers().iter() {
            builder = builder.header(name, value);
        }
        builder
    }
}
